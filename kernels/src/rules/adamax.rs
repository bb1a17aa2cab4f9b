//! Adamax, Adam's infinity-norm variant (`torch.optim.Adamax`).

use super::prelude::Prelude;
use super::{Rule, StepCount, begin_step, lerp, powf};
use crate::driver::{Drive, Plain, general_and_plain_kernels};
use crate::error::{Error, check};
use crate::lanes::{Lanes, Lerp};
use crate::power::Powers;
use crate::real::Real;

/// Adamax (Kingma & Ba, 2015, §7.1) as `torch.optim.Adamax`.
///
/// ```text
/// g ← −g                          if maximize
/// g ← g + λθ                      if λ ≠ 0
/// m ← m + (1 − β₁)(g − m)
/// u ← max(β₂u, |g| + ε)
/// θ ← θ − (γ / (1 − β₁ᵗ)) · m / u
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 2e-3 | finite, ≥ 0 |
/// | β₁ | `beta1` | 0.9 | [0, 1) |
/// | β₂ | `beta2` | 0.999 | [0, 1) |
/// | ε | `eps` | 1e-8 | finite, > 0 |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | | `maximize` | false | |
///
/// State slices: `exp_avg` (m), `exp_inf` (u), from 0. Scalar state: the step counter.
///
/// Elsewhere: the paper and optax compute `u ← max(β₂u, |g|)` and add ε to the
/// denominator (`m / (u + ε)`); torch (and gradstep) put ε inside the max.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adamax {
    /// Learning rate γ.
    pub lr: f64,
    /// Decay β₁ of the first moment.
    pub beta1: f64,
    /// Decay β₂ of the infinity norm.
    pub beta2: f64,
    /// ε, added to |g| inside the max.
    pub eps: f64,
    /// Weight decay λ (L2, added to the gradient).
    pub weight_decay: f64,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for Adamax {
    fn default() -> Self {
        Adamax {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    lerp: Lerp<T>,
    beta2: T,
    eps: T,
    neg_clr: T,
}

impl Adamax {
    fn coeffs<T: Real>(&self, t: u64, powers: &mut Powers) -> Coeffs<T> {
        let bias_correction = 1.0 - powers.pow(0, self.beta1, t);
        Coeffs {
            prelude: Prelude::new(self.maximize, self.weight_decay, false, self.lr),
            lerp: Lerp::new(1.0 - self.beta1),
            beta2: T::from_f64(self.beta2),
            eps: T::from_f64(self.eps),
            neg_clr: T::from_f64(-(self.lr / bias_correction)),
        }
    }
}

impl<T: Real> Coeffs<T> {
    /// No `maximize`, no weight decay, and the `a + w·(b − a)` form of lerp (β₁ > 0.5):
    /// the options [`Plain`] makes constants.
    fn is_plain(&self) -> bool {
        self.prelude.is_identity() && self.lerp.is_small()
    }

    #[inline(always)]
    fn update<V: Lanes<Scalar = T>, const PLAIN: bool>(
        &self,
        p: &mut V,
        g: V,
        [m, u]: &mut [V; 2],
    ) {
        let g = if PLAIN { g } else { self.prelude.apply(p, g) };
        *m = self.lerp.apply::<V, PLAIN>(*m, g);
        *u = (*u * V::splat(self.beta2)).max(g.abs() + V::splat(self.eps));
        *p = *p + V::splat(self.neg_clr) * *m / *u;
    }
}

general_and_plain_kernels!(Coeffs, 2);

impl Rule for Adamax {
    type Scalars = StepCount;
    const NAME: &'static str = "adamax";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::unit_open("beta1", self.beta1)?;
        check::unit_open("beta2", self.beta2)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_inf"]
    }

    fn run<T: Real, D: Drive<T>>(&self, scalars: &mut StepCount, t: u64, drive: D) -> D::Out {
        let c = self.coeffs::<T>(t, &mut scalars.powers);
        if c.is_plain() {
            drive.run::<2, _>(&Plain(c), Some([T::ZERO; 2]))
        } else {
            drive.run::<2, _>(&c, Some([T::ZERO; 2]))
        }
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut StepCount,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
        let clr = T::from_f64(self.lr / (1.0 - powf(self.beta1, t as f64)));
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
            let m = lerp(state[0][i], g, 1.0 - self.beta1);
            let decayed = state[1][i] * T::from_f64(self.beta2);
            let fresh = Lanes::abs(g) + T::from_f64(self.eps);
            let u = if decayed > fresh { decayed } else { fresh };
            state[0][i] = m;
            state[1][i] = u;
            params[i] = p - clr * m / u;
        }
        scalars.step = t;
        Ok(())
    }
}
