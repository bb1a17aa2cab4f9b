//! Learning-rate schedules from C: a `gradstep_schedule_config` (a kind and its
//! parameters, `gradstep_schedule_default(kind)` filled with torch's defaults) turned
//! into a `gradstep_schedule` handle, which keeps the learning rate (and, for the
//! cycling kinds, the momentum) of one parameter group. Composites
//! (SequentialLR, ChainedScheduler) take up to 4 members.

use core::ffi::c_void;

use gradstep::Error;
use gradstep::schedules::Progress;
use gradstep::schedules::{
    Anneal, AnyScheduler, ChainedScheduler, ConstantLr, CosineAnnealingLr,
    CosineAnnealingWarmRestarts, CyclicLr, CyclicMode, Decay, ExponentialLr, Group, LinearLr,
    MultiStepLr, Noam, OneCycleLr, PiecewiseConstant, PlateauMode, PolynomialLr, ReduceLrOnPlateau,
    Scheduler, SequentialLr, StepLr, ThresholdMode, WarmupDecay,
};

use crate::boundary::{Raw, Span, check, disjoint, guard, read, vec_with_capacity};
use crate::registry::{self, Kind};
use crate::status::{GRADSTEP_INVALID_HYPERPARAMETER, GRADSTEP_UNKNOWN_KIND, gradstep_status};

/// `StepLR`.
pub const GRADSTEP_SCHEDULE_STEP: u32 = 1;
/// `MultiStepLR`.
pub const GRADSTEP_SCHEDULE_MULTISTEP: u32 = 2;
/// `ConstantLR`.
pub const GRADSTEP_SCHEDULE_CONSTANT: u32 = 3;
/// `LinearLR`.
pub const GRADSTEP_SCHEDULE_LINEAR: u32 = 4;
/// `ExponentialLR`.
pub const GRADSTEP_SCHEDULE_EXPONENTIAL: u32 = 5;
/// `PolynomialLR`.
pub const GRADSTEP_SCHEDULE_POLYNOMIAL: u32 = 6;
/// `CosineAnnealingLR`.
pub const GRADSTEP_SCHEDULE_COSINE: u32 = 7;
/// `CosineAnnealingWarmRestarts`.
pub const GRADSTEP_SCHEDULE_COSINE_WARM_RESTARTS: u32 = 8;
/// `CyclicLR`.
pub const GRADSTEP_SCHEDULE_CYCLIC: u32 = 9;
/// `OneCycleLR`.
pub const GRADSTEP_SCHEDULE_ONE_CYCLE: u32 = 10;
/// Linear warmup into a decay (optax `warmup_*_schedule`).
pub const GRADSTEP_SCHEDULE_WARMUP_DECAY: u32 = 11;
/// The Transformer's inverse-square-root schedule.
pub const GRADSTEP_SCHEDULE_NOAM: u32 = 12;
/// Piecewise constant (optax `piecewise_constant_schedule`).
pub const GRADSTEP_SCHEDULE_PIECEWISE_CONSTANT: u32 = 13;
/// `ReduceLROnPlateau` (stepped with a metric).
pub const GRADSTEP_SCHEDULE_PLATEAU: u32 = 14;
/// `LambdaLR`: `lr = base · f(epoch)` with a C function.
pub const GRADSTEP_SCHEDULE_LAMBDA: u32 = 15;
/// `MultiplicativeLR`: `lr = lr · f(epoch)` with a C function.
pub const GRADSTEP_SCHEDULE_MULTIPLICATIVE: u32 = 16;

/// A learning-rate factor as a function of the epoch, with the caller's `user` pointer.
pub type gradstep_lr_lambda = Option<unsafe extern "C" fn(epoch: u64, user: *mut c_void) -> f64>;

/// `LambdaLR` / `MultiplicativeLR`: the function and what it is called with.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_lambda_lr {
    /// The factor at each epoch (required, non-NULL). It must not unwind or longjmp.
    pub lr_lambda: gradstep_lr_lambda,
    /// Passed to every call.
    pub user: *mut c_void,
}

/// Most milestones / boundaries a C schedule can have.
pub const GRADSTEP_SCHEDULE_MAX_POINTS: usize = 16;

/// `StepLR`: multiply by `gamma` every `step_size` epochs.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_step_lr {
    /// Epochs between decays (required).
    pub step_size: u64,
    /// Factor (0.1).
    pub gamma: f64,
}

/// `MultiStepLR`: multiply by `gamma` at each of the first `count` milestones.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_multistep_lr {
    /// Non-decreasing epochs.
    pub milestones: [u64; GRADSTEP_SCHEDULE_MAX_POINTS],
    /// How many milestones are used.
    pub count: u32,
    /// Factor (0.1).
    pub gamma: f64,
}

/// `ConstantLR`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_constant_lr {
    /// Factor until `total_iters` (1/3).
    pub factor: f64,
    /// (5).
    pub total_iters: u64,
}

/// `LinearLR`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_linear_lr {
    /// (1/3).
    pub start_factor: f64,
    /// (1.0).
    pub end_factor: f64,
    /// (5).
    pub total_iters: u64,
}

