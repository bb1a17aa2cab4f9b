//! SC-RMSprop (Mukkamala & Hein 2017, the SC-RMSProp algorithm).

use super::mukkamala2017::{Damping, check_gamma, exp_nonpositive};
use super::prelude::Prelude;
use super::{Rule, StepCount, begin_step};
use crate::driver::{Drive, Kernel};
use crate::error::{Error, check};
use crate::lanes::Lanes;
use crate::real::Real;

/// SC-RMSprop: the strongly convex variant of Online RMSprop, which divides by `t·v`
/// (not its square root) plus a damping that decays as `t·v` grows, from Mukkamala &
/// Hein, "Variants of RMSProp and Adagrad with Logarithmic Regret Bounds" (ICML 2017),
/// the "SC-RMSProp" algorithm box, for which the paper proves logarithmic regret on
/// strongly convex problems.
///
/// For step `t = 1, 2, …` with gradient `g`:
///
/// ```text
/// g ← −g                          if maximize
/// g ← g + λθ                      if λ ≠ 0
/// v ← (1 − γ/t)·v + (γ/t)·g²
/// w = t·v
/// δ = ξ₂·exp(−(ξ₁·w))
/// θ ← θ − α·g / (w + δ)
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | α | `lr` | 1e-2 | finite, ≥ 0 |
/// | γ | `gamma` | 0.9 | (0, 1] |
/// | ξ₁ | `xi_1` | 0.1 | finite, ≥ 0 |
/// | ξ₂ | `xi_2` | 0.1 | finite, > 0 |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | | `maximize` | false | |
///
/// State slices: `square_avg` (v), from 0. Scalar state: the step counter.
///
/// The paper's box has `βₜ = 1 − γ/t`, `εₜ = δₜ/t`, `αₜ = α/t` and
/// `Aₜ = diag(vₜ + εₜ)`, so its step `αₜ·Aₜ⁻¹g` is the `α·g/(t·vₜ + δₜ)` above; the
/// damping is the one the paper proposes and the authors' Keras code (`SC_RMSProp`)
/// uses, `δₜ = ξ₂·e^(−ξ₁·t·vₜ)` (non-increasing, as the box requires: `t·vₜ` never
/// decreases for `γ ≤ 1`). Defaults are that code's (`lr=0.01, xi_1=0.1, xi_2=0.1,
/// gamma=0.9`). `maximize` and L2 weight decay are not in the paper: they are torch's,
/// applied to the gradient first. The per-step scalars `1 − γ/t`, `γ/t` and `t` are
/// computed in f64 and rounded to the element type once per step; the exponential is
/// gradstep's own (fdlibm's algorithm on lanes, within 1 ulp). No package implements the
/// rule; the fixtures come from gradstep's numpy reference
/// (`tests/fixtures/mukkamala2017/reference.py`). With `γ = 1`, `t·v = Σ g²` and the
/// rule is SC-Adagrad in exact arithmetic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScRmsProp {
    /// Learning rate α.
    pub lr: f64,
    /// γ in `βₜ = 1 − γ/t`.
    pub gamma: f64,
    /// ξ₁, the decay rate of the damping with `t·v`.
    pub xi_1: f64,
    /// ξ₂, the damping at v = 0.
    pub xi_2: f64,
    /// Weight decay λ (L2, added to the gradient).
    pub weight_decay: f64,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for ScRmsProp {
    fn default() -> Self {
        ScRmsProp {
            lr: 1e-2,
            gamma: 0.9,
            xi_1: 0.1,
            xi_2: 0.1,
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
    damping: Damping<T>,
    neg_lr: T,
}

impl ScRmsProp {
    fn coeffs<T: Real>(&self, t: u64) -> Coeffs<T> {
        let t = t as f64;
        Coeffs {
            prelude: Prelude::new(self.maximize, self.weight_decay, false, self.lr),
            beta: T::from_f64(1.0 - self.gamma / t),
            one_minus_beta: T::from_f64(self.gamma / t),
            t: T::from_f64(t),
            damping: Damping::new(self.xi_1, self.xi_2),
            neg_lr: T::from_f64(-self.lr),
        }
    }
}

impl<T: Real> Kernel<T, 1> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [v]: &mut [V; 1]) {
        let g = self.prelude.apply(p, g);
        *v = V::splat(self.beta) * *v + V::splat(self.one_minus_beta) * (g * g);
        let w = V::splat(self.t) * *v;
        *p = *p + (V::splat(self.neg_lr) * g) / self.damping.denominator(w);
    }
}

impl Rule for ScRmsProp {
    type Scalars = StepCount;
    const NAME: &'static str = "sc_rmsprop";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check_gamma(self.gamma)?;
        check::non_negative("xi_1", self.xi_1)?;
        check::positive("xi_2", self.xi_2)?;
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
            let w = T::from_f64(steps) * v;
            let delta =
                T::from_f64(self.xi_2) * exp_nonpositive::<T, T>(-(T::from_f64(self.xi_1) * w));
            params[i] = p - (T::from_f64(self.lr) * g) / (w + delta);
        }
        scalars.step = t;
        Ok(())
    }
}
