//! Adadelta (`torch.optim.Adadelta`).

use super::prelude::Prelude;
use super::{Rule, StepCount, begin_step};
use crate::driver::{Drive, Kernel};
use crate::error::{Error, check};
use crate::lanes::Lanes;
use crate::real::Real;

/// Adadelta (Zeiler, 2012) as `torch.optim.Adadelta`.
///
/// ```text
/// g ← −g                          if maximize
/// g ← g + λθ                      if λ ≠ 0
/// v ← ρv + (1 − ρ)g²
/// Δ = √(u + ε) / √(v + ε) · g
/// u ← ρu + (1 − ρ)Δ²
/// θ ← θ − γΔ
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 1.0 | finite, ≥ 0 |
/// | ρ | `rho` | 0.9 | [0, 1] |
/// | ε | `eps` | 1e-6 | finite, > 0 |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | | `maximize` | false | |
///
/// State slices: `square_avg` (v), `acc_delta` (u), from 0. Scalar state: the step
/// counter.
///
/// Elsewhere: the paper has no learning rate (γ = 1, torch's default); Keras defaults
/// γ = 1e-3, ρ = 0.95, ε = 1e-7; optax defaults ρ = 0.9, ε = 1e-6 and takes γ as given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adadelta {
    /// Learning rate γ (scales Δ).
    pub lr: f64,
    /// Decay ρ of both running averages.
    pub rho: f64,
    /// ε, inside both square roots.
    pub eps: f64,
    /// Weight decay λ (L2, added to the gradient).
    pub weight_decay: f64,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for Adadelta {
    fn default() -> Self {
        Adadelta {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    rho: T,
    one_minus_rho: T,
    eps: T,
    neg_lr: T,
}

impl Adadelta {
    fn coeffs<T: Real>(&self) -> Coeffs<T> {
        Coeffs {
            prelude: Prelude::new(self.maximize, self.weight_decay, false, self.lr),
            rho: T::from_f64(self.rho),
            one_minus_rho: T::from_f64(1.0 - self.rho),
            eps: T::from_f64(self.eps),
            neg_lr: T::from_f64(-self.lr),
        }
    }
}

impl<T: Real> Kernel<T, 2> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [v, u]: &mut [V; 2]) {
        let g = self.prelude.apply(p, g);
        let (rho, one_minus_rho, eps) = (
            V::splat(self.rho),
            V::splat(self.one_minus_rho),
            V::splat(self.eps),
        );
        *v = *v * rho + one_minus_rho * g * g;
        let std = (*v + eps).sqrt_abs();
        let delta = (*u + eps).sqrt_abs() / std * g;
        *u = *u * rho + one_minus_rho * delta * delta;
        *p = *p + V::splat(self.neg_lr) * delta;
    }
}

impl Rule for Adadelta {
    type Scalars = StepCount;
    const NAME: &'static str = "adadelta";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::unit_closed("rho", self.rho)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["square_avg", "acc_delta"]
    }

    fn run<T: Real, D: Drive<T>>(&self, _: &mut StepCount, _: u64, drive: D) -> D::Out {
        drive.run::<2, _>(&self.coeffs::<T>(), Some([T::ZERO; 2]))
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut StepCount,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
        let (rho, eps) = (T::from_f64(self.rho), T::from_f64(self.eps));
        let one_minus_rho = T::from_f64(1.0 - self.rho);
        for i in 0..params.len() {
            if t == 1 {
                state[0][i] = T::ZERO;
                state[1][i] = T::ZERO;
            }
            let (p, mut g) = (params[i], grads[i]);
            if self.maximize {
                g = -g;
            }
            if self.weight_decay != 0.0 {
                g = g + T::from_f64(self.weight_decay) * p;
            }
            let (v, u) = (state[0][i], state[1][i]);
            let v = v * rho + one_minus_rho * g * g;
            let delta = Lanes::sqrt_abs(u + eps) / Lanes::sqrt_abs(v + eps) * g;
            state[0][i] = v;
            state[1][i] = u * rho + one_minus_rho * delta * delta;
            params[i] = p - T::from_f64(self.lr) * delta;
        }
        scalars.step = t;
        Ok(())
    }
}