/// `ExponentialLR`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_exponential_lr {
    /// Factor per epoch (required).
    pub gamma: f64,
}

/// `PolynomialLR`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_polynomial_lr {
    /// (5).
    pub total_iters: u64,
    /// (1.0).
    pub power: f64,
}

/// `CosineAnnealingLR`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_cosine_lr {
    /// Half period (required).
    pub t_max: u64,
    /// (0).
    pub eta_min: f64,
}

/// `CosineAnnealingWarmRestarts`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_cosine_warm_restarts {
    /// First period (required).
    pub t_0: u64,
    /// Period growth (1).
    pub t_mult: u64,
    /// (0).
    pub eta_min: f64,
}

/// `CyclicLR`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_cyclic_lr {
    /// (required).
    pub base_lr: f64,
    /// (required).
    pub max_lr: f64,
    /// (2000).
    pub step_size_up: u64,
    /// Used if `has_step_size_down` (else = up).
    pub step_size_down: u64,
    /// (0).
    pub has_step_size_down: u8,
    /// 0 triangular, 1 triangular2, 2 exp_range (0).
    pub mode: u32,
    /// exp_range base (1.0).
    pub gamma: f64,
    /// (1).
    pub cycle_momentum: u8,
    /// (0.8).
    pub base_momentum: f64,
    /// (0.9).
    pub max_momentum: f64,
}

/// `OneCycleLR`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_one_cycle_lr {
    /// (required).
    pub max_lr: f64,
    /// (required).
    pub total_steps: u64,
    /// (0.3).
    pub pct_start: f64,
    /// 0 cos, 1 linear (0).
    pub anneal_linear: u8,
    /// (1).
    pub cycle_momentum: u8,
    /// (0).
    pub three_phase: u8,
    /// (0.85).
    pub base_momentum: f64,
    /// (0.95).
    pub max_momentum: f64,
    /// (25).
    pub div_factor: f64,
    /// (1e4).
    pub final_div_factor: f64,
}

/// Linear warmup into a decay.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_warmup_decay {
    /// Warmup steps (required).
    pub warmup_steps: u64,
    /// Rate at step 0 as a fraction of the base rate (0).
    pub start_factor: f64,
    /// 0 cosine, 1 linear, 2 exponential (0).
    pub decay: u32,
    /// Cosine/linear: steps of decay; exponential: steps per factor `rate`.
    pub decay_steps: u64,
    /// Final (or, exponential, lowest) rate as a fraction of the base rate (0).
    pub end_factor: f64,
    /// Cosine exponent (1).
    pub exponent: f64,
    /// Exponential rate in (0, 1] (0.5).
    pub rate: f64,
    /// Exponential: whole steps (0).
    pub staircase: u8,
    /// Exponential: whether `end_factor` bounds the decay (0).
    pub has_end_factor: u8,
}

/// The Transformer's "noam" schedule.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_noam {
    /// (required).
    pub d_model: u64,
    /// (required).
    pub warmup_steps: u64,
    /// (1).
    pub factor: f64,
}

/// Piecewise constant: from `boundaries[i]` on, the rate is multiplied by `scales[i]`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_piecewise_constant {
    /// Strictly increasing.
    pub boundaries: [u64; GRADSTEP_SCHEDULE_MAX_POINTS],
    /// Factors.
    pub scales: [f64; GRADSTEP_SCHEDULE_MAX_POINTS],
    /// How many are used.
    pub count: u32,
}

/// `ReduceLROnPlateau`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gradstep_plateau {
    /// 0 min, 1 max (0).
    pub mode_max: u8,
    /// (0.1).
    pub factor: f64,
    /// (10).
    pub patience: u64,
    /// (1e-4).
    pub threshold: f64,
    /// 0 rel, 1 abs (0).
    pub threshold_abs: u8,
    /// (0).
    pub cooldown: u64,
    /// (0).
    pub min_lr: f64,
    /// (1e-8).
    pub eps: f64,
}

/// The parameters of a schedule; the member named by the config's `kind` is used.
#[repr(C)]
#[derive(Clone, Copy)]
pub union gradstep_schedule_params {
    /// [`GRADSTEP_SCHEDULE_STEP`].
    pub step: gradstep_step_lr,
    /// [`GRADSTEP_SCHEDULE_MULTISTEP`].
    pub multistep: gradstep_multistep_lr,
    /// [`GRADSTEP_SCHEDULE_CONSTANT`].
    pub constant: gradstep_constant_lr,
    /// [`GRADSTEP_SCHEDULE_LINEAR`].
    pub linear: gradstep_linear_lr,
    /// [`GRADSTEP_SCHEDULE_EXPONENTIAL`].
    pub exponential: gradstep_exponential_lr,
    /// [`GRADSTEP_SCHEDULE_POLYNOMIAL`].
    pub polynomial: gradstep_polynomial_lr,
    /// [`GRADSTEP_SCHEDULE_COSINE`].
    pub cosine: gradstep_cosine_lr,
    /// [`GRADSTEP_SCHEDULE_COSINE_WARM_RESTARTS`].
    pub cosine_warm_restarts: gradstep_cosine_warm_restarts,
    /// [`GRADSTEP_SCHEDULE_CYCLIC`].
    pub cyclic: gradstep_cyclic_lr,
    /// [`GRADSTEP_SCHEDULE_ONE_CYCLE`].
    pub one_cycle: gradstep_one_cycle_lr,
    /// [`GRADSTEP_SCHEDULE_WARMUP_DECAY`].
    pub warmup_decay: gradstep_warmup_decay,
    /// [`GRADSTEP_SCHEDULE_NOAM`].
    pub noam: gradstep_noam,
    /// [`GRADSTEP_SCHEDULE_PIECEWISE_CONSTANT`].
    pub piecewise_constant: gradstep_piecewise_constant,
    /// [`GRADSTEP_SCHEDULE_PLATEAU`].
    pub plateau: gradstep_plateau,
    /// [`GRADSTEP_SCHEDULE_LAMBDA`] and [`GRADSTEP_SCHEDULE_MULTIPLICATIVE`].
    pub lambda: gradstep_lambda_lr,
}

