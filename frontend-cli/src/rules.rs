//! Every update rule of the kernel crate, by name, with its hyperparameters by field
//! name: `sgd:lr=0.01,momentum=0.9`. The rules, their fields and defaults all come from
//! the kernel's registry (`gradstep::rules`); this file names no rule.

use std::str::FromStr;

use crate::functions::{Function, num};
use crate::schedule::Schedule;
use gradstep::MAX_STATE_SLOTS;
use gradstep::rules::{AnyRule, AnyScalars, RuleId};

/// A parsed `NAME[:FIELD=VALUE,...]`: the name and the fields in the order given.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// What the spec describes, for messages: `rule` or `schedule`.
    pub kind: &'static str,
    /// The name, lower case.
    pub name: String,
    /// `(field, value)` pairs; a bare `FIELD` stands for `FIELD=true`.
    pub fields: Vec<(String, String)>,
}

impl Spec {
    /// Parses `NAME[:FIELD=VALUE,...]`.
    pub fn parse(kind: &'static str, text: &str) -> Result<Spec, String> {
        let (name, rest) = text.split_once(':').unwrap_or((text, ""));
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(format!("{kind} {text:?} has no name"));
        }
        let mut fields = Vec::new();
        for item in rest.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (field, value) = item.split_once('=').unwrap_or((item, "true"));
            fields.push((field.trim().to_string(), value.trim().to_string()));
        }
        Spec::new(kind, name, fields)
    }

    /// A spec from parts (the config file's tables), refusing repeated fields.
    pub fn new(
        kind: &'static str,
        name: String,
        fields: Vec<(String, String)>,
    ) -> Result<Spec, String> {
        for (i, (field, _)) in fields.iter().enumerate() {
            if fields[..i].iter().any(|(f, _)| f == field) {
                return Err(format!("{kind} '{name}': field '{field}' is given twice"));
            }
        }
        Ok(Spec { kind, name, fields })
    }

    /// `name(field=value, ...)`, for legends and the table.
    pub fn label(&self) -> String {
        if self.fields.is_empty() {
            return self.name.clone();
        }
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(f, v)| format!("{f}={v}"))
            .collect();
        format!("{}({})", self.name, fields.join(", "))
    }

    /// The field's value parsed as `T`.
    pub fn parse_value<T: Value>(&self, field: &str, value: &str) -> Result<T, String> {
        T::parse(value).ok_or_else(|| {
            format!(
                "{} '{}': {field} = '{value}' is not {}",
                self.kind,
                self.name,
                T::WHAT
            )
        })
    }

    /// The message for a field this spec's target does not have.
    pub fn unknown_field(&self, field: &str, fields: &[&str]) -> String {
        format!(
            "{} '{}': unknown field '{field}' (fields: {})",
            self.kind,
            self.name,
            fields.join(", ")
        )
    }
}

/// A hyperparameter's type as written on the command line.
pub trait Value: Sized {
    /// "a number", "true or false", ...
    const WHAT: &'static str;
    /// The value, or `None` if `text` is not one.
    fn parse(text: &str) -> Option<Self>;
}

impl Value for f64 {
    const WHAT: &'static str = "a number";
    fn parse(text: &str) -> Option<Self> {
        f64::from_str(text).ok()
    }
}

impl Value for bool {
    const WHAT: &'static str = "true or false";
    fn parse(text: &str) -> Option<Self> {
        bool::from_str(text).ok()
    }
}

impl Value for u64 {
    const WHAT: &'static str = "a whole number";
    fn parse(text: &str) -> Option<Self> {
        u64::from_str(text).ok()
    }
}

/// The rule a spec describes, its fields set through the registry and checked by the
/// kernel's `validate`. The messages are the registry's ([`gradstep::rules::SpecError`]):
/// `unknown rule 'adamm' (rules: sgd, adam, ...)`, `rule 'sgd': unknown field 'lrr'
/// (fields: ...)`, `rule 'sgd': lr = 'fast' is not a number`.
pub fn from_spec(spec: &Spec) -> Result<AnyRule, String> {
    let mut rule = AnyRule::named(&spec.name).map_err(|e| e.to_string())?;
    for (field, value) in &spec.fields {
        rule.set_text(field, value).map_err(|e| e.to_string())?;
    }
    rule.checked().map_err(|e| e.to_string())
}

