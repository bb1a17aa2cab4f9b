"""The constants of `kernels/src/power.rs`'s fast `pow` path (`pow_fast`), printed as Rust.

Recorded with python 3.11.7 and mpmath 1.3.0 (/work/venv); every constant is the exact
value rounded to nearest at the scale its comment in power.rs gives (mpmath at 200 bits
of working precision, far beyond the 128 bits kept).

Usage: /work/venv/bin/python kernels/tests/data/pow_tables.py
"""

import mpmath

mpmath.mp.prec = 200


def fixed(v, scale_bits):
    return int(mpmath.nint(v * mpmath.mpf(2) ** scale_bits))


def hex128(v):
    s = f"{v:032X}"
    return "0x" + "_".join(s[i : i + 4] for i in range(0, 32, 4))


def hex64(v):
    s = f"{v:016X}"
    return "0x" + "_".join(s[i : i + 4] for i in range(0, 16, 4))


def reciprocals():
    """R_i for m in [1 + i/128, 1 + (i+1)/128): 512/R_i near 1/m; 512 and 256 at the ends."""
    rs = []
    for i in range(128):
        c = 1 + (mpmath.mpf(i) + 0.5) / 128
        r = int(mpmath.nint(512 / c))
        rs.append(512 if i == 0 else 256 if i == 127 else r)
    return rs


def main():
    ln2 = mpmath.log(2)
    rs = reciprocals()
    umax = 0
    for i, r in enumerate(rs):
        for m in (1 + mpmath.mpf(i) / 128, 1 + mpmath.mpf(i + 1) / 128):
            umax = max(umax, abs(m * r / 512 - 1))
    print(f"// max |u| = {mpmath.nstr(umax, 8)} = 2^{mpmath.nstr(mpmath.log(umax, 2), 6)}")
    print(f"const LN2_116: i128 = {hex128(fixed(ln2, 116))};")
    print("const LOG_R: [u16; 128] = [")
    for r in rs:
        print(f"    {r},")
    print("];")
    print("const LOG_MINUS_LN_R: [u128; 128] = [")
    for r in rs:
        print(f"    {hex128(fixed(mpmath.log(mpmath.mpf(512) / r), 116))},")
    print("];")
    print("const LOG_SERIES: [i128; 4] = [")
    for n in range(1, 5):
        print(f"    {'-' if n % 2 else ''}{hex128(fixed(mpmath.mpf(1) / (n + 1), 127))},")
    print("];")
    print("const LOG_SERIES_TAIL: [i64; 8] = [")
    for n in range(5, 13):
        print(f"    {'-' if n % 2 else ''}{hex64(fixed(mpmath.mpf(1) / (n + 1), 63))},")
    print("];")
    print(f"const INV_LN2_64_56: i128 = {hex128(fixed(64 / ln2, 56))};")
    print(f"const LN2_64_116: i128 = {hex128(fixed(ln2 / 64, 116))};")
    print("const EXP_TABLE: [u128; 64] = [")
    for j in range(64):
        print(f"    {hex128(fixed(mpmath.mpf(2) ** (mpmath.mpf(j) / 64), 127))},")
    print("];")
    print("const EXP_SERIES: [i128; 2] = [")
    for n in range(2, 4):
        print(f"    {hex128(fixed(1 / mpmath.factorial(n), 127))},")
    print("];")
    print("const EXP_SERIES_TAIL: [i64; 5] = [")
    for n in range(4, 9):
        print(f"    {hex64(fixed(1 / mpmath.factorial(n), 63))},")
    print("];")


main()