/// A schedule: its kind (a `GRADSTEP_SCHEDULE_*` constant) and parameters.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct gradstep_schedule_config {
    /// Which schedule.
    pub kind: u32,
    /// Its parameters.
    pub params: gradstep_schedule_params,
}

/// The config of `kind` with torch's defaults (required parameters are 0: set them).
/// An unknown kind gives `kind` 0, which every function refuses.
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_schedule_default(kind: u32) -> gradstep_schedule_config {
    // SAFETY: an all-zero bit pattern is a valid value of every member (integers,
    // floats, arrays of them).
    let mut c: gradstep_schedule_config = unsafe { core::mem::zeroed() };
    c.kind = kind;
    let p = &mut c.params;
    match kind {
        GRADSTEP_SCHEDULE_STEP => {
            p.step = gradstep_step_lr {
                step_size: 0,
                gamma: 0.1,
            }
        }
        GRADSTEP_SCHEDULE_MULTISTEP => {
            p.multistep = gradstep_multistep_lr {
                milestones: [0; GRADSTEP_SCHEDULE_MAX_POINTS],
                count: 0,
                gamma: 0.1,
            }
        }
        GRADSTEP_SCHEDULE_CONSTANT => {
            let d = ConstantLr::default();
            p.constant = gradstep_constant_lr {
                factor: d.factor,
                total_iters: d.total_iters,
            }
        }
        GRADSTEP_SCHEDULE_LINEAR => {
            let d = LinearLr::default();
            p.linear = gradstep_linear_lr {
                start_factor: d.start_factor,
                end_factor: d.end_factor,
                total_iters: d.total_iters,
            }
        }
        GRADSTEP_SCHEDULE_EXPONENTIAL => p.exponential = gradstep_exponential_lr { gamma: 0.0 },
        GRADSTEP_SCHEDULE_POLYNOMIAL => {
            let d = PolynomialLr::default();
            p.polynomial = gradstep_polynomial_lr {
                total_iters: d.total_iters,
                power: d.power,
            }
        }
        GRADSTEP_SCHEDULE_COSINE => {
            p.cosine = gradstep_cosine_lr {
                t_max: 0,
                eta_min: 0.0,
            }
        }
        GRADSTEP_SCHEDULE_COSINE_WARM_RESTARTS => {
            p.cosine_warm_restarts = gradstep_cosine_warm_restarts {
                t_0: 0,
                t_mult: 1,
                eta_min: 0.0,
            }
        }
        GRADSTEP_SCHEDULE_CYCLIC => {
            let d = CyclicLr::new(0.0, 0.0);
            p.cyclic = gradstep_cyclic_lr {
                base_lr: 0.0,
                max_lr: 0.0,
                step_size_up: d.step_size_up,
                step_size_down: 0,
                has_step_size_down: 0,
                mode: 0,
                gamma: d.gamma,
                cycle_momentum: u8::from(d.cycle_momentum),
                base_momentum: d.base_momentum,
                max_momentum: d.max_momentum,
            }
        }
        GRADSTEP_SCHEDULE_ONE_CYCLE => {
            let d = OneCycleLr::new(0.0, 0);
            p.one_cycle = gradstep_one_cycle_lr {
                max_lr: 0.0,
                total_steps: 0,
                pct_start: d.pct_start,
                anneal_linear: 0,
                cycle_momentum: u8::from(d.cycle_momentum),
                three_phase: u8::from(d.three_phase),
                base_momentum: d.base_momentum,
                max_momentum: d.max_momentum,
                div_factor: d.div_factor,
                final_div_factor: d.final_div_factor,
            }
        }
        GRADSTEP_SCHEDULE_WARMUP_DECAY => {
            p.warmup_decay = gradstep_warmup_decay {
                warmup_steps: 0,
                start_factor: 0.0,
                decay: 0,
                decay_steps: 0,
                end_factor: 0.0,
                exponent: 1.0,
                rate: 0.5,
                staircase: 0,
                has_end_factor: 0,
            }
        }
        GRADSTEP_SCHEDULE_NOAM => {
            p.noam = gradstep_noam {
                d_model: 0,
                warmup_steps: 0,
                factor: 1.0,
            }
        }
        GRADSTEP_SCHEDULE_PIECEWISE_CONSTANT
        | GRADSTEP_SCHEDULE_LAMBDA
        | GRADSTEP_SCHEDULE_MULTIPLICATIVE => {}
        GRADSTEP_SCHEDULE_PLATEAU => {
            let d = ReduceLrOnPlateau::default();
            p.plateau = gradstep_plateau {
                mode_max: 0,
                factor: d.factor,
                patience: d.patience,
                threshold: d.threshold,
                threshold_abs: 0,
                cooldown: d.cooldown,
                min_lr: d.min_lr,
                eps: d.eps,
            }
        }
        _ => c.kind = 0,
    }
    c
}

