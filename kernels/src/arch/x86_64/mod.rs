//! x86-64: the element loop on SSE2, AVX2 or AVX-512F lanes, chosen at run time.
//!
//! The choice is [`crate::isa::level`] (compile-time `target_feature` first, `cpuid`
//! detection once and cached, scalar under `force-scalar`). AVX2 and AVX-512 run inside
//! `#[target_feature]` entry points whose body is the generic loop
//! ([`crate::driver::run_lanes`]) instantiated with this module's lane types; their
//! `#[inline(always)]` operations inline into it and are compiled for that feature.

/// `Lanes::div_by`, `Lanes::sqrt_abs_div_by` and `Lanes::root_difference_div_by` for the
/// lanes with a fused multiply-add
/// (AVX2 and AVX-512), written once. Each lane type brings its own tests, which differ
/// by instruction set (`in_fused_range`: every lane zero or with a magnitude in
/// [lo, hi]; `fused_root_quotient`: the quotient of a root, ∞ and NaN included),
/// `fused_quotient`, Markstein's sequence (see `Divisor`), and `with_sign_of`.
macro_rules! fused_division {
    ($t:ty, $lo:expr, $hi:expr) => {
        #[inline(always)]
        fn div_by(self, d: Divisor<$t>) -> Self {
            // x / 1 is x, exactly, for every x (a NaN stays a NaN): no division once a
            // bias correction has rounded to 1, as 1 − β₁ᵗ has in f32 from step 165
            // with β₁ = 0.9 and 1 − β₂ᵗ from step 17 321 with β₂ = 0.999 (in f64 from
            // 356 and 37 412). In that steady state f32 Adam steps ×1.12 faster,
            // RAdam ×1.15, NAdam ×1.06 and LAMB with scratch ×1.20 (Zen 4, 4K).
            if d.value() == 1.0 {
                return self;
            }
            // Markstein's division by a reciprocal when `d` and every lane are in the
            // range where it is exact, else the division.
            if let Some(z) = d.reciprocal() {
                if self.in_fused_range() {
                    return self.fused_quotient(z, d.value());
                }
            }
            self / Self::splat(d.value())
        }
        #[inline(always)]
        fn sqrt_abs_div_by(self, d: Divisor<$t>) -> Self {
            // The root of a finite value is 0 or in [lo, hi] (the trait's docs; the
            // bounds are asserted here), where the multiplying division is exact; an
            // ∞ or NaN root is the one lane `fused_root_quotient` repairs, by a maximum
            // with the root instead of a test and branch per vector. That needs d ≤ 1
            // (every bias correction); a larger divisor divides.
            const {
                assert!($lo * $lo < <$t>::from_bits(1) && $hi * $hi > <$t>::MAX);
            }
            let s = self.sqrt_abs();
            // As in `div_by`: the root itself.
            if d.value() == 1.0 {
                return s;
            }
            if let Some(z) = d.root_reciprocal() {
                return s.fused_root_quotient(z, d.value());
            }
            s / Self::splat(d.value())
        }
        #[inline(always)]
        fn root_difference_div_by(self, d: Divisor<$t>) -> Self {
            // The magnitude's quotient, as `sqrt_abs_div_by` takes a root's (the bounds
            // in the trait's docs), with the lane's sign put back: `a / d` has `a`'s
            // sign (d > 0), and a NaN lane comes back as it was, as its division
            // returns it.
            if let Some(z) = d.root_reciprocal() {
                return self
                    .abs()
                    .fused_root_quotient(z, d.value())
                    .with_sign_of(self);
            }
            self / Self::splat(d.value())
        }
    };
}

/// `Lanes::exp2_nonpositive` for the AVX2 and AVX-512 lanes, written once: `2ᵏ` from
/// the exponent bits, as `2^k₁·2^k₂` with `k₁ = max(k, emin)` and `k₂ = k − k₁`, both
/// normal (`k₂ ≥ −p − 1`), so that the one product rounds as the trait's default does.
/// `k` is first clamped to `[emin − p − 1, 0]` (`vmaxps` gives its second operand for
/// NaN: the low end), where the low end already rounds to 0. A whole number `k` becomes
/// its bits by the `1.5·2ᵖ` shift: `bits(k + 1.5·2ᵖ) − bits(1.5·2ᵖ) = k`, and the
/// exponent field `k + bias` shifted into place is `2ᵏ`.
macro_rules! exp2_by_exponent {
    ($name:ident, $t:ty, $int:ty, $mant:literal, $set1:ident, $max:ident, $min:ident,
     $add:ident, $sub:ident, $mul:ident, $castto:ident, $castfrom:ident, $set1i:ident,
     $addi:ident, $slli:ident) => {
        #[inline(always)]
        fn exp2_nonpositive(self) -> Self {
            const P: u32 = <$t>::MANTISSA_DIGITS;
            const { assert!(P - 1 == $mant) };
            const SHIFT: $t = (3u64 << (P - 2)) as $t;
            const BIAS: $int = <$t>::MAX_EXP as $int - 1;
            const EMIN: $t = (<$t>::MIN_EXP - 1) as $t;
            const LOW: $t = EMIN - P as $t - 1.0;
            const OFFSET: $int = BIAS.wrapping_sub(SHIFT.to_bits() as $int);
            // SAFETY: values of this type exist only on CPUs with its instruction set.
            unsafe {
                let k = $min($max(self.0, $set1(LOW)), $set1(0.0));
                let k1 = $max(k, $set1(EMIN));
                let k2 = $sub(k, k1);
                let power = |k| {
                    let field = $addi($castto($add(k, $set1(SHIFT))), $set1i(OFFSET));
                    $castfrom($slli::<$mant>(field))
                };
                $name($mul(power(k1), power(k2)))
            }
        }
    };
}

pub(crate) mod avx2;
pub(crate) mod avx512;

use super::LaneFn;
use crate::driver::{Kernel, run_lanes};
use crate::isa::{self, Level};
use crate::lanes::{Lanes, LoadStore};
use crate::real::Real;

