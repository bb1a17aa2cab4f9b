//! `ConstantLR`, `LinearLR` and `PolynomialLR`: factors applied over a fixed number of
//! epochs, typically as warmup or as the whole decay.

use super::{ClosedForm, Group, Lrs, Progress, TorchLr, at_least_one, ep, torch_scheduler};
use crate::error::{Error, check, require};
use crate::rules::powf;

/// torch's `ConstantLR`: scale the learning rate by `factor` until epoch `total_iters`.
///
/// Chainable: `lr_0 = lr·factor`; `lr_T = lr_{T−1}·(1/factor)` at `T = total_iters`;
/// otherwise unchanged. Closed form: `base·factor` for `t < T`, `base` from `T` on.
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | factor | `factor` | 1/3 | (0, 1], ≥ 2⁻¹⁰²² |
/// | T | `total_iters` | 5 | ≥ 1 |
///
/// torch accepts `factor = 0` (and then divides by zero at `total_iters`) and
/// `total_iters = 0` (and then never restores the rate); gradstep refuses both.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConstantLr {
    /// The factor applied until `total_iters`.
    pub factor: f64,
    /// The epoch at which the factor is removed.
    pub total_iters: u64,
    /// torch's bookkeeping.
    pub progress: Progress,
}

impl Default for ConstantLr {
    fn default() -> Self {
        ConstantLr {
            factor: 1.0 / 3.0,
            total_iters: 5,
            progress: Progress::default(),
        }
    }
}

impl TorchLr for ConstantLr {
    fn check(&self) -> Result<(), Error> {
        self.validate()
    }
    fn get_lr(&self, p: &Progress, group: &Group, _: bool) -> Result<Lrs, Error> {
        let e = p.last_epoch as u64;
        if e == 0 {
            return Ok(Lrs::lr(group.lr * self.factor));
        }
        if e != self.total_iters {
            return Ok(Lrs::lr(group.lr));
        }
        Ok(Lrs::lr(group.lr * (1.0 / self.factor)))
    }
    fn closed(&self, p: &Progress, _: &Group) -> Result<Lrs, Error> {
        Ok(Lrs::lr(self.lr_at(p.base_lr, p.last_epoch as u64)))
    }
}

impl ClosedForm for ConstantLr {
    fn validate(&self) -> Result<(), Error> {
        require(
            self.factor >= f64::MIN_POSITIVE && self.factor <= 1.0,
            "factor",
            self.factor,
            "must be in (0, 1] and at least 2^-1022 (a subnormal factor's reciprocal overflows)",
        )?;
        at_least_one("total_iters", self.total_iters)
    }
    fn lr_at(&self, base_lr: f64, t: u64) -> f64 {
        let done = if t >= self.total_iters { 1.0 } else { 0.0 };
        base_lr * (self.factor + done * (1.0 - self.factor))
    }
}

/// torch's `LinearLR`: move the factor on the learning rate linearly from
/// `start_factor` to `end_factor` over `total_iters` epochs.
///
/// Closed form: `lr_t = base·(s + (e − s)·min(T, t)/T)`. Chainable (what torch steps
/// with): `lr_0 = lr·s`, then for `1 ≤ t ≤ T`
/// `lr_t = lr_{t−1}·(1 + (e − s)/(T·s + (t − 1)·(e − s)))`, then unchanged.
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | s | `start_factor` | 1/3 | (0, 1], ≥ 2⁻¹⁰²² |
/// | e | `end_factor` | 1.0 | [0, 1] |
/// | T | `total_iters` | 5 | ≥ 1 |
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearLr {
    /// Factor at epoch 0.
    pub start_factor: f64,
    /// Factor from epoch `total_iters` on.
    pub end_factor: f64,
    /// Length of the ramp.
    pub total_iters: u64,
    /// torch's bookkeeping.
    pub progress: Progress,
}

impl Default for LinearLr {
    fn default() -> Self {
        LinearLr {
            start_factor: 1.0 / 3.0,
            end_factor: 1.0,
            total_iters: 5,
            progress: Progress::default(),
        }
    }
}

