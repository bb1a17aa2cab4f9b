//! `StepLR`, `MultiStepLR` and `ExponentialLR`: multiplicative decay at fixed epochs.

use super::{ClosedForm, Group, Lrs, Progress, TorchLr, at_least_one, ep, torch_scheduler};
use crate::error::{Error, check, require};
use crate::rules::powf;

/// torch's `StepLR`: multiply the learning rate by `gamma` every `step_size` epochs.
///
/// Chainable (torch's `get_lr`): `lr_t = lr_{t−1}·γ` when `t > 0` and `t mod step = 0`,
/// else `lr_{t−1}`. Closed form: `lr_t = base·γ^⌊t/step⌋`.
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | step | `step_size` | (required) | ≥ 1 |
/// | γ | `gamma` | 0.1 | finite, ≥ 0 |
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    /// Epochs between decays.
    pub step_size: u64,
    /// Multiplicative factor.
    pub gamma: f64,
    /// torch's bookkeeping.
    pub progress: Progress,
}

impl StepLr {
    /// `StepLR(step_size, gamma)`.
    pub fn new(step_size: u64, gamma: f64) -> Self {
        StepLr {
            step_size,
            gamma,
            progress: Progress::default(),
        }
    }
}

impl TorchLr for StepLr {
    fn check(&self) -> Result<(), Error> {
        self.validate()
    }
    fn get_lr(&self, p: &Progress, group: &Group, _: bool) -> Result<Lrs, Error> {
        let e = p.last_epoch as u64;
        if e == 0 || !e.is_multiple_of(self.step_size) {
            return Ok(Lrs::lr(group.lr));
        }
        Ok(Lrs::lr(group.lr * self.gamma))
    }
    fn closed(&self, p: &Progress, _: &Group) -> Result<Lrs, Error> {
        Ok(Lrs::lr(self.lr_at(p.base_lr, p.last_epoch as u64)))
    }
}

impl ClosedForm for StepLr {
    fn validate(&self) -> Result<(), Error> {
        at_least_one("step_size", self.step_size)?;
        check::non_negative("gamma", self.gamma)
    }
    fn lr_at(&self, base_lr: f64, t: u64) -> f64 {
        base_lr * powf(self.gamma, (t / self.step_size.max(1)) as f64)
    }
}

/// torch's `MultiStepLR`: multiply the learning rate by `gamma` at each milestone.
///
/// Chainable: `lr_t = lr_{t−1}·γ^c` where `c` is how many milestones equal `t` (torch
/// keeps them in a `Counter`, so a repeated milestone decays twice). Closed form:
/// `lr_t = base·γ^(number of milestones ≤ t)`.
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | milestones | `milestones` | (required) | non-decreasing, at most `N` |
/// | γ | `gamma` | 0.1 | finite, ≥ 0 |
///
/// torch accepts milestones in any order; gradstep requires them sorted (repeats
/// allowed), so that a typo in a list is an error rather than a silent reordering.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStepLr<const N: usize = 16> {
    /// The epochs at which to decay, non-decreasing.
    pub milestones: heapless::Vec<u64, N>,
    /// Multiplicative factor.
    pub gamma: f64,
    /// torch's bookkeeping.
    pub progress: Progress,
}

impl<const N: usize> MultiStepLr<N> {
    /// `MultiStepLR(milestones, gamma)`; fails when `milestones` has more than `N`
    /// entries or is not sorted.
    pub fn new(milestones: &[u64], gamma: f64) -> Result<Self, Error> {
        let s = MultiStepLr {
            milestones: bounded(milestones, "milestones")?,
            gamma,
            progress: Progress::default(),
        };
        s.validate()?;
        Ok(s)
    }
}

/// Copies a list into a fixed-capacity vector, or names the list that is too long.
pub(crate) fn bounded<T: Copy, const N: usize>(
    items: &[T],
    name: &'static str,
) -> Result<heapless::Vec<T, N>, Error> {
    heapless::Vec::from_slice(items).map_err(|_| Error::InvalidHyperparameter {
        name,
        value: items.len() as f64,
        requirement: "has more entries than the schedule's capacity",
    })
}

/// Checks that `items` never decreases (`strict`: strictly increases).
pub(crate) fn sorted(items: &[u64], name: &'static str, strict: bool) -> Result<(), Error> {
    for w in items.windows(2) {
        let ok = if strict { w[0] < w[1] } else { w[0] <= w[1] };
        let requirement = if strict {
            "must be strictly increasing"
        } else {
            "must be in non-decreasing order"
        };
        require(ok, name, w[1] as f64, requirement)?;
    }
    Ok(())
}

impl<const N: usize> TorchLr for MultiStepLr<N> {
    fn check(&self) -> Result<(), Error> {
        self.validate()
    }
    fn get_lr(&self, p: &Progress, group: &Group, _: bool) -> Result<Lrs, Error> {
        let e = p.last_epoch as u64;
        let count = self.milestones.iter().filter(|&&m| m == e).count();
        if count == 0 {
            return Ok(Lrs::lr(group.lr));
        }
        Ok(Lrs::lr(group.lr * powf(self.gamma, count as f64)))
    }
    fn closed(&self, p: &Progress, _: &Group) -> Result<Lrs, Error> {
        Ok(Lrs::lr(self.lr_at(p.base_lr, p.last_epoch as u64)))
    }
}

impl<const N: usize> ClosedForm for MultiStepLr<N> {
    fn validate(&self) -> Result<(), Error> {
        sorted(&self.milestones, "milestones", false)?;
        check::non_negative("gamma", self.gamma)
    }
    fn lr_at(&self, base_lr: f64, t: u64) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| m <= t).count();
        base_lr * powf(self.gamma, passed as f64)
    }
}

/// torch's `ExponentialLR`: multiply the learning rate by `gamma` every epoch.
///
/// Chainable: `lr_t = lr_{t−1}·γ` (epoch 0 keeps the group's rate). Closed form:
/// `lr_t = base·γ^t`.
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `gamma` | (required) | finite, ≥ 0 |
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialLr {
    /// Multiplicative factor per epoch.
    pub gamma: f64,
    /// torch's bookkeeping.
    pub progress: Progress,
}

impl ExponentialLr {
    /// `ExponentialLR(gamma)`.
    pub fn new(gamma: f64) -> Self {
        ExponentialLr {
            gamma,
            progress: Progress::default(),
        }
    }
}

impl TorchLr for ExponentialLr {
    fn check(&self) -> Result<(), Error> {
        self.validate()
    }
    fn get_lr(&self, _: &Progress, group: &Group, initial: bool) -> Result<Lrs, Error> {
        if initial {
            return Ok(Lrs::lr(group.lr));
        }
        Ok(Lrs::lr(group.lr * self.gamma))
    }
    fn closed(&self, p: &Progress, _: &Group) -> Result<Lrs, Error> {
        Ok(Lrs::lr(p.base_lr * powf(self.gamma, ep(p))))
    }
}

impl ClosedForm for ExponentialLr {
    fn validate(&self) -> Result<(), Error> {
        check::non_negative("gamma", self.gamma)
    }
    fn lr_at(&self, base_lr: f64, t: u64) -> f64 {
        base_lr * powf(self.gamma, t as f64)
    }
}

torch_scheduler! {
    impl[] StepLr;
    impl[const N: usize] MultiStepLr<N>;
    impl[] ExponentialLr;
}
