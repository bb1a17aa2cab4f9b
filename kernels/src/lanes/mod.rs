//! The lane layer: the handful of operations the update rules are written against.
//!
//! Every rule is written once, generic over [`Lanes`], in the style of memchr's `Vector`
//! trait: the rules say *what* to compute per element; a lane type says how a group of
//! elements is loaded, stored, added, multiplied, divided and square-rooted. The same
//! generic code is instantiated
//!
//! - with the target's widest vector ([`F32Vector`], [`F64Vector`], backed by `wide`) for
//!   the body of a slice, and
//! - with the scalar types `f32`/`f64` themselves (one lane) for the tail, on targets
//!   without vector units (Cortex-M, ...), and under the `force-scalar` feature.
//!
//! All lane operations are exactly rounded IEEE-754 operations (no approximate reciprocal
//! or square root, and fused multiply-adds only inside [`Lanes::div_by`], Markstein's
//! correctly rounded division), so every lane type gives bit-identical results and the
//! vector path can be tested for exact equality with the scalar one.
//!
//! On x86-64 the rules' element loop does not stop at the compile-time vector: the
//! crate's `arch` module implements [`Lanes`] and [`LoadStore`] for the AVX2 and AVX-512
//! registers with `#[inline(always)]` methods and instantiates the driver inside
//! `#[target_feature]` functions, chosen at run time by `crate::isa`. Adding an
//! instruction set (NEON, ...) is done the same way; the rules do not change. The
//! reductions and maps of the gradient utilities (`crate::reduce`: norms, finiteness
//! checks) are dispatched the same way.

mod scalar;
mod vector;

use core::ops::{Add, Div, Mul, Neg, Sub};

use crate::real::Real;

// The lane vectors match the native register width: wider `wide` types on narrower
// registers are pairs of registers that LLVM tends to move through the stack.

/// The lane vector used for `f32` on this target.
#[cfg(all(gradstep_simd, target_feature = "avx512f"))]
pub type F32Vector = wide::f32x16;
/// The lane vector used for `f32` on this target.
#[cfg(all(gradstep_simd, target_feature = "avx", not(target_feature = "avx512f")))]
pub type F32Vector = wide::f32x8;
/// The lane vector used for `f32` on this target (128-bit registers: SSE2, NEON, simd128).
#[cfg(all(gradstep_simd, not(target_feature = "avx")))]
pub type F32Vector = wide::f32x4;
/// The lane vector used for `f32` on this target (scalar: no vector unit).
#[cfg(not(gradstep_simd))]
pub type F32Vector = f32;

/// The lane vector used for `f64` on this target.
#[cfg(all(gradstep_simd, target_feature = "avx512f"))]
pub type F64Vector = wide::f64x8;
/// The lane vector used for `f64` on this target.
#[cfg(all(gradstep_simd, target_feature = "avx", not(target_feature = "avx512f")))]
pub type F64Vector = wide::f64x4;
/// The lane vector used for `f64` on this target (128-bit registers: SSE2, NEON, simd128).
#[cfg(all(gradstep_simd, not(target_feature = "avx")))]
pub type F64Vector = wide::f64x2;
/// The lane vector used for `f64` on this target (scalar: no vector unit).
#[cfg(not(gradstep_simd))]
pub type F64Vector = f64;

