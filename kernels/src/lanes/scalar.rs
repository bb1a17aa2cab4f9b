//! One-lane `Lanes`: the scalar types themselves.

use super::{Lanes, LoadStore};

macro_rules! scalar_lanes {
    ($t:ty, $sqrt:path) => {
        impl Lanes for $t {
            type Scalar = $t;
            type Mask = bool;
            const WIDTH: usize = 1;
            #[inline(always)]
            fn splat(x: $t) -> Self {
                x
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                if self > other { self } else { other }
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                if self < other { self } else { other }
            }
            #[inline(always)]
            fn gt(self, other: Self) -> bool {
                self > other
            }
            #[inline(always)]
            fn lt(self, other: Self) -> bool {
                self < other
            }
            #[inline(always)]
            fn eq(self, other: Self) -> bool {
                self == other
            }
            #[inline(always)]
            fn select(mask: bool, if_true: Self, if_false: Self) -> Self {
                if mask { if_true } else { if_false }
            }
        }

        impl LoadStore<$t> for $t {
            #[inline(always)]
            unsafe fn load(src: *const $t) -> Self {
                // SAFETY: the caller guarantees `src` is valid for one read.
                unsafe { src.read() }
            }
            #[inline(always)]
            unsafe fn store(self, dst: *mut $t) {
                // SAFETY: the caller guarantees `dst` is valid for one write.
                unsafe { dst.write(self) }
            }
        }
    };
}

scalar_lanes!(f32, libm::sqrtf);
scalar_lanes!(f64, libm::sqrt);
