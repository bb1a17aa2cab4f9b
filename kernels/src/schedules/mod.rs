//! Learning-rate schedules: every `torch.optim.lr_scheduler` class, with torch's numbers,
//! plus the warmup/decay shapes people build by hand.
//!
//! A schedule writes the learning rate (and, for the cycling schedules, the momentum or
//! Adam's β₁) of one parameter group before each optimizer step; the rule is then called
//! with that value. Nothing allocates: bounded lists (milestones, boundaries, the members
//! of a [`SequentialLr`]) live in fixed-capacity `heapless` vectors or arrays.
//!
//! ```
//! use gradstep::schedules::{Group, Scheduler, StepLr};
//! use gradstep::{Rule, Sgd, StepCount};
//!
//! let mut group = Group::new(0.1);
//! let mut schedule = StepLr::new(2, 0.5);
//! schedule.start(&mut group)?; // torch's constructor: epoch 0
//! let (mut params, mut scalars) = ([1.0f64], StepCount::default());
//! let mut lrs = [0.0; 5];
//! for lr in &mut lrs {
//!     *lr = group.lr;
//!     let sgd = Sgd { lr: group.lr, ..Sgd::default() };
//!     sgd.step(&mut scalars, &mut params, &[1.0], &mut [])?;
//!     schedule.step(&mut group)?; // after the optimizer step, as in torch
//! }
//! assert_eq!(lrs, [0.1, 0.1, 0.05, 0.05, 0.025]);
//! # Ok::<(), gradstep::Error>(())
//! ```
//!
//! ## Two ways to use a schedule
//! - **As torch does** ([`Scheduler`]): a stateful object that, like a torch scheduler,
//!   reads the group's *current* learning rate and writes the next one. Many torch
//!   schedules are "chainable": they compute the next rate from the current one
//!   (StepLR multiplies by γ at each boundary, CosineAnnealingLR uses a step-to-step
//!   ratio of cosines), which is what lets [`ChainedScheduler`] multiply their effects.
//!   gradstep reproduces these recursions operation by operation, so trajectories match
//!   torch's to the last few bits (tested against recorded trajectories, 1e-12
//!   relative).
//! - **As a function of the step** ([`ClosedForm`], optax style): `lr_at(base_lr, t)`
//!   with no state. Where torch has a closed form (`_get_closed_form_lr`), gradstep's
//!   is the same expression. Run alone, a schedule's two forms agree up to rounding
//!   (property-tested to 1e-9 of the base rate over 600 epochs); combined in a
//!   [`ChainedScheduler`], only the chainable form scales what the other members wrote,
//!   which is how torch composes them.
//!   [`Closed`] turns any closed form into a [`Scheduler`].
//!
//! ## The schedules
//! | torch / common name | gradstep | form |
//! |---|---|---|
//! | `LambdaLR` | [`LambdaLr`] | `base · f(t)` |
//! | `MultiplicativeLR` | [`MultiplicativeLr`] | `lr · f(t)` |
//! | `StepLR` | [`StepLr`] | `base · γ^⌊t/step⌋` |
//! | `MultiStepLR` | [`MultiStepLr`] | `base · γ^(milestones ≤ t)` |
//! | `ConstantLR` | [`ConstantLr`] | `base · factor` until `total_iters` |
//! | `LinearLR` | [`LinearLr`] | linear factor ramp |
//! | `ExponentialLR` | [`ExponentialLr`] | `base · γ^t` |
//! | `PolynomialLR` | [`PolynomialLr`] | `base · (1 − t/T)^p` |
//! | `CosineAnnealingLR` | [`CosineAnnealingLr`] | half cosine to `eta_min` |
//! | `CosineAnnealingWarmRestarts` | [`CosineAnnealingWarmRestarts`] | SGDR |
//! | `CyclicLR` | [`CyclicLr`] | triangular / triangular2 / exp_range, momentum |
//! | `OneCycleLR` | [`OneCycleLr`] | 2 or 3 phases, cos / linear, momentum |
//! | `ReduceLROnPlateau` | [`ReduceLrOnPlateau`] | metric-driven |
//! | `SequentialLR` | [`SequentialLr`] | one schedule after another |
//! | `ChainedScheduler` | [`ChainedScheduler`] | all at once |
//! | warmup + cosine/linear/exponential decay | [`WarmupDecay`] | optax `warmup_*_schedule` |
//! | inverse square root ("noam") | [`Noam`] | Transformer schedule |
//! | piecewise constant | [`PiecewiseConstant`] | values between boundaries |
//!
//! Every schedule validates its configuration and returns a typed [`Error`]: a zero
//! period, a negative factor, milestones out of order, or a learning rate that would come
//! out negative or non-finite (only possible through a user function) is refused, and
//! the group is left as it was.
#![doc = include_str!("../../docs/schedules.md")]

