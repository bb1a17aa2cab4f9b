//! `x ** n` for a double `x` and an integer `n ≥ 0`, correctly rounded, in integer
//! arithmetic; a cache that advances `β ** t` to `β ** (t + 1)` with one multiply; and
//! `x ** y` for any other exponent ([`pow`]), correctly rounded in double-double
//! arithmetic (NAdam's μₜ, ASGD's η and the schedules' non-integer powers).
//!
//! torch's bias corrections are Python's `beta ** step` (C `pow` on doubles). A general
//! `pow` costs about 9 000 instructions on a Cortex-M4F, whose FPU has no double
//! precision: two of them were most of Adam's per-step cost there. Here the power is
//! the exact product `m^n · 2^(e·n)` of the base's integer significand `m`, carried
//! with a 128-bit significand (every product truncated, with a flag for whether any bit
//! was dropped) and rounded to the nearest double, ties to even, once at the end.
//!
//! Accuracy: truncation only lowers the value, by less than 2⁻¹²⁷ relative per
//! multiply, and there are at most 128 multiplies, so the carried value is within
//! 2⁻¹²⁰ (relative) below the exact power. The result is therefore the correctly
//! rounded power unless the exact value lies within 2⁻¹²⁰ above a point halfway
//! between two doubles, a band of relative width 2⁻⁶⁷ of each interval between doubles.
//! glibc's `pow`, which Python and therefore torch call, is not always correctly rounded
//! (its error bound is 0.52 ulp): on a million sampled powers it rounds 0.03% the other
//! way (by one ulp), where `libm::pow` (FreeBSD's algorithm) differs from it in 3%.
//!
//! Non-integer exponents: [`pow`] carries `e^(y·ln x)` with about 100 correct bits (ln by
//! the atanh series, exp by Taylor after reduction by ln 2, both in double-double) and
//! rounds once. On 9 656 recorded powers (`kernels/tests/data/real_powers.txt`: NAdam's
//! and ASGD's scalars, random and near-1 bases, exact powers and ties) it is the
//! correctly rounded value everywhere, where `libm::pow` is wrong in 744 and glibc's in
//! 128 (rows chosen for it); on a million sampled powers glibc's differs from it by one
//! ulp in 815, each time glibc's being the wrong one, and `libm::pow` in 10%.
//!
//! Fast path (Ziv's strategy, as CORE-MATH and crlibm): [`pow`] first approximates
//! `x^y` in 128-bit fixed point with integer multiplies only (`ln` from a 128-entry table
//! and 12 series terms, `exp` from a 64-entry table of `2^(j/64)` and 8 terms; the
//! small high-order terms in 64-bit arithmetic), within a proven 2⁻⁸³ (relative; the
//! sum is in [`pow_fast`]'s docs), and rounds that when no point halfway between two
//! doubles lies within 2⁻⁷² of it. Otherwise (3 in 400 000 sampled powers, and exact
//! powers halfway between two doubles) the double-double path above decides. The bits
//! are the double-double path's on every input (tested on 490 000 powers,
//! `real_powers.txt` included). Measured: on the x86 host a call went from about
//! 0.9–1.3 µs to 0.10 µs (the first fast version, all in 128-bit products, took
//! 0.15–0.23 µs), and f32 NAdam at 4K parameters from 0.71 to 1.04 Gparam/s (ASGD 2.0
//! to 3.6; `benches/speed.rs`, medians of 7 rounds, both in one session; the integer
//! powers' 64-bit products below account for 0.97 to 1.04: NAdam's `1 − β₂ᵗ` was not
//! cached then; `NAdamScalars` caches it, and μₜ's power, since). On the Cortex-M4F (firmware bench, instructions per step) NAdam's per-step
//! cost fell from 242 370 to 9 520 and ASGD's from 120 960 to 4 220 (libm's `pow` gave
//! 23 230 and 10 760); on the Cortex-M0 from 588 687 to 44 437 and from 291 906 to
//! 19 593. The price is flash: the bench image grew by 7.4 KB (M4F) and 8.0 KB (M0),
//! 3.3 KB of it tables (`firmware/sizes.sh`).
//!
//! Products of 128-bit significands are four 64 × 64-bit multiplies on 64-bit targets
//! and sixteen 32 × 32-bit ones (`UMAAL`) elsewhere: on the x86 host `powi(0.999, t)`
//! takes 0.12–0.15 µs for t = 10²..10⁶ (0.5–0.6 µs with 32-bit limbs). A core with no
//! 32 × 32 → 64-bit multiply (the Cortex-M0) forms each of those from four 16 × 16-bit
//! `MULS` (`mul_u32`) rather than call `__aeabi_lmul`, the cache's step among them:
//! Adam's per-step cost there fell from 5 174 to 4 848 instructions, NAdam's from
//! 24 176 to 21 076 (`firmware/profile.sh --m0`). The fast path's products by a number
//! of 64 significant bits (`u`, `y`'s significand, the series' first levels) are
//! 128 × 64-bit ones (`mul_by_u64`), its products by `k` and `K` are by 16-bit numbers;
//! on the Cortex-M0 its 128 × 128-bit products are summed from 16-bit halves, without
//! the columns below bit 96 unless they may carry (`mul_high_columns`), and its
//! leading-zero counts are inline (no `CLZ` there): NAdam's per-step cost fell from
//! 21 076 to 16 010 instructions (Cortex-M4F: 5 630 to 5 180), ASGD's from 16 154 to
//! 10 976 (3 812 to 3 350), with the same bits.

use crate::rules::{finite, is, lt, nonzero};

/// A positive number `mant · 2^exp` with `mant` normalized to `[2¹²⁷, 2¹²⁸)`, and whether
/// it was rounded down (truncated) on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wide {
    mant: u128,
    exp: i64,
    inexact: bool,
}

/// The binary exponent beyond which a power is certainly 0 or ∞ as a double, with room
/// for the ≤ 1 bit that rounding can move it.
const EXP_LIMIT: i64 = 1100;

impl Wide {
    /// `|x|` for a finite non-zero `x` (subnormals included).
    #[inline]
    fn from_f64(x: f64) -> Wide {
        let bits = x.to_bits() & !(1 << 63);
        let (field, frac) = ((bits >> 52) as i64, bits & ((1 << 52) - 1));
        let (m, e) = if field == 0 {
            (frac, -1074)
        } else {
            (frac | 1 << 52, field - 1075)
        };
        let shift = m.leading_zeros() + 64;
        Wide {
            mant: u128::from(m) << shift,
            exp: e - i64::from(shift),
            inexact: false,
        }
    }

    /// `|x|` for a finite non-zero `x` as a 64-bit significand `m ∈ [2⁶³, 2⁶⁴)` and an
    /// exponent `e`, `|x| = m·2^e`: [`Wide::from_f64`]'s value, whose low 64 bits are
    /// always zero, for [`Wide::mul_base`].
    ///
    /// A normal `x`, every β a step takes, is its significand shifted by a constant;
    /// [`Wide::from_f64`]'s variable 128-bit shift (which a 32-bit core does through a
    /// table on the stack) is left to subnormals.
    #[inline]
    fn base_of(x: f64) -> (u64, i64) {
        let bits = x.to_bits() & !(1 << 63);
        let field = (bits >> 52) as i64;
        if field != 0 {
            // (2⁵² + frac)·2^(field − 1075) with the significand moved up 11 bits; the
            // shift drops the exponent field out of the word.
            return (bits << 11 | 1 << 63, field - 1086);
        }
        let w = Wide::from_f64(x);
        ((w.mant >> 64) as u64, w.exp + 64)
    }

    /// `self · m·2^e` for a base from [`Wide::base_of`], truncated to 128 bits: the same
    /// value and flag as [`Wide::mul`] by `Wide::from_f64(x)`, whose low half is zero,
    /// in two 64 × 64-bit multiplies instead of four (`mul_base_limbs` on a core without
    /// a 32 × 32 → 64-bit multiply). [`mul_by_u64`] is the same product, but through it
    /// LLVM allocates the Cortex-M4F's registers otherwise: 2 instructions more a power.
    #[inline]
    fn mul_base(&self, (m, e): (u64, i64)) -> Wide {
        #[cfg(not(gradstep_no_long_multiply))]
        let (mid, dropped) = {
            let (a1, a0) = ((self.mant >> 64) as u64, self.mant as u64);
            let low = u128::from(a0) * u128::from(m);
            // a1·m + ⌊a0·m / 2⁶⁴⌋ < (2⁶⁴ − 1)² + 2⁶⁴ < 2¹²⁸: no carry out.
            (u128::from(a1) * u128::from(m) + (low >> 64), low as u64)
        };
        #[cfg(gradstep_no_long_multiply)]
        let (mid, dropped) = mul_base_limbs(self.mant, m);
        // The 192-bit product mid·2⁶⁴ + dropped has its top bit at 191 or 190.
        let (mant, dropped, exp) = if mid >> 127 == 1 {
            (mid, dropped, self.exp + e + 64)
        } else {
            (
                mid << 1 | u128::from(dropped >> 63),
                dropped << 1,
                self.exp + e + 63,
            )
        };
        Wide {
            mant,
            exp,
            inexact: self.inexact || dropped != 0,
        }
    }

    /// The binary exponent `E` with `self ∈ [2^E, 2^(E+1))`.
    #[inline]
    fn binary_exponent(&self) -> i64 {
        self.exp + 127
    }

    /// `self · other`, truncated to 128 bits.
    fn mul(&self, other: &Wide) -> Wide {
        let (hi, lo) = mul_wide(self.mant, other.mant);
        // Both factors are in [2¹²⁷, 2¹²⁸), so the product's top bit is bit 255 or 254.
        let (mant, dropped, exp) = if hi >> 127 == 1 {
            (hi, lo, self.exp + other.exp + 128)
        } else {
            (hi << 1 | lo >> 127, lo << 1, self.exp + other.exp + 127)
        };
        Wide {
            mant,
            exp,
            inexact: self.inexact || other.inexact || dropped != 0,
        }
    }

    /// The nearest double (ties to even), as `+0` or `+∞` out of range.
    ///
    /// A normal result, every step's case until a power falls below 2⁻¹⁰²², keeps the
    /// top 53 bits: a constant shift, so the rounding is a few word operations on the
    /// significand's halves. The variable 128-bit shifts of [`Wide::to_f64_any`], which
    /// every other result takes, were about 50 of the ~120 instructions each cached
    /// power cost a step (Adam computes two; valgrind's count, benches/percall.rs).
    #[inline]
    fn to_f64(self) -> f64 {
        let e = self.binary_exponent();
        if !(-1022..=1023).contains(&e) {
            return Wide::to_f64_any(self.mant, self.exp, self.inexact);
        }
        let (hi, lo) = ((self.mant >> 64) as u64, self.mant as u64);
        // q = mant >> 75, with the implicit bit; the rounding bit is bit 74, and the
        // sticky bits are the 74 below it and whatever was dropped before.
        let q = hi >> 11;
        let round = hi >> 10 & 1 == 1;
        let sticky = (hi & 0x3FF) | lo != 0 || self.inexact;
        let up = round && (sticky || q & 1 == 1);
        // As below: a carry of q + 1 = 2⁵³ moves into the exponent field.
        let bits = (((e + 1022) as u64) << 52) + q + u64::from(up);
        if bits >= f64::INFINITY.to_bits() {
            f64::INFINITY
        } else {
            f64::from_bits(bits)
        }
    }

    /// [`Wide::to_f64`] for any exponent (subnormal results, 0 and ∞ included), of
    /// the value's fields: they pass in registers, where a `Wide` passes through memory,
    /// copied there sixteen bytes at a time from the cache entry just stored a word at a
    /// time, a load the processor cannot forward from those stores (a first version
    /// taking `self` made Adam's 1K step 14 ns slower on a Zen 5 for 68 fewer
    /// instructions).
    #[inline(never)]
    fn to_f64_any(mant: u128, exp: i64, inexact: bool) -> f64 {
        let w = Wide { mant, exp, inexact };
        let e = w.binary_exponent();
        if e > EXP_LIMIT {
            return f64::INFINITY;
        }
        // Keep 53 bits, or fewer for subnormal results (E < −1022).
        let shift = 75 + (-1022 - e).max(0);
        if shift > 128 {
            return 0.0;
        }
        let (q, rem, half) = if shift == 128 {
            (0, mant, 1u128 << 127)
        } else {
            (
                (mant >> shift) as u64,
                mant & ((1 << shift) - 1),
                1 << (shift - 1),
            )
        };
        let up = rem > half || (rem == half && (inexact || q & 1 == 1));
        let q = q + u64::from(up);
        // With the implicit bit included in `q`, adding the biased exponent minus one
        // carries a rounding overflow (q = 2⁵³) into the exponent field, and a subnormal
        // rounding up to 2⁵² becomes the smallest normal.
        let bits = if e < -1022 {
            q
        } else {
            (((e + 1022) as u64) << 52) + q
        };
        if bits >= f64::INFINITY.to_bits() {
            f64::INFINITY
        } else {
            f64::from_bits(bits)
        }
    }
}

/// `mant · 2^exp` rounded to the nearest double (ties to even; subnormals, and `+∞` out
/// of range), for `mant` normalized to `[2¹²⁷, 2¹²⁸)`; `inexact`: nonzero bits below
/// `mant` were dropped (they break a tie upwards). [`Wide::to_f64`], for
/// `crate::reduce::ExactSum`.
pub(crate) fn nearest_f64(mant: u128, exp: i64, inexact: bool) -> f64 {
    Wide { mant, exp, inexact }.to_f64()
}

/// The 256-bit product `a · b` as `(high, low)` halves: four 64 × 64-bit products where
/// the target multiplies 64-bit words, `mul_wide_limbs` elsewhere.
#[inline]
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    #[cfg(target_pointer_width = "64")]
    {
        let (a1, a0) = (a >> 64, u128::from(a as u64));
        let (b1, b0) = (b >> 64, u128::from(b as u64));
        let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
        // a·b = p11·2¹²⁸ + (p01 + p10)·2⁶⁴ + p00, with the carries of the two sums.
        let (mid, mid_carry) = p01.overflowing_add(p10);
        let (low, low_carry) = p00.overflowing_add(mid << 64);
        let high = p11 + (mid >> 64) + (u128::from(mid_carry) << 64) + u128::from(low_carry);
        (high, low)
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        mul_wide_limbs(a, b)
    }
}

/// [`mul_wide`] in 32-bit limbs, so that 32-bit targets get one `UMAAL` per partial
/// product rather than a call to `__multi3` (compiled for the tests everywhere).
#[cfg(any(test, not(target_pointer_width = "64")))]
#[inline]
fn mul_wide_limbs(a: u128, b: u128) -> (u128, u128) {
    let limbs = |x: u128| {
        [
            x as u32,
            (x >> 32) as u32,
            (x >> 64) as u32,
            (x >> 96) as u32,
        ]
    };
    let (a, b) = (limbs(a), limbs(b));
    let mut r = [0u32; 8];
    for i in 0..4 {
        let mut carry = 0u64;
        for j in 0..4 {
            // (2³² − 1)² + 2·(2³² − 1) = 2⁶⁴ − 1: never overflows.
            let t = mul_u32(a[i], b[j]) + u64::from(r[i + j]) + carry;
            r[i + j] = t as u32;
            carry = t >> 32;
        }
        r[i + 4] = carry as u32;
    }
    let join = |l: &[u32]| {
        l.iter()
            .rev()
            .fold(0u128, |acc, &limb| acc << 32 | u128::from(limb))
    };
    (join(&r[4..]), join(&r[..4]))
}

/// The 192-bit product `a · b` as its high 128 bits `⌊a·b / 2⁶⁴⌋` and its low 64 bits
/// ([`Wide::mul_base`]'s, and the fast path's products by a 64-bit number): two
/// 64 × 64 → 128-bit products, or `mul_base_limbs` on a core without a
/// 32 × 32 → 64-bit multiply.
#[inline]
fn mul_by_u64(a: u128, b: u64) -> (u128, u64) {
    #[cfg(not(gradstep_no_long_multiply))]
    {
        let (a1, a0) = ((a >> 64) as u64, a as u64);
        let low = u128::from(a0) * u128::from(b);
        // a1·b + ⌊a0·b / 2⁶⁴⌋ < (2⁶⁴ − 1)² + 2⁶⁴ < 2¹²⁸: no carry out.
        (u128::from(a1) * u128::from(b) + (low >> 64), low as u64)
    }
    #[cfg(gradstep_no_long_multiply)]
    {
        mul_by_u64_shared(a, b)
    }
}

/// [`mul_base_limbs`] in one copy that the fast path's seven products call (on the
/// Cortex-M0 about 480 bytes each, inlined).
#[cfg(gradstep_no_long_multiply)]
#[inline(never)]
fn mul_by_u64_shared(a: u128, b: u64) -> (u128, u64) {
    mul_base_limbs(a, b)
}

