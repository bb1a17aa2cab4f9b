//! AVX2 lanes over `core::arch`: `__m256` (8 × f32) and `__m256d` (4 × f64).
//!
//! Every op is one correctly rounded IEEE instruction, so the bits equal those of the
//! scalar and SSE2 lanes. The one use of fused multiply-adds, [`Lanes::div_by`], is
//! Markstein's correctly rounded division (see [`Divisor`]): the same bits as the division
//! it replaces. The methods are `#[inline(always)]` without `#[target_feature]`: they
//! inline into the `#[target_feature(enable = "avx2,fma")]` entry point
//! ([`super::run_avx2`]), the only code that creates values of these types, and which
//! runs only after [`crate::isa`] found AVX2 and FMA on the CPU.

use core::arch::x86_64::*;
use core::ops::{Add, Div, Mul, Neg, Sub};

use crate::lanes::{Divisor, Lanes, LoadStore};

macro_rules! avx2_lanes {
    (
        $name:ident, $reg:ty, $t:ty, $n:literal, $neg0:expr,
        $set1:ident, $add:ident, $sub:ident, $mul:ident, $div:ident, $sqrt:ident,
        $andnot:ident, $xor:ident, $max:ident, $min:ident, $cmp:ident, $blendv:ident,
        $loadu:ident, $storeu:ident,
        $fmsub:ident, $fnmadd:ident, $and:ident, $or:ident, $movemask:ident,
        $lo:expr, $hi:expr, $all:expr,
        $int:ty, $castto:ident, $castfrom:ident, $set1i:ident, $addi:ident, $cmpgti:ident,
        $mant:literal, $slli:ident
    ) => {
        /// A lane vector in one AVX register. Values exist only inside the AVX2 entry
        /// point, after runtime detection (see the module docs).
        #[derive(Clone, Copy, Debug)]
        #[repr(transparent)]
        pub struct $name($reg);

        impl Add for $name {
            type Output = Self;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                $name(unsafe { $add(self.0, o.0) })
            }
        }
        impl Sub for $name {
            type Output = Self;
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                $name(unsafe { $sub(self.0, o.0) })
            }
        }
        impl Mul for $name {
            type Output = Self;
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                $name(unsafe { $mul(self.0, o.0) })
            }
        }
        impl Div for $name {
            type Output = Self;
            #[inline(always)]
            fn div(self, o: Self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                $name(unsafe { $div(self.0, o.0) })
            }
        }
        impl Neg for $name {
            type Output = Self;
            #[inline(always)]
            fn neg(self) -> Self {
                // Flips the sign bit, as scalar negation does (also of 0 and NaN).
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                $name(unsafe { $xor(self.0, $set1($neg0)) })
            }
        }

        impl $name {
            /// Whether every lane is zero or has a magnitude in [lo, hi], where the
            /// multiplying division is exact ([`Divisor`]).
            ///
            /// First by the bits, as the AVX-512 lanes do: the magnitudes' bits lie in
            /// [lo's, hi's] exactly for magnitudes in [lo, hi] (NaN lies above ∞). AVX2
            /// compares integers only as signed, so the bits are moved by `MIN − lo's`
            /// (wrapping): the range then starts at `MIN` and anything below lo wraps to
            /// the top, and one signed compare with the range's moved end tests it. A zero
            /// fails that, and only then is the test made in full, with zero allowed.
            #[inline(always)]
            fn in_fused_range(self) -> bool {
                const LO: $int = ($lo as $t).to_bits() as $int;
                const HI: $int = ($hi as $t).to_bits() as $int;
                let m = self.abs().0;
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA
                // (module docs).
                unsafe {
                    let moved = $addi($castto(m), $set1i(<$int>::MIN.wrapping_sub(LO)));
                    let end = $set1i((HI - LO).wrapping_add(<$int>::MIN));
                    if $movemask($castfrom($cmpgti(moved, end))) == 0 {
                        return true;
                    }
                    let zero = $cmp::<_CMP_EQ_OQ>(m, $set1(0.0));
                    let big = $cmp::<_CMP_LE_OQ>(m, $set1($hi));
                    let ok = $or(zero, $and($cmp::<_CMP_GE_OQ>(m, $set1($lo)), big));
                    $movemask(ok) == $all
                }
            }

            /// `self / d` for `self` a square root (every lane +0, positive, +∞ or NaN)
            /// by Markstein's sequence with `z = RN(1/d)`, `d` in [`Divisor`]'s range and
            /// at most 1 ([`Divisor::root_reciprocal`]). The sequence's one wrong lane,
            /// `∞ / d` (its residual `∞ − ∞` is NaN), is restored without a test or a
            /// branch: a finite root's quotient is exact and, as `d ≤ 1`, at least the
            /// root, so the maximum of the two is the quotient; `vmaxps` returns its
            /// second operand, the root, when either is NaN: `∞` for `∞` (as `∞ / d`),
            /// and a NaN root itself (as its division does).
            #[inline(always)]
            fn fused_root_quotient(self, z: $t, d: $t) -> Self {
                let q = self.fused_quotient(z, d);
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA
                // (module docs).
                $name(unsafe { $max(q.0, self.0) })
            }

            /// `self` (every lane's sign bit clear) with `src`'s sign bits.
            #[inline(always)]
            fn with_sign_of(self, src: Self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA
                // (module docs).
                $name(unsafe { $or(self.0, $and(src.0, $set1($neg0))) })
            }

            /// `self / d` by Markstein's sequence with `z = RN(1/d)`: exact where
            /// [`Divisor`] says (the callers test that).
            #[inline(always)]
            fn fused_quotient(self, z: $t, d: $t) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA
                // (module docs).
                unsafe {
                    let (a, z, b) = (self.0, $set1(z), $set1(d));
                    let q = $mul(a, z);
                    $name($fnmadd($fmsub(q, b, a), z, q))
                }
            }
        }

        impl Lanes for $name {
            type Scalar = $t;
            type Mask = $reg;
            const WIDTH: usize = $n;
            #[inline(always)]
            fn splat(x: $t) -> Self {
                // SAFETY: called only inside the AVX2 entry point (module docs).
                $name(unsafe { $set1(x) })
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                $name(unsafe { $sqrt(self.0) })
            }
            #[inline(always)]
            fn abs(self) -> Self {
                // Clears the sign bit.
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                $name(unsafe { $andnot($set1($neg0), self.0) })
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                // `vmaxps a, b` is `if a > b { a } else { b }`: the second operand when
                // either is NaN or both are zero, which is the trait's convention.
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                $name(unsafe { $max(self.0, other.0) })
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                // `vminps a, b` is `if a < b { a } else { b }`.
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                $name(unsafe { $min(self.0, other.0) })
            }
            #[inline(always)]
            fn gt(self, other: Self) -> $reg {
                // Ordered, quiet: false when either is NaN, as scalar `>`.
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                unsafe { $cmp::<_CMP_GT_OQ>(self.0, other.0) }
            }
            #[inline(always)]
            fn lt(self, other: Self) -> $reg {
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                unsafe { $cmp::<_CMP_LT_OQ>(self.0, other.0) }
            }
            #[inline(always)]
            fn eq(self, other: Self) -> $reg {
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                unsafe { $cmp::<_CMP_EQ_OQ>(self.0, other.0) }
            }
            #[inline(always)]
            fn select(mask: $reg, if_true: Self, if_false: Self) -> Self {
                // `blendv(a, b, m)` takes `b` where the mask lane's sign bit is set; the
                // compares give all-ones or all-zeros lanes.
                // SAFETY: values of this type exist only on CPUs with AVX2 and FMA (module docs).
                $name(unsafe { $blendv(if_false.0, if_true.0, mask) })
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
                // is unaligned; called only inside the AVX2 entry point.
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

avx2_lanes!(
    F32x8,
    __m256,
    f32,
    8,
    -0.0f32,
    _mm256_set1_ps,
    _mm256_add_ps,
    _mm256_sub_ps,
    _mm256_mul_ps,
    _mm256_div_ps,
    _mm256_sqrt_ps,
    _mm256_andnot_ps,
    _mm256_xor_ps,
    _mm256_max_ps,
    _mm256_min_ps,
    _mm256_cmp_ps,
    _mm256_blendv_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmsub_ps,
    _mm256_fnmadd_ps,
    _mm256_and_ps,
    _mm256_or_ps,
    _mm256_movemask_ps,
    1.0 / (1u128 << 80) as f32,
    (1u128 << 80) as f32,
    0xFF,
    i32,
    _mm256_castps_si256,
    _mm256_castsi256_ps,
    _mm256_set1_epi32,
    _mm256_add_epi32,
    _mm256_cmpgt_epi32,
    23,
    _mm256_slli_epi32
);
avx2_lanes!(
    F64x4,
    __m256d,
    f64,
    4,
    -0.0f64,
    _mm256_set1_pd,
    _mm256_add_pd,
    _mm256_sub_pd,
    _mm256_mul_pd,
    _mm256_div_pd,
    _mm256_sqrt_pd,
    _mm256_andnot_pd,
    _mm256_xor_pd,
    _mm256_max_pd,
    _mm256_min_pd,
    _mm256_cmp_pd,
    _mm256_blendv_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_fmsub_pd,
    _mm256_fnmadd_pd,
    _mm256_and_pd,
    _mm256_or_pd,
    _mm256_movemask_pd,
    f64::from_bits((1023 - 800) << 52),
    f64::from_bits((1023 + 800) << 52),
    0xF,
    i64,
    _mm256_castpd_si256,
    _mm256_castsi256_pd,
    _mm256_set1_epi64x,
    _mm256_add_epi64,
    _mm256_cmpgt_epi64,
    52,
    _mm256_slli_epi64
);

impl super::Partial<f32> for F32x8 {
    #[inline(always)]
    unsafe fn load_first(src: *const f32, len: usize) -> Self {
        // SAFETY: AVX2 is enabled in the entry point these values live in; the caller
        // guarantees `len` (< 8) readable elements at `src`, and `vmaskmovps` neither
        // reads nor faults on the lanes whose mask sign bit is clear (they read as 0).
        unsafe {
            let mask = _mm256_cmpgt_epi32(
                _mm256_set1_epi32(len as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            );
            F32x8(_mm256_maskload_ps(src, mask))
        }
    }
    #[inline(always)]
    unsafe fn store_first(self, dst: *mut f32, len: usize) {
        // SAFETY: as for `load_first`: only the first `len` (< 8) lanes are written.
        unsafe {
            let mask = _mm256_cmpgt_epi32(
                _mm256_set1_epi32(len as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            );
            _mm256_maskstore_ps(dst, mask, self.0)
        }
    }
}

impl super::Partial<f64> for F64x4 {
    #[inline(always)]
    unsafe fn load_first(src: *const f64, len: usize) -> Self {
        // SAFETY: as for `F32x8`: the first `len` (< 4) lanes only.
        unsafe {
            let mask = _mm256_cmpgt_epi64(
                _mm256_set1_epi64x(len as i64),
                _mm256_setr_epi64x(0, 1, 2, 3),
            );
            F64x4(_mm256_maskload_pd(src, mask))
        }
    }
    #[inline(always)]
    unsafe fn store_first(self, dst: *mut f64, len: usize) {
        // SAFETY: as for `load_first`: only the first `len` (< 4) lanes are written.
        unsafe {
            let mask = _mm256_cmpgt_epi64(
                _mm256_set1_epi64x(len as i64),
                _mm256_setr_epi64x(0, 1, 2, 3),
            );
            _mm256_maskstore_pd(dst, mask, self.0)
        }
    }
}
