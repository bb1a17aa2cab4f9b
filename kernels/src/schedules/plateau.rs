//! `ReduceLROnPlateau`: cut the learning rate when a metric stops improving.

use super::{Group, commit};
use crate::error::{Error, check, require};

/// Whether a smaller or a larger metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// How [`ReduceLrOnPlateau`]'s `threshold` defines a significant improvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdMode {
    /// Relative: better than `best·(1 ∓ threshold)`.
    Rel,
    /// Absolute: better than `best ∓ threshold`.
    Abs,
}

/// torch's `ReduceLROnPlateau`: after more than `patience` epochs without a significant
/// improvement of the metric, multiply the learning rate by `factor` (not below
/// `min_lr`), then wait `cooldown` epochs before counting again.
///
/// Each [`step`](ReduceLrOnPlateau::step) with the epoch's metric `m`:
/// 1. `m` is better than `best` if (min, rel) `m < best·(1 − θ)`; (min, abs)
///    `m < best − θ`; (max, rel) `m > best·(1 + θ)`; (max, abs) `m > best + θ`. If so
///    `best = m` and the bad-epoch count resets, else it grows by one. A NaN metric is
///    never better (torch's comparisons), so it counts as a bad epoch.
/// 2. During cooldown the counter ticks down and bad epochs are ignored.
/// 3. If bad epochs exceed `patience`: `new = max(lr·factor, min_lr)`, applied only if
///    `lr − new > eps`; the cooldown starts and the count resets.
///
/// Unlike the other schedules this is not a [`Scheduler`](super::Scheduler): its step
/// needs the metric, and torch does not let it be chained or sequenced either. It
/// leaves the group's learning rate as it is until the first reduction.
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | | `mode` | `Min` | |
/// | factor | `factor` | 0.1 | [0, 1) |
/// | patience | `patience` | 10 | |
/// | θ | `threshold` | 1e-4 | finite, ≥ 0 |
/// | | `threshold_mode` | `Rel` | |
/// | cooldown | `cooldown` | 0 | |
/// | min_lr | `min_lr` | 0.0 | finite, ≥ 0 |
/// | eps | `eps` | 1e-8 | finite, ≥ 0 |
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReduceLrOnPlateau {
    /// Whether the metric is minimized or maximized.
    pub mode: PlateauMode,
    /// Multiplier applied at a plateau.
    pub factor: f64,
    /// Bad epochs tolerated before reducing.
    pub patience: u64,
    /// Significance threshold.
    pub threshold: f64,
    /// Relative or absolute threshold.
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction.
    pub cooldown: u64,
    /// Lower bound on the learning rate.
    pub min_lr: f64,
    /// Reductions smaller than this are skipped.
    pub eps: f64,
    /// The best metric so far (±∞ before the first step).
    pub best: f64,
    /// Consecutive epochs without improvement.
    pub num_bad_epochs: u64,
    /// Epochs of cooldown left.
    pub cooldown_counter: u64,
    /// Epochs stepped so far (torch's `last_epoch`, which starts at 0 here).
    pub last_epoch: u64,
}

impl Default for ReduceLrOnPlateau {
    fn default() -> Self {
        ReduceLrOnPlateau {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
            best: f64::INFINITY,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
        }
    }
}

impl ReduceLrOnPlateau {
    /// torch's defaults in `mode`, with `best` starting at the mode's worst value.
    pub fn new(mode: PlateauMode) -> Self {
        let mut s = ReduceLrOnPlateau {
            mode,
            ..Self::default()
        };
        s.reset();
        s
    }

    /// torch's `_reset`: forget the best value, the bad epochs and the cooldown.
    pub fn reset(&mut self) {
        self.best = match self.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        self.cooldown_counter = 0;
        self.num_bad_epochs = 0;
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), Error> {
        require(
            (0.0..1.0).contains(&self.factor),
            "factor",
            self.factor,
            "must be in [0, 1)",
        )?;
        check::non_negative("threshold", self.threshold)?;
        check::non_negative("min_lr", self.min_lr)?;
        check::non_negative("eps", self.eps)
    }

    fn is_better(&self, a: f64, best: f64) -> bool {
        match (self.mode, self.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - self.threshold),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - self.threshold,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (self.threshold + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + self.threshold,
        }
    }

    /// Feeds one epoch's metric and reduces `group.lr` if it has plateaued. Returns
    /// whether the learning rate was reduced.
    pub fn step(&mut self, group: &mut Group, metric: f64) -> Result<bool, Error> {
        self.validate()?;
        check::non_negative("lr", group.lr)?;
        let mut next = *self;
        next.last_epoch = self.last_epoch.checked_add(1).ok_or(Error::StepOverflow)?;
        if next.is_better(metric, next.best) {
            next.best = metric;
            next.num_bad_epochs = 0;
        } else {
            next.num_bad_epochs = next.num_bad_epochs.saturating_add(1);
        }
        if next.cooldown_counter > 0 {
            next.cooldown_counter -= 1;
            next.num_bad_epochs = 0;
        }
        let mut reduced = false;
        if next.num_bad_epochs > next.patience {
            let old = group.lr;
            let new = (old * next.factor).max(next.min_lr);
            if old - new > next.eps {
                commit(group, new, None)?;
                reduced = true;
            }
            next.cooldown_counter = next.cooldown;
            next.num_bad_epochs = 0;
        }
        *self = next;
        Ok(reduced)
    }
}