/// [`Wide::mul_base`]'s and [`mul_by_u64`]'s product in 32-bit limbs: eight 32 × 32-bit
/// products ([`mul_u32`]) on a core without a 32 × 32 → 64-bit multiply, where LLVM
/// makes the two 64 × 64 → 128-bit products eight calls of `__aeabi_lmul` (compiled for
/// the tests everywhere): on the Cortex-M0 a cached power's step takes 133 instructions
/// more in `Powers::pow` and 296 fewer in `__aeabi_lmul`. Not on the Cortex-M4F, where
/// LLVM's `UMULL`/`UMLAL`s for the two products take 3 fewer instructions a power than
/// these limbs' (`firmware/profile.sh`). Always inlined into `mul_base`, as it was
/// before the fast path shared it: out of line, `powi`'s uncached path (a product per
/// bit of the exponent) took 200 instructions more at t = 10⁶.
#[cfg(any(test, gradstep_no_long_multiply))]
#[inline(always)]
fn mul_base_limbs(a: u128, b: u64) -> (u128, u64) {
    let (b0, b1) = (b as u32, (b >> 32) as u32);
    // r = a·b, one 32-bit limb of `a` (a row of two products) at a time.
    let mut r = [0u32; 6];
    for i in 0..4 {
        let limb = (a >> (32 * i)) as u32;
        // (2³² − 1)² + 2·(2³² − 1) = 2⁶⁴ − 1 bounds both sums: neither overflows.
        let low = mul_u32(limb, b0) + u64::from(r[i]);
        let high = mul_u32(limb, b1) + u64::from(r[i + 1]) + (low >> 32);
        // r[i + 2] is still 0: the rows so far reach r[i + 1].
        (r[i], r[i + 1], r[i + 2]) = (low as u32, high as u32, (high >> 32) as u32);
    }
    let limb = |k: usize| u128::from(r[k]);
    (
        limb(5) << 96 | limb(4) << 64 | limb(3) << 32 | limb(2),
        u64::from(r[1]) << 32 | u64::from(r[0]),
    )
}

/// The exact 64-bit product `a · b`: the target's 32 × 32 → 64-bit multiply (`UMULL`),
/// or `mul_u32_halves` where it has none (the Thumb-1-only cores, Cortex-M0 among
/// them; `gradstep_no_long_multiply`, from `build.rs`), where LLVM would call
/// `__aeabi_lmul`, a general 64 × 64-bit product (37 instructions on the Cortex-M0, and
/// the call's own moves). The tests
/// take the halves on every target, so that the host runs the Cortex-M0's limb products.
#[cfg(any(test, not(target_pointer_width = "64")))]
#[inline]
fn mul_u32(a: u32, b: u32) -> u64 {
    #[cfg(not(any(test, gradstep_no_long_multiply)))]
    {
        u64::from(a) * u64::from(b)
    }
    #[cfg(any(test, gradstep_no_long_multiply))]
    {
        mul_u32_halves(a, b)
    }
}

/// [`mul_u32`] from the four products of the factors' 16-bit halves, each exact in a
/// 32-bit `MULS` (compiled for the tests everywhere).
#[cfg(any(test, gradstep_no_long_multiply))]
#[inline]
fn mul_u32_halves(a: u32, b: u32) -> u64 {
    let (a1, a0) = (a >> 16, a & 0xFFFF);
    let (b1, b0) = (b >> 16, b & 0xFFFF);
    // Each below (2¹⁶ − 1)² < 2³².
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    // a·b = p11·2³² + (p01 + p10)·2¹⁶ + p00 ≤ (2³² − 1)² < 2⁶⁴, so no partial sum
    // overflows 64 bits (p01 + p10 alone may carry out of 32: it is added in 64).
    (u64::from(p11) << 32 | u64::from(p00)) + (u64::from(p01) << 16) + (u64::from(p10) << 16)
}

/// `|x|ⁿ` for finite non-zero `x` and `n ≥ 1`, by left-to-right binary powering.
fn wide_pow(x: f64, n: u64) -> Wide {
    let base = Wide::base_of(x);
    let mut r = Wide::from_f64(x);
    for bit in (0..63 - n.leading_zeros()).rev() {
        r = r.mul(&r);
        if n >> bit & 1 == 1 {
            r = r.mul_base(base);
        }
        // Powers of |x| < 1 only shrink as the prefix of n grows, and powers of |x| > 1
        // only grow: once out of range, the result is 0 or ∞.
        if r.binary_exponent().abs() > EXP_LIMIT {
            break;
        }
    }
    r
}

/// `x ** n` as C's `pow(x, n)` returns it, correctly rounded (see the module docs).
pub(crate) fn powi(x: f64, n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    if !x.is_finite() || x == 0.0 {
        return libm::pow(x, n as f64);
    }
    let magnitude = wide_pow(x, n).to_f64();
    if x < 0.0 && n & 1 == 1 {
        -magnitude
    } else {
        magnitude
    }
}

/// A number `hi + lo` with `|lo| ≤ ½ ulp(hi)` (a double-double: about 106 bits).
#[derive(Clone, Copy, Debug)]
struct Dd {
    hi: f64,
    lo: f64,
}

/// ln 2 in three non-overlapping parts (about 160 bits).
const LN2: [f64; 3] = [
    f64::from_bits(0x3FE6_2E42_FEFA_39EF),
    f64::from_bits(0x3C7A_BC9E_3B39_803F),
    f64::from_bits(0x3907_B57A_079A_1934),
];

/// `a + b` as an exact pair (Knuth's two-sum).
fn two_sum(a: f64, b: f64) -> Dd {
    let hi = a + b;
    let bb = hi - a;
    Dd {
        hi,
        lo: (a - (hi - bb)) + (b - bb),
    }
}

/// `a + b` as an exact pair when `|a| ≥ |b|` (or `a = 0`).
fn quick_two_sum(a: f64, b: f64) -> Dd {
    let hi = a + b;
    Dd {
        hi,
        lo: b - (hi - a),
    }
}

/// `a` as `hi + lo` with 26 significant bits in each (Veltkamp), for |a| < 2⁹⁹⁶.
fn split(a: f64) -> (f64, f64) {
    let c = 134_217_729.0 * a;
    let hi = c - (c - a);
    (hi, a - hi)
}

/// `a · b` as an exact pair (Dekker; no fused multiply-add is needed), barring
/// overflow and underflow.
fn two_prod(a: f64, b: f64) -> Dd {
    let p = a * b;
    let ((ah, al), (bh, bl)) = (split(a), split(b));
    Dd {
        hi: p,
        lo: ((ah * bh - p) + ah * bl + al * bh) + al * bl,
    }
}

impl Dd {
    fn from_f64(x: f64) -> Dd {
        Dd { hi: x, lo: 0.0 }
    }

    /// `self + other`, relative error about 2⁻¹⁰⁶.
    fn add(self, other: Dd) -> Dd {
        let s = two_sum(self.hi, other.hi);
        let t = two_sum(self.lo, other.lo);
        let s = quick_two_sum(s.hi, s.lo + t.hi);
        quick_two_sum(s.hi, s.lo + t.lo)
    }

    /// `self + other` for summands of the same sign (no cancellation): one two-sum,
    /// relative error about 2⁻¹⁰⁴.
    fn add_same_sign(self, other: Dd) -> Dd {
        let s = two_sum(self.hi, other.hi);
        quick_two_sum(s.hi, s.lo + (self.lo + other.lo))
    }

    fn neg(self) -> Dd {
        Dd {
            hi: -self.hi,
            lo: -self.lo,
        }
    }

    /// `self · other`, relative error about 2⁻¹⁰⁴.
    fn mul(self, other: Dd) -> Dd {
        let p = two_prod(self.hi, other.hi);
        quick_two_sum(p.hi, p.lo + (self.hi * other.lo + self.lo * other.hi))
    }

    /// `self · x`.
    fn mul_f64(self, x: f64) -> Dd {
        let p = two_prod(self.hi, x);
        quick_two_sum(p.hi, p.lo + self.lo * x)
    }

    /// `self / other`, three quotient digits.
    fn div(self, other: Dd) -> Dd {
        let q1 = self.hi / other.hi;
        let r = self.add(other.mul_f64(q1).neg());
        let q2 = r.hi / other.hi;
        let r = r.add(other.mul_f64(q2).neg());
        let q3 = r.hi / other.hi;
        quick_two_sum(q1, q2).add(Dd::from_f64(q3))
    }
}

/// `2/(2n + 1)` for n = 0..=9 as pairs: the atanh series' leading coefficients.
const ATANH_DD: [Dd; 10] = [
    Dd {
        hi: f64::from_bits(0x4000_0000_0000_0000),
        lo: 0.0,
    },
    Dd {
        hi: f64::from_bits(0x3FE5_5555_5555_5555),
        lo: f64::from_bits(0x3C85_5555_5555_5555),
    },
    Dd {
        hi: f64::from_bits(0x3FD9_9999_9999_999A),
        lo: f64::from_bits(0xBC79_9999_9999_999A),
    },
    Dd {
        hi: f64::from_bits(0x3FD2_4924_9249_2492),
        lo: f64::from_bits(0x3C72_4924_9249_2492),
    },
    Dd {
        hi: f64::from_bits(0x3FCC_71C7_1C71_C71C),
        lo: f64::from_bits(0x3C6C_71C7_1C71_C71C),
    },
    Dd {
        hi: f64::from_bits(0x3FC7_45D1_745D_1746),
        lo: f64::from_bits(0xBC57_45D1_745D_1746),
    },
    Dd {
        hi: f64::from_bits(0x3FC3_B13B_13B1_3B14),
        lo: f64::from_bits(0xBC63_B13B_13B1_3B14),
    },
    Dd {
        hi: f64::from_bits(0x3FC1_1111_1111_1111),
        lo: f64::from_bits(0x3C41_1111_1111_1111),
    },
    Dd {
        hi: f64::from_bits(0x3FBE_1E1E_1E1E_1E1E),
        lo: f64::from_bits(0x3C3E_1E1E_1E1E_1E1E),
    },
    Dd {
        hi: f64::from_bits(0x3FBA_F286_BCA1_AF28),
        lo: f64::from_bits(0x3C5A_F286_BCA1_AF28),
    },
];

/// `1/n!` for n = 0..=13 as pairs: the exponential series' leading coefficients.
const EXP_DD: [Dd; 14] = [
    Dd {
        hi: f64::from_bits(0x3FF0_0000_0000_0000),
        lo: 0.0,
    },
    Dd {
        hi: f64::from_bits(0x3FF0_0000_0000_0000),
        lo: 0.0,
    },
    Dd {
        hi: f64::from_bits(0x3FE0_0000_0000_0000),
        lo: 0.0,
    },
    Dd {
        hi: f64::from_bits(0x3FC5_5555_5555_5555),
        lo: f64::from_bits(0x3C65_5555_5555_5555),
    },
    Dd {
        hi: f64::from_bits(0x3FA5_5555_5555_5555),
        lo: f64::from_bits(0x3C45_5555_5555_5555),
    },
    Dd {
        hi: f64::from_bits(0x3F81_1111_1111_1111),
        lo: f64::from_bits(0x3C01_1111_1111_1111),
    },
    Dd {
        hi: f64::from_bits(0x3F56_C16C_16C1_6C17),
        lo: f64::from_bits(0xBBEF_49F4_9F49_F49F),
    },
    Dd {
        hi: f64::from_bits(0x3F2A_01A0_1A01_A01A),
        lo: f64::from_bits(0x3B6A_01A0_1A01_A01A),
    },
    Dd {
        hi: f64::from_bits(0x3EFA_01A0_1A01_A01A),
        lo: f64::from_bits(0x3B3A_01A0_1A01_A01A),
    },
    Dd {
        hi: f64::from_bits(0x3EC7_1DE3_A556_C734),
        lo: f64::from_bits(0xBB6C_154F_8DDC_6C00),
    },
    Dd {
        hi: f64::from_bits(0x3E92_7E4F_B778_9F5C),
        lo: f64::from_bits(0x3B3C_BBC0_5B4F_A99A),
    },
    Dd {
        hi: f64::from_bits(0x3E5A_E645_67F5_44E4),
        lo: f64::from_bits(0xBAFC_062E_06D1_F209),
    },
    Dd {
        hi: f64::from_bits(0x3E21_EED8_EFF8_D898),
        lo: f64::from_bits(0xBAC2_AEC9_59E1_4C06),
    },
    Dd {
        hi: f64::from_bits(0x3DE6_1246_13A8_6D09),
        lo: f64::from_bits(0x3A8F_28E0_CC74_8EBE),
    },
];

/// 1/14!, rounded.
const INV_FACT_14: f64 = f64::from_bits(0x3DA9_3974_A8C0_7C9D);

