//! Gradient clipping: by value, by global p-norm and by per-slice norm
//! (`torch.nn.utils.clip_grad_value_`, `clip_grad_norm_`, `get_total_norm`, and Keras's
//! `clipnorm`), over many gradient slices at once.
//!
//! ```
//! use gradstep::{NormType, clip_grad_norm};
//!
//! let mut w = [3.0f32, 0.0];
//! let mut b = [4.0f32];
//! // The global 2-norm is 5; clip it to 1: every gradient is scaled by 1/(5 + 1e-6).
//! let norm = clip_grad_norm(&mut [&mut w[..], &mut b[..]], 1.0, NormType::L2, false)?;
//! assert_eq!(norm, 5.0);
//! assert!((w[0] - 0.6).abs() < 1e-6 && (b[0] - 0.8).abs() < 1e-6);
//! # Ok::<(), gradstep::Error>(())
//! ```
//!
//! ## Numerics
//! - **Norms** are accurate however long the slices: sums run in the element type on 16
//!   virtual lanes, folded every 256 elements into an `f64` total with compensated
//!   summation (never a million `f32` squares in one `f32` accumulator), and they give
//!   the same bits on every target and lane width. torch sums in the element type, so
//!   for `f32` its norms carry a few ulps of its own rounding; the deviations measured
//!   against torch are in the crate's tolerance table.
//! - As in torch, each slice's norm is rounded to the element type `T`, and the total is
//!   the norm of those per-slice norms, rounded to `T` again.
//! - **The clip coefficient** is computed in `T` exactly as torch computes
//!   `max_norm / (total_norm + 1e-6)` on a 0-dim tensor, which Python evaluates as
//!   `total_norm.__rtruediv__(max_norm)`, i.e. `reciprocal(total + 1e-6) * max_norm`:
//!
//!   ```text
//!   c = min(T(max_norm) · (1 / (‖g‖ + T(1e-6))), 1)        every operation rounded to T
//!   ```
//!
//!   This spelling matches torch 2.15 bit for bit in `f32` and `f64` (a plain division
//!   `max_norm / (‖g‖ + 1e-6)` differs in the last bit for a quarter of `f32` inputs).
//!   Gradients are then multiplied by `c` in `T`; when `c` is exactly 1 they are left
//!   alone, which is the same result without the write.
//!
//! ## Where gradstep differs from torch
//! - Invalid arguments are refused with [`Error::InvalidHyperparameter`] instead of
//!   computed: `max_norm` and `clip_value` must be finite and ≥ 0 (torch flips signs for
//!   negative values and spreads NaN for a NaN one), and the norm order must be a finite
//!   `p > 0` or ∞ (torch also accepts 0, −∞ and negative orders, which are not norms).
//! - The infinity norm of an empty slice is 0 (the identity of a maximum of absolute
//!   values); torch raises an error for it. Every other order gives 0 as in torch.
//! - For general `p` (not 1, 2 or ∞) each `|g|ᵖ` is computed in `f64` (with `libm::pow`,
//!   one element at a time since lanes have no `pow`), so an `f32` slice whose `|g|ᵖ`
//!   overflows `f32` still has its finite norm; torch computes `|g|ᵖ` in `f32` and
//!   returns ∞. For p = 1, 2 and ∞, which are vectorized, terms overflow where torch's do.

use crate::error::{Error, check, require};
use crate::lanes::{Divisor, Lanes};
use crate::real::Real;
use crate::reduce::{self, Map, MaxAbs, SumAbs, SumSquares, Total};

/// The norm order `p` of [`clip_grad_norm`] and [`total_norm`]: `‖g‖ₚ = (Σ|gᵢ|ᵖ)^(1/p)`,
/// `‖g‖∞ = max |gᵢ|`. torch's `norm_type` float (default 2.0).
///
/// [`NormType::P`] holds any other order; it must be finite and > 0.
/// [`NormType::from_p`] maps torch's float (1.0, 2.0, `inf`, other) to a variant.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum NormType {
    /// `Σ |gᵢ|` (vectorized).
    L1,
    /// `√(Σ gᵢ²)`, torch's default (vectorized).
    #[default]
    L2,
    /// `max |gᵢ|` (vectorized). NaN if any element is NaN, as in torch.
    Inf,
    /// `(Σ |gᵢ|ᵖ)^(1/p)` for a finite `p > 0`, computed in `f64` one element at a time.
    P(f64),
}

