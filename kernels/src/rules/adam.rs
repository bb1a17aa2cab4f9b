//! Adam, AdamW and AMSGrad (`torch.optim.Adam`, `torch.optim.AdamW`).

use super::prelude::Prelude;
use super::{Rule, StepCount, begin_step, lerp, powf};
use crate::driver::{Drive, Kernel, Plain};
use crate::error::{Error, check};
use crate::lanes::{Divisor, Lanes, Lerp};
use crate::power::Powers;
use crate::real::Real;

/// Adam (Kingma & Ba, 2015) with torch.optim's options: AMSGrad, L2 or decoupled
/// (AdamW) weight decay, maximize.
///
/// For step `t = 1, 2, …` with gradient `g`:
///
/// ```text
/// g ← −g                                   if maximize
/// g ← g + λθ                               if λ ≠ 0 and not decoupled (L2)
/// θ ← θ·(1 − γλ)                           if λ ≠ 0 and decoupled (AdamW)
/// m ← m + (1 − β₁)(g − m)                  (torch.lerp)
/// v ← β₂v + (1 − β₂)g²
/// v̂ ← max(v̂, v)                            if amsgrad (on the raw v)
/// θ ← θ − (γ / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)     (v̂ in place of v with amsgrad)
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
/// | | `amsgrad` | false | |
/// | | `maximize` | false | |
///
/// State slices: `exp_avg` (m), `exp_avg_sq` (v), and with `amsgrad` `max_exp_avg_sq` (v̂),
/// all starting at 0. Scalar state: the step counter.
///
/// Follows `torch.optim.Adam` exactly, including where ε goes (after the bias
/// correction of √v). Elsewhere: Keras and some embedded libraries add ε to the raw √v
/// and fold √(1 − β₂ᵗ) into the step size ("ε-hat"); optax adds an `eps_root` inside the
/// square root (0 by default, making it equal to torch). torch accepts ε = 0; gradstep
/// requires ε > 0 so that a zero gradient cannot produce 0/0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
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
    /// Decay the params directly (AdamW) instead of adding λθ to the gradient.
    pub decoupled_weight_decay: bool,
    /// Use the running maximum of v (AMSGrad, Reddi et al. 2018).
    pub amsgrad: bool,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            amsgrad: false,
            maximize: false,
        }
    }
}

/// AdamW (Loshchilov & Hutter, 2019): [`Adam`] with decoupled weight decay, as
/// `torch.optim.AdamW`.
///
/// ```text
/// θ ← θ·(1 − γλ)
/// then the Adam update of [`Adam`] (without L2 on the gradient)
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 1e-3 | finite, ≥ 0 |
/// | β₁ | `beta1` | 0.9 | [0, 1) |
/// | β₂ | `beta2` | 0.999 | [0, 1) |
/// | ε | `eps` | 1e-8 | finite, > 0 |
/// | λ | `weight_decay` | 1e-2 | finite, ≥ 0 |
/// | | `amsgrad` | false | |
/// | | `maximize` | false | |
///
/// State and scalar state as [`Adam`]. optax's `adamw` defaults λ to 1e-4 and
/// Keras's `AdamW` to 4e-3; torch (and gradstep) use 1e-2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamW {
    /// Learning rate γ.
    pub lr: f64,
    /// Decay β₁ of the first moment.
    pub beta1: f64,
    /// Decay β₂ of the second moment.
    pub beta2: f64,
    /// ε, added to the bias-corrected √v.
    pub eps: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
    /// Use the running maximum of v (AMSGrad).
    pub amsgrad: bool,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
            maximize: false,
        }
    }
}

impl AdamW {
    /// The equivalent [`Adam`] configuration.
    pub fn as_adam(&self) -> Adam {
        Adam {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            decoupled_weight_decay: true,
            amsgrad: self.amsgrad,
            maximize: self.maximize,
        }
    }
}

/// Adam's per-step scalars, computed once per step in f64 and rounded to `T`.
#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    lerp: Lerp<T>,
    beta2: T,
    one_minus_beta2: T,
    bc2_sqrt: Divisor<T>,
    eps: T,
    neg_step_size: T,
}

impl Adam {
    fn coeffs<T: Real>(&self, t: u64, powers: &mut Powers) -> Coeffs<T> {
        let bc1 = 1.0 - powers.pow(0, self.beta1, t);
        let bc2 = 1.0 - powers.pow(1, self.beta2, t);
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
            bc2_sqrt: Divisor::new(T::from_f64(powf(bc2, 0.5))),
            eps: T::from_f64(self.eps),
            neg_step_size: T::from_f64(-(self.lr / bc1)),
        }
    }
}

impl<T: Real> Coeffs<T> {
    /// The [`Plain`] variant for these options: 0 without a prelude, 1 with decoupled
    /// weight decay only (AdamW), both with the `a + w·(b − a)` form of lerp (β₁ > 0.5).
    fn plain_variant(&self) -> Option<u8> {
        if !self.lerp.is_small() {
            None
        } else if self.prelude.is_identity() {
            Some(0)
        } else if self.prelude.is_decoupled_only() {
            Some(1)
        } else {
            None
        }
    }