use crate::error::{Error, check};

mod any;
mod compose;
mod cosine;
mod cyclic;
mod factor;
mod lambda;
mod one_cycle;
mod plateau;
mod step;
mod warmup;

pub use any::AnyScheduler;
pub use compose::{ChainedScheduler, SequentialLr};
pub use cosine::{CosineAnnealingLr, CosineAnnealingWarmRestarts};
pub use cyclic::{CyclicLr, CyclicMode, ScaleMode};
pub use factor::{ConstantLr, LinearLr, PolynomialLr};
pub use lambda::{LambdaLr, MultiplicativeLr};
pub use one_cycle::{Anneal, OneCycleLr};
pub use plateau::{PlateauMode, ReduceLrOnPlateau, ThresholdMode};
pub use step::{ExponentialLr, MultiStepLr, StepLr};
pub use warmup::{Decay, Noam, PiecewiseConstant, WarmupDecay};

/// The values of one parameter group that schedules read and write: torch's
/// `group["lr"]`, `group["initial_lr"]` and the group's momentum (or Adam's β₁).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Group {
    /// The learning rate the next optimizer step uses.
    pub lr: f64,
    /// torch's `initial_lr`: the learning rate the first schedule attached to this group
    /// found (`None` until then). Chainable schedules scale relative to it.
    pub initial_lr: Option<f64>,
    /// The momentum (SGD, RMSprop) or β₁ (Adam family) that [`CyclicLr`] and
    /// [`OneCycleLr`] cycle; `None` until such a schedule sets it. Copy it into the
    /// rule's hyperparameters before each step.
    pub momentum: Option<f64>,
}

impl Group {
    /// A group with learning rate `lr` and no schedule attached yet.
    pub const fn new(lr: f64) -> Self {
        Group {
            lr,
            initial_lr: None,
            momentum: None,
        }
    }
}

/// torch's per-scheduler bookkeeping, as plain data so that a schedule can be saved and
/// resumed exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// torch's `last_epoch`: `-1` before [`Scheduler::start`], then the epoch whose
    /// learning rate the group holds.
    pub last_epoch: i64,
    /// torch's `_step_count`: steps taken since the last initial step.
    pub step_count: u64,
    /// torch's `base_lrs[i]`: the group's `initial_lr` when the schedule started.
    pub base_lr: f64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            last_epoch: -1,
            step_count: 0,
            base_lr: 0.0,
        }
    }
}

/// A learning-rate schedule driven the way torch drives its schedulers.
///
/// Call [`start`](Scheduler::start) once (torch does this in the constructor: it
/// records `initial_lr` and writes epoch 0's learning rate), then
/// [`step`](Scheduler::step) after every optimizer step (or epoch). On `Err` the group
/// and the schedule are unchanged.
pub trait Scheduler {
    /// torch's constructor: validates the configuration and the group's learning rate,
    /// applies the schedule's set-up (e.g. [`CyclicLr`] sets `lr = base_lr`), records
    /// `initial_lr`, and writes epoch 0's values into `group`: [`attach`] then
    /// [`initial_step`], on a copy of the group. Every schedule of gradstep's restores
    /// its own state too if either half refuses; this default, for a schedule of the
    /// caller's, cannot (it knows no state to restore): override it where `attach`
    /// writes any.
    ///
    /// [`attach`]: Scheduler::attach
    /// [`initial_step`]: Scheduler::initial_step
    fn start(&mut self, group: &mut Group) -> Result<(), Error> {
        start_on_copy(self, group)
    }

    /// torch's `scheduler.step()`: advances one epoch and writes its learning rate (and
    /// momentum, for cycling schedules) into `group`.
    fn step(&mut self, group: &mut Group) -> Result<(), Error>;

    /// torch's `last_epoch`: `-1` before `start`.
    fn last_epoch(&self) -> i64;

    /// The set-up half of [`start`](Scheduler::start), without the initial step.
    /// [`SequentialLr`] needs the halves separately, as torch does.
    fn attach(&mut self, group: &mut Group) -> Result<(), Error>;

    /// The initial-step half of [`start`](Scheduler::start) (torch's `_initial_step`).
    fn initial_step(&mut self, group: &mut Group) -> Result<(), Error>;

    /// What [`SequentialLr`] does to a schedule at its milestone (torch's
    /// `_update_lr(0)`): sets the epoch to 0 and writes the closed-form epoch-0 value
    /// where the schedule has one, else the chainable value.
    fn restart(&mut self, group: &mut Group) -> Result<(), Error>;

