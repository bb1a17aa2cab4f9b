//! `OneCycleLR`: the 1cycle policy (Smith & Topin, 2018).

use core::f64::consts::PI;

use super::{Group, Lrs, Progress, TorchLr, at_least_one, attach_group, ep, torch_scheduler};
use crate::error::{Error, check, require};

/// How [`OneCycleLr`] moves between two values within a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anneal {
    /// `end + (start − end)/2·(1 + cos(π·pct))`.
    Cos,
    /// `(end − start)·pct + start`.
    Linear,
}

impl Anneal {
    fn apply(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * (libm::cos(PI * pct) + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }
}

/// torch's `OneCycleLR`: warm up from `max_lr/div_factor` to `max_lr`, then anneal to
/// `max_lr/(div_factor·final_div_factor)`, over `total_steps`; momentum (or β₁) moves
/// the opposite way between `max_momentum` and `base_momentum`.
///
/// With `T = total_steps`, `p = pct_start`, `lr₀ = max_lr/div_factor` and
/// `lr_min = lr₀/final_div_factor`, the phases end at step (and go between):
/// - two phases: `p·T − 1` (lr₀ → max_lr, max_m → base_m), `T − 1` (max_lr → lr_min,
///   base_m → max_m);
/// - `three_phase`: `p·T − 1` (lr₀ → max_lr), `2p·T − 2` (max_lr → lr₀, momentum back
///   up), `T − 1` (lr₀ → lr_min, momentum at max_m).
///
/// Within a phase starting at step `a` (0 for the first) and ending at `b`,
/// `pct = (t − a)/(b − a)` and the value is `anneal(start, end, pct)`.
///
/// Differences from torch, all on configurations or steps torch does not handle:
/// `pct_start·total_steps = 1` is refused (torch divides by zero at step 0); stepping
/// past `total_steps` returns [`Error::ScheduleFinished`] (torch raises too); and at
/// step `total_steps` itself, which torch allows but extrapolates beyond the last phase
/// (a *negative* learning rate with linear annealing), gradstep holds the final values
/// (`lr_min`, `max_momentum`).
///
/// | field | default | valid |
/// |---|---|---|
/// | `max_lr` | (required) | finite, ≥ 0 |
/// | `total_steps` | (required) | ≥ 1 (torch's `epochs·steps_per_epoch`) |
/// | `pct_start` | 0.3 | [0, 1] |
/// | `anneal_strategy` | `Cos` | |
/// | `cycle_momentum` | `true` | |
/// | `base_momentum` | 0.85 | finite, ≥ 0 |
/// | `max_momentum` | 0.95 | finite, ≥ 0 |
/// | `div_factor` | 25.0 | finite, > 0 |
/// | `final_div_factor` | 1e4 | finite, > 0, lr₀/final_div_factor finite |
/// | `three_phase` | `false` | |
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycleLr {
    /// The peak learning rate.
    pub max_lr: f64,
    /// Steps in the cycle.
    pub total_steps: u64,
    /// Fraction of the cycle spent warming up.
    pub pct_start: f64,
    /// Cosine or linear annealing.
    pub anneal_strategy: Anneal,
    /// Whether to cycle the group's momentum.
    pub cycle_momentum: bool,
    /// Momentum at the learning-rate peak.
    pub base_momentum: f64,
    /// Momentum at the start and end.
    pub max_momentum: f64,
    /// `initial_lr = max_lr/div_factor`.
    pub div_factor: f64,
    /// `min_lr = initial_lr/final_div_factor`.
    pub final_div_factor: f64,
    /// Use the three-phase variant (fast.ai's original).
    pub three_phase: bool,
    /// torch's bookkeeping.
    pub progress: Progress,
}

/// One phase: where it ends and which values it moves between.
struct Phase {
    end_step: f64,
    lr: (f64, f64),
    momentum: (f64, f64),
}

impl OneCycleLr {
    /// `OneCycleLR(max_lr, total_steps)` with torch's defaults for everything else.
    pub fn new(max_lr: f64, total_steps: u64) -> Self {
        OneCycleLr {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal_strategy: Anneal::Cos,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
            progress: Progress::default(),
        }
    }

