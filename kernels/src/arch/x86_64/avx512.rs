//! AVX-512F lanes over `core::arch`: `__m512` (16 × f32) and `__m512d` (8 × f64).
//!
//! Only AVX-512F instructions (no DQ: negation is an integer XOR of the sign bit), each
//! one correctly rounded IEEE operation, so the bits equal those of the scalar lanes. The
//! one use of fused multiply-adds, [`Lanes::div_by`], is Markstein's correctly rounded
//! division (see [`Divisor`]): the same bits as the division it replaces. As in [`super::avx2`], the methods are `#[inline(always)]` and inline into the
//! `#[target_feature(enable = "avx512f")]` entry point ([`super::run_avx512`]), the only
//! code that creates values of these types, run only after [`crate::isa`] found
//! AVX-512F (and its register state enabled by the OS) on the CPU.

use core::arch::x86_64::*;
use core::ops::{Add, Div, Mul, Neg, Sub};

use crate::lanes::{Divisor, Lanes, LoadStore};

macro_rules! avx512_lanes {
    (
        $name:ident, $reg:ty, $t:ty, $n:literal, $mask:ty, $sign:expr,
        $set1:ident, $set1i:ident, $add:ident, $sub:ident, $mul:ident, $div:ident,
        $sqrt:ident, $abs:ident, $castto:ident, $castfrom:ident, $max:ident, $min:ident,
        $cmp:ident, $blend:ident, $loadu:ident, $storeu:ident,
        $fmsub:ident, $fnmadd:ident, $lo:expr, $hi:expr, $all:expr,
        $int:ty, $subi:ident, $cmpleu:ident, $addi:ident, $mant:literal, $slli:ident
    ) => {
        /// A lane vector in one AVX-512 register. Values exist only inside the AVX-512
        /// entry point, after runtime detection (see the module docs).
        #[derive(Clone, Copy, Debug)]
        #[repr(transparent)]
        pub struct $name($reg);

        impl Add for $name {
            type Output = Self;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                $name(unsafe { $add(self.0, o.0) })
            }
        }
        impl Sub for $name {
            type Output = Self;
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                $name(unsafe { $sub(self.0, o.0) })
            }
        }
        impl Mul for $name {
            type Output = Self;
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                $name(unsafe { $mul(self.0, o.0) })
            }
        }
        impl Div for $name {
            type Output = Self;
            #[inline(always)]
            fn div(self, o: Self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                $name(unsafe { $div(self.0, o.0) })
            }
        }
        impl Neg for $name {
            type Output = Self;
            #[inline(always)]
            fn neg(self) -> Self {
                // Flips the sign bit, as scalar negation does (also of 0 and NaN).
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                $name(unsafe { $castfrom(_mm512_xor_si512($castto(self.0), $set1i($sign))) })
            }
        }

        impl $name {
            /// Whether every lane is zero or has a magnitude in [lo, hi], where the
            /// multiplying division is exact ([`Divisor`]).
            ///
            /// First by the bits: the magnitudes' bits minus lo's, as unsigned integers,
            /// are at most hi's minus lo's exactly for magnitudes in [lo, hi] (the order of
            /// non-negative floats is their bits' order; NaN lies above ∞): one integer
            /// compare. A zero wraps and fails that, and only then is the test made in
            /// full, with zero allowed. (The three float compares and two mask operations
            /// on every vector cost LAMB a third of its step on a Zen 5.)
            #[inline(always)]
            fn in_fused_range(self) -> bool {
                const LO: $int = ($lo as $t).to_bits() as $int;
                const HI: $int = ($hi as $t).to_bits() as $int;
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                unsafe {
                    let bits = _mm512_and_si512($castto(self.0), $set1i(!$sign));
                    let above = $subi(bits, $set1i(LO));
                    if $cmpleu(above, $set1i(HI - LO)) == $all {
                        return true;
                    }
                    let m = $abs(self.0);
                    let zero = $cmp::<_CMP_EQ_OQ>(m, $set1(0.0));
                    let big = $cmp::<_CMP_LE_OQ>(m, $set1($hi));
                    zero | $cmp::<_CMP_GE_OQ>(m, $set1($lo)) & big == $all
                }
            }

            /// `self / d` for `self` a square root (every lane +0, positive, +∞ or NaN)
            /// by Markstein's sequence with `z = RN(1/d)`, `d` in [`Divisor`]'s range and
            /// at most 1 ([`Divisor::root_reciprocal`]). The sequence's one wrong lane,
            /// `∞ / d` (its residual `∞ − ∞` is NaN), is restored without a test or a
            /// branch: a finite root's quotient is exact and, as `d ≤ 1`, at least the
            /// root, so the maximum of the two is the quotient; `vmaxps` (`vmaxpd`) returns its
            /// second operand, the root, when either is NaN: `∞` for `∞` (as `∞ / d`),
            /// and a NaN root itself (as its division does).
            #[inline(always)]
            fn fused_root_quotient(self, z: $t, d: $t) -> Self {
                let q = self.fused_quotient(z, d);
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                $name(unsafe { $max(q.0, self.0) })
            }

            /// `self` (every lane's sign bit clear) with `src`'s sign bits.
            #[inline(always)]
            fn with_sign_of(self, src: Self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                unsafe {
                    let sign = _mm512_and_si512($castto(src.0), $set1i($sign));
                    $name($castfrom(_mm512_or_si512($castto(self.0), sign)))
                }
            }

            /// `self / d` by Markstein's sequence with `z = RN(1/d)`: exact where
            /// [`Divisor`] says (the callers test that).
            #[inline(always)]
            fn fused_quotient(self, z: $t, d: $t) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX-512F, which
                // includes the 512-bit fused multiply-adds.
                unsafe {
                    let (a, z, b) = (self.0, $set1(z), $set1(d));
                    let q = $mul(a, z);
                    $name($fnmadd($fmsub(q, b, a), z, q))
                }
            }
        }

        impl Lanes for $name {
            type Scalar = $t;
            type Mask = $mask;
            const WIDTH: usize = $n;
            #[inline(always)]
            fn splat(x: $t) -> Self {
                // SAFETY: called only inside the AVX-512 entry point (module docs).
                $name(unsafe { $set1(x) })
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                $name(unsafe { $sqrt(self.0) })
            }
            #[inline(always)]
            fn abs(self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                $name(unsafe { $abs(self.0) })
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                // `vmaxps a, b` is `if a > b { a } else { b }` (the second operand when
                // either is NaN or both are zero), the trait's convention.
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                $name(unsafe { $max(self.0, other.0) })
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                $name(unsafe { $min(self.0, other.0) })
            }
            #[inline(always)]
            fn gt(self, other: Self) -> $mask {
                // Ordered, quiet: false when either is NaN, as scalar `>`.
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                unsafe { $cmp::<_CMP_GT_OQ>(self.0, other.0) }
            }
            #[inline(always)]
            fn lt(self, other: Self) -> $mask {
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                unsafe { $cmp::<_CMP_LT_OQ>(self.0, other.0) }
            }
            #[inline(always)]
            fn eq(self, other: Self) -> $mask {
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                unsafe { $cmp::<_CMP_EQ_OQ>(self.0, other.0) }
            }
            #[inline(always)]
            fn select(mask: $mask, if_true: Self, if_false: Self) -> Self {
                // `mask_blend(k, a, b)` takes `b` where bit `k` is set.
                // SAFETY: values of this type exist only on CPUs with AVX-512F.
                $name(unsafe { $blend(mask, if_false.0, if_true.0) })
            }
            fused_division!($t, $lo, $hi);
            exp2_by_exponent!(
                $name, $t, $int, $mant, $set1, $max, $min, $add, $sub, $mul, $castto, $castfrom,
                $set1i, $addi, $slli
            );
        }

        impl LoadStore<$t> for $name {
            #[inline(always)]
            unsafe fn load(src: *const $t) -> Self {
                // SAFETY: the caller guarantees `$n` readable elements at `src`; the load
                // is unaligned; called only inside the AVX-512 entry point.
                $name(unsafe { $loadu(src) })
            }
            #[inline(always)]
            unsafe fn store(self, dst: *mut $t) {
                // SAFETY: the caller guarantees `$n` writable elements at `dst`; the
                // store is unaligned.
                unsafe { $storeu(dst, self.0) }
            }
        }
    };
}

