//! Dynamic loss scaling for reduced-precision (f16) training, as `torch.amp.GradScaler`
//! does it (Keras `LossScaleOptimizer`, optax `DynamicLossScale` in jmp).
//!
//! The loss is multiplied by a scale `S` before the backward pass so that small f16
//! gradients do not flush to zero; the gradients are then divided by `S` again
//! ([`ScalerState::unscale`]) and checked for overflow. A step with non-finite
//! gradients is skipped and `S` backs off; after `growth_interval` clean steps in a
//! row `S` grows ([`GradScaler::update`]).
//!
//! ```
//! use gradstep::{GradScaler, NonFiniteCounts, Outcome, Rule, Sgd, StepCount};
//!
//! let scaler = GradScaler::default(); // torch's defaults: S = 2¹⁶, ×2 / ×0.5, 2000 steps
//! let mut s = scaler.init()?;
//! let sgd = Sgd { lr: 0.1, ..Sgd::default() };
//! let mut params = [1.0f32, -1.0];
//! let mut count = StepCount::default();
//! // The backward pass ran on `s.scale_loss(loss)` and produced scaled gradients.
//! let mut grads = [0.5 * 65536.0f32, f32::INFINITY];
//! let found_inf = s.unscale(&mut [&mut grads[..]])?;
//! if !found_inf {
//!     sgd.step(&mut count, &mut params, &grads, &mut [])?;
//! }
//! scaler.update(&mut s, found_inf)?;
//! assert_eq!((params, s.scale, s.growth_tracker), ([1.0, -1.0], 32768.0, 0));
//! # Ok::<(), gradstep::Error>(())
//! ```
//!
//! ## Numerics (torch's CPU kernels)
//! - The scale is an `f32` and the growth tracker an integer, as torch's `_scale` and
//!   `_growth_tracker` tensors.
//! - `inv_scale = f32(1 / f64(S))` (torch: `scale.double().reciprocal().float()`); each
//!   gradient becomes `g · inv_scale` in its own type (`f64` gradients multiply by the
//!   exact `f64` value of the `f32` inverse), and `found_inf` says whether any gradient
//!   was NaN or infinite *before* the multiplication
//!   (`_amp_foreach_non_finite_check_and_unscale_`).
//! - `update` (`_amp_update_scale_`): on `found_inf`, `S ← f32(f64(S)·backoff_factor)`
//!   and the tracker resets; otherwise the tracker counts up, and when it reaches
//!   `growth_interval`, `S ← f32(f64(S)·growth_factor)` unless that is infinite, and
//!   the tracker resets.
//!
//! ## Where gradstep differs from torch
//! - A backoff that would leave a scale whose `f32` inverse is infinite (a scale below
//!   about 2⁻¹²⁸, reached after ~144 consecutive backoffs from 2¹⁶, or 0) is not taken:
//!   the scale stays, just as torch refuses a growth to infinity. torch lets the scale
//!   underflow to subnormals and then 0, after which unscaling gives ∞ or NaN forever.
//!   So from a valid configuration the scale is always finite and > 0, and so is its
//!   inverse.
//! - The configuration is validated (torch only checks `growth_factor > 1` and
//!   `backoff_factor < 1`): see [`GradScaler`].
//! - The tracker compares with `≥ growth_interval` rather than `==`, which is the same
//!   for every state `update` produces, and grows instead of counting past the interval
//!   for a state restored with a larger tracker.

use crate::error::{Error, check, require};
use crate::real::Real;
use crate::reduce;

/// The loss-scaling hyperparameters; `Default` is `torch.amp.GradScaler`'s.
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | S₀ | `init_scale` | 2¹⁶ = 65536 | finite, > 0, and `f32(S₀)` and `f32(1/S₀)` finite and > 0 |
/// | γ | `growth_factor` | 2 | finite, > 1 |
/// | β | `backoff_factor` | 0.5 | in (0, 1) |
/// | | `growth_interval` | 2000 | ≥ 1 |
///
/// Keras's `LossScaleOptimizer` uses S₀ = 2¹⁵ and `dynamic_growth_steps` = 2000 with
/// factors 2 and 0.5; set those fields to match it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradScaler {
    /// Initial scale S₀.
    pub init_scale: f64,
    /// Factor γ applied after `growth_interval` consecutive finite steps.
    pub growth_factor: f64,
    /// Factor β applied after a step with non-finite gradients.
    pub backoff_factor: f64,
    /// Consecutive finite steps before the scale grows.
    pub growth_interval: u32,
}

