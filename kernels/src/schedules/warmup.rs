//! Schedules people build by hand in torch (usually as a `LambdaLR`): linear warmup
//! into a decay, the Transformer's inverse-square-root ("noam") schedule, and
//! piecewise-constant rates. All are [`ClosedForm`]s; drive them with
//! [`Closed`](super::Closed).

use core::f64::consts::PI;

use super::step::{bounded, sorted};
use super::{ClosedForm, at_least_one};
use crate::error::{Error, check, require};
use crate::rules::powf;

/// What follows the warmup of a [`WarmupDecay`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decay {
    /// optax `cosine_decay_schedule`: over `decay_steps`,
    /// `lr = peak·((1 − α)·(½(1 + cos(π·c/D)))^exponent + α)` with `α = end/peak`,
    /// `c = min(t − warmup, D)`; then `end`.
    Cosine {
        /// `D`: steps from the peak to the end value.
        decay_steps: u64,
        /// The final rate as a fraction of the peak (base) rate.
        end_factor: f64,
        /// Exponent on the cosine factor (1 = plain cosine).
        exponent: f64,
    },
    /// optax `linear_schedule`: straight line from the peak to `end` over
    /// `decay_steps`, then `end`.
    Linear {
        /// Steps from the peak to the end value.
        decay_steps: u64,
        /// The final rate as a fraction of the peak (base) rate.
        end_factor: f64,
    },
    /// optax `exponential_decay`: `lr = peak·rate^(c/transition_steps)` (the exponent
    /// floored with `staircase`), `c = t − warmup`, bounded below by `end` if given.
    Exponential {
        /// Steps per factor of `rate`.
        transition_steps: u64,
        /// Decay per `transition_steps`, in (0, 1].
        rate: f64,
        /// Decay in whole steps of `transition_steps`.
        staircase: bool,
        /// Lower bound as a fraction of the peak (base) rate.
        end_factor: Option<f64>,
    },
}

/// Linear warmup from `start_factor·base` to `base` over `warmup_steps`, then a
/// [`Decay`]: optax's `warmup_cosine_decay_schedule` and
/// `warmup_exponential_decay_schedule` (and the linear counterpart, as in Hugging Face's
/// `get_linear_schedule_with_warmup`), with `peak_value = base_lr`.
///
/// During warmup (`t < W`): `lr = (init − peak)·(1 − t/W) + peak`, `init = start·base`.
/// From `t = W` on, the decay runs on `c = t − W`. Note that optax's `decay_steps` for
/// the cosine counts the warmup too: optax `decay_steps = W + D`.
///
/// | field | default | valid |
/// |---|---|---|
/// | `warmup_steps` | (required) | any (0: no warmup) |
/// | `start_factor` | 0.0 | finite, ≥ 0 |
/// | `decay` | (required) | periods ≥ 1, factors finite ≥ 0, exponent > 0 |
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmupDecay {
    /// `W`: steps of linear warmup.
    pub warmup_steps: u64,
    /// The rate at step 0 as a fraction of the base rate.
    pub start_factor: f64,
    /// The decay after the warmup.
    pub decay: Decay,
}

impl WarmupDecay {
    /// Warmup from 0 over `warmup_steps`, then cosine decay to 0 over `decay_steps`.
    pub fn cosine(warmup_steps: u64, decay_steps: u64) -> Self {
        WarmupDecay {
            warmup_steps,
            start_factor: 0.0,
            decay: Decay::Cosine {
                decay_steps,
                end_factor: 0.0,
                exponent: 1.0,
            },
        }
    }
}

/// optax `linear_schedule(init, end, steps)` at `count`.
fn linear(init: f64, end: f64, steps: u64, count: u64) -> f64 {
    let frac = 1.0 - count.min(steps) as f64 / steps.max(1) as f64;
    (init - end) * frac + end
}

impl ClosedForm for WarmupDecay {
    fn validate(&self) -> Result<(), Error> {
        check::non_negative("start_factor", self.start_factor)?;
        match self.decay {
            Decay::Cosine {
                decay_steps,
                end_factor,
                exponent,
            } => {
                at_least_one("decay_steps", decay_steps)?;
                check::non_negative("end_factor", end_factor)?;
                check::positive("exponent", exponent)
            }
            Decay::Linear {
                decay_steps,
                end_factor,
            } => {
                at_least_one("decay_steps", decay_steps)?;
                check::non_negative("end_factor", end_factor)
            }
            Decay::Exponential {
                transition_steps,
                rate,
                end_factor,
                ..
            } => {
                at_least_one("transition_steps", transition_steps)?;
                require(rate > 0.0 && rate <= 1.0, "rate", rate, "must be in (0, 1]")?;
                end_factor.map_or(Ok(()), |f| check::non_negative("end_factor", f))
            }
        }
    }