    fn initial_lr(&self) -> f64 {
        self.max_lr / self.div_factor
    }

    fn phases(&self) -> ([Phase; 3], usize) {
        let total = self.total_steps as f64;
        let (initial, peak) = (self.initial_lr(), self.max_lr);
        let min = initial / self.final_div_factor;
        let (low_m, high_m) = (self.base_momentum, self.max_momentum);
        let warmup = Phase {
            end_step: self.pct_start * total - 1.0,
            lr: (initial, peak),
            momentum: (high_m, low_m),
        };
        if self.three_phase {
            let phases = [
                warmup,
                Phase {
                    end_step: 2.0 * self.pct_start * total - 2.0,
                    lr: (peak, initial),
                    momentum: (low_m, high_m),
                },
                Phase {
                    end_step: total - 1.0,
                    lr: (initial, min),
                    momentum: (high_m, high_m),
                },
            ];
            (phases, 3)
        } else {
            let last = Phase {
                end_step: total - 1.0,
                lr: (peak, min),
                momentum: (low_m, high_m),
            };
            let unused = Phase {
                end_step: total - 1.0,
                lr: (min, min),
                momentum: (high_m, high_m),
            };
            ([warmup, last, unused], 2)
        }
    }
}

impl TorchLr for OneCycleLr {
    fn check(&self) -> Result<(), Error> {
        check::non_negative("max_lr", self.max_lr)?;
        at_least_one("total_steps", self.total_steps)?;
        check::unit_closed("pct_start", self.pct_start)?;
        require(
            self.pct_start * self.total_steps as f64 != 1.0,
            "pct_start",
            self.pct_start,
            "pct_start * total_steps must not be 1 (a warm-up phase of zero steps)",
        )?;
        check::non_negative("base_momentum", self.base_momentum)?;
        check::non_negative("max_momentum", self.max_momentum)?;
        check::positive("div_factor", self.div_factor)?;
        check::positive("final_div_factor", self.final_div_factor)?;
        check::finite("initial_lr", self.initial_lr())?;
        let min_lr = self.initial_lr() / self.final_div_factor;
        require(
            crate::rules::finite(min_lr),
            "final_div_factor",
            self.final_div_factor,
            "initial_lr / final_div_factor (the final rate) must be finite",
        )
    }
    fn setup(&mut self, group: &mut Group) -> Result<f64, Error> {
        group.initial_lr = Some(self.initial_lr());
        if self.cycle_momentum {
            group.momentum = Some(self.max_momentum);
        }
        attach_group(group)
    }
    fn get_lr(&self, p: &Progress, _: &Group, _: bool) -> Result<Lrs, Error> {
        if p.last_epoch as u64 > self.total_steps {
            return Err(Error::ScheduleFinished {
                total_steps: self.total_steps,
            });
        }
        let step = ep(p);
        let (phases, count) = self.phases();
        let mut start = 0.0;
        for (i, phase) in phases[..count].iter().enumerate() {
            if step <= phase.end_step || i == count - 1 {
                let length = phase.end_step - start;
                // Beyond the last phase (step == total_steps) torch extrapolates; hold
                // the end values instead.
                let pct = if length > 0.0 {
                    ((step - start) / length).min(1.0)
                } else {
                    1.0
                };
                let anneal = self.anneal_strategy;
                let lr = anneal.apply(phase.lr.0, phase.lr.1, pct);
                let momentum = self
                    .cycle_momentum
                    .then(|| anneal.apply(phase.momentum.0, phase.momentum.1, pct));
                return Ok(Lrs { lr, momentum });
            }
            start = phase.end_step;
        }
        unreachable_phase()
    }
}

/// The loop above always returns in its last iteration (`count >= 2`).
#[cold]
fn unreachable_phase() -> Result<Lrs, Error> {
    Err(Error::ScheduleFinished { total_steps: 0 })
}

torch_scheduler! {
    impl[] OneCycleLr;
}