/// Runs `kernel` over `n` elements on the lanes of the selected level: `S2` (SSE2),
/// `A2` (AVX2) or `A5` (AVX-512F), or on `T` itself.
///
/// # Safety
/// `p`, `g` and every `s[k]` must be valid for `n` elements and must not overlap.
#[inline(always)]
pub(crate) unsafe fn run<T, S2, A2, A5, const K: usize, F>(
    kernel: &F,
    p: *mut T,
    g: *const T,
    s: [*mut T; K],
    n: usize,
) where
    T: Real,
    S2: Lanes<Scalar = T> + LoadStore<T>,
    A2: Lanes<Scalar = T> + LoadStore<T> + Partial<T>,
    A5: Lanes<Scalar = T> + LoadStore<T> + Partial<T>,
    F: Kernel<T, K>,
{
    match isa::level() {
        // SAFETY: `level` returns `Avx512` only when the CPU has AVX-512F and the OS
        // saves its registers; the buffers are forwarded from the caller.
        Level::Avx512 => unsafe { run_avx512::<T, A5, K, F>(kernel, p, g, s, n) },
        // SAFETY: `level` returns `Avx2` only when the CPU has AVX2 and FMA and the OS
        // saves the AVX registers; the buffers are forwarded from the caller.
        Level::Avx2 => unsafe { run_avx2::<T, A2, K, F>(kernel, p, g, s, n) },
        // SAFETY: SSE2 is part of x86-64; the buffers are forwarded from the caller.
        Level::Sse2 => unsafe { run_lanes::<S2, T, T, T, K, F>(kernel, p, g, s, n) },
        // SAFETY: the buffers are forwarded from the caller.
        Level::Scalar => unsafe { run_lanes::<T, T, T, T, K, F>(kernel, p, g, s, n) },
    }
}

/// Calls `f` with the lanes of the selected level: `S2` (SSE2), `A2` (AVX2) or `A5`
/// (AVX-512F), or `T` itself.
#[inline(always)]
pub(crate) fn with_lanes<T, S2, A2, A5, F>(f: F) -> F::Output
where
    T: Real,
    S2: Lanes<Scalar = T> + LoadStore<T>,
    A2: Lanes<Scalar = T> + LoadStore<T>,
    A5: Lanes<Scalar = T> + LoadStore<T>,
    F: LaneFn<T>,
{
    match isa::level() {
        // SAFETY: `level` returns `Avx512` only when the CPU has AVX-512F and the OS
        // saves its registers.
        Level::Avx512 => unsafe { with_avx512::<T, A5, F>(f) },
        // SAFETY: `level` returns `Avx2` only when the CPU has AVX2 and FMA and the OS
        // saves the AVX registers.
        Level::Avx2 => unsafe { with_avx2::<T, A2, F>(f) },
        Level::Sse2 => f.call::<S2>(),
        Level::Scalar => f.call::<T>(),
    }
}

/// `f` on AVX2 lanes, compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA (and the OS save the AVX state).
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<T, V, F>(f: F) -> F::Output
where
    T: Real,
    V: Lanes<Scalar = T> + LoadStore<T>,
    F: LaneFn<T>,
{
    f.call::<V>()
}

/// `f` on AVX-512F lanes, compiled for AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F (and the OS save the AVX-512 state).
#[target_feature(enable = "avx512f")]
unsafe fn with_avx512<T, V, F>(f: F) -> F::Output
where
    T: Real,
    V: Lanes<Scalar = T> + LoadStore<T>,
    F: LaneFn<T>,
{
    f.call::<V>()
}

/// The element loop compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA (and the OS save the AVX state); the buffers as for
/// [`run`].
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<T, V, const K: usize, F>(
    kernel: &F,
    p: *mut T,
    g: *const T,
    s: [*mut T; K],
    n: usize,
) where
    T: Real,
    V: Lanes<Scalar = T> + LoadStore<T> + Partial<T>,
    F: Kernel<T, K>,
{
    // SAFETY: forwarded from the caller.
    unsafe { run_aligned::<T, V, K, F>(kernel, p, g, s, n) }
}

/// The element loop compiled for AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F (and the OS save the AVX-512 state); the buffers as
/// for [`run`].
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<T, V, const K: usize, F>(
    kernel: &F,
    p: *mut T,
    g: *const T,
    s: [*mut T; K],
    n: usize,
) where
    T: Real,
    V: Lanes<Scalar = T> + LoadStore<T> + Partial<T>,
    F: Kernel<T, K>,
{
    // SAFETY: forwarded from the caller.
    unsafe { run_aligned::<T, V, K, F>(kernel, p, g, s, n) }
}

/// Loads and stores of a vector's first lanes only: the partial vectors at the ends of
/// an AVX2 or AVX-512 loop.
pub(crate) trait Partial<T>: LoadStore<T> {
    /// Reads `src[..len]` into the first `len` lanes; the others are zero.
    ///
    /// # Safety
    /// `len < Self::WIDTH`, `src..src + len` valid for reads; inside the entry point of
    /// the type's instruction set.
    unsafe fn load_first(src: *const T, len: usize) -> Self;
    /// Writes the first `len` lanes to `dst[..len]` and nothing else.
    ///
    /// # Safety
    /// `len < Self::WIDTH`, `dst..dst + len` valid for writes; inside the entry point of
    /// the type's instruction set.
    unsafe fn store_first(self, dst: *mut T, len: usize);
}

