//! What the rules of Mukkamala & Hein, "Variants of RMSProp and Adagrad with
//! Logarithmic Regret Bounds" (ICML 2017) share: the check of `γ` in `βₜ = 1 − γ/t`, and
//! `eˣ` for `x ≤ 0` on lanes.
//!
//! The damping `ξ₂·e^(−ξ₁·v)` of the strongly convex rules (SC-Adagrad, SC-RMSprop)
//! needs an exponential per element, and the lane abstraction has only `+ − × ÷ √`,
//! comparisons and selects. So the exponential is written once here over [`Lanes`], and
//! the vector kernels and the scalar references both call it (it is a primitive that
//! defines the semantics, like the scalar square root): the two paths give the same
//! bits on every target.
//!
//! The algorithm is fdlibm's `e_exp.c` (f64) and `e_expf.c` (f32), restricted to
//! `x ≤ 0`: `x = k·ln2 + r` with `|r| ≤ ln2/2` (`k` rounded with the `1.5·2ᵖ` shift
//! trick, `ln2` split into a short high part so that `k·ln2_hi` is exact), `eʳ` from
//! fdlibm's rational form `1 − ((lo − r·c/(2 − c)) − hi)`, then a multiply by the exact
//! power of two `2ᵏ` (`Lanes::exp2_nonpositive`). Error: within 1 ulp of
//! the exact value (fdlibm's bound; the unit tests check it against `libm` for the whole
//! range). Inputs below `−746` (f64) or `−104` (f32) give 0 or the smallest subnormal,
//! `−∞` gives 0, NaN gives NaN. Positive inputs are outside its contract (the rules
//! never pass one; they would give wrong values, not undefined behaviour).

use crate::error::{Error, check};
use crate::lanes::Lanes;
use crate::real::Real;

/// `0 < γ ≤ 1`, the paper's condition on `βₜ = 1 − γ/t` (`γ > 1` would make `β₁`
/// negative, `γ = 0` would never update the average).
pub(crate) fn check_gamma(gamma: f64) -> Result<(), Error> {
    check::unit_positive("gamma", gamma)
}

/// The constants of one precision: fdlibm's (`e_exp.c`, `e_expf.c`), written as the
/// shortest decimals of the same doubles (f32: of the same floats).
struct Consts {
    /// Inputs are clamped to `[lower, 0]`: below it the result is 0 (or the smallest
    /// subnormal) in this precision.
    lower: f64,
    /// `1.5·2ᵖ` (p = mantissa bits): adding and subtracting it rounds to an integer.
    shift: f64,
    inv_ln2: f64,
    ln2_hi: f64,
    ln2_lo: f64,
    /// The rational approximation's coefficients (fdlibm's P1..P5; f32 uses two).
    p: [f64; 5],
}

const F64: Consts = Consts {
    lower: -746.0,
    shift: 6755399441055744.0,
    inv_ln2: core::f64::consts::LOG2_E,
    ln2_hi: 0.6931471803691238,
    ln2_lo: 1.9082149292705877e-10,
    p: [
        0.16666666666666602,
        -0.0027777777777015593,
        6.613756321437934e-05,
        -1.6533902205465252e-06,
        4.1381367970572385e-08,
    ],
};

const F32: Consts = Consts {
    lower: -104.0,
    shift: 12582912.0,
    inv_ln2: core::f32::consts::LOG2_E as f64,
    ln2_hi: 0.693145751953125,
    ln2_lo: 1.428606765330187e-06,
    p: [0.16666625440120697, -0.0027667332906275988, 0.0, 0.0, 0.0],
};

/// `eˣ` for `x ≤ 0` (see the module docs), lane by lane.
#[inline(always)]
pub(crate) fn exp_nonpositive<T: Real, V: Lanes<Scalar = T>>(x: V) -> V {
    let single = core::mem::size_of::<T>() == 4;
    let k = if single { &F32 } else { &F64 };
    exp_nonpositive_above(x, T::from_f64(k.lower))
}