/// Every rule with its fields and torch's defaults, one line each, for `--help`:
/// `adam      lr=0.001, beta1=0.9, ...`.
pub fn defaults_help() -> String {
    let mut text = String::new();
    for &id in RuleId::ALL {
        let rule = id.default_rule();
        let fields: Vec<String> = rule
            .fields()
            .iter()
            .filter_map(|field| {
                let value = match rule.get(field.name)? {
                    gradstep::rules::Value::Number(x) => num(x),
                    gradstep::rules::Value::Flag(b) => b.to_string(),
                    gradstep::rules::Value::Choice(name) => name.to_string(),
                };
                Some(format!("{}={value}", field.name))
            })
            .collect();
        text += &format!("  {:<9} {}\n", id.name(), fields.join(", "));
    }
    text
}

/// One run: every iterate from the start, ending early at the first non-finite one.
pub struct Run {
    /// x₀, x₁, …
    pub path: Vec<[f64; 2]>,
    /// The learning rate of each step taken: `lrs[t]` moved x_t to x_{t+1}.
    pub lrs: Vec<f64>,
}

/// A rule stepping several f32 parameter tensors at a learning rate given per step,
/// each tensor with its own scalar and slice state (as torch keeps
/// `optimizer.state[p]` per parameter).
pub struct Optimizer {
    /// The rule and its hyperparameters for the next step (a schedule changes its lr,
    /// and a cycling schedule its momentum).
    pub rule: AnyRule,
    scalars: Vec<AnyScalars>,
    /// `state[i]` holds the rule's state slices for tensor `i`.
    state: Vec<Vec<Vec<f32>>>,
}

impl Optimizer {
    /// Fresh state for tensors of the given lengths.
    pub fn new(rule: AnyRule, sizes: &[usize]) -> Self {
        Optimizer {
            rule,
            scalars: vec![rule.fresh_scalars(); sizes.len()],
            state: sizes
                .iter()
                .map(|&n| vec![vec![0.0; n]; rule.state_slots()])
                .collect(),
        }
    }

    /// One step of every tensor with [`Optimizer::rule`]; `grads[i]` belongs to
    /// `params[i]`.
    pub fn step(
        &mut self,
        params: &mut [Vec<f32>],
        grads: &[Vec<f32>],
    ) -> Result<(), gradstep::Error> {
        let rule = self.rule;
        let tensors = params.iter_mut().zip(grads);
        for ((p, g), (scalars, state)) in tensors.zip(self.scalars.iter_mut().zip(&mut self.state))
        {
            let mut slots: Vec<&mut [f32]> = state.iter_mut().map(|s| &mut s[..]).collect();
            rule.step(scalars, p, g, &mut slots)?;
        }
        Ok(())
    }
}

/// `steps` steps of `rule` on `function` from `start`, the learning rate (and momentum)
/// set by `schedule` before each step if there is one.
pub fn run(
    rule: &AnyRule,
    function: &Function,
    start: [f64; 2],
    steps: usize,
    schedule: Option<&Schedule>,
) -> Result<Run, gradstep::Error> {
    descend(*rule, start, function.grad, steps, schedule)
}

/// The optimization loop on a 2-D function given by its gradient, from `start`.
pub fn descend(
    mut rule: AnyRule,
    start: [f64; 2],
    mut grad: impl FnMut([f64; 2]) -> [f64; 2],
    steps: usize,
    schedule: Option<&Schedule>,
) -> Result<Run, gradstep::Error> {
    let mut running = schedule.map(|s| s.start(&mut rule)).transpose()?;
    let mut x = start;
    let mut path = Vec::with_capacity(steps + 1);
    let mut lrs = Vec::with_capacity(steps);
    path.push(x);
    let mut state = [[0.0f64; 2]; MAX_STATE_SLOTS];
    let mut scalars = rule.fresh_scalars();
    for t in 0..steps {
        // The schedule steps after each optimizer step but the last (torch's
        // `scheduler.step()` after `optimizer.step()`; OneCycleLR's total_steps = steps).
        if t > 0
            && let Some(s) = &mut running
        {
            s.step(&mut rule, f64::NAN)?;
        }
        let g = grad(x);
        if !(g[0].is_finite() && g[1].is_finite()) {
            break;
        }
        let mut slots = state.each_mut().map(|s| &mut s[..]);
        rule.step(&mut scalars, &mut x, &g, &mut slots[..rule.state_slots()])?;
        lrs.push(rule.lr());
        path.push(x);
        if !(x[0].is_finite() && x[1].is_finite()) {
            break;
        }
    }
    Ok(Run { path, lrs })
}