/// `ln x` for a finite `x > 0`, relative error below about 2⁻¹⁰⁰.
fn ln_dd(x: f64) -> Dd {
    // x = 2^k · m with m in [1/√2, √2).
    let (x, mut k) = if x < f64::MIN_POSITIVE {
        (x * f64::from_bits(0x4350_0000_0000_0000), -54i64) // x · 2⁵⁴
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    k += ((bits >> 52) as i64) - 1023;
    let mut m = f64::from_bits((bits & ((1 << 52) - 1)) | 0x3FF0_0000_0000_0000);
    if m > core::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    // ln m = 2·atanh(s) = 2(s + s³/3 + s⁵/5 + …), s = (m − 1)/(m + 1), |s| ≤ 0.172: the
    // 23 terms to s⁴⁵ leave less than 2⁻¹¹⁰ (relative). m − 1 is exact (Sterbenz). The
    // terms from s²¹ on (t¹⁰ < 2⁻⁵⁰) are summed in plain doubles: their rounding errors
    // stay below 2⁻¹⁰⁵ of the whole.
    let s = Dd::from_f64(m - 1.0).div(two_sum(m, 1.0));
    let t = s.mul(s);
    let mut tail = 0.0;
    for n in (10..=22).rev() {
        tail = 2.0 / f64::from(2 * n + 1) + t.hi * tail;
    }
    let mut sum = Dd::from_f64(tail);
    for c in ATANH_DD.iter().rev() {
        sum = c.add_same_sign(t.mul(sum));
    }
    let ln_m = s.mul(sum);
    // k·ln 2: k has at most 11 bits, so k·LN2[0] is an exact pair and k·LN2[1] loses
    // only bits below 2⁻¹⁰⁰ of the whole.
    let k = k as f64;
    let p = two_prod(k, LN2[0]);
    quick_two_sum(p.hi, p.lo + k * LN2[1]).add(ln_m)
}

/// `e^z` as a pair `(hi + lo)` and a power of two `2^k`, for `|z| ≤ 710`: e^z ≈ (hi + lo)·2^k
/// with `hi + lo` in `[1/√2, √2]`, relative error below about 2⁻¹⁰⁰.
fn exp_dd(z: Dd) -> (Dd, i32) {
    let k = libm::round(z.hi / LN2[0]);
    // r = z − k·ln 2, |r| ≤ 0.347 (k·LN2[0] and k·LN2[1] as exact pairs).
    let r = z
        .add(two_prod(k, LN2[0]).neg())
        .add(two_prod(k, LN2[1]).neg())
        .add(Dd::from_f64(-k * LN2[2]));
    // Taylor to r²⁴/24!: the rest is below 2⁻¹¹⁵. The terms from r¹⁴/14! (< 2⁻⁵⁵) on are
    // summed in plain doubles (r¹⁴/14!·(1 + r/15(1 + r/16(…)))), the rest in pairs.
    let mut tail = 1.0;
    for n in (15..=24).rev() {
        tail = 1.0 + r.hi * tail / f64::from(n);
    }
    let mut e = Dd::from_f64(tail * INV_FACT_14);
    // Each partial sum is at least 0.65 of its coefficient (|r·e| ≤ 0.35·c): no
    // cancellation.
    for c in EXP_DD.iter().rev() {
        e = c.add_same_sign(r.mul(e));
    }
    (e, k as i32)
}

/// `x ** y` as C's `pow(x, y)`, correctly rounded for finite `x > 0` (and for `x < 0`
/// with a whole `y`) whenever the result is a normal double: `e^(y·ln x)` carried with
/// about 100 correct bits in double-double arithmetic and rounded once. The exact power
/// is then rounded correctly unless it lies within 2⁻⁹⁰ (relative) of a point halfway
/// between two doubles; there it is taken to be that point (as it is for exact powers
/// such as `(m²)^1.5 = m³` with a 54-bit `m³`) and rounded to even. Everything else
/// (zeros, infinities, NaN, negative bases with fractional exponents, and results outside
/// `[e^−708.3, e^709.7]`: subnormal, overflowing, or within a hair of either) is
/// `libm::pow`'s answer, the C99 Annex F values.
///
/// [`pow_fast`] decides nearly every power, with the bits [`pow_accurate`] would give;
/// the rest go to [`pow_accurate`].
///
/// Inlined with [`pow_with`]'s square-root case tested first, so that a constant
/// exponent ½ (the bias corrections' `(1 − β₂ᵗ) ** 0.5`, every step of Adam, RAdam and
/// Adan) compiles to one square root instruction: through `pow_with` it cost Adam's
/// step ~9 ns, ~1 % of a 1K-param step. The test of `x` is made on the bits: `x > 0`
/// (+∞ included, NaN not) is `bits − 1 < bits(+∞)`, where a float comparison is a
/// library call on a core without a double-precision unit.
#[inline]
pub(crate) fn pow(x: f64, y: f64) -> f64 {
    if is(y, 0.5) && x.to_bits().wrapping_sub(1) < f64::INFINITY.to_bits() {
        return libm::sqrt(x);
    }
    pow_with(x, y, true)
}

/// [`pow`], on the fast path first if `fast`, else on the accurate path alone.
fn pow_with(x: f64, y: f64, fast: bool) -> f64 {
    // The tests on the bits (`crate::rules::{nonzero, is, lt}`): each float comparison
    // is a library call on a core without a double-precision unit.
    if !(finite(x) && finite(y) && nonzero(x) && nonzero(y) && !is(x, 1.0)) {
        return libm::pow(x, y);
    }
    if is(y, 0.5) && lt(0.0, x) {
        // √x is correctly rounded, so it is the correctly rounded x^0.5 (fdlibm's pow
        // takes the same shortcut). Adam's, RAdam's and Adan's √(bias correction) come
        // here every step: on an FPU without doubles the general path costs ~60 000
        // instructions, the square root a few hundred.
        return libm::sqrt(x);
    }
    // x is finite and nonzero here: negative is its sign bit (`lt(x, 0.0)` became a
    // float comparison again).
    if x.is_sign_negative() {
        if libm::trunc(y) != y {
            return libm::pow(x, y); // NaN
        }
        // |y| < 2⁵³ on the high word (2⁵³'s low word is 0): LLVM hoisted the float
        // comparison above the branch, a library call every step on a core without a
        // double-precision unit.
        let below_2_53 = ((y.to_bits() >> 32) as u32) << 1 < 0x4340_0000 << 1;
        let odd = below_2_53 && (y as i64) & 1 == 1;
        let magnitude = pow_with(-x, y, fast);
        return if odd { -magnitude } else { magnitude };
    }
    if fast && let Some(p) = pow_fast(x, y) {
        return p;
    }
    pow_accurate(x, y)
}

/// `x ** y` for finite `x > 0` (not 1) and finite `y ≠ 0`: [`pow`]'s accurate path.
fn pow_accurate(x: f64, y: f64) -> f64 {
    let l = ln_dd(x);
    let p = two_prod(y, l.hi);
    let z = quick_two_sum(p.hi, p.lo + y * l.lo);
    // e^z is a normal double for z in [ln 2⁻¹⁰²², ln 2¹⁰²⁴) ≈ [−708.40, 709.78]; NaN
    // (an overflowed split of a huge y) and anything outside go to libm.
    if !(-708.3..=709.7).contains(&z.hi) {
        return libm::pow(x, y);
    }
    let (e, k) = exp_dd(z);
    let mut hi = e.hi;
    // hi = round(hi + lo); within 2⁻⁹⁰ of a halfway point, take the even neighbour.
    if e.lo != 0.0 {
        let toward = if e.lo > 0.0 {
            f64::from_bits(hi.to_bits() + 1)
        } else {
            f64::from_bits(hi.to_bits() - 1)
        };
        let half = (toward - hi) * 0.5;
        if (e.lo - half).abs() < hi * f64::from_bits(0x3A50_0000_0000_0000) // 2⁻⁹⁰
            && hi.to_bits() & 1 == 1
        {
            hi = toward;
        }
    }
    // Exact: the result is normal (k ≥ −1022, or the product is at least 2⁻¹⁰²²).
    let scale = |k: i32| f64::from_bits(((k + 1023) as u64) << 52);
    if k > 1023 {
        hi * scale(k - 1) * 2.0
    } else if k < -1021 {
        hi * scale(k + 1) * 0.5
    } else {
        hi * scale(k)
    }
}

/// The high half `⌊a·b / 2¹²⁸⌋` of the 256-bit product `a · b` ([`mul_wide`]'s), or
/// `mul_high_columns` on a core without a 32 × 32 → 64-bit multiply.
#[inline]
fn mul_high(a: u128, b: u128) -> u128 {
    #[cfg(not(gradstep_no_long_multiply))]
    {
        mul_wide(a, b).0
    }
    #[cfg(gradstep_no_long_multiply)]
    {
        mul_high_columns(a, b)
    }
}

/// [`mul_high`] from the products of the factors' 16-bit halves, each exact in a 32-bit
/// `MULS`, summed a column (halves `i` and `m − i`, at bit 16m) at a time, without the
/// 21 of 64 in the columns below bit 96 unless they may carry into bit 128: then it is
/// [`mul_wide_limbs`]' (compiled for the tests everywhere).
///
/// Column m sums at most 8 products, each at most (2¹⁶ − 1)², so it is below
/// (m + 1)·2³² for m < 8: the six below bit 96 add up to `L < 2³²·(1 + 2·2¹⁶ + … +
/// 6·2⁸⁰) < 2¹¹⁵`. The others' sum `S` is a multiple of 2⁹⁶, and `a·b = S + L` has the
/// high half of `S` unless bits 96..127 of `S` are at least `2³² − 2¹⁹` (a chance of
/// 2⁻¹³ on random operands).
#[cfg(any(test, gradstep_no_long_multiply))]
#[inline]
fn mul_high_columns(a: u128, b: u128) -> u128 {
    let halves =
        |x: u128| -> [u32; 8] { core::array::from_fn(|i| (x >> (16 * i)) as u32 & 0xFFFF) };
    let (ha, hb) = (halves(a), halves(b));
    // Below 8·2³² = 2³⁵.
    let column = |m: usize| -> u64 {
        (m.saturating_sub(7)..=m.min(7))
            .map(|i| u64::from(ha[i] * hb[m - i]))
            .sum()
    };
    // Bits 32n.. of S (columns 2n and 2n + 1, at bits 32n and 32n + 16) and the carry
    // from below: below 2³⁵ + 2⁵¹ + 2²⁰ < 2⁵², so the carry out stays below 2²⁰.
    let mut carry = 0u64;
    let mut word = |low: u64, high: u64| {
        let sum = carry + low + (high << 16);
        carry = sum >> 32;
        sum as u32
    };
    if word(column(6), column(7)) > u32::MAX - (1 << 19) {
        return mul_wide_limbs(a, b).0;
    }
    let (w4, w5) = (word(column(8), column(9)), word(column(10), column(11)));
    let (w6, w7) = (word(column(12), column(13)), word(column(14), 0));
    // Nothing is left in the carry: a·b < 2²⁵⁶.
    join_limbs([w4, w5, w6, w7])
}

/// The 128-bit number with 32-bit limbs `l`, least significant first.
#[cfg(any(test, gradstep_no_long_multiply))]
#[inline]
fn join_limbs(l: [u32; 4]) -> u128 {
    l.iter()
        .rev()
        .fold(0u128, |acc, &limb| acc << 32 | u128::from(limb))
}

/// `a · b` for signed fixed-point numbers with 127 fraction bits (`|a|, |b| < 1`), rounded
/// toward zero: the error is below one unit, 2⁻¹²⁷.
#[inline]
fn mul_q127(a: i128, b: i128) -> i128 {
    // |a|·2 < 2¹²⁸, and the quotient |a·b|/2¹²⁷ is below 2¹²⁷.
    let p = mul_high(a.unsigned_abs() << 1, b.unsigned_abs()) as i128;
    if (a ^ b) < 0 { -p } else { p }
}

/// The high half `⌊a·b / 2⁶⁴⌋` of the 128-bit product `a · b`, in 32-bit limbs where
/// the target has no 64-bit multiply (so that no `__multi3` is called).
#[inline]
fn mul_high64(a: u64, b: u64) -> u64 {
    #[cfg(target_pointer_width = "64")]
    {
        ((u128::from(a) * u128::from(b)) >> 64) as u64
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        mul_high64_limbs(a, b)
    }
}

/// [`mul_high64`] from four 32 × 32-bit products ([`mul_u32`]; compiled for the tests
/// everywhere).
#[cfg(any(test, not(target_pointer_width = "64")))]
#[inline]
fn mul_high64_limbs(a: u64, b: u64) -> u64 {
    let (a1, a0) = (a >> 32, a & 0xFFFF_FFFF);
    let (b1, b0) = (b >> 32, b & 0xFFFF_FFFF);
    let p = |x: u64, y: u64| mul_u32(x as u32, y as u32);
    let (p00, p01, p10, p11) = (p(a0, b0), p(a0, b1), p(a1, b0), p(a1, b1));
    // Below 3·2³²: its carry is the only one into the high half.
    let mid = (p00 >> 32) + (p01 & 0xFFFF_FFFF) + (p10 & 0xFFFF_FFFF);
    p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32)
}

/// `a · b` for signed fixed-point numbers with 63 fraction bits (`|a|, |b| < 1`), rounded
/// toward zero: the error is below one unit, 2⁻⁶³.
#[inline]
fn mul_q63(a: i64, b: i64) -> i64 {
    let p = mul_high64(a.unsigned_abs() << 1, b.unsigned_abs()) as i64;
    if (a ^ b) < 0 { -p } else { p }
}

/// [`mul_q127`] by `a·2⁶⁴`, for `a` with 63 fraction bits (`|a| < 1`, so `a·2⁶⁴` is `a`
/// in 2⁻¹²⁷ units): `mul_q127(i128::from(a) << 64, b)` bit for bit, in one 128 × 64-bit
/// product ([`mul_by_u64`]) rather than a 128 × 128-bit one.
#[inline]
fn mul_q127_by_q63(a: i64, b: i128) -> i128 {
    // mul_q127 takes ⌊(|a|·2⁶⁵)·|b| / 2¹²⁸⌋ = ⌊2|a|·|b| / 2⁶⁴⌋, and 2|a| < 2⁶⁴, so the
    // quotient is below |b| ≤ 2¹²⁷: it fits in an i128.
    let p = mul_by_u64(b.unsigned_abs(), a.unsigned_abs() << 1).0 as i128;
    if (a < 0) != (b < 0) { -p } else { p }
}

/// [`mul_q127`] of `a·2⁶⁴` by `b·2⁶⁴` (both with 63 fraction bits, `|a| < 1`, `|b| ≤ 1`):
/// `2·a·b` exactly, as the 256-bit product has no bits below 2¹²⁸ to truncate, in one
/// 64 × 64 → 128-bit product ([`mul_u64_wide`]).
#[inline]
fn mul_q127_q63s(a: i64, b: i64) -> i128 {
    // 2|a| ≤ 2⁶⁴ − 2 and |b| ≤ 2⁶³: the product is below 2¹²⁷.
    let p = mul_u64_wide(a.unsigned_abs() << 1, b.unsigned_abs()) as i128;
    if (a < 0) != (b < 0) { -p } else { p }
}

/// The exact 128-bit product `a · b`: LLVM's 64 × 64 → 128-bit product (one `MUL` and
/// `UMULH` on 64-bit targets, `UMULL`/`UMLAL`s on the Cortex-M4F), or `mul_u64_limbs`
/// on a core without a 32 × 32 → 64-bit multiply, where LLVM calls `__aeabi_lmul`.
#[inline]
fn mul_u64_wide(a: u64, b: u64) -> u128 {
    #[cfg(not(gradstep_no_long_multiply))]
    {
        u128::from(a) * u128::from(b)
    }
    #[cfg(gradstep_no_long_multiply)]
    {
        mul_u64_limbs(a, b)
    }
}

/// [`mul_u64_wide`] from four 32 × 32-bit products ([`mul_u32`]; compiled for the tests
/// everywhere).
#[cfg(any(test, gradstep_no_long_multiply))]
#[inline]
fn mul_u64_limbs(a: u64, b: u64) -> u128 {
    let (a1, a0) = ((a >> 32) as u32, a as u32);
    let (b1, b0) = ((b >> 32) as u32, b as u32);
    let (p00, p01) = (mul_u32(a0, b0), mul_u32(a0, b1));
    let (p10, p11) = (mul_u32(a1, b0), mul_u32(a1, b1));
    // Below 3·2³²: bits 32..95 of the product, its carry the only one into the top half.
    let mid = (p00 >> 32) + (p01 & 0xFFFF_FFFF) + (p10 & 0xFFFF_FFFF);
    // Below 2⁶⁴, as the whole product is below 2¹²⁸.
    let high = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    u128::from(high) << 64 | u128::from(mid << 32 | p00 & 0xFFFF_FFFF)
}

/// The low 128 bits of `a · b`: LLVM's product by a 16-bit number, or
/// `mul_by_u16_limbs` on a core without a 32 × 32 → 64-bit multiply.
#[inline]
fn mul_by_u16(a: u128, b: u16) -> u128 {
    #[cfg(not(gradstep_no_long_multiply))]
    {
        a.wrapping_mul(u128::from(b))
    }
    #[cfg(gradstep_no_long_multiply)]
    {
        mul_by_u16_limbs(a, b)
    }
}

/// [`mul_by_u16`] in 32-bit limbs: products of the three low limbs by `b` ([`mul_u32`],
/// two 16 × 16-bit `MULS` each as `b`'s high half is 0) and the top limb's low 32 bits
/// (one `MULS`), where LLVM would call `__aeabi_lmul` for a 128-bit product (compiled
/// for the tests everywhere).
#[cfg(any(test, gradstep_no_long_multiply))]
#[inline]
fn mul_by_u16_limbs(a: u128, b: u16) -> u128 {
    let mut r = 0u128;
    let mut carry = 0u64;
    for i in 0..3 {
        // (2³² − 1)·(2¹⁶ − 1) + 2¹⁶ < 2⁴⁸: no overflow, and the carry stays below 2¹⁶.
        let t = mul_u32((a >> (32 * i)) as u32, u32::from(b)) + carry;
        r |= u128::from(t as u32) << (32 * i);
        carry = t >> 32;
    }
    // Bits 96..127; what the top limb's product and the carry leave above them is
    // dropped, as the wrapping product drops it (a 32-bit product: LLVM would make the
    // 64-bit one that the other limbs take a call of `__aeabi_lmul` here).
    let top = ((a >> 96) as u32)
        .wrapping_mul(u32::from(b))
        .wrapping_add(carry as u32);
    r | u128::from(top) << 96
}

/// The low 64 bits of `a · b`: LLVM's product, or on a core without a 32 × 32 → 64-bit
/// multiply, two products of `a`'s words by `b` (`mul_u32` and a 32-bit `MULS`), not
/// a call of `__aeabi_lmul`.
#[inline]
fn mul_u64_by_u16(a: u64, b: u16) -> u64 {
    #[cfg(not(gradstep_no_long_multiply))]
    {
        a.wrapping_mul(u64::from(b))
    }
    #[cfg(gradstep_no_long_multiply)]
    {
        mul_u64_by_u16_limbs(a, b)
    }
}

/// [`mul_u64_by_u16`] from its words (compiled for the tests everywhere).
#[cfg(any(test, gradstep_no_long_multiply))]
#[inline]
fn mul_u64_by_u16_limbs(a: u64, b: u16) -> u64 {
    // The high word's product counts only modulo 2³², as it is shifted up 32 bits.
    let high = ((a >> 32) as u32).wrapping_mul(u32::from(b));
    mul_u32(a as u32, u32::from(b)).wrapping_add(u64::from(high) << 32)
}

/// `mant · 2^exp` with `mant` shifted to `[2¹²⁷, 2¹²⁸)`, or `None` for 0.
fn normalized(mant: u128, exp: i32) -> Option<(u128, i32)> {
    let (high, low) = ((mant >> 64) as u64, mant as u64);
    let shift = if high != 0 {
        leading_zeros64(high)
    } else {
        64 + leading_zeros64(low)
    };
    (shift < 128).then(|| (mant << shift, exp - shift as i32))
}

/// `mant · 2^exp` with `mant` shifted to `[2⁶³, 2⁶⁴)`, or `None` for 0: the top half of
/// [`normalized`]`(u128::from(mant), exp + 64)`, whose low half is 0, in a 64-bit
/// leading-zero count rather than a 128-bit one.
#[inline]
fn normalized64(mant: u64, exp: i32) -> Option<(u64, i32)> {
    let shift = leading_zeros64(mant);
    (shift < 64).then(|| (mant << shift, exp - shift as i32))
}

/// `x.leading_zeros()`, on a core without `CLZ` (the same Thumb-1-only cores as have no
/// 32 × 32 → 64-bit multiply, `gradstep_no_long_multiply`) from the word that holds
/// the top set bit (`leading_zeros_search`) rather than from LLVM's two calls of
/// `__clzsi2` (about 30 instructions each on the Cortex-M0).
#[inline]
fn leading_zeros64(x: u64) -> u32 {
    #[cfg(not(gradstep_no_long_multiply))]
    {
        x.leading_zeros()
    }
    #[cfg(gradstep_no_long_multiply)]
    {
        leading_zeros64_words(x)
    }
}

/// [`leading_zeros64`] by words (compiled for the tests everywhere).
#[cfg(any(test, gradstep_no_long_multiply))]
#[inline]
fn leading_zeros64_words(x: u64) -> u32 {
    let high = (x >> 32) as u32;
    if high != 0 {
        leading_zeros_search(high)
    } else {
        32 + leading_zeros_search(x as u32)
    }
}

