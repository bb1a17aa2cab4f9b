//! `CyclicLR`: cyclical learning rates (Smith, 2017), with optional momentum cycling.

use super::{Group, Lrs, Progress, TorchLr, at_least_one, attach_group, ep, torch_scheduler};
use crate::error::{Error, check, require};
use crate::rules::powf;

/// How [`CyclicLr`] scales the amplitude of each cycle.
#[derive(Clone, Copy, Debug)]
pub enum CyclicMode {
    /// Constant amplitude (`scale = 1`).
    Triangular,
    /// Amplitude halved every cycle (`scale = 1/2^(cycle−1)`).
    Triangular2,
    /// Amplitude `gamma^t` at epoch `t` (`gamma` in (0, 1]).
    ExpRange,
    /// A user function of the cycle number or of the epoch.
    Custom {
        /// The amplitude scale; its argument is the 1-based cycle number or the epoch.
        scale_fn: fn(f64) -> f64,
        /// Which argument `scale_fn` receives.
        scale_mode: ScaleMode,
    },
}

/// What [`CyclicMode::Custom`]'s function is evaluated at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleMode {
    /// The 1-based cycle number.
    Cycle,
    /// The epoch (iteration) number.
    Iterations,
}

/// torch's `CyclicLR`: the learning rate moves linearly from `base_lr` up to `max_lr`
/// over `step_size_up` epochs and back down over `step_size_down`, forever, with the
/// amplitude scaled per cycle or per epoch; momentum (or β₁) cycles inversely.
///
/// With `S = up + down`, `r = up/S`, `c = ⌊1 + t/S⌋` and `x = 1 + t/S − c`:
/// `f = x/r` if `x ≤ r`, else `(x − 1)/(r − 1)`;
/// `lr_t = base + (max − base)·f·scale`, `momentum_t = max_m − (max_m − base_m)·f·scale`.
///
/// This is the seeds' cyclic schedule exactly: with `up = down = s`, triangular mode
/// gives `lr = base + (max − base)·max(0, 1 − |t/s − 2c + 1|)`, `c = ⌊1 + t/(2s)⌋`.
///
/// | field | default | valid |
/// |---|---|---|
/// | `base_lr` | (required) | finite, ≥ 0 |
/// | `max_lr` | (required) | finite, ≥ 0 |
/// | `step_size_up` | 2000 | ≥ 1 |
/// | `step_size_down` | `None` (= up) | any |
/// | `mode` | `Triangular` | |
/// | `gamma` | 1.0 | (0, 1] |
/// | `cycle_momentum` | `true` | |
/// | `base_momentum` | 0.8 | finite, ≥ 0 |
/// | `max_momentum` | 0.9 | finite, ≥ 0 |
///
/// [`start`](super::Scheduler::start) sets the group's learning rate to `base_lr`
/// and, with `cycle_momentum`, its momentum to `max_momentum`, as torch's constructor
/// does.
#[derive(Clone, Copy, Debug)]
pub struct CyclicLr {
    /// Lower bound of the cycle.
    pub base_lr: f64,
    /// Upper bound of the cycle (reached only with `scale = 1`).
    pub max_lr: f64,
    /// Epochs from `base_lr` up to `max_lr`.
    pub step_size_up: u64,
    /// Epochs back down; `None` means `step_size_up`.
    pub step_size_down: Option<u64>,
    /// Amplitude scaling.
    pub mode: CyclicMode,
    /// The base of [`CyclicMode::ExpRange`].
    pub gamma: f64,
    /// Whether to cycle the group's momentum between `max_momentum` and `base_momentum`.
    pub cycle_momentum: bool,
    /// Momentum at the learning-rate peak.
    pub base_momentum: f64,
    /// Momentum at the learning-rate trough.
    pub max_momentum: f64,
    /// torch's bookkeeping.
    pub progress: Progress,
}

impl CyclicLr {
    /// `CyclicLR(base_lr, max_lr)` with torch's defaults for everything else.
    pub fn new(base_lr: f64, max_lr: f64) -> Self {
        CyclicLr {
            base_lr,
            max_lr,
            step_size_up: 2000,
            step_size_down: None,
            mode: CyclicMode::Triangular,
            gamma: 1.0,
            cycle_momentum: true,
            base_momentum: 0.8,
            max_momentum: 0.9,
            progress: Progress::default(),
        }
    }

    fn scale(&self, cycle: f64, epoch: f64) -> f64 {
        match self.mode {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / powf(2.0, cycle - 1.0),
            CyclicMode::ExpRange => powf(self.gamma, epoch),
            CyclicMode::Custom {
                scale_fn,
                scale_mode: ScaleMode::Cycle,
            } => scale_fn(cycle),
            CyclicMode::Custom {
                scale_fn,
                scale_mode: ScaleMode::Iterations,
            } => scale_fn(epoch),
        }
    }
}

impl TorchLr for CyclicLr {
    fn check(&self) -> Result<(), Error> {
        check::non_negative("base_lr", self.base_lr)?;
        check::non_negative("max_lr", self.max_lr)?;
        at_least_one("step_size_up", self.step_size_up)?;
        if let CyclicMode::ExpRange = self.mode {
            require(
                self.gamma > 0.0 && self.gamma <= 1.0,
                "gamma",
                self.gamma,
                "must be in (0, 1]",
            )?;
        }
        check::non_negative("base_momentum", self.base_momentum)?;
        check::non_negative("max_momentum", self.max_momentum)
    }
    fn setup(&mut self, group: &mut Group) -> Result<f64, Error> {
        group.lr = self.base_lr;
        if self.cycle_momentum {
            group.momentum = Some(self.max_momentum);
        }
        attach_group(group)
    }
    fn get_lr(&self, p: &Progress, _: &Group, initial: bool) -> Result<Lrs, Error> {
        let up = self.step_size_up as f64;
        let total = up + self.step_size_down.map_or(up, |d| d as f64);
        let ratio = up / total;
        let cycle = libm::floor(1.0 + ep(p) / total);
        let x = 1.0 + ep(p) / total - cycle;
        let factor = if x <= ratio {
            x / ratio
        } else {
            (x - 1.0) / (ratio - 1.0)
        };
        let scale = self.scale(cycle, ep(p));
        // During torch's initial step `base_lrs` still holds the group's `initial_lr`;
        // the constructor replaces it with `base_lr` afterwards.
        let base = if initial { p.base_lr } else { self.base_lr };
        let lr = base + (self.max_lr - base) * factor * scale;
        let momentum = self.cycle_momentum.then_some(
            self.max_momentum - (self.max_momentum - self.base_momentum) * factor * scale,
        );
        Ok(Lrs { lr, momentum })
    }
}

torch_scheduler! {
    impl[] CyclicLr;
}
