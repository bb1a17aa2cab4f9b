//! Learning-rate schedules by name, one parser for `compare`, `train`, `sweep` and the
//! `schedules` gallery: `cosine:t_max=500`, `step:step_size=100,gamma=0.5`,
//! `onecycle`, `warmup_cosine:warmup_steps=50`, `plateau:patience=3` (train only).
//!
//! A list field (`milestones`, `boundaries`, `scales`) separates its values with `/`:
//! `multistep:milestones=30/60`.

use gradstep::rules::AnyRule;
use gradstep::schedules::{
    Anneal, AnyScheduler, ConstantLr, CosineAnnealingLr, CosineAnnealingWarmRestarts, CyclicLr,
    CyclicMode, Decay, ExponentialLr, Group, LinearLr, MultiStepLr, Noam, OneCycleLr,
    PiecewiseConstant, PlateauMode, PolynomialLr, ReduceLrOnPlateau, Scheduler, StepLr,
    ThresholdMode, WarmupDecay,
};

use crate::rules::{Spec, Value};

/// Each schedule: name, torch (or optax) counterpart, fields with their defaults
/// (`-` = required; `STEPS` = the run's length; `LR` = the rule's lr).
pub const SCHEDULES: [(&str, &str, &str); 15] = [
    ("step", "StepLR", "step_size=-, gamma=0.1"),
    (
        "multistep",
        "MultiStepLR",
        "milestones=- (e.g. 30/60), gamma=0.1",
    ),
    ("exponential", "ExponentialLR", "gamma=-"),
    ("cosine", "CosineAnnealingLR", "t_max=STEPS, eta_min=0"),
    (
        "cosine_warm_restarts",
        "CosineAnnealingWarmRestarts",
        "t_0=-, t_mult=1, eta_min=0",
    ),
    (
        "linear",
        "LinearLR",
        "start_factor=0.3333333333333333, end_factor=1, total_iters=5",
    ),
    (
        "constant",
        "ConstantLR",
        "factor=0.3333333333333333, total_iters=5",
    ),
    ("polynomial", "PolynomialLR", "total_iters=5, power=1"),
    (
        "cyclic",
        "CyclicLR",
        "base_lr=LR/10, max_lr=LR, step_size_up=2000, step_size_down=step_size_up, \
         mode=triangular|triangular2|exp_range, gamma=1, cycle_momentum=true, \
         base_momentum=0.8, max_momentum=0.9",
    ),
    (
        "onecycle",
        "OneCycleLR",
        "max_lr=LR, total_steps=STEPS, pct_start=0.3, anneal_strategy=cos|linear, \
         cycle_momentum=true, base_momentum=0.85, max_momentum=0.95, div_factor=25, \
         final_div_factor=1e4, three_phase=false",
    ),
    (
        "warmup_cosine",
        "optax warmup_cosine_decay_schedule",
        "warmup_steps=STEPS/10, start_factor=0, decay_steps=STEPS-warmup_steps, \
         end_factor=0, exponent=1",
    ),
    (
        "warmup_linear",
        "warmup then linear decay (Hugging Face get_linear_schedule_with_warmup)",
        "warmup_steps=STEPS/10, start_factor=0, decay_steps=STEPS-warmup_steps, end_factor=0",
    ),
    (
        "warmup_exponential",
        "optax warmup_exponential_decay_schedule",
        "warmup_steps=STEPS/10, start_factor=0, transition_steps=-, rate=-, \
         staircase=false, end_factor=none",
    ),
    (
        "noam",
        "the Transformer's inverse square root (lr × factor·d_model^-½·min(t^-½, t·warmup^-3/2))",
        "d_model=-, warmup_steps=-, factor=1",
    ),
    (
        "piecewise",
        "optax piecewise_constant_schedule",
        "boundaries=- (e.g. 100/200), scales=- (e.g. 0.5/0.1)",
    ),
];

/// `plateau`, which steps on a metric: only `train` and `sweep --task` have one.
pub const PLATEAU: (&str, &str, &str) = (
    "plateau",
    "ReduceLROnPlateau, on the validation loss after each epoch (train, sweep --task)",
    "factor=0.1, patience=10, threshold=1e-4, threshold_mode=rel|abs, cooldown=0, \
     min_lr=0, eps=1e-8",
);

