//! RMSprop, plain, centered and with momentum (`torch.optim.RMSprop`).

use super::prelude::Prelude;
use super::{Rule, StepCount, begin_step, lerp, lt};
use crate::driver::{Drive, Kernel, Plain};
use crate::error::{Error, check};
use crate::lanes::{Lanes, Lerp};
use crate::real::Real;

/// RMSprop (Hinton, 2012; centered form from Graves, 2013) as `torch.optim.RMSprop`.
///
/// ```text
/// g ← −g                          if maximize
/// g ← g + λθ                      if λ ≠ 0
/// v ← αv + (1 − α)g²
/// if centered:  ḡ ← ḡ + (1 − α)(g − ḡ);   a = √(v − ḡ²) + ε   (finite v − ḡ² < 0 taken as 0)
/// else:         a = √v + ε
/// if μ > 0:     b ← μb + g/a;   θ ← θ − γb
/// else:         θ ← θ − γg/a
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 1e-2 | finite, ≥ 0 |
/// | α | `alpha` | 0.99 | [0, 1] |
/// | ε | `eps` | 1e-8 | finite, > 0 |
/// | λ | `weight_decay` | 0 | finite, ≥ 0 |
/// | μ | `momentum` | 0 | finite, ≥ 0 |
/// | | `centered` | false | |
/// | | `maximize` | false | |
///
/// State slices, in order: `square_avg` (v); `momentum_buffer` (b) if μ > 0;
/// `grad_avg` (ḡ) if centered; all from 0. Scalar state: the step counter.
///
/// Elsewhere: Keras and optax put ε inside the square root (`√(v + ε)`), Keras defaults
/// α (`rho`) to 0.9 and γ to 1e-3. torch accepts α > 1, which can make v negative;
/// gradstep requires α ≤ 1. In the centered form rounding can make v − ḡ² slightly
/// negative (e.g. after many equal gradients), where torch returns NaN; gradstep clamps
/// it to 0, which changes no result that torch computes finitely. Only a finite negative
/// value is clamped: a non-finite one (∞ − ∞ = NaN once g² overflows, or −∞) gives NaN
/// as in torch, so a diverging run shows NaN instead of going on with huge finite params.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsProp {
    /// Learning rate γ.
    pub lr: f64,
    /// Smoothing constant α of the running averages.
    pub alpha: f64,
    /// ε, added to the root.
    pub eps: f64,
    /// Weight decay λ (L2, added to the gradient).
    pub weight_decay: f64,
    /// Momentum factor μ (0 disables momentum and its state slice).
    pub momentum: f64,
    /// Normalize by the estimated variance (v − ḡ²) instead of v.
    pub centered: bool,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    alpha: T,
    one_minus_alpha: T,
    lerp: Lerp<T>,
    eps: T,
    momentum: T,
    neg_lr: T,
    centered: bool,
}

impl RmsProp {
    fn coeffs<T: Real>(&self) -> Coeffs<T> {
        Coeffs {
            prelude: Prelude::new(self.maximize, self.weight_decay, false, self.lr),
            alpha: T::from_f64(self.alpha),
            one_minus_alpha: T::from_f64(1.0 - self.alpha),
            lerp: Lerp::new(1.0 - self.alpha),
            eps: T::from_f64(self.eps),
            momentum: T::from_f64(self.momentum),
            neg_lr: T::from_f64(-self.lr),
            centered: self.centered,
        }
    }
}

impl<T: Real> Coeffs<T> {
    /// The element update; with `PLAIN` ([`Prelude::is_identity`]: no `maximize`, no
    /// weight decay) the prelude's option tests are left out.
    #[inline(always)]
    fn update<V: Lanes<Scalar = T>, const PLAIN: bool>(
        &self,
        p: &mut V,
        g: V,
        v: &mut V,
        buf: Option<&mut V>,
        grad_avg: Option<&mut V>,
    ) {
        let g = if PLAIN { g } else { self.prelude.apply(p, g) };
        *v = *v * V::splat(self.alpha) + V::splat(self.one_minus_alpha) * g * g;
        let avg = match grad_avg {
            Some(ga) => {
                *ga = self.lerp.apply::<V, false>(*ga, g);
                let var = *v - *ga * *ga;
                // Clamp a finite negative variance (rounding) to 0; a non-finite one
                // (∞ − ∞ once g² overflows, or −∞) is divergence, and gives NaN as
                // torch's √ does. `0.max(var)` keeps a NaN var; the select catches −∞.
                let finite_or_above = var.gt(V::splat(T::from_f64(f64::NEG_INFINITY)));
                let nan = V::splat(T::from_f64(f64::NAN));
                V::select(finite_or_above, V::splat(T::ZERO).max(var), nan).sqrt_abs()
            }
            None => v.sqrt_abs(),
        } + V::splat(self.eps);
        match buf {
            Some(b) => {
                *b = *b * V::splat(self.momentum) + g / avg;
                *p = *p + V::splat(self.neg_lr) * *b;
            }
            None => *p = *p + V::splat(self.neg_lr) * g / avg,
        }
    }
}