/// `x.leading_zeros()` by binary search: five steps of a compare, and a shift and an add
/// where the upper part is 0 (compiled for the tests everywhere).
#[cfg(any(test, gradstep_no_long_multiply))]
#[inline]
fn leading_zeros_search(mut x: u32) -> u32 {
    if x == 0 {
        return 32;
    }
    let mut n = 0;
    for bits in [16, 8, 4, 2, 1] {
        // The top `bits` bits of x are 0: move them out.
        if x >> (32 - bits) == 0 {
            (x, n) = (x << bits, n + bits);
        }
    }
    n
}

/// ln 2 in units of 2⁻¹¹⁶ (rounded to nearest, as every constant below;
/// `kernels/tests/data/pow_tables.py` prints them).
const LN2_116: i128 = 0x000B_1721_7F7D_1CF7_9ABC_9E3B_3980_3F2F;
/// For `m` in `[1 + i/128, 1 + (i + 1)/128)`: `R` with `r = R/512` near `1/m` (`R = 512`
/// and `R = 256` at the two ends, so that `ln x` near 1 is `ln(1 + u)` alone), and
/// `|m·r − 1| ≤ 2⁻⁷`.
const LOG_R: [u16; 128] = [
    512, 506, 502, 498, 495, 491, 487, 484, 480, 477, 473, 470, 466, 463, 460, 457, 454, 450, 447,
    444, 441, 438, 435, 433, 430, 427, 424, 421, 419, 416, 413, 411, 408, 406, 403, 401, 398, 396,
    394, 391, 389, 387, 384, 382, 380, 378, 376, 373, 371, 369, 367, 365, 363, 361, 359, 357, 355,
    353, 351, 350, 348, 346, 344, 342, 340, 339, 337, 335, 334, 332, 330, 329, 327, 325, 324, 322,
    320, 319, 317, 316, 314, 313, 311, 310, 308, 307, 306, 304, 303, 301, 300, 299, 297, 296, 295,
    293, 292, 291, 289, 288, 287, 286, 284, 283, 282, 281, 279, 278, 277, 276, 275, 274, 272, 271,
    270, 269, 268, 267, 266, 265, 264, 263, 262, 261, 260, 259, 258, 256,
];
/// `−ln r` for each [`LOG_R`], in units of 2⁻¹¹⁶.
const LOG_MINUS_LN_R: [u128; 128] = [
    0x0000_0000_0000_0000_0000_0000_0000_0000,
    0x0000_3048_9147_1145_5441_2C58_4DFC_2680,
    0x0000_50CA_A496_6033_0273_250C_6FFB_E6DA,
    0x0000_718F_4BB0_52AB_C631_FCF5_9794_2799,
    0x0000_8A4F_1F20_02D4_6756_5BE9_7031_4149,
    0x0000_AB8A_E260_1E77_7722_03B8_9D7F_2550,
    0x0000_CD0C_3DAB_9EF3_DD1B_13B2_6F29_8AA3,
    0x0000_E65B_9E6E_ED96_5C36_E09F_5FE2_058D,
    0x0001_0859_8B59_E3A0_688A_3FD9_BF50_3373,
    0x0001_2207_B5C7_8549_D8CF_C10C_7BEC_556B,
    0x0001_4485_E03D_BDFA_D46E_8D26_AB6F_1B8F,
    0x0001_5E95_A4D9_791C_B7CE_1D17_1711_42A0,
    0x0001_8197_E2F4_0E3F_01B9_F2DF_FBEE_D429,
    0x0001_9C0C_32D4_D254_83F6_17C7_9982_A64D,
    0x0001_B6AC_88DA_D5B1_BDFF_5022_5C6B_4C1D,
    0x0001_D179_7882_1936_433B_5EFB_EED5_A53D,
    0x0001_EC73_9830_A111_FCBA_80CD_D0FE_581F,
    0x0002_10B3_16B3_C740_D114_7FB3_7EA0_66E6,
    0x0002_2C19_0049_64F6_1695_4804_F1EA_02B4,
    0x0002_47AE_2549_3840_348E_3F4F_7D71_4B5A,
    0x0002_6373_29A7_49F0_98EE_3A50_80FC_CDBF,
    0x0002_7F68_B4B3_2519_713C_0CAE_5597_D4D5,
    0x0002_9B8F_712F_7838_F36C_15C3_FE1D_05C3,
    0x0002_AE6F_9920_319B_AA7A_6B88_7F61_C6E3,
    0x0002_CAE9_D7D1_8267_3E2C_B0F0_B9DE_412C,
    0x0002_E797_20E9_FA29_956F_2FFF_A598_7F9D,
    0x0003_0478_2CAA_3478_376E_698C_7A0C_3F4C,
    0x0003_218D_B73F_979B_282A_239C_A0D6_CCA5,
    0x0003_350E_F1BD_7547_0FA3_EFEC_38FC_3F49,
    0x0003_527D_A791_5B3C_6DE5_7D4E_F4B9_01BA,
    0x0003_7022_E617_047A_41A0_EE73_5D9F_0EC7,
    0x0003_8405_1562_FF36_8F88_D51C_29D2_F849,
    0x0003_A206_FE4C_ABCF_6B03_1492_1238_D110,
    0x0003_B627_B61A_9128_06A8_4752_7E5B_2E21,
    0x0003_D488_93E0_955E_9166_3732_A35F_C5FF,
    0x0003_E8E9_6269_BE45_1B60_E208_4A25_54A7,
    0x0004_07AB_9589_B1A4_3DCF_ADE8_5AD9_A3CF,
    0x0004_1C4E_1813_5618_9CDB_16ED_4E91_387D,
    0x0004_310B_59D8_58B8_C458_B1E7_5744_7B90,
    0x0004_5059_FBCD_9DE0_C078_24DA_AF53_E9BA,
    0x0004_655B_4EE6_F0BE_97B9_D68D_50A1_5CA8,
    0x0004_7A78_59E2_267D_1512_C374_9A1E_4E7F,
    0x0004_9A58_844D_36E4_9E0E_FADD_9DB0_2AA7,
    0x0004_AFBC_1F37_24D4_E7D2_5280_279F_7832,
    0x0004_C53C_7874_D738_EC29_66F6_1A3C_2384,
    0x0004_DAD9_DDAF_8445_BB36_C3C5_DF1E_9C96,
    0x0004_F094_9DCC_CC60_ED52_D81A_F571_39D4,
    0x0005_1164_7814_E7D2_2D4E_DADB_84F0_5B4F,
    0x0005_2769_FCEF_3107_B334_DAF4_B99A_9B1C,
    0x0005_3D8D_FAEE_A603_EA73_4CED_B46D_BAF5,
    0x0005_53D0_C6DE_F86A_2553_0244_2546_EBB7,
    0x0005_6A32_B6EF_B7E8_3864_F508_1307_F229,
    0x0005_80B4_22BC_247A_FA45_DB7C_FD92_3034,
    0x0005_9755_6353_3802_A89F_A5B8_B7B7_F641,
    0x0005_AE16_D33F_E8FF_33A8_69B9_281A_7BD4,
    0x0005_C4F8_CE91_A85E_E6C9_85FA_51C7_2CE0,
    0x0005_DBFB_B2E5_1C5D_2EE7_2614_B15C_9DAF,
    0x0005_F31F_DF6D_1A83_67BC_7FDC_323C_2D27,
    0x0006_0A65_B4FB_E2F2_AD55_CFAC_9449_427F,
    0x0006_1615_5DDB_72FE_AB79_999B_BC4E_AC97,
    0x0006_2D8E_6A22_CB7D_28F0_D0C7_DC7C_FCF8,
    0x0006_452A_18D6_FDA2_652B_4467_3E0D_3AF2,
    0x0006_5CE8_D0C4_D5AB_73B1_6BF4_983E_3860,
    0x0006_74CA_FA85_7B4E_C30F_7979_FA7C_30D7,
    0x0006_8CD1_0089_3E9E_322B_FCEB_CFA8_EE64,
    0x0006_98E1_97EA_F43A_F75C_7DD5_45CB_45CC,
    0x0006_B11E_3408_141B_C0E8_CC8A_54AE_F893,
    0x0006_C97F_BED8_32CB_8306_3BA2_4BAD_F53A,
    0x0006_D5BE_8111_8A42_5494_B610_6653_77F1,
    0x0006_EE58_46E0_38BE_C2DF_A053_3364_3C21,
    0x0007_0718_1A4F_E8E7_6403_FF47_0C01_55D1,
    0x0007_1386_6E11_C8F0_6919_4983_34FF_95A4,
    0x0007_2C80_34B3_AD90_B9D9_A2CB_5173_DD77,
    0x0007_45A1_3527_D1AB_9D98_A582_7179_5280,
    0x0007_5240_91B7_BE9A_DD7F_4D3B_3D40_6B6D,
    0x0007_6B9D_5213_2585_6F4A_7C8E_7A59_9F21,
    0x0007_8522_8689_C9B3_6537_E337_5B20_47FB,
    0x0007_91F4_74CB_99DF_865B_9557_8B7D_F4AF,
    0x0007_ABB7_4BAB_2643_0CEB_5E4D_2C8F_6F08,
    0x0007_B8A8_55AD_04F9_3FA2_D238_1286_A076,
    0x0007_D2A9_FB80_C64B_3795_BC05_2A2D_0DAA,
    0x0007_DFBA_B9AD_5D87_3001_ACAB_B961_391D,
    0x0007_F9FC_63AC_0F4F_8571_8A64_0C33_F728,
    0x0008_072D_72D9_03D5_88B8_9D1B_09C7_0C40,
    0x0008_21B0_5F3B_01D6_7740_30D5_8C3F_7E2F,
    0x0008_2F02_60D5_1603_0186_2E53_E393_7600,
    0x0008_3C5F_8299_E2B4_0912_0F6F_AFE8_FBB7,
    0x0008_573B_7168_2A7D_21AE_21F9_F89C_1AB8,
    0x0008_64BA_644A_18E6_E053_E6E5_DC36_32D9,
    0x0008_7FDA_A109_D23A_EF77_DD5C_D7CC_9430,
    0x0008_8D7C_11E3_AD53_CDC2_2311_1A70_7B6E,
    0x0008_9B29_295F_8432_6169_8875_2F84_450B,
    0x0008_B6A6_9C60_8CFD_3AEA_11CA_EC41_6324,
    0x0008_C477_2079_1E53_313B_E2AD_1941_5FE2,
    0x0008_D253_9C5B_D19E_2B12_6042_7930_FAF2,
    0x0008_EE30_CEF0_34A2_0DA8_5D9C_1C40_BB94,
    0x0008_FC31_AFE3_0B2C_6DE9_B00B_F167_E95E,
    0x0009_0A3E_DD23_D1C9_D579_851B_8B67_18FF,
    0x0009_267E_737C_06CD_34A4_D1A4_2291_8C00,
    0x0009_34B1_089A_6DC9_3C1D_F5BB_3B60_554E,
    0x0009_42F0_4216_51C1_C4D8_66D5_F21C_00A6,
    0x0009_513C_3687_6083_695F_3CBC_416A_2418,
    0x0009_6DFA_ABD8_6FA1_646B_E118_8FBC_94E3,
    0x0009_7C6D_5B1B_19BC_CCFD_D1FE_BC8A_10F3,
    0x0009_8AED_221A_0345_8B61_D2F8_9321_647B,
    0x0009_997A_18A5_6BCA_D278_562E_AFD0_8B55,
    0x0009_B6BB_F4E9_A7EB_5F9E_AF9E_EA07_1993,
    0x0009_C571_0B8C_BB73_A42A_2554_B2DD_461A,
    0x0009_D433_B392_B888_9700_F448_CE4D_660A,
    0x0009_E304_061B_5FDA_9193_0603_D87B_6DF8,
    0x0009_F1E2_1C8C_7BB6_2B2C_E7A0_C971_7325,
    0x000A_00CE_1092_E549_8C36_7879_C5A3_0CD1,
    0x000A_1ECF_F97C_91E2_67B0_B7EF_AE08_E598,
    0x000A_2DE6_2326_449D_0A2D_8011_A6C0_54F7,
    0x000A_3D0A_93F4_5169_A4A8_3594_FAB0_88C1,
    0x000A_4C3D_6706_D5D8_3ED1_5C6B_2F3E_C0FC,
    0x000A_5B7E_B7CB_860F_B88A_F6A6_2A0D_EC6E,
    0x000A_6ACE_A1FE_D5D0_F659_49C0_A345_AD74,
    0x000A_7A2D_41AD_270C_9D74_9362_382A_7688,
    0x000A_899A_B333_FE2B_9CA6_4CC3_D52C_8747,
    0x000A_9917_1343_3C2B_9988_BA4A_EA61_4D05,
    0x000A_A8A2_7EDE_5EB1_3ACD_4CA4_5C1E_0797,
    0x000A_B83D_135D_C633_3017_FE66_07BA_902F,
    0x000A_C7E6_EE70_0261_C6FF_CBA5_7A2D_279F,
    0x000A_D7A0_2E1B_24EF_D31D_6086_4FD9_49B5,
    0x000A_E768_F0BE_1AE2_AD02_5415_58CF_BBB3,
    0x000A_F741_5512_0C90_11C0_66D2_35EE_6307,
    0x000B_1721_7F7D_1CF7_9ABC_9E3B_3980_3F2F,
];
/// `(−1)ⁿ/(n + 1)` for n = 1..=4 in units of 2⁻¹²⁷: `ln(1 + u)/u − 1 = Σ (−u)ⁿ/(n + 1)`.
const LOG_SERIES: [i128; 4] = [
    -0x4000_0000_0000_0000_0000_0000_0000_0000,
    0x2AAA_AAAA_AAAA_AAAA_AAAA_AAAA_AAAA_AAAB,
    -0x2000_0000_0000_0000_0000_0000_0000_0000,
    0x1999_9999_9999_9999_9999_9999_9999_999A,
];
/// `(−1)ⁿ/(n + 1)` for n = 5..=12 in units of 2⁻⁶³.
const LOG_SERIES_TAIL: [i64; 8] = [
    -0x1555_5555_5555_5555,
    0x1249_2492_4924_9249,
    -0x1000_0000_0000_0000,
    0x0E38_E38E_38E3_8E39,
    -0x0CCC_CCCC_CCCC_CCCD,
    0x0BA2_E8BA_2E8B_A2E9,
    -0x0AAA_AAAA_AAAA_AAAB,
    0x09D8_9D89_D89D_89D9,
];
/// 64/ln 2 in units of 2⁻⁵⁶.
const INV_LN2_64_56: i128 = 0x0000_0000_0000_0000_5C55_1D94_AE0B_F85E;
/// (ln 2)/64 in units of 2⁻¹¹⁶.
const LN2_64_116: i128 = 0x0000_2C5C_85FD_F473_DE6A_F278_ECE6_00FD;
/// `2^(j/64)` for j = 0..64 in units of 2⁻¹²⁷.
const EXP_TABLE: [u128; 64] = [
    0x8000_0000_0000_0000_0000_0000_0000_0000,
    0x8164_D1F3_BC03_0773_7BE5_6527_BD14_DEF5,
    0x82CD_8698_AC2B_A1D7_3E2A_475B_4652_0BFF,
    0x843A_28C3_ACDE_4046_1AF9_2ECA_13FD_1582,
    0x85AA_C367_CC48_7B14_C5C9_5B8C_2154_C1B2,
    0x871F_6196_9E8D_1010_3A17_27C5_7B52_A956,
    0x8898_0E80_92DA_8527_5DF8_D76C_98C6_7563,
    0x8A14_D575_496E_FD9A_080C_A1D9_2C36_80C2,
    0x8B95_C1E3_EA8B_D6E6_FBE4_6287_58A5_3C90,
    0x8D1A_DF5B_7E5B_A9E5_B4C7_B496_8E41_AD36,
    0x8EA4_398B_45CD_53C0_2DC0_144C_8783_D4C6,
    0x9031_DC43_1466_B1DC_7758_14A8_494E_87E2,
    0x91C3_D373_AB11_C336_0FD6_D8E0_AE5A_C9D8,
    0x935A_2B2F_13E6_E92B_D339_940E_9D92_4EE7,
    0x94F4_EFA8_FEF7_0961_2E8A_FAD1_2551_DE54,
    0x9694_2D37_2018_5A00_48EA_9B68_3A9C_22C5,
    0x9837_F051_8DB8_A96F_46AD_2318_2E42_F6F6,
    0x99E0_4593_20B7_FA64_E430_86CB_34B5_FCAF,
    0x9B8D_39B9_D54E_5538_A2A8_17A2_A3CC_3F1F,
    0x9D3E_D9A7_2CFF_B750_DE49_4CF0_50E9_9B0B,
    0x9EF5_3260_91A1_11AD_A091_1F09_EBB9_FDD1,
    0xA0B0_510F_B971_4FC2_192D_C79E_DB0F_D9A9,
    0xA270_4303_0C49_6818_9B7A_04EF_80CF_DEA8,
    0xA435_15AE_09E6_809E_0D1D_B483_1781_E1EF,
    0xA5FE_D6A9_B151_38EA_1CBD_7F62_1710_701B,
    0xA7CD_93B4_E965_3569_9EC5_B4D5_039F_72AF,
    0xA9A1_5AB4_EA7C_0EF8_541E_24EC_3531_FA73,
    0xAB7A_39B5_A93E_D337_6580_23B2_759E_0079,
    0xAD58_3EEA_42A1_4AC6_4980_A8C8_F59A_2EC4,
    0xAF3B_78AD_690A_4374_DF26_101C_CBB3_5033,
    0xB123_F581_D2AC_258F_87D0_37E9_6D21_5D8E,
    0xB311_C412_A911_2489_3ECF_14DC_798A_519C,
    0xB504_F333_F9DE_6484_597D_89B3_754A_BE9F,
    0xB6FD_91E3_28D1_7791_0716_5F0D_DD54_1A5A,
    0xB8FB_AF47_62FB_9EE9_1B87_9778_566B_65A2,
    0xBAFF_5AB2_133E_45FB_74D5_19D2_4593_838C,
    0xBD08_A39F_580C_36BE_A881_1FB6_6D0F_AF7A,
    0xBF17_99B6_7A73_1082_E815_D0AB_CBF0_B851,
    0xC12C_4CCA_6670_9456_7C45_7D59_A500_87B5,
    0xC346_CCDA_2497_6407_20EC_8561_28B8_3A42,
    0xC567_2A11_5506_DADD_3E2A_D0C9_64DD_9F37,
    0xC78D_74C8_ABB9_B15C_C13A_2E39_76C0_277E,
    0xC9B9_BD86_6E2F_27A2_80E1_F92A_0511_697E,
    0xCBEC_14FE_F272_7C5C_F490_7C8F_45EB_F6DD,
    0xCE24_8C15_1F84_80E3_E235_838F_95F2_C6ED,
    0xD063_33DA_EF2B_2594_D6D4_5C65_59A4_D502,
    0xD2A8_1D91_F12A_E45A_1224_8E57_C3DE_4028,
    0xD4F3_5AAB_CFED_FA1F_5921_DEFF_A626_2C5B,
    0xD744_FCCA_D69D_6AF4_39A6_8BB9_902D_3FDE,
    0xD99D_15C2_78AF_D7B5_FE87_3DEC_A3E1_2BAC,
    0xDBFB_B797_DAF2_3755_3D84_0D5A_9E29_AA64,
    0xDE60_F482_5E0E_9123_DD07_A2D9_E846_6859,
    0xE0CC_DEEC_2A94_E111_0658_9504_8DD3_33CA,
    0xE33F_8972_BE8A_5A51_09BF_E907_9598_0EED,
    0xE5B9_06E7_7C83_48A8_1E5E_8F4A_4EDB_B0ED,
    0xE839_6A50_3C4B_DC68_7917_90D0_AC70_C7DE,
    0xEAC0_C6E7_DD24_392E_D02D_75B3_706E_54FB,
    0xED4F_301E_D994_2B84_600D_2DB6_A64B_FB12,
    0xEFE4_B99B_DCDA_F5CB_4656_1CF6_948D_B913,
    0xF281_773C_59FF_B139_E898_0A9C_C8F4_7A4B,
    0xF525_7D15_2486_CC2C_7B9D_0C7A_ED98_0FC3,
    0xF7D0_DF73_0AD1_3BB8_FE90_D496_D60F_B6EB,
    0xFA83_B2DB_722A_033A_7C25_BB14_315D_7FCD,
    0xFD3E_0C0C_F486_C174_853F_3A59_31E0_EE03,
];
/// `1/n!` for n = 2, 3 in units of 2⁻¹²⁷.
const EXP_SERIES: [i128; 2] = [
    0x4000_0000_0000_0000_0000_0000_0000_0000,
    0x1555_5555_5555_5555_5555_5555_5555_5555,
];
/// `1/n!` for n = 4..=8 in units of 2⁻⁶³.
const EXP_SERIES_TAIL: [i64; 5] = [
    0x0555_5555_5555_5555,
    0x0111_1111_1111_1111,
    0x002D_82D8_2D82_D82E,
    0x0006_8068_0680_6807,
    0x0000_D00D_00D0_0D01,
];

