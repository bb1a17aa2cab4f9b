"""Writes powers.txt: x ** n for doubles x and integers n, correctly rounded.

Each line is `x_bits n exact_bits c_bits` in hexadecimal (n decimal): the bits of x, the
exactly computed power rounded to the nearest double (ties to even; Python's Fraction
to float conversion is correctly rounded), and what this machine's C library `pow`
returns (CPython's `x ** n` on floats is C `pow`; torch's bias corrections are
computed that way). Every power where the two differ is kept, plus 1200 where they
agree. Standard library only:

    python3 kernels/tests/data/record_powers.py > kernels/tests/data/powers.txt
"""

import platform
import random
import struct
from fractions import Fraction


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def main() -> None:
    rng = random.Random(20261121)
    agree, differ = [], []
    for i in range(40000):
        kind = i % 4
        if kind == 0:
            x = 1.0 - rng.random() * 0.2  # Adam-like decays
        elif kind == 1:
            x = rng.random() * 1.2
        elif kind == 2:
            x = rng.choice([0.9, 0.99, 0.999, 0.9999, 0.95, 0.5, 0.8])
        else:
            x = -(1.0 - rng.random() * 1e-3)
        n = rng.randrange(1, 64) if i % 2 == 0 else rng.randrange(1, 2000)
        if x == 0.0:
            continue
        try:
            c = x**n
        except OverflowError:
            continue
        exact = float(Fraction(x) ** n)
        row = (bits(x), n, bits(exact), bits(c))
        (differ if exact != c else agree).append(row)
    print(f"# python {platform.python_version()}, libc {' '.join(platform.libc_ver())}")
    print(f"# {len(differ)} of {len(differ) + len(agree)} sampled powers differ from C pow")
    for x, n, exact, c in differ + agree[:1200]:
        print(f"{x:016x} {n} {exact:016x} {c:016x}")


if __name__ == "__main__":
    main()
