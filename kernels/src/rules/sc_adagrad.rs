//! SC-Adagrad (Mukkamala & Hein 2017, Algorithm 2).

use super::mukkamala2017::{Damping, exp_nonpositive};
use super::prelude::Prelude;
use super::{Rule, StepCount, begin_step};
use crate::driver::{Drive, Kernel};
use crate::error::{Error, check};
use crate::lanes::Lanes;
use crate::real::Real;

/// SC-Adagrad: Adagrad for strongly convex problems, which divides by the sum of
/// squared gradients itself (not its square root) plus a damping that decays as the sum
/// grows, from Mukkamala & Hein, "Variants of RMSProp and Adagrad with Logarithmic
/// Regret Bounds" (ICML 2017), Algorithm 2, for which the paper proves logarithmic
/// regret on strongly convex problems.
///
/// For each step with gradient `g`:
///
/// ```text
/// g ← −g                          if maximize
/// g ← g + λθ                      if λ ≠ 0
/// v ← v + g²
/// δ = ξ₂·exp(−(ξ₁·v))
/// θ ← θ − α·g / (v + δ)
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | α | `lr` | 1e-2 | finite, ≥ 0 |
/// | ξ₁ | `xi_1` | 0.1 | finite, ≥ 0 |
/// | ξ₂ | `xi_2` | 0.1 | finite, > 0 |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | | `maximize` | false | |
///
/// State slices: `sum` (v), from 0. Scalar state: the step counter.
///
/// The paper's box takes any damping `0 < δₜ ≤ δₜ₋₁` (element-wise) with
/// `Aₜ = diag(vₜ + δₜ)` and `θ ← θ − α·Aₜ⁻¹g`; gradstep uses the damping the paper
/// proposes and the authors' Keras code (`SC_Adagrad`) uses, `δₜ = ξ₂·e^(−ξ₁·vₜ)`,
/// which decreases as v grows (ξ₁ = 0 gives a constant δ = ξ₂). Defaults are that code's
/// (`lr=0.01, xi_1=0.1, xi_2=0.1`). `maximize` and L2 weight decay are not in the
/// paper: they are torch's, applied to the gradient first. The exponential is
/// gradstep's own (fdlibm's algorithm on lanes, within 1 ulp). No package implements
/// the rule; the fixtures come from gradstep's numpy reference
/// (`tests/fixtures/mukkamala2017/reference.py`).
///
/// Unlike Adagrad the step is not scale-free: `α·g/(Σg² + δ)` shrinks like `1/g` for
/// large gradients and grows like `α·g/ξ₂` for small ones, so α must suit the
/// gradients' scale (the paper tunes it per problem).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScAdagrad {
    /// Learning rate α.
    pub lr: f64,
    /// ξ₁, the decay rate of the damping with v.
    pub xi_1: f64,
    /// ξ₂, the damping at v = 0.
    pub xi_2: f64,
    /// Weight decay λ (L2, added to the gradient).
    pub weight_decay: f64,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for ScAdagrad {
    fn default() -> Self {
        ScAdagrad {
            lr: 1e-2,
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
    damping: Damping<T>,
    neg_lr: T,
}

impl ScAdagrad {
    fn coeffs<T: Real>(&self) -> Coeffs<T> {
        Coeffs {
            prelude: Prelude::new(self.maximize, self.weight_decay, false, self.lr),
            damping: Damping::new(self.xi_1, self.xi_2),
            neg_lr: T::from_f64(-self.lr),
        }
    }
}

impl<T: Real> Kernel<T, 1> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [v]: &mut [V; 1]) {
        let g = self.prelude.apply(p, g);
        *v = *v + g * g;
        *p = *p + (V::splat(self.neg_lr) * g) / self.damping.denominator(*v);
    }
}

impl Rule for ScAdagrad {
    type Scalars = StepCount;
    const NAME: &'static str = "sc_adagrad";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::non_negative("xi_1", self.xi_1)?;
        check::positive("xi_2", self.xi_2)?;
        check::non_negative("weight_decay", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["sum"]
    }

    fn run<T: Real, D: Drive<T>>(&self, _: &mut StepCount, _: u64, drive: D) -> D::Out {
        drive.run::<1, _>(&self.coeffs::<T>(), Some([T::ZERO]))
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut StepCount,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
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
            let v = state[0][i] + g * g;
            state[0][i] = v;
            let delta =
                T::from_f64(self.xi_2) * exp_nonpositive::<T, T>(-(T::from_f64(self.xi_1) * v));
            params[i] = p - (T::from_f64(self.lr) * g) / (v + delta);
        }
        scalars.step = t;
        Ok(())
    }
}
