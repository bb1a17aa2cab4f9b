//! `SequentialLR` and `ChainedScheduler`: schedules built from schedules.

use super::step::{bounded, sorted};
use super::{Group, Scheduler, next_epoch, start_on_copy};
use crate::error::{Error, require};

/// torch's `SequentialLR`: run `schedulers[0]` until `milestones[0]`, then
/// `schedulers[1]` until `milestones[1]`, and so on.
///
/// At each milestone the next schedule restarts at its epoch 0 (its closed form at 0
/// where it has one, i.e. from the base learning rate), and from then on steps as it
/// would alone. [`start`](Scheduler::start) reproduces torch's constructor exactly:
/// every member is started in order (as constructing them in torch does), the group's
/// learning rate is reset to `initial_lr`, every member's epoch is moved back by one,
/// and the first member takes the initial step.
///
/// Members of different types go through [`AnyScheduler`](super::AnyScheduler):
///
/// ```
/// use gradstep::schedules::{AnyScheduler, CosineAnnealingLr, Group, LinearLr, Scheduler, SequentialLr};
///
/// let warmup = LinearLr { start_factor: 0.1, total_iters: 5, ..LinearLr::default() };
/// let decay = CosineAnnealingLr::new(95, 0.0);
/// let mut schedule = SequentialLr::new([AnyScheduler::from(warmup), decay.into()], &[5])?;
/// let mut group = Group::new(1.0);
/// schedule.start(&mut group)?;
/// assert!((group.lr - 0.1).abs() < 1e-15);
/// for _ in 0..5 {
///     schedule.step(&mut group)?;
/// }
/// assert_eq!(group.lr, 1.0); // the cosine starts from the base rate
/// # Ok::<(), gradstep::Error>(())
/// ```
///
/// | field | valid |
/// |---|---|
/// | `schedulers` | `N ≥ 1` |
/// | `milestones` | `N − 1` entries, strictly increasing |
///
/// torch raises (`NotImplementedError`) when a `SequentialLR` or `ChainedScheduler` is
/// itself a non-first member of a `SequentialLR`; gradstep restarts its members instead.
#[derive(Clone, Debug)]
pub struct SequentialLr<S, const N: usize> {
    schedulers: [S; N],
    milestones: heapless::Vec<u64, N>,
    last_epoch: i64,
}

impl<S: Scheduler + Clone, const N: usize> SequentialLr<S, N> {
    /// `SequentialLR(schedulers, milestones)`.
    pub fn new(schedulers: [S; N], milestones: &[u64]) -> Result<Self, Error> {
        require(N >= 1, "schedulers", N as f64, "must not be empty")?;
        require(
            milestones.len() + 1 == N,
            "milestones",
            milestones.len() as f64,
            "must have one entry fewer than schedulers",
        )?;
        sorted(milestones, "milestones", true)?;
        Ok(SequentialLr {
            schedulers,
            milestones: bounded(milestones, "milestones")?,
            last_epoch: -1,
        })
    }

    /// The members.
    pub fn schedulers(&self) -> &[S; N] {
        &self.schedulers
    }

    /// The milestones.
    pub fn milestones(&self) -> &[u64] {
        &self.milestones
    }

    /// The members, to restore their saved state directly (a checkpoint loader), instead
    /// of replaying every epoch. Their positions must be ones stepping reaches.
    pub fn schedulers_mut(&mut self) -> &mut [S; N] {
        &mut self.schedulers
    }

    /// Sets the composite's own epoch counter (torch's `SequentialLR.last_epoch`), for
    /// restoring a saved state together with [`SequentialLr::schedulers_mut`].
    pub fn set_last_epoch(&mut self, epoch: i64) {
        self.last_epoch = epoch;
    }

    /// Which member runs at `epoch` (Python's `bisect_right(milestones, epoch)`).
    fn member(&self, epoch: i64) -> usize {
        self.milestones
            .iter()
            .filter(|&&m| i64::try_from(m).is_ok_and(|m| m <= epoch))
            .count()
    }

    /// Runs `f` on copies, committing only if it succeeds.
    fn atomically(
        &mut self,
        group: &mut Group,
        f: impl FnOnce(&mut Self, &mut Group) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let (mut me, mut g) = (self.clone(), *group);
        f(&mut me, &mut g)?;
        (*self, *group) = (me, g);
        Ok(())
    }
}

