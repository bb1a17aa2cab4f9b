//! NAdam, Adam with Nesterov momentum and a momentum schedule (`torch.optim.NAdam`).

use super::prelude::Prelude;
use super::{Rule, begin_step, lerp, powf};
use crate::driver::{Drive, Kernel, Plain};
use crate::error::{Error, check};
use crate::lanes::{Lanes, Lerp};
use crate::real::Real;

/// NAdam (Dozat, 2016) as `torch.optim.NAdam`, with its momentum decay schedule.
///
/// ```text
/// g ← −g                                   if maximize
/// g ← g + λθ  or  θ ← θ·(1 − γλ)           if λ ≠ 0 (L2, or decoupled)
/// μₜ   = β₁(1 − ½·0.96^(tψ))
/// μₜ₊₁ = β₁(1 − ½·0.96^((t+1)ψ))
/// Π ← Π·μₜ                                 (scalar state, starts at 1)
/// m ← m + (1 − β₁)(g − m)
/// v ← β₂v + (1 − β₂)g²
/// d = √(v / (1 − β₂ᵗ)) + ε
/// θ ← θ − γ(1 − μₜ)/(1 − Π) · g/d − γμₜ₊₁/(1 − Π·μₜ₊₁) · m/d
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 2e-3 | finite, ≥ 0 |
/// | β₁ | `beta1` | 0.9 | [0, 1) |
/// | β₂ | `beta2` | 0.999 | [0, 1) |
/// | ε | `eps` | 1e-8 | finite, > 0 |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | ψ | `momentum_decay` | 4e-3 | finite, ≥ 0 |
/// | | `decoupled_weight_decay` | false | |
/// | | `maximize` | false | |
///
/// State slices: `exp_avg` (m), `exp_avg_sq` (v), from 0. Scalar state:
/// [`NAdamScalars`] (step counter and Π). Π is kept rounded to the element type after
/// every step, as torch keeps `mu_product` in a tensor of the default dtype (gradstep
/// matches torch run with the default dtype equal to the parameter dtype).
///
/// Elsewhere: Keras's `Nadam` uses the same schedule with ψ = 1 in effect
/// (`0.96^(0.004·t)` written with different constants) and a different Π bookkeeping;
/// optax's `nadam` is Adam with a Nesterov-style step and no momentum schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NAdam {
    /// Learning rate γ.
    pub lr: f64,
    /// Decay β₁ of the first moment.
    pub beta1: f64,
    /// Decay β₂ of the second moment.
    pub beta2: f64,
    /// ε, added to the bias-corrected √v.
    pub eps: f64,
    /// Weight decay λ.
    pub weight_decay: f64,
    /// Momentum decay ψ of the μ schedule.
    pub momentum_decay: f64,
    /// Decay the params directly (as AdamW) instead of adding λθ to the gradient.
    pub decoupled_weight_decay: bool,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for NAdam {
    fn default() -> Self {
        NAdam {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

/// NAdam's scalar state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NAdamScalars {
    /// Steps taken; 0 means fresh state.
    pub step: u64,
    /// Π, the product of the μₜ so far (1 when fresh), rounded to the element type.
    pub mu_product: f64,
}

impl Default for NAdamScalars {
    fn default() -> Self {
        NAdamScalars {
            step: 0,
            mu_product: 1.0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    lerp: Lerp<T>,
    beta2: T,
    one_minus_beta2: T,
    bias_correction2: T,
    eps: T,
    grad_coeff: T,
    avg_coeff: T,
}

impl NAdam {
    /// Per-step scalars and the new Π for step `t` from the previous Π.
    fn coeffs<T: Real>(&self, t: u64, mu_product: f64) -> (Coeffs<T>, f64) {
        let step = t as f64;
        let mu = self.beta1 * (1.0 - 0.5 * powf(0.96, step * self.momentum_decay));
        let mu_next = self.beta1 * (1.0 - 0.5 * powf(0.96, (step + 1.0) * self.momentum_decay));
        let mu_product = (T::from_f64(mu_product) * T::from_f64(mu)).to_f64();
        let mu_product_next = mu_product * mu_next;
        let c = Coeffs {
            prelude: Prelude::new(
                self.maximize,
                self.weight_decay,
                self.decoupled_weight_decay,
                self.lr,
            ),
            lerp: Lerp::new(1.0 - self.beta1),
            beta2: T::from_f64(self.beta2),
            one_minus_beta2: T::from_f64(1.0 - self.beta2),
            bias_correction2: T::from_f64(1.0 - powf(self.beta2, step)),
            eps: T::from_f64(self.eps),
            grad_coeff: T::from_f64(-self.lr * (1.0 - mu) / (1.0 - mu_product)),
            avg_coeff: T::from_f64((-self.lr * mu_next) / (1.0 - mu_product_next)),
        };
        (c, mu_product)
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
        let denom = (*v / V::splat(self.bias_correction2)).sqrt_abs() + V::splat(self.eps);
        *p = *p + V::splat(self.grad_coeff) * g / denom;
        *p = *p + V::splat(self.avg_coeff) * *m / denom;
    }
}

impl<T: Real> Kernel<T, 2> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, s: &mut [V; 2]) {
        self.update::<V, false>(p, g, s);
    }
}

impl<T: Real> Kernel<T, 2> for Plain<Coeffs<T>> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, s: &mut [V; 2]) {
        self.0.update::<V, true>(p, g, s);
    }
}

impl Rule for NAdam {
    type Scalars = NAdamScalars;
    const NAME: &'static str = "nadam";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::unit_open("beta1", self.beta1)?;
        check::unit_open("beta2", self.beta2)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        check::non_negative("momentum_decay", self.momentum_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }

    fn run<T: Real, D: Drive<T>>(&self, scalars: &mut NAdamScalars, t: u64, drive: D) -> D::Out {
        let previous = if t == 1 { 1.0 } else { scalars.mu_product };
        let (c, mu_product) = self.coeffs::<T>(t, previous);
        scalars.mu_product = mu_product;
        if c.is_plain() {
            drive.run::<2, _>(&Plain(c), Some([T::ZERO; 2]))
        } else {
            drive.run::<2, _>(&c, Some([T::ZERO; 2]))
        }
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut NAdamScalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
        let (lr, beta1, psi) = (self.lr, self.beta1, self.momentum_decay);
        let step = t as f64;
        let mu = beta1 * (1.0 - 0.5 * powf(0.96, step * psi));
        let mu_next = beta1 * (1.0 - 0.5 * powf(0.96, (step + 1.0) * psi));
        // Π is kept in the element type, as torch keeps `mu_product` in a tensor.
        let previous = if t == 1 { 1.0 } else { scalars.mu_product };
        let mu_product = (T::from_f64(previous) * T::from_f64(mu)).to_f64();
        let bias_correction2 = T::from_f64(1.0 - powf(self.beta2, step));
        let grad_step = T::from_f64(lr * (1.0 - mu) / (1.0 - mu_product));
        let avg_step = T::from_f64(lr * mu_next / (1.0 - mu_product * mu_next));
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
            let m = lerp(state[0][i], g, 1.0 - beta1);
            let v = state[1][i] * T::from_f64(self.beta2) + T::from_f64(1.0 - self.beta2) * g * g;
            state[0][i] = m;
            state[1][i] = v;
            let denom = Lanes::sqrt_abs(v / bias_correction2) + T::from_f64(self.eps);
            p = p - grad_step * g / denom;
            params[i] = p - avg_step * m / denom;
        }
        *scalars = NAdamScalars {
            step: t,
            mu_product,
        };
        Ok(())
    }
}
