//! Adagrad (`torch.optim.Adagrad`).

use super::prelude::Prelude;
use super::{Rule, StepCount, begin_step};
use crate::driver::{Drive, Kernel};
use crate::error::{Error, check};
use crate::lanes::Lanes;
use crate::real::Real;

/// Adagrad (Duchi et al., 2011) as `torch.optim.Adagrad` (dense gradients).
///
/// ```text
/// g ← −g                          if maximize
/// g ← g + λθ                      if λ ≠ 0
/// γₜ = γ / (1 + (t − 1)·η)
/// s ← s + g²
/// θ ← θ − γₜ · g / (√s + ε)
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 1e-2 | finite, ≥ 0 |
/// | η | `lr_decay` | 0 | finite, ≥ 0 |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | s₀ | `initial_accumulator_value` | 0 | finite, ≥ 0 |
/// | ε | `eps` | 1e-10 | finite, > 0 |
/// | | `maximize` | false | |
///
/// State slices: `sum` (s), starting at s₀. Scalar state: the step counter.
///
/// Elsewhere: Keras and optax start the accumulator at 0.1 and put ε inside the
/// square root (`g / √(s + ε)`, Keras ε = 1e-7); torch starts at 0 with ε outside.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adagrad {
    /// Learning rate γ.
    pub lr: f64,
    /// Learning-rate decay η per step.
    pub lr_decay: f64,
    /// Weight decay λ (L2, added to the gradient).
    pub weight_decay: f64,
    /// Initial value s₀ of the accumulator.
    pub initial_accumulator_value: f64,
    /// ε, added to √s.
    pub eps: f64,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    eps: T,
    neg_clr: T,
}

impl Adagrad {
    fn coeffs<T: Real>(&self, t: u64) -> Coeffs<T> {
        let clr = self.lr / (1.0 + (t as f64 - 1.0) * self.lr_decay);
        Coeffs {
            prelude: Prelude::new(self.maximize, self.weight_decay, false, self.lr),
            eps: T::from_f64(self.eps),
            neg_clr: T::from_f64(-clr),
        }
    }
}

impl<T: Real> Kernel<T, 1> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [s]: &mut [V; 1]) {
        let g = self.prelude.apply(p, g);
        *s = *s + g * g;
        let std = s.sqrt_abs() + V::splat(self.eps);
        *p = *p + V::splat(self.neg_clr) * g / std;
    }
}

impl Rule for Adagrad {
    type Scalars = StepCount;
    const NAME: &'static str = "adagrad";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::non_negative("lr_decay", self.lr_decay)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        check::non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        check::positive("eps", self.eps)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["sum"]
    }

    fn run<T: Real, D: Drive<T>>(&self, _: &mut StepCount, t: u64, drive: D) -> D::Out {
        let init = [T::from_f64(self.initial_accumulator_value)];
        drive.run::<1, _>(&self.coeffs::<T>(t), Some(init))
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut StepCount,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
        let clr = T::from_f64(self.lr / (1.0 + (t as f64 - 1.0) * self.lr_decay));
        for i in 0..params.len() {
            if t == 1 {
                state[0][i] = T::from_f64(self.initial_accumulator_value);
            }
            let (p, mut g) = (params[i], grads[i]);
            if self.maximize {
                g = -g;
            }
            if self.weight_decay != 0.0 {
                g = g + T::from_f64(self.weight_decay) * p;
            }
            let s = state[0][i] + g * g;
            state[0][i] = s;
            params[i] = p - clr * g / (Lanes::sqrt_abs(s) + T::from_f64(self.eps));
        }
        scalars.step = t;
        Ok(())
    }
}