/// What a config describes (short-lived: built, then moved into a handle).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Built {
    Scheduler(Member),
    Plateau(ReduceLrOnPlateau),
}

fn points(count: u32) -> Result<usize, gradstep_status> {
    let n = count as usize;
    if n > GRADSTEP_SCHEDULE_MAX_POINTS {
        return Err(GRADSTEP_INVALID_HYPERPARAMETER);
    }
    Ok(n)
}

/// Turns a C config into a schedule (validated when it is started).
pub(crate) fn build(c: &gradstep_schedule_config) -> Result<Built, gradstep_status> {
    let p = &c.params;
    // SAFETY (every union read below): each member is plain integers and floats, valid
    // for any bit pattern; the kind says which member the caller filled in.
    let s: AnyScheduler = unsafe {
        match c.kind {
            GRADSTEP_SCHEDULE_LAMBDA | GRADSTEP_SCHEDULE_MULTIPLICATIVE => {
                let l = p.lambda;
                let f = l.lr_lambda.ok_or(crate::status::GRADSTEP_NULL_POINTER)?;
                return Ok(Built::Scheduler(Member::Lambda(CLambda {
                    f,
                    user: l.user,
                    multiplicative: c.kind == GRADSTEP_SCHEDULE_MULTIPLICATIVE,
                    progress: Progress::default(),
                })));
            }
            GRADSTEP_SCHEDULE_STEP => StepLr::new(p.step.step_size, p.step.gamma).into(),
            GRADSTEP_SCHEDULE_MULTISTEP => {
                let m = p.multistep;
                MultiStepLr::new(&m.milestones[..points(m.count)?], m.gamma)?.into()
            }
            GRADSTEP_SCHEDULE_CONSTANT => ConstantLr {
                factor: p.constant.factor,
                total_iters: p.constant.total_iters,
                ..ConstantLr::default()
            }
            .into(),
            GRADSTEP_SCHEDULE_LINEAR => LinearLr {
                start_factor: p.linear.start_factor,
                end_factor: p.linear.end_factor,
                total_iters: p.linear.total_iters,
                ..LinearLr::default()
            }
            .into(),
            GRADSTEP_SCHEDULE_EXPONENTIAL => ExponentialLr::new(p.exponential.gamma).into(),
            GRADSTEP_SCHEDULE_POLYNOMIAL => PolynomialLr {
                total_iters: p.polynomial.total_iters,
                power: p.polynomial.power,
                ..PolynomialLr::default()
            }
            .into(),
            GRADSTEP_SCHEDULE_COSINE => {
                CosineAnnealingLr::new(p.cosine.t_max, p.cosine.eta_min).into()
            }
            GRADSTEP_SCHEDULE_COSINE_WARM_RESTARTS => {
                let w = p.cosine_warm_restarts;
                CosineAnnealingWarmRestarts::new(w.t_0, w.t_mult, w.eta_min).into()
            }
            GRADSTEP_SCHEDULE_CYCLIC => {
                let y = p.cyclic;
                let mut s = CyclicLr::new(y.base_lr, y.max_lr);
                s.step_size_up = y.step_size_up;
                s.step_size_down = (y.has_step_size_down != 0).then_some(y.step_size_down);
                s.mode = match y.mode {
                    0 => CyclicMode::Triangular,
                    1 => CyclicMode::Triangular2,
                    2 => CyclicMode::ExpRange,
                    _ => return Err(GRADSTEP_UNKNOWN_KIND),
                };
                s.gamma = y.gamma;
                s.cycle_momentum = y.cycle_momentum != 0;
                s.base_momentum = y.base_momentum;
                s.max_momentum = y.max_momentum;
                s.into()
            }
            GRADSTEP_SCHEDULE_ONE_CYCLE => {
                let o = p.one_cycle;
                let mut s = OneCycleLr::new(o.max_lr, o.total_steps);
                s.pct_start = o.pct_start;
                s.anneal_strategy = if o.anneal_linear != 0 {
                    Anneal::Linear
                } else {
                    Anneal::Cos
                };
                s.cycle_momentum = o.cycle_momentum != 0;
                s.three_phase = o.three_phase != 0;
                s.base_momentum = o.base_momentum;
                s.max_momentum = o.max_momentum;
                s.div_factor = o.div_factor;
                s.final_div_factor = o.final_div_factor;
                s.into()
            }
            GRADSTEP_SCHEDULE_WARMUP_DECAY => {
                let w = p.warmup_decay;
                let decay = match w.decay {
                    0 => Decay::Cosine {
                        decay_steps: w.decay_steps,
                        end_factor: w.end_factor,
                        exponent: w.exponent,
                    },
                    1 => Decay::Linear {
                        decay_steps: w.decay_steps,
                        end_factor: w.end_factor,
                    },
                    2 => Decay::Exponential {
                        transition_steps: w.decay_steps,
                        rate: w.rate,
                        staircase: w.staircase != 0,
                        end_factor: (w.has_end_factor != 0).then_some(w.end_factor),
                    },
                    _ => return Err(GRADSTEP_UNKNOWN_KIND),
                };
                WarmupDecay {
                    warmup_steps: w.warmup_steps,
                    start_factor: w.start_factor,
                    decay,
                }
                .into()
            }
            GRADSTEP_SCHEDULE_NOAM => Noam {
                d_model: p.noam.d_model,
                warmup_steps: p.noam.warmup_steps,
                factor: p.noam.factor,
            }
            .into(),
            GRADSTEP_SCHEDULE_PIECEWISE_CONSTANT => {
                let w = p.piecewise_constant;
                let n = points(w.count)?;
                PiecewiseConstant::new(&w.boundaries[..n], &w.scales[..n])?.into()
            }
            GRADSTEP_SCHEDULE_PLATEAU => {
                let q = p.plateau;
                let mut s = ReduceLrOnPlateau::new(if q.mode_max != 0 {
                    PlateauMode::Max
                } else {
                    PlateauMode::Min
                });
                s.factor = q.factor;
                s.patience = q.patience;
                s.threshold = q.threshold;
                s.threshold_mode = if q.threshold_abs != 0 {
                    ThresholdMode::Abs
                } else {
                    ThresholdMode::Rel
                };
                s.cooldown = q.cooldown;
                s.min_lr = q.min_lr;
                s.eps = q.eps;
                s.validate()?;
                return Ok(Built::Plateau(s));
            }
            _ => return Err(GRADSTEP_UNKNOWN_KIND),
        }
    };
    Ok(Built::Scheduler(Member::Any(s)))
}

