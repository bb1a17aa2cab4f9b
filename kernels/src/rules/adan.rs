//! Adan, adaptive Nesterov momentum (`pytorch_optimizer.Adan`).

use super::{Rule, StepCount, begin_step, lerp, nonzero, powf};
use crate::driver::{Drive, Plain, general_and_plain_kernels};
use crate::error::{Error, check};
use crate::lanes::{Divisor, Lanes, Lerp};
use crate::power::Powers;
use crate::real::Real;

/// Adan (Xie et al., 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster
/// Optimizing Deep Models"): Nesterov momentum written with the gradient difference
/// instead of a look-ahead gradient, so that it needs no extra gradient evaluation.
///
/// For step `t = 1, 2, …` with gradient `g` and the previous step's gradient `g₋`:
///
/// ```text
/// g ← −g                                            if maximize
/// d = g − g₋                                        (d = 0 on the first step)
/// m ← m + (1 − β₁)(g − m)                           (torch.lerp)
/// n ← n + (1 − β₂)(d − n)                           (torch.lerp)
/// z = β₂·d + g
/// v ← β₃v + (1 − β₃)z²
/// r = √v / √(1 − β₃ᵗ) + ε
/// θ ← θ·(1 − γλ)                                    if λ ≠ 0 and decoupled
/// θ ← θ − (γ / (1 − β₁ᵗ)) · m / r
/// θ ← θ − (γβ₂ / (1 − β₂ᵗ)) · n / r
/// θ ← θ / (1 + γλ)                                  if λ ≠ 0 and not decoupled (proximal)
/// g₋ ← g
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 1e-3 | finite, ≥ 0 |
/// | β₁ | `beta1` | 0.98 | [0, 1) |
/// | β₂ | `beta2` | 0.92 | [0, 1) |
/// | β₃ | `beta3` | 0.99 | [0, 1) |
/// | ε | `eps` | 1e-8 | finite, > 0 |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | | `decoupled_weight_decay` | false (proximal) | |
/// | | `maximize` | false | |
///
/// State slices, under pytorch_optimizer's names: `exp_avg` (m), `exp_avg_sq` (v),
/// `exp_avg_diff` (n), all starting at 0, and `previous_grad`, which holds **−g₋** (the
/// negated gradient of the previous step, as pytorch_optimizer stores it, so that a
/// state copied from it resumes exactly). Scalar state: the step counter.
///
/// Follows `pytorch_optimizer.Adan` 4.1.0 (its single-tensor path), which agrees with
/// the paper's own code and `timm.optim.Adan`: the β's weight the *old* value
/// (pytorch_optimizer's convention; the paper's Algorithm 1 writes 1 − β), weight
/// decay is proximal (θ divided by 1 + γλ after the step, the paper's default) unless
/// `decoupled_weight_decay` (pytorch_optimizer's `weight_decouple`, AdamW-style decay
/// before the step). Where others differ:
/// - `optax.adan` weights the difference in `z` by 1 − β₂ where the paper's code uses
///   β₂ (an open fix upstream); gradstep follows the paper's code.
/// - pytorch_optimizer's `max_grad_norm` (global clipping over every tensor before the
///   step) is not a field: clip first with [`crate::clip`]. Its own clip divides by
///   `‖g‖ + ε` with the rule's ε, not torch's 1e-6.
/// - pytorch_optimizer 4.1.0 with `maximize` starts `previous_grad` from the gradient
///   before negating it, so its first-step difference is −2g instead of 0; gradstep's
///   first difference is 0 with or without `maximize`.
/// - pytorch_optimizer accepts ε = 0; gradstep requires ε > 0 (a zero gradient would
///   give 0/0 on the first step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adan {
    /// Learning rate γ.
    pub lr: f64,
    /// Decay β₁ of the gradient's average m.
    pub beta1: f64,
    /// Decay β₂ of the gradient difference's average n, and the difference's weight in z.
    pub beta2: f64,
    /// Decay β₃ of the second moment v (of z).
    pub beta3: f64,
    /// ε, added to the bias-corrected √v.
    pub eps: f64,
    /// Weight decay λ.
    pub weight_decay: f64,
    /// Multiply θ by `1 − γλ` before the step instead of dividing it by `1 + γλ` after.
    pub decoupled_weight_decay: bool,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for Adan {
    fn default() -> Self {
        Adan {
            lr: 1e-3,
            beta1: 0.98,
            beta2: 0.92,
            beta3: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

/// Adan's per-step scalars, computed once per step in f64 and rounded to `T`.
#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    maximize: bool,
    /// The first step: the difference is `g − g`, whatever `previous_grad` holds.
    first: bool,
    decoupled: bool,
    prox_decay: bool,
    lerp_m: Lerp<T>,
    lerp_n: Lerp<T>,
    beta2: T,
    beta3: T,
    one_minus_beta3: T,
    bc3_sqrt: Divisor<T>,
    eps: T,
    decay: T,
    shrink: Divisor<T>,
    neg_step_m: T,
    neg_step_n: T,
}

impl Adan {
    fn coeffs<T: Real>(&self, t: u64, powers: &mut Powers) -> Coeffs<T> {
        let bc1 = 1.0 - powers.pow(0, self.beta1, t);
        let bc2 = 1.0 - powers.pow(1, self.beta2, t);
        let bc3 = 1.0 - powers.pow(2, self.beta3, t);
        // The decay factors only with decay on (unused otherwise), as in
        // `Prelude::new`: four library calls a step less without a double-precision unit.
        let on = nonzero(self.weight_decay);
        let (decay, shrink) = if on {
            let lr_wd = self.lr * self.weight_decay;
            (T::from_f64(1.0 - lr_wd), T::from_f64(1.0 + lr_wd))
        } else {
            (T::ONE, T::ONE)
        };
        Coeffs {
            maximize: self.maximize,
            first: t == 1,
            decoupled: on && self.decoupled_weight_decay,
            prox_decay: on && !self.decoupled_weight_decay,
            lerp_m: Lerp::new(1.0 - self.beta1),
            lerp_n: Lerp::new(1.0 - self.beta2),
            beta2: T::from_f64(self.beta2),
            beta3: T::from_f64(self.beta3),
            one_minus_beta3: T::from_f64(1.0 - self.beta3),
            bc3_sqrt: Divisor::new(T::from_f64(powf(bc3, 0.5))),
            eps: T::from_f64(self.eps),
            decay,
            shrink: Divisor::new(shrink),
            neg_step_m: T::from_f64(-(self.lr / bc1)),
            neg_step_n: T::from_f64(-(self.lr * self.beta2 / bc2)),
        }
    }
}

impl<T: Real> Coeffs<T> {
    /// Whether the [`Plain`] kernel applies: no maximize, no weight decay, not the first
    /// step, and both lerps in their `a + w·(b − a)` form (β₁, β₂ > 0.5).
    fn is_plain(&self) -> bool {
        !(self.maximize || self.first || self.decoupled || self.prox_decay)
            && self.lerp_m.is_small()
            && self.lerp_n.is_small()
    }

    /// The element update. With `PLAIN` ([`Coeffs::is_plain`]) the options are constants.
    #[inline(always)]
    #[allow(clippy::eq_op)] // g − g is the point: 0, or NaN for a non-finite g
    fn update<V: Lanes<Scalar = T>, const PLAIN: bool>(&self, p: &mut V, g: V, s: &mut [V; 4]) {
        let [m, v, n, prev] = s;
        let g = if !PLAIN && self.maximize { -g } else { g };
        // `prev` holds −g₋, so the difference is a sum (pytorch_optimizer's order); on
        // the first step `g − g` is pytorch_optimizer's −g + g: 0, or NaN for a
        // non-finite gradient.
        let d = if !PLAIN && self.first {
            g - g
        } else {
            g + *prev
        };
        *m = self.lerp_m.apply::<V, PLAIN>(*m, g);
        *n = self.lerp_n.apply::<V, PLAIN>(*n, d);
        let z = d * V::splat(self.beta2) + g;
        *v = *v * V::splat(self.beta3) + V::splat(self.one_minus_beta3) * z * z;
        let r = v.sqrt_abs_div_by(self.bc3_sqrt) + V::splat(self.eps);
        if !PLAIN && self.decoupled {
            *p = *p * V::splat(self.decay);
        }
        *p = *p + V::splat(self.neg_step_m) * *m / r;
        *p = *p + V::splat(self.neg_step_n) * *n / r;
        if !PLAIN && self.prox_decay {
            *p = p.div_by(self.shrink);
        }
        *prev = -g;
    }
}

general_and_plain_kernels!(Coeffs, 4);

impl Rule for Adan {
    type Scalars = StepCount;
    const NAME: &'static str = "adan";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::unit_open("beta1", self.beta1)?;
        check::unit_open("beta2", self.beta2)?;
        check::unit_open("beta3", self.beta3)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq", "exp_avg_diff", "previous_grad"]
    }

    fn run<T: Real, D: Drive<T>>(&self, scalars: &mut StepCount, t: u64, drive: D) -> D::Out {
        let c = self.coeffs::<T>(t, &mut scalars.powers);
        let zero = Some([T::ZERO; 4]);
        if c.is_plain() {
            drive.run::<4, _>(&Plain::<_, 0>(c), zero)
        } else {
            drive.run::<4, _>(&c, zero)
        }
    }

    #[allow(clippy::eq_op)] // g − g: as in the kernel
    fn step_reference<T: Real>(
        &self,
        scalars: &mut StepCount,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
        let (lr, lambda) = (self.lr, self.weight_decay);
        let bias_correction1 = 1.0 - powf(self.beta1, t as f64);
        let bias_correction2 = 1.0 - powf(self.beta2, t as f64);
        let bias_correction3_sqrt = T::from_f64(powf(1.0 - powf(self.beta3, t as f64), 0.5));
        let step_m = T::from_f64(lr / bias_correction1);
        let step_n = T::from_f64(lr * self.beta2 / bias_correction2);
        for i in 0..params.len() {
            if t == 1 {
                state.iter_mut().for_each(|s| s[i] = T::ZERO);
            }
            let mut g = grads[i];
            if self.maximize {
                g = -g;
            }
            let previous = -state[3][i];
            let diff = if t == 1 { g - g } else { g - previous };
            let m = lerp(state[0][i], g, 1.0 - self.beta1);
            let n = lerp(state[2][i], diff, 1.0 - self.beta2);
            let z = diff * T::from_f64(self.beta2) + g;
            let v = state[1][i] * T::from_f64(self.beta3) + T::from_f64(1.0 - self.beta3) * z * z;
            let denom = Lanes::sqrt_abs(v) / bias_correction3_sqrt + T::from_f64(self.eps);
            let mut p = params[i];
            if lambda != 0.0 && self.decoupled_weight_decay {
                p = p * T::from_f64(1.0 - lr * lambda);
            }
            p = p - step_m * m / denom;
            p = p - step_n * n / denom;
            if lambda != 0.0 && !self.decoupled_weight_decay {
                p = p / T::from_f64(1.0 + lr * lambda);
            }
            params[i] = p;
            state[0][i] = m;
            state[1][i] = v;
            state[2][i] = n;
            state[3][i] = -g;
        }
        scalars.step = t;
        Ok(())
    }
}