/// Every schedule name, for messages and tests.
pub fn names() -> Vec<&'static str> {
    SCHEDULES
        .iter()
        .map(|s| s.0)
        .chain(std::iter::once(PLATEAU.0))
        .collect()
}

/// A checked schedule, ready to be started for any rule.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The name, for messages.
    pub name: String,
    kind: Kind,
}

// One schedule per run, never in a hot loop: the size difference does not matter.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
enum Kind {
    /// Stepped after every optimizer step (or epoch). `fill` says which of its rates
    /// default to the rule's lr.
    Torch(AnyScheduler, Fill),
    /// Stepped on the validation loss after each epoch.
    Plateau(ReduceLrOnPlateau),
}

/// Rates of a schedule that default to the rule's lr when not given.
#[derive(Clone, Copy, Debug, Default)]
struct Fill {
    /// CyclicLR's `max_lr` (= lr) / OneCycleLR's `max_lr` (= lr).
    max_lr: bool,
    /// CyclicLR's `base_lr` (= lr/10).
    base_lr: bool,
}

/// The fields of `spec`, taken one by one; what is left over is unknown.
struct Fields<'a> {
    spec: &'a Spec,
    allowed: &'static [&'static str],
}

impl Fields<'_> {
    fn text(&self, field: &str) -> Option<&str> {
        self.spec
            .fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v.as_str())
    }

    fn get<T: Value>(&self, field: &str) -> Result<Option<T>, String> {
        self.text(field)
            .map(|v| self.spec.parse_value(field, v))
            .transpose()
    }

    fn or<T: Value>(&self, field: &str, default: T) -> Result<T, String> {
        Ok(self.get(field)?.unwrap_or(default))
    }

    fn required<T: Value>(&self, field: &str) -> Result<T, String> {
        self.get(field)?.ok_or_else(|| {
            format!(
                "schedule '{}' needs {field} (fields: {})",
                self.spec.name,
                self.allowed.join(", ")
            )
        })
    }

    /// A `/`-separated list, required.
    fn list<T: Value>(&self, field: &str) -> Result<Vec<T>, String> {
        let text = self.text(field).ok_or_else(|| {
            format!(
                "schedule '{}' needs {field}, values separated by / (fields: {})",
                self.spec.name,
                self.allowed.join(", ")
            )
        })?;
        text.split('/')
            .map(|v| self.spec.parse_value(field, v.trim()))
            .collect()
    }

    /// One of `choices` (the first is the default).
    fn choice(&self, field: &str, choices: &[&'static str]) -> Result<&'static str, String> {
        match self.text(field) {
            None => Ok(choices[0]),
            Some(v) => choices.iter().copied().find(|c| *c == v).ok_or_else(|| {
                format!(
                    "schedule '{}': {field} = '{v}' is not one of {}",
                    self.spec.name,
                    choices.join(", ")
                )
            }),
        }
    }

    fn check_known(&self) -> Result<(), String> {
        match self
            .spec
            .fields
            .iter()
            .find(|(f, _)| !self.allowed.contains(&f.as_str()))
        {
            Some((f, _)) => Err(self.spec.unknown_field(f, self.allowed)),
            None => Ok(()),
        }
    }
}

/// The schedule a spec describes, for a run of `steps` steps (or epochs); its
/// configuration is checked by starting it on a learning rate of 1.
pub fn from_spec(spec: &Spec, steps: u64) -> Result<Schedule, String> {
    let allowed = |name: &str| -> &'static [&'static str] {
        match name {
            "step" => &["step_size", "gamma"],
            "multistep" => &["milestones", "gamma"],
            "exponential" => &["gamma"],
            "cosine" => &["t_max", "eta_min"],
            "cosine_warm_restarts" => &["t_0", "t_mult", "eta_min"],
            "linear" => &["start_factor", "end_factor", "total_iters"],
            "constant" => &["factor", "total_iters"],
            "polynomial" => &["total_iters", "power"],
            "cyclic" => &[
                "base_lr",
                "max_lr",
                "step_size_up",
                "step_size_down",
                "mode",
                "gamma",
                "cycle_momentum",
                "base_momentum",
                "max_momentum",
            ],
            "onecycle" => &[
                "max_lr",
                "total_steps",
                "pct_start",
                "anneal_strategy",
                "cycle_momentum",
                "base_momentum",
                "max_momentum",
                "div_factor",
                "final_div_factor",
                "three_phase",
            ],
            "warmup_cosine" => &[
                "warmup_steps",
                "start_factor",
                "decay_steps",
                "end_factor",
                "exponent",
            ],
            "warmup_linear" => &["warmup_steps", "start_factor", "decay_steps", "end_factor"],
            "warmup_exponential" => &[
                "warmup_steps",
                "start_factor",
                "transition_steps",
                "rate",
                "staircase",
                "end_factor",
            ],
            "noam" => &["d_model", "warmup_steps", "factor"],
            "piecewise" => &["boundaries", "scales"],
            "plateau" => &[
                "factor",
                "patience",
                "threshold",
                "threshold_mode",
                "cooldown",
                "min_lr",
                "eps",
            ],
            _ => &[],
        }
    };
    if !names().contains(&spec.name.as_str()) {
        return Err(format!(
            "unknown schedule '{}' (schedules: {})",
            spec.name,
            names().join(", ")
        ));
    }
    let f = Fields {
        spec,
        allowed: allowed(&spec.name),
    };
    f.check_known()?;
    // The kernel reports a value as an f64; the user's own text says what was typed
    // (18446744073709551615, not 18446744073709552000).
    let kernel = |e: gradstep::Error| {
        let typed = match e {
            gradstep::Error::InvalidHyperparameter {
                name, requirement, ..
            } => f.text(name).map(|text| (name, text, requirement)),
            _ => None,
        };
        match typed {
            Some((name, text, requirement)) => format!(
                "schedule '{}': invalid hyperparameter {name} = {text}: {requirement}",
                spec.name
            ),
            None => format!("schedule '{}': {e}", spec.name),
        }
    };
    let mut fill = Fill::default();
    let warmup_default = (steps / 10).max(1);
    let schedule: AnyScheduler = match spec.name.as_str() {
        "step" => StepLr::new(f.required("step_size")?, f.or("gamma", 0.1)?).into(),
        "multistep" => {
            let milestones: Vec<u64> = f.list("milestones")?;
            MultiStepLr::new(&milestones, f.or("gamma", 0.1)?)
                .map_err(kernel)?
                .into()
        }
        "exponential" => ExponentialLr::new(f.required("gamma")?).into(),
        "cosine" => CosineAnnealingLr::new(f.or("t_max", steps)?, f.or("eta_min", 0.0)?).into(),
        "cosine_warm_restarts" => CosineAnnealingWarmRestarts::new(
            f.required("t_0")?,
            f.or("t_mult", 1)?,
            f.or("eta_min", 0.0)?,
        )
        .into(),
        "linear" => {
            let d = LinearLr::default();
            LinearLr {
                start_factor: f.or("start_factor", d.start_factor)?,
                end_factor: f.or("end_factor", d.end_factor)?,
                total_iters: f.or("total_iters", d.total_iters)?,
                ..d
            }
            .into()
        }
        "constant" => {
            let d = ConstantLr::default();
            ConstantLr {
                factor: f.or("factor", d.factor)?,
                total_iters: f.or("total_iters", d.total_iters)?,
                ..d
            }
            .into()
        }
        "polynomial" => {
            let d = PolynomialLr::default();
            PolynomialLr {
                total_iters: f.or("total_iters", d.total_iters)?,
                power: f.or("power", d.power)?,
                ..d
            }
            .into()
        }
        "cyclic" => {
            let base: Option<f64> = f.get("base_lr")?;
            let max: Option<f64> = f.get("max_lr")?;
            fill.base_lr = base.is_none();
            fill.max_lr = max.is_none();
            let mut c = CyclicLr::new(base.unwrap_or(0.1), max.unwrap_or(1.0));
            c.step_size_up = f.or("step_size_up", c.step_size_up)?;
            c.step_size_down = f.get("step_size_down")?;
            c.mode = match f.choice("mode", &["triangular", "triangular2", "exp_range"])? {
                "triangular" => CyclicMode::Triangular,
                "triangular2" => CyclicMode::Triangular2,
                _ => CyclicMode::ExpRange,
            };
            c.gamma = f.or("gamma", c.gamma)?;
            c.cycle_momentum = f.or("cycle_momentum", c.cycle_momentum)?;
            c.base_momentum = f.or("base_momentum", c.base_momentum)?;
            c.max_momentum = f.or("max_momentum", c.max_momentum)?;
            c.into()
        }
        "onecycle" => {
            let max: Option<f64> = f.get("max_lr")?;
            fill.max_lr = max.is_none();
            let mut c = OneCycleLr::new(max.unwrap_or(1.0), f.or("total_steps", steps)?);
            c.pct_start = f.or("pct_start", c.pct_start)?;
            c.anneal_strategy = match f.choice("anneal_strategy", &["cos", "linear"])? {
                "cos" => Anneal::Cos,
                _ => Anneal::Linear,
            };
            c.cycle_momentum = f.or("cycle_momentum", c.cycle_momentum)?;
            c.base_momentum = f.or("base_momentum", c.base_momentum)?;
            c.max_momentum = f.or("max_momentum", c.max_momentum)?;
            c.div_factor = f.or("div_factor", c.div_factor)?;
            c.final_div_factor = f.or("final_div_factor", c.final_div_factor)?;
            c.three_phase = f.or("three_phase", c.three_phase)?;
            c.into()
        }
        "warmup_cosine" | "warmup_linear" | "warmup_exponential" => {
            let warmup_steps = f.or("warmup_steps", warmup_default)?;
            let decay_steps = f.or("decay_steps", steps.saturating_sub(warmup_steps).max(1))?;
            let decay = match spec.name.as_str() {
                "warmup_cosine" => Decay::Cosine {
                    decay_steps,
                    end_factor: f.or("end_factor", 0.0)?,
                    exponent: f.or("exponent", 1.0)?,
                },
                "warmup_linear" => Decay::Linear {
                    decay_steps,
                    end_factor: f.or("end_factor", 0.0)?,
                },
                _ => Decay::Exponential {
                    transition_steps: f.required("transition_steps")?,
                    rate: f.required("rate")?,
                    staircase: f.or("staircase", false)?,
                    // `none` (the default): no bound on the decay.
                    end_factor: match f.text("end_factor") {
                        Some("none") => None,
                        _ => f.get("end_factor")?,
                    },
                },
            };
            WarmupDecay {
                warmup_steps,
                start_factor: f.or("start_factor", 0.0)?,
                decay,
            }
            .into()
        }
        "noam" => Noam {
            d_model: f.required("d_model")?,
            warmup_steps: f.required("warmup_steps")?,
            factor: f.or("factor", 1.0)?,
        }
        .into(),
        "piecewise" => {
            let boundaries: Vec<u64> = f.list("boundaries")?;
            let scales: Vec<f64> = f.list("scales")?;
            PiecewiseConstant::new(&boundaries, &scales)
                .map_err(kernel)?
                .into()
        }
        _ => {
            let d = ReduceLrOnPlateau::new(PlateauMode::Min);
            let plateau = ReduceLrOnPlateau {
                factor: f.or("factor", d.factor)?,
                patience: f.or("patience", d.patience)?,
                threshold: f.or("threshold", d.threshold)?,
                threshold_mode: match f.choice("threshold_mode", &["rel", "abs"])? {
                    "rel" => ThresholdMode::Rel,
                    _ => ThresholdMode::Abs,
                },
                cooldown: f.or("cooldown", d.cooldown)?,
                min_lr: f.or("min_lr", d.min_lr)?,
                eps: f.or("eps", d.eps)?,
                ..d
            };
            plateau.validate().map_err(kernel)?;
            return Ok(Schedule {
                name: spec.name.clone(),
                kind: Kind::Plateau(plateau),
            });
        }
    };
    let schedule = Schedule {
        name: spec.name.clone(),
        kind: Kind::Torch(schedule, fill),
    };
    // The configuration is checked once, on a rate of 1.
    let mut probe = Group::new(1.0);
    schedule.filled(1.0).start(&mut probe).map_err(kernel)?;
    // A run of `steps` steps steps its schedule between them, `steps − 1` times;
    // OneCycleLR refuses to be stepped past its total, which must cover them.
    if let Kind::Torch(AnyScheduler::OneCycle(c), _) = &schedule.kind
        && c.total_steps.saturating_add(1) < steps
    {
        return Err(format!(
            "schedule '{}': total_steps = {} ends before the run's {steps} steps (or \
             epochs): it must be at least {}, or left out to follow the run",
            spec.name,
            c.total_steps,
            steps - 1
        ));
    }
    Ok(schedule)
}