/// A group of `WIDTH` elements of `Scalar` that the rules compute on.
///
/// Arithmetic is IEEE-754 round-to-nearest per lane. `max`/`min` follow the x86
/// `maxps` convention (`if a > b { a } else { b }`), which agrees with `torch.maximum`
/// for all non-NaN inputs.
pub trait Lanes:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// The element type of each lane.
    type Scalar: Real;
    /// The result of a lane-wise comparison, consumed by [`Lanes::select`].
    type Mask: Copy;
    /// Number of lanes.
    const WIDTH: usize;
    /// All lanes equal to `x`.
    fn splat(x: Self::Scalar) -> Self;
    /// Lane-wise square root (correctly rounded).
    fn sqrt(self) -> Self;
    /// Lane-wise `√|x|`: the square root of a quantity that is non-negative by
    /// construction (a second moment, a sum of squares). It equals [`Lanes::sqrt`] for
    /// every `x ≥ 0`, ±0, ∞ and NaN; only a negative `x`, which no state produced by the
    /// rules (or by torch) holds, gives `√(−x)` where `sqrt` gives NaN.
    ///
    /// The rules use it for their second moments because the compiler can then prove
    /// the operand non-negative: on bare-metal Arm with an FPU (Cortex-M4F, M7, M33) it
    /// is a bare `VABS.F32` + `VSQRT.F32` in the loop, where `sqrt` is a call to a naked
    /// `VSQRT` function (stable Rust has no other way to it there), which also keeps LLVM
    /// from unrolling the loop. The default is `self.abs().sqrt()`.
    fn sqrt_abs(self) -> Self {
        self.abs().sqrt()
    }
    /// Lane-wise absolute value.
    fn abs(self) -> Self;
    /// Lane-wise `if self > other { self } else { other }`.
    fn max(self, other: Self) -> Self;
    /// Lane-wise `if self < other { self } else { other }`.
    fn min(self, other: Self) -> Self;
    /// Lane-wise `self > other`.
    fn gt(self, other: Self) -> Self::Mask;
    /// Lane-wise `self < other`.
    fn lt(self, other: Self) -> Self::Mask;
    /// Lane-wise `self == other`.
    fn eq(self, other: Self) -> Self::Mask;
    /// Lane-wise `if mask { if_true } else { if_false }`.
    fn select(mask: Self::Mask, if_true: Self, if_false: Self) -> Self;
    /// Lane-wise `self / d`, correctly rounded: the same bits as `self /
    /// Self::splat(d.value())`, for a divisor that stays fixed over a step (a bias
    /// correction).
    ///
    /// Lanes with a fused multiply-add (the AVX2 and AVX-512 levels) replace the division
    /// by Markstein's sequence with the precomputed reciprocal, where it is proven exact
    /// (see [`Divisor`]); the others divide. The default divides.
    #[inline(always)]
    fn div_by(self, d: Divisor<Self::Scalar>) -> Self {
        self / Self::splat(d.value())
    }
    /// Lane-wise `√|self| / d`: the same bits as `self.sqrt_abs().div_by(d)` (Adam's
    /// `√v / √(1 − β₂ᵗ)`).
    ///
    /// The square root of a finite value is zero or inside [`div_by`](Lanes::div_by)'s
    /// multiplying range (`f32`: `√|x|` is within [2⁻⁷⁴·⁵, 2⁶⁴], the range is [2⁻⁸⁰,
    /// 2⁸⁰]; `f64`: [2⁻⁵³⁷, 2⁵¹²] within [2⁻⁸⁰⁰, 2⁸⁰⁰]), so the lanes that multiply need
    /// no range test: for a divisor in range and at most 1
    /// ([`Divisor::root_reciprocal`]; every bias correction is) they take the larger of
    /// the fused quotient and the root, which is the quotient for every finite root and
    /// the root itself for ∞ and NaN, whose fused sequence gives NaN. A larger divisor
    /// divides. The default is `self.sqrt_abs().div_by(d)`.
    #[inline(always)]
    fn sqrt_abs_div_by(self, d: Divisor<Self::Scalar>) -> Self {
        self.sqrt_abs().div_by(d)
    }
    /// Lane-wise `self / d` where every lane is a difference of two square roots,
    /// `√|x| − √|y|` (FTRL's `(√n′ − √n)/γ`): the same bits as
    /// [`div_by`](Lanes::div_by), without its range test on the lanes that multiply.
    ///
    /// Such a difference is 0, ±∞, NaN or finite with a magnitude in [2⁻⁹⁸, 2⁶⁴]
    /// (`f32`; `f64`: [2⁻⁵⁸⁹, 2⁵¹²]): every root is 0 or at least 2⁻⁷⁴·⁵ (2⁻⁵³⁷), so
    /// both roots are multiples of 2⁻⁹⁸ (2⁻⁵⁸⁹), the spacing of the binade of the
    /// smallest one. There, for a divisor in [2⁻²⁰, 1] ([`Divisor::root_reciprocal`]),
    /// Markstein's sequence on the magnitude is exact: the quotient is at least the
    /// magnitude (normal), and the residual `q·d − |a|` is a multiple of about
    /// `|a|·2⁻⁴⁶` ≥ 2⁻¹⁴⁴, representable. The lanes that multiply take the larger of
    /// that quotient and the magnitude (the quotient for every finite lane, the
    /// magnitude itself for ∞ and NaN, whose sequence gives NaN) and put the lane's
    /// sign back. A larger divisor divides. For other dividends the bits may differ
    /// from a division; the default is `self.div_by(d)`.
    #[inline(always)]
    fn root_difference_div_by(self, d: Divisor<Self::Scalar>) -> Self {
        self.div_by(d)
    }
    /// Lane-wise `2ᵏ` for lanes holding whole numbers `k ≤ 0`, correctly rounded: `2ᵏ`
    /// exactly down to the least subnormal, 0 below it (`2^(emin − p)`, the tie, rounds
    /// to even: 0); NaN and −∞ give 0, and `k > 0` gives 1 (outside the contract, for
    /// which no caller asks). The scale of the SC rules' exponential
    /// (`crate::rules::mukkamala2017`).
    ///
    /// The default uses the lanes' arithmetic alone: `1` times `2^(−2ⁱ)` for each bit `i`
    /// of `−k`, highest first (8 bits for `f32`, 11 for `f64`), chosen by compares and
    /// selects; every partial product is a power of two, exact until it falls below the
    /// least subnormal and 0 from then on (NaN takes every factor: 0). The scalar
    /// lanes write the power's bits, and the x86-64 AVX2 and AVX-512 lanes build it from
    /// the exponent bits as the product of two normal powers of two
    /// (`2^max(k, emin)·2^(k − max(k, emin))`, one rounding): 11 operations instead of
    /// 40 (`f32`) or 55 (`f64`).
    #[inline(always)]
    fn exp2_nonpositive(self) -> Self {
        exp2_by_selects(self)
    }
}

