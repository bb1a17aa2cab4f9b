//! aarch64: NEON lanes over `core::arch::aarch64`: `float32x4_t` (4 × f32) and
//! `float64x2_t` (2 × f64).
//!
//! NEON (Advanced SIMD) is part of the aarch64 baseline, so there is nothing to detect:
//! every aarch64 build with the `neon` target feature (all of Rust's aarch64 targets)
//! runs these lanes. Every op is one correctly rounded IEEE instruction, with no fused
//! multiply-add, so the bits equal those of the scalar lanes and of every x86-64 level.
//! `max`/`min` are a compare and a bit select rather than `FMAX`/`FMIN`, which would
//! return NaN for a NaN operand and order ±0 where the trait's convention
//! (`if a > b { a } else { b }`) does neither.

// The NEON intrinsics are `unsafe fn`s in older Rust and safe in newer (with the
// feature enabled), so some `unsafe` blocks are needed on one version only.
#![allow(unused_unsafe)]

use core::arch::aarch64::*;
use core::ops::{Add, Div, Mul, Neg, Sub};

use crate::lanes::{Lanes, LoadStore};

macro_rules! neon_lanes {
    (
        $name:ident, $reg:ty, $mask:ty, $t:ty, $n:literal,
        $dup:ident, $add:ident, $sub:ident, $mul:ident, $div:ident, $sqrt:ident,
        $abs:ident, $neg:ident, $cgt:ident, $clt:ident, $ceq:ident, $bsl:ident,
        $ld:ident, $st:ident
    ) => {
        /// A lane vector in one NEON register.
        #[derive(Clone, Copy, Debug)]
        #[repr(transparent)]
        pub struct $name($reg);

        impl Add for $name {
            type Output = Self;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                $name(unsafe { $add(self.0, o.0) })
            }
        }
        impl Sub for $name {
            type Output = Self;
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                $name(unsafe { $sub(self.0, o.0) })
            }
        }
        impl Mul for $name {
            type Output = Self;
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                $name(unsafe { $mul(self.0, o.0) })
            }
        }
        impl Div for $name {
            type Output = Self;
            #[inline(always)]
            fn div(self, o: Self) -> Self {
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                $name(unsafe { $div(self.0, o.0) })
            }
        }
        impl Neg for $name {
            type Output = Self;
            #[inline(always)]
            fn neg(self) -> Self {
                // `FNEG` flips the sign bit, as scalar negation does (also of 0 and NaN).
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                $name(unsafe { $neg(self.0) })
            }
        }

        impl Lanes for $name {
            type Scalar = $t;
            type Mask = $mask;
            const WIDTH: usize = $n;
            #[inline(always)]
            fn splat(x: $t) -> Self {
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                $name(unsafe { $dup(x) })
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                $name(unsafe { $sqrt(self.0) })
            }
            #[inline(always)]
            fn abs(self) -> Self {
                // `FABS` clears the sign bit.
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                $name(unsafe { $abs(self.0) })
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                Self::select(self.gt(other), self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                Self::select(self.lt(other), self, other)
            }
            #[inline(always)]
            fn gt(self, other: Self) -> $mask {
                // `FCMGT`: false when either is NaN, as scalar `>`.
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                unsafe { $cgt(self.0, other.0) }
            }
            #[inline(always)]
            fn lt(self, other: Self) -> $mask {
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                unsafe { $clt(self.0, other.0) }
            }
            #[inline(always)]
            fn eq(self, other: Self) -> $mask {
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                unsafe { $ceq(self.0, other.0) }
            }
            #[inline(always)]
            fn select(mask: $mask, if_true: Self, if_false: Self) -> Self {
                // `BSL` takes each bit from `if_true` where the mask bit is set; the
                // compares give all-ones or all-zeros lanes.
                // SAFETY: NEON is part of every aarch64 target this module compiles for.
                $name(unsafe { $bsl(mask, if_true.0, if_false.0) })
            }
        }

        impl LoadStore<$t> for $name {
            #[inline(always)]
            unsafe fn load(src: *const $t) -> Self {
                // SAFETY: the caller guarantees `$n` readable elements at `src`; `LD1`
                // needs only element alignment, which `*const $t` has.
                $name(unsafe { $ld(src) })
            }
            #[inline(always)]
            unsafe fn store(self, dst: *mut $t) {
                // SAFETY: the caller guarantees `$n` writable elements at `dst`.
                unsafe { $st(dst, self.0) }
            }
        }
    };
}

