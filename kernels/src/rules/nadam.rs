//! NAdam, Adam with Nesterov momentum and a momentum schedule (`torch.optim.NAdam`).

use super::prelude::Prelude;
use super::{Rule, begin_step, lerp, powf};
use crate::driver::{Drive, Plain, general_and_plain_kernels};
use crate::error::{Error, check};
use crate::lanes::{Divisor, Lanes, Lerp};
use crate::power::Powers;
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
///
/// It also carries a cache of the step's powers: `β₂ᵗ`, kept at 128 bits so that the
/// next step's is one multiply (as [`StepCount`](super::StepCount) keeps Adam's), and
/// the last `0.96^((t+1)ψ)`, which is the next step's `0.96^(tψ)`. A step then computes
/// one correctly rounded real power instead of two and no integer power: f32 NAdam at
/// 1K params spent ~16 % of its step on the three. The cache never changes a result (it
/// is keyed by the exact base and exponent, and anything else is recomputed), so it is
/// not part of equality, `Debug` output or checkpoints: [`NAdamScalars::new`] resumes
/// exactly.
#[derive(Clone, Copy)]
pub struct NAdamScalars {
    /// Steps taken; 0 means fresh state.
    pub step: u64,
    /// Π, the product of the μₜ so far (1 when fresh), rounded to the element type.
    pub mu_product: f64,
    cache: Cache,
}

impl NAdamScalars {
    /// The state after `step` steps with the μ-product `mu_product` (fresh: 0 and 1).
    pub const fn new(step: u64, mu_product: f64) -> NAdamScalars {
        NAdamScalars {
            step,
            mu_product,
            cache: Cache::EMPTY,
        }
    }
}

impl Default for NAdamScalars {
    fn default() -> Self {
        NAdamScalars::new(0, 1.0)
    }
}

impl NAdamScalars {
    /// [`crate::rules::ScalarState::check`]: after step 0, μ-product in [0, 1] (a
    /// product of momentum coefficients in [0, 1), from 1).
    pub(crate) fn check_reachable(&self) -> Result<(), Error> {
        // On the bits (`check::is_unit_closed`): a float comparison is a library call
        // on the Cortex-M4F and M0.
        if self.step == 0 || check::is_unit_closed(self.mu_product) {
            return Ok(());
        }
        Err(Error::InvalidScalarState {
            name: "mu_product",
            value: self.mu_product,
            requirement: "steps keep it in [0, 1]",
        })
    }
}

impl PartialEq for NAdamScalars {
    fn eq(&self, other: &Self) -> bool {
        (self.step, self.mu_product) == (other.step, other.mu_product)
    }
}

impl core::fmt::Debug for NAdamScalars {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NAdamScalars")
            .field("step", &self.step)
            .field("mu_product", &self.mu_product)
            .finish()
    }
}

/// [`NAdamScalars`]' cache of powers.
#[derive(Clone, Copy)]
struct Cache {
    /// `β₂ᵗ` (entry 0).
    powers: Powers,
    /// The bits of an exponent `y` and `0.96^y`.
    momentum_exp: u64,
    momentum_pow: f64,
}

impl Cache {
    /// Nothing cached but `0.96^(+0) = 1`, which is true.
    const EMPTY: Cache = Cache {
        powers: Powers::EMPTY,
        momentum_exp: 0,
        momentum_pow: 1.0,
    };

    /// `0.96^y`, from the cache when `y` is the exponent it holds.
    fn momentum_pow(&self, y: f64) -> f64 {
        if y.to_bits() == self.momentum_exp {
            self.momentum_pow
        } else {
            powf(0.96, y)
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    lerp: Lerp<T>,
    beta2: T,
    one_minus_beta2: T,
    bias_correction2: Divisor<T>,
    eps: T,
    grad_coeff: T,
    avg_coeff: T,
}

impl NAdam {
    /// Per-step scalars and the new Π for step `t` from the previous Π; leaves in
    /// `cache` this step's `β₂ᵗ` and `0.96^((t+1)ψ)`.
    fn coeffs<T: Real>(&self, t: u64, mu_product: f64, cache: &mut Cache) -> (Coeffs<T>, f64) {
        let step = t as f64;
        let (y, y_next) = (
            step * self.momentum_decay,
            (step + 1.0) * self.momentum_decay,
        );
        let pow_next = powf(0.96, y_next);
        let mu = self.beta1 * (1.0 - 0.5 * cache.momentum_pow(y));
        let mu_next = self.beta1 * (1.0 - 0.5 * pow_next);
        (cache.momentum_exp, cache.momentum_pow) = (y_next.to_bits(), pow_next);
        // `powf(β₂, t)` is `powi(β₂, t)` for the t < 2⁵³ a counter reaches, and the
        // cache's powers are those of `powi`.
        let beta2_t = if t <= 1 << 53 {
            cache.powers.pow(0, self.beta2, t)
        } else {
            powf(self.beta2, step)
        };
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
            bias_correction2: Divisor::new(T::from_f64(1.0 - beta2_t)),
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
        let denom = v.div_by(self.bias_correction2).sqrt_abs() + V::splat(self.eps);
        *p = *p + V::splat(self.grad_coeff) * g / denom;
        *p = *p + V::splat(self.avg_coeff) * *m / denom;
    }
}

general_and_plain_kernels!(Coeffs, 2);

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
        let (c, mu_product) = self.coeffs::<T>(t, previous, &mut scalars.cache);
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
        *scalars = NAdamScalars::new(t, mu_product);
        Ok(())
    }
}