/// [`exp_nonpositive`] with inputs below `lower` raised to it (`lower` at least the
/// precision's own clamp, −104 or −746: [`Damping`] raises it further).
#[inline(always)]
fn exp_nonpositive_above<T: Real, V: Lanes<Scalar = T>>(x: V, lower: T) -> V {
    let single = core::mem::size_of::<T>() == 4;
    let k = if single { &F32 } else { &F64 };
    let c = |v: f64| V::splat(T::from_f64(v));
    let lower = V::splat(lower);
    // A select, not `max`: NaN stays NaN (the comparison is false for it).
    let x = V::select(x.lt(lower), lower, x);
    let shift = c(k.shift);
    let kf = (x * c(k.inv_ln2) + shift) - shift;
    let hi = x - kf * c(k.ln2_hi);
    let lo = kf * c(k.ln2_lo);
    let r = hi - lo;
    let t = r * r;
    let poly = if single {
        c(k.p[0]) + t * c(k.p[1])
    } else {
        c(k.p[0]) + t * (c(k.p[1]) + t * (c(k.p[2]) + t * (c(k.p[3]) + t * c(k.p[4]))))
    };
    let cr = r - t * poly;
    let one = V::splat(T::ONE);
    let y = one - ((lo - (r * cr) / (c(2.0) - cr)) - hi);
    // 2ᵏ for the whole number k ≤ 0, correctly rounded.
    y * kf.exp2_nonpositive()
}

/// The SC rules' damped denominator `x + ξ₂·e^(−ξ₁·x)` (`x`: SC-Adagrad's `v`,
/// SC-RMSprop's `t·v`), the same bits as computed as written, without subnormal
/// arithmetic where the damping is negligible.
///
/// As `x` grows the damping passes through the subnormal range on its way to 0, and on
/// x86-64 an operation with a subnormal operand or result takes a microcode assist (the
/// other targets compute the formula as written): a Zen 5 stepped SC-Adagrad's 1024
/// params in 400 ns and then, once some lanes' damping was subnormal, in 1 560 ns (and
/// in 400 again with flush-to-zero set, which changes the bits). So the exponent
/// `z = −ξ₁·x` is raised to a floor `c` where it is below it (by the exponential's own
/// clamp, moved up): there the damping is far
/// below half an ulp of `x` both at `z` and at `c`, so the sum rounds to `x` either
/// way, and at `c` it is a normal number.
///
/// Why (`f32`; `f64` likewise with 2⁻¹⁰⁰⁰, 2⁻⁹⁴⁶ and 2⁻¹⁰⁷⁴): `c` is where
/// `ξ₂·eᶜ` is in [2⁻¹¹⁶, 2⁻¹¹⁵) (from ξ₂'s binary exponent), used when ξ₂ is normal,
/// `ξ₂ ≤ 1`, `c ≤ −1` and `ξ₁ ≤ 2⁶⁰`; it replaces the exponential's own clamp (−104)
/// where it is above it, so no operation is added. For `z < c`, the computed
/// exponential `E(z)` is within one ulp of `eᶻ` (relative `2⁻²²` where normal, absolute
/// `2⁻¹⁴⁹` below), so `RN(ξ₂·E(z)) ≤ 2⁻¹¹⁵·(1 + 2⁻²¹) + 2⁻¹⁴⁸ < 2⁻¹¹⁴`, and
/// `RN(ξ₂·E(c))`, at least about `2⁻¹¹⁶`, is normal and below `2⁻¹¹⁴` too. And `x > −c/ξ₁·(1 − 2⁻²³) ≥ 2⁻⁶¹ > 2⁻⁸⁹`,
/// where half an ulp of `x` exceeds `2⁻¹¹⁴`: `RN(x + δ) = x` for both dampings. NaN
/// (the compare is false) and `z ≥ c` take the formula as written; `x = ∞` gives ∞
/// either way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Damping<T> {
    neg_xi_1: T,
    xi_2: T,
    /// The exponential's clamp: the floor of `z` where it applies, else the
    /// precision's own (−104, −746).
    lower: T,
}