impl<T: Real> Coeffs<T> {
    /// The update with the step's slots: `square_avg`, then `momentum_buffer` if μ > 0,
    /// then `grad_avg` if centered.
    #[inline(always)]
    fn update_slots<V: Lanes<Scalar = T>, const PLAIN: bool>(&self, p: &mut V, g: V, s: &mut [V]) {
        match s {
            [v] => self.update::<V, PLAIN>(p, g, v, None, None),
            [v, ga] if self.centered => self.update::<V, PLAIN>(p, g, v, None, Some(ga)),
            [v, b] => self.update::<V, PLAIN>(p, g, v, Some(b), None),
            [v, b, ga, ..] => self.update::<V, PLAIN>(p, g, v, Some(b), Some(ga)),
            // The kernels below pass one to three slots.
            [] => {}
        }
    }
}

/// The kernels for one, two and three slots, with the options tested per element
/// (`Coeffs`) or constant (`Plain`).
macro_rules! rmsprop_kernels {
    ($($k:literal),*) => {$(
        impl<T: Real> Kernel<T, $k> for Coeffs<T> {
            #[inline(always)]
            fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, s: &mut [V; $k]) {
                self.update_slots::<V, false>(p, g, s);
            }
        }

        impl<T: Real> Kernel<T, $k> for Plain<Coeffs<T>> {
            #[inline(always)]
            fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, s: &mut [V; $k]) {
                self.0.update_slots::<V, true>(p, g, s);
            }
        }
    )*};
}
rmsprop_kernels!(1, 2, 3);

impl Rule for RmsProp {
    type Scalars = StepCount;
    const NAME: &'static str = "rmsprop";

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr", self.lr)?;
        check::unit_closed("alpha", self.alpha)?;
        check::positive("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        check::non_negative("momentum", self.momentum)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        match (lt(0.0, self.momentum), self.centered) {
            (false, false) => &["square_avg"],
            (true, false) => &["square_avg", "momentum_buffer"],
            (false, true) => &["square_avg", "grad_avg"],
            (true, true) => &["square_avg", "momentum_buffer", "grad_avg"],
        }
    }

    fn run<T: Real, D: Drive<T>>(&self, _: &mut StepCount, _: u64, drive: D) -> D::Out {
        let c = self.coeffs::<T>();
        match self.state_slots() {
            // Without maximize and weight decay (torch's defaults) the prelude's option
            // tests are constants ([`Plain`]).
            1 if c.prelude.is_identity() => drive.run::<1, _>(&Plain(c), Some([T::ZERO; 1])),
            2 if c.prelude.is_identity() => drive.run::<2, _>(&Plain(c), Some([T::ZERO; 2])),
            3 if c.prelude.is_identity() => drive.run::<3, _>(&Plain(c), Some([T::ZERO; 3])),
            1 => drive.run::<1, _>(&c, Some([T::ZERO; 1])),
            2 => drive.run::<2, _>(&c, Some([T::ZERO; 2])),
            _ => drive.run::<3, _>(&c, Some([T::ZERO; 3])),
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
        // Slots in order: square_avg, then momentum_buffer if μ > 0, then grad_avg.
        let buf = (self.momentum > 0.0).then_some(1);
        let grad_avg = self
            .centered
            .then_some(1 + usize::from(self.momentum > 0.0));
        let alpha = T::from_f64(self.alpha);
        for i in 0..params.len() {
            if t == 1 {
                state.iter_mut().for_each(|s| s[i] = T::ZERO);
            }
            let (p, mut g) = (params[i], grads[i]);
            if self.maximize {
                g = -g;
            }
            if self.weight_decay != 0.0 {
                g = g + T::from_f64(self.weight_decay) * p;
            }
            let v = state[0][i] * alpha + T::from_f64(1.0 - self.alpha) * g * g;
            state[0][i] = v;
            let root = match grad_avg {
                Some(k) => {
                    let ga = lerp(state[k][i], g, 1.0 - self.alpha);
                    state[k][i] = ga;
                    let var = v - ga * ga;
                    let var = if var > T::from_f64(f64::NEG_INFINITY) {
                        if T::ZERO > var { T::ZERO } else { var }
                    } else {
                        T::from_f64(f64::NAN)
                    };
                    Lanes::sqrt_abs(var)
                }
                None => Lanes::sqrt_abs(v),
            };
            let avg = root + T::from_f64(self.eps);
            params[i] = match buf {
                Some(k) => {
                    let b = state[k][i] * T::from_f64(self.momentum) + g / avg;
                    state[k][i] = b;
                    p - T::from_f64(self.lr) * b
                }
                None => p - T::from_f64(self.lr) * g / avg,
            };
        }
        scalars.step = t;
        Ok(())
    }
}
