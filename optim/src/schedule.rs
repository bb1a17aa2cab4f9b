//! The schedule attached to a param group, and its position as plain data.
//!
//! A checkpoint cannot hold a schedule's configuration (a [`LambdaLr`] holds a
//! function), so, as in torch, the caller attaches the same schedule again and loads
//! the saved position into it. The position is the schedule's whole running state
//! (every built-in schedule computes the rest from its configuration), so it is
//! restored directly, in time independent of the epoch: nothing is replayed.
//!
//! [`LambdaLr`]: gradstep::schedules::LambdaLr

use gradstep::schedules::{AnyScheduler, Group, Progress, ReduceLrOnPlateau, Scheduler};

use crate::error::Error;

/// A schedule attached to a group: one of torch's epoch-driven schedules, or
/// `ReduceLROnPlateau`, which needs the epoch's metric.
#[derive(Clone, Debug)]
pub(crate) enum Schedule {
    /// Stepped by [`Optimizer::schedule_step`](crate::Optimizer::schedule_step).
    Epochs(Box<AnyScheduler>),
    /// Stepped by [`Optimizer::schedule_step_metric`](crate::Optimizer::schedule_step_metric).
    Plateau(ReduceLrOnPlateau),
}

/// Where an attached schedule is: what [`Optimizer::state_dict`] shows and a
/// checkpoint stores, torch's `scheduler.state_dict()` without the configuration.
///
/// [`Optimizer::state_dict`]: crate::Optimizer::state_dict
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScheduleState {
    /// An epoch-driven schedule ([`AnyScheduler`]).
    Epochs {
        /// Which [`AnyScheduler`] variant ([`schedule_kind`]); a position loads only
        /// into a schedule of the same kind.
        kind: u16,
        /// torch's `last_epoch`, `_step_count` and `base_lrs[i]`.
        progress: Progress,
        /// `CosineAnnealingWarmRestarts`' `(T_i, T_cur)`; `None` for the others.
        restarts: Option<(f64, f64)>,
    },
    /// `ReduceLROnPlateau`'s counters.
    Plateau {
        /// The best metric so far (±∞ before the first).
        best: f64,
        /// Consecutive epochs without improvement.
        num_bad_epochs: u64,
        /// Epochs of cooldown left.
        cooldown_counter: u64,
        /// Epochs stepped.
        last_epoch: u64,
    },
}

/// The kind number of `ReduceLROnPlateau` in [`ScheduleState`] and checkpoints.
pub const PLATEAU_KIND: u16 = 16;

/// The number of each [`AnyScheduler`] variant in [`ScheduleState::Epochs`] and in
/// checkpoints, with torch's class name. Stable: a new variant gets the next number
/// (this match has no fallback arm, so a new variant does not compile until it has one).
pub fn schedule_kind(s: &AnyScheduler) -> (u16, &'static str) {
    match s {
        AnyScheduler::Lambda(_) => (1, "LambdaLR"),
        AnyScheduler::Multiplicative(_) => (2, "MultiplicativeLR"),
        AnyScheduler::Step(_) => (3, "StepLR"),
        AnyScheduler::MultiStep(_) => (4, "MultiStepLR"),
        AnyScheduler::Constant(_) => (5, "ConstantLR"),
        AnyScheduler::Linear(_) => (6, "LinearLR"),
        AnyScheduler::Exponential(_) => (7, "ExponentialLR"),
        AnyScheduler::Polynomial(_) => (8, "PolynomialLR"),
        AnyScheduler::CosineAnnealing(_) => (9, "CosineAnnealingLR"),
        AnyScheduler::CosineAnnealingWarmRestarts(_) => (10, "CosineAnnealingWarmRestarts"),
        AnyScheduler::Cyclic(_) => (11, "CyclicLR"),
        AnyScheduler::OneCycle(_) => (12, "OneCycleLR"),
        AnyScheduler::WarmupDecay(_) => (13, "WarmupDecay"),
        AnyScheduler::Noam(_) => (14, "Noam"),
        AnyScheduler::PiecewiseConstant(_) => (15, "PiecewiseConstant"),
    }
}

/// The schedule's bookkeeping, borrowed.
fn progress_mut(s: &mut AnyScheduler) -> &mut Progress {
    match s {
        AnyScheduler::Lambda(s) => &mut s.progress,
        AnyScheduler::Multiplicative(s) => &mut s.progress,
        AnyScheduler::Step(s) => &mut s.progress,
        AnyScheduler::MultiStep(s) => &mut s.progress,
        AnyScheduler::Constant(s) => &mut s.progress,
        AnyScheduler::Linear(s) => &mut s.progress,
        AnyScheduler::Exponential(s) => &mut s.progress,
        AnyScheduler::Polynomial(s) => &mut s.progress,
        AnyScheduler::CosineAnnealing(s) => &mut s.progress,
        AnyScheduler::CosineAnnealingWarmRestarts(s) => &mut s.progress,
        AnyScheduler::Cyclic(s) => &mut s.progress,
        AnyScheduler::OneCycle(s) => &mut s.progress,
        AnyScheduler::WarmupDecay(s) => &mut s.progress,
        AnyScheduler::Noam(s) => &mut s.progress,
        AnyScheduler::PiecewiseConstant(s) => &mut s.progress,
    }
}