impl NormType {
    /// torch's `norm_type` float as a variant: 1 → [`NormType::L1`], 2 →
    /// [`NormType::L2`], +∞ → [`NormType::Inf`], any other finite `p > 0` →
    /// [`NormType::P`]. NaN, −∞ and `p ≤ 0` give [`Error::InvalidHyperparameter`].
    pub fn from_p(p: f64) -> Result<NormType, Error> {
        let n = if p == 1.0 {
            NormType::L1
        } else if p == 2.0 {
            NormType::L2
        } else if p == f64::INFINITY {
            NormType::Inf
        } else {
            NormType::P(p)
        };
        n.validate()?;
        Ok(n)
    }

    /// The order as torch's float (`f64::INFINITY` for [`NormType::Inf`]).
    pub fn p(self) -> f64 {
        match self {
            NormType::L1 => 1.0,
            NormType::L2 => 2.0,
            NormType::Inf => f64::INFINITY,
            NormType::P(p) => p,
        }
    }

    /// Checks that a [`NormType::P`] order is finite and > 0 (the name in the error is
    /// `"norm_type"`).
    pub fn validate(self) -> Result<(), Error> {
        match self {
            NormType::P(p) => require(
                p.is_finite() && p > 0.0,
                "norm_type",
                p,
                "must be a finite p > 0 (or NormType::Inf)",
            ),
            _ => Ok(()),
        }
    }

    /// The norm of one slice in `f64`, before rounding to `T`.
    fn of_slice<T: Real>(self, xs: &[T]) -> f64 {
        // One element: its absolute value, exactly, for every order. torch does the
        // same (so a lone 2e20 in f32 has norm 2e20, not an overflowed square).
        if let [x] = xs {
            return libm::fabs(x.to_f64());
        }
        match self {
            NormType::L1 => reduce::reduce::<T, SumAbs>(xs),
            NormType::L2 => libm::sqrt(reduce::reduce::<T, SumSquares>(xs)),
            NormType::Inf => reduce::reduce::<T, MaxAbs>(xs),
            NormType::P(p) => {
                let mut sum = Total::ZERO;
                for x in xs {
                    sum.add(libm::pow(libm::fabs(x.to_f64()), p));
                    if sum.value().is_nan() {
                        break;
                    }
                }
                libm::pow(sum.value(), 1.0 / p)
            }
        }
    }

    /// Folds one per-slice norm (already rounded to `T`) into a total.
    fn absorb(self, total: &mut Total, norm: f64) {
        match self {
            NormType::L1 => total.add(norm),
            NormType::L2 => total.add(norm * norm),
            NormType::Inf => total.max(norm),
            NormType::P(p) => total.add(libm::pow(norm, p)),
        }
    }

    /// The norm from a total of per-slice terms.
    fn finish(self, total: &Total) -> f64 {
        match self {
            NormType::L1 | NormType::Inf => total.value(),
            NormType::L2 => libm::sqrt(total.value()),
            NormType::P(p) => libm::pow(total.value(), 1.0 / p),
        }
    }
}

/// Which gradients one norm is taken over, and the clip formula.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClipScope {
    /// One norm over all slices together, as if they were one vector:
    /// `torch.nn.utils.clip_grad_norm_`. optax `clip_by_global_norm` (`g · c/‖g‖` when
    /// `‖g‖ ≥ c`, no 1e-6) and Keras `global_clipnorm` (`g · c·min(1/‖g‖, 1/c)`) clip
    /// the same global 2-norm with coefficients that differ in rounding and near 0.
    #[default]
    Global,
    /// Each slice clipped by its own norm with torch's formula: what
    /// `clip_grad_norm_` does when called on each tensor alone.
    PerSlice,
    /// Each slice clipped by its own norm with Keras's exact `clipnorm` formula,
    /// element by element in `T`: `g ← (g · c) / max(‖g‖, c)`. Keras always uses the
    /// 2-norm; here [`ClipNorm::norm_type`] still applies. Needs `max_norm > 0`.
    PerSliceKeras,
}