impl Default for GradScaler {
    fn default() -> Self {
        GradScaler {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }
}

/// The loss scaler's state: torch's `_scale` (`f32`) and `_growth_tracker` tensors.
/// Plain data: save it and restore it to resume exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalerState {
    /// The current scale S.
    pub scale: f32,
    /// Consecutive finite steps since the last growth or backoff.
    pub growth_tracker: u32,
}

impl GradScaler {
    /// Checks every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), Error> {
        check::positive("init_scale", self.init_scale)?;
        valid_scale("init_scale", self.init_scale as f32)?;
        require(
            self.growth_factor.is_finite() && self.growth_factor > 1.0,
            "growth_factor",
            self.growth_factor,
            "must be finite and > 1",
        )?;
        require(
            self.backoff_factor > 0.0 && self.backoff_factor < 1.0,
            "backoff_factor",
            self.backoff_factor,
            "must be in (0, 1)",
        )?;
        require(
            self.growth_interval >= 1,
            "growth_interval",
            f64::from(self.growth_interval),
            "must be >= 1",
        )
    }

    /// The fresh state: `scale = f32(init_scale)`, tracker 0.
    pub fn init(&self) -> Result<ScalerState, Error> {
        self.validate()?;
        Ok(ScalerState {
            scale: self.init_scale as f32,
            growth_tracker: 0,
        })
    }

    /// `GradScaler.update()`: backs off on `found_inf`, or counts a finite step and grows
    /// every `growth_interval` of them (see the [module docs](self) for the arithmetic).
    /// On `Err` (invalid configuration or a state whose scale is not finite and > 0)
    /// the state is unchanged.
    pub fn update(&self, state: &mut ScalerState, found_inf: bool) -> Result<(), Error> {
        self.validate()?;
        valid_scale("scale", state.scale)?;
        if found_inf {
            let backed_off = (f64::from(state.scale) * self.backoff_factor) as f32;
            if valid_scale("scale", backed_off).is_ok() {
                state.scale = backed_off;
            }
            state.growth_tracker = 0;
        } else {
            let successful = state.growth_tracker.saturating_add(1);
            if successful >= self.growth_interval {
                let grown = (f64::from(state.scale) * self.growth_factor) as f32;
                if grown.is_finite() {
                    state.scale = grown;
                }
                state.growth_tracker = 0;
            } else {
                state.growth_tracker = successful;
            }
        }
        Ok(())
    }
}

impl ScalerState {
    /// `scale.double().reciprocal().float()`: the factor [`ScalerState::unscale`]
    /// multiplies by.
    pub fn inv_scale(&self) -> f32 {
        (1.0 / f64::from(self.scale)) as f32
    }

    /// `GradScaler.scale(loss)`: `loss · S`, in the loss's type.
    pub fn scale_loss<T: Real>(&self, loss: T) -> T {
        loss * T::from_f64(f64::from(self.scale))
    }

    /// `GradScaler.unscale_`: multiplies every gradient by [`ScalerState::inv_scale`] and
    /// returns `found_inf`, whether any gradient was NaN or infinite before. Every slice
    /// is unscaled either way, as in torch. Errors (nothing written) only for a state
    /// whose scale is not finite and > 0, or whose inverse is not finite.
    pub fn unscale<T: Real>(&self, grads: &mut [&mut [T]]) -> Result<bool, Error> {
        valid_scale("scale", self.scale)?;
        let inv = T::from_f64(f64::from(self.inv_scale()));
        let mut found_inf = false;
        for g in grads.iter_mut() {
            found_inf |= !reduce::scale_and_check(g, inv);
        }
        Ok(found_inf)
    }
}

/// A usable scale: finite, > 0, with a finite `f32` inverse.
fn valid_scale(name: &'static str, scale: f32) -> Result<(), Error> {
    let inv = (1.0 / f64::from(scale)) as f32;
    require(
        scale.is_finite() && scale > 0.0 && inv.is_finite(),
        name,
        f64::from(scale),
        "must be finite and > 0, with a finite f32 inverse",
    )
}
