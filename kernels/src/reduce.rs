//! Lane loops for the gradient utilities: in-place maps and reductions over one slice.
//!
//! Every loop here runs on the lanes of the selected instruction set
//! (`crate::arch::Dispatch::with_lanes`: on x86-64 AVX-512F, AVX2, SSE2 or scalar, chosen
//! by `crate::isa`, as the rules' element loop is), and gives the same bits on each
//! (`kernels/tests/isa.rs` checks every level the machine has).
//!
//! Maps are element-wise, so they run on the lanes for the body and on scalars for the
//! tail, with the same bits either way (as the rules do).
//!
//! Reductions (sums of squares, sums of absolute values, maxima) would normally depend
//! on the lane width: summing into 4 lanes or into 16 rounds differently. To keep
//! gradstep's promise of identical bits on every target, every reduction here runs on
//! [`VIRTUAL_LANES`] = 16 *virtual* lanes whatever the hardware width: element `i`
//! always goes to virtual lane `i mod 16`, and each virtual lane accumulates its
//! elements in index order, in the element type. A hardware vector of width `W`
//! (1, 2, 4, 8 or 16) holds `W` consecutive virtual lanes, so `16 / W` vectors cover
//! them. The ragged end of a slice is copied into a zero-padded chunk of 16, and zero
//! is neutral for every reduction here.
//!
//! Accuracy: after each [`BLOCK`] of 256 elements (16 per virtual lane) the 16 lane
//! values are folded, in lane order, into an `f64` total with Neumaier's compensated
//! summation. An `f32` lane therefore never sums more than 16 terms (relative error
//! below 16·2⁻²⁴ for non-negative terms, typically ~2⁻²⁴), and the `f64` fold adds no
//! error that shows after rounding back to `f32`, however long the slice.
//!
//! A reduction stops early once its total is NaN: no later element can change it.

use core::marker::PhantomData;

use crate::arch::LaneFn;
use crate::lanes::{Lanes, LoadStore};
use crate::real::Real;

/// Number of virtual lanes every reduction is written against (the widest lane vector
/// gradstep uses, `f32x16`).
pub(crate) const VIRTUAL_LANES: usize = 16;

/// Elements per fold of the virtual lanes into the `f64` total.
pub(crate) const BLOCK: usize = 16 * VIRTUAL_LANES;

/// An element-wise, in-place map.
pub(crate) trait Map<T: Real> {
    /// The new value of a group of lanes.
    fn apply<V: Lanes<Scalar = T>>(&self, x: V) -> V;
}

/// Applies `f` to every element of `xs`, in place.
#[inline(always)]
pub(crate) fn map<T: Real, F: Map<T>>(f: &F, xs: &mut [T]) {
    struct Call<'a, F, T>(&'a F, &'a mut [T]);
    impl<T: Real, F: Map<T>> LaneFn<T> for Call<'_, F, T> {
        type Output = ();
        #[inline(always)]
        fn call<V: Lanes<Scalar = T> + LoadStore<T>>(self) {
            map_lanes::<V, T, F>(self.0, self.1)
        }
    }
    T::with_lanes(Call(f, xs))
}

#[inline(always)]
fn map_lanes<V: LoadStore<T> + Lanes<Scalar = T>, T: Real, F: Map<T>>(f: &F, xs: &mut [T]) {
    let mut body = xs.chunks_exact_mut(V::WIDTH);
    for chunk in &mut body {
        // SAFETY: `chunk` holds exactly `V::WIDTH` elements, valid for reads and writes.
        unsafe {
            let x = <V as LoadStore<T>>::load(chunk.as_ptr());
            f.apply(x).store(chunk.as_mut_ptr());
        }
    }
    for x in body.into_remainder() {
        *x = f.apply(*x);
    }
}

/// A reduction over virtual lanes: how one lane absorbs an element, and how finished
/// lanes fold into the `f64` total. Zero must be neutral (the ragged end is padded).
pub(crate) trait Fold {
    /// Whether lanes fold by maximum (NaN-sticky) rather than by compensated sum.
    const MAX: bool;
    /// Lane-wise `acc ⊕ f(x)`.
    fn step<V: Lanes>(acc: V, x: V) -> V;
}

