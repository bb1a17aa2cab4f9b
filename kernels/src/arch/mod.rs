//! Per-instruction-set instantiations of the element loop, and the one place that picks
//! among them (memchr's `arch/` layout).
//!
//! [`Dispatch::run_dispatched`] is what [`crate::driver`] calls for every rule's step. On
//! x86-64 it runs the level `crate::isa` chose (AVX-512F, AVX2, SSE2 or scalar lanes,
//! the first two inside `#[target_feature]` entry points); on every other target it runs
//! the target's compile-time lanes ([`crate::real::Real::Vector`]) exactly as before.

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

use crate::driver::Kernel;
use crate::real::Real;

/// How the element loop runs for one element type: the supertrait of
/// [`Real`] that maps `f32`/`f64` to their lane types per instruction
/// set. Sealed: it lives in a private module, and its only method is `unsafe`.
pub trait Dispatch: Sized {
    /// Runs `kernel` over `n` elements on the lanes of the selected instruction set.
    ///
    /// # Safety
    /// `p`, `g` and every `s[k]` must be valid for `n` elements and must not overlap.
    unsafe fn run_dispatched<const K: usize, F>(
        kernel: &F,
        p: *mut Self,
        g: *const Self,
        s: [*mut Self; K],
        n: usize,
    ) where
        Self: Real,
        F: Kernel<Self, K>;
}

#[cfg(target_arch = "x86_64")]
macro_rules! dispatch_impl {
    ($t:ty, $sse2:ty, $avx2:ty, $avx512:ty) => {
        impl Dispatch for $t {
            #[inline(always)]
            unsafe fn run_dispatched<const K: usize, F: Kernel<$t, K>>(
                kernel: &F,
                p: *mut $t,
                g: *const $t,
                s: [*mut $t; K],
                n: usize,
            ) {
                // SAFETY: forwarded from the caller.
                unsafe { x86_64::run::<$t, $sse2, $avx2, $avx512, K, F>(kernel, p, g, s, n) }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
dispatch_impl!(
    f32,
    wide::f32x4,
    x86_64::avx2::F32x8,
    x86_64::avx512::F32x16
);
#[cfg(target_arch = "x86_64")]
dispatch_impl!(f64, wide::f64x2, x86_64::avx2::F64x4, x86_64::avx512::F64x8);

// Other targets: the compile-time lanes, as before runtime dispatch existed.
#[cfg(not(target_arch = "x86_64"))]
macro_rules! dispatch_impl {
    ($t:ty) => {
        impl Dispatch for $t {
            #[inline(always)]
            unsafe fn run_dispatched<const K: usize, F: Kernel<$t, K>>(
                kernel: &F,
                p: *mut $t,
                g: *const $t,
                s: [*mut $t; K],
                n: usize,
            ) {
                // SAFETY: forwarded from the caller.
                unsafe {
                    crate::driver::run_lanes::<<$t as Real>::Vector, $t, $t, $t, K, F>(
                        kernel, p, g, s, n,
                    )
                }
            }
        }
    };
}

#[cfg(not(target_arch = "x86_64"))]
dispatch_impl!(f32);
#[cfg(not(target_arch = "x86_64"))]
dispatch_impl!(f64);