impl<T: Real> Damping<T> {
    pub(crate) fn new(xi_1: f64, xi_2: f64) -> Damping<T> {
        let single = core::mem::size_of::<T>() == 4;
        let (own, damping, xi_1_max) = if single {
            (F32.lower, -115, f64::from_bits((1023 + 60) << 52))
        } else {
            (F64.lower, -1000, f64::from_bits((1023 + 900) << 52))
        };
        // ξ₂ < 2^(e+1) for its binary exponent e (normal, ξ₂ ≤ 1), so at
        // c = (damping − e − 1)·ln 2 the damping ξ₂·eᶜ is in [2^(damping−1), 2^damping):
        // `c = damping·ln 2 − ln ξ₂` of the proof, to within one binade (no `log`).
        let e = ((xi_2.to_bits() >> 52) & 0x7ff) as i32 - 1023;
        let floor = f64::from(damping - e - 1) * core::f64::consts::LN_2;
        // Only x86-64 pays for subnormals: elsewhere the clamp stays the precision's own.
        let applies = cfg!(target_arch = "x86_64")
            && (f64::MIN_POSITIVE..=1.0).contains(&xi_2)
            && floor <= -1.0
            && xi_1 <= xi_1_max;
        Damping {
            neg_xi_1: T::from_f64(-xi_1),
            xi_2: T::from_f64(xi_2),
            lower: T::from_f64(if applies { floor.max(own) } else { own }),
        }
    }