/// Gradient-norm clipping with every option; [`clip_grad_norm`] is its
/// [`ClipScope::Global`] shorthand.
///
/// ```text
/// nᵢ = T(‖gᵢ‖ₚ)                                 per slice, rounded to T
/// N  = T(‖(n₁, …, nₖ)‖ₚ)                        total norm (returned)
/// Global:         gᵢ ← gᵢ · min(T(c) · (1 / (N + T(1e-6))), 1)
/// PerSlice:       gᵢ ← gᵢ · min(T(c) · (1 / (nᵢ + T(1e-6))), 1)
/// PerSliceKeras:  gᵢ ← (gᵢ · T(c)) / max(nᵢ, T(c))
/// ```
///
/// | symbol | field | torch | default | valid |
/// |---|---|---|---|---|
/// | c | `max_norm` | `max_norm` | none (required) | finite, ≥ 0 (> 0 for `PerSliceKeras`) |
/// | p | `norm_type` | `norm_type` | [`NormType::L2`] | finite `p > 0` or ∞ |
/// | | `error_if_nonfinite` | `error_if_nonfinite` | false | |
/// | | `scope` | (call per tensor) | [`ClipScope::Global`] | |
///
/// With `error_if_nonfinite`, a NaN or infinite total norm (`Global`) or slice norm
/// (per-slice scopes) returns [`Error::NonFiniteNorm`] with no gradient changed; the
/// per-slice scopes then read every slice twice (all norms are checked before the first
/// write). Without it, a non-finite norm is used as torch uses it: an infinite norm
/// gives `c = 0` (finite gradients become ±0, infinite ones NaN), a NaN norm makes
/// every gradient NaN.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClipNorm {
    /// Largest norm c the gradients may keep.
    pub max_norm: f64,
    /// Norm order p.
    pub norm_type: NormType,
    /// Refuse a non-finite norm with [`Error::NonFiniteNorm`] instead of clipping.
    pub error_if_nonfinite: bool,
    /// Global or per-slice norm, and the formula.
    pub scope: ClipScope,
}

impl ClipNorm {
    /// torch's `clip_grad_norm_(parameters, max_norm)` defaults: 2-norm, global, no error
    /// on non-finite norms.
    pub fn new(max_norm: f64) -> Self {
        ClipNorm {
            max_norm,
            norm_type: NormType::L2,
            error_if_nonfinite: false,
            scope: ClipScope::Global,
        }
    }

    /// Checks `max_norm` and `norm_type`.
    pub fn validate(&self) -> Result<(), Error> {
        if self.scope == ClipScope::PerSliceKeras {
            check::positive("max_norm", self.max_norm)?;
        } else {
            check::non_negative("max_norm", self.max_norm)?;
        }
        self.norm_type.validate()
    }

    /// Clips `grads` in place and returns their total norm before clipping (the same
    /// value [`total_norm`] gives, whatever the scope). On `Err` nothing was written.
    pub fn clip<T: Real>(&self, grads: &mut [&mut [T]]) -> Result<T, Error> {
        self.validate()?;
        let p = self.norm_type;
        match self.scope {
            ClipScope::Global => {
                let total = total_norm(grads, p)?;
                if self.error_if_nonfinite && !Real::is_finite(total) {
                    return Err(Error::NonFiniteNorm {
                        norm: total.to_f64(),
                    });
                }
                scale_all(grads, torch_coef(self.max_norm, total));
                Ok(total)
            }
            ClipScope::PerSlice | ClipScope::PerSliceKeras => {
                if self.error_if_nonfinite {
                    for g in grads.iter() {
                        let n = slice_norm::<T>(g, p);
                        if !Real::is_finite(n) {
                            return Err(Error::NonFiniteNorm { norm: n.to_f64() });
                        }
                    }
                }
                let mut total = Total::ZERO;
                for g in grads.iter_mut() {
                    let n = slice_norm::<T>(g, p);
                    p.absorb(&mut total, n.to_f64());
                    if self.scope == ClipScope::PerSlice {
                        scale(g, torch_coef(self.max_norm, n));
                    } else {
                        keras_clip(g, self.max_norm, n);
                    }
                }
                Ok(T::from_f64(p.finish(&total)))
            }
        }
    }
}

/// `torch.nn.utils.clip_grad_norm_(grads, max_norm, norm_type, error_if_nonfinite)`:
/// scales every gradient by `min(max_norm / (‖g‖ + 1e-6), 1)` (in torch's rounding, see
/// the [module docs](self)), where `‖g‖` is the p-norm of all slices together, and returns
/// `‖g‖` before clipping. See [`ClipNorm`] for the equations and per-slice options.
///
/// Errors, with nothing written: [`Error::InvalidHyperparameter`] for `max_norm`
/// (finite, ≥ 0) or `norm_type`; [`Error::NonFiniteNorm`] when `error_if_nonfinite`
/// and the norm is NaN or infinite. Empty `grads` or empty slices give norm 0.
pub fn clip_grad_norm<T: Real>(
    grads: &mut [&mut [T]],
    max_norm: f64,
    norm_type: NormType,
    error_if_nonfinite: bool,
) -> Result<T, Error> {
    ClipNorm {
        max_norm,
        norm_type,
        error_if_nonfinite,
        scope: ClipScope::Global,
    }
    .clip(grads)
}

