"""Writes real_powers.txt: x ** y for doubles x > 0 and non-integer y, correctly rounded.

Each line is `x_bits y_bits exact_bits c_bits` in hexadecimal: the bits of x and y, the
exact power rounded to the nearest double (ties to even), and what this machine's C
library `pow` returns (CPython's `x ** y` on floats is C `pow`, as torch's NAdam and
ASGD scalars are). The exact power is `Decimal(x) ** Decimal(y)` at 80 significant
digits (the decimal module detects exact powers and is otherwise correctly rounded at
its precision), converted exactly to a Fraction and rounded to the nearest double by
Fraction's correctly rounded float conversion. Standard library only:

    python3 kernels/tests/data/record_real_powers.py > kernels/tests/data/real_powers.txt

Rows: NAdam's 0.96 ** (t·ψ) for t = 1..2000 (ψ = 4e-3) and t = 1..300 for other ψ;
ASGD's (1 + λ·lr·t) ** α for (lr, λ, α) = (0.1, 0.5, 0.75) (the issue's), t = 1..1000
and 1000 sampled t ≤ 10⁵, and (0.01, 1e-4, 0.75) (torch's defaults), (1e-3, 0.1, 0.5) with
t = 1..300 and 300 sampled t ≤ 10⁵; random x in (0, 10)
with y in (−50, 50); x near 1; schedule-like powers (x ** −0.5, x ** −1.5, 0.5 ** …);
exact powers (m² ** 1.5 = m³, some of them exactly halfway between two doubles); and,
of 150 000 sampled powers of the kinds above, those that C pow rounds the wrong way.
"""

import platform
import random
import struct
from decimal import Decimal, getcontext
from fractions import Fraction

getcontext().prec = 80


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def exact(x: float, y: float) -> float:
    return float(Fraction(Decimal(x) ** Decimal(y)))


def main() -> None:
    rng = random.Random(20261130)
    cases = []
    for t in range(1, 2001):
        cases.append((0.96, t * 4e-3))
    for psi in (1e-3, 2e-3, 5e-3, 8e-3, 0.01, 0.04):
        for t in range(1, 301):
            cases.append((0.96, t * psi))
    for lr, lambd, alpha, n in ((0.1, 0.5, 0.75, 1000), (0.01, 1e-4, 0.75, 300), (1e-3, 0.1, 0.5, 300)):
        ts = list(range(1, n + 1)) + [rng.randrange(1, 100001) for _ in range(n)]
        for t in ts:
            cases.append((1 + lambd * lr * t, alpha))
    for _ in range(1500):
        x = rng.random() * 10.0
        y = (rng.random() - 0.5) * 100.0
        if x > 0.0:
            cases.append((x, y))
    for _ in range(500):
        x = 1.0 + (rng.random() - 0.5) * 2.0 ** -rng.randrange(1, 50)
        y = (rng.random() - 0.5) * 2.0 ** rng.randrange(1, 40)
        cases.append((x, y))
    for _ in range(300):
        x = rng.random() * 1e4 + 1.0
        cases.append((x, rng.choice([-0.5, -1.5, 0.5, 1.5, 0.9, 2.5])))
        cases.append((rng.choice([0.5, 0.1, 0.95, 2.0]), rng.random() * 200.0))
    # Exact powers m³ = (m²) ** 1.5; with 54-bit odd m³ the result is a tie.
    found = 0
    while found < 40:
        m = rng.randrange(1 << 17, 1 << 18) | 1
        if (m * m * m).bit_length() == 54:
            cases.append((float(m * m), 1.5))
            found += 1
    for m in (3, 5, 7, 1001, 65535):
        cases.append((float(m * m), 1.5))
        cases.append((float(m * m), 0.5))
        cases.append((float(m * m), -0.5))
    # Samples where C pow is likely to round the wrong way (large |y·ln x|); only the
    # rows where it does are kept.
    sampled = []
    for i in range(150000):
        if i % 3 == 0:
            sampled.append((0.96, rng.randrange(1, 100001) * rng.random() * 0.01))
        elif i % 3 == 1:
            sampled.append((rng.random() * 10.0, (rng.random() - 0.5) * 100.0))
        else:
            sampled.append((1.0 + (rng.random() - 0.5) * 1e-6, (rng.random() - 0.5) * 1e8))
    for x, y in sampled:
        if x <= 0.0 or y == int(y):
            continue
        try:
            c = x**y
        except OverflowError:
            continue
        if 2.0**-1022 <= c < float("inf") and exact(x, y) != c:
            cases.append((x, y))
    rows = []
    for x, y in cases:
        if y == int(y):
            continue
        try:
            c = x**y
        except OverflowError:
            continue
        e = exact(x, y)
        if not 2.0**-1022 <= e < float("inf"):
            continue  # only normal results are promised correctly rounded
        rows.append((bits(x), bits(y), bits(e), bits(c)))
    differ = sum(1 for r in rows if r[2] != r[3])
    print(f"# python {platform.python_version()}, libc {' '.join(platform.libc_ver())}")
    print(f"# {len(rows)} powers, {differ} of them differ from C pow")
    for row in rows:
        print("%016x %016x %016x %016x" % row)


if __name__ == "__main__":
    main()