/// Where `z = y·ln x` may go on the fast path: `[−708.25, 709.6875]` in units of 2⁻¹¹⁶,
/// inside the accurate path's `[−708.3, 709.7]` by far more than either's error in `z`,
/// so that both send the same powers to libm.
const Z_MIN_116: i128 = -(2833 << 114);
/// See [`Z_MIN_116`].
const Z_MAX_116: i128 = 11355 << 112;

/// How far, in units of the last of 128 bits, the fast approximation must be from a
/// point halfway between two doubles for [`pow_fast`] to round it: 2⁵⁶ units, between
/// 2⁻⁷² and 2⁻⁷¹ of the value (its error is below 2⁻⁸³).
const FAST_BOUND: u128 = 1 << 56;

/// `x ** y` for finite `x > 0` (not 1) and finite `y ≠ 0` on a fast path in 128-bit
/// fixed point (a table-driven `ln` and `exp`, integer multiplies only), or `None` where
/// it cannot decide the rounding: then [`pow_accurate`] gives the same bits.
///
/// Ziv's strategy (as CORE-MATH and crlibm): the approximation `a` has relative error
/// below 2⁻⁸³, and `a` is rounded only if no point halfway between two doubles lies
/// within [`FAST_BOUND`] (≥ 2⁻⁷² relative) of it. The exact power then lies on the same
/// side of every halfway point as `a`, more than 2⁻⁷² − 2⁻⁸³ away, so `a`'s rounding is
/// the correctly rounded power, and it is also what [`pow_accurate`] returns: that path
/// errs by about 2⁻¹⁰⁰ and departs from correct rounding only within 2⁻⁹⁰ of a halfway
/// point. The error, operation by operation (`uₙ` below is one unit of the last place,
/// every fixed-point product rounding toward zero by less than one unit):
///
/// 1. `x = M·2^(k−52)` exactly, `M` a 53-bit integer. The table entry `i` (the 7 bits of
///    `M` after the leading one) gives `r = R/512` (`R` a 9- or 10-bit integer, 1 and ½
///    at the two ends) and `−ln r` rounded to 2⁻¹¹⁶ (error ≤ 2⁻¹¹⁷). `u = m·r − 1 =
///    (M·R − 2⁶¹)·2⁻⁶¹` is exact (`M·R < 2⁶²`) and `|u| ≤ 2⁻⁷`.
/// 2. `ln(1 + u) = u·(1 + G)`, `G = Σₙ₌₁^∞ (−u)ⁿ/(n + 1)`, summed to n = 12 by Horner in
///    signed fixed point: truncation ≤ |u|¹³/14/(1 − |u|) < 2⁻⁹⁴·⁸. The inner levels
///    (n = 12..5) are in 2⁻⁶³ units (64-bit products): each product and coefficient
///    errs by < 2⁻⁶³ and ≤ 2⁻⁶⁴, damped by |u| ≤ 2⁻⁷ per level, so that level errs by
///    < 2⁻⁶²·⁴, and `G` multiplies it by u⁵: < 2⁻⁹⁷·⁴. The outer levels, in 2⁻¹²⁷ units,
///    add < 2⁻¹²⁶. So `G` is within 2⁻⁹⁴·⁸ + 2⁻⁹⁷·⁴ + 2⁻¹²⁶ < 2⁻⁹⁴·⁵ of its value.
/// 3. `ln x = A + u·(1 + G)`, `A = k·ln 2 − ln r`, both constants rounded to 2⁻¹¹⁶ (and
///    `−ln ½` is the same constant as `ln 2`, so `A` is exactly 0 exactly when `x` is in
///    `[1, 1 + 2⁻⁷)` or `[1 − 2⁻⁸, 1)`).
///    - `A = 0`: `ln x = u·(1 + G)` as a 128-bit float, one product truncated (2⁻¹²⁵·⁹
///      relative), `1 + G ≥ 1 − 2⁻⁸`: relative error < 2⁻⁹⁴·⁴.
///    - `A ≠ 0`: `|ln x| ≥ 2⁻⁸`, and `|ln x| ≥ (|k| − 1)·ln 2`. Fixed point in 2⁻¹¹⁶
///      units: `A` errs by ≤ (|k| + 1)·2⁻¹¹⁷, `u·G` by |u|·2⁻⁹⁴·⁵ + 2⁻¹²⁷ + 2⁻¹¹⁶ (the
///      shift from 2⁻¹²⁷ units): relative error ≤ 2⁻¹⁰⁸ + 2⁻⁹³·⁵ + 2⁻¹⁰⁸ < 2⁻⁹³·⁴.
/// 4. `z = y·ln x`: one 128-bit product (2⁻¹²⁶ relative), then fixed point in 2⁻¹¹⁶ units
///    (2⁻¹¹⁶). Only `z` in `[−708.25, 709.6875]` goes on (`|z| < 2⁹·⁴⁸`): the error of
///    `z` is below 2⁹·⁴⁸·(2⁻⁹³·⁴ + 2⁻¹²⁶) + 2⁻¹¹⁶ < 2⁻⁸³·⁹.
/// 5. `K = round(z·64/ln 2)` (to within 2⁻⁴⁴), `j = K mod 64`, `r = z − K·(ln 2)/64`
///    with `(ln 2)/64` rounded to 2⁻¹¹⁶: `|K| < 2¹⁶`, so r errs by < 2⁻¹⁰¹ more, and
///    `|r| < 0.005416 < 2⁻⁷·⁵²`.
/// 6. `eʳ − 1 = Σₙ₌₁⁸ rⁿ/n!` by Horner: truncation ≤ |r|⁹/9!·(1 + |r|) < 2⁻⁸⁶·². The
///    inner levels (1/8! .. 1/4!) are in 2⁻⁶³ units with `r` truncated to 2⁻⁶³ (times
///    the next level, ≤ 1/119: < 2⁻⁶⁹·⁸): that level errs by < 2⁻⁶²·⁴, multiplied by
///    r⁴ < 2⁻³⁰: < 2⁻⁹²·⁴. The outer levels, in 2⁻¹²⁷ units, add < 2⁻¹²⁵.
/// 7. `x^y = 2^(⌊K/64⌋) · 2^(j/64) · eʳ`: the table's `2^(j/64)` rounded to 2⁻¹²⁸,
///    one product truncated (< 2⁻¹²⁷ on a value ≥ 0.99): < 2⁻¹²⁶.
///
/// The errors of `z` and `r` (4, 5) move `eᶻ` by a relative 2⁻⁸³·⁹ + 2⁻¹⁰¹; with 6 and 7
/// the total is below 2⁻⁸³·⁹ + 2⁻¹⁰¹ + 2⁻⁸⁶·² + 2⁻⁹²·⁴ + 2⁻¹²⁴ < 2⁻⁸³·⁶ < 2⁻⁸³ (the
/// largest seen in `the_fast_approximation_is_within_its_bound` is 2⁻⁸⁶·²). The result
/// is normal: `e^−708.25 > 2⁻¹⁰²²` and `e^709.6875 < 2¹⁰²⁴ − 2⁹⁷¹` (the largest double).
fn pow_fast(x: f64, y: f64) -> Option<f64> {
    let (mant, e) = fast_approximation(x, y)?;
    let (q, rem, half) = ((mant >> 75) as u64, mant & ((1 << 75) - 1), 1u128 << 74);
    if rem.abs_diff(half) <= FAST_BOUND {
        return None;
    }
    // As in `Wide::to_f64`: q holds the implicit bit, and a carry of q + 1 = 2⁵³ moves
    // into the exponent field.
    Some(f64::from_bits(
        (((e + 1022) as u64) << 52) + q + u64::from(rem > half),
    ))
}

/// [`pow_fast`]'s approximation `mant · 2^(e − 127)` of `x ** y`, `mant` in `[2¹²⁷,
/// 2¹²⁸)`, within 2⁻⁸³ (relative) of it, or `None` where `y·ln x` is outside
/// `[−708.25, 709.6875]`.
fn fast_approximation(x: f64, y: f64) -> Option<(u128, i64)> {
    // x = M·2^(k − 52) with M in [2⁵², 2⁵³), subnormals normalized.
    let bits = x.to_bits();
    let (field, frac) = ((bits >> 52) as i32, bits & ((1 << 52) - 1));
    let (m, k) = if field == 0 {
        let shift = frac.leading_zeros() - 11;
        (frac << shift, -1022 - shift as i32)
    } else {
        (frac | 1 << 52, field - 1023)
    };
    let i = (m >> 45) as usize & 127;
    let (r, minus_ln_r) = (LOG_R[i], LOG_MINUS_LN_R[i]);
    // u = m·r − 1 = d·2⁻⁶¹, exactly (in 2⁻⁶³ and 2⁻¹²⁷ units too): m·r < 2⁵³·2¹⁰.
    let d = mul_u64_by_u16(m, r) as i64 - (1 << 61);
    // u in 2⁻⁶³ units (|u63| ≤ 2⁵⁶), and u63·2⁶⁴ in 2⁻¹²⁷ units.
    let u63 = d << 2;
    let mut tail = LOG_SERIES_TAIL[7];
    for &c in LOG_SERIES_TAIL[..7].iter().rev() {
        tail = c + mul_q63(u63, tail);
    }
    // Horner's levels in 2⁻¹²⁷ units, from tail·2⁶⁴; every product is by u, whose low
    // 64 bits there are 0 (so mul_q127_by_q63), the first by tail·2⁶⁴ too (exact).
    let mut h = LOG_SERIES[3] + mul_q127_q63s(u63, tail);
    for &c in LOG_SERIES[..3].iter().rev() {
        h = c + mul_q127_by_q63(u63, h);
    }
    let g = mul_q127_by_q63(u63, h);
    // |k| ≤ 1074 < 2¹¹ and ln 2 < 2⁰ (so below 2¹¹⁶ in its units): |k|·ln 2 < 2¹²⁷.
    let k_ln2 = mul_by_u16(LN2_116 as u128, k.unsigned_abs() as u16) as i128;
    let a = if k < 0 { -k_ln2 } else { k_ln2 } + minus_ln_r as i128;
    // |ln x| = ln_mant · 2^ln_exp.
    let (ln_negative, (ln_mant, ln_exp)) = if a == 0 {
        // 1 + G in (0.99, 1.01), in 2⁻¹²⁷ units; |d|·(1 + G) = p·2^(1 − shift), with
        // |d| = dm·2^(64 + shift) (dm·2⁶⁴ is |d| normalized to 128 bits).
        let one_plus_g = (1u128 << 127).wrapping_add_signed(g);
        let (dm, shift) = normalized64(d.unsigned_abs(), -64)?;
        let p = mul_by_u64(one_plus_g, dm).0;
        (d < 0, normalized(p, -60 + shift)?)
    } else {
        let l = a + (i128::from(d) << 55) + (mul_q127_by_q63(u63, g) >> 11);
        (l < 0, normalized(l.unsigned_abs(), -116)?)
    };
    // |y| = ym·2^ye, then |z| = zm·2^(ye + ln_exp + 128) with zm in [2¹²⁶, 2¹²⁸).
    let y_bits = y.to_bits();
    let (y_field, y_frac) = (((y_bits >> 52) & 0x7FF) as i32, y_bits & ((1 << 52) - 1));
    let (ym, ye) = if y_field == 0 {
        (y_frac, -1074)
    } else {
        (y_frac | 1 << 52, y_field - 1075)
    };
    // ym·2⁶⁴ is |y|'s significand normalized to 128 bits (its low half is 0).
    let (ym, ye) = normalized64(ym, ye - 64)?;
    let zm = mul_by_u64(ln_mant, ym).0;
    // z in units of 2⁻¹¹⁶: zm >> shift; shift ≤ 0 means |z| ≥ 2¹⁰.
    let shift = -116 - (ye + ln_exp + 128);
    if shift <= 0 {
        return None;
    }
    let magnitude = if shift >= 128 {
        0
    } else {
        (zm >> shift) as i128
    };
    let z = if y.is_sign_negative() != ln_negative {
        -magnitude
    } else {
        magnitude
    };
    if !(Z_MIN_116..=Z_MAX_116).contains(&z) {
        return None;
    }
    // K = round(z·64/ln 2): z·2⁻⁶⁴ (2⁻⁵² units) times 64/ln 2 in 2⁻⁵⁶ units, a product
    // below 2⁶²·2⁶³ = 2¹²⁵ in magnitude (|z| < 2¹⁰ is below 2¹²⁶ units).
    let z_high = (z >> 64) as i64;
    let zk = mul_u64_wide(z_high.unsigned_abs(), INV_LN2_64_56 as u64) as i128;
    let zk = if z_high < 0 { -zk } else { zk };
    let big_k = ((zk + (1 << 107)) >> 108) as i64;
    // |K| ≤ 710·64/ln 2 < 2¹⁶, and (ln 2)/64 < 2⁻⁶ (2¹¹⁰ units): the product is below 2¹²⁶.
    let k_ln2 = mul_by_u16(LN2_64_116 as u128, big_k.unsigned_abs() as u16) as i128;
    let r = (z - if big_k < 0 { -k_ln2 } else { k_ln2 }) << 11;
    let r63 = (r >> 64) as i64;
    let mut tail = EXP_SERIES_TAIL[4];
    for &c in EXP_SERIES_TAIL[..4].iter().rev() {
        tail = c + mul_q63(r63, tail);
    }
    // Horner's levels in 2⁻¹²⁷ units from tail·2⁶⁴, whose product by r is a 128 × 64-bit
    // one (mul_q127 is symmetric: it takes ⌊2|a|·|b| / 2¹²⁸⌋).
    let mut h = EXP_SERIES[1] + mul_q127_by_q63(tail, r);
    h = EXP_SERIES[0] + mul_q127(r, h);
    let s = r + mul_q127(r, mul_q127(r, h));
    // 2^(j/64)·eʳ in 2⁻¹²⁷ units, in [0.99, 2).
    let t = EXP_TABLE[(big_k & 63) as usize];
    let ts = mul_high(t, s.unsigned_abs() << 1);
    let p = if s < 0 { t - ts } else { t + ts };
    // x^y = mant·2^(e − 127), mant in [2¹²⁷, 2¹²⁸).
    Some(if p >> 127 == 1 {
        (p, big_k >> 6)
    } else {
        (p << 1, (big_k >> 6) - 1)
    })
}

