//! The schedule attached to a param group, and its position as plain data.
//!
//! A checkpoint cannot hold a schedule's configuration (a [`LambdaLr`] holds a
//! function), so, as in torch, the caller attaches the same schedule again and loads
//! the saved position into it. The position is the schedule's whole running state
//! (every built-in schedule computes the rest from its configuration), so it is
//! restored directly, in time independent of the epoch: nothing is replayed.
//!
//! [`LambdaLr`]: gradstep::schedules::LambdaLr

use core::fmt;

use gradstep::schedules::{
    AnyScheduler, ChainedScheduler, ConstantLr, CosineAnnealingLr, CosineAnnealingWarmRestarts,
    CyclicLr, ExponentialLr, Group, LinearLr, MultiStepLr, Noam, OneCycleLr, PiecewiseConstant,
    PolynomialLr, Progress, ReduceLrOnPlateau, Scheduler, SequentialLr, StepLr, WarmupDecay,
};

use crate::error::Error;

/// A schedule the caller implements (e.g. a LambdaLR over a C callback with a user
/// pointer, which [`AnyScheduler`]'s plain `fn` pointers cannot carry). Its whole
/// running state is its [`Progress`], so that a checkpoint restores it directly.
pub trait CustomSchedule: Scheduler + Send + Sync + fmt::Debug {
    /// Its kind number in [`ScheduleState`] and checkpoints, and torch's class name (a
    /// position loads only into a schedule of the same kind): use [`schedule_kind`]'s
    /// number of the torch schedule it computes (1 for a LambdaLR, 2 for a
    /// MultiplicativeLR).
    fn kind(&self) -> (u16, &'static str);
    /// Its bookkeeping.
    fn progress(&self) -> Progress;
    /// Restores its bookkeeping (a checked, saved [`Progress`]).
    fn set_progress(&mut self, progress: Progress);
    /// A copy.
    fn clone_box(&self) -> Box<dyn CustomSchedule>;
}

/// One epoch-driven schedule: built in, or the caller's own.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Member {
    /// One of gradstep's schedules.
    Builtin(AnyScheduler),
    /// The caller's.
    Custom(Box<dyn CustomSchedule>),
}

impl Clone for Member {
    fn clone(&self) -> Self {
        match self {
            Member::Builtin(s) => Member::Builtin(s.clone()),
            Member::Custom(c) => Member::Custom(c.clone_box()),
        }
    }
}

macro_rules! member {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Member::Builtin($s) => $e,
            Member::Custom($s) => $e,
        }
    };
}

impl Scheduler for Member {
    fn start(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        member!(self, s => s.start(group))
    }
    fn step(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        member!(self, s => s.step(group))
    }
    fn last_epoch(&self) -> i64 {
        member!(self, s => s.last_epoch())
    }
    fn attach(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        member!(self, s => s.attach(group))
    }
    fn initial_step(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        member!(self, s => s.initial_step(group))
    }
    fn restart(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        member!(self, s => s.restart(group))
    }
    fn undo(&mut self) {
        member!(self, s => s.undo())
    }
}

impl From<AnyScheduler> for Member {
    fn from(s: AnyScheduler) -> Self {
        Member::Builtin(s)
    }
}

impl From<Box<dyn CustomSchedule>> for Member {
    fn from(s: Box<dyn CustomSchedule>) -> Self {
        Member::Custom(s)
    }
}

/// An epoch-driven schedule attached to a group ([`Optimizer::attach_schedule`]): one
/// schedule, or torch's `SequentialLR` or `ChainedScheduler` of 2 to 4 of them.
///
/// ```
/// use gradstep::rules::AnyRule;
/// use gradstep::schedules::{CosineAnnealingLr, LinearLr, SequentialLr};
/// use gradstep_optim::{Member, Optimizer};
///
/// let mut opt = Optimizer::<f32>::new(AnyRule::parse("sgd:lr=1")?)?;
/// let warmup = LinearLr { start_factor: 0.1, total_iters: 5, ..LinearLr::default() };
/// let members = [Member::from(warmup), CosineAnnealingLr::new(95, 0.0).into()];
/// opt.attach_schedule(opt.default_group(), SequentialLr::new(members, &[5])?)?;
/// assert!((opt.lr(opt.default_group())? - 0.1).abs() < 1e-15);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`Optimizer::attach_schedule`]: crate::Optimizer::attach_schedule
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum EpochSchedule {
    /// One schedule.
    One(Member),
    /// `SequentialLR` of 2.
    Sequential2(SequentialLr<Member, 2>),
    /// `SequentialLR` of 3.
    Sequential3(SequentialLr<Member, 3>),
    /// `SequentialLR` of 4.
    Sequential4(SequentialLr<Member, 4>),
    /// `ChainedScheduler` of 2.
    Chained2(ChainedScheduler<Member, 2>),
    /// `ChainedScheduler` of 3.
    Chained3(ChainedScheduler<Member, 3>),
    /// `ChainedScheduler` of 4.
    Chained4(ChainedScheduler<Member, 4>),
}