/// [`Lanes::exp2_nonpositive`] by compares, selects and multiplies alone: `1` times
/// `2^(−2ⁱ)` for each bit `i` of `−k`, highest first (8 bits for `f32`, 11 for `f64`).
/// Every partial product is a power of two, exact until it falls below the least
/// subnormal and 0 from then on (it never rounds up: the first one below is at most
/// the tie). NaN takes every factor (its compares are false): 0.
#[inline(always)]
pub(crate) fn exp2_by_selects<V: Lanes>(k: V) -> V {
    let single = core::mem::size_of::<V::Scalar>() == 4;
    let bits = if single { 8 } else { 11 };
    let one = V::splat(V::Scalar::ONE);
    let mut m = -k;
    let mut scale = one;
    for (i, &factor) in INV_POW2.iter().enumerate().take(bits).rev() {
        let bit = V::splat(V::Scalar::from_f64((1u32 << i) as f64));
        let below = m.lt(bit);
        m = V::select(below, m, m - bit);
        let factor = V::splat(V::Scalar::from_f64(factor));
        scale = scale * V::select(below, one, factor);
    }
    scale
}

/// `2^(−2^i)` for `i = 0..=10`, all exact in `f64` (the last is subnormal), and in `f32`
/// for `i ≤ 7` (`2⁻¹²⁸` is subnormal there): [`Lanes::exp2_nonpositive`]'s factors.
const INV_POW2: [f64; 11] = [
    0.5,
    0.25,
    0.0625,
    0.00390625,
    1.52587890625e-05,
    2.3283064365386963e-10,
    5.421010862427522e-20,
    2.938735877055719e-39,
    8.636168555094445e-78,
    7.458340731200207e-155,
    5.562684646268003e-309,
];

/// A divisor `d` that stays fixed over a step, with `z = RN(1/d)` for the lanes that
/// divide by multiplying.
///
/// With a fused multiply-add, `q = RN(a·z)`, `r = RN(q·d − a)`, `q' = RN(q − r·z)` is the
/// correctly rounded `a/d` for every `a` and `d` for which no step underflows or overflows
/// (Markstein 1990; Brisebarre, Muller & Raina, "Accelerating correctly rounded
/// floating-point division when the divisor is known in advance", IEEE TC 53(8), 2004):
/// `q` is within one ulp of `a/d`, the residual `r` is exact, and one correction with a
/// reciprocal within half an ulp rounds correctly. The sign convention (`q·d − a`, then
/// `q − r·z`) also gives `±0 / d = ±0`.
///
/// The lanes use it only where the conditions hold with room to spare, and divide
/// otherwise: `d` in [2⁻²⁰, 2²⁰] (checked here, once per step), and per vector every lane
/// zero or of magnitude in [2⁻⁸⁰, 2⁸⁰] for `f32`, [2⁻⁸⁰⁰, 2⁸⁰⁰] for `f64` (checked by the
/// lanes: NaN, ∞, subnormal, tiny and huge dividends take the division). `q` then stays a
/// normal number far from overflow, and so does the residual `r` (about `2⁻ᵖ·a`); `r` is
/// exact because the exponents of `q` and `d` add up to about that of `a`, far above
/// `emin + p − 1` (Boldo & Daumas's condition for an exact division residual).
/// The tests of `arch::x86_64` check every `f32` significand against `/` for a set of
/// divisors, on every level the machine has.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Divisor<T> {
    d: T,
    /// `RN(1/d)` where `d` is in range. Only the x86-64 lanes multiply: elsewhere
    /// `Divisor` is `d` alone, so that no target pays a reciprocal per step it does not
    /// use (nor, on a Cortex-M4F, a soft-float range test).
    #[cfg(target_arch = "x86_64")]
    recip: Option<T>,
    /// `RN(1/d)` where `d` is in range and at most 1, as `Lanes::sqrt_abs_div_by`'s
    /// multiplying path needs (a root's quotient is then at least the root; the
    /// x86-64 lanes' `fused_root_quotient`).
    #[cfg(target_arch = "x86_64")]
    root_recip: Option<T>,
}