/// A power `β^t` kept at 128 bits between steps, so that the next step's `β^(t+1)` is one
/// multiply; any other request recomputes it. `t = 0` marks an empty entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    base: u64,
    t: u64,
    power: Wide,
}

impl Entry {
    const EMPTY: Entry = Entry {
        base: 0,
        t: 0,
        power: Wide {
            mant: 0,
            exp: 0,
            inexact: false,
        },
    };
}

/// Cached powers `β^t` for up to three bases (Adam's β₁ and β₂, Adan's β₃ too), advanced
/// one step at a time. The results are those of [`powi`], whatever the cache holds.
///
/// Adan's third entry: computed afresh, β₃ᵗ cost its step on the Cortex-M4F about 2 700
/// instructions at t = 10⁴ (5 010 per step in all, against 2 300 cached), growing with
/// log t. The plain words of [`Powers::words`] carry the first two entries only (the C
/// ABI's `gradstep_scalars.cache` is 14 words), so a step through them computes a third
/// power afresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Powers {
    entries: [Entry; ENTRIES],
}

/// Entries in [`Powers`].
const ENTRIES: usize = 3;

impl Powers {
    /// No powers cached.
    pub(crate) const EMPTY: Powers = Powers {
        entries: [Entry::EMPTY; ENTRIES],
    };

    /// `β^t`, from entry `slot` (0, 1 or 2) when it holds `β^t` or `β^(t−1)`.
    ///
    /// The step after the cached one, every step of a run, is inlined into the caller:
    /// a 128 × 64-bit multiply and a rounding. The rest is [`Powers::pow_other`].
    /// Forced only on x86-64: on the 32-bit cores the 128-bit arithmetic is long, and
    /// inlined at every call it added 1–2.4 KB per rule to the Cortex-M4F bench image
    /// (16.8 KB in all) to save ~100 of ~25 000 instructions per 1K-param step.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    #[cfg_attr(not(target_arch = "x86_64"), inline)]
    pub(crate) fn pow(&mut self, slot: usize, beta: f64, t: u64) -> f64 {
        if let Some(entry) = self.entries.get_mut(slot)
            && t > 1
            && entry.t == t - 1
            && entry.base == beta.to_bits()
        {
            // A filled entry's base is finite and positive (`pow_other` fills no other).
            if entry.power.binary_exponent().abs() <= EXP_LIMIT {
                entry.power = entry.power.mul_base(Wide::base_of(beta));
            } // else already 0 or ∞ as a double, and stays so: keep the exponent bounded.
            entry.t = t;
            return entry.power.to_f64();
        }
        self.pow_other(slot, beta, t)
    }

    /// [`Powers::pow`] for anything but the step after the cached one.
    #[inline(never)]
    fn pow_other(&mut self, slot: usize, beta: f64, t: u64) -> f64 {
        let Some(entry) = self.entries.get_mut(slot) else {
            return powi(beta, t);
        };
        if t == 0 || !beta.is_finite() || beta <= 0.0 {
            *entry = Entry::EMPTY;
            return powi(beta, t);
        }
        // The step after the cached one is `pow`'s; here the entry holds β^t already
        // (t ≠ 0, so it is filled) or is recomputed.
        if !(entry.t == t && entry.base == beta.to_bits()) {
            *entry = Entry {
                base: beta.to_bits(),
                t,
                power: wide_pow(beta, t),
            };
        }
        entry.power.to_f64()
    }

    /// The cache as plain words, for carrying it where only plain data goes (the C
    /// ABI's `gradstep_scalars`): for the first two entries the base's bits, t, the
    /// significand (low, high), the exponent, the inexact flag and a check word.
    #[inline]
    pub(crate) fn words(&self) -> [u64; CACHE_WORDS] {
        let mut words = [0; CACHE_WORDS];
        for (entry, w) in self.entries.iter().zip(words.chunks_exact_mut(7)) {
            let p = &entry.power;
            let data = [
                entry.base,
                entry.t,
                p.mant as u64,
                (p.mant >> 64) as u64,
                p.exp as u64,
                u64::from(p.inexact),
            ];
            w[..6].copy_from_slice(&data);
            w[6] = if entry.t == 0 { 0 } else { check(&data) };
        }
        words
    }

    /// The cache from [`Powers::words`]. An entry whose words are not what
    /// `words` writes (zeros, or anything altered: the check word, a normalized
    /// significand and a bounded exponent are verified) is empty, and is recomputed; so
    /// is the third, which the words do not carry.
    #[inline]
    pub(crate) fn from_words(words: &[u64; CACHE_WORDS]) -> Powers {
        let mut powers = Powers::EMPTY;
        for (entry, w) in powers.entries.iter_mut().zip(words.chunks_exact(7)) {
            let data = [w[0], w[1], w[2], w[3], w[4], w[5]];
            let power = Wide {
                mant: u128::from(data[3]) << 64 | u128::from(data[2]),
                exp: data[4] as i64,
                inexact: data[5] == 1,
            };
            // `&` rather than `&&`: every test is cheap, and one branch is cheaper
            // than five.
            let valid = (data[1] != 0)
                & (data[5] <= 1)
                & (power.mant >> 127 == 1)
                & (power.exp.unsigned_abs() < 1 << 40)
                & (w[6] == check(&data));
            if valid {
                *entry = Entry {
                    base: data[0],
                    t: data[1],
                    power,
                };
            }
        }
        powers
    }
}

impl Default for Powers {
    fn default() -> Powers {
        Powers::EMPTY
    }
}

/// Words in [`Powers::words`].
pub(crate) const CACHE_WORDS: usize = 14;

/// A 64-bit digest of an entry's six words. Each word is multiplied by its own odd
/// constant (a bijection of the word, so changing any one word always changes the sum),
/// the products are added to a tag of this format (words of another layout or digest
/// are refused), and the sum goes through one xorshift-multiply round (also a
/// bijection, so a changed sum always changes the digest). It is a check against
/// garbage, not a MAC: a caller who forges an entry on purpose only changes its own
/// steps.
///
/// One multiply per word, independent of each other, and one more to finish: the C
/// ABI's step checks two entries on the way in and writes two on the way out, and a
/// digest with a mixing round per word cost it about 20 ns per call
/// (frontend-ffi/benches/percall.rs).
#[inline(always)]
fn check(words: &[u64; 6]) -> u64 {
    /// The format's tag: the sum's starting value.
    const TAG: u64 = 0x6772_6164_7374_6570; // "gradstep"
    check_from(TAG, words)
}