/// torch's `LambdaLR` / `MultiplicativeLR` over a C function.
#[derive(Clone, Copy)]
pub(crate) struct CLambda {
    f: unsafe extern "C" fn(u64, *mut c_void) -> f64,
    user: *mut c_void,
    multiplicative: bool,
    progress: Progress,
}

impl CLambda {
    /// torch's `get_lr` at `epoch`: `base·f(t)`, or `lr·f(t)` (the group's rate at
    /// MultiplicativeLR's initial step); refuses a rate that is negative or not finite.
    fn write(&mut self, group: &mut Group, epoch: i64, initial: bool) -> Result<(), Error> {
        let t = u64::try_from(epoch).unwrap_or(0);
        let lr = if self.multiplicative {
            if initial {
                group.lr
            } else {
                // SAFETY: the C caller's function, called as its documentation says.
                group.lr * unsafe { (self.f)(t, self.user) }
            }
        } else {
            // SAFETY: as above.
            self.progress.base_lr * unsafe { (self.f)(t, self.user) }
        };
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::InvalidHyperparameter {
                name: "lr",
                value: lr,
                requirement: "the lr_lambda produced a learning rate that is not finite and >= 0",
            });
        }
        group.lr = lr;
        self.progress.last_epoch = epoch;
        Ok(())
    }
}

impl Scheduler for CLambda {
    fn step(&mut self, group: &mut Group) -> Result<(), Error> {
        let epoch = self
            .progress
            .last_epoch
            .checked_add(1)
            .ok_or(Error::StepOverflow)?;
        self.write(group, epoch, false)?;
        self.progress.step_count = self.progress.step_count.saturating_add(1);
        Ok(())
    }
    fn last_epoch(&self) -> i64 {
        self.progress.last_epoch
    }
    fn attach(&mut self, group: &mut Group) -> Result<(), Error> {
        for (name, v) in [("lr", Some(group.lr)), ("initial_lr", group.initial_lr)] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(Error::InvalidHyperparameter {
                    name,
                    value: v,
                    requirement: "must be finite and >= 0",
                });
            }
        }
        let initial = *group.initial_lr.get_or_insert(group.lr);
        self.progress = Progress {
            base_lr: initial,
            ..Progress::default()
        };
        Ok(())
    }
    fn initial_step(&mut self, group: &mut Group) -> Result<(), Error> {
        self.write(group, self.progress.last_epoch.saturating_add(1), true)?;
        self.progress.step_count = 1;
        Ok(())
    }
    fn restart(&mut self, group: &mut Group) -> Result<(), Error> {
        self.write(group, 0, false)
    }
    fn undo(&mut self) {
        self.progress.last_epoch = self.progress.last_epoch.saturating_sub(1);
    }
}

/// A member of a C schedule: a built-in one, or a C function.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Member {
    Any(AnyScheduler),
    Lambda(CLambda),
}

macro_rules! member {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Member::Any($s) => $e,
            Member::Lambda($s) => $e,
        }
    };
}