/// `Σ x²`.
pub(crate) struct SumSquares;
impl Fold for SumSquares {
    const MAX: bool = false;
    #[inline(always)]
    fn step<V: Lanes>(acc: V, x: V) -> V {
        acc + x * x
    }
}

/// `Σ |x|`.
pub(crate) struct SumAbs;
impl Fold for SumAbs {
    const MAX: bool = false;
    #[inline(always)]
    fn step<V: Lanes>(acc: V, x: V) -> V {
        acc + x.abs()
    }
}

/// `max |x|`, NaN if any element is NaN (as torch's `amax`-based infinity norm).
pub(crate) struct MaxAbs;
impl Fold for MaxAbs {
    const MAX: bool = true;
    #[inline(always)]
    fn step<V: Lanes>(acc: V, x: V) -> V {
        // `acc.max(a)` is `if acc > a { acc } else { a }`: a NaN `a` enters the lane,
        // and the select keeps a NaN lane NaN (a plain max would drop it again).
        let m = acc.max(x.abs());
        V::select(acc.eq(acc), m, acc)
    }
}

/// `Σ (x − x)`: 0 when every element is finite, NaN otherwise (∞ − ∞ and NaN − NaN
/// are NaN, and a NaN sum stays NaN).
pub(crate) struct NonFinite;
impl Fold for NonFinite {
    const MAX: bool = false;
    #[inline(always)]
    #[allow(clippy::eq_op)] // x − x is the point: 0 for finite x, NaN otherwise
    fn step<V: Lanes>(acc: V, x: V) -> V {
        acc + (x - x)
    }
}

/// The `f64` total of a reduction: a Neumaier-compensated sum, or a NaN-sticky max.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Total {
    value: f64,
    compensation: f64,
}

impl Total {
    pub(crate) const ZERO: Total = Total {
        value: 0.0,
        compensation: 0.0,
    };

    /// Adds `x` with Neumaier's compensation. Once the sum is infinite or NaN it is
    /// kept as is (the compensation of an infinite sum would be NaN).
    #[inline]
    pub(crate) fn add(&mut self, x: f64) {
        let t = self.value + x;
        if t.is_finite() {
            if self.value.abs() >= x.abs() {
                self.compensation += (self.value - t) + x;
            } else {
                self.compensation += (x - t) + self.value;
            }
        }
        self.value = t;
    }

    /// Keeps the larger of the total and `x`; a NaN on either side makes it NaN.
    #[inline]
    pub(crate) fn max(&mut self, x: f64) {
        if x.is_nan() || x > self.value {
            self.value = x;
        }
    }

    /// The sum (or max).
    #[inline]
    pub(crate) fn value(&self) -> f64 {
        if self.value.is_finite() {
            self.value + self.compensation
        } else {
            self.value
        }
    }
}

/// Reduces `xs` with `F`, returning the `f64` total (see the module docs for the order).
#[inline(always)]
pub(crate) fn reduce<T: Real, F: Fold>(xs: &[T]) -> f64 {
    struct Call<'a, F, T>(&'a [T], PhantomData<F>);
    impl<T: Real, F: Fold> LaneFn<T> for Call<'_, F, T> {
        type Output = f64;
        #[inline(always)]
        fn call<V: Lanes<Scalar = T> + LoadStore<T>>(self) -> f64 {
            reduce_lanes::<V, T, F>(self.0)
        }
    }
    T::with_lanes(Call::<F, T>(xs, PhantomData))
}

#[inline(always)]
fn reduce_lanes<V: LoadStore<T> + Lanes<Scalar = T>, T: Real, F: Fold>(xs: &[T]) -> f64 {
    const {
        assert!(V::WIDTH <= VIRTUAL_LANES && VIRTUAL_LANES.is_multiple_of(V::WIDTH));
    }
    let groups = VIRTUAL_LANES / V::WIDTH;
    let mut total = Total::ZERO;
    let mut blocks = xs.chunks_exact(BLOCK);
    for block in &mut blocks {
        let mut acc = [V::splat(T::ZERO); VIRTUAL_LANES];
        for chunk in block.chunks_exact(VIRTUAL_LANES) {
            absorb::<V, T, F>(&mut acc[..groups], chunk);
        }
        fold::<V, T, F>(&acc[..groups], &mut total);
        if total.value.is_nan() {
            return f64::NAN;
        }
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let mut acc = [V::splat(T::ZERO); VIRTUAL_LANES];
        let mut chunks = rest.chunks_exact(VIRTUAL_LANES);
        for chunk in &mut chunks {
            absorb::<V, T, F>(&mut acc[..groups], chunk);
        }
        let ragged = chunks.remainder();
        if !ragged.is_empty() {
            let mut padded = [T::ZERO; VIRTUAL_LANES];
            padded[..ragged.len()].copy_from_slice(ragged);
            absorb::<V, T, F>(&mut acc[..groups], &padded);
        }
        fold::<V, T, F>(&acc[..groups], &mut total);
    }
    total.value()
}

