//! Per-instruction-set instantiations of the element loop, and the one place that picks
//! among them (memchr's `arch/` layout).
//!
//! [`Dispatch::run_dispatched`] is what [`crate::driver`] calls for every rule's step, and
//! [`Dispatch::with_lanes`] what the gradient utilities' loops (`crate::reduce`: norms,
//! finiteness checks, in-place maps) call. On x86-64 both run on the level `crate::isa`
//! chose (AVX-512F, AVX2, SSE2 or scalar lanes, the first two inside `#[target_feature]`
//! entry points); on aarch64 on NEON lanes (`core::arch::aarch64`, baseline there, so
//! nothing to detect); on every other target on the target's compile-time lanes
//! ([`crate::real::Real::Vector`]).

#[cfg(all(target_arch = "aarch64", gradstep_simd))]
pub(crate) mod aarch64;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

use crate::driver::Kernel;
use crate::lanes::{Lanes, LoadStore};
use crate::real::Real;

/// A computation written once over a lane type, which [`Dispatch::with_lanes`] calls
/// with the lanes of the selected instruction set. `call` must be `#[inline(always)]`,
/// like everything it calls on the lanes, so that it compiles inside the
/// `#[target_feature]` entry point.
///
/// `pub` only so that [`Dispatch`] can name it; this module is private.
pub trait LaneFn<T: Real> {
    /// What the computation returns (no lane type can appear in it).
    type Output;
    /// Runs the computation on lanes `V`.
    fn call<V: Lanes<Scalar = T> + LoadStore<T>>(self) -> Self::Output;
}

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

    /// Calls `f` with the lane type of the selected instruction set.
    fn with_lanes<F: LaneFn<Self>>(f: F) -> F::Output
    where
        Self: Real;
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

            #[inline(always)]
            fn with_lanes<F: LaneFn<$t>>(f: F) -> F::Output {
                x86_64::with_lanes::<$t, $sse2, $avx2, $avx512, F>(f)
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

// Other targets: one lane type per element type, chosen at compile time: NEON on
// aarch64 (baseline there), the target's `wide` vector (or scalars) elsewhere.
#[cfg(not(target_arch = "x86_64"))]
macro_rules! dispatch_impl {
    ($t:ty, $v:ty) => {
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
                unsafe { crate::driver::run_lanes::<$v, $t, $t, $t, K, F>(kernel, p, g, s, n) }
            }

            #[inline(always)]
            fn with_lanes<F: LaneFn<$t>>(f: F) -> F::Output {
                f.call::<$v>()
            }
        }
    };
}

#[cfg(all(target_arch = "aarch64", gradstep_simd))]
dispatch_impl!(f32, aarch64::F32x4);
#[cfg(all(target_arch = "aarch64", gradstep_simd))]
dispatch_impl!(f64, aarch64::F64x2);
#[cfg(not(any(target_arch = "x86_64", all(target_arch = "aarch64", gradstep_simd))))]
dispatch_impl!(f32, <f32 as Real>::Vector);
#[cfg(not(any(target_arch = "x86_64", all(target_arch = "aarch64", gradstep_simd))))]
dispatch_impl!(f64, <f64 as Real>::Vector);