/// The element loop in three parts: the elements before the first params address that
/// is a multiple of the vector's size, whole vectors from there, and the rest. A vector
/// access that straddles two cache lines costs two, and with 64-byte AVX-512 vectors
/// every access of a buffer that is not 64-byte aligned straddles (`malloc` gives 16):
/// buffers allocated alike, the usual case, all align. The two ends are one masked
/// vector step each ([`Partial`]), not up to 15 scalar steps each: with a division and
/// a square root per element, the scalar ends cost f32 Adam ~10 % of a 1K-param step.
/// Same bits: the update is element by element, and the lanes outside the mask are
/// neither read nor written (they compute on zeros, which nothing stores).
///
/// # Safety
/// As for [`run`]; inside the entry point of `V`'s instruction set.
#[inline(always)]
unsafe fn run_aligned<T, V, const K: usize, F>(
    kernel: &F,
    p: *mut T,
    g: *const T,
    s: [*mut T; K],
    n: usize,
) where
    T: Real,
    V: Lanes<Scalar = T> + LoadStore<T> + Partial<T>,
    F: Kernel<T, K>,
{
    let bytes = V::WIDTH * size_of::<T>();
    let off = p as usize % bytes;
    let head = if off.is_multiple_of(size_of::<T>()) {
        ((bytes - off) % bytes / size_of::<T>()).min(n)
    } else {
        0
    };
    let body = (n - head) / V::WIDTH * V::WIDTH;
    // SAFETY: head + body + tail = n with head, tail < WIDTH, so every part is in
    // bounds of every buffer; forwarded from the caller otherwise.
    unsafe {
        step_first::<T, V, K, F>(kernel, p, g, s, head);
        run_lanes::<V, T, T, T, K, F>(
            kernel,
            p.add(head),
            g.add(head),
            s.map(|x| x.add(head)),
            body,
        );
        let done = head + body;
        step_first::<T, V, K, F>(
            kernel,
            p.add(done),
            g.add(done),
            s.map(|x| x.add(done)),
            n - done,
        );
    }
}

/// One kernel step on the first `len` elements (`len < WIDTH`; none if 0) through the
/// first lanes of a vector.
///
/// # Safety
/// `len < V::WIDTH`; the buffers valid for `len` elements; inside the entry point of
/// `V`'s instruction set.
#[inline(always)]
unsafe fn step_first<T, V, const K: usize, F>(
    kernel: &F,
    p: *mut T,
    g: *const T,
    s: [*mut T; K],
    len: usize,
) where
    T: Real,
    V: Lanes<Scalar = T> + Partial<T>,
    F: Kernel<T, K>,
{
    if len == 0 {
        return;
    }
    // SAFETY: `len` elements of every buffer, per the caller.
    unsafe {
        let mut pv = V::load_first(p, len);
        let gv = V::load_first(g, len);
        let mut sv = s.map(|s| V::load_first(s, len));
        kernel.apply(&mut pv, gv, &mut sv);
        pv.store_first(p, len);
        for (v, s) in sv.into_iter().zip(s) {
            v.store_first(s, len);
        }
    }
}

/// For the lane tests: on each level with lanes of its own that the CPU has (AVX2,
/// AVX-512), `out` is filled with −7 (a lane the level leaves unwritten shows), then
/// `run(level, out)` computes into it and `check(level, out)` compares; returns how many
/// levels ran. `run` is only called with a level the CPU has.
#[cfg(test)]
fn on_each_level<T: Real>(
    out: &mut [T],
    mut run: impl FnMut(Level, &mut [T]),
    mut check: impl FnMut(Level, &[T]),
) -> usize {
    let mut levels = 0;
    for level in [Level::Avx2, Level::Avx512] {
        if !isa::available(level) {
            continue;
        }
        out.fill(T::from_f64(-7.0));
        run(level, out);
        check(level, out);
        levels += 1;
    }
    levels
}

#[cfg(test)]
mod tests {
    //! Each op of the AVX2 and AVX-512 lanes against the one-lane scalar ops, bit for
    //! bit, on special values: NaN, ±0, ±∞, subnormals, in every pairing (this is where
    //! `max`/`min` operand order and the compares' NaN handling show).

    extern crate std;

    use super::{Partial, avx2, avx512};
    use crate::isa::{self, Level};
    use crate::lanes::{Lanes, LoadStore};
    use crate::real::Real;
    use std::vec::Vec;

    fn specials<T: Real>() -> [T; 12] {
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
    }