/// `torch.nn.utils.clip_grads_with_norm_(grads, max_norm, total_norm)`: scales every
/// gradient by `min(T(max_norm) · (1 / (total_norm + T(1e-6))), 1)` for a total norm
/// computed earlier (e.g. by [`total_norm`] before an all-reduce). `max_norm` must be
/// finite and ≥ 0; `total_norm` is used as given (NaN makes every gradient NaN, as in
/// torch).
pub fn clip_grads_with_norm<T: Real>(
    grads: &mut [&mut [T]],
    max_norm: f64,
    total_norm: T,
) -> Result<(), Error> {
    check::non_negative("max_norm", max_norm)?;
    scale_all(grads, torch_coef(max_norm, total_norm));
    Ok(())
}

/// `torch.nn.utils.get_total_norm(grads, norm_type)`: the p-norm of all slices together,
/// as the norm of the per-slice norms (each rounded to `T`). 0 for no slices or empty
/// slices; NaN if any element is NaN; ∞ if any is infinite (and none NaN).
///
/// Takes anything that views as slices: `&[&[T]]`, `&[&mut [T]]`, `&[Vec<T>]`,
/// `&[[T; N]]`. The only error is an invalid `norm_type`.
pub fn total_norm<T: Real, S: AsRef<[T]>>(grads: &[S], norm_type: NormType) -> Result<T, Error> {
    norm_type.validate()?;
    let mut total = Total::ZERO;
    for g in grads {
        let n = slice_norm::<T>(g.as_ref(), norm_type);
        norm_type.absorb(&mut total, n.to_f64());
    }
    Ok(T::from_f64(norm_type.finish(&total)))
}

/// `torch.linalg.vector_norm(x, p)` of one slice, rounded to `T` (the infinity norm of an
/// empty slice is 0 here; torch raises an error). The only error is an invalid
/// `norm_type`.
pub fn norm<T: Real>(x: &[T], norm_type: NormType) -> Result<T, Error> {
    norm_type.validate()?;
    Ok(slice_norm(x, norm_type))
}

/// `torch.nn.utils.clip_grad_value_(grads, clip_value)`: clamps every gradient to
/// `[−clip_value, clip_value]`, with torch's `clamp` semantics:
///
/// ```text
/// g ← −c   if g < −c
/// g ←  c   if g >  c
/// g ←  g   otherwise (NaN stays NaN; ±0 keep their sign inside the range)
/// ```
///
/// `c` is rounded to `T` first. Keras's `clipvalue` and optax's `clip(max_delta)` are
/// the same operation. `clip_value` must be finite and ≥ 0
/// ([`Error::InvalidHyperparameter`], nothing written); torch also accepts negative
/// values, which clamp everything to `−|c|`.
pub fn clip_grad_value<T: Real>(grads: &mut [&mut [T]], clip_value: f64) -> Result<(), Error> {
    check::non_negative("clip_value", clip_value)?;
    let hi = T::from_f64(clip_value);
    let clamp = Clamp { lo: -hi, hi };
    for g in grads.iter_mut() {
        reduce::map(&clamp, g);
    }
    Ok(())
}

/// One slice's norm, rounded to `T` (the norm type is valid).
fn slice_norm<T: Real>(x: &[T], p: NormType) -> T {
    T::from_f64(p.of_slice(x))
}

/// torch's `clamp(max_norm / (norm + 1e-6), max=1.0)`, as a 0-dim tensor computes it:
/// `reciprocal(norm + T(1e-6)) * T(max_norm)`, NaN kept by the clamp.
fn torch_coef<T: Real>(max_norm: f64, norm: T) -> T {
    let c = T::ONE / (norm + T::from_f64(1e-6)) * T::from_f64(max_norm);
    if c > T::ONE { T::ONE } else { c }
}

fn scale_all<T: Real>(grads: &mut [&mut [T]], c: T) {
    for g in grads.iter_mut() {
        scale(g, c);
    }
}

/// `g ← g · c`, skipped when `c` is exactly 1 (it would change no bit).
fn scale<T: Real>(g: &mut [T], c: T) {
    if c != T::ONE {
        reduce::map(&Scale(c), g);
    }
}

/// Keras's `clipnorm`: `g ← (g · c) / max(n, c)`, the max taken in `T` and NaN-keeping
/// as `ops.maximum` is.
fn keras_clip<T: Real>(g: &mut [T], max_norm: f64, n: T) {
    let c = T::from_f64(max_norm);
    #[allow(clippy::eq_op)]
    let d = if n > c || n != n { n } else { c };
    reduce::map(
        &KerasClip {
            c,
            d: Divisor::new(d),
        },
        g,
    );
}