    /// What [`SequentialLr`]'s constructor does to every member (torch's
    /// `recursive_undo`): moves `last_epoch` back by one.
    fn undo(&mut self);
}

/// A schedule that is a plain function of the step: `lr_at(base_lr, t)`.
pub trait ClosedForm {
    /// Validates the configuration.
    fn validate(&self) -> Result<(), Error>;
    /// The learning rate at epoch `t` for a group whose initial learning rate is
    /// `base_lr`. Call [`validate`](ClosedForm::validate) first: with an invalid
    /// configuration the value is unspecified (but this never panics).
    fn lr_at(&self, base_lr: f64, t: u64) -> f64;
}

/// Any [`ClosedForm`] as a [`Scheduler`]: each step writes `lr_at(initial_lr, t)`,
/// ignoring the group's current learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Closed<S> {
    /// The schedule.
    pub schedule: S,
    /// Epoch and base learning rate.
    pub progress: Progress,
}

impl<S: ClosedForm> Closed<S> {
    /// Wraps `schedule`, not yet started.
    pub fn new(schedule: S) -> Self {
        Closed {
            schedule,
            progress: Progress::default(),
        }
    }

    fn write(&mut self, group: &mut Group, epoch: i64, step_count: u64) -> Result<(), Error> {
        self.schedule.validate()?;
        let t = u64::try_from(epoch).unwrap_or(0);
        commit(group, self.schedule.lr_at(self.progress.base_lr, t), None)?;
        self.progress.last_epoch = epoch;
        self.progress.step_count = step_count;
        Ok(())
    }
}

impl<S: ClosedForm> Scheduler for Closed<S> {
    fn start(&mut self, group: &mut Group) -> Result<(), Error> {
        let saved = self.progress;
        start_on_copy(self, group).inspect_err(|_| self.progress = saved)
    }
    fn step(&mut self, group: &mut Group) -> Result<(), Error> {
        let epoch = next_epoch(self.progress.last_epoch)?;
        self.write(group, epoch, self.progress.step_count.saturating_add(1))
    }
    fn last_epoch(&self) -> i64 {
        self.progress.last_epoch
    }
    fn attach(&mut self, group: &mut Group) -> Result<(), Error> {
        self.schedule.validate()?;
        self.progress.base_lr = attach_group(group)?;
        self.progress.last_epoch = -1;
        Ok(())
    }
    fn initial_step(&mut self, group: &mut Group) -> Result<(), Error> {
        let epoch = next_epoch(self.progress.last_epoch)?;
        self.write(group, epoch, 1)
    }
    fn restart(&mut self, group: &mut Group) -> Result<(), Error> {
        self.write(group, 0, self.progress.step_count)
    }
    fn undo(&mut self) {
        self.progress.last_epoch = self.progress.last_epoch.saturating_sub(1);
    }
}

/// What one evaluation of a torch `get_lr` produces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lrs {
    pub lr: f64,
    pub momentum: Option<f64>,
}

impl Lrs {
    pub(crate) fn lr(lr: f64) -> Self {
        Lrs { lr, momentum: None }
    }
}

/// The torch `LRScheduler` subclasses that use the base class's `step`: each says how
/// it computes `get_lr` (and `_get_closed_form_lr` if it has one); the stepping,
/// bookkeeping and validation are shared (`torch_scheduler!`).
pub(crate) trait TorchLr: HasProgress {
    /// Validates the configuration.
    fn check(&self) -> Result<(), Error>;
    /// The constructor's set-up before `LRScheduler.__init__` (most have none) and the
    /// base class's own: returns `base_lr`.
    fn setup(&mut self, group: &mut Group) -> Result<f64, Error> {
        attach_group(group)
    }
    /// torch's `get_lr()` at `p.last_epoch` (already advanced).
    fn get_lr(&self, p: &Progress, group: &Group, initial: bool) -> Result<Lrs, Error>;
    /// torch's `_get_closed_form_lr()` where it exists, else `get_lr()`.
    fn closed(&self, p: &Progress, group: &Group) -> Result<Lrs, Error> {
        self.get_lr(p, group, false)
    }
}

/// Access to a schedule's `progress` field (implemented by `torch_scheduler!`).
pub(crate) trait HasProgress {
    /// The bookkeeping.
    fn progress(&mut self) -> &mut Progress;
}

/// [`Scheduler::start`]'s two halves on a copy of the group, written back if both succeed.
pub(crate) fn start_on_copy<S: Scheduler + ?Sized>(
    s: &mut S,
    group: &mut Group,
) -> Result<(), Error> {
    let mut g = *group;
    s.attach(&mut g)?;
    s.initial_step(&mut g)?;
    *group = g;
    Ok(())
}