avx512_lanes!(
    F32x16,
    __m512,
    f32,
    16,
    __mmask16,
    i32::MIN,
    _mm512_set1_ps,
    _mm512_set1_epi32,
    _mm512_add_ps,
    _mm512_sub_ps,
    _mm512_mul_ps,
    _mm512_div_ps,
    _mm512_sqrt_ps,
    _mm512_abs_ps,
    _mm512_castps_si512,
    _mm512_castsi512_ps,
    _mm512_max_ps,
    _mm512_min_ps,
    _mm512_cmp_ps_mask,
    _mm512_mask_blend_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmsub_ps,
    _mm512_fnmadd_ps,
    1.0 / (1u128 << 80) as f32,
    (1u128 << 80) as f32,
    0xFFFF,
    i32,
    _mm512_sub_epi32,
    _mm512_cmple_epu32_mask,
    _mm512_add_epi32,
    23,
    _mm512_slli_epi32
);
avx512_lanes!(
    F64x8,
    __m512d,
    f64,
    8,
    __mmask8,
    i64::MIN,
    _mm512_set1_pd,
    _mm512_set1_epi64,
    _mm512_add_pd,
    _mm512_sub_pd,
    _mm512_mul_pd,
    _mm512_div_pd,
    _mm512_sqrt_pd,
    _mm512_abs_pd,
    _mm512_castpd_si512,
    _mm512_castsi512_pd,
    _mm512_max_pd,
    _mm512_min_pd,
    _mm512_cmp_pd_mask,
    _mm512_mask_blend_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_fmsub_pd,
    _mm512_fnmadd_pd,
    f64::from_bits((1023 - 800) << 52),
    f64::from_bits((1023 + 800) << 52),
    0xFF,
    i64,
    _mm512_sub_epi64,
    _mm512_cmple_epu64_mask,
    _mm512_add_epi64,
    52,
    _mm512_slli_epi64
);

