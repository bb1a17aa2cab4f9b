//! Multi-lane `Lanes` over the `wide` crate, the portable SIMD backend (SSE/AVX/AVX-512
//! on x86, NEON on aarch64, simd128 on wasm, chosen by `wide` at compile time).

use super::{Lanes, LoadStore};
use wide::{f32x4, f32x8, f32x16, f64x2, f64x4, f64x8};

macro_rules! wide_lanes {
    ($v:ty, $t:ty, $n:literal) => {
        impl Lanes for $v {
            type Scalar = $t;
            type Mask = $v;
            const WIDTH: usize = $n;
            #[inline(always)]
            fn splat(x: $t) -> Self {
                <$v>::splat(x)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$v>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$v>::abs(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                // `fast_max` is the plain `maxps`: `if a > b { a } else { b }`.
                <$v>::fast_max(self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                <$v>::fast_min(self, other)
            }
            #[inline(always)]
            fn gt(self, other: Self) -> Self {
                <$v>::simd_gt(self, other)
            }
            #[inline(always)]
            fn lt(self, other: Self) -> Self {
                <$v>::simd_lt(self, other)
            }
            #[inline(always)]
            fn eq(self, other: Self) -> Self {
                <$v>::simd_eq(self, other)
            }
            #[inline(always)]
            fn select(mask: Self, if_true: Self, if_false: Self) -> Self {
                mask.select(if_true, if_false)
            }
        }

        impl LoadStore<$t> for $v {
            #[inline(always)]
            unsafe fn load(src: *const $t) -> Self {
                // SAFETY: the caller guarantees `$n` readable elements at `src`;
                // `read_unaligned` has no alignment requirement.
                <$v>::from(unsafe { src.cast::<[$t; $n]>().read_unaligned() })
            }
            #[inline(always)]
            unsafe fn store(self, dst: *mut $t) {
                // SAFETY: the caller guarantees `$n` writable elements at `dst`.
                unsafe { dst.cast::<[$t; $n]>().write_unaligned(self.to_array()) }
            }
        }
    };
}

wide_lanes!(f32x4, f32, 4);
wide_lanes!(f32x8, f32, 8);
wide_lanes!(f32x16, f32, 16);
wide_lanes!(f64x2, f64, 2);
wide_lanes!(f64x4, f64, 4);
wide_lanes!(f64x8, f64, 8);
