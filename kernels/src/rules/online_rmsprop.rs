//! Online RMSprop (Mukkamala & Hein 2017, Algorithm 1 with `βₜ = 1 − γ/t`).

use super::mukkamala2017::check_gamma;
use super::prelude::Prelude;
use super::{Rule, StepCount, begin_step};
use crate::driver::{Drive, Kernel};
use crate::error::{Error, check};
use crate::lanes::Lanes;
use crate::real::Real;

/// Online RMSprop: RMSprop whose averaging weight `βₜ = 1 − γ/t` grows with the step and
/// whose step size falls as `α/√t`, from Mukkamala & Hein, "Variants of RMSProp and
/// Adagrad with Logarithmic Regret Bounds" (ICML 2017), Algorithm 1 ("RMSProp") with the
/// paper's choice `βₜ = 1 − γ/t`, `0 < γ ≤ 1`, for which it proves `O(√T)` regret on
/// convex problems. `γ = 1` makes `t·vₜ = Σ g²`: Adagrad.
///
/// For step `t = 1, 2, …` with gradient `g`:
///
/// ```text
/// g ← −g                          if maximize
/// g ← g + λθ                      if λ ≠ 0
/// v ← (1 − γ/t)·v + (γ/t)·g²
/// θ ← θ − α·g / (√(t·v) + δ)
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | α | `lr` | 1e-2 | finite, ≥ 0 |
/// | γ | `gamma` | 0.9 | (0, 1] |
/// | δ | `eps` | 1e-8 | finite, > 0 |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | | `maximize` | false | |
///
/// State slices: `square_avg` (v), from 0. Scalar state: the step counter.
///
/// The paper's box has `εₜ = δ/√t`, `αₜ = α/√t` and `Aₜ = diag(√vₜ) + εₜI`, so its step
/// `αₜ·g/(√vₜ + εₜ)` is the `α·g/(√(t·vₜ) + δ)` above, which is how the authors' Keras
/// code (`RMSProp_variant`) computes it and what gradstep does (one square root, no
/// per-step √t). Defaults are that code's (`lr=0.01, gamma=0.9, delta=1e-8`); δ is
/// called `eps` here, as Adagrad's. `maximize` and L2 weight decay are not in the paper:
/// they are torch's, applied to the gradient first. The per-step scalars `1 − γ/t`,
/// `γ/t` and `t` are computed in f64 and rounded to the element type once per step.
/// No package implements the rule; the fixtures come from gradstep's own numpy
/// reference (`tests/fixtures/mukkamala2017/reference.py`), which gradstep matches
/// within a few ulps (the replay prints the worst case).
///
/// With `γ = 1` it is `torch.optim.Adagrad(lr=α, eps=δ)` (no `lr_decay`, accumulator
/// from 0) in exact arithmetic; in floating point `t·v` is not rounded as torch's sum
/// `Σ g²` is, so the two agree to about an ulp per step, not bit for bit (the replay of
/// torch's Adagrad recordings checks it: within 1 ε relative in f32 over 50 steps).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OnlineRmsProp {
    /// Learning rate α.
    pub lr: f64,
    /// γ in `βₜ = 1 − γ/t`.
    pub gamma: f64,
    /// δ, added to `√(t·v)`.
    pub eps: f64,
    /// Weight decay λ (L2, added to the gradient).
    pub weight_decay: f64,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for OnlineRmsProp {
    fn default() -> Self {
        OnlineRmsProp {
            lr: 1e-2,
            gamma: 0.9,
            eps: 1e-8,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    beta: T,
    one_minus_beta: T,
    t: T,
    eps: T,
    neg_lr: T,
}

impl OnlineRmsProp {
    fn coeffs<T: Real>(&self, t: u64) -> Coeffs<T> {
        let t = t as f64;
        Coeffs {
            prelude: Prelude::new(self.maximize, self.weight_decay, false, self.lr),
            beta: T::from_f64(1.0 - self.gamma / t),
            one_minus_beta: T::from_f64(self.gamma / t),
            t: T::from_f64(t),
            eps: T::from_f64(self.eps),
            neg_lr: T::from_f64(-self.lr),
        }
    }
}

impl<T: Real> Kernel<T, 1> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [v]: &mut [V; 1]) {
        let g = self.prelude.apply(p, g);
        *v = V::splat(self.beta) * *v + V::splat(self.one_minus_beta) * (g * g);
        let denom = (V::splat(self.t) * *v).sqrt_abs() + V::splat(self.eps);
        *p = *p + (V::splat(self.neg_lr) * g) / denom;
    }
}

impl Rule for OnlineRmsProp {
    type Scalars = StepCount;
    const NAME: &'static str = "online_rmsprop";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check_gamma(self.gamma)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["square_avg"]
    }

    fn run<T: Real, D: Drive<T>>(&self, _: &mut StepCount, t: u64, drive: D) -> D::Out {
        drive.run::<1, _>(&self.coeffs::<T>(t), Some([T::ZERO]))
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut StepCount,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
        let steps = t as f64;
        let beta = T::from_f64(1.0 - self.gamma / steps);
        let weight = T::from_f64(self.gamma / steps);
        for i in 0..params.len() {
            if t == 1 {
                state[0][i] = T::ZERO;
            }
            let (p, mut g) = (params[i], grads[i]);
            if self.maximize {
                g = -g;
            }
            if self.weight_decay != 0.0 {
                g = g + T::from_f64(self.weight_decay) * p;
            }
            let v = beta * state[0][i] + weight * (g * g);
            state[0][i] = v;
            let root = Lanes::sqrt_abs(T::from_f64(steps) * v);
            params[i] = p - (T::from_f64(self.lr) * g) / (root + T::from_f64(self.eps));
        }
        scalars.step = t;
        Ok(())
    }
}