impl<S: Scheduler + Clone, const N: usize> Scheduler for SequentialLr<S, N> {
    fn start(&mut self, group: &mut Group) -> Result<(), Error> {
        // `atomically` works on copies already: the two halves on them.
        self.atomically(group, |me, g| {
            me.attach(g)?;
            me.initial_step(g)
        })
    }
    fn step(&mut self, group: &mut Group) -> Result<(), Error> {
        self.atomically(group, |me, g| {
            me.last_epoch = next_epoch(me.last_epoch)?;
            let idx = me.member(me.last_epoch);
            if idx > 0 && me.milestones[idx - 1] as i64 == me.last_epoch {
                me.schedulers[idx].restart(g)
            } else {
                me.schedulers[idx].step(g)
            }
        })
    }
    fn last_epoch(&self) -> i64 {
        self.last_epoch
    }
    fn attach(&mut self, group: &mut Group) -> Result<(), Error> {
        self.atomically(group, |me, g| {
            for s in me.schedulers.iter_mut() {
                s.start(g)?;
            }
            if let Some(initial) = g.initial_lr {
                g.lr = initial;
            }
            for s in me.schedulers.iter_mut() {
                s.undo();
            }
            me.last_epoch = 0;
            Ok(())
        })
    }
    fn initial_step(&mut self, group: &mut Group) -> Result<(), Error> {
        let idx = self.member(0);
        self.atomically(group, |me, g| me.schedulers[idx].initial_step(g))
    }
    fn restart(&mut self, group: &mut Group) -> Result<(), Error> {
        self.atomically(group, |me, g| {
            me.last_epoch = 0;
            let idx = me.member(0);
            me.schedulers[idx].restart(g)
        })
    }
    fn undo(&mut self) {
        for s in self.schedulers.iter_mut() {
            s.undo();
        }
    }
}

/// torch's `ChainedScheduler`: step every member, in order, on the same group, so that
/// their chainable updates compose (e.g. a [`ConstantLr`](super::ConstantLr) warmup
/// factor on top of an [`ExponentialLr`](super::ExponentialLr) decay).
///
/// [`start`](Scheduler::start) starts the members in order, which is what constructing
/// them on one optimizer does in torch. Members of different types go through
/// [`AnyScheduler`](super::AnyScheduler).
#[derive(Clone, Debug)]
pub struct ChainedScheduler<S, const N: usize> {
    schedulers: [S; N],
}

impl<S: Scheduler + Clone, const N: usize> ChainedScheduler<S, N> {
    /// `ChainedScheduler(schedulers)`.
    pub fn new(schedulers: [S; N]) -> Result<Self, Error> {
        require(N >= 1, "schedulers", N as f64, "must not be empty")?;
        Ok(ChainedScheduler { schedulers })
    }

    /// The members.
    pub fn schedulers(&self) -> &[S; N] {
        &self.schedulers
    }

    /// The members, to restore their saved state directly (a checkpoint loader).
    pub fn schedulers_mut(&mut self) -> &mut [S; N] {
        &mut self.schedulers
    }

    fn each(
        &mut self,
        group: &mut Group,
        f: impl Fn(&mut S, &mut Group) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let (mut members, mut g) = (self.schedulers.clone(), *group);
        for s in members.iter_mut() {
            f(s, &mut g)?;
        }
        (self.schedulers, *group) = (members, g);
        Ok(())
    }
}

impl<S: Scheduler + Clone, const N: usize> Scheduler for ChainedScheduler<S, N> {
    fn start(&mut self, group: &mut Group) -> Result<(), Error> {
        let saved = self.schedulers.clone();
        start_on_copy(self, group).inspect_err(|_| self.schedulers = saved)
    }
    fn step(&mut self, group: &mut Group) -> Result<(), Error> {
        self.each(group, |s, g| s.step(g))
    }
    fn last_epoch(&self) -> i64 {
        self.schedulers.last().map_or(-1, |s| s.last_epoch())
    }
    fn attach(&mut self, group: &mut Group) -> Result<(), Error> {
        self.each(group, |s, g| s.start(g))
    }
    fn initial_step(&mut self, _: &mut Group) -> Result<(), Error> {
        Ok(())
    }
    fn restart(&mut self, group: &mut Group) -> Result<(), Error> {
        self.each(group, |s, g| s.restart(g))
    }
    fn undo(&mut self) {
        for s in self.schedulers.iter_mut() {
            s.undo();
        }
    }
}
