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

use crate::error::{Error, require};
use crate::lanes::Lanes;
use crate::real::Real;

/// `0 < γ ≤ 1`, the paper's condition on `βₜ = 1 − γ/t` (`γ > 1` would make `β₁`
/// negative, `γ = 0` would never update the average).
pub(crate) fn check_gamma(gamma: f64) -> Result<(), Error> {
    require(
        gamma > 0.0 && gamma <= 1.0,
        "gamma",
        gamma,
        "must be in (0, 1]",
    )
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
    let c = |v: f64| V::splat(T::from_f64(v));
    let lower = c(k.lower);
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
}