    /// Results of every op on lanes `V` for every pair in `a × b`, as the scalar ops
    /// would give them: `[op][pair]` as raw f64 bits.
    #[inline(always)]
    fn ops<T: Real, V: Lanes<Scalar = T> + LoadStore<T>>(a: &[T], b: &[T]) -> [[f64; 64]; 13] {
        let mut out = [[0.0; 64]; 13];
        let mut i = 0;
        while i + V::WIDTH <= a.len() {
            // SAFETY: i + WIDTH <= len of both.
            let (x, y) = unsafe { (V::load(a.as_ptr().add(i)), V::load(b.as_ptr().add(i))) };
            let zero = V::splat(T::ZERO);
            let one = V::splat(T::ONE);
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
                let mut buf = [T::ZERO; 16];
                // SAFETY: WIDTH <= 16.
                unsafe { v.store(buf.as_mut_ptr()) };
                for (j, e) in buf[..V::WIDTH].iter().enumerate() {
                    out[k][i + j] = e.to_f64();
                }
            }
            i += V::WIDTH;
        }
        out
    }

    #[target_feature(enable = "avx2,fma")]
    fn ops_avx2<T: Real, V: Lanes<Scalar = T> + LoadStore<T>>(a: &[T], b: &[T]) -> [[f64; 64]; 13] {
        ops::<T, V>(a, b)
    }

    #[target_feature(enable = "avx512f")]
    fn ops_avx512<T: Real, V: Lanes<Scalar = T> + LoadStore<T>>(
        a: &[T],
        b: &[T],
    ) -> [[f64; 64]; 13] {
        ops::<T, V>(a, b)
    }

    /// Every pair of specials, in chunks of 64 (a multiple of every width).
    fn pairs<T: Real>() -> Vec<([T; 64], [T; 64])> {
        let s = specials::<T>();
        let all: Vec<(T, T)> = s
            .iter()
            .flat_map(|&x| s.iter().map(move |&y| (x, y)))
            .collect();
        all.chunks(64)
            .map(|c| {
                let mut a = [T::ZERO; 64];
                let mut b = [T::ZERO; 64];
                for (k, &(x, y)) in c.iter().enumerate() {
                    a[k] = x;
                    b[k] = y;
                }
                (a, b)
            })
            .collect()
    }

    fn same(got: &[[f64; 64]; 13], want: &[[f64; 64]; 13], what: &str) {
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            for (j, (x, y)) in g.iter().zip(w).enumerate() {
                assert_eq!(
                    x.to_bits(),
                    y.to_bits(),
                    "{what}: op {k}, lane {j}: {x} vs {y}"
                );
            }
        }
    }

    fn check<T: Real, A2, A5>()
    where
        A2: Lanes<Scalar = T> + LoadStore<T>,
        A5: Lanes<Scalar = T> + LoadStore<T>,
    {
        let mut tested = 0;
        for (a, b) in pairs::<T>() {
            let want = ops::<T, T>(&a, &b);
            if isa::available(Level::Avx2) {
                // SAFETY: the CPU has AVX2.
                same(&unsafe { ops_avx2::<T, A2>(&a, &b) }, &want, "avx2");
                tested += 1;
            }
            if isa::available(Level::Avx512) {
                // SAFETY: the CPU has AVX-512F.
                same(&unsafe { ops_avx512::<T, A5>(&a, &b) }, &want, "avx512");
                tested += 1;
            }
        }
        if tested == 0 {
            std::println!("no AVX2 on this CPU: lane ops not tested");
        }
    }

    #[test]
    fn lane_ops_equal_scalar_f32() {
        check::<f32, avx2::F32x8, avx512::F32x16>();
    }

    #[test]
    fn lane_ops_equal_scalar_f64() {
        check::<f64, avx2::F64x4, avx512::F64x8>();
    }

    /// `Partial`'s loads and stores touch exactly the first `len` elements: a load
    /// reads them and zeros, a store writes them and leaves the sentinels after them.
    #[inline(always)]
    fn partial<T: Real, V: Lanes<Scalar = T> + Partial<T>>() -> usize {
        let mut checked = 0;
        for len in 0..V::WIDTH {
            let src: Vec<T> = (0..len).map(|i| T::from_f64(i as f64 + 1.5)).collect();
            // SAFETY: `len` readable elements (the allocation holds exactly `len`).
            let v = unsafe { V::load_first(src.as_ptr(), len) };
            let mut lanes = [T::from_f64(-7.0); 16];
            // SAFETY: 16 >= WIDTH writable elements.
            unsafe { v.store(lanes.as_mut_ptr()) };
            for (i, x) in lanes[..V::WIDTH].iter().enumerate() {
                let want = if i < len { src[i] } else { T::ZERO };
                assert_eq!(
                    x.to_f64().to_bits(),
                    want.to_f64().to_bits(),
                    "load {len}: lane {i}"
                );
            }
            let mut dst = [T::from_f64(-7.0); 17];
            // SAFETY: `len` < 17 writable elements from dst + 1.
            unsafe { v.store_first(dst.as_mut_ptr().add(1), len) };
            for (i, x) in dst.iter().enumerate() {
                let want = if (1..=len).contains(&i) {
                    src[i - 1]
                } else {
                    T::from_f64(-7.0)
                };
                assert_eq!(
                    x.to_f64().to_bits(),
                    want.to_f64().to_bits(),
                    "store {len}: at {i}"
                );
            }
            checked += 1;
        }
        checked
    }

    #[target_feature(enable = "avx2,fma")]
    fn partial_avx2<T: Real, V: Lanes<Scalar = T> + Partial<T>>() -> usize {
        partial::<T, V>()
    }

    #[target_feature(enable = "avx512f")]
    fn partial_avx512<T: Real, V: Lanes<Scalar = T> + Partial<T>>() -> usize {
        partial::<T, V>()
    }

    #[test]
    fn partial_vectors_touch_only_their_first_lanes() {
        let mut checked = 0;
        if isa::available(Level::Avx2) {
            // SAFETY: the CPU has AVX2.
            checked += unsafe { partial_avx2::<f32, avx2::F32x8>() };
            // SAFETY: as above.
            checked += unsafe { partial_avx2::<f64, avx2::F64x4>() };
        }
        if isa::available(Level::Avx512) {
            // SAFETY: the CPU has AVX-512F.
            checked += unsafe { partial_avx512::<f32, avx512::F32x16>() };
            // SAFETY: as above.
            checked += unsafe { partial_avx512::<f64, avx512::F64x8>() };
        }
        if checked == 0 {
            std::println!("no AVX2 on this CPU: partial vectors not tested");
        }
    }

    #[test]
    fn scalar_max_is_the_documented_convention() {
        // Pin the reference itself: the second operand on NaN and on ±0.
        assert!(<f32 as Lanes>::max(f32::NAN, 1.0) == 1.0);
        assert!(<f32 as Lanes>::max(1.0, f32::NAN).is_nan());
        assert!(<f32 as Lanes>::max(0.0, -0.0).is_sign_negative());
        assert!(<f32 as Lanes>::min(-0.0, 0.0).is_sign_positive());
    }

    /// `exp2_nonpositive` on lanes `V` for every element of `k` (a multiple of 16 long).
    #[inline(always)]
    fn exp2s<T: Real, V: Lanes<Scalar = T> + LoadStore<T>>(k: &[T], out: &mut [T]) {
        for (x, y) in k.chunks_exact(V::WIDTH).zip(out.chunks_exact_mut(V::WIDTH)) {
            // SAFETY: both chunks hold WIDTH elements.
            unsafe { V::load(x.as_ptr()).exp2_nonpositive().store(y.as_mut_ptr()) };
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn exp2s_avx2<T: Real, V: Lanes<Scalar = T> + LoadStore<T>>(k: &[T], out: &mut [T]) {
        exp2s::<T, V>(k, out);
    }

    #[target_feature(enable = "avx512f")]
    fn exp2s_avx512<T: Real, V: Lanes<Scalar = T> + LoadStore<T>>(k: &[T], out: &mut [T]) {
        exp2s::<T, V>(k, out);
    }

    /// The exponent-bits `2ᵏ` of each level equals the scalar lanes' (`lanes::tests`
    /// checks those, and the default's select loop, against the exact powers) for every
    /// whole `k`
    /// from below the least subnormal's exponent to above 0, ±0, ±∞ and NaNs, placed
    /// among ordinary lanes.
    fn exp2_on_levels<T: Real, A2, A5>(lowest: i32) -> usize
    where
        A2: Lanes<Scalar = T> + LoadStore<T>,
        A5: Lanes<Scalar = T> + LoadStore<T>,
    {
        let mut k: Vec<T> = (lowest..=3).map(|k| T::from_f64(f64::from(k))).collect();
        for special in [
            0.0,
            -0.0,
            f64::INFINITY,
            -f64::INFINITY,
            f64::NAN,
            -f64::NAN,
        ] {
            k.extend([T::from_f64(-3.0), T::from_f64(special), T::from_f64(-200.0)]);
        }
        k.resize(k.len().next_multiple_of(16), T::from_f64(-1.0));
        let want: Vec<T> = k.iter().map(|&x| Lanes::exp2_nonpositive(x)).collect();
        let mut got = std::vec![T::ZERO; k.len()];
        super::on_each_level(
            &mut got,
            // SAFETY: called only with a level the CPU has.
            |level, out| unsafe {
                match level {
                    Level::Avx2 => exp2s_avx2::<T, A2>(&k, out),
                    _ => exp2s_avx512::<T, A5>(&k, out),
                }
            },
            |level, got| {
                for ((x, g), w) in k.iter().zip(got).zip(&want) {
                    assert_eq!(
                        g.to_f64().to_bits(),
                        w.to_f64().to_bits(),
                        "{}: 2^{:e}: {:e}, want {:e}",
                        level.name(),
                        x.to_f64(),
                        g.to_f64(),
                        w.to_f64()
                    );
                }
            },
        )
    }

    #[test]
    fn exp2_nonpositive_equals_the_scalar_lanes() {
        let levels = exp2_on_levels::<f32, avx2::F32x8, avx512::F32x16>(-300)
            + exp2_on_levels::<f64, avx2::F64x4, avx512::F64x8>(-2100);
        if levels == 0 {
            std::println!("no AVX2 on this CPU: exp2_nonpositive not tested");
        }
    }
}

#[cfg(test)]
mod division_tests {
    //! [`Lanes::div_by`] on the AVX2 and AVX-512 lanes against the scalar division, bit
    //! for bit: every `f32` significand for a set of divisors (the multiplying path), and
    //! the values and divisors that must take the division.

    extern crate std;

    use super::{avx2, avx512};
    use crate::isa::Level;
    use crate::lanes::{Divisor, Lanes, LoadStore};
    use crate::real::Real;
    use crate::testing::Mix;
    use std::vec::Vec;

    /// Which of the lanes' divisions by a [`Divisor`] a test runs.
    #[derive(Clone, Copy, PartialEq)]
    enum Op {
        /// `div_by`: `a / d`.
        Div,
        /// `sqrt_abs_div_by`: `√|a| / d`.
        Root,
        /// `root_difference_div_by`: `a / d` for `a` a difference of two roots.
        RootDifference,
    }

    /// `op` on `a`, lane by lane.
    #[inline(always)]
    fn quotients<T: Real, V: Lanes<Scalar = T> + LoadStore<T>>(
        a: &[T],
        d: Divisor<T>,
        op: Op,
        out: &mut [T],
    ) {
        for (x, o) in a.chunks_exact(V::WIDTH).zip(out.chunks_exact_mut(V::WIDTH)) {
            // SAFETY: both chunks hold WIDTH elements.
            unsafe {
                let x = V::load(x.as_ptr());
                let q = match op {
                    Op::Div => x.div_by(d),
                    Op::Root => x.sqrt_abs_div_by(d),
                    Op::RootDifference => x.root_difference_div_by(d),
                };
                q.store(o.as_mut_ptr())
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn quotients_avx2<T: Real, V: Lanes<Scalar = T> + LoadStore<T>>(
        a: &[T],
        d: Divisor<T>,
        op: Op,
        out: &mut [T],
    ) {
        quotients::<T, V>(a, d, op, out)
    }

    #[target_feature(enable = "avx512f")]
    fn quotients_avx512<T: Real, V: Lanes<Scalar = T> + LoadStore<T>>(
        a: &[T],
        d: Divisor<T>,
        op: Op,
        out: &mut [T],
    ) {
        quotients::<T, V>(a, d, op, out)
    }

    /// `a / d` on every level the CPU has, each quotient compared with `want(a[i])`;
    /// returns the number of levels run.
    fn on_levels<T: Real, A2, A5>(a: &[T], d: Divisor<T>, want: impl Fn(T) -> T) -> usize
    where
        A2: Lanes<Scalar = T> + LoadStore<T>,
        A5: Lanes<Scalar = T> + LoadStore<T>,
    {
        on_levels_with::<T, A2, A5>(a, d, Op::Div, want)
    }

    /// [`on_levels`] with the lanes' `op`.
    fn on_levels_with<T: Real, A2, A5>(
        a: &[T],
        d: Divisor<T>,
        op: Op,
        want: impl Fn(T) -> T,
    ) -> usize
    where
        A2: Lanes<Scalar = T> + LoadStore<T>,
        A5: Lanes<Scalar = T> + LoadStore<T>,
    {
        assert_eq!(a.len() % 16, 0);
        let mut out = std::vec![T::ZERO; a.len()];
        super::on_each_level(
            &mut out,
            // SAFETY: called only with a level the CPU has.
            |level, out| unsafe {
                match level {
                    Level::Avx2 => quotients_avx2::<T, A2>(a, d, op, out),
                    _ => quotients_avx512::<T, A5>(a, d, op, out),
                }
            },
            |level, out| {
                for (x, q) in a.iter().zip(out) {
                    let w = want(*x);
                    assert_eq!(
                        q.to_f64().to_bits(),
                        w.to_f64().to_bits(),
                        "{}: {}{:e} / {:e}: {:e}, want {:e}",
                        level.name(),
                        if op == Op::Root { "√" } else { "" },
                        x.to_f64(),
                        d.value().to_f64(),
                        q.to_f64(),
                        w.to_f64()
                    );
                }
            },
        )
    }

    /// Values the division tests place among ordinary ones: ±∞, the NaN `nan` of
    /// either sign, ±`max`, the least subnormal `tiny` and normal `min`, ±0.
    fn specials<T: Real>(nan: T, max: T, tiny: T, min: T) -> [T; 10] {
        let inf = T::from_f64(f64::INFINITY);
        let zero = T::ZERO;
        [inf, -inf, nan, -nan, max, -max, tiny, min, zero, -zero]
    }

    fn specials_f32() -> [f32; 10] {
        specials(
            f32::from_bits(0x7fc0_beef),
            f32::MAX,
            f32::from_bits(1),
            f32::MIN_POSITIVE,
        )
    }

    fn specials_f64() -> [f64; 10] {
        let nan = f64::from_bits(0x7ff8_0000_dead_beef);
        specials(nan, f64::MAX, f64::from_bits(1), f64::MIN_POSITIVE)
    }

    /// Divisors: bias corrections √(1 − β₂ᵗ) as Adam meets them, the ends of the
    /// multiplying range, significands of all ones and of one low bit, and arbitrary ones.
    fn divisors() -> Vec<f64> {
        let mut d = Vec::new();
        for (beta2, t) in [
            (0.999f64, 1),
            (0.999, 2),
            (0.999, 10),
            (0.999, 1000),
            (0.99, 1),
        ] {
            d.push((1.0 - beta2.powi(t)).sqrt());
        }
        d.extend([1.0, 1.0 / 1048576.0, 1048576.0, 0.75, 3.0, 0.1]);
        d.extend([
            2.0 - 2f64.powi(-23),
            1.0 + 2f64.powi(-23),
            (2.0 - 2f64.powi(-52)) / 64.0,
        ]);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..6 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // In [2⁻¹⁰, 2¹⁰), arbitrary significand.
            d.push(f64::from_bits(
                ((1023 - 10 + (x >> 58) % 20) << 52) | (x & ((1 << 52) - 1)),
            ));
        }
        d
    }

    #[test]
    fn div_by_f32_equals_division_for_every_significand() {
        // Every significand of one binade (the multiplying path is scale-invariant in
        // the range it takes, so this is every dividend there); the ends of the range and
        // negative values at a stride. A debug build takes a stride everywhere.
        let step = if cfg!(debug_assertions) { 97 } else { 1 };
        let mut levels = 0;
        for d in divisors() {
            let d = Divisor::new(d as f32);
            assert!(d.reciprocal().is_some(), "{:e}", d.value());
            let mut a: Vec<f32> = (0..1u32 << 23)
                .step_by(step)
                .map(|m| f32::from_bits(0x3f80_0000 | m))
                .collect();
            for (scale, sign) in [(2f32.powi(-80), 1.0), (2f32.powi(79), -1.0), (0.5, -1.0)] {
                a.extend(
                    (0..1u32 << 23)
                        .step_by(step * 13)
                        .map(|m| sign * scale * f32::from_bits(0x3f80_0000 | m)),
                );
            }
            a.extend([0.0, -0.0, 2f32.powi(80), -2f32.powi(-80)]);
            a.resize(a.len().next_multiple_of(16), 1.0);
            levels = on_levels::<f32, avx2::F32x8, avx512::F32x16>(&a, d, |x| x / d.value());
        }
        if levels == 0 {
            std::println!("no AVX2 on this CPU: div_by not tested");
        }
    }

    /// The longer check: every significand of one binade for `GRADSTEP_DIVISORS`
    /// (default 4096) pseudo-random `f32` divisors in [2⁻²⁰, 2²⁰]. Run with
    /// `cargo test --release -p gradstep --lib div_by_f32_many -- --ignored`.
    #[test]
    #[ignore = "about a minute: the longer division check, run by hand"]
    fn div_by_f32_many_divisors() {
        let count: u32 = std::env::var("GRADSTEP_DIVISORS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4096);
        let a: Vec<f32> = (0..1u32 << 23)
            .map(|m| f32::from_bits(0x3f80_0000 | m))
            .collect();
        let mut x = 0x1234_5678u32;
        for _ in 0..count {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Exponent in [-20, 20), any significand.
            let d = f32::from_bits(((127 - 20 + (x >> 23) % 40) << 23) | (x & 0x7f_ffff));
            let d = Divisor::new(d);
            assert!(d.reciprocal().is_some());
            on_levels::<f32, avx2::F32x8, avx512::F32x16>(&a, d, |x| x / d.value());
        }
    }

    #[test]
    fn div_by_f64_equals_division() {
        let n = if cfg!(debug_assertions) {
            1 << 12
        } else {
            1 << 18
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for d in divisors() {
            let d = Divisor::new(d);
            let mut a: Vec<f64> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Exponent in [2⁻⁸⁰⁰, 2⁸⁰⁰), either sign, any significand.
                    let e = 1023 - 800 + (x >> 53) % 1600;
                    f64::from_bits((x & (1 << 63)) | (e << 52) | (x & ((1 << 52) - 1)))
                })
                .collect();
            a.extend([0.0, -0.0, 2f64.powi(800), -2f64.powi(-800)]);
            a.resize(a.len().next_multiple_of(16), 1.0);
            on_levels::<f64, avx2::F64x4, avx512::F64x8>(&a, d, |x| x / d.value());
        }
    }

    /// Values outside the multiplying range, one per vector among ordinary ones, and
    /// divisors outside it: the division's bits, NaN payloads included.
    #[test]
    fn div_by_takes_the_division_outside_its_range() {
        fn check<T: Real, A2, A5>(specials: &[f64], divisors: &[f64])
        where
            A2: Lanes<Scalar = T> + LoadStore<T>,
            A5: Lanes<Scalar = T> + LoadStore<T>,
        {
            for &d in divisors {
                let d = Divisor::new(T::from_f64(d));
                let mut a = Vec::new();
                for &s in specials {
                    a.extend((0..16).map(|i| T::from_f64(if i == 5 { s } else { 1.5 + i as f64 })));
                }
                on_levels::<T, A2, A5>(&a, d, |x| x / d.value());
            }
        }
        let nan = f64::from_bits(0x7ff8_0000_dead_beef);
        let specials = [
            nan,
            -nan,
            f64::INFINITY,
            -f64::INFINITY,
            1e-40,
            1e-310,
            2f64.powi(81),
            -2f64.powi(-81),
            2f64.powi(-801),
            2f64.powi(801),
        ];
        let divisors = [
            1.0,
            0.5,
            0.0,
            -1.0,
            2f64.powi(21),
            2f64.powi(-21),
            f64::INFINITY,
            nan,
        ];
        check::<f32, avx2::F32x8, avx512::F32x16>(&specials, &divisors);
        check::<f64, avx2::F64x4, avx512::F64x8>(&specials, &divisors);
        for d in [0.0, -1.0, 2f64.powi(21), f64::NAN, f64::INFINITY] {
            assert!(Divisor::new(d).reciprocal().is_none(), "{d}");
        }
    }

    /// `sqrt_abs_div_by` against the scalar `√|a|` and division, bit for bit: `f32`
    /// dividends at a stride through every bit pattern (both signs, subnormals, ∞, NaN),
    /// `f64` over the whole range, the extremes placed among ordinary values, for every
    /// divisor of the tests above and ones outside the multiplying range. Without its
    /// test for ∞ the lanes would return NaN for `√∞ / d`.
    #[test]
    fn sqrt_abs_div_by_equals_root_then_division() {
        fn check<T: Real, A2, A5>(mut a: Vec<T>, specials: &[T]) -> usize
        where
            A2: Lanes<Scalar = T> + LoadStore<T>,
            A5: Lanes<Scalar = T> + LoadStore<T>,
        {
            for &s in specials {
                a.extend((0..16).map(|i| {
                    if i == 3 {
                        s
                    } else {
                        T::from_f64(0.25 + i as f64)
                    }
                }));
            }
            a.resize(a.len().next_multiple_of(16), T::ONE);
            let mut levels = 0;
            let outside = [
                0.0,
                -1.0,
                2f64.powi(21),
                2f64.powi(-21),
                f64::INFINITY,
                f64::NAN,
            ];
            for d in divisors().into_iter().chain(outside) {
                let d = Divisor::new(T::from_f64(d));
                levels = on_levels_with::<T, A2, A5>(&a, d, Op::Root, |x| {
                    Lanes::sqrt_abs(x) / d.value()
                });
            }
            levels
        }
        let stride = if cfg!(debug_assertions) {
            65_521
        } else {
            4_099
        };
        let a32: Vec<f32> = (0..=u32::MAX).step_by(stride).map(f32::from_bits).collect();
        let levels = check::<f32, avx2::F32x8, avx512::F32x16>(a32, &specials_f32());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let a64: Vec<f64> = (0..1 << 16)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                f64::from_bits(x)
            })
            .collect();
        check::<f64, avx2::F64x4, avx512::F64x8>(a64, &specials_f64());
        if levels == 0 {
            std::println!("no AVX2 on this CPU: sqrt_abs_div_by not tested");
        }
    }

    /// `root_difference_div_by` against the division, bit for bit, on differences of
    /// two roots `√|x| − √|y|`: tiny ones, far below `div_by`'s range (which starts at
    /// 2⁻⁸⁰), both signs (a negative accumulator in a restored state gives a negative
    /// difference), `x` and `y` at random over every bit pattern, and ∞ and NaN lanes
    /// among ordinary ones, for every divisor of the tests above and ones outside the
    /// multiplying range. Without the sign put back, or without the maximum, it fails.
    #[test]
    fn root_difference_div_by_equals_division() {
        fn check<T: Real, A2, A5>(pairs: &[(T, T)], tiny: T, at_least: usize) -> usize
        where
            A2: Lanes<Scalar = T> + LoadStore<T>,
            A5: Lanes<Scalar = T> + LoadStore<T>,
        {
            let mut a: Vec<T> = pairs
                .iter()
                .map(|&(x, y)| Lanes::sqrt_abs(x) - Lanes::sqrt_abs(y))
                .collect();
            let below = a
                .iter()
                .filter(|x| x.abs() < tiny && x.to_f64() != 0.0)
                .count();
            assert!(
                below >= at_least,
                "only {below} differences below the range"
            );
            a.resize(a.len().next_multiple_of(16), T::ONE);
            let mut levels = 0;
            let outside = [2f64.powi(21), 2f64.powi(-21), f64::INFINITY, f64::NAN];
            for d in divisors().into_iter().chain(outside) {
                let d = Divisor::new(T::from_f64(d));
                levels = on_levels_with::<T, A2, A5>(&a, d, Op::RootDifference, |x| x / d.value());
            }
            levels
        }
        fn pairs<T: Real>(
            bits: impl Fn(u64) -> T,
            tiny_top: u64,
            stride: usize,
            specials: &[T],
        ) -> Vec<(T, T)> {
            let mut p = Vec::new();
            // Tiny accumulators and their neighbours: the least differences.
            for b in (0..tiny_top).step_by(stride) {
                for (x, y) in [(b + 1, b), (b, b + 1), (b + 2, b), (b, 0), (b + 1, b + 3)] {
                    p.push((bits(x), bits(y)));
                }
            }
            let mut r = Mix(0x2545_f491_4f6c_dd1d);
            for _ in 0..1 << 15 {
                let x = bits(r.next());
                p.push((x, bits(r.next())));
            }
            // The specials among ordinary values, on either side.
            for &s in specials {
                for i in 0..16 {
                    let o = T::from_f64(0.25 + i as f64);
                    p.push(if i == 3 {
                        (s, o)
                    } else if i == 7 {
                        (o, s)
                    } else {
                        (o, o + o)
                    });
                }
            }
            p
        }
        let stride = if cfg!(debug_assertions) {
            40_009
        } else {
            4_099
        };
        let p32 = pairs(
            |b| f32::from_bits(b as u32),
            1 << 28,
            stride,
            &specials_f32(),
        );
        // Far below `div_by`'s range (the roots of neighbouring subnormals differ by
        // about 2⁻⁸⁷, the least nonzero differences there are): the least one here.
        let least = p32
            .iter()
            .map(|&(x, y)| (Lanes::sqrt_abs(x) - Lanes::sqrt_abs(y)).abs())
            .filter(|&a| a > 0.0)
            .fold(f32::INFINITY, f32::min);
        assert!(least < 2f32.powi(-86), "least difference {least:e}");
        let levels = check::<f32, avx2::F32x8, avx512::F32x16>(&p32, 2f32.powi(-80), 1000);
        let p64 = pairs(f64::from_bits, 1 << 40, stride << 16, &specials_f64());
        // (Inside `div_by`'s `f64` range, which starts at 2⁻⁸⁰⁰: the differences of the
        // subnormals' roots, about 2⁻⁵⁵⁸ and up, are tested all the same.)
        check::<f64, avx2::F64x4, avx512::F64x8>(&p64, 2f64.powi(-550), 1000);
        if levels == 0 {
            std::println!("no AVX2 on this CPU: root_difference_div_by not tested");
        }
    }

    /// Dividends below and above the multiplying range, where the fused sequence would
    /// give wrong bits (checked here: some do), with the test divisors: the lanes must
    /// divide. Their range test by the bits must refuse all of them (with the range's
    /// start at zero, subnormals pass it, and this fails).
    #[test]
    fn div_by_divides_outside_the_range_where_fusing_is_wrong() {
        fn check<T: Real, A2, A5>(tiny_and_huge: impl Fn(u64) -> T, fused: impl Fn(T, T, T) -> T)
        where
            A2: Lanes<Scalar = T> + LoadStore<T>,
            A5: Lanes<Scalar = T> + LoadStore<T>,
        {
            let mut x = 0x2545_f491_4f6c_dd1du64;
            let a: Vec<T> = (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    tiny_and_huge(x)
                })
                .collect();
            let mut wrong = 0;
            for d in divisors() {
                let d = Divisor::new(T::from_f64(d));
                let z = d.reciprocal().expect("in range");
                wrong += a
                    .iter()
                    .filter(|&&x| fused(x, d.value(), z).to_f64() != (x / d.value()).to_f64())
                    .count();
                on_levels::<T, A2, A5>(&a, d, |x| x / d.value());
            }
            assert!(wrong > 100, "only {wrong} wrong fused quotients");
        }
        // Subnormal, or above 2^100, either sign.
        check::<f32, avx2::F32x8, avx512::F32x16>(
            |x| {
                let exponent = if x & 1 == 0 {
                    0
                } else {
                    127 + 100 + (x >> 40) % 27
                };
                f32::from_bits(((x >> 8) as u32 & 0x807f_ffff) | ((exponent as u32) << 23))
            },
            |a, d, z| {
                let q = a * z;
                (-q.mul_add(d, -a)).mul_add(z, q)
            },
        );
        check::<f64, avx2::F64x4, avx512::F64x8>(
            |x| {
                let exponent = if x & 1 == 0 {
                    0
                } else {
                    1023 + 1000 + (x >> 40) % 23
                };
                f64::from_bits((x & 0x800f_ffff_ffff_ffff) | (exponent << 52))
            },
            |a, d, z| {
                let q = a * z;
                (-q.mul_add(d, -a)).mul_add(z, q)
            },
        );
    }

    /// With a wrong reciprocal the lanes return the fused sequence's value, not the
    /// quotient: the multiplying path runs, and it is `q − (q·d − a)·z` with `q = a·z`,
    /// each rounded once (for `sqrt_abs_div_by`, with `a = √|x|` and a divisor at most 1).
    #[test]
    fn div_by_runs_the_fused_sequence() {
        macro_rules! case {
            ($t:ty, $a2:ty, $a5:ty) => {{
                let (d, z): ($t, $t) = (3.0, 0.3);
                let a: Vec<$t> = (0..64).map(|i| 1.0 + i as $t / 7.0).collect();
                let fused = |x: $t| {
                    let q = x * z;
                    (-q.mul_add(d, -x)).mul_add(z, q)
                };
                assert!(a.iter().any(|&x| fused(x) != x / d));
                on_levels::<$t, $a2, $a5>(&a, Divisor::with_reciprocal(d, z), fused);
                // And on the root, for `sqrt_abs_div_by`, which multiplies only for
                // d ≤ 1 (and then keeps the larger of the sequence's value and the
                // root: here the sequence's, about 1.33 times the root).
                let (d, z): ($t, $t) = (0.75, 1.3);
                let fused = |x: $t| {
                    let q = x * z;
                    (-q.mul_add(d, -x)).mul_add(z, q)
                };
                let root = |x: $t| fused(x.abs().sqrt());
                assert!(a.iter().any(|&x| root(x) != x.sqrt() / d));
                assert!(a.iter().all(|&x| root(x) > x.sqrt()));
                on_levels_with::<$t, $a2, $a5>(&a, Divisor::with_reciprocal(d, z), Op::Root, root);
                // And on a difference of roots (`root_difference_div_by`): the sequence
                // on the magnitude, with the sign put back.
                let signed: Vec<$t> = a.iter().map(|&x| if x > 1.5 { -x } else { x }).collect();
                let difference = |x: $t| fused(x.abs()).copysign(x);
                assert!(signed.iter().any(|&x| difference(x) != x / d));
                on_levels_with::<$t, $a2, $a5>(
                    &signed,
                    Divisor::with_reciprocal(d, z),
                    Op::RootDifference,
                    difference,
                );
            }};
        }
        case!(f32, avx2::F32x8, avx512::F32x16);
        case!(f64, avx2::F64x4, avx512::F64x8);
    }
}
