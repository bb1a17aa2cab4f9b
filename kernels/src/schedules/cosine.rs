//! `CosineAnnealingLR` and `CosineAnnealingWarmRestarts` (SGDR).

use core::f64::consts::PI;

use super::{
    ClosedForm, Group, Lrs, Progress, Scheduler, TorchLr, at_least_one, attach_group, commit, ep,
    next_epoch, start_on_copy, torch_scheduler,
};
use crate::error::{Error, check, require};

/// torch's `CosineAnnealingLR`: anneal from the base rate to `eta_min` along half a
/// cosine over `t_max` epochs.
///
/// Closed form: `lr_t = η_min + (base − η_min)·(1 + cos(π·t/T))/2`.
///
/// torch steps with a recursion instead, which gradstep reproduces operation by
/// operation:
/// - `lr_t = η_min + (1 + cos(π·t/T))/(1 + cos(π·(t−1)/T))·(lr_{t−1} − η_min)`,
/// - except when `(t − 1 − T) mod 2T = 0` (where that ratio is 0/0):
///   `lr_t = lr_{t−1} + (base − η_min)·(1 − cos(π/T))/2`;
/// - and, where torch raises ZeroDivisionError (T past ~2·10⁸, the epochs next to
///   those, where `1 + cos(π·(t−1)/T)` rounds to 0), the closed form.
///
/// Alone, both forms trace the same curve (and both keep oscillating with period `2T`
/// after `T`), differing only by rounding. In a [`ChainedScheduler`], the recursion
/// scales whatever rate the group holds, which is how torch combines it with other
/// schedules; [`Closed`] gives the closed form.
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | T | `t_max` | (required) | ≥ 1 |
/// | η_min | `eta_min` | 0.0 | finite, ≥ 0 |
///
/// [`ChainedScheduler`]: super::ChainedScheduler
/// [`Closed`]: super::Closed
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealingLr {
    /// Half period, in epochs.
    pub t_max: u64,
    /// Minimum learning rate.
    pub eta_min: f64,
    /// torch's bookkeeping.
    pub progress: Progress,
}

impl CosineAnnealingLr {
    /// `CosineAnnealingLR(T_max, eta_min)`.
    pub fn new(t_max: u64, eta_min: f64) -> Self {
        CosineAnnealingLr {
            t_max,
            eta_min,
            progress: Progress::default(),
        }
    }
}

impl TorchLr for CosineAnnealingLr {
    fn check(&self) -> Result<(), Error> {
        self.validate()
    }
    fn get_lr(&self, p: &Progress, group: &Group, initial: bool) -> Result<Lrs, Error> {
        let (t_max, eta_min, base) = (self.t_max as f64, self.eta_min, p.base_lr);
        let e = p.last_epoch;
        let lr = if initial {
            group.lr
        } else if p.step_count == 1 && e > 0 {
            eta_min + (base - eta_min) * (1.0 + libm::cos(ep(p) * PI / t_max)) / 2.0
        } else if (e - 1)
            .wrapping_sub(self.t_max as i64)
            .rem_euclid(2 * self.t_max as i64)
            == 0
        {
            group.lr + (base - eta_min) * (1.0 - libm::cos(PI / t_max)) / 2.0
        } else {
            let below = 1.0 + libm::cos(PI * (ep(p) - 1.0) / t_max);
            if below == 0.0 {
                // Past T ≈ 2·10⁸ the denominator rounds to 0 next to (t − 1 − T) mod 2T
                // = 0, where torch raises ZeroDivisionError: the closed form instead.
                self.lr_at(base, e as u64)
            } else {
                (1.0 + libm::cos(PI * ep(p) / t_max)) / below * (group.lr - eta_min) + eta_min
            }
        };
        Ok(Lrs::lr(lr))
    }
    fn closed(&self, p: &Progress, _: &Group) -> Result<Lrs, Error> {
        Ok(Lrs::lr(self.lr_at(p.base_lr, p.last_epoch as u64)))
    }
}

impl ClosedForm for CosineAnnealingLr {
    fn validate(&self) -> Result<(), Error> {
        at_least_one("t_max", self.t_max)?;
        require(
            self.t_max <= i64::MAX as u64 / 2,
            "t_max",
            self.t_max as f64,
            "must be < 2^62",
        )?;
        check::non_negative("eta_min", self.eta_min)
    }
    fn lr_at(&self, base_lr: f64, t: u64) -> f64 {
        let t_max = self.t_max.max(1) as f64;
        self.eta_min + (base_lr - self.eta_min) * (1.0 + libm::cos(PI * t as f64 / t_max)) / 2.0
    }
}