impl Schedule {
    /// Whether the schedule needs a validation metric (`plateau`).
    pub fn needs_metric(&self) -> bool {
        matches!(self.kind, Kind::Plateau(_))
    }

    /// The torch schedule with the rates that default to the rule's `lr` filled in.
    fn filled(&self, lr: f64) -> AnyScheduler {
        let Kind::Torch(s, fill) = &self.kind else {
            unreachable!("filled is only called on stepped schedules")
        };
        let mut s = s.clone();
        match &mut s {
            AnyScheduler::Cyclic(c) => {
                if fill.max_lr {
                    c.max_lr = lr;
                }
                if fill.base_lr {
                    c.base_lr = lr / 10.0;
                }
            }
            AnyScheduler::OneCycle(c) if fill.max_lr => c.max_lr = lr,
            _ => {}
        }
        s
    }

    /// Whether the schedule writes the group's momentum (cycling schedules).
    fn cycles_momentum(&self) -> bool {
        match &self.kind {
            Kind::Torch(AnyScheduler::Cyclic(c), _) => c.cycle_momentum,
            Kind::Torch(AnyScheduler::OneCycle(c), _) => c.cycle_momentum,
            _ => false,
        }
    }

    /// Checks that the schedule can drive `rule` (in `where_`: "compare", ...).
    pub fn check_rule(&self, rule: &AnyRule, metric: bool) -> Result<(), String> {
        if self.needs_metric() && !metric {
            return Err(format!(
                "schedule '{}' reduces the lr when the validation loss stops improving: \
                 it works on `train` and `sweep --task`, not on a test function",
                self.name
            ));
        }
        if self.cycles_momentum() && rule.momentum().is_none() {
            return Err(format!(
                "schedule '{}' cycles the momentum (cycle_momentum=true, torch's default) \
                 and rule '{}' has none: add cycle_momentum=false",
                self.name,
                rule.name()
            ));
        }
        Ok(())
    }