    /// The element update; `vmax` is the AMSGrad maximum when enabled. With `PLAIN`
    /// ([`Coeffs::plain_variant`] is `Some(VARIANT)`) the options are constants.
    #[inline(always)]
    fn update<V: Lanes<Scalar = T>, const PLAIN: bool, const VARIANT: u8>(
        &self,
        p: &mut V,
        g: V,
        m: &mut V,
        v: &mut V,
        vmax: Option<&mut V>,
    ) {
        let g = if PLAIN {
            self.prelude.apply_plain::<V, VARIANT>(p, g)
        } else {
            self.prelude.apply(p, g)
        };
        *m = self.lerp.apply::<V, PLAIN>(*m, g);
        *v = *v * V::splat(self.beta2) + V::splat(self.one_minus_beta2) * g * g;
        let second = match vmax {
            Some(vmax) => {
                *vmax = vmax.max(*v);
                *vmax
            }
            None => *v,
        };
        let denom = second.sqrt_abs_div_by(self.bc2_sqrt) + V::splat(self.eps);
        *p = *p + V::splat(self.neg_step_size) * *m / denom;
    }
}

impl<T: Real> Kernel<T, 2> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [m, v]: &mut [V; 2]) {
        self.update::<V, false, 0>(p, g, m, v, None);
    }
}

impl<T: Real> Kernel<T, 3> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [m, v, vmax]: &mut [V; 3]) {
        self.update::<V, false, 0>(p, g, m, v, Some(vmax));
    }
}

impl<T: Real, const VARIANT: u8> Kernel<T, 2> for Plain<Coeffs<T>, VARIANT> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [m, v]: &mut [V; 2]) {
        self.0.update::<V, true, VARIANT>(p, g, m, v, None);
    }
}

impl<T: Real, const VARIANT: u8> Kernel<T, 3> for Plain<Coeffs<T>, VARIANT> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [m, v, vmax]: &mut [V; 3]) {
        self.0.update::<V, true, VARIANT>(p, g, m, v, Some(vmax));
    }
}

impl Rule for Adam {
    type Scalars = StepCount;
    const NAME: &'static str = "adam";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::unit_open("beta1", self.beta1)?;
        check::unit_open("beta2", self.beta2)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        if self.amsgrad {
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            &["exp_avg", "exp_avg_sq"]
        }
    }

    fn run<T: Real, D: Drive<T>>(&self, scalars: &mut StepCount, t: u64, drive: D) -> D::Out {
        let c = self.coeffs::<T>(t, &mut scalars.powers);
        let (zero2, zero3) = (Some([T::ZERO; 2]), Some([T::ZERO; 3]));
        match (self.amsgrad, c.plain_variant()) {
            (false, Some(0)) => drive.run::<2, _>(&Plain::<_, 0>(c), zero2),
            (false, Some(_)) => drive.run::<2, _>(&Plain::<_, 1>(c), zero2),
            (false, None) => drive.run::<2, _>(&c, zero2),
            (true, Some(0)) => drive.run::<3, _>(&Plain::<_, 0>(c), zero3),
            (true, Some(_)) => drive.run::<3, _>(&Plain::<_, 1>(c), zero3),
            (true, None) => drive.run::<3, _>(&c, zero3),
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
        let (lr, lambda) = (self.lr, self.weight_decay);
        let bias_correction1 = 1.0 - powf(self.beta1, t as f64);
        let bias_correction2 = 1.0 - powf(self.beta2, t as f64);
        let step_size = T::from_f64(lr / bias_correction1);
        let bias_correction2_sqrt = T::from_f64(powf(bias_correction2, 0.5));
        for i in 0..params.len() {
            if t == 1 {
                state.iter_mut().for_each(|s| s[i] = T::ZERO);
            }
            let (mut p, mut g) = (params[i], grads[i]);
            if self.maximize {
                g = -g;
            }
            if lambda != 0.0 {
                if self.decoupled_weight_decay {
                    p = p * T::from_f64(1.0 - lr * lambda);
                } else {
                    g = g + T::from_f64(lambda) * p;
                }
            }
            let m = lerp(state[0][i], g, 1.0 - self.beta1);
            let v = state[1][i] * T::from_f64(self.beta2) + T::from_f64(1.0 - self.beta2) * g * g;
            state[0][i] = m;
            state[1][i] = v;
            let mut second = v;
            if self.amsgrad {
                let vmax = state[2][i];
                second = if vmax > v { vmax } else { v };
                state[2][i] = second;
            }
            let denom = Lanes::sqrt_abs(second) / bias_correction2_sqrt + T::from_f64(self.eps);
            params[i] = p - step_size * m / denom;
        }
        scalars.step = t;
        Ok(())
    }
}

impl Rule for AdamW {
    type Scalars = StepCount;
    const NAME: &'static str = "adamw";

    fn validate(&self) -> Result<(), Error> {
        self.as_adam().validate()
    }
    fn slot_names(&self) -> &'static [&'static str] {
        self.as_adam().slot_names()
    }
    fn run<T: Real, D: Drive<T>>(&self, scalars: &mut StepCount, t: u64, drive: D) -> D::Out {
        self.as_adam().run(scalars, t, drive)
    }
    fn step_reference<T: Real>(
        &self,
        s: &mut StepCount,
        p: &mut [T],
        g: &[T],
        st: &mut [&mut [T]],
    ) -> Result<(), Error> {
        self.as_adam().step_reference(s, p, g, st)
    }
}