impl Scheduler for Member {
    fn step(&mut self, group: &mut Group) -> Result<(), Error> {
        member!(self, s => s.step(group))
    }
    fn last_epoch(&self) -> i64 {
        member!(self, s => s.last_epoch())
    }
    fn attach(&mut self, group: &mut Group) -> Result<(), Error> {
        member!(self, s => s.attach(group))
    }
    fn initial_step(&mut self, group: &mut Group) -> Result<(), Error> {
        member!(self, s => s.initial_step(group))
    }
    fn restart(&mut self, group: &mut Group) -> Result<(), Error> {
        member!(self, s => s.restart(group))
    }
    fn undo(&mut self) {
        member!(self, s => s.undo())
    }
}

/// A running schedule: the C handle's contents (boxed in the handle).
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Running {
    One(Member),
    Plateau(ReduceLrOnPlateau),
    Sequential2(SequentialLr<Member, 2>),
    Sequential3(SequentialLr<Member, 3>),
    Sequential4(SequentialLr<Member, 4>),
    Chained2(ChainedScheduler<Member, 2>),
    Chained3(ChainedScheduler<Member, 3>),
    Chained4(ChainedScheduler<Member, 4>),
}

impl Running {
    fn scheduler(&mut self) -> Option<&mut dyn Scheduler> {
        Some(match self {
            Running::One(s) => s,
            Running::Plateau(_) => return None,
            Running::Sequential2(s) => s,
            Running::Sequential3(s) => s,
            Running::Sequential4(s) => s,
            Running::Chained2(s) => s,
            Running::Chained3(s) => s,
            Running::Chained4(s) => s,
        })
    }

    /// Starts the schedule on `group` (torch's constructor).
    pub(crate) fn start(&mut self, group: &mut Group) -> Result<(), gradstep_status> {
        match self.scheduler() {
            Some(s) => Ok(s.start(group)?),
            // ReduceLROnPlateau leaves the rate alone until a plateau; check it anyway.
            None if group.lr.is_finite() && group.lr >= 0.0 => Ok(()),
            None => Err(GRADSTEP_INVALID_HYPERPARAMETER),
        }
    }

    /// One epoch; `metric` is required by (and only by) ReduceLROnPlateau.
    pub(crate) fn step(
        &mut self,
        group: &mut Group,
        metric: Option<f64>,
    ) -> Result<(), gradstep_status> {
        match (self, metric) {
            (Running::Plateau(p), Some(m)) => {
                p.step(group, m)?;
                Ok(())
            }
            (Running::Plateau(_), None) => Err(GRADSTEP_UNKNOWN_KIND),
            (r, None) => Ok(r.scheduler().map_or(Ok(()), |s| s.step(group))?),
            (_, Some(_)) => Err(GRADSTEP_UNKNOWN_KIND),
        }
    }
}

/// Builds a composite from `count` member configs.
fn composite(
    members: &[gradstep_schedule_config],
    milestones: Option<&[u64]>,
) -> Result<Running, gradstep_status> {
    let mut built = vec_with_capacity(members.len())?;
    for m in members {
        match build(m)? {
            Built::Scheduler(s) => built.push(s),
            // torch refuses ReduceLROnPlateau in SequentialLR and ChainedScheduler too.
            Built::Plateau(_) => return Err(GRADSTEP_UNKNOWN_KIND),
        }
    }
    macro_rules! arr {
        ($n:literal) => {{
            let a: [Member; $n] = built.try_into().map_err(|_| GRADSTEP_UNKNOWN_KIND)?;
            a
        }};
    }
    Ok(match (members.len(), milestones) {
        (2, Some(m)) => Running::Sequential2(SequentialLr::new(arr!(2), m)?),
        (3, Some(m)) => Running::Sequential3(SequentialLr::new(arr!(3), m)?),
        (4, Some(m)) => Running::Sequential4(SequentialLr::new(arr!(4), m)?),
        (2, None) => Running::Chained2(ChainedScheduler::new(arr!(2))?),
        (3, None) => Running::Chained3(ChainedScheduler::new(arr!(3))?),
        (4, None) => Running::Chained4(ChainedScheduler::new(arr!(4))?),
        _ => return Err(GRADSTEP_INVALID_HYPERPARAMETER),
    })
}

/// Reads `count` configs (2 to 4) for a composite. The count is checked before the
/// array is touched: a caller's array is only valid for the count it passes when that
/// count is one gradstep accepts.
///
/// # Safety
/// `members` NULL or valid for `count` reads when `count` is 2 to 4.
unsafe fn read_members<'a>(
    members: *const gradstep_schedule_config,
    count: usize,
) -> Result<&'a [gradstep_schedule_config], gradstep_status> {
    if !(2..=4).contains(&count) {
        return Err(GRADSTEP_INVALID_HYPERPARAMETER);
    }
    // SAFETY: checked non-NULL, aligned, and `count` at most 4; readable and only read.
    Ok(unsafe { Raw::new(members, count)?.slice() })
}

/// A schedule handle: a schedule and the group values it drives. Handles are opaque
/// values (never addresses), not reused after a free, and usable from any thread, one
/// call at a time per handle (a concurrent call gets `GRADSTEP_BUSY`).
pub struct gradstep_schedule {
    running: Running,
    group: Group,
}

