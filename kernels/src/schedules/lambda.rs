//! `LambdaLR` and `MultiplicativeLR`: schedules given by a user function of the epoch.

use super::{ClosedForm, Group, Lrs, Progress, TorchLr, torch_scheduler};
use crate::error::Error;

/// torch's `LambdaLR`: `lr_t = base_lr · f(t)`.
///
/// `f` is any `Fn(u64) -> f64` (a closure, or a `fn` pointer for [`AnyScheduler`]).
/// A factor that makes the learning rate negative or non-finite is refused with
/// [`Error::InvalidHyperparameter`] (`lr`), leaving the group unchanged.
///
/// [`AnyScheduler`]: super::AnyScheduler
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LambdaLr<F> {
    /// The factor `f(t)` applied to the base learning rate at epoch `t`.
    pub lr_lambda: F,
    /// torch's bookkeeping.
    pub progress: Progress,
}

impl<F: Fn(u64) -> f64> LambdaLr<F> {
    /// `LambdaLR(lr_lambda)`.
    pub fn new(lr_lambda: F) -> Self {
        LambdaLr {
            lr_lambda,
            progress: Progress::default(),
        }
    }
}

impl<F: Fn(u64) -> f64> TorchLr for LambdaLr<F> {
    fn check(&self) -> Result<(), Error> {
        Ok(())
    }
    fn get_lr(&self, p: &Progress, _: &Group, _: bool) -> Result<Lrs, Error> {
        Ok(Lrs::lr(self.lr_at(p.base_lr, epoch(p))))
    }
}

impl<F: Fn(u64) -> f64> ClosedForm for LambdaLr<F> {
    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }
    fn lr_at(&self, base_lr: f64, t: u64) -> f64 {
        base_lr * (self.lr_lambda)(t)
    }
}

/// torch's `MultiplicativeLR`: `lr_t = lr_{t−1} · f(t)` for `t ≥ 1`; epoch 0 keeps the
/// group's learning rate.
///
/// There is no closed form (the rate is the product of every factor so far). Factors
/// that make the learning rate negative or non-finite are refused as in [`LambdaLr`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiplicativeLr<F> {
    /// The factor applied at epoch `t`.
    pub lr_lambda: F,
    /// torch's bookkeeping.
    pub progress: Progress,
}

impl<F: Fn(u64) -> f64> MultiplicativeLr<F> {
    /// `MultiplicativeLR(lr_lambda)`.
    pub fn new(lr_lambda: F) -> Self {
        MultiplicativeLr {
            lr_lambda,
            progress: Progress::default(),
        }
    }
}

impl<F: Fn(u64) -> f64> TorchLr for MultiplicativeLr<F> {
    fn check(&self) -> Result<(), Error> {
        Ok(())
    }
    fn get_lr(&self, p: &Progress, group: &Group, initial: bool) -> Result<Lrs, Error> {
        if initial {
            return Ok(Lrs::lr(group.lr));
        }
        Ok(Lrs::lr(group.lr * (self.lr_lambda)(epoch(p))))
    }
}

/// `last_epoch` as the non-negative integer torch passes to `lr_lambda`.
fn epoch(p: &Progress) -> u64 {
    u64::try_from(p.last_epoch).unwrap_or(0)
}

torch_scheduler! {
    impl[F: Fn(u64) -> f64] LambdaLr<F>;
    impl[F: Fn(u64) -> f64] MultiplicativeLr<F>;
}