    fn lr_at(&self, base_lr: f64, t: u64) -> f64 {
        let peak = base_lr;
        if t < self.warmup_steps {
            return linear(base_lr * self.start_factor, peak, self.warmup_steps, t);
        }
        let c = t - self.warmup_steps;
        match self.decay {
            Decay::Cosine {
                decay_steps,
                end_factor,
                exponent,
            } => {
                let end = base_lr * end_factor;
                let alpha = if peak == 0.0 { 0.0 } else { end / peak };
                let d = decay_steps.max(1) as f64;
                let cosine = 0.5 * (1.0 + libm::cos(PI * c.min(decay_steps) as f64 / d));
                peak * ((1.0 - alpha) * powf(cosine, exponent) + alpha)
            }
            Decay::Linear {
                decay_steps,
                end_factor,
            } => linear(peak, base_lr * end_factor, decay_steps, c),
            Decay::Exponential {
                transition_steps,
                rate,
                staircase,
                end_factor,
            } => {
                let mut p = c as f64 / transition_steps.max(1) as f64;
                if staircase {
                    p = libm::floor(p);
                }
                let decayed = if c == 0 { peak } else { peak * powf(rate, p) };
                match end_factor {
                    Some(f) => decayed.max(base_lr * f),
                    None => decayed,
                }
            }
        }
    }
}

/// The Transformer's learning-rate schedule ("noam", Vaswani et al. 2017, as in the
/// Annotated Transformer's `rate`): a factor on the base rate,
/// `f(t) = factor·d_model^(−½)·min(s^(−½), s·warmup^(−3/2))` with `s = max(t, 1)`:
/// linear growth for `warmup_steps` steps, then decay with the inverse square root of
/// the step. Used in torch as `LambdaLR(opt, lambda t: rate(t, ...))` with base lr 1.
///
/// | field | default | valid |
/// |---|---|---|
/// | `d_model` | (required) | ≥ 1 |
/// | `warmup_steps` | (required) | ≥ 1 |
/// | `factor` | 1.0 | finite, ≥ 0 |
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Noam {
    /// Model width; sets the peak.
    pub d_model: u64,
    /// Steps of linear growth.
    pub warmup_steps: u64,
    /// Overall scale.
    pub factor: f64,
}

impl Noam {
    /// The schedule's factor at step `t`.
    pub fn factor_at(&self, t: u64) -> f64 {
        let s = t.max(1) as f64;
        let d = self.d_model as f64;
        let w = self.warmup_steps as f64;
        self.factor * (powf(d, -0.5) * powf(s, -0.5).min(s * powf(w, -1.5)))
    }
}

impl ClosedForm for Noam {
    fn validate(&self) -> Result<(), Error> {
        at_least_one("d_model", self.d_model)?;
        at_least_one("warmup_steps", self.warmup_steps)?;
        check::non_negative("factor", self.factor)
    }
    fn lr_at(&self, base_lr: f64, t: u64) -> f64 {
        base_lr * self.factor_at(t)
    }
}

/// Piecewise-constant rate: optax `piecewise_constant_schedule` with
/// `init_value = base_lr`. From step `boundaries[i]` on, the rate is multiplied by
/// `scales[i]`: `lr_t = base·∏_{i: t ≥ b_i} s_i`.
///
/// (Keras' `PiecewiseConstantDecay` takes absolute values and switches one step later,
/// after the boundary; [`MultiStepLr`](super::MultiStepLr) is the special case of one
/// common scale.)
///
/// | field | valid |
/// |---|---|
/// | `boundaries` | strictly increasing, at most `N` |
/// | `scales` | as many as `boundaries`, finite, ≥ 0, each running product finite |
#[derive(Clone, Debug, PartialEq)]
pub struct PiecewiseConstant<const N: usize = 16> {
    boundaries: heapless::Vec<u64, N>,
    scales: heapless::Vec<f64, N>,
}

impl<const N: usize> PiecewiseConstant<N> {
    /// From boundaries and the scale applied at each.
    pub fn new(boundaries: &[u64], scales: &[f64]) -> Result<Self, Error> {
        require(
            boundaries.len() == scales.len(),
            "scales",
            scales.len() as f64,
            "must have as many entries as boundaries",
        )?;
        let s = PiecewiseConstant {
            boundaries: bounded(boundaries, "boundaries")?,
            scales: bounded(scales, "scales")?,
        };
        s.validate()?;
        Ok(s)
    }

    /// The boundaries.
    pub fn boundaries(&self) -> &[u64] {
        &self.boundaries
    }

    /// The scales.
    pub fn scales(&self) -> &[f64] {
        &self.scales
    }
}

impl<const N: usize> ClosedForm for PiecewiseConstant<N> {
    fn validate(&self) -> Result<(), Error> {
        sorted(&self.boundaries, "boundaries", true)?;
        let mut product = 1.0;
        for &s in self.scales.iter() {
            check::non_negative("scales", s)?;
            product *= s;
            require(
                crate::rules::finite(product),
                "scales",
                product,
                "their running product must be finite",
            )?;
        }
        Ok(())
    }
    fn lr_at(&self, base_lr: f64, t: u64) -> f64 {
        let mut v = base_lr;
        for (&b, &s) in self.boundaries.iter().zip(self.scales.iter()) {
            if t >= b {
                v *= s;
            }
        }
        v
    }
}