struct Scale<T>(T);
impl<T: Real> Map<T> for Scale<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, x: V) -> V {
        x * V::splat(self.0)
    }
}

struct KerasClip<T> {
    c: T,
    d: Divisor<T>,
}
impl<T: Real> Map<T> for KerasClip<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, x: V) -> V {
        (x * V::splat(self.c)).div_by(self.d)
    }
}

/// torch's `clamp(x, lo, hi)`: `x < lo ? lo : (x > hi ? hi : x)`, NaN passing through.
struct Clamp<T> {
    lo: T,
    hi: T,
}
impl<T: Real> Map<T> for Clamp<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, x: V) -> V {
        let (lo, hi) = (V::splat(self.lo), V::splat(self.hi));
        let x = V::select(x.lt(lo), lo, x);
        V::select(x.gt(hi), hi, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficient_is_torch_reciprocal_spelling() {
        // torch 2.15: `0.9 / (torch.tensor(2.9, dtype=float32) + 1e-6)` is
        // 0.31034472584724426 (f32 bits 0x3e9ee581); a plain f32 division gives the f32
        // below it. The same holds for (0.3, 2.9), (0.7, 2.9) and (0.9, 0.7).
        let torch = f32::from_bits(0x3e9e_e581);
        assert_eq!(torch_coef(0.9, 2.9f32), torch);
        assert_ne!(0.9f32 / (2.9f32 + 1e-6f32), torch);
        assert_eq!(torch_coef(0.3, 0.3f32), 0.999_996_66_f32);
        // Clamped to exactly 1 when the norm is small.
        assert_eq!(torch_coef(1.0, 0.5f32), 1.0);
        // NaN survives the clamp; an infinite norm gives 0.
        assert!(torch_coef(1.0, f32::NAN).is_nan());
        assert_eq!(torch_coef(1.0, f32::INFINITY), 0.0);
    }

    #[test]
    fn pinned_norm_bits_are_lane_width_independent() {
        // A slice longer than one block with a ragged end. The value below was computed
        // once; it must be the same on every target and with `force-scalar`.
        let xs: [f32; 1000] =
            core::array::from_fn(|i| ((i * 7919 % 1009) as f32 - 504.0) * 1.37e-3);
        let n2 = norm(&xs, NormType::L2).unwrap();
        let n1 = norm(&xs, NormType::L1).unwrap();
        let sq = reduce::reduce::<f32, SumSquares>(&xs);
        assert_eq!(
            (n2.to_bits(), n1.to_bits(), sq.to_bits()),
            PINNED,
            "{n2:e} {n1:e} {sq:e}"
        );
    }
    #[test]
    fn per_slice_formulas() {
        // Keras: (g·c)/max(‖g‖, c), element by element; below c it divides by c.
        let (mut a, mut b) = ([3.0f32, 4.0], [0.3f32, -0.4]);
        let keras = ClipNorm {
            scope: ClipScope::PerSliceKeras,
            ..ClipNorm::new(1.0)
        };
        let total = keras.clip(&mut [&mut a[..], &mut b[..]]).unwrap();
        assert_eq!(a, [3.0 / 5.0, 4.0 / 5.0]);
        assert_eq!(b, [0.3, -0.4]);
        assert_eq!(total, libm::sqrtf(25.0 + 0.25));
        // torch per slice: min(c·(1/(‖g‖ + 1e-6)), 1); below c the slice is untouched.
        let (mut a, mut b) = ([3.0f32, 4.0], [0.3f32, -0.4]);
        let torch = ClipNorm {
            scope: ClipScope::PerSlice,
            ..ClipNorm::new(1.0)
        };
        torch.clip(&mut [&mut a[..], &mut b[..]]).unwrap();
        let c = (1.0f32 / (5.0 + 1e-6f32)) * 1.0;
        assert_eq!(a, [3.0 * c, 4.0 * c]);
        assert_eq!(b, [0.3, -0.4]);
        // Global: one coefficient from the norm of both slices.
        let (mut a, mut b) = ([3.0f32, 4.0], [0.0f32, 12.0]);
        let n = clip_grad_norm(&mut [&mut a[..], &mut b[..]], 1.0, NormType::L2, false).unwrap();
        assert_eq!(n, 13.0);
        let c = 1.0f32 / (13.0 + 1e-6f32);
        assert_eq!((a, b), ([3.0 * c, 4.0 * c], [0.0, 12.0 * c]));
    }

    const PINNED: (u32, u32, u64) = (1095366232, 1135398686, 4639809981162455040);
}
