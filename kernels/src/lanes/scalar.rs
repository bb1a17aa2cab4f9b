//! One-lane `Lanes`: the scalar types themselves.

use super::{Lanes, LoadStore};

macro_rules! scalar_lanes {
    ($t:ty, $bits:ty, $sqrt:path, $sqrt_abs:path) => {
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
            fn sqrt_abs(self) -> Self {
                $sqrt_abs(self)
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
            /// The power from its bits: `k + bias` in the exponent field, or the one bit
            /// of a subnormal (a compare, a conversion and integer work, against eight
            /// or eleven compares, selects, subtractions and multiplies in the default:
            /// on the Cortex-M0, where each is a soft-float call, most of the SC rules'
            /// step).
            #[inline(always)]
            // `!(k > low)` is true for NaN too: one compare, a soft-float call on the M0.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            fn exp2_nonpositive(self) -> Self {
                const P: i32 = <$t>::MANTISSA_DIGITS as i32;
                const EMIN: i32 = <$t>::MIN_EXP - 1;
                // NaN, −∞ and k ≤ emin − p (2^(emin − p), the tie, rounds to even): 0.
                if !(self > (EMIN - P) as $t) {
                    return 0.0;
                }
                let k = if self > 0.0 { 0 } else { self as i32 };
                if k >= EMIN {
                    <$t>::from_bits(((k - EMIN + 1) as $bits) << (P - 1))
                } else {
                    <$t>::from_bits(1 << (k - EMIN + P - 1))
                }
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

#[cfg(not(all(target_arch = "arm", target_os = "none", target_abi = "eabihf")))]
scalar_lanes!(f32, u32, libm::sqrtf, sqrt_abs_f32);
#[cfg(all(target_arch = "arm", target_os = "none", target_abi = "eabihf"))]
scalar_lanes!(f32, u32, vsqrt_f32, sqrt_abs_f32);
scalar_lanes!(f64, u64, libm::sqrt, sqrt_abs_f64);

#[inline(always)]
fn sqrt_abs_f64(x: f64) -> f64 {
    libm::sqrt(x.abs())
}

#[cfg(not(all(target_arch = "arm", target_os = "none", target_abi = "eabihf")))]
#[inline(always)]
fn sqrt_abs_f32(x: f32) -> f32 {
    libm::sqrtf(x.abs())
}

/// `√|x|` on bare-metal hard-float Arm: one `VABS.F32` and one `VSQRT.F32`, inline.
///
/// LLVM knows C's `sqrtf` and, when it can prove the argument is not negative (here
/// by `abs`), replaces the call by its square-root instruction: no call, and no check
/// for a negative argument (where C's `sqrtf` would set `errno`). Unoptimized builds
/// keep the call, which the weak `sqrtf` below answers (a C library's own `sqrtf`, if
/// one is linked, takes precedence; either is correctly rounded).
#[cfg(all(target_arch = "arm", target_os = "none", target_abi = "eabihf"))]
#[inline(always)]
fn sqrt_abs_f32(x: f32) -> f32 {
    unsafe extern "C" {
        safe fn sqrtf(x: f32) -> f32;
    }
    sqrtf(x.abs())
}

// The fallback `sqrtf` for unoptimized builds (see `sqrt_abs_f32`), weak so that it never
// clashes with a C library's.
#[cfg(all(target_arch = "arm", target_os = "none", target_abi = "eabihf"))]
core::arch::global_asm!(
    ".fpu fpv4-sp-d16",
    ".section .text.gradstep_sqrtf,\"ax\",%progbits",
    ".weak sqrtf",
    ".type sqrtf,%function",
    ".thumb_func",
    "sqrtf:",
    "vsqrt.f32 s0, s0",
    "bx lr",
    ".size sqrtf, . - sqrtf",
);

/// `√x` in one `VSQRT.F32`, on bare-metal Arm with a hardware-float ABI (Cortex-M4F,
/// M7, M33 with an FPU).
///
/// `VSQRT` is IEEE-754 correctly rounded, as `libm::sqrtf` is, so the bits are the same;
/// libm computes it in integer arithmetic (about 50 instructions on a Cortex-M4F),
/// because stable Rust has no `f32::sqrt` in `core`, and inline assembly cannot name an
/// `s` register on these targets (the `sreg` class requires the `vfp2` feature, which
/// includes double precision). A naked function follows the hard-float calling
/// convention instead: the argument and the result are in `s0`. The call costs two
/// instructions (`bl`, `bx lr`) more than an inlined `VSQRT` would.
#[cfg(all(target_arch = "arm", target_os = "none", target_abi = "eabihf"))]
#[unsafe(naked)]
extern "C" fn vsqrt_f32(x: f32) -> f32 {
    // The hard-float procedure call standard passes `x` and returns the result in `s0`;
    // the body touches nothing else. Naked functions are assembled without the target's
    // FPU features, so `.fpu` names the least FPU with `VSQRT.F32` (that of the M4F).
    core::arch::naked_asm!(".fpu fpv4-sp-d16", "vsqrt.f32 s0, s0", "bx lr")
}