fn new_handle(
    mut running: Running,
    lr: f64,
    out: *mut *mut gradstep_schedule,
    inputs: &[Span],
) -> Result<(), gradstep_status> {
    check(out.cast_const())?;
    disjoint(&[Span::one(out)], inputs)?;
    let mut group = Group::new(lr);
    running.start(&mut group)?;
    let handle = registry::register(gradstep_schedule { running, group }, Kind::Schedule)?;
    // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
    unsafe { out.write(handle) };
    Ok(())
}

/// Creates a schedule for a group whose learning rate is `lr`, and takes torch's
/// initial step: `gradstep_schedule_lr` then gives epoch 0's values.
///
/// # Safety
/// `config` must be NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_schedule_new(
    config: *const gradstep_schedule_config,
    lr: f64,
    out: *mut *mut gradstep_schedule,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; `read` checks NULL and alignment.
        let c = unsafe { read(config)? };
        let running = match build(&c)? {
            Built::Scheduler(s) => Running::One(s),
            Built::Plateau(p) => Running::Plateau(p),
        };
        new_handle(running, lr, out, &[Span::one(config)])
    })
}

/// torch's `SequentialLR`: `count` (2–4) member configs and `count − 1` strictly
/// increasing milestones.
///
/// # Safety
/// `members` NULL or valid for `count` reads, `milestones` for `count − 1`, `out` for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_schedule_new_sequential(
    members: *const gradstep_schedule_config,
    count: usize,
    milestones: *const u64,
    lr: f64,
    out: *mut *mut gradstep_schedule,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let m = unsafe { read_members(members, count)? };
        // SAFETY: `count` is 2 to 4 (checked by `read_members`); checked non-NULL and
        // aligned; readable and only read.
        let ms = unsafe { Raw::new(milestones, count - 1)?.slice() };
        let inputs = [
            Span::of(m.as_ptr(), m.len()),
            Span::of(ms.as_ptr(), ms.len()),
        ];
        new_handle(composite(m, Some(ms))?, lr, out, &inputs)
    })
}

/// torch's `ChainedScheduler`: `count` (2–4) members stepped together.
///
/// # Safety
/// `members` NULL or valid for `count` reads, `out` for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_schedule_new_chained(
    members: *const gradstep_schedule_config,
    count: usize,
    lr: f64,
    out: *mut *mut gradstep_schedule,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let m = unsafe { read_members(members, count)? };
        new_handle(
            composite(m, None)?,
            lr,
            out,
            &[Span::of(m.as_ptr(), m.len())],
        )
    })
}

/// Advances one epoch (every kind but ReduceLROnPlateau).
///
/// # Safety
/// `s` may be any value: NULL, freed, foreign or mistyped handles are detected
/// (`GRADSTEP_NULL_POINTER`, `GRADSTEP_INVALID_HANDLE`; handle values are never reused).
/// Any thread may call; a call made while another is inside the same handle (another
/// thread, or a callback of this schedule calling back into it) gets `GRADSTEP_BUSY`
/// and does nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_schedule_step(s: *mut gradstep_schedule) -> gradstep_status {
    guard(|| registry::with(s, Kind::Schedule, |h| h.running.step(&mut h.group, None)))
}

/// Jumps a CosineAnnealingWarmRestarts schedule to a (fractional) epoch: torch's
/// `scheduler.step(epoch + i / iters)` idiom. Other kinds give `GRADSTEP_UNKNOWN_KIND`.
///
/// # Safety
/// As for [`gradstep_schedule_step`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_schedule_step_to(
    s: *mut gradstep_schedule,
    epoch: f64,
) -> gradstep_status {
    guard(|| {
        registry::with(s, Kind::Schedule, |h| match &mut h.running {
            Running::One(Member::Any(AnyScheduler::CosineAnnealingWarmRestarts(w))) => {
                Ok(w.step_to(&mut h.group, epoch)?)
            }
            _ => Err(GRADSTEP_UNKNOWN_KIND),
        })
    })
}

/// Advances one epoch of a ReduceLROnPlateau schedule with the epoch's metric.
///
/// # Safety
/// As for [`gradstep_schedule_step`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_schedule_step_metric(
    s: *mut gradstep_schedule,
    metric: f64,
) -> gradstep_status {
    guard(|| {
        registry::with(s, Kind::Schedule, |h| {
            h.running.step(&mut h.group, Some(metric))
        })
    })
}

