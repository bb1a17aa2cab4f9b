//! ASGD, averaged stochastic gradient descent (`torch.optim.ASGD`).

use super::prelude::Prelude;
use super::{Rule, begin_step, is, lt, powf};
use crate::driver::{Drive, Kernel};
use crate::error::{Error, check};
use crate::lanes::Lanes;
use crate::real::Real;

/// Averaged SGD (Polyak & Juditsky, 1992; the schedule of Bottou, 2012) as
/// `torch.optim.ASGD`.
///
/// ```text
/// g ← −g                              if maximize
/// g ← g + λθ                          if λ ≠ 0 (weight_decay)
/// θ ← θ·(1 − κη)                      (κ = lambd)
/// θ ← θ − ηg
/// ax ← ax + μ(θ − ax)                 (ax ← θ when μ = 1)
/// then, for the next step:
/// η ← γ / (1 + κγt)^α
/// μ ← 1 / max(1, t − t₀)
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 1e-2 | finite, ≥ 0 |
/// | κ | `lambd` | 1e-4 | finite, ≥ 0 |
/// | α | `alpha` | 0.75 | finite, ≥ 0 |
/// | t₀ | `t0` | 1e6 | finite |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | | `maximize` | false | |
///
/// State slices: `ax` (the averaged params, from 0; read it for evaluation). Scalar
/// state: [`AsgdScalars`] (step, η from γ, μ from 1). η and μ are kept rounded to the
/// element type, as torch keeps them in tensors of the default dtype (gradstep matches
/// torch run with the default dtype equal to the parameter dtype).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Asgd {
    /// Learning rate γ.
    pub lr: f64,
    /// Decay term κ.
    pub lambd: f64,
    /// Power α of the η schedule.
    pub alpha: f64,
    /// Step t₀ at which averaging starts.
    pub t0: f64,
    /// Weight decay λ (L2, added to the gradient).
    pub weight_decay: f64,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for Asgd {
    fn default() -> Self {
        Asgd {
            lr: 1e-2,
            lambd: 1e-4,
            alpha: 0.75,
            t0: 1e6,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

/// ASGD's scalar state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AsgdScalars {
    /// Steps taken; 0 means fresh state (η and μ are then re-initialized).
    pub step: u64,
    /// The step size η of the next step.
    pub eta: f64,
    /// The averaging weight μ of the next step.
    pub mu: f64,
}

impl Default for AsgdScalars {
    fn default() -> Self {
        AsgdScalars {
            step: 0,
            eta: 0.0,
            mu: 1.0,
        }
    }
}

impl AsgdScalars {
    /// [`crate::rules::ScalarState::check`]: after step 0, η finite and ≥ 0 (γ / (1 +
    /// κγt)^α with γ, κ, α ≥ 0) and μ in (0, 1] (1 / max(1, t − t₀)).
    pub(crate) fn check_reachable(&self) -> Result<(), Error> {
        if self.step == 0 {
            return Ok(());
        }
        // On the bits (`check::is_*`): a float comparison is a library call on the
        // Cortex-M4F and M0.
        if !check::is_non_negative(self.eta) {
            return Err(Error::InvalidScalarState {
                name: "eta",
                value: self.eta,
                requirement: "steps keep it finite and >= 0",
            });
        }
        if !check::is_unit_positive(self.mu) {
            return Err(Error::InvalidScalarState {
                name: "mu",
                value: self.mu,
                requirement: "steps keep it in (0, 1]",
            });
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    decay: T,
    neg_eta: T,
    mu: T,
    average: bool,
}

impl Asgd {
    /// η and μ for this step (fresh state starts from η = γ, μ = 1).
    fn current<T: Real>(&self, scalars: &AsgdScalars) -> (f64, f64) {
        if scalars.step == 0 {
            (T::from_f64(self.lr).to_f64(), 1.0)
        } else {
            (scalars.eta, scalars.mu)
        }
    }

    fn coeffs<T: Real>(&self, eta: f64, mu: f64) -> Coeffs<T> {
        Coeffs {
            prelude: Prelude::new(self.maximize, self.weight_decay, false, self.lr),
            decay: T::from_f64(1.0 - self.lambd * eta),
            neg_eta: T::from_f64(-eta),
            mu: T::from_f64(mu),
            average: !is(mu, 1.0),
        }
    }

    /// The scalar state after step `t`.
    fn next<T: Real>(&self, t: u64) -> AsgdScalars {
        let step = t as f64;
        let eta = self.lr / powf(1.0 + self.lambd * self.lr * step, self.alpha);
        let since = step - self.t0;
        let mu = 1.0 / if lt(1.0, since) { since } else { 1.0 };
        AsgdScalars {
            step: t,
            eta: T::from_f64(eta).to_f64(),
            mu: T::from_f64(mu).to_f64(),
        }
    }
}

impl<T: Real> Kernel<T, 1> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [ax]: &mut [V; 1]) {
        let g = self.prelude.apply(p, g);
        *p = *p * V::splat(self.decay);
        *p = *p + V::splat(self.neg_eta) * g;
        *ax = if self.average {
            *ax + (*p - *ax) * V::splat(self.mu)
        } else {
            *p
        };
    }
}

impl Rule for Asgd {
    type Scalars = AsgdScalars;
    const NAME: &'static str = "asgd";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::non_negative("lambd", self.lambd)?;
        check::non_negative("alpha", self.alpha)?;
        check::finite("t0", self.t0)?;
        check::non_negative("weight_decay", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["ax"]
    }

    fn run<T: Real, D: Drive<T>>(&self, scalars: &mut AsgdScalars, t: u64, drive: D) -> D::Out {
        let (eta, mu) = self.current::<T>(scalars);
        *scalars = self.next::<T>(t);
        drive.run::<1, _>(&self.coeffs::<T>(eta, mu), Some([T::ZERO]))
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut AsgdScalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
        let (lr, lambd) = (self.lr, self.lambd);
        // η and μ are kept in the element type, as torch keeps them in tensors; a fresh
        // state starts from η = γ, μ = 1.
        let (eta, mu) = if t == 1 {
            (T::from_f64(lr).to_f64(), 1.0)
        } else {
            (scalars.eta, scalars.mu)
        };
        for i in 0..params.len() {
            if t == 1 {
                state[0][i] = T::ZERO;
            }
            let (mut p, mut g) = (params[i], grads[i]);
            if self.maximize {
                g = -g;
            }
            if self.weight_decay != 0.0 {
                g = g + T::from_f64(self.weight_decay) * p;
            }
            p = p * T::from_f64(1.0 - lambd * eta);
            p = p - T::from_f64(eta) * g;
            params[i] = p;
            let ax = state[0][i];
            state[0][i] = if mu == 1.0 {
                p
            } else {
                ax + (p - ax) * T::from_f64(mu)
            };
        }
        let step = t as f64;
        let eta = lr / powf(1.0 + lambd * lr * step, self.alpha);
        let mu = 1.0 / (step - self.t0).max(1.0);
        *scalars = AsgdScalars {
            step: t,
            eta: T::from_f64(eta).to_f64(),
            mu: T::from_f64(mu).to_f64(),
        };
        Ok(())
    }
}