macro_rules! epochs {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            EpochSchedule::One($s) => $e,
            EpochSchedule::Sequential2($s) => $e,
            EpochSchedule::Sequential3($s) => $e,
            EpochSchedule::Sequential4($s) => $e,
            EpochSchedule::Chained2($s) => $e,
            EpochSchedule::Chained3($s) => $e,
            EpochSchedule::Chained4($s) => $e,
        }
    };
}

impl Scheduler for EpochSchedule {
    fn start(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        epochs!(self, s => s.start(group))
    }
    fn step(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        epochs!(self, s => s.step(group))
    }
    fn last_epoch(&self) -> i64 {
        epochs!(self, s => s.last_epoch())
    }
    fn attach(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        epochs!(self, s => s.attach(group))
    }
    fn initial_step(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        epochs!(self, s => s.initial_step(group))
    }
    fn restart(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        epochs!(self, s => s.restart(group))
    }
    fn undo(&mut self) {
        epochs!(self, s => s.undo())
    }
}

impl From<Member> for EpochSchedule {
    fn from(s: Member) -> Self {
        EpochSchedule::One(s)
    }
}

impl From<AnyScheduler> for EpochSchedule {
    fn from(s: AnyScheduler) -> Self {
        EpochSchedule::One(Member::Builtin(s))
    }
}

impl From<Box<dyn CustomSchedule>> for EpochSchedule {
    fn from(s: Box<dyn CustomSchedule>) -> Self {
        EpochSchedule::One(Member::Custom(s))
    }
}

macro_rules! builtin {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Member {
            fn from(s: $t) -> Self {
                Member::Builtin(s.into())
            }
        }
        impl From<$t> for EpochSchedule {
            fn from(s: $t) -> Self {
                EpochSchedule::One(Member::Builtin(s.into()))
            }
        }
    )*};
}

builtin!(
    gradstep::schedules::LambdaLr<fn(u64) -> f64>,
    gradstep::schedules::MultiplicativeLr<fn(u64) -> f64>,
    StepLr,
    MultiStepLr,
    ConstantLr,
    LinearLr,
    ExponentialLr,
    PolynomialLr,
    CosineAnnealingLr,
    CosineAnnealingWarmRestarts,
    CyclicLr,
    OneCycleLr,
    WarmupDecay,
    Noam,
    PiecewiseConstant,
);

macro_rules! composite {
    ($($variant:ident($t:ident, $n:literal);)*) => {$(
        impl From<$t<Member, $n>> for EpochSchedule {
            fn from(s: $t<Member, $n>) -> Self {
                EpochSchedule::$variant(s)
            }
        }
    )*};
}

composite! {
    Sequential2(SequentialLr, 2);
    Sequential3(SequentialLr, 3);
    Sequential4(SequentialLr, 4);
    Chained2(ChainedScheduler, 2);
    Chained3(ChainedScheduler, 3);
    Chained4(ChainedScheduler, 4);
}

/// A schedule attached to a group: an epoch-driven one, or `ReduceLROnPlateau`, which
/// needs the epoch's metric.
#[derive(Clone, Debug)]
pub(crate) enum Schedule {
    /// Stepped by [`Optimizer::schedule_step`](crate::Optimizer::schedule_step).
    Epochs(Box<EpochSchedule>),
    /// Stepped by [`Optimizer::schedule_step_metric`](crate::Optimizer::schedule_step_metric).
    Plateau(ReduceLrOnPlateau),
}