    /// `x + ξ₂·e^(−ξ₁·x)`, lane by lane.
    #[inline(always)]
    pub(crate) fn denominator<V: Lanes<Scalar = T>>(&self, x: V) -> V {
        let z = V::splat(self.neg_xi_1) * x;
        x + V::splat(self.xi_2) * exp_nonpositive_above::<T, V>(z, self.lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps64(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    fn ulps32(a: f32, b: f32) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn f64_within_one_ulp_of_libm() {
        let mut worst = 0;
        let mut x = 0.0f64;
        // Every step of 1/1024 in [−750, 0], plus irregular points.
        while x > -750.0 {
            for y in [x, x - 0.000_123_456_789, x * 0.999_999_7] {
                let ours = exp_nonpositive::<f64, f64>(y);
                let exact = libm::exp(y);
                worst = worst.max(ulps64(ours, exact));
            }
            x -= 1.0 / 1024.0;
        }
        assert!(worst <= 1, "worst {worst} ulp");
        assert_eq!(exp_nonpositive::<f64, f64>(0.0), 1.0);
        assert_eq!(exp_nonpositive::<f64, f64>(-0.0), 1.0);
        assert_eq!(exp_nonpositive::<f64, f64>(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive::<f64, f64>(-1e300), 0.0);
        assert!(exp_nonpositive::<f64, f64>(f64::NAN).is_nan());
        assert_eq!(
            exp_nonpositive::<f64, f64>(-1.0),
            core::f64::consts::E.recip()
        );
    }

    #[test]
    fn f32_within_one_ulp_of_libm() {
        let mut worst = 0;
        let mut x = 0.0f32;
        while x > -110.0 {
            for y in [x, x - 0.000_123_4, x * 0.999_97] {
                let ours = exp_nonpositive::<f32, f32>(y);
                let exact = libm::exp(y as f64) as f32;
                worst = worst.max(ulps32(ours, exact));
            }
            x -= 1.0 / 512.0;
        }
        assert!(worst <= 1, "worst {worst} ulp");
        assert_eq!(exp_nonpositive::<f32, f32>(0.0), 1.0);
        assert_eq!(exp_nonpositive::<f32, f32>(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive::<f32, f32>(f32::NAN).is_nan());
    }

    #[test]
    fn lanes_equal_scalars() {
        use crate::lanes::{F32Vector, F64Vector, LoadStore};
        let xs: [f64; 16] = core::array::from_fn(|i| -(i as f64) * 37.3 - 0.01 * i as f64);
        let mut out = [0.0f64; 16];
        let w = <F64Vector as Lanes>::WIDTH;
        for (chunk, dst) in xs.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
            // SAFETY: each chunk holds exactly one vector's worth of elements.
            unsafe {
                let v = <F64Vector as LoadStore<f64>>::load(chunk.as_ptr());
                exp_nonpositive::<f64, F64Vector>(v).store(dst.as_mut_ptr());
            }
        }
        for (x, y) in xs.iter().zip(&out) {
            assert_eq!(exp_nonpositive::<f64, f64>(*x).to_bits(), y.to_bits());
        }
        let xs: [f32; 16] = core::array::from_fn(|i| -(i as f32) * 6.9 - 0.01 * i as f32);
        let mut out = [0.0f32; 16];
        let w = <F32Vector as Lanes>::WIDTH;
        for (chunk, dst) in xs.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
            // SAFETY: each chunk holds exactly one vector's worth of elements.
            unsafe {
                let v = <F32Vector as LoadStore<f32>>::load(chunk.as_ptr());
                exp_nonpositive::<f32, F32Vector>(v).store(dst.as_mut_ptr());
            }
        }
        for (x, y) in xs.iter().zip(&out) {
            assert_eq!(exp_nonpositive::<f32, f32>(*x).to_bits(), y.to_bits());
        }
    }

    /// Where the damping underflows (the lanes whose exponent [`Damping`] raises),
    /// the step equals the reference bit for bit: states whose `ξ₁·x` runs from 0 past
    /// the floor and the exponential's own clamp, for several ξ₁ and ξ₂ (ξ₂ > 1 and
    /// ξ₁ > 2⁶⁰, where the floor does not apply; ξ₁ just under 2⁶⁰, where x at the floor
    /// is smallest), f32 and f64, three steps, on every level.
    #[test]
    fn damping_underflow_matches_the_reference() {
        extern crate std;
        use crate::rules::{Rule, StepCount};
        use crate::{ScAdagrad, ScRmsProp};
        use std::vec::Vec;

        fn case<T: Real, R: Rule<Scalars = StepCount>>(rule: &R, xi_1: f64, top: f64) {
            let n = 3001;
            // ξ₁·x from 0 to `top`, and a few specials.
            let mut v: Vec<T> = (0..n)
                .map(|i| T::from_f64(i as f64 * top / (n - 1) as f64 / xi_1))
                .collect();
            v[7] = T::from_f64(f64::INFINITY);
            v[8] = T::from_f64(f64::NAN);
            v[9] = T::ZERO;
            // Every other gradient tiny, so that x = v + g² stays as small as the state
            // (the damping then matters most against x).
            let g: Vec<T> = (0..n)
                .map(|i| {
                    let scale = if i % 2 == 0 { 1.0 } else { 1e-9 };
                    T::from_f64((((i * 7919) % 23) as f64 / 23.0 - 0.5) * scale)
                })
                .collect();
            let p0: Vec<T> = (0..n).map(|i| T::from_f64((i % 5) as f64 * 0.1)).collect();
            let (mut p, mut q) = (p0.clone(), p0);
            let (mut s, mut r) = (v.clone(), v);
            let (mut a, mut b) = (StepCount::new(4), StepCount::new(4));
            for _ in 0..3 {
                rule.step(&mut a, &mut p, &g, &mut [&mut s[..]]).unwrap();
                rule.step_reference(&mut b, &mut q, &g, &mut [&mut r[..]])
                    .unwrap();
            }
            for (i, (x, y)) in p.iter().zip(&q).chain(s.iter().zip(&r)).enumerate() {
                // A NaN state gives NaN either way (its sign differs: the kernel
                // multiplies by −ξ₁, the reference negates ξ₁·x).
                let (x, y) = (x.to_f64(), y.to_f64());
                assert!(
                    x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan(),
                    "element {i}: {x:e} against {y:e}"
                );
            }
        }

        let all = || {
            for (xi_1, xi_2) in [
                (0.1, 0.1),
                (0.1, 1.0),
                (0.1, 3.0),
                (2.0, 1e-30),
                (1e-20, 0.5),
                (5.7e17, 0.5),
                (1e30, 0.1),
            ] {
                let adagrad = ScAdagrad {
                    xi_1,
                    xi_2,
                    ..ScAdagrad::default()
                };
                let rmsprop = ScRmsProp {
                    xi_1,
                    xi_2,
                    ..ScRmsProp::default()
                };
                case::<f32, _>(&adagrad, xi_1, 130.0);
                case::<f64, _>(&adagrad, xi_1, 800.0);
                // SC-RMSprop's x is t·v: t = 5 on the first step here.
                case::<f32, _>(&rmsprop, xi_1 * 5.0, 130.0);
                case::<f64, _>(&rmsprop, xi_1 * 5.0, 800.0);
            }
        };
        #[cfg(target_arch = "x86_64")]
        {
            use crate::isa::{self, Level};
            for level in Level::ALL {
                if isa::set_level(Some(level)) {
                    all();
                }
            }
            isa::set_level(None);
        }
        #[cfg(not(target_arch = "x86_64"))]
        all();
    }
}