/// Adds one chunk of 16 elements into the virtual lanes held by `acc`.
#[inline(always)]
fn absorb<V: LoadStore<T> + Lanes<Scalar = T>, T: Real, F: Fold>(acc: &mut [V], chunk: &[T]) {
    debug_assert_eq!(chunk.len(), VIRTUAL_LANES);
    debug_assert_eq!(acc.len() * V::WIDTH, VIRTUAL_LANES);
    for (k, a) in acc.iter_mut().enumerate() {
        // Bounds are checked rather than assumed; both are compile-time facts here.
        if let Some(part) = chunk.get(k * V::WIDTH..(k + 1) * V::WIDTH) {
            // SAFETY: `part` holds exactly `V::WIDTH` readable elements.
            let x = unsafe { <V as LoadStore<T>>::load(part.as_ptr()) };
            *a = F::step(*a, x);
        }
    }
}

/// Folds the virtual lanes, in lane order, into the `f64` total.
#[inline(always)]
fn fold<V: LoadStore<T> + Lanes<Scalar = T>, T: Real, F: Fold>(acc: &[V], total: &mut Total) {
    let mut lanes = [T::ZERO; VIRTUAL_LANES];
    for (a, out) in acc.iter().zip(lanes.chunks_exact_mut(V::WIDTH)) {
        // SAFETY: `out` holds exactly `V::WIDTH` writable elements.
        unsafe { a.store(out.as_mut_ptr()) };
    }
    for lane in lanes {
        if F::MAX {
            total.max(lane.to_f64());
        } else {
            total.add(lane.to_f64());
        }
    }
}

/// Multiplies every element by `factor` in place and reports whether every element was
/// finite *before* the multiplication (torch's `_amp_non_finite_check_and_unscale_`).
pub(crate) fn scale_and_check<T: Real>(xs: &mut [T], factor: T) -> bool {
    struct Call<'a, T>(&'a mut [T], T);
    impl<T: Real> LaneFn<T> for Call<'_, T> {
        type Output = bool;
        #[inline(always)]
        fn call<V: Lanes<Scalar = T> + LoadStore<T>>(self) -> bool {
            scale_and_check_lanes::<V, T>(self.0, self.1)
        }
    }
    T::with_lanes(Call(xs, factor))
}

#[inline(always)]
fn scale_and_check_lanes<V: LoadStore<T> + Lanes<Scalar = T>, T: Real>(
    xs: &mut [T],
    factor: T,
) -> bool {
    let f = V::splat(factor);
    let mut bad = V::splat(T::ZERO);
    let mut body = xs.chunks_exact_mut(V::WIDTH);
    for chunk in &mut body {
        // SAFETY: `chunk` holds exactly `V::WIDTH` elements, valid for reads and writes.
        unsafe {
            let x = <V as LoadStore<T>>::load(chunk.as_ptr());
            bad = NonFinite::step(bad, x);
            (x * f).store(chunk.as_mut_ptr());
        }
    }
    let mut finite = lanes_zero::<V, T>(bad);
    for x in body.into_remainder() {
        finite &= Real::is_finite(*x);
        *x = *x * factor;
    }
    finite
}

/// Whether every lane of `v` is zero (so not NaN).
#[inline(always)]
fn lanes_zero<V: LoadStore<T> + Lanes<Scalar = T>, T: Real>(v: V) -> bool {
    let mut lanes = [T::ZERO; VIRTUAL_LANES];
    let mut ok = true;
    if let Some(out) = lanes.get_mut(..V::WIDTH) {
        // SAFETY: `out` holds exactly `V::WIDTH` writable elements.
        unsafe { v.store(out.as_mut_ptr()) };
        ok = out.iter().all(|x| *x == T::ZERO);
    }
    ok
}