/// The most members of a composite schedule.
pub const MAX_MEMBERS: usize = 4;

/// The kind number of a `SequentialLR` in [`ScheduleState`] and checkpoints.
pub const SEQUENTIAL_KIND: u16 = 17;
/// The kind number of a `ChainedScheduler` in [`ScheduleState`] and checkpoints.
pub const CHAINED_KIND: u16 = 18;

/// Where one schedule (alone, or a composite's member) is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemberState {
    /// Which schedule ([`schedule_kind`], or a [`CustomSchedule`]'s kind); a position
    /// loads only into a schedule of the same kind.
    pub kind: u16,
    /// torch's `last_epoch`, `_step_count` and `base_lrs[i]`.
    pub progress: Progress,
    /// `CosineAnnealingWarmRestarts`' `(T_i, T_cur)`; `None` for the others.
    pub restarts: Option<(f64, f64)>,
}

/// Where an attached schedule is: what [`Optimizer::state_dict`] shows and a
/// checkpoint stores, torch's `scheduler.state_dict()` without the configuration.
///
/// [`Optimizer::state_dict`]: crate::Optimizer::state_dict
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScheduleState {
    /// One epoch-driven schedule ([`AnyScheduler`] or a [`CustomSchedule`]).
    Epochs {
        /// Which schedule ([`schedule_kind`], or the custom schedule's kind); a
        /// position loads only into a schedule of the same kind.
        kind: u16,
        /// torch's `last_epoch`, `_step_count` and `base_lrs[i]`.
        progress: Progress,
        /// `CosineAnnealingWarmRestarts`' `(T_i, T_cur)`; `None` for the others.
        restarts: Option<(f64, f64)>,
    },
    /// A `SequentialLR` or `ChainedScheduler`: its own epoch and each member's position.
    Composite {
        /// [`SEQUENTIAL_KIND`] or [`CHAINED_KIND`].
        kind: u16,
        /// `SequentialLR`'s own `last_epoch` (0 for a `ChainedScheduler`, which has
        /// none of its own).
        last_epoch: i64,
        /// The members' positions, in order: the first 2 to [`MAX_MEMBERS`] are
        /// `Some`.
        members: [Option<MemberState>; MAX_MEMBERS],
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

impl Member {
    /// Its position.
    fn state(&self) -> MemberState {
        match self {
            Member::Builtin(s) => {
                let mut s = s.clone();
                let restarts = match &s {
                    AnyScheduler::CosineAnnealingWarmRestarts(w) => Some((w.t_i, w.t_cur)),
                    _ => None,
                };
                MemberState {
                    kind: schedule_kind(&s).0,
                    progress: *progress_mut(&mut s),
                    restarts,
                }
            }
            Member::Custom(c) => MemberState {
                kind: c.kind().0,
                progress: c.progress(),
                restarts: None,
            },
        }
    }

    /// This member at position `state`, checked as its own steps would leave it: the
    /// same kind, an epoch of at least `min_epoch` (-1 for a `SequentialLR` member not
    /// yet reached, else 0), `base_lr` the one its start recorded (`base_lr`, from
    /// [`expected_base_lrs`]), finite positions.
    fn at(&self, state: &MemberState, base_lr: f64, min_epoch: i64) -> Result<Self, Error> {
        let MemberState {
            kind,
            progress,
            restarts,
        } = *state;
        if kind != self.state().kind {
            return Err(Error::Mismatch {
                what: "the schedule attached to a group is of another kind",
            });
        }
        if progress.last_epoch < min_epoch {
            return Err(Error::Invalid {
                field: "schedule last_epoch",
            });
        }
        if !(progress.base_lr.is_finite() && progress.base_lr >= 0.0)
            || progress.base_lr.to_bits() != base_lr.to_bits()
        {
            return Err(Error::Invalid {
                field: "schedule base_lr",
            });
        }
        let mut m = self.clone();
        match &mut m {
            Member::Builtin(s) => {
                *progress_mut(s) = progress;
                match (s, restarts) {
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
            }
            Member::Custom(c) => {
                if restarts.is_some() {
                    return Err(Error::Invalid {
                        field: "schedule restarts",
                    });
                }
                c.set_progress(progress);
            }
        }
        Ok(m)
    }
}

/// The members' positions, in a [`ScheduleState::Composite`].
fn members_state(members: &[Member]) -> [Option<MemberState>; MAX_MEMBERS] {
    let mut out = [None; MAX_MEMBERS];
    for (o, m) in out.iter_mut().zip(members) {
        *o = Some(m.state());
    }
    out
}

/// `members` at the saved positions (as many as there are members, the rest `None`).
fn restore_members(
    members: &mut [Member],
    saved: &[Option<MemberState>; MAX_MEMBERS],
    initial_lr: Option<f64>,
    min_epoch: i64,
) -> Result<(), Error> {
    let count = saved.iter().take_while(|m| m.is_some()).count();
    if count != members.len() || saved[count..].iter().any(Option::is_some) {
        return Err(Error::Mismatch {
            what: "the composite schedule attached to a group has another number of members",
        });
    }
    let first = saved[0].map_or(f64::NAN, |s| s.progress.base_lr);
    let expected = expected_base_lrs(members, first, initial_lr)?;
    for ((m, s), base_lr) in members.iter_mut().zip(saved.iter().flatten()).zip(expected) {
        *m = m.at(s, base_lr, min_epoch)?;
    }
    Ok(())
}

/// The `base_lr` each of `members` recorded when the schedule was attached, given the
/// first member's: torch's constructors start the members in order, each recording the
/// group's `initial_lr` then, which OneCycleLR first sets to its own `max_lr /
/// div_factor` (so members after it record that, and members before it the value
/// they found). Replayed: each member's set-up half ([`Scheduler::attach`], which
/// computes, calls no callback and touches only the group it is given) on a copy, over
/// a scratch group whose `initial_lr` starts as `first`. The group's `initial_lr` after
/// the last must be the saved one, `initial_lr`; otherwise, or if a member refuses the
/// replay, the saved positions are not ones a schedule's steps can produce.
fn expected_base_lrs(
    members: &[Member],
    first: f64,
    initial_lr: Option<f64>,
) -> Result<[f64; MAX_MEMBERS], Error> {
    let invalid = || Error::Invalid {
        field: "schedule base_lr",
    };
    let mut scratch = Group {
        lr: first,
        initial_lr: Some(first),
        momentum: None,
    };
    let mut expected = [f64::NAN; MAX_MEMBERS];
    for (m, e) in members.iter().zip(&mut expected) {
        let mut copy = m.clone();
        copy.attach(&mut scratch).map_err(|_| invalid())?;
        *e = copy.state().progress.base_lr;
    }
    match (scratch.initial_lr, initial_lr) {
        (Some(a), Some(b)) if a.to_bits() == b.to_bits() => Ok(expected),
        _ => Err(invalid()),
    }
}

impl EpochSchedule {
    /// Its position.
    fn state(&self) -> ScheduleState {
        let composite = |kind, last_epoch, members: &[Member]| ScheduleState::Composite {
            kind,
            last_epoch,
            members: members_state(members),
        };
        match self {
            EpochSchedule::One(m) => {
                let MemberState {
                    kind,
                    progress,
                    restarts,
                } = m.state();
                ScheduleState::Epochs {
                    kind,
                    progress,
                    restarts,
                }
            }
            EpochSchedule::Sequential2(s) => {
                composite(SEQUENTIAL_KIND, s.last_epoch(), s.schedulers())
            }
            EpochSchedule::Sequential3(s) => {
                composite(SEQUENTIAL_KIND, s.last_epoch(), s.schedulers())
            }
            EpochSchedule::Sequential4(s) => {
                composite(SEQUENTIAL_KIND, s.last_epoch(), s.schedulers())
            }
            EpochSchedule::Chained2(s) => composite(CHAINED_KIND, 0, s.schedulers()),
            EpochSchedule::Chained3(s) => composite(CHAINED_KIND, 0, s.schedulers()),
            EpochSchedule::Chained4(s) => composite(CHAINED_KIND, 0, s.schedulers()),
        }
    }

    /// This schedule at position `state`, restored directly (see [`Member::at`]).
    fn at(&self, state: &ScheduleState, initial_lr: Option<f64>) -> Result<Self, Error> {
        let other = || Error::Mismatch {
            what: "the schedule attached to a group is of another kind",
        };
        let mut s = self.clone();
        match (&mut s, *state) {
            (
                EpochSchedule::One(m),
                ScheduleState::Epochs {
                    kind,
                    progress,
                    restarts,
                },
            ) => {
                let saved = MemberState {
                    kind,
                    progress,
                    restarts,
                };
                let [base_lr, ..] = expected_base_lrs(
                    core::slice::from_ref(m),
                    saved.progress.base_lr,
                    initial_lr,
                )?;
                *m = m.at(&saved, base_lr, 0)?;
            }
            (
                EpochSchedule::Sequential2(_)
                | EpochSchedule::Sequential3(_)
                | EpochSchedule::Sequential4(_),
                ScheduleState::Composite {
                    kind: SEQUENTIAL_KIND,
                    last_epoch,
                    members,
                },
            ) => {
                if last_epoch < 0 {
                    return Err(Error::Invalid {
                        field: "schedule last_epoch",
                    });
                }
                match &mut s {
                    EpochSchedule::Sequential2(q) => {
                        restore_members(q.schedulers_mut(), &members, initial_lr, -1)?;
                        q.set_last_epoch(last_epoch);
                    }
                    EpochSchedule::Sequential3(q) => {
                        restore_members(q.schedulers_mut(), &members, initial_lr, -1)?;
                        q.set_last_epoch(last_epoch);
                    }
                    EpochSchedule::Sequential4(q) => {
                        restore_members(q.schedulers_mut(), &members, initial_lr, -1)?;
                        q.set_last_epoch(last_epoch);
                    }
                    _ => return Err(other()),
                }
            }
            (
                EpochSchedule::Chained2(_)
                | EpochSchedule::Chained3(_)
                | EpochSchedule::Chained4(_),
                ScheduleState::Composite {
                    kind: CHAINED_KIND,
                    last_epoch,
                    members,
                },
            ) => {
                if last_epoch != 0 {
                    return Err(Error::Invalid {
                        field: "schedule last_epoch",
                    });
                }
                match &mut s {
                    EpochSchedule::Chained2(q) => {
                        restore_members(q.schedulers_mut(), &members, initial_lr, 0)?
                    }
                    EpochSchedule::Chained3(q) => {
                        restore_members(q.schedulers_mut(), &members, initial_lr, 0)?
                    }
                    EpochSchedule::Chained4(q) => {
                        restore_members(q.schedulers_mut(), &members, initial_lr, 0)?
                    }
                    _ => return Err(other()),
                }
            }
            _ => return Err(other()),
        }
        Ok(s)
    }
}

impl Schedule {
    /// A copy, or [`Error::OutOfMemory`] (an epoch-driven schedule's box; a
    /// [`CustomSchedule`]'s copy is its own `clone_box`).
    pub(crate) fn try_clone(&self) -> Result<Self, Error> {
        Ok(match self {
            Schedule::Epochs(s) => Schedule::Epochs(crate::try_box((**s).clone())?),
            Schedule::Plateau(p) => Schedule::Plateau(*p),
        })
    }

    /// Its position.
    pub(crate) fn state(&self) -> ScheduleState {
        match self {
            Schedule::Epochs(s) => s.state(),
            Schedule::Plateau(p) => ScheduleState::Plateau {
                best: p.best,
                num_bad_epochs: p.num_bad_epochs,
                cooldown_counter: p.cooldown_counter,
                last_epoch: p.last_epoch,
            },
        }
    }

    /// This schedule (its configuration) at position `state`, checked as the
    /// schedule's own steps would leave it: the same kind (and number of members), a
    /// started schedule (`last_epoch` ≥ 0; -1 for a `SequentialLR` member not yet
    /// reached) whose `base_lr`s are those its start recorded (the group's `initial_lr`,
    /// as each member found it: [`expected_base_lrs`]), finite positions, and
    /// `ReduceLROnPlateau`'s counters within its patience and cooldown. Restored
    /// directly: no step is replayed.
    pub(crate) fn at(&self, state: &ScheduleState, initial_lr: Option<f64>) -> Result<Self, Error> {
        match (self, *state) {
            (Schedule::Epochs(s), state) if !matches!(state, ScheduleState::Plateau { .. }) => {
                Ok(Schedule::Epochs(crate::try_box(s.at(&state, initial_lr)?)?))
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
