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
use crate::power::nearest_f64;
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
            if larger_or_equal_magnitude(self.value, x) {
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

/// `|a| ≥ |b|` for finite `a` and `b` (a finite sum of them means both are).
///
/// For finite values that is the unsigned order of their bits without the sign: one
/// integer compare instead of a soft-float one on cores without an `f64` unit
/// (Cortex-M4F LAMB: −4.3 instructions per parameter). With one (x86-64, aarch64) the
/// float compare stays. The same result either way.
#[inline(always)]
fn larger_or_equal_magnitude(a: f64, b: f64) -> bool {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    return a.abs() >= b.abs();
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return larger_or_equal_magnitude_bits(a, b);
}

/// [`larger_or_equal_magnitude`] by the bits (tested on every host against the float
/// compare).
#[cfg(any(test, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
#[inline(always)]
fn larger_or_equal_magnitude_bits(a: f64, b: f64) -> bool {
    const MAGNITUDE: u64 = !(1 << 63);
    a.to_bits() & MAGNITUDE >= b.to_bits() & MAGNITUDE
}

/// 32-bit digits of [`ExactSum`]: bit 0 of digit 0 is 2⁻¹⁰⁷⁴ (the least subnormal),
/// the largest finite `f64` ends in digit 65 (its top bit is bit 2097), and the digits
/// above take the carries of up to 2⁶⁴ such values.
const DIGITS: usize = 69;

/// Additions after which [`ExactSum`] carries: each adds less than 2³² to a digit, so
/// no `i64` digit overflows before.
const CARRY_EVERY: u32 = 1 << 31;

/// The exact sum of `f64` values, rounded to the nearest `f64` (ties to even) only
/// when read: a fixed-point integer in base 2³² whose digits are `i64`, wide enough for
/// every finite `f64` without rounding. An addition adds its value's three digits
/// without carrying (carries wait until the digits could overflow, or a read).
///
/// Exact, the sum does not depend on the order of the values or on how they are split:
/// sums of the parts of a slice, [`merged`](ExactSum::merge) in any order, read the
/// same bits as one sum of the whole. That is what lets a layer-wise rule's norms
/// (LAMB's `‖θ‖`, `‖u‖`) be summed by threads over the parts of one tensor with the
/// bits of the one-call step. An infinite or NaN value makes the sum that value (NaN
/// for `∞ − ∞`), as `f64` addition would.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExactSum {
    digits: [i64; DIGITS],
    /// The digits below `lo` and from `hi` up are 0 (the top one excepted, after a
    /// carry of a negative sum): a carry and a read walk only the digits between.
    lo: usize,
    hi: usize,
    /// Additions since the digits were last carried.
    adds: u32,
    /// The sum of the non-finite values added (0 while there are none).
    special: f64,
    /// Until a third nonzero finite value comes, the first two are held here and the
    /// digits are untouched: their exact sum rounded once is their `f64` sum, so a read
    /// of a sum of one compensated total (LAMB's norms over up to 4096 elements) costs
    /// one addition.
    held: [f64; 2],
    /// How many of `held` are in use; `None` once they went into the digits.
    holding: Option<usize>,
}

impl ExactSum {
    /// The empty sum, 0.
    pub(crate) const ZERO: ExactSum = ExactSum {
        digits: [0; DIGITS],
        lo: DIGITS,
        hi: 0,
        adds: 0,
        special: 0.0,
        held: [0.0; 2],
        holding: Some(0),
    };

