//! RAdam, Adam with a rectified adaptive learning rate (`torch.optim.RAdam`).

use super::prelude::Prelude;
use super::{Rule, StepCount, begin_step, lerp, lt, powf};
use crate::driver::{Drive, Plain, general_and_plain_kernels};
use crate::error::{Error, check};
use crate::lanes::{Divisor, Lanes, Lerp};
use crate::power::Powers;
use crate::real::Real;

/// RAdam (Liu et al., 2020) as `torch.optim.RAdam`.
///
/// ```text
/// g ← −g                                   if maximize
/// g ← g + λθ  or  θ ← θ·(1 − γλ)           if λ ≠ 0 (L2, or decoupled)
/// m ← m + (1 − β₁)(g − m)
/// v ← β₂v + (1 − β₂)g²
/// m̂ = m / (1 − β₁ᵗ)
/// ρ∞ = 2/(1 − β₂) − 1,   ρₜ = ρ∞ − 2tβ₂ᵗ/(1 − β₂ᵗ)
/// if ρₜ > 5:
///     r = √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ))
///     l = √(1 − β₂ᵗ) / (√v + ε)
///     θ ← θ − γ·m̂·l·r
/// else:
///     θ ← θ − γ·m̂                          (SGD with momentum while the variance is untrustworthy)
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 1e-3 | finite, ≥ 0 |
/// | β₁ | `beta1` | 0.9 | [0, 1) |
/// | β₂ | `beta2` | 0.999 | [0, 1) |
/// | ε | `eps` | 1e-8 | finite, > 0 |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | | `decoupled_weight_decay` | false | |
/// | | `maximize` | false | |
///
/// State slices: `exp_avg` (m), `exp_avg_sq` (v), from 0. Scalar state: the step counter.
///
/// Elsewhere: optax's `radam` uses a threshold of 5 too but adds ε inside the square
/// root of the bias-corrected v (`eps_root`); the paper's reference code uses ρₜ ≥ 5.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RAdam {
    /// Learning rate γ.
    pub lr: f64,
    /// Decay β₁ of the first moment.
    pub beta1: f64,
    /// Decay β₂ of the second moment.
    pub beta2: f64,
    /// ε, added to √v.
    pub eps: f64,
    /// Weight decay λ.
    pub weight_decay: f64,
    /// Decay the params directly (as AdamW) instead of adding λθ to the gradient.
    pub decoupled_weight_decay: bool,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for RAdam {
    fn default() -> Self {
        RAdam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    lerp: Lerp<T>,
    beta2: T,
    one_minus_beta2: T,
    bias_correction1: Divisor<T>,
    lr: T,
    /// `Some((√(1 − β₂ᵗ), r))` when ρₜ > 5.
    rectified: Option<(T, T)>,
    eps: T,
}

impl RAdam {
    fn coeffs<T: Real>(&self, t: u64, powers: &mut Powers) -> Coeffs<T> {
        let step = t as f64;
        let beta2_t = powers.pow(1, self.beta2, t);
        let bias_correction1 = 1.0 - powers.pow(0, self.beta1, t);
        let bias_correction2 = 1.0 - beta2_t;
        let rho_inf = 2.0 / (1.0 - self.beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * step * beta2_t / bias_correction2;
        let rectified = lt(5.0, rho_t).then(|| {
            let rect = powf(
                (rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                    / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t),
                0.5,
            );
            (T::from_f64(powf(bias_correction2, 0.5)), T::from_f64(rect))
        });
        Coeffs {
            prelude: Prelude::new(
                self.maximize,
                self.weight_decay,
                self.decoupled_weight_decay,
                self.lr,
            ),
            lerp: Lerp::new(1.0 - self.beta1),
            beta2: T::from_f64(self.beta2),
            one_minus_beta2: T::from_f64(1.0 - self.beta2),
            bias_correction1: Divisor::new(T::from_f64(bias_correction1)),
            lr: T::from_f64(self.lr),
            rectified,
            eps: T::from_f64(self.eps),
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
        [m, v]: &mut [V; 2],
    ) {
        let g = if PLAIN { g } else { self.prelude.apply(p, g) };
        *m = self.lerp.apply::<V, PLAIN>(*m, g);
        *v = *v * V::splat(self.beta2) + V::splat(self.one_minus_beta2) * g * g;
        let scaled = m.div_by(self.bias_correction1) * V::splat(self.lr);
        let update = match self.rectified {
            // torch computes `float / tensor` as `tensor.reciprocal() * float`.
            Some((bc2_sqrt, rect)) => {
                let adaptive =
                    V::splat(T::ONE) / (v.sqrt_abs() + V::splat(self.eps)) * V::splat(bc2_sqrt);
                scaled * adaptive * V::splat(rect)
            }
            None => scaled,
        };
        *p = *p - update;
    }
}

general_and_plain_kernels!(Coeffs, 2);

impl Rule for RAdam {
    type Scalars = StepCount;
    const NAME: &'static str = "radam";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::unit_open("beta1", self.beta1)?;
        check::unit_open("beta2", self.beta2)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
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
        let (lr, beta2) = (self.lr, self.beta2);
        let step = t as f64;
        let bias_correction1 = T::from_f64(1.0 - powf(self.beta1, step));
        let beta2_t = powf(beta2, step);
        let bias_correction2 = 1.0 - beta2_t;
        let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * step * beta2_t / bias_correction2;
        let rect = powf(
            (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t),
            0.5,
        );
        let (rect, bias_correction2_sqrt) =
            (T::from_f64(rect), T::from_f64(powf(bias_correction2, 0.5)));
        for i in 0..params.len() {
            if t == 1 {
                state[0][i] = T::ZERO;
                state[1][i] = T::ZERO;
            }
            let (mut p, mut g) = (params[i], grads[i]);
            if self.maximize {
                g = -g;
            }
            if self.weight_decay != 0.0 {
                if self.decoupled_weight_decay {
                    p = p * T::from_f64(1.0 - lr * self.weight_decay);
                } else {
                    g = g + T::from_f64(self.weight_decay) * p;
                }
            }
            let m = lerp(state[0][i], g, 1.0 - self.beta1);
            let v = state[1][i] * T::from_f64(beta2) + T::from_f64(1.0 - beta2) * g * g;
            state[0][i] = m;
            state[1][i] = v;
            let m_hat = m / bias_correction1;
            params[i] = if rho_t > 5.0 {
                // torch computes `l` as `(√v + ε).reciprocal() · √(1 − β₂ᵗ)`.
                let l =
                    T::ONE / (Lanes::sqrt_abs(v) + T::from_f64(self.eps)) * bias_correction2_sqrt;
                p - m_hat * T::from_f64(lr) * l * rect
            } else {
                p - m_hat * T::from_f64(lr)
            };
        }
        scalars.step = t;
        Ok(())
    }
}