neon_lanes!(
    F32x4,
    float32x4_t,
    uint32x4_t,
    f32,
    4,
    vdupq_n_f32,
    vaddq_f32,
    vsubq_f32,
    vmulq_f32,
    vdivq_f32,
    vsqrtq_f32,
    vabsq_f32,
    vnegq_f32,
    vcgtq_f32,
    vcltq_f32,
    vceqq_f32,
    vbslq_f32,
    vld1q_f32,
    vst1q_f32
);
neon_lanes!(
    F64x2,
    float64x2_t,
    uint64x2_t,
    f64,
    2,
    vdupq_n_f64,
    vaddq_f64,
    vsubq_f64,
    vmulq_f64,
    vdivq_f64,
    vsqrtq_f64,
    vabsq_f64,
    vnegq_f64,
    vcgtq_f64,
    vcltq_f64,
    vceqq_f64,
    vbslq_f64,
    vld1q_f64,
    vst1q_f64
);

#[cfg(test)]
mod tests {
    //! Each op of the NEON lanes against the one-lane scalar ops, bit for bit, on special
    //! values (NaN, ±0, ±∞, subnormals) in every pairing: where `FMAX`-style NaN and ±0
    //! handling, or a fused operation, would show.

    extern crate std;

    use super::{F32x4, F64x2};
    use crate::lanes::{Lanes, LoadStore};
    use crate::real::Real;
    use std::vec::Vec;

    fn specials<T: Real>() -> Vec<T> {
        [
            0.0,
            -0.0,
            1.0,
            -1.0,
            2.5,
            -3.0,
            1e-310,
            f64::INFINITY,
            -f64::INFINITY,
            f64::NAN,
            -f64::NAN,
            1e30,
        ]
        .map(T::from_f64)
        .to_vec()
    }

    /// Every op on lanes `V` for `a[i], b[i]`, as raw f64 bits, `[op][i]`.
    fn ops<T: Real, V: Lanes<Scalar = T> + LoadStore<T>>(a: &[T], b: &[T]) -> Vec<Vec<u64>> {
        let mut out = std::vec![Vec::new(); 13];
        for (x, y) in a.chunks_exact(V::WIDTH).zip(b.chunks_exact(V::WIDTH)) {
            // SAFETY: each chunk holds exactly WIDTH elements.
            let (x, y) = unsafe { (V::load(x.as_ptr()), V::load(y.as_ptr())) };
            let (zero, one) = (V::splat(T::ZERO), V::splat(T::ONE));
            let r = [
                x + y,
                x - y,
                x * y,
                x / y,
                -x,
                x.sqrt(),
                x.abs(),
                x.max(y),
                x.min(y),
                V::select(x.gt(y), one, zero),
                V::select(x.lt(y), one, zero),
                V::select(x.eq(y), one, zero),
                V::select(x.gt(y), x, y),
            ];
            for (k, v) in r.into_iter().enumerate() {
                let mut buf = [T::ZERO; 4];
                // SAFETY: WIDTH <= 4.
                unsafe { v.store(buf.as_mut_ptr()) };
                out[k].extend(buf[..V::WIDTH].iter().map(|e| e.to_f64().to_bits()));
            }
        }
        out
    }

    fn check<T: Real, V: Lanes<Scalar = T> + LoadStore<T>>() {
        let s = specials::<T>();
        let (a, b): (Vec<T>, Vec<T>) = s
            .iter()
            .flat_map(|&x| s.iter().map(move |&y| (x, y)))
            .unzip();
        // 144 pairs: a multiple of both widths.
        let (got, want) = (ops::<T, V>(&a, &b), ops::<T, T>(&a, &b));
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            for (i, (x, y)) in g.iter().zip(w).enumerate() {
                // A produced NaN's sign is left open by IEEE 754 (Arm's default NaN is
                // positive); a NaN must still be a NaN.
                let (fx, fy) = (f64::from_bits(*x), f64::from_bits(*y));
                let same = x == y || (fx.is_nan() && fy.is_nan() && k != 4 && k != 6);
                assert!(same, "op {k}, pair {i}: {fx} vs {fy}");
            }
        }
    }

    #[test]
    fn lane_ops_equal_scalar_f32() {
        check::<f32, F32x4>();
    }

    #[test]
    fn lane_ops_equal_scalar_f64() {
        check::<f64, F64x2>();
    }
}