/// Records `initial_lr` (torch's `setdefault`) after checking the group's lr; returns it.
pub(crate) fn attach_group(group: &mut Group) -> Result<f64, Error> {
    check::non_negative("lr", group.lr)?;
    let initial = group.initial_lr.unwrap_or(group.lr);
    check::non_negative("initial_lr", initial)?;
    group.initial_lr = Some(initial);
    Ok(initial)
}

/// Writes a computed learning rate (and momentum) into the group, refusing values that
/// no optimizer can use.
pub(crate) fn commit(group: &mut Group, lr: f64, momentum: Option<f64>) -> Result<(), Error> {
    if !(lr.is_finite() && lr >= 0.0) {
        return Err(Error::InvalidHyperparameter {
            name: "lr",
            value: lr,
            requirement: "the schedule produced a learning rate that is not finite and >= 0",
        });
    }
    if let Some(m) = momentum {
        check::finite("momentum", m)?;
    }
    group.lr = lr;
    if momentum.is_some() {
        group.momentum = momentum;
    }
    Ok(())
}

pub(crate) fn next_epoch(last_epoch: i64) -> Result<i64, Error> {
    last_epoch.checked_add(1).ok_or(Error::StepOverflow)
}

/// The epoch as an `f64`, as Python's int-to-float conversion gives it.
#[inline]
pub(crate) fn ep(p: &Progress) -> f64 {
    p.last_epoch as f64
}

/// `LRScheduler._initial_step`, `step` and `_update_lr(0)` for a [`TorchLr`].
pub(crate) fn torch_advance<S: TorchLr>(
    s: &mut S,
    group: &mut Group,
    initial: bool,
) -> Result<(), Error> {
    s.check()?;
    let mut p = *s.progress();
    p.step_count = if initial {
        1
    } else {
        p.step_count.saturating_add(1)
    };
    p.last_epoch = next_epoch(p.last_epoch)?;
    let out = s.get_lr(&p, group, initial)?;
    commit(group, out.lr, out.momentum)?;
    *s.progress() = p;
    Ok(())
}

pub(crate) fn torch_restart<S: TorchLr>(s: &mut S, group: &mut Group) -> Result<(), Error> {
    s.check()?;
    let mut p = *s.progress();
    p.last_epoch = 0;
    let out = s.closed(&p, group)?;
    commit(group, out.lr, out.momentum)?;
    *s.progress() = p;
    Ok(())
}

pub(crate) fn torch_attach<S: TorchLr>(s: &mut S, group: &mut Group) -> Result<(), Error> {
    s.check()?;
    let mut g = *group;
    let base_lr = s.setup(&mut g)?;
    *s.progress() = Progress {
        base_lr,
        ..Progress::default()
    };
    *group = g;
    Ok(())
}

/// Implements [`Scheduler`] for a [`TorchLr`] type: torch's base-class stepping.
macro_rules! torch_scheduler {
    ($(impl[$($g:tt)*] $t:ty;)*) => {$(
        impl<$($g)*> $crate::schedules::HasProgress for $t {
            fn progress(&mut self) -> &mut $crate::schedules::Progress {
                &mut self.progress
            }
        }

        impl<$($g)*> $crate::schedules::Scheduler for $t {
            fn start(&mut self, group: &mut $crate::schedules::Group) -> Result<(), $crate::Error> {
                let saved = self.progress;
                $crate::schedules::start_on_copy(self, group).inspect_err(|_| self.progress = saved)
            }
            fn step(&mut self, group: &mut $crate::schedules::Group) -> Result<(), $crate::Error> {
                $crate::schedules::torch_advance(self, group, false)
            }
            fn last_epoch(&self) -> i64 {
                self.progress.last_epoch
            }
            fn attach(&mut self, group: &mut $crate::schedules::Group) -> Result<(), $crate::Error> {
                $crate::schedules::torch_attach(self, group)
            }
            fn initial_step(&mut self, group: &mut $crate::schedules::Group) -> Result<(), $crate::Error> {
                $crate::schedules::torch_advance(self, group, true)
            }
            fn restart(&mut self, group: &mut $crate::schedules::Group) -> Result<(), $crate::Error> {
                $crate::schedules::torch_restart(self, group)
            }
            fn undo(&mut self) {
                self.progress.last_epoch = self.progress.last_epoch.saturating_sub(1);
            }
        }
    )*};
}
pub(crate) use torch_scheduler;

/// Checks an integer period or count that must be at least 1.
pub(crate) fn at_least_one(name: &'static str, v: u64) -> Result<(), Error> {
    crate::error::require(v >= 1, name, v as f64, "must be >= 1")
}