/// torch's `CosineAnnealingWarmRestarts` (SGDR, Loshchilov & Hutter): cosine annealing
/// that restarts from the base rate every `T_i` epochs, with `T_i` multiplied by
/// `t_mult` at each restart.
///
/// `lr = η_min + (base − η_min)·(1 + cos(π·T_cur/T_i))/2`, where `T_cur` counts epochs
/// since the last restart and `T_0 = t_0`. [`step`](Scheduler::step) advances one
/// epoch; [`step_to`](CosineAnnealingWarmRestarts::step_to) jumps to a fractional epoch
/// (torch's `step(epoch + i / iters)` idiom for per-batch annealing).
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | T_0 | `t_0` | (required) | ≥ 1 |
/// | T_mult | `t_mult` | 1 | ≥ 1 |
/// | η_min | `eta_min` | 0.0 | finite, ≥ 0 |
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealingWarmRestarts {
    /// Length of the first period.
    pub t_0: u64,
    /// Growth of the period at each restart.
    pub t_mult: u64,
    /// Minimum learning rate.
    pub eta_min: f64,
    /// Length of the current period (`T_i`).
    pub t_i: f64,
    /// Epochs since the last restart (`T_cur`; fractional after `step_to`).
    pub t_cur: f64,
    /// torch's bookkeeping.
    pub progress: Progress,
}

impl CosineAnnealingWarmRestarts {
    /// `CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)`.
    pub fn new(t_0: u64, t_mult: u64, eta_min: f64) -> Self {
        CosineAnnealingWarmRestarts {
            t_0,
            t_mult,
            eta_min,
            t_i: t_0 as f64,
            t_cur: -1.0,
            progress: Progress::default(),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        at_least_one("t_0", self.t_0)?;
        at_least_one("t_mult", self.t_mult)?;
        check::non_negative("eta_min", self.eta_min)
    }

    fn lr(&self, t_cur: f64, t_i: f64) -> f64 {
        let (eta_min, base) = (self.eta_min, self.progress.base_lr);
        eta_min + (base - eta_min) * (1.0 + libm::cos(PI * t_cur / t_i)) / 2.0
    }

    /// torch's `step(epoch)`: sets the (possibly fractional) epoch and writes its
    /// learning rate. `epoch` must be finite and `>= 0`.
    pub fn step_to(&mut self, group: &mut Group, epoch: f64) -> Result<(), Error> {
        self.validate()?;
        check::non_negative("epoch", epoch)?;
        require(epoch < 9.0e15, "epoch", epoch, "must be < 2^53")?;
        let (t_0, t_mult) = (self.t_0 as f64, self.t_mult as f64);
        let (t_cur, t_i) = if epoch >= t_0 {
            if self.t_mult == 1 {
                (epoch % t_0, self.t_i)
            } else {
                let n =
                    libm::trunc(libm::log(epoch / t_0 * (t_mult - 1.0) + 1.0) / libm::log(t_mult));
                let grown = libm::pow(t_mult, n);
                (epoch - t_0 * (grown - 1.0) / (t_mult - 1.0), t_0 * grown)
            }
        } else {
            (epoch, t_0)
        };
        commit(group, self.lr(t_cur, t_i), None)?;
        self.t_cur = t_cur;
        self.t_i = t_i;
        self.progress.last_epoch = libm::floor(epoch) as i64;
        Ok(())
    }
}

impl Scheduler for CosineAnnealingWarmRestarts {
    fn start(&mut self, group: &mut Group) -> Result<(), Error> {
        let saved = (self.progress, self.t_i, self.t_cur);
        start_on_copy(self, group).inspect_err(|_| (self.progress, self.t_i, self.t_cur) = saved)
    }
    fn step(&mut self, group: &mut Group) -> Result<(), Error> {
        if self.progress.last_epoch < 0 {
            return self.step_to(group, 0.0);
        }
        self.validate()?;
        let epoch = next_epoch(self.progress.last_epoch)?;
        let (mut t_cur, mut t_i) = (self.t_cur + 1.0, self.t_i);
        if t_cur >= t_i {
            t_cur %= t_i;
            t_i *= self.t_mult as f64;
        }
        commit(group, self.lr(t_cur, t_i), None)?;
        (self.t_cur, self.t_i, self.progress.last_epoch) = (t_cur, t_i, epoch);
        Ok(())
    }
    fn last_epoch(&self) -> i64 {
        self.progress.last_epoch
    }
    fn attach(&mut self, group: &mut Group) -> Result<(), Error> {
        self.validate()?;
        self.progress = Progress {
            base_lr: attach_group(group)?,
            ..Progress::default()
        };
        self.t_i = self.t_0 as f64;
        self.t_cur = -1.0;
        Ok(())
    }
    fn initial_step(&mut self, group: &mut Group) -> Result<(), Error> {
        self.progress.step_count = 0;
        self.step(group)
    }
    fn restart(&mut self, group: &mut Group) -> Result<(), Error> {
        self.validate()?;
        commit(group, self.lr(self.t_cur, self.t_i), None)?;
        self.progress.last_epoch = 0;
        Ok(())
    }
    fn undo(&mut self) {
        self.progress.last_epoch = self.progress.last_epoch.saturating_sub(1);
    }
}

torch_scheduler! {
    impl[] CosineAnnealingLr;
}