/// The current learning rate, and (if `momentum` is not NULL) the momentum/β₁ the
/// schedule sets; `*has_momentum` (if not NULL) says whether it sets one.
///
/// # Safety
/// As for [`gradstep_schedule_step`]; `lr` valid for a write, `momentum` and
/// `has_momentum` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_schedule_lr(
    s: *mut gradstep_schedule,
    lr: *mut f64,
    momentum: *mut f64,
    has_momentum: *mut u8,
) -> gradstep_status {
    guard(|| {
        let (value, mom) =
            registry::with(s, Kind::Schedule, |h| Ok((h.group.lr, h.group.momentum)))?;
        check(lr.cast_const())?;
        for p in [momentum.cast_const()] {
            if !p.is_null() {
                check(p)?;
            }
        }
        if !has_momentum.is_null() {
            check(has_momentum.cast_const())?;
        }
        // NULL ones are written nowhere: empty spans.
        let span = |p: *const u8, len: usize| Span::of(p, if p.is_null() { 0 } else { len });
        disjoint(
            &[
                Span::one(lr),
                span(momentum.cast_const().cast(), 8),
                span(has_momentum.cast_const(), 1),
            ],
            &[],
        )?;
        // SAFETY: checked non-NULL (where written) and aligned.
        unsafe {
            lr.write(value);
            if !momentum.is_null() {
                momentum.write(mom.unwrap_or(0.0));
            }
            if !has_momentum.is_null() {
                has_momentum.write(u8::from(mom.is_some()));
            }
        }
        Ok(())
    })
}

/// Frees a schedule. NULL is a no-op; a handle that is not live gives
/// `GRADSTEP_INVALID_HANDLE`.
///
/// # Safety
/// `s` may be any value, as for [`gradstep_schedule_step`]. A call that is inside `s`
/// meanwhile (another thread's, or the schedule's own callback's) finishes normally;
/// from this free's return on, `s` is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_schedule_free(s: *mut gradstep_schedule) -> gradstep_status {
    guard(|| registry::free(s, Kind::Schedule))
}

// The optimizer handle's schedules: gradstep-optim's, from a config or a schedule handle.

// SAFETY: a CLambda is a C function pointer and the caller's `user` pointer, which
// gradstep only passes back to that function, from the thread that called into the
// handle holding it (the optimizer's threaded step never calls schedules); sharing or
// moving it between threads is the C caller's contract, as for the handle itself.
unsafe impl Send for CLambda {}
// SAFETY: as above.
unsafe impl Sync for CLambda {}

impl core::fmt::Debug for CLambda {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CLambda")
            .field("multiplicative", &self.multiplicative)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

impl gradstep_optim::CustomSchedule for CLambda {
    fn kind(&self) -> (u16, &'static str) {
        if self.multiplicative {
            (2, "MultiplicativeLR")
        } else {
            (1, "LambdaLR")
        }
    }
    fn progress(&self) -> Progress {
        self.progress
    }
    fn set_progress(&mut self, progress: Progress) {
        self.progress = progress;
    }
    fn clone_box(&self) -> Box<dyn gradstep_optim::CustomSchedule> {
        Box::new(*self)
    }
}

impl Member {
    /// The same schedule as gradstep-optim's member.
    fn to_optim(&self) -> gradstep_optim::Member {
        match self {
            Member::Any(s) => gradstep_optim::Member::Builtin(s.clone()),
            Member::Lambda(l) => gradstep_optim::Member::Custom(Box::new(*l)),
        }
    }
}

/// A schedule for the optimizer handle to attach (short-lived: built, then moved
/// into the optimizer).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Attach {
    /// Epoch-driven.
    Epochs(gradstep_optim::EpochSchedule),
    /// ReduceLROnPlateau.
    Plateau(ReduceLrOnPlateau),
}

impl Running {
    /// The same schedule (its configuration; the optimizer starts it again) as
    /// gradstep-optim's.
    fn to_optim(&self) -> Result<Attach, gradstep_status> {
        use gradstep_optim::EpochSchedule as E;
        Ok(Attach::Epochs(match self {
            Running::One(s) => E::One(s.to_optim()),
            Running::Plateau(p) => return Ok(Attach::Plateau(*p)),
            Running::Sequential2(s) => E::Sequential2(SequentialLr::new(
                s.schedulers().each_ref().map(Member::to_optim),
                s.milestones(),
            )?),
            Running::Sequential3(s) => E::Sequential3(SequentialLr::new(
                s.schedulers().each_ref().map(Member::to_optim),
                s.milestones(),
            )?),
            Running::Sequential4(s) => E::Sequential4(SequentialLr::new(
                s.schedulers().each_ref().map(Member::to_optim),
                s.milestones(),
            )?),
            Running::Chained2(s) => E::Chained2(ChainedScheduler::new(
                s.schedulers().each_ref().map(Member::to_optim),
            )?),
            Running::Chained3(s) => E::Chained3(ChainedScheduler::new(
                s.schedulers().each_ref().map(Member::to_optim),
            )?),
            Running::Chained4(s) => E::Chained4(ChainedScheduler::new(
                s.schedulers().each_ref().map(Member::to_optim),
            )?),
        }))
    }
}

/// A config's schedule, for the optimizer handle.
pub(crate) fn attach_config(c: &gradstep_schedule_config) -> Result<Attach, gradstep_status> {
    match build(c)? {
        Built::Scheduler(s) => Running::One(s),
        Built::Plateau(p) => Running::Plateau(p),
    }
    .to_optim()
}

/// A schedule handle's schedule (its configuration, restarted on attach), for the
/// optimizer handle.
pub(crate) fn attach_handle(s: *mut gradstep_schedule) -> Result<Attach, gradstep_status> {
    registry::with(s, Kind::Schedule, |h| h.running.to_optim())
}