impl<T: Real> Divisor<T> {
    /// The divisor `d` (any value: the lanes divide by it when it is outside the range
    /// where multiplying is exact).
    #[inline]
    pub fn new(d: T) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let fused = d >= T::from_f64(1.0 / 1048576.0) && d <= T::from_f64(1048576.0);
            let recip = if fused { Some(T::ONE / d) } else { None };
            Divisor {
                d,
                recip,
                root_recip: recip.filter(|_| d <= T::ONE),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Divisor { d }
    }

    /// A divisor with a chosen reciprocal, always on the multiplying path: lets a test
    /// see that path run (a wrong `z` gives a different quotient).
    #[cfg(all(test, target_arch = "x86_64"))]
    pub(crate) fn with_reciprocal(d: T, z: T) -> Self {
        Divisor {
            d,
            recip: Some(z),
            root_recip: Some(z).filter(|_| d <= T::ONE),
        }
    }

    /// The divisor `d`.
    #[inline(always)]
    pub fn value(&self) -> T {
        self.d
    }

    /// `RN(1/d)` when multiplying by it is exact for the dividends the lanes check,
    /// `None` when they must divide (always, on targets other than x86-64).
    #[inline(always)]
    pub fn reciprocal(&self) -> Option<T> {
        #[cfg(target_arch = "x86_64")]
        return self.recip;
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// `RN(1/d)` when `d` is also at most 1, for the quotient of a square root
    /// (`Lanes::sqrt_abs_div_by`), `None` otherwise (always, on targets other than
    /// x86-64).
    #[inline(always)]
    pub fn root_reciprocal(&self) -> Option<T> {
        #[cfg(target_arch = "x86_64")]
        return self.root_recip;
        #[cfg(not(target_arch = "x86_64"))]
        None
    }
}

/// Lanes that can be read from, and written to, buffers whose elements are `S`.
///
/// Today every buffer holds the compute type itself (`f32` or `f64`). This trait is
/// where reduced-precision storage plugs in: an `impl LoadStore<half::f16> for
/// wide::f32x8` lets a rule keep params, grads or state in f16 while computing in f32,
/// without a line of the rule changing.
pub trait LoadStore<S>: Lanes {
    /// Reads `Self::WIDTH` consecutive elements starting at `src`.
    ///
    /// # Safety
    /// `src..src + Self::WIDTH` must be valid for reads.
    unsafe fn load(src: *const S) -> Self;
    /// Writes `Self::WIDTH` consecutive elements starting at `dst`.
    ///
    /// # Safety
    /// `dst..dst + Self::WIDTH` must be valid for writes.
    unsafe fn store(self, dst: *mut S);
}

/// `torch.lerp(a, b, w)` for a per-step weight `w`, with torch's two formulas:
/// `a + w·(b − a)` when `|w| < 0.5`, else `b − (b − a)·(1 − w)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lerp<T> {
    w: T,
    one_minus_w: T,
    small: bool,
}

impl<T: Real> Lerp<T> {
    /// The weight is given in `f64` (a Python float in torch) and rounded to `T` first;
    /// the formula is chosen on the rounded weight, as torch's kernel compares the
    /// weight in the tensor's dtype (`1 − 0.50000001` is below 0.5 as a double and 0.5
    /// as a float).
    pub(crate) fn new(weight: f64) -> Self {
        let w = T::from_f64(weight);
        let one_minus_w = T::ONE - w;
        Lerp {
            w,
            one_minus_w,
            // |w| < 0.5 on the bits less the sign (of `w` widened exactly), which order
            // like the magnitudes (NaN above all): a float comparison is a library call
            // on a core without a double-precision unit, every step.
            small: w.to_f64().to_bits() << 1 < 0.5f64.to_bits() << 1,
        }
    }

    /// `|w| < 0.5`: [`Lerp::apply`] uses `a + w·(b − a)`.
    pub(crate) fn is_small(&self) -> bool {
        self.small
    }