/// [`check`] with the sum starting at `start` instead of the format's tag.
#[inline(always)]
fn check_from(start: u64, words: &[u64; 6]) -> u64 {
    /// Odd, with high bits set throughout (the fractional digits of π, forced odd).
    const MUL: [u64; 6] = [
        0x243F_6A88_85A3_08D3,
        0x1319_8A2E_0370_7345,
        0xA409_3822_299F_31D1,
        0x082E_FA98_EC4E_6C89,
        0x4528_21E6_38D0_1377,
        0xBE54_66CF_34E9_0C6D,
    ];
    let sum = words
        .iter()
        .zip(MUL)
        .fold(start, |h, (&w, m)| h.wrapping_add(w.wrapping_mul(m)));
    let z = (sum ^ (sum >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    z ^ (z >> 32)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::testing::Mix;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    use proptest::prelude::Rng;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    use proptest::test_runner::{RngAlgorithm, TestRng};
    use std::vec::Vec;

    /// The host's C library `pow`: glibc on Linux, which CPython and therefore torch
    /// use. The tests that compare with it run only there.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn host_pow(x: f64, n: u64) -> f64 {
        x.powf(n as f64)
    }

    fn assert_same(x: f64, n: u64, got: f64, want: f64) {
        assert!(
            got.to_bits() == want.to_bits(),
            "{x:e} ** {n}: {got:e} ({:#x}), want {want:e} ({:#x})",
            got.to_bits(),
            want.to_bits()
        );
    }

    #[test]
    fn the_cache_survives_words_and_refuses_forged_ones() {
        let mut cache = Powers::default();
        cache.pow(0, 0.9, 41);
        cache.pow(1, 0.999, 41);
        let words = cache.words();
        assert_eq!(Powers::from_words(&words), cache);
        assert_eq!(Powers::from_words(&[0; CACHE_WORDS]), Powers::EMPTY);
        // Any single altered word empties its entry (and only its entry).
        for i in 0..CACHE_WORDS {
            for flip in [1u64, 1 << 63, u64::MAX] {
                let mut forged = words;
                forged[i] ^= flip;
                let back = Powers::from_words(&forged);
                let (hit, other) = (i / 7, 1 - i / 7);
                assert_eq!(back.entries[hit], Entry::EMPTY, "word {i}");
                assert_eq!(back.entries[other], cache.entries[other]);
                // And the powers are right whatever was passed in.
                let mut back = back;
                assert_eq!(back.pow(0, 0.9, 42), powi(0.9, 42));
                assert_eq!(back.pow(1, 0.999, 42), powi(0.999, 42));
            }
        }
        // A third entry is not in the words: it comes back empty, the others as they were.
        let mut three = cache;
        three.pow(2, 0.99, 41);
        let back = Powers::from_words(&three.words());
        assert_eq!(back.entries[..2], three.entries[..2]);
        assert_eq!(back.entries[2], Entry::EMPTY);
        assert_ne!(three.entries[2], Entry::EMPTY);
        // A cache far out of range (a step counter near 2^64) stays bounded and right.
        let mut cache = Powers::default();
        for t in [u64::MAX - 2, u64::MAX - 1, u64::MAX, 3, u64::MAX] {
            assert_eq!(cache.pow(0, 0.5, t), powi(0.5, t));
            assert_eq!(cache.pow(1, 1.5, t), powi(1.5, t));
        }
    }

    /// What the C caller may leave in `gradstep_scalars.cache` by mistake is refused:
    /// every byte pattern a `memset` writes, and the words of the previous format (whose
    /// digest mixed each word with a xorshift round and had no tag).
    #[test]
    fn the_cache_refuses_memsets_and_the_previous_format() {
        for byte in 0..=255u64 {
            let words = [byte * 0x0101_0101_0101_0101; CACHE_WORDS];
            assert_eq!(
                Powers::from_words(&words),
                Powers::EMPTY,
                "memset {byte:#x}"
            );
        }
        fn previous_check(words: &[u64]) -> u64 {
            const KEYS: [u64; 6] = [
                0x6772_6164_7374_6570,
                0x243F_6A88_85A3_08D3,
                0x1319_8A2E_0370_7344,
                0xA409_3822_299F_31D0,
                0x082E_FA98_EC4E_6C89,
                0x4528_21E6_38D0_1377,
            ];
            let sum = words.iter().zip(KEYS).fold(0u64, |h, (&w, key)| {
                let z = (w ^ key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                h.wrapping_add(z ^ (z >> 29))
            });
            let mut z = sum;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        let mut cache = Powers::default();
        cache.pow(0, 0.9, 41);
        cache.pow(1, 0.999, 41);
        let mut old = cache.words();
        for w in old.chunks_exact_mut(7) {
            w[6] = previous_check(&w[..6]);
        }
        assert_eq!(Powers::from_words(&old), Powers::EMPTY);
        // The same words with this format's check are accepted: only the digest differs.
        assert_eq!(Powers::from_words(&cache.words()), cache);
        // The tag is part of the digest: without it (a format with another tag), refused.
        let words = cache.words();
        for w in words.chunks_exact(7) {
            let data = [w[0], w[1], w[2], w[3], w[4], w[5]];
            let untagged = check_from(0, &data);
            assert_eq!(check(&data), w[6]);
            assert_ne!(untagged, w[6]);
        }
    }

    /// The normal results' rounding ([`Wide::to_f64`]) is the general one's
    /// ([`Wide::to_f64_any`]) bit for bit: every exponent at and around the normal
    /// range's ends, significands at the rounding boundaries (ties with an even and an
    /// odd last bit, one above and below, the carry to 2⁵³, the largest finite), with
    /// and without the inexact flag, and random ones.
    #[test]
    fn normal_rounding_is_the_general_rounding() {
        let mut rng = Mix(0x9E37_79B9_7F4A_7C15);
        let mut next = || rng.next();
        let top = 1u128 << 127;
        let half = 1u128 << 74;
        let mut mants = std::vec![top, u128::MAX, u128::MAX - half, top | half];
        for q in [0u128, 1, 2, (1 << 52) - 2, (1 << 52) - 1] {
            let base = top | q << 75;
            mants.extend([base, base | half, base | half | 1, base | (half - 1)]);
            // A tie broken upwards by any one sticky bit.
            mants.extend((0..74).map(|k| base | half | 1 << k));
        }
        for _ in 0..2000 {
            mants.push(top | u128::from(next()) << 64 | u128::from(next()));
            // Around the rounding bit: the low 75 bits near 2^74.
            let near = half.wrapping_add(u128::from(next() % 9)).wrapping_sub(4);
            mants.push(top | u128::from(next()) << 75 | near);
        }
        let mut exps: Vec<i64> = (-1030..=-1015).chain(1016..=1030).collect();
        exps.extend([-1100, -1075, -1074, -1, 0, 1, 500, 1100]);
        let mut checked = 0;
        for &e in &exps {
            for &mant in &mants {
                for inexact in [false, true] {
                    let w = Wide {
                        mant,
                        exp: e - 127,
                        inexact,
                    };
                    let (got, want) = (w.to_f64(), Wide::to_f64_any(mant, w.exp, inexact));
                    assert_eq!(got.to_bits(), want.to_bits(), "{w:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100_000, "{checked}");
    }

    /// `pow(x, 0.5)`'s shortcut to the square root, tested on the bits, is taken
    /// exactly where the general path takes it (`x > 0`): -0 and -∞ (where `pow` is +0
    /// and +∞, the root -0 and NaN), NaNs, 0, subnormals, +∞ and random doubles.
    #[test]
    fn the_square_root_shortcut_is_the_general_one() {
        let mut xs = crate::testing::SPECIAL_F64.to_vec();
        xs.push(0.001);
        let mut rng = Mix(0x853C_49E6_748F_EA9B);
        xs.extend((0..10_000).map(|_| rng.any_f64()));
        for x in xs {
            let (got, want) = (pow(x, 0.5), pow_with(x, 0.5, true));
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{x:e}: {got:e}, want {want:e}"
            );
        }
    }

    #[test]
    fn exact_cases() {
        assert_eq!(powi(0.5, 1074), f64::from_bits(1));
        // 2^-1075 is halfway between 0 and the smallest subnormal: ties to even, 0.
        assert_eq!(powi(0.5, 1075), 0.0);
        assert_eq!(powi(2.0, 1023), f64::from_bits(0x7FE0_0000_0000_0000));
        assert_eq!(powi(2.0, 1024), f64::INFINITY);
        assert_eq!(powi(-0.5, 3), -0.125);
        assert_eq!(powi(-3.0, 4), 81.0);
        assert_eq!(powi(3.0, 40), 12_157_665_459_056_928_801.0);
        assert_eq!(powi(10.0, 22), 1e22);
        assert_eq!(powi(0.9, 1), 0.9);
        assert_eq!(powi(f64::MAX, 1), f64::MAX);
        assert_eq!(powi(f64::from_bits(1), 1), f64::from_bits(1));
        assert_eq!(powi(0.999, u64::MAX), 0.0);
        assert_eq!(powi(1.0, u64::MAX), 1.0);
        assert_eq!(powi(1.5, u64::MAX), f64::INFINITY);
        assert!(powi(f64::NAN, 3).is_nan());
        assert_eq!(powi(f64::NAN, 0), 1.0);
        assert_eq!(powi(0.0, 3), 0.0);
        assert_eq!(powi(-0.0, 3).to_bits(), (-0.0f64).to_bits());
        assert_eq!(powi(f64::NEG_INFINITY, 2), f64::INFINITY);
    }

    /// Against exactly computed powers (`kernels/tests/data/record_powers.py`), including
    /// every sampled power that glibc's `pow` rounds the other way.
    #[test]
    fn correctly_rounded() {
        let text = include_str!("../tests/data/powers.txt");
        let (mut rows, mut c_differs) = (0, 0);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split(' ').collect();
            let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
            let (x, n) = (f64::from_bits(hex(f[0])), f[1].parse::<u64>().unwrap());
            let (exact, c) = (f64::from_bits(hex(f[2])), f64::from_bits(hex(f[3])));
            assert_same(x, n, powi(x, n), exact);
            let mut cache = Powers::default();
            cache.pow(0, x, n - 1);
            assert_same(x, n, cache.pow(0, x, n), exact);
            rows += 1;
            c_differs += usize::from(c != exact);
        }
        assert!(
            rows > 1200 && c_differs > 20,
            "{rows} rows, {c_differs} differ"
        );
    }

    /// Against the host's C library `pow` (glibc on Linux, which CPython and therefore
    /// torch use): glibc is not always correctly rounded (its bound is 0.52 ulp), so a
    /// few differ, by one ulp. `libm::pow` (what gradstep used before) differs in 3%.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[cfg_attr(
        miri,
        ignore = "Miri's pow is the host's with added error, not glibc's"
    )]
    fn agrees_with_the_c_library_pow() {
        let mut rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
        let unit = |rng: &mut TestRng| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (mut checked, mut differ) = (0u32, 0u32);
        for i in 0..1_000_000u64 {
            // Bases: Adam-like decays near 1, anything in (0, 2), and subnormal or huge
            // magnitudes; exponents: small, step-counter sized, and any 64-bit value.
            let x = match i % 4 {
                0 => 1.0 - unit(&mut rng) * 0.2,
                1 => unit(&mut rng) * 2.0,
                2 => f64::from_bits(rng.next_u64() >> 1),
                _ => -(1.0 - unit(&mut rng) * 1e-3),
            };
            let n = match i % 3 {
                0 => rng.next_u64() % 64,
                1 => rng.next_u64() % 2_000_000,
                _ => rng.next_u64() >> (rng.next_u64() % 64),
            };
            // The host's pow takes the exponent as a double: only exact ones compare.
            if !x.is_finite() || (n as f64) as u64 != n {
                continue;
            }
            let (got, want) = (powi(x, n), host_pow(x, n));
            if got != want {
                differ += 1;
                assert_eq!(got.to_bits().abs_diff(want.to_bits()), 1, "{x:e} ** {n}");
            }
            checked += 1;
        }
        assert!(checked > 900_000);
        assert!(differ < checked / 1000, "{differ} of {checked} differ");
    }

    fn assert_same_real(x: f64, y: f64, got: f64, want: f64) {
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "{x:e} ** {y:e}: {got:e} ({:#x}), want {want:e} ({:#x})",
            got.to_bits(),
            want.to_bits()
        );
    }

    /// Against exactly computed powers with non-integer exponents
    /// (`kernels/tests/data/record_real_powers.py`): NAdam's and ASGD's scalars, random
    /// and near-1 bases, exact powers and ties. `libm::pow` gets some of them wrong.
    #[test]
    fn real_exponents_correctly_rounded() {
        let text = include_str!("../tests/data/real_powers.txt");
        let (mut rows, mut libm_wrong, mut c_wrong) = (0, 0, 0);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<f64> = line
                .split(' ')
                .map(|s| f64::from_bits(u64::from_str_radix(s, 16).unwrap()))
                .collect();
            let (x, y, exact, c) = (f[0], f[1], f[2], f[3]);
            assert_same_real(x, y, pow(x, y), exact);
            assert_same_real(x, y, crate::rules::powf(x, y), exact);
            rows += 1;
            libm_wrong += usize::from(libm::pow(x, y) != exact);
            c_wrong += usize::from(c != exact);
        }
        std::println!(
            "{rows} non-integer powers: libm::pow wrong in {libm_wrong}, \
             the recording's C pow in {c_wrong}, gradstep's pow in 0"
        );
        assert!(rows > 9000, "{rows} rows");
        // The data keeps rows that libm::pow and glibc's pow round the wrong way.
        assert!(libm_wrong > 100 && c_wrong > 100, "{libm_wrong}, {c_wrong}");
    }

    /// NAdam's μₜ power at the steps the issue names, where `libm::pow` is 1 ulp off.
    #[test]
    fn nadam_and_asgd_powers() {
        let nadam = pow(0.96, 104.0 * 4e-3);
        assert_ne!(nadam, libm::pow(0.96, 104.0 * 4e-3));
        let asgd = pow(1.0 + 0.5 * 0.1 * 8.0, 0.75);
        assert_ne!(asgd, libm::pow(1.0 + 0.5 * 0.1 * 8.0, 0.75));
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            assert_eq!(nadam, 0.96f64.powf(104.0 * 4e-3));
            assert_eq!(asgd, 1.4f64.powf(0.75));
        }
    }

    /// Zeros, infinities, NaN, negative bases and out-of-range results: the C99 Annex F
    /// values, as `libm::pow` gives them; negative bases with whole exponents are the
    /// signed power of the magnitude.
    #[test]
    fn special_cases_are_libm_pow() {
        let (inf, nan) = (f64::INFINITY, f64::NAN);
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -0.5,
            2.0,
            -2.0,
            3.0,
            -3.0,
            0.75,
            -2.5,
            inf,
            -inf,
            nan,
            1e-310,
            -1e-310,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            1.0 + f64::EPSILON,
        ];
        let exps = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            3.0,
            -3.0,
            2.0,
            -2.0,
            1e10,
            -1e10,
            1e300,
            -1e300,
            inf,
            -inf,
            nan,
            1e-300,
            4.5e15,
            // The largest odd whole doubles, and the first even one beyond them.
            9_007_199_254_740_991.0,
            -9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            9.1e15 + 1.0,
            1e18 + 0.5,
            1075.0,
            -1075.0,
        ];
        for &x in &values {
            for &y in &exps {
                let got = pow(x, y);
                let want = libm::pow(x, y);
                if x.is_finite() && x != 0.0 && y.is_finite() && y != 0.0 && !want.is_nan() {
                    // A finite power of a finite non-zero base: within an ulp of libm.
                    let close = got == want
                        || got.to_bits().abs_diff(want.to_bits()) <= 1
                        || (got.is_finite() && (got - want).abs() <= want.abs() * 1e-15);
                    assert!(close, "{x:e} ** {y:e}: {got:e}, libm {want:e}");
                    assert_eq!(
                        got.is_sign_negative(),
                        want.is_sign_negative(),
                        "{x} ** {y}"
                    );
                } else {
                    assert_same_real(x, y, got, want);
                }
            }
        }
        assert_eq!(pow(-2.0, -1.0), -0.5);
        assert_eq!(pow(-2.0, -2.0), 0.25);
        assert_eq!(pow(-4.0, 0.5).to_bits(), libm::pow(-4.0, 0.5).to_bits());
        assert!(pow(-4.0, 0.5).is_nan());
        assert_eq!(pow(4.0, 0.5), 2.0);
        assert_eq!(pow(8.0, 1.0 / 3.0), 2.0);
        assert_eq!(pow(2.0, -1074.5), libm::pow(2.0, -1074.5));
        assert_eq!(pow(2.0, 1023.5), 1.271_161_006_153_646_4e308);
        assert_eq!(pow(2.0, 1024.5), inf);
    }

    /// Random bases and exponents against the host's C library `pow` (glibc, which
    /// CPython and therefore torch call). glibc's `pow` is not correctly rounded (its
    /// bound is 0.52 ulp): here (glibc 2.36) the two differ, by one ulp, in 815 of the
    /// million, and on all 815 the exact power (Python's `decimal` at 100 digits) is
    /// gradstep's; `real_powers.txt` keeps such rows, so `real_exponents_correctly_rounded`
    /// checks that side. `libm::pow` differs from glibc's in about 10%.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[cfg_attr(
        miri,
        ignore = "Miri's pow is the host's with added error, not glibc's"
    )]
    fn real_exponents_agree_with_the_c_library_pow() {
        let mut rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
        let unit = |rng: &mut TestRng| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (mut checked, mut differ, mut libm_differ) = (0u32, 0u32, 0u32);
        for i in 0..1_000_000u64 {
            let (x, y) = match i % 5 {
                0 => (
                    0.96,
                    (1 + rng.next_u64() % 100_000) as f64 * (unit(&mut rng) * 0.01),
                ),
                1 => (1.0 + unit(&mut rng) * 10.0, unit(&mut rng)),
                2 => (unit(&mut rng) * 10.0, (unit(&mut rng) - 0.5) * 100.0),
                3 => (
                    1.0 + (unit(&mut rng) - 0.5) * 1e-6,
                    (unit(&mut rng) - 0.5) * 1e8,
                ),
                _ => (
                    f64::from_bits(rng.next_u64() >> 2 | 1 << 61),
                    (unit(&mut rng) - 0.5) * 4.0,
                ),
            };
            let (got, want) = (pow(x, y), x.powf(y));
            if got != want {
                differ += 1;
                assert_eq!(got.to_bits().abs_diff(want.to_bits()), 1, "{x:e} ** {y:e}");
            }
            libm_differ += u32::from(libm::pow(x, y) != want);
            checked += 1;
        }
        std::println!(
            "{checked} random non-integer powers: gradstep's pow differs from glibc's in \
             {differ}, libm::pow in {libm_differ}"
        );
        assert!(differ < checked / 500, "{differ} of {checked} differ");
        assert!(libm_differ > checked / 50, "{libm_differ} of {checked}");
    }

    #[test]
    /// `mul_base` is `mul` by the base's `Wide`, flag included: on normalized
    /// significands with every bit pattern at the truncation (none dropped, only the
    /// lowest, all), bases normal and subnormal, products with the top bit at 255 and 254.
    fn multiplying_by_a_base_is_the_general_product() {
        let mut rng = Mix(0x0BAD_C0FF_EE15_600D);
        let bases = [
            0.9,
            0.999,
            0.5,
            0.75,
            1e-300,
            5e-324,
            1e-310,
            1.5,
            0.999_999_9,
        ];
        for i in 0..20_000u64 {
            let x = if i < 9 {
                bases[i as usize]
            } else {
                f64::from_bits(rng.next() >> 2) // positive, finite, subnormals included
            };
            if x == 0.0 {
                continue;
            }
            // The normal bases' constant shift is the general normalization.
            let w = Wide::from_f64(x);
            assert_eq!(
                Wide::base_of(x),
                ((w.mant >> 64) as u64, w.exp + 64),
                "{x:e}"
            );
            let mant = match i % 4 {
                0 => 1 << 127,
                1 => u128::MAX,
                _ => 1 << 127 | u128::from(rng.next()) << 64 | u128::from(rng.next()),
            };
            let a = Wide {
                mant,
                exp: (rng.next() % 2000) as i64 - 1000,
                inexact: i % 3 == 0,
            };
            assert_eq!(
                a.mul_base(Wide::base_of(x)),
                a.mul(&Wide::from_f64(x)),
                "{a:?} {x:e}"
            );
        }
    }

    /// Both ways of multiplying (64-bit limbs here, 32-bit limbs on the 32-bit targets,
    /// which the host tests would not otherwise run) agree, and with the full product, on
    /// edge and random operands.
    #[test]
    fn high_halves_of_products() {
        let mut rng = Mix(0x1319_8A2E_0370_7344);
        let edges = [
            0u64,
            1,
            0xFFFF_FFFF,
            1 << 32,
            u64::MAX - 1,
            u64::MAX,
            1 << 63,
        ];
        for i in 0..20_000usize {
            let (a, b) = if i < edges.len() * edges.len() {
                (edges[i / edges.len()], edges[i % edges.len()])
            } else {
                (rng.next() >> (rng.next() % 64), rng.next())
            };
            let full = u128::from(a) * u128::from(b);
            assert_eq!(mul_high64_limbs(a, b), (full >> 64) as u64, "{a:#x} {b:#x}");
            assert_eq!(mul_high64(a, b), (full >> 64) as u64, "{a:#x} {b:#x}");
            let (wa, wb) = (
                u128::from(a) << 64 | u128::from(rng.next()),
                u128::from(b) << 64 | u128::from(a ^ b),
            );
            assert_eq!(mul_wide(wa, wb), mul_wide_limbs(wa, wb), "{wa:#x} {wb:#x}");
            assert_eq!(mul_high(wa, wb), mul_wide(wa, wb).0, "{wa:#x} {wb:#x}");
            let (ea, eb) = (u128::MAX >> (a % 128), !wb);
            assert_eq!(mul_wide(ea, eb), mul_wide_limbs(ea, eb), "{ea:#x} {eb:#x}");
        }
        assert_eq!(mul_q63(-(1 << 62), 1 << 62), -(1 << 61));
        assert_eq!(mul_q127(-(1 << 126), -(1 << 125)), 1 << 124);
    }

    /// A word's edges for the products of 16-bit halves: halves of 0, 1, 2, 0x8000 and
    /// 0xFFFF, so that every partial product and every carry out of the cross terms' sum
    /// is at its extreme somewhere.
    const WORD_EDGES: [u32; 14] = [
        0,
        1,
        2,
        0xFFFF,
        0x1_0000,
        0x1_FFFF,
        0x8000,
        0x8000_8000,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_0000,
        0xFFFF_0001,
        u32::MAX - 1,
        u32::MAX,
    ];

    /// [`mul_u32_halves`], the Cortex-M0's 32 × 32 → 64-bit product, is the full product
    /// on every pair of edge words and on random words of every width.
    #[test]
    fn products_of_words_from_their_halves() {
        let mut rng = Mix(0x3707_3440_A409_3822);
        let n = WORD_EDGES.len();
        for i in 0..50_000usize {
            let (a, b) = if i < n * n {
                (WORD_EDGES[i / n], WORD_EDGES[i % n])
            } else {
                let w = rng.next();
                ((w as u32) >> (rng.next() % 32), (w >> 32) as u32)
            };
            let want = u64::from(a) * u64::from(b);
            assert_eq!(mul_u32_halves(a, b), want, "{a:#x} {b:#x}");
            assert_eq!(mul_u32(a, b), want, "{a:#x} {b:#x}");
        }
    }

    /// [`mul_base_limbs`], the Cortex-M0's `mul_base` product (eight products of 32-bit
    /// limbs from their halves, as the tests take [`mul_u32`]), is the other targets' two
    /// 64 × 64 → 128-bit products, high 128 bits and dropped 64 alike: on operands built
    /// from edge words (all ones, where every carry runs the whole length, and the
    /// normal bases' shape, bit 63 set and the low 11 bits clear) and on random ones.
    #[test]
    fn base_products_in_limbs_are_the_wide_products() {
        let mut rng = Mix(0x2299_F31D_0082_EFA9);
        let n = WORD_EDGES.len();
        let word = |rng: &mut Mix| {
            let w = WORD_EDGES[(rng.next() % n as u64) as usize];
            if rng.next().is_multiple_of(4) {
                rng.next() as u32
            } else {
                w
            }
        };
        for i in 0..50_000u32 {
            let (a, b) = if i % 2 == 0 {
                let a = (0..4).fold(0u128, |acc, _| acc << 32 | u128::from(word(&mut rng)));
                let b = u64::from(word(&mut rng)) << 32 | u64::from(word(&mut rng));
                (a, b)
            } else {
                let a = u128::from(rng.next()) << 64 | u128::from(rng.next());
                let b = rng.next() >> (rng.next() % 64);
                (a >> (rng.next() % 128), b)
            };
            for (a, b) in [(a, b), (a | 1 << 127, b << 11 | 1 << 63)] {
                let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
                let low = a0 * u128::from(b);
                let high = a1 * u128::from(b) + (low >> 64);
                assert_eq!(mul_base_limbs(a, b), (high, low as u64), "{a:#x} {b:#x}");
            }
        }
        let all = u128::MAX;
        assert_eq!(
            mul_base_limbs(all, u64::MAX),
            (all - (1 << 64), 1),
            "(2¹²⁸ − 1)(2⁶⁴ − 1) = (2¹²⁸ − 2⁶⁴ − 1)·2⁶⁴ + 1"
        );
    }

    /// Edge operands for the fast path's products: 0, 1, all ones, single top bits, and
    /// words whose halves are extreme (every partial product and carry at its limit).
    fn wide_edges() -> impl Iterator<Item = u128> {
        let words = WORD_EDGES.iter().map(|&w| u128::from(w));
        words.clone().flat_map(move |w| {
            [
                w,
                w << 96 | w << 64 | w << 32 | w,
                w << 96 | u128::MAX >> 32,
                w << 64,
                u128::MAX - w,
                1 << 127 | w,
            ]
        })
    }

    /// [`mul_high_columns`], the Cortex-M0's `mul_high` (the products of 16-bit halves,
    /// those below bit 96 only when they may carry), is the high half of [`mul_wide`]: on
    /// every pair of edge operands, on random ones of every width, and on ones whose
    /// bits 96..127 of the partial sum are at the threshold, either side of it (so both
    /// ways out are taken: the products with `b = 2³² − 1 − k`, `a = 2⁹⁶`, ... below).
    #[test]
    fn high_halves_from_columns_of_halves() {
        let mut rng = Mix(0x0A0B_0C0D_1E2F_3A4B);
        let edges: std::vec::Vec<u128> = wide_edges().collect();
        let check = |a: u128, b: u128| {
            assert_eq!(mul_high_columns(a, b), mul_wide(a, b).0, "{a:#x} {b:#x}");
        };
        for &a in &edges {
            for &b in &edges {
                check(a, b);
            }
        }
        for _ in 0..200_000 {
            let a = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> (rng.next() % 128);
            let b = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> (rng.next() % 128);
            check(a, b);
        }
        // b = 2⁹⁶ + c puts a's low word w at bits 96..127 of the partial sum, and a·c
        // (below 2¹¹²) under it: with w near 2³², those decide whether
        // bit 128 is carried into (the fallback's case), and further from it they do not.
        let (mut fallback, mut carried) = (0, 0);
        for i in 0..50_000 {
            let w = u32::MAX - (rng.next() % (1 << (16 + i % 6))) as u32;
            // a < 2⁹⁶, so that its halves times c all fall below bit 96 (halves 0..5).
            let a = u128::from(rng.next()) << 32 | u128::from(w);
            let c = rng.next() >> 48 | 0x8000;
            let b = 1 << 96 | u128::from(c);
            fallback += usize::from(w > u32::MAX - (1 << 19));
            // The products below bit 96 sum to a·c: they carry into bit 128 exactly when
            // the low half of a·b is below them.
            carried += usize::from(mul_wide(a, b).1 < a * u128::from(c));
            check(a, b);
            check(b, a);
        }
        assert!(fallback > 5_000 && carried > 1_000, "{fallback} {carried}");
    }

    /// [`mul_by_u64`] (and [`mul_base_limbs`], the Cortex-M0's form), the 192-bit
    /// product as high 128 and low 64 bits, is the u128 product; [`mul_u64_wide`] and
    /// [`mul_u64_limbs`] are the exact 64 × 64-bit product: edge and random operands.
    #[test]
    fn products_by_words_are_the_wide_products() {
        let mut rng = Mix(0x5851_F42D_4C95_7F2D);
        let edges: std::vec::Vec<u128> = wide_edges().collect();
        let check = |a: u128, b: u64| {
            let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
            let low = a0 * u128::from(b);
            let want = (a1 * u128::from(b) + (low >> 64), low as u64);
            assert_eq!(mul_by_u64(a, b), want, "{a:#x} {b:#x}");
            assert_eq!(mul_base_limbs(a, b), want, "{a:#x} {b:#x}");
            let (x, y) = (a as u64, b);
            let full = u128::from(x) * u128::from(y);
            assert_eq!(mul_u64_wide(x, y), full, "{x:#x} {y:#x}");
            assert_eq!(mul_u64_limbs(x, y), full, "{x:#x} {y:#x}");
        };
        for &a in &edges {
            for &b in &edges {
                check(a, b as u64);
                check(a, (b >> 64) as u64);
            }
        }
        for _ in 0..100_000 {
            let a = u128::from(rng.next()) << 64 | u128::from(rng.next());
            check(a >> (rng.next() % 128), rng.next() >> (rng.next() % 64));
        }
    }

    /// [`mul_by_u16`] and [`mul_u64_by_u16`] (and their limb forms, the Cortex-M0's) are
    /// the wrapping products, on edge and random operands and every edge multiplier.
    #[test]
    fn products_by_small_numbers_are_the_wrapping_products() {
        let mut rng = Mix(0x6A09_E667_F3BC_C908);
        let small = [0u16, 1, 2, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF];
        let edges: std::vec::Vec<u128> = wide_edges().collect();
        let check = |a: u128, b: u16| {
            let want = a.wrapping_mul(u128::from(b));
            assert_eq!(mul_by_u16(a, b), want, "{a:#x} {b:#x}");
            assert_eq!(mul_by_u16_limbs(a, b), want, "{a:#x} {b:#x}");
            for x in [a as u64, (a >> 64) as u64] {
                let want = x.wrapping_mul(u64::from(b));
                assert_eq!(mul_u64_by_u16(x, b), want, "{x:#x} {b:#x}");
                assert_eq!(mul_u64_by_u16_limbs(x, b), want, "{x:#x} {b:#x}");
            }
        };
        for &a in &edges {
            for &b in &small {
                check(a, b);
            }
        }
        for _ in 0..100_000 {
            let a = u128::from(rng.next()) << 64 | u128::from(rng.next());
            check(
                a >> (rng.next() % 128),
                (rng.next() >> (rng.next() % 64)) as u16,
            );
        }
        // The fast path's products: |k|·ln 2 and |K|·(ln 2)/64 at their largest.
        for (c, k) in [(LN2_116, 1074), (LN2_64_116, 65_535)] {
            assert_eq!(mul_by_u16(c as u128, k), c as u128 * u128::from(k));
            assert!((c as u128).checked_mul(u128::from(k)).unwrap() < 1 << 127);
        }
    }

    /// [`mul_q127_by_q63`] and [`mul_q127_q63s`] are [`mul_q127`] by `a·2⁶⁴` (and of
    /// `b·2⁶⁴`), every sign, on edge and random operands.
    #[test]
    fn q127_products_by_q63_numbers_are_the_wide_ones() {
        let mut rng = Mix(0xBB67_AE85_84CA_A73B);
        let small = [
            0i64,
            1,
            -1,
            2,
            0xFFFF_FFFF,
            -(1 << 32),
            i64::MAX,
            -i64::MAX,
            1 << 62,
        ];
        let wide: std::vec::Vec<i128> = wide_edges()
            .map(|w| (w >> 1) as i128)
            .flat_map(|w| [w, -w])
            .collect();
        let check = |a: i64, b: i128| {
            let want = mul_q127(i128::from(a) << 64, b);
            assert_eq!(mul_q127_by_q63(a, b), want, "{a:#x} {b:#x}");
            let b = b >> 64;
            if let Ok(b) = i64::try_from(b) {
                let want = mul_q127(i128::from(a) << 64, i128::from(b) << 64);
                assert_eq!(mul_q127_q63s(a, b), want, "{a:#x} {b:#x}");
            }
        };
        for &a in &small {
            for &b in &wide {
                check(a, b);
                check(-a, b);
            }
        }
        for _ in 0..100_000 {
            let a = (rng.next() >> 1 >> (rng.next() % 63)) as i64;
            let b = ((u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 1) as i128;
            let b = b >> (rng.next() % 127);
            for (a, b) in [(a, b), (-a, b), (a, -b), (-a, -b)] {
                check(a, b);
            }
        }
        assert_eq!(
            mul_q127_q63s(i64::MAX, i64::MIN),
            -(i128::from(i64::MAX) << 64)
        );
    }

    /// [`normalized64`] is the top half of [`normalized`], and the leading-zero counts
    /// by words and by binary search ([`leading_zeros64_words`], [`leading_zeros_search`],
    /// the Cortex-M0's) are `leading_zeros`: every single bit, every run of ones from
    /// the top or from the bottom, and random words of every width.
    #[test]
    fn normalizing_by_words() {
        let mut rng = Mix(0x3C6E_F372_FE94_F82B);
        let patterns = (0..64).flat_map(|i| [1u64 << i, u64::MAX << i, u64::MAX >> i, 0]);
        let random = (0..100_000).map(|_| rng.next() >> (rng.next() % 64));
        for x in patterns.chain(random) {
            assert_eq!(leading_zeros64_words(x), x.leading_zeros(), "{x:#x}");
            assert_eq!(leading_zeros64(x), x.leading_zeros(), "{x:#x}");
            for w in [x as u32, (x >> 32) as u32] {
                assert_eq!(leading_zeros_search(w), w.leading_zeros(), "{w:#x}");
            }
            let e = (x % 2000) as i32 - 1000;
            let wide = normalized(u128::from(x), e + 64).map(|(m, e)| ((m >> 64) as u64, e));
            assert_eq!(normalized64(x, e), wide, "{x:#x}");
            for mant in [u128::from(x), u128::from(x) << 64 | 1, u128::from(x) << 31] {
                let want = (mant != 0).then(|| {
                    let z = mant.leading_zeros();
                    (mant << z, e - z as i32)
                });
                assert_eq!(normalized(mant, e), want, "{mant:#x}");
            }
        }
    }

    /// The fast approximation is within its bound, 2⁻⁸³ (relative), of the accurate
    /// path's double-double value (itself within about 2⁻¹⁰⁰), on 100 000 powers in range,
    /// many with long `y·ln x` (where an error in `ln x` grows) and bases near 1; the
    /// largest error seen is printed. Rounding alone rarely shows an error of 2⁻⁷⁰ (only
    /// near a halfway point): this shows one of 2⁻⁸⁰.
    #[test]
    #[cfg_attr(miri, ignore = "100 000 accurate powers: hours under Miri")]
    fn the_fast_approximation_is_within_its_bound() {
        let mut rng = Mix(0x243F_6A88_85A3_08D3);
        let mut worst = 0f64;
        for i in 0..100_000u32 {
            let x = match i % 4 {
                0 => 0.9 + rng.unit() * 0.0999,
                1 => 1.0 + (rng.unit() - 0.5) * 2f64.powi(-((rng.next() % 52) as i32)),
                2 => f64::from_bits(rng.next() % 0x7FF0_0000_0000_0000 + 1),
                _ => rng.unit() * 16.0,
            };
            let ln = libm::log(x);
            let y = (rng.unit() - 0.5) * 2f64.powi((rng.next() % 11) as i32) / ln;
            if !(ln != 0.0 && y.is_finite() && y != 0.0) {
                continue;
            }
            let (mant, e) = fast_approximation(x, y).unwrap();
            // The accurate path's value (hi + lo)·2^k, as in `pow_accurate`.
            let l = ln_dd(x);
            let p = two_prod(y, l.hi);
            let (acc, k) = exp_dd(quick_two_sum(p.hi, p.lo + y * l.lo));
            // mant·2^(e − 127) as a pair (53 bits and the rest), compared at 2^k.
            let scale = 2f64.powi((e - 127 - i64::from(k)) as i32);
            let hi = ((mant >> 75) << 75) as f64 * scale;
            let lo = (mant & ((1 << 75) - 1)) as f64 * scale;
            let error = ((hi - acc.hi) + (lo - acc.lo)) / acc.hi;
            worst = worst.max(error.abs());
            assert!(
                error.abs() < 2f64.powi(-83),
                "{x:e} ** {y:e}: error {error:e}"
            );
        }
        std::println!("largest relative error of the fast approximation: {worst:e}");
        assert!(worst > 0.0);
    }

    /// `pow` (the fast path, falling back to the accurate one) against the accurate path
    /// alone on 240 000 powers: NAdam's and ASGD's scalars, Adam-like bases with long
    /// exponents, random bases of any magnitude (subnormal ones included) with exponents
    /// that keep the power in range, bases within 2⁻⁵² of 1, tiny exponents, exact powers
    /// (`(m⁴)^0.75 = m³`, also halfway between two doubles), powers out of range, and every
    /// row of `real_powers.txt` (glibc's misrounded ones, exact powers and ties). Bits
    /// must agree everywhere, and the fast path must decide the in-range inputs: a fast
    /// path that always fell back, or never did where it must, fails here.
    #[test]
    #[cfg_attr(miri, ignore = "240 000 accurate powers: hours under Miri")]
    fn the_fast_path_gives_the_accurate_bits() {
        let mut rng = Mix(0x6772_6164_7374_6570);
        let (mut checked, mut in_range, mut declined, mut exact_declined) = (0, 0, 0, 0);
        // `exact`: an exact power, maybe halfway between two doubles, where the fast
        // path must decline (those are counted apart).
        let mut check = |x: f64, y: f64, exact: bool| {
            let (got, want) = (pow(x, y), pow_with(x, y, false));
            assert_same_real(x, y, got, want);
            checked += 1;
            if x > 0.0 && x.is_finite() && x != 1.0 && y.is_finite() && y != 0.0 && y != 0.5 {
                let z = y * libm::log(x);
                let declines = pow_fast(x, y).is_none();
                if exact {
                    exact_declined += u32::from(declines);
                } else if (-708.0..709.5).contains(&z) {
                    in_range += 1;
                    declined += u32::from(declines);
                }
            }
        };
        for i in 0..240_000u32 {
            let (x, y) = match i % 8 {
                0 => {
                    let psi = if i % 16 == 0 { 4e-3 } else { rng.unit() * 0.01 };
                    let t = (1 + rng.next() % 1_000_000) as f64;
                    (0.96, t * psi + f64::from(i % 3 == 0) * psi)
                }
                1 => (
                    0.9 + rng.unit() * 0.0999,
                    rng.unit() * 10f64.powi((rng.next() % 6) as i32),
                ),
                2 => {
                    let (lr, lambd) = (rng.unit() * 0.1, rng.unit());
                    let alpha = if i % 16 == 2 { 0.75 } else { rng.unit() };
                    (1.0 + lambd * lr * (1 + rng.next() % 100_000) as f64, alpha)
                }
                3 => {
                    let x = f64::from_bits(rng.next() % 0x7FF0_0000_0000_0000 + 1);
                    (x, (rng.unit() - 0.5) * 1400.0 / libm::log(x))
                }
                4 => {
                    let d = (rng.unit() - 0.5) * 2f64.powi(-((rng.next() % 52) as i32));
                    (
                        1.0 + d,
                        (rng.unit() - 0.5) * 2f64.powi((rng.next() % 62) as i32),
                    )
                }
                5 => (rng.unit() * 4.0, (rng.unit() - 0.5) * 1e-12),
                6 => {
                    // m⁴ exact (m below 2¹³), and its power 0.75 = m³ or 1.25 = m⁵;
                    // then an exact halfway case: (n²)^1.5 = n³ with a 54-bit odd n³.
                    let m = (1 + rng.next() % 8191) as f64;
                    let (e, y) = if i % 16 == 6 { (4, 0.75) } else { (4, 1.25) };
                    let n = 208_065 + 2 * (rng.next() % 20_000);
                    if i % 32 == 14 {
                        ((n * n) as f64, 1.5)
                    } else {
                        (m.powi(e), y)
                    }
                }
                _ => (
                    f64::from_bits(rng.next() >> 1),
                    f64::from_bits(rng.next() >> (rng.next() % 4)),
                ),
            };
            check(x, y, i % 8 == 6);
            check(x, -y, false);
        }
        let text = include_str!("../tests/data/real_powers.txt");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<f64> = line
                .split(' ')
                .map(|s| f64::from_bits(u64::from_str_radix(s, 16).unwrap()))
                .collect();
            // Whole results are the exact powers (and ties) among the rows.
            check(f[0], f[1], f[2] == libm::round(f[2]));
        }
        std::println!(
            "{checked} powers: the fast path declined {declined} of {in_range} in range, \
             and {exact_declined} exact powers (halfway between two doubles)"
        );
        assert!(checked > 480_000, "{checked}");
        assert!(in_range > 300_000, "{in_range} in range");
        assert!(declined < in_range / 10_000, "{declined} declined");
        // The halfway cases went the accurate way, and gave its bits.
        assert!(
            exact_declined > 2000,
            "{exact_declined} exact powers declined"
        );
    }

    /// Powers around the smallest normal, where the result loses precision bit by bit.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[cfg_attr(
        miri,
        ignore = "Miri's pow is the host's with added error, not glibc's"
    )]
    fn near_the_subnormal_boundary() {
        for &x in &[0.5, 0.75, 0.9, 0.999, 0.123_456_789, 1e-300] {
            // The n whose power crosses 2^-1022, and its neighbours down to zero.
            let n0 = (-1022.0 / libm::log2(x)) as u64;
            for n in n0.saturating_sub(3)..n0 + 60 {
                assert_same(x, n, powi(x, n), host_pow(x, n));
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "120 000 powers: hours under Miri, and no unsafe code")]
    fn the_cache_gives_the_uncached_powers() {
        for &beta in &[0.9, 0.999, 0.99, 0.5, 0.123, 0.999_999] {
            let mut cache = Powers::default();
            for t in 1..=20_000u64 {
                assert_same(beta, t, cache.pow(1, beta, t), powi(beta, t));
            }
        }
        // Jumps, repeats, base changes, every slot, a bad slot: always powi's value.
        let mut cache = Powers::default();
        let requests: Vec<(usize, f64, u64)> = [
            (0, 0.9, 5),
            (0, 0.9, 5),
            (0, 0.9, 6),
            (0, 0.9, 4),
            (1, 0.999, 1_000_000),
            (1, 0.999, 1_000_001),
            (0, 0.8, 5),
            (0, 0.8, 6),
            (0, 0.0, 6),
            (0, 0.8, 7),
            (0, f64::NAN, 8),
            (1, 0.999, 0),
            (2, 0.99, 3),
            (2, 0.99, 4),
            (2, 0.9, 4),
            (3, 0.9, 3),
        ]
        .into();
        for (slot, beta, t) in requests {
            let got = cache.pow(slot, beta, t);
            let want = powi(beta, t);
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()));
        }
    }

    /// Each of the three entries keeps its own power (Adam's two, Adan's third), so a
    /// run advances every one of them by one multiply.
    #[test]
    fn three_entries_each_keep_their_power() {
        let betas = [0.9, 0.999, 0.99];
        let mut cache = Powers::default();
        for t in 1..=3000u64 {
            for (slot, &beta) in betas.iter().enumerate() {
                assert_same(beta, t, cache.pow(slot, beta, t), powi(beta, t));
            }
        }
        for (entry, &beta) in cache.entries.iter().zip(&betas) {
            assert_eq!((entry.base, entry.t), (beta.to_bits(), 3000));
        }
    }
}