    /// Adds `x` exactly.
    #[inline]
    pub(crate) fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.special += x;
            return;
        }
        if x == 0.0 {
            return;
        }
        match self.holding {
            Some(k) if k < 2 => {
                if let Some(h) = self.held.get_mut(k) {
                    *h = x;
                }
                self.holding = Some(k + 1);
            }
            Some(_) => {
                self.spill();
                self.add_digits(x);
            }
            None => self.add_digits(x),
        }
    }

    /// Moves the held values into the digits.
    fn spill(&mut self) {
        if let Some(k) = self.holding.take() {
            for h in self.held.into_iter().take(k) {
                self.add_digits(h);
            }
        }
    }

    /// Adds the finite nonzero `x` to the digits.
    #[inline]
    fn add_digits(&mut self, x: f64) {
        let bits = x.to_bits();
        let field = (bits >> 52) & 0x7ff;
        let frac = bits & ((1 << 52) - 1);
        // x = ±mant · 2^(shift − 1074).
        let (mant, shift) = if field == 0 {
            (frac, 0)
        } else {
            (frac | 1 << 52, field - 1)
        };
        if self.adds >= CARRY_EVERY {
            self.carry();
        }
        self.adds += 1;
        // Below 2⁵³⁺³¹: three digits from digit `shift / 32` (at most 63) up.
        let wide = u128::from(mant) << (shift % 32);
        let pieces = [
            (wide & 0xffff_ffff) as i64,
            ((wide >> 32) & 0xffff_ffff) as i64,
            (wide >> 64) as i64,
        ];
        let at = (shift / 32) as usize;
        self.lo = self.lo.min(at);
        self.hi = self.hi.max(at + 3);
        if let Some(digits) = self.digits.get_mut(at..at + 3) {
            if bits >> 63 == 0 {
                for (d, p) in digits.iter_mut().zip(pieces) {
                    *d += p;
                }
            } else {
                for (d, p) in digits.iter_mut().zip(pieces) {
                    *d -= p;
                }
            }
        }
    }

    /// Adds a compensated sum exactly: its value and its compensation (only its value
    /// once that is infinite or NaN, when the compensation means nothing). Not inlined:
    /// it runs once per 4096 elements, and inlined into LAMB's norm loop it cost the
    /// Cortex-M4F's loop registers (firmware bench).
    #[inline(never)]
    pub(crate) fn add_total(&mut self, t: &Total) {
        self.add(t.value);
        if t.value.is_finite() {
            self.add(t.compensation);
        }
    }

    /// Carries every digit but the top one into `[0, 2³²)`; the top digit keeps the sign.
    fn carry(&mut self) {
        let top = DIGITS - 1;
        let mut carry = 0i64;
        let mut k = self.lo;
        // The touched digits, then on while a carry is left (to the top digit for a
        // negative sum, whose carry is −1 all the way).
        while k < top && (k < self.hi || carry != 0) {
            if let Some(d) = self.digits.get_mut(k) {
                let v = *d + carry;
                carry = v >> 32;
                *d = v & 0xffff_ffff;
            }
            k += 1;
        }
        if let Some(d) = self.digits.get_mut(top) {
            *d += carry;
        }
        self.hi = self.hi.max(k);
        self.adds = 0;
    }

    /// Adds the sum `other` (exactly: the result is the sum of all the values both saw).
    pub(crate) fn merge(&mut self, other: &ExactSum) {
        let mut other = *other;
        other.spill();
        other.carry();
        self.spill();
        self.carry();
        for (d, o) in self.digits.iter_mut().zip(other.digits) {
            *d += o;
        }
        self.lo = self.lo.min(other.lo);
        self.hi = self.hi.max(other.hi);
        // Every digit now holds less than 2³³: two additions' worth.
        self.adds = 2;
        self.special += other.special;
    }

    /// The sum, rounded once to the nearest `f64` (ties to even); ±∞ beyond the
    /// largest finite `f64`. An exact zero is `+0`.
    pub(crate) fn value(&self) -> f64 {
        if crate::rules::nonzero(self.special) {
            return self.special;
        }
        match self.holding {
            // Nonzero values: their sum is never −0.
            Some(0) => return 0.0,
            Some(1) => return self.held[0],
            Some(_) => return self.held[0] + self.held[1],
            None => {}
        }
        let mut sum = *self;
        sum.carry();
        let negative = sum.digits[DIGITS - 1] < 0;
        if negative {
            for d in sum.digits.iter_mut() {
                *d = -*d;
            }
            (sum.lo, sum.hi) = (0, DIGITS);
            sum.carry();
        }
        // Every digit is now in [0, 2³²), the top one too (the magnitude is below
        // 2⁶⁴ · 2²⁰⁹⁸ ≤ 2^(32·(DIGITS − 1))), and those outside [lo, hi) are 0.
        let digit = |k: usize| sum.digits.get(k).map_or(0, |&d| d as u64);
        let (lo, hi) = (sum.lo, sum.hi.min(DIGITS));
        let Some(top) = (lo..hi).rev().find(|&k| digit(k) != 0) else {
            return 0.0;
        };
        // The magnitude is N · 2⁻¹⁰⁷⁴. The three digits from the top hold N's highest
        // 65–96 bits (all of N below digit 2; below digit 0 the digits are 0); shifted
        // to the top of 128 they are the significand, and any bit set in a lower digit
        // breaks a tie upwards.
        let three = u128::from(digit(top)) << 64
            | u128::from(digit(top.wrapping_sub(1))) << 32
            | u128::from(digit(top.wrapping_sub(2)));
        let shift = three.leading_zeros();
        let exp = 32 * (top as i64 - 2) - 1074 - i64::from(shift);
        let sticky = (lo..top.saturating_sub(2)).any(|k| digit(k) != 0);
        let magnitude = nearest_f64(three << shift, exp, sticky);
        if negative { -magnitude } else { magnitude }
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

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::format;

    /// xorshift64*: deterministic test data without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// The integer magnitude compare of the cores without an `f64` unit agrees with
    /// the float compare for every pair of finite values: random bit patterns over the
    /// whole range (subnormals, both signs), equal magnitudes of opposite sign, zeros,
    /// neighbours and the range ends.
    #[test]
    fn magnitude_compare_by_bits() {
        let mut rng = Rng(0x0123_4567_89AB_CDEF);
        let mut specials = std::vec![0.0, -0.0, f64::MIN_POSITIVE, f64::MAX, -f64::MAX];
        specials.extend([f64::from_bits(1), -f64::from_bits(1), 1.0, -1.0]);
        specials.extend([1.0f64.next_up(), 1.0f64.next_down(), -(1.0f64.next_up())]);
        let mut checked = 0;
        for k in 0..400_000 {
            let (a, b) = if k < specials.len() * specials.len() {
                (specials[k % specials.len()], specials[k / specials.len()])
            } else {
                let a = f64::from_bits(rng.next());
                // A quarter of the pairs: the same magnitude, or a neighbour of it.
                let b = match k % 8 {
                    0 => -a,
                    1 => f64::from_bits(a.to_bits().wrapping_add(1)),
                    _ => f64::from_bits(rng.next()),
                };
                (a, b)
            };
            if !(a.is_finite() && b.is_finite()) {
                continue;
            }
            assert_eq!(
                larger_or_equal_magnitude_bits(a, b),
                a.abs() >= b.abs(),
                "{a:e} {b:e}"
            );
            checked += 1;
        }
        assert!(checked > 350_000);
    }

    fn sum(xs: &[f64]) -> f64 {
        let mut s = ExactSum::ZERO;
        for &x in xs {
            s.add(x);
        }
        s.value()
    }

    /// [`sum`] with every value in the digits (none held).
    fn sum_in_digits(xs: &[f64]) -> f64 {
        let mut s = ExactSum::ZERO;
        s.spill();
        for &x in xs {
            s.add(x);
        }
        assert!(s.holding.is_none());
        s.value()
    }

    fn same(got: f64, want: f64, what: &str) {
        assert!(
            got.to_bits() == want.to_bits(),
            "{what}: {got:e} ({:#x}), want {want:e} ({:#x})",
            got.to_bits(),
            want.to_bits()
        );
    }

    /// Random signed values `±m · 2^e` (53-bit m, e in [-60, 0]) against their sum in
    /// an `i128` scaled by 2⁶⁰, which is exact; `i128 as f64` rounds to nearest, ties
    /// to even, and the scaling back is a power of two.
    #[test]
    fn sums_are_the_exact_sum_rounded_once() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for case in 0..2000 {
            let len = 1 + rng.below(if case % 10 == 0 { 500 } else { 12 }) as usize;
            let positive = case % 3 == 0;
            let mut xs = [0.0f64; 500];
            let mut exact = 0i128;
            for x in xs.iter_mut().take(len) {
                let m = (rng.next() >> 11) as i128;
                let e = rng.below(61) as i32;
                let negative = !positive && rng.next() & 1 == 1;
                let v = if negative { -m } else { m };
                exact += v << e;
                *x = v as f64 * 2f64.powi(e - 60);
            }
            let want = exact as f64 * 2f64.powi(-60);
            same(sum(&xs[..len]), want, &format!("case {case}"));
        }
    }

    /// Two values over the whole range (both signs, subnormals, overflow): IEEE addition
    /// rounds their exact sum once, so it is the reference.
    #[test]
    fn a_pair_sums_as_ieee_addition_does() {
        let mut rng = Rng(0xC0FFEE);
        for case in 0..200_000 {
            let mut value = || {
                // Exponents anywhere, or near each other, or near the extremes.
                let field = match case % 4 {
                    0 => rng.below(2047),
                    1 => 1000 + rng.below(60),
                    2 => rng.below(4),
                    _ => 2040 + rng.below(7),
                };
                f64::from_bits(rng.next() & !(0x7ff << 52) | field << 52)
            };
            let (a, b) = (value(), value());
            if a == 0.0 && b == 0.0 {
                continue; // −0 + −0 is −0 in IEEE; an exact zero sum here is +0
            }
            same(sum_in_digits(&[a, b]), a + b, &format!("{a:e} + {b:e}"));
            same(sum(&[a, b]), a + b, &format!("{a:e} + {b:e}, held"));
            // The pair again, as two sums merged.
            let mut s = ExactSum::ZERO;
            let mut t = ExactSum::ZERO;
            s.add(a);
            t.add(b);
            t.merge(&s);
            same(t.value(), a + b, &format!("{a:e} + {b:e}, merged"));
        }
    }

    /// Any order and any split into merged parts read the same bits.
    #[test]
    fn order_and_parts_do_not_change_the_sum() {
        let mut rng = Rng(7);
        for case in 0..300 {
            let len = 1 + rng.below(300) as usize;
            let mut xs = [0.0f64; 300];
            for x in xs.iter_mut().take(len) {
                // Wide exponents, both signs, some subnormals and zeros.
                let bits = rng.next() & !(0x7ff << 52) | (rng.below(2047) << 52);
                *x = f64::from_bits(bits);
            }
            let xs = &mut xs[..len];
            let whole = sum(xs);
            for _ in 0..4 {
                for i in (1..len).rev() {
                    xs.swap(i, rng.below(i as u64 + 1) as usize);
                }
                let mut total = ExactSum::ZERO;
                let mut rest: &[f64] = xs;
                while !rest.is_empty() {
                    let (part, tail) = rest.split_at(1 + rng.below(rest.len() as u64) as usize);
                    let mut s = ExactSum::ZERO;
                    for &x in part {
                        s.add(x);
                    }
                    total.merge(&s);
                    rest = tail;
                }
                same(total.value(), whole, &format!("case {case}"));
                same(sum(xs), whole, &format!("case {case}, shuffled"));
            }
        }
    }

    /// Carrying early (as after 2³¹ additions, or a merge) changes nothing, for sums of
    /// either sign, and the digit range a carry walks covers every digit it must.
    #[test]
    fn early_carries_change_nothing() {
        let mut rng = Rng(99);
        for case in 0..500 {
            let len = 1 + rng.below(200) as usize;
            let (mut plain, mut carried) = (ExactSum::ZERO, ExactSum::ZERO);
            let every = 1 + rng.below(7);
            for k in 0..len {
                let bits = rng.next() & !(0x7ff << 52) | (rng.below(2047) << 52);
                let x = f64::from_bits(bits);
                plain.add(x);
                carried.add(x);
                if (k as u64).is_multiple_of(every) {
                    carried.carry();
                }
                if k == len / 2 {
                    // The trigger itself: the next addition carries first.
                    carried.adds = CARRY_EVERY;
                }
            }
            same(carried.value(), plain.value(), &format!("case {case}"));
        }
        // A negative sum carries −1 up to the top digit; adding back reaches +0.5.
        let mut s = ExactSum::ZERO;
        s.add(-f64::from_bits(1));
        s.spill();
        s.carry();
        same(
            s.value(),
            -f64::from_bits(1),
            "the least negative subnormal",
        );
        s.add(f64::from_bits(1));
        s.add(0.5);
        s.carry();
        same(s.value(), 0.5, "back to a half");
    }

    #[test]
    fn ties_round_to_even_and_anything_below_breaks_them() {
        let ulp_half = 2f64.powi(-53);
        same(
            sum_in_digits(&[1.0, ulp_half]),
            1.0,
            "1 + half an ulp, in digits",
        );
        let odd = 1.0 + 2f64.powi(-52);
        same(
            sum_in_digits(&[odd, ulp_half]),
            1.0 + 2f64.powi(-51),
            "odd + half an ulp, in digits",
        );
        same(sum(&[1.0, ulp_half]), 1.0, "1 + half an ulp");
        let odd = 1.0 + 2f64.powi(-52);
        same(
            sum(&[odd, ulp_half]),
            1.0 + 2f64.powi(-51),
            "odd + half an ulp",
        );
        same(
            sum(&[1.0, ulp_half, f64::from_bits(1)]),
            odd,
            "1 + half an ulp + the least subnormal",
        );
        same(sum(&[1.0, -ulp_half / 2.0]), 1.0, "1 − a quarter ulp");
        same(
            sum(&[1.0, -ulp_half]),
            1.0 - ulp_half,
            "1 − half an ulp, exact below 1",
        );
    }

    #[test]
    fn cancellation_subnormals_overflow_and_specials() {
        for sum in [sum, sum_in_digits] {
            let tiny = f64::from_bits(1);
            same(sum(&[1e300, 1.0, -1e300]), 1.0, "cancellation");
            same(sum(&[tiny, tiny, tiny]), 3.0 * tiny, "subnormals");
            same(
                sum(&[f64::MIN_POSITIVE, -tiny]),
                f64::from_bits(f64::MIN_POSITIVE.to_bits() - 1),
                "across the normal boundary",
            );
            same(
                sum(&[f64::MAX, f64::MAX, -f64::MAX]),
                f64::MAX,
                "no intermediate overflow",
            );
            same(sum(&[f64::MAX, f64::MAX]), f64::INFINITY, "overflow");
            same(
                sum(&[-f64::MAX, -f64::MAX]),
                f64::NEG_INFINITY,
                "negative overflow",
            );
            let ulp_of_max = 2f64.powi(971);
            same(
                sum(&[f64::MAX, ulp_of_max / 2.0]),
                f64::INFINITY,
                "max + half an ulp is a tie up",
            );
            same(
                sum(&[f64::MAX, ulp_of_max / 4.0]),
                f64::MAX,
                "max + a quarter ulp",
            );
            same(sum(&[-1.5, 0.25]), -1.25, "negative total");
            same(sum(&[]), 0.0, "empty");
            same(sum(&[-0.0, 0.0, -0.0]), 0.0, "zeros");
            same(sum(&[2.0, -2.0]), 0.0, "exact zero is +0");
            same(sum(&[1.0, f64::INFINITY, 2.0]), f64::INFINITY, "infinity");
            assert!(sum(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan(), "∞ − ∞");
            assert!(sum(&[1.0, f64::NAN, f64::INFINITY]).is_nan(), "NaN");
        }
        // The largest carry: 2¹² values of f64::MAX (2¹⁰³⁶ in all), then taken away.
        let mut s = ExactSum::ZERO;
        for _ in 0..4096 {
            s.add(f64::MAX);
        }
        same(s.value(), f64::INFINITY, "2¹² · max");
        for _ in 0..4096 {
            s.add(-f64::MAX);
        }
        s.add(0.5);
        same(s.value(), 0.5, "back to a half");
    }
}
