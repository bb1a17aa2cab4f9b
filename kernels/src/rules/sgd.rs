//! Stochastic gradient descent with momentum and Nesterov momentum (`torch.optim.SGD`).

use super::prelude::Prelude;
use super::{Rule, StepCount, begin_step, nonzero};
use crate::driver::{Drive, Kernel, Plain};
use crate::error::{Error, check, require};
use crate::lanes::Lanes;
use crate::real::Real;

/// SGD with torch.optim's momentum, dampening, Nesterov, weight decay and maximize.
///
/// For step `t = 1, 2, …` with gradient `g`:
///
/// ```text
/// g ← −g                          if maximize
/// g ← g + λθ                      if λ ≠ 0
/// if μ ≠ 0:
///     b ← g                       at t = 1 (no dampening on the first step)
///     b ← μb + (1 − τ)g           at t > 1
///     g ← g + μb                  if nesterov
///     g ← b                       otherwise
/// θ ← θ − γg
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 1e-3 | finite, ≥ 0 |
/// | μ | `momentum` | 0 | finite, ≥ 0 |
/// | τ | `dampening` | 0 | finite; 0 with `nesterov` |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | | `nesterov` | false | needs μ > 0 and τ = 0 |
/// | | `maximize` | false | |
///
/// State slices: `momentum_buffer` (b) when μ ≠ 0, none otherwise. Scalar state: the
/// step counter (which tells the first step).
///
/// Elsewhere: optax (`sgd` with `momentum`) and dfdx start the buffer from zero, so
/// their first step is `(1 − τ)g` rather than `g`; Keras writes momentum as
/// `v ← μv − γg; θ ← θ + v`, which equals torch's for a constant learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Learning rate γ.
    pub lr: f64,
    /// Momentum factor μ (0 disables momentum and its state slice).
    pub momentum: f64,
    /// Dampening τ of the gradient added to the momentum buffer.
    pub dampening: f64,
    /// Weight decay λ (L2, added to the gradient).
    pub weight_decay: f64,
    /// Use Nesterov momentum.
    pub nesterov: bool,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    first: bool,
    nesterov: bool,
    momentum: T,
    one_minus_dampening: T,
    neg_lr: T,
}

impl Sgd {
    fn coeffs<T: Real>(&self, first: bool) -> Coeffs<T> {
        Coeffs {
            prelude: Prelude::new(self.maximize, self.weight_decay, false, self.lr),
            first,
            nesterov: self.nesterov,
            momentum: T::from_f64(self.momentum),
            one_minus_dampening: T::from_f64(1.0 - self.dampening),
            neg_lr: T::from_f64(-self.lr),
        }
    }
}

impl<T: Real> Kernel<T, 0> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, _: &mut [V; 0]) {
        let g = self.prelude.apply(p, g);
        *p = *p + V::splat(self.neg_lr) * g;
    }
}

/// No momentum, no prelude: `θ ← θ − γg` with nothing decided per element. The general
/// kernel above tests `maximize` and weight decay per vector in its loop; this one is
/// what a default build runs for plain SGD (measured at 4K on AVX-512: 0.82–0.87 of the
/// `-C target-cpu=native` build before, whose compiler hoisted those tests itself).
impl<T: Real> Kernel<T, 0> for Plain<Coeffs<T>> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, _: &mut [V; 0]) {
        *p = *p + V::splat(self.0.neg_lr) * g;
    }
}

impl<T: Real> Coeffs<T> {
    /// The steady state: no prelude, not the first step. [`Plain`] variant 1 is Nesterov.
    fn is_plain(&self) -> bool {
        self.prelude.is_identity() && !self.first
    }

    /// The momentum update. With `PLAIN` ([`Coeffs::is_plain`]) the options are constants,
    /// `NESTEROV` (1) among them.
    #[inline(always)]
    fn momentum<V: Lanes<Scalar = T>, const PLAIN: bool, const NESTEROV: u8>(
        &self,
        p: &mut V,
        g: V,
        b: &mut V,
    ) {
        let g = if PLAIN { g } else { self.prelude.apply(p, g) };
        *b = if !PLAIN && self.first {
            g
        } else {
            *b * V::splat(self.momentum) + V::splat(self.one_minus_dampening) * g
        };
        let nesterov = if PLAIN { NESTEROV == 1 } else { self.nesterov };
        let g = if nesterov {
            g + V::splat(self.momentum) * *b
        } else {
            *b
        };
        *p = *p + V::splat(self.neg_lr) * g;
    }
}

impl<T: Real> Kernel<T, 1> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [b]: &mut [V; 1]) {
        self.momentum::<V, false, 0>(p, g, b);
    }
}

impl<T: Real, const NESTEROV: u8> Kernel<T, 1> for Plain<Coeffs<T>, NESTEROV> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [b]: &mut [V; 1]) {
        self.0.momentum::<V, true, NESTEROV>(p, g, b);
    }
}

impl Rule for Sgd {
    type Scalars = StepCount;
    const NAME: &'static str = "sgd";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::non_negative("momentum", self.momentum)?;
        check::finite("dampening", self.dampening)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov {
            // `momentum` is non-negative (checked above): > 0 is ≠ 0.
            require(
                nonzero(self.momentum),
                "momentum",
                self.momentum,
                "nesterov needs momentum > 0",
            )?;
            // `dampening` is finite (checked above).
            require(
                !nonzero(self.dampening),
                "dampening",
                self.dampening,
                "nesterov needs dampening = 0",
            )?;
        }
        Ok(())
    }

    fn slot_names(&self) -> &'static [&'static str] {
        if nonzero(self.momentum) {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    fn run<T: Real, D: Drive<T>>(&self, _: &mut StepCount, t: u64, drive: D) -> D::Out {
        let c = self.coeffs::<T>(t == 1);
        // No initialization: the first step sets the buffer to g.
        match (nonzero(self.momentum), c.is_plain(), self.nesterov) {
            (false, _, _) if c.prelude.is_identity() => drive.run::<0, _>(&Plain::<_, 0>(c), None),
            (false, _, _) => drive.run::<0, _>(&c, None),
            (true, true, false) => drive.run::<1, _>(&Plain::<_, 0>(c), None),
            (true, true, true) => drive.run::<1, _>(&Plain::<_, 1>(c), None),
            (true, false, _) => drive.run::<1, _>(&c, None),
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
        let mu = T::from_f64(self.momentum);
        for i in 0..params.len() {
            let (p, mut g) = (params[i], grads[i]);
            if self.maximize {
                g = -g;
            }
            if self.weight_decay != 0.0 {
                g = g + T::from_f64(self.weight_decay) * p;
            }
            if self.momentum != 0.0 {
                let b = if t == 1 {
                    g
                } else {
                    state[0][i] * mu + T::from_f64(1.0 - self.dampening) * g
                };
                state[0][i] = b;
                g = if self.nesterov { g + mu * b } else { b };
            }
            params[i] = p - T::from_f64(self.lr) * g;
        }
        scalars.step = t;
        Ok(())
    }
}