    /// `SMALL` asserts [`Lerp::is_small`] at compile time.
    #[inline(always)]
    pub(crate) fn apply<V: Lanes<Scalar = T>, const SMALL: bool>(&self, a: V, b: V) -> V {
        if SMALL || self.small {
            a + V::splat(self.w) * (b - a)
        } else {
            b - (b - a) * V::splat(self.one_minus_w)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lerp's form is chosen on the bits exactly as `|w| < 0.5` chooses it, `w` the
    /// weight rounded to the lanes' type (torch's comparison, in the tensor's dtype):
    /// ±0.5 and their neighbours, ±0, the infinities, NaNs and random doubles, for f32
    /// and f64. A double just below 0.5 that rounds to 0.5 as a float is not small in
    /// f32 (before session 23 it was, and β₁ in (0.5, 0.5 + 1.5e-8] stepped with the
    /// other formula).
    #[test]
    fn small_weights_are_the_float_comparison() {
        let half = 0.5f64.to_bits();
        let mut ws = crate::testing::SPECIAL_F64.to_vec();
        ws.extend([0.5, -0.5, 0.1, 0.9]);
        ws.extend([half - 1, half + 1, (half - 1) | 1 << 63].map(f64::from_bits));
        let mut rng = crate::testing::Mix(0x9E37_79B9_7F4A_7C15);
        for _ in 0..10_000 {
            ws.push(rng.any_f64());
            ws.push(rng.unit() * 2.0 - 1.0);
        }
        for w in ws {
            assert_eq!(
                Lerp::<f32>::new(w).is_small(),
                (w as f32).abs() < 0.5,
                "{w:e}"
            );
            assert_eq!(Lerp::<f64>::new(w).is_small(), w.abs() < 0.5, "{w:e}");
        }
        let below = f64::from_bits(half - 1);
        assert!(!Lerp::<f32>::new(below).is_small() && Lerp::<f64>::new(below).is_small());
        assert!(!Lerp::<f32>::new(1.0 - 0.50000001).is_small());
    }

    #[test]
    fn inv_pow2_is_exact() {
        for (i, &p) in INV_POW2.iter().enumerate() {
            let mut expect = 1.0f64;
            for _ in 0..(1u32 << i) {
                expect *= 0.5;
            }
            assert_eq!(p.to_bits(), expect.to_bits(), "2^-{}", 1u32 << i);
        }
    }

    /// `exp2_nonpositive` is `2ᵏ` correctly rounded, by the selects (the default) and on
    /// the scalar lanes (bits): exact down to the least subnormal, 0 below; 0 for NaN
    /// and −∞, 1 for `k > 0` and for −0.
    #[test]
    fn exp2_nonpositive_is_the_rounded_power() {
        for k in -1200..=3i32 {
            let want64 = match k {
                1.. => 1.0,
                -1022.. => f64::from_bits(((k + 1023) as u64) << 52),
                -1074.. => f64::from_bits(1 << (k + 1074)),
                _ => 0.0,
            };
            let want32 = match k {
                1.. => 1.0,
                -126.. => f32::from_bits(((k + 127) as u32) << 23),
                -149.. => f32::from_bits(1 << (k + 149)),
                _ => 0.0,
            };
            let x = f64::from(k);
            for got in [exp2_by_selects(x), Lanes::exp2_nonpositive(x)] {
                assert_eq!(got.to_bits(), want64.to_bits(), "2^{k}");
            }
            for got in [exp2_by_selects(x as f32), Lanes::exp2_nonpositive(x as f32)] {
                assert_eq!(got.to_bits(), want32.to_bits(), "2^{k} (f32)");
            }
        }
        for x in [f64::NAN, -f64::NAN, f64::NEG_INFINITY] {
            for got in [exp2_by_selects(x), Lanes::exp2_nonpositive(x)] {
                assert_eq!(got.to_bits(), 0, "2^{x}");
            }
            for got in [exp2_by_selects(x as f32), Lanes::exp2_nonpositive(x as f32)] {
                assert_eq!(got.to_bits(), 0, "2^{x} (f32)");
            }
        }
        for got in [
            exp2_by_selects(f64::INFINITY),
            Lanes::exp2_nonpositive(f64::INFINITY),
        ] {
            assert_eq!(got, 1.0, "2^∞, outside the contract: 1 as for every k > 0");
        }
        assert_eq!(exp2_by_selects(-0.0f64), 1.0);
        assert_eq!(Lanes::exp2_nonpositive(-0.0f64), 1.0);
        assert_eq!(Lanes::exp2_nonpositive(-0.0f32), 1.0);
    }
}