    /// Starts the schedule for `rule`: sets the rule's lr (and momentum, for a cycling
    /// schedule) to the first step's.
    pub fn start(&self, rule: &mut AnyRule) -> Result<Running, gradstep::Error> {
        let mut group = Group::new(rule.lr());
        let kind = match &self.kind {
            Kind::Torch(..) => {
                let mut s = self.filled(rule.lr());
                s.start(&mut group)?;
                RunningKind::Torch(s)
            }
            Kind::Plateau(p) => RunningKind::Plateau(*p),
        };
        let running = Running { kind, group };
        running.apply(rule);
        Ok(running)
    }
}

/// A started schedule: its state and the group it writes.
pub struct Running {
    kind: RunningKind,
    group: Group,
}

#[allow(clippy::large_enum_variant)]
enum RunningKind {
    Torch(AnyScheduler),
    Plateau(ReduceLrOnPlateau),
}

impl Running {
    /// The learning rate of the next step.
    pub fn lr(&self) -> f64 {
        self.group.lr
    }

    fn apply(&self, rule: &mut AnyRule) {
        rule.set_lr(self.group.lr);
        if let Some(m) = self.group.momentum {
            // Checked by `check_rule`: a cycling schedule only drives rules with momentum.
            let _ = rule.set_momentum(m);
        }
    }

    /// Steps the schedule after an optimizer step (or epoch), `metric` being the
    /// validation loss for `plateau`, and writes the new lr (and momentum) into `rule`.
    pub fn step(&mut self, rule: &mut AnyRule, metric: f64) -> Result<(), gradstep::Error> {
        match &mut self.kind {
            RunningKind::Torch(s) => s.step(&mut self.group)?,
            RunningKind::Plateau(p) => {
                p.step(&mut self.group, metric)?;
            }
        }
        self.apply(rule);
        Ok(())
    }
}