impl TorchLr for LinearLr {
    fn check(&self) -> Result<(), Error> {
        self.validate()
    }
    fn get_lr(&self, p: &Progress, group: &Group, initial: bool) -> Result<Lrs, Error> {
        let e = p.last_epoch as u64;
        if e == 0 {
            return Ok(Lrs::lr(group.lr * self.start_factor));
        }
        if initial || e > self.total_iters {
            return Ok(Lrs::lr(group.lr));
        }
        let span = self.end_factor - self.start_factor;
        let denominator = self.total_iters as f64 * self.start_factor + (e - 1) as f64 * span;
        Ok(Lrs::lr(group.lr * (1.0 + span / denominator)))
    }
    fn closed(&self, p: &Progress, _: &Group) -> Result<Lrs, Error> {
        Ok(Lrs::lr(self.lr_at(p.base_lr, p.last_epoch as u64)))
    }
}

impl ClosedForm for LinearLr {
    fn validate(&self) -> Result<(), Error> {
        require(
            self.start_factor >= f64::MIN_POSITIVE && self.start_factor <= 1.0,
            "start_factor",
            self.start_factor,
            "must be in (0, 1] and at least 2^-1022 (the first step divides by a multiple of it)",
        )?;
        check::unit_closed("end_factor", self.end_factor)?;
        at_least_one("total_iters", self.total_iters)
    }
    fn lr_at(&self, base_lr: f64, t: u64) -> f64 {
        let done = t.min(self.total_iters) as f64;
        base_lr
            * (self.start_factor
                + (self.end_factor - self.start_factor) * done / self.total_iters.max(1) as f64)
    }
}

/// torch's `PolynomialLR`: decay the learning rate to 0 over `total_iters` epochs as a
/// polynomial of degree `power`.
///
/// Closed form: `lr_t = base·(1 − min(T, t)/T)^p`. Chainable:
/// `lr_t = lr_{t−1}·((1 − t/T)/(1 − (t − 1)/T))^p` for `1 ≤ t ≤ T`, then unchanged (0).
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | T | `total_iters` | 5 | ≥ 1 |
/// | p | `power` | 1.0 | finite, ≥ 0 |
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PolynomialLr {
    /// Epochs until the rate reaches 0.
    pub total_iters: u64,
    /// Degree of the polynomial.
    pub power: f64,
    /// torch's bookkeeping.
    pub progress: Progress,
}

impl Default for PolynomialLr {
    fn default() -> Self {
        PolynomialLr {
            total_iters: 5,
            power: 1.0,
            progress: Progress::default(),
        }
    }
}

impl TorchLr for PolynomialLr {
    fn check(&self) -> Result<(), Error> {
        self.validate()
    }
    fn get_lr(&self, p: &Progress, group: &Group, initial: bool) -> Result<Lrs, Error> {
        let e = p.last_epoch as u64;
        if initial || e > self.total_iters {
            return Ok(Lrs::lr(group.lr));
        }
        let total = self.total_iters as f64;
        let ratio = (1.0 - ep(p) / total) / (1.0 - (ep(p) - 1.0) / total);
        Ok(Lrs::lr(group.lr * powf(ratio, self.power)))
    }
    fn closed(&self, p: &Progress, _: &Group) -> Result<Lrs, Error> {
        Ok(Lrs::lr(self.lr_at(p.base_lr, p.last_epoch as u64)))
    }
}

impl ClosedForm for PolynomialLr {
    fn validate(&self) -> Result<(), Error> {
        at_least_one("total_iters", self.total_iters)?;
        check::non_negative("power", self.power)
    }
    fn lr_at(&self, base_lr: f64, t: u64) -> f64 {
        let total = self.total_iters.max(1) as f64;
        base_lr * powf(1.0 - t.min(self.total_iters) as f64 / total, self.power)
    }
}

torch_scheduler! {
    impl[] ConstantLr;
    impl[] LinearLr;
    impl[] PolynomialLr;
}
