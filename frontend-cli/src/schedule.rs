//! Learning-rate schedules by name: `cosine:t_max=500`, `step:step_size=100,gamma=0.5`.

use gradstep::schedules::{
    AnyScheduler, ConstantLr, CosineAnnealingLr, CosineAnnealingWarmRestarts, ExponentialLr, Group,
    LinearLr, PolynomialLr, Scheduler, StepLr,
};

use crate::rules::{Spec, Value};

/// Each schedule: name, torch class, fields with their defaults (`-` = required).
pub const SCHEDULES: [(&str, &str, &str); 7] = [
    ("step", "StepLR", "step_size=-, gamma=0.1"),
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
];

/// The fields of `spec`, taken one by one; what is left over is unknown.
struct Fields<'a> {
    spec: &'a Spec,
    allowed: &'static [&'static str],
}

impl Fields<'_> {
    fn get<T: Value>(&self, field: &str) -> Result<Option<T>, String> {
        self.spec
            .fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| self.spec.parse_value(field, v))
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

/// The schedule a spec describes, for a run of `steps` steps; its configuration is
/// checked by starting it on a learning rate of 1.
pub fn from_spec(spec: &Spec, steps: u64) -> Result<AnyScheduler, String> {
    let fields = |allowed| Fields { spec, allowed };
    let schedule: AnyScheduler = match spec.name.as_str() {
        "step" => {
            let f = fields(&["step_size", "gamma"]);
            f.check_known()?;
            StepLr::new(f.required("step_size")?, f.or("gamma", 0.1)?).into()
        }
        "exponential" => {
            let f = fields(&["gamma"]);
            f.check_known()?;
            ExponentialLr::new(f.required("gamma")?).into()
        }
        "cosine" => {
            let f = fields(&["t_max", "eta_min"]);
            f.check_known()?;
            CosineAnnealingLr::new(f.or("t_max", steps)?, f.or("eta_min", 0.0)?).into()
        }
        "cosine_warm_restarts" => {
            let f = fields(&["t_0", "t_mult", "eta_min"]);
            f.check_known()?;
            CosineAnnealingWarmRestarts::new(
                f.required("t_0")?,
                f.or("t_mult", 1)?,
                f.or("eta_min", 0.0)?,
            )
            .into()
        }
        "linear" => {
            let f = fields(&["start_factor", "end_factor", "total_iters"]);
            f.check_known()?;
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
            let f = fields(&["factor", "total_iters"]);
            f.check_known()?;
            let d = ConstantLr::default();
            ConstantLr {
                factor: f.or("factor", d.factor)?,
                total_iters: f.or("total_iters", d.total_iters)?,
                ..d
            }
            .into()
        }
        "polynomial" => {
            let f = fields(&["total_iters", "power"]);
            f.check_known()?;
            let d = PolynomialLr::default();
            PolynomialLr {
                total_iters: f.or("total_iters", d.total_iters)?,
                power: f.or("power", d.power)?,
                ..d
            }
            .into()
        }
        other => {
            let names: Vec<&str> = SCHEDULES.iter().map(|s| s.0).collect();
            return Err(format!(
                "unknown schedule '{other}' (schedules: {})",
                names.join(", ")
            ));
        }
    };
    schedule
        .clone()
        .start(&mut Group::new(1.0))
        .map_err(|e| format!("schedule '{}': {e}", spec.name))?;
    Ok(schedule)
}
