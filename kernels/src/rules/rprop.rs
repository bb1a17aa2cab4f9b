//! Rprop, resilient backpropagation (`torch.optim.Rprop`).

use super::{Rule, StepCount, begin_step, finite, le, lt};
use crate::driver::{Drive, Kernel};
use crate::error::{Error, check, require};
use crate::lanes::Lanes;
use crate::real::Real;

/// Rprop (Riedmiller & Braun, 1993) as `torch.optim.Rprop`: a per-element step size
/// that grows while the gradient keeps its sign and shrinks when it flips.
///
/// ```text
/// g ← −g                                     if maximize
/// s = sign(g · g_prev)
/// η = η₊ if s > 0,  η₋ if s < 0,  1 if s = 0
/// Δ ← clamp(Δ·η, Δ_min, Δ_max)
/// g ← 0                                      where η = η₋ (skip the step after a sign flip)
/// θ ← θ − sign(g)·Δ
/// g_prev ← g
/// ```
///
/// `sign` is torch's on the CPU: +0 for ±0 and for NaN (so a NaN gradient leaves θ and
/// Δ as they were, and is kept as `g_prev`; a −0 param with a zero gradient stays −0).
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | Δ₀ | `lr` (initial step size) | 1e-2 | finite, ≥ 0 |
/// | η₋ | `etaminus` | 0.5 | 0 < η₋ < 1 |
/// | η₊ | `etaplus` | 1.2 | η₊ > 1, finite |
/// | Δ_min | `step_size_min` | 1e-6 | finite, ≥ 0 |
/// | Δ_max | `step_size_max` | 50 | finite, ≥ Δ_min |
/// | | `maximize` | false | |
///
/// State slices: `prev` (g_prev, from 0) and `step_size` (Δ, from `lr`). Scalar state:
/// the step counter. The learning rate only seeds Δ on the first step; changing `lr`
/// later has no effect, as in torch.
///
/// This is the "Rprop−"-style variant torch implements (no weight backtracking).
/// Elsewhere: optax has no Rprop; Keras has none either.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rprop {
    /// Initial step size Δ₀.
    pub lr: f64,
    /// Multiplicative decrease η₋ after a sign flip.
    pub etaminus: f64,
    /// Multiplicative increase η₊ while the sign holds.
    pub etaplus: f64,
    /// Smallest step size Δ_min.
    pub step_size_min: f64,
    /// Largest step size Δ_max.
    pub step_size_max: f64,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for Rprop {
    fn default() -> Self {
        Rprop {
            lr: 1e-2,
            etaminus: 0.5,
            etaplus: 1.2,
            step_size_min: 1e-6,
            step_size_max: 50.0,
            maximize: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    maximize: bool,
    etaminus: T,
    etaplus: T,
    min: T,
    max: T,
}

impl Rprop {
    fn coeffs<T: Real>(&self) -> Coeffs<T> {
        Coeffs {
            maximize: self.maximize,
            etaminus: T::from_f64(self.etaminus),
            etaplus: T::from_f64(self.etaplus),
            min: T::from_f64(self.step_size_min),
            max: T::from_f64(self.step_size_max),
        }
    }
}

/// `torch.sign` as torch 2.15 computes it on the CPU, `(0 < x) − (x < 0)`: ±1, and +0
/// for ±0 and NaN.
#[inline(always)]
fn sign<V: Lanes>(x: V) -> V {
    let zero = V::splat(V::Scalar::ZERO);
    let one = V::splat(V::Scalar::ONE);
    V::select(x.gt(zero), one, V::select(x.lt(zero), -one, zero))
}

impl<T: Real> Kernel<T, 2> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [prev, step_size]: &mut [V; 2]) {
        let g = if self.maximize { -g } else { g };
        let zero = V::splat(T::ZERO);
        let etaminus = V::splat(self.etaminus);
        let product = g * *prev;
        // torch: s = sign(g·prev) (+0 for ±0 and NaN), then η₊ where s > 0, η₋ where
        // s < 0, 1 where s = 0.
        let factor = V::select(
            product.gt(zero),
            V::splat(self.etaplus),
            V::select(product.lt(zero), etaminus, V::splat(T::ONE)),
        );
        *step_size = (*step_size * factor)
            .max(V::splat(self.min))
            .min(V::splat(self.max));
        let g = V::select(factor.eq(etaminus), zero, g);
        *p = *p - sign(g) * *step_size;
        *prev = g;
    }
}

impl Rule for Rprop {
    type Scalars = StepCount;
    const NAME: &'static str = "rprop";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        require(
            lt(0.0, self.etaminus) && lt(self.etaminus, 1.0),
            "etaminus",
            self.etaminus,
            "must be in (0, 1)",
        )?;
        require(
            lt(1.0, self.etaplus) && finite(self.etaplus),
            "etaplus",
            self.etaplus,
            "must be finite and > 1",
        )?;
        check::non_negative("step_size_min", self.step_size_min)?;
        check::non_negative("step_size_max", self.step_size_max)?;
        require(
            le(self.step_size_min, self.step_size_max),
            "step_size_max",
            self.step_size_max,
            "must be >= step_size_min",
        )
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["prev", "step_size"]
    }

    fn run<T: Real, D: Drive<T>>(&self, _: &mut StepCount, _: u64, drive: D) -> D::Out {
        let init = [T::ZERO, T::from_f64(self.lr)];
        drive.run::<2, _>(&self.coeffs::<T>(), Some(init))
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut StepCount,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
        let (etaminus, etaplus) = (T::from_f64(self.etaminus), T::from_f64(self.etaplus));
        let (min, max) = (
            T::from_f64(self.step_size_min),
            T::from_f64(self.step_size_max),
        );
        for i in 0..params.len() {
            if t == 1 {
                state[0][i] = T::ZERO;
                state[1][i] = T::from_f64(self.lr);
            }
            let g = if self.maximize { -grads[i] } else { grads[i] };
            let product = g * state[0][i];
            let factor = if product > T::ZERO {
                etaplus
            } else if product < T::ZERO {
                etaminus
            } else {
                T::ONE
            };
            let mut step = state[1][i] * factor;
            step = if step > min { step } else { min };
            step = if step < max { step } else { max };
            state[1][i] = step;
            let g = if factor == etaminus { T::ZERO } else { g };
            let sign = if g > T::ZERO {
                T::ONE
            } else if g < T::ZERO {
                -T::ONE
            } else {
                T::ZERO
            };
            params[i] = params[i] - sign * step;
            state[0][i] = g;
        }
        scalars.step = t;
        Ok(())
    }
}
