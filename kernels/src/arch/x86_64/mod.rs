//! x86-64: the element loop on SSE2, AVX2 or AVX-512F lanes, chosen at run time.
//!
//! The choice is [`crate::isa::level`] (compile-time `target_feature` first, `cpuid`
//! detection once and cached, scalar under `force-scalar`). AVX2 and AVX-512 run inside
//! `#[target_feature]` entry points whose body is the generic loop
//! ([`crate::driver::run_lanes`]) instantiated with this module's lane types; their
//! `#[inline(always)]` operations inline into it and are compiled for that feature.

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
        // SAFETY: `level` returns `Avx2` only when the CPU has AVX2 and the OS saves
        // the AVX registers; the buffers are forwarded from the caller.
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
        // SAFETY: `level` returns `Avx2` only when the CPU has AVX2 and the OS saves
        // the AVX registers.
        Level::Avx2 => unsafe { with_avx2::<T, A2, F>(f) },
        Level::Sse2 => f.call::<S2>(),
        Level::Scalar => f.call::<T>(),
    }
}

/// `f` on AVX2 lanes, compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 (and the OS save the AVX state).
#[target_feature(enable = "avx2")]
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

/// The element loop compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 (and the OS save the AVX state); the buffers as for
/// [`run`].
#[target_feature(enable = "avx2")]
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

    #[target_feature(enable = "avx2")]
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

    #[target_feature(enable = "avx2")]
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
}
