//! RMSprop with Adam's bias correction of the second moment
//! (`optax.rmsprop(bias_correction=True, eps_in_sqrt=False)`).

use super::prelude::Prelude;
use super::{Rule, StepCount, begin_step, powf};
use crate::driver::{Drive, Kernel};
use crate::error::{Error, check};
use crate::lanes::Lanes;
use crate::real::Real;

/// RMSprop whose running average of g² is divided by `1 − αᵗ`, as Adam corrects its
/// second moment: without it the first steps divide by `√((1 − α)g²)`, a step
/// `1/√(1 − α)` times too large (10× for α = 0.99). The seed's "RMSprop with bias
/// correction"; `optax.rmsprop(bias_correction=True, eps_in_sqrt=False)`, and
/// `torch.optim.Adam(betas=(0, α))` in exact arithmetic.
///
/// For step `t = 1, 2, …` with gradient `g`:
///
/// ```text
/// g ← −g                              if maximize
/// g ← g + λθ                          if λ ≠ 0 (L2, optax's add_decayed_weights)
/// v ← (1 − α)·g² + α·v
/// s = 1 / (√(v · (1 / (1 − αᵗ))) + ε)
/// θ ← θ + (s·g)·(−γ)
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 1e-2 | finite, ≥ 0 |
/// | α | `alpha` | 0.99 | [0, 1) |
/// | ε | `eps` | 1e-8 | finite, > 0 |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | | `maximize` | false | |
///
/// State slices: `square_avg` (v), from 0. Scalar state: the step counter.
///
/// The defaults are `torch.optim.RMSprop`'s (`rmsprop` and `rmsprop_bc` differ only
/// by the correction); optax's `rmsprop` defaults α (`decay`) to 0.9 and has no default
/// learning rate. The operations are optax 0.2.8's, in its order, on jax 0.10.2's XLA
/// CPU backend, which evaluates `v / (1 − αᵗ)` as `v · (1/(1 − αᵗ))` (the bias
/// correction rounded to the element type first): gradstep is bit-exact with optax there
/// in f32 and f64 (the recorded fixtures, `tests/fixtures/optax/`, including weight decay
/// as `optax.chain(optax.add_decayed_weights(λ), optax.rmsprop(...))` and maximize as a
/// negated gradient, which optax lacks). `torch.optim.Adam(betas=(0, α), eps=ε,
/// weight_decay=λ, maximize=...)` is the same rule, but rounds differently: it divides
/// `√v` by `√(1 − αᵗ)` instead of taking `√(v/(1 − αᵗ))`, computes `γ·g/(…)` with one
/// division instead of a reciprocal and two products, and its CPU kernels fuse
/// multiply-adds; it agrees with gradstep within a few ulps (recorded too). Keras has no
/// bias-corrected RMSprop. torch's and Keras's RMSprop put no correction at all, and
/// optax's default (`eps_in_sqrt=True`) puts ε inside the root: `1/√(v̂ + ε)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropBc {
    /// Learning rate γ.
    pub lr: f64,
    /// Smoothing constant α of the running average of g² (optax's `decay`).
    pub alpha: f64,
    /// ε, added to the root of the corrected average.
    pub eps: f64,
    /// Weight decay λ (L2, added to the gradient).
    pub weight_decay: f64,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for RmsPropBc {
    fn default() -> Self {
        RmsPropBc {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    alpha: T,
    one_minus_alpha: T,
    inv_bc: T,
    eps: T,
    neg_lr: T,
}

impl RmsPropBc {
    fn coeffs<T: Real>(&self, t: u64, scalars: &mut StepCount) -> Coeffs<T> {
        let bc = 1.0 - scalars.powers.pow(0, self.alpha, t);
        Coeffs {
            prelude: Prelude::new(self.maximize, self.weight_decay, false, self.lr),
            alpha: T::from_f64(self.alpha),
            one_minus_alpha: T::from_f64(1.0 - self.alpha),
            // optax rounds the correction to the element type, then XLA takes its
            // reciprocal in that type.
            inv_bc: T::ONE / T::from_f64(bc),
            eps: T::from_f64(self.eps),
            neg_lr: T::from_f64(-self.lr),
        }
    }
}

impl<T: Real> Kernel<T, 1> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [v]: &mut [V; 1]) {
        let g = self.prelude.apply(p, g);
        *v = V::splat(self.one_minus_alpha) * (g * g) + V::splat(self.alpha) * *v;
        let s = V::splat(T::ONE) / ((*v * V::splat(self.inv_bc)).sqrt_abs() + V::splat(self.eps));
        *p = *p + (s * g) * V::splat(self.neg_lr);
    }
}

impl Rule for RmsPropBc {
    type Scalars = StepCount;
    const NAME: &'static str = "rmsprop_bc";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::unit_open("alpha", self.alpha)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["square_avg"]
    }

    fn run<T: Real, D: Drive<T>>(&self, scalars: &mut StepCount, t: u64, drive: D) -> D::Out {
        let c = self.coeffs::<T>(t, scalars);
        drive.run::<1, _>(&c, Some([T::ZERO]))
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut StepCount,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
        let bias_correction = T::from_f64(1.0 - powf(self.alpha, t as f64));
        let scale = T::ONE / bias_correction;
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
            let v = T::from_f64(1.0 - self.alpha) * (g * g) + T::from_f64(self.alpha) * state[0][i];
            state[0][i] = v;
            let s = T::ONE / (Lanes::sqrt_abs(v * scale) + T::from_f64(self.eps));
            params[i] = p + (s * g) * T::from_f64(-self.lr);
        }
        scalars.step = t;
        Ok(())
    }
}