impl super::Partial<f32> for F32x16 {
    #[inline(always)]
    unsafe fn load_first(src: *const f32, len: usize) -> Self {
        let mask = ((1u32 << len) - 1) as __mmask16;
        // SAFETY: the caller guarantees `len` (< 16) readable elements at `src`; the
        // masked-off lanes are not accessed (AVX-512 suppresses their faults) and read
        // as zero.
        F32x16(unsafe { _mm512_maskz_loadu_ps(mask, src) })
    }
    #[inline(always)]
    unsafe fn store_first(self, dst: *mut f32, len: usize) {
        let mask = ((1u32 << len) - 1) as __mmask16;
        // SAFETY: the caller guarantees `len` (< 16) writable elements at `dst`; the
        // masked-off lanes are not written.
        unsafe { _mm512_mask_storeu_ps(dst, mask, self.0) }
    }
}

impl super::Partial<f64> for F64x8 {
    #[inline(always)]
    unsafe fn load_first(src: *const f64, len: usize) -> Self {
        let mask = ((1u32 << len) - 1) as __mmask8;
        // SAFETY: the caller guarantees `len` (< 8) readable elements at `src`; the
        // masked-off lanes are not accessed (AVX-512 suppresses their faults) and read
        // as zero.
        F64x8(unsafe { _mm512_maskz_loadu_pd(mask, src) })
    }
    #[inline(always)]
    unsafe fn store_first(self, dst: *mut f64, len: usize) {
        let mask = ((1u32 << len) - 1) as __mmask8;
        // SAFETY: the caller guarantees `len` (< 8) writable elements at `dst`; the
        // masked-off lanes are not written.
        unsafe { _mm512_mask_storeu_pd(dst, mask, self.0) }
    }
}