impl Schedule {
    /// Its position.
    pub(crate) fn state(&self) -> ScheduleState {
        match self {
            Schedule::Epochs(s) => {
                let mut s = (**s).clone();
                let restarts = match &s {
                    AnyScheduler::CosineAnnealingWarmRestarts(w) => Some((w.t_i, w.t_cur)),
                    _ => None,
                };
                ScheduleState::Epochs {
                    kind: schedule_kind(&s).0,
                    progress: *progress_mut(&mut s),
                    restarts,
                }
            }
            Schedule::Plateau(p) => ScheduleState::Plateau {
                best: p.best,
                num_bad_epochs: p.num_bad_epochs,
                cooldown_counter: p.cooldown_counter,
                last_epoch: p.last_epoch,
            },
        }
    }

    /// This schedule (its configuration) at position `state`, checked as the
    /// schedule's own steps would leave it: the same kind, a started schedule
    /// (`last_epoch` ≥ 0) whose `base_lr` is the group's `initial_lr`, finite
    /// positions, and `ReduceLROnPlateau`'s counters within its patience and cooldown.
    pub(crate) fn at(&self, state: &ScheduleState, initial_lr: Option<f64>) -> Result<Self, Error> {
        match (self, *state) {
            (
                Schedule::Epochs(s),
                ScheduleState::Epochs {
                    kind,
                    progress,
                    restarts,
                },
            ) => {
                if kind != schedule_kind(s).0 {
                    return Err(Error::Mismatch {
                        what: "the schedule attached to a group is of another kind",
                    });
                }
                if progress.last_epoch < 0 {
                    return Err(Error::Invalid {
                        field: "schedule last_epoch",
                    });
                }
                if !(progress.base_lr.is_finite() && progress.base_lr >= 0.0)
                    || initial_lr.map(f64::to_bits) != Some(progress.base_lr.to_bits())
                {
                    return Err(Error::Invalid {
                        field: "schedule base_lr",
                    });
                }
                let mut s = s.clone();
                *progress_mut(&mut s) = progress;
                match (&mut *s, restarts) {
                    (AnyScheduler::CosineAnnealingWarmRestarts(w), Some((t_i, t_cur))) => {
                        if !(t_i.is_finite() && t_i >= 1.0) {
                            return Err(Error::Invalid {
                                field: "schedule T_i",
                            });
                        }
                        if !(t_cur.is_finite() && (-1.0..t_i).contains(&t_cur)) {
                            return Err(Error::Invalid {
                                field: "schedule T_cur",
                            });
                        }
                        (w.t_i, w.t_cur) = (t_i, t_cur);
                    }
                    (AnyScheduler::CosineAnnealingWarmRestarts(_), None) | (_, Some(_)) => {
                        return Err(Error::Invalid {
                            field: "schedule restarts",
                        });
                    }
                    (_, None) => {}
                }
                Ok(Schedule::Epochs(s))
            }
            (
                Schedule::Plateau(p),
                ScheduleState::Plateau {
                    best,
                    num_bad_epochs,
                    cooldown_counter,
                    last_epoch,
                },
            ) => {
                if best.is_nan() {
                    return Err(Error::Invalid {
                        field: "plateau best",
                    });
                }
                if num_bad_epochs > p.patience {
                    return Err(Error::Invalid {
                        field: "plateau num_bad_epochs",
                    });
                }
                if cooldown_counter > p.cooldown {
                    return Err(Error::Invalid {
                        field: "plateau cooldown_counter",
                    });
                }
                let mut p = *p;
                (p.best, p.num_bad_epochs, p.cooldown_counter, p.last_epoch) =
                    (best, num_bad_epochs, cooldown_counter, last_epoch);
                Ok(Schedule::Plateau(p))
            }
            _ => Err(Error::Mismatch {
                what: "the schedule attached to a group is of another kind",
            }),
        }
    }

    /// torch's scheduler constructor on `group`.
    pub(crate) fn start(&mut self, group: &mut Group) -> Result<(), Error> {
        match self {
            Schedule::Epochs(s) => s.start(group)?,
            Schedule::Plateau(p) => {
                p.validate()?;
                p.reset();
                p.last_epoch = 0;
            }
        }
        Ok(())
    }
}
