//! Every update rule of the kernel crate, by name, with its hyperparameters by field
//! name: `sgd:lr=0.01,momentum=0.9`. The rules, their fields and defaults all come from
//! the kernel's registry (`gradstep::rules`); this file names no rule.

use std::str::FromStr;

use crate::functions::{Function, num};
use crate::schedule::Schedule;
use gradstep::lookahead::{Lookahead, MAX_SLOTS};
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
    /// A rule wrapped as `lookahead(NAME:FIELDS):k=..,alpha=..,momentum=..`: the
    /// Lookahead options (the spec's name and fields are the wrapped rule's).
    pub lookahead: Option<Lookahead<()>>,
}

impl Spec {
    /// Parses `NAME[:FIELD=VALUE,...]`, or for a rule the composite
    /// `lookahead(NAME[:FIELD=VALUE,...])[:k=K,alpha=A,momentum=M]`.
    pub fn parse(kind: &'static str, text: &str) -> Result<Spec, String> {
        if kind == "rule" && Lookahead::is_spec(text) {
            let la = Lookahead::parse(text).map_err(|e| e.to_string())?;
            // Parsed: the text has the form lookahead( INNER ) ...
            let inner = text
                .split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'))
                .map_or("", |(inner, _)| inner);
            let mut spec = Spec::parse(kind, inner)?;
            spec.lookahead = Some(la.over(()));
            return Ok(spec);
        }
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
        Ok(Spec {
            kind,
            name,
            fields,
            lookahead: None,
        })
    }

    /// `name(field=value, ...)`, for legends and the table;
    /// `lookahead[k=5,α=0.5](adam(lr=0.1))` for a wrapped rule.
    pub fn label(&self) -> String {
        if let Some(la) = self.lookahead {
            let momentum = match la.momentum.name() {
                "none" => String::new(),
                m => format!(",{m}"),
            };
            let inner = Spec {
                lookahead: None,
                ..self.clone()
            };
            return format!(
                "lookahead[k={},α={}{momentum}]({})",
                la.k,
                num(la.alpha),
                inner.label()
            );
        }
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
    if spec.lookahead.is_some() {
        return Err(format!(
            "rule 'lookahead({})': lookahead(...) is taken by compare and train only",
            spec.name
        ));
    }
    from_spec_wrapped(spec).map(|(rule, _)| rule)
}

/// [`from_spec`] for the commands that take a composite: the rule and its Lookahead
/// options, if the spec wraps it (checked together: k, α and the rule).
pub fn from_spec_wrapped(spec: &Spec) -> Result<(AnyRule, Option<Lookahead<()>>), String> {
    let rule = plain_rule(spec)?;
    if let Some(la) = spec.lookahead {
        la.over(rule)
            .validate()
            .map_err(|e| format!("lookahead: {e}"))?;
    }
    Ok((rule, spec.lookahead))
}

/// The wrapped (or only) rule of a spec.
fn plain_rule(spec: &Spec) -> Result<AnyRule, String> {
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
    /// Lookahead options wrapping the rule, if any (fixed for the run).
    lookahead: Option<Lookahead<()>>,
    scalars: Vec<AnyScalars>,
    /// `state[i]` holds the rule's state slices for tensor `i`.
    state: Vec<Vec<Vec<f32>>>,
}

impl Optimizer {
    /// Fresh state for tensors of the given lengths, the rule wrapped in `lookahead`
    /// if given (its slow weights are more state slices).
    pub fn wrapped(rule: AnyRule, lookahead: Option<Lookahead<()>>, sizes: &[usize]) -> Self {
        Optimizer {
            rule,
            lookahead,
            scalars: vec![rule.fresh_scalars(); sizes.len()],
            state: sizes
                .iter()
                .map(|&n| vec![vec![0.0; n]; slots(rule, lookahead)])
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
            step(rule, self.lookahead, scalars, p, g, &mut slots)?;
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

/// The state slices of `rule`, wrapped in `lookahead` if given.
fn slots(rule: AnyRule, lookahead: Option<Lookahead<()>>) -> usize {
    lookahead.map_or(rule.state_slots(), |la| la.over(rule).state_slots())
}

/// One step of `rule`, wrapped in `lookahead` if given.
fn step<T: gradstep::Real>(
    rule: AnyRule,
    lookahead: Option<Lookahead<()>>,
    scalars: &mut AnyScalars,
    params: &mut [T],
    grads: &[T],
    state: &mut [&mut [T]],
) -> Result<(), gradstep::Error> {
    match lookahead {
        Some(la) => la.over(rule).step(scalars, params, grads, state),
        None => rule.step(scalars, params, grads, state),
    }
}

/// The optimization loop on a 2-D function given by its gradient, from `start`.
pub fn descend(
    rule: AnyRule,
    start: [f64; 2],
    grad: impl FnMut([f64; 2]) -> [f64; 2],
    steps: usize,
    schedule: Option<&Schedule>,
) -> Result<Run, gradstep::Error> {
    descend_wrapped(rule, None, start, grad, steps, schedule)
}

/// [`descend`] with the rule wrapped in Lookahead if `lookahead` is given.
pub fn descend_wrapped(
    mut rule: AnyRule,
    lookahead: Option<Lookahead<()>>,
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
    let mut state = [[0.0f64; 2]; MAX_SLOTS];
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
        let mut state_views = state.each_mut().map(|s| &mut s[..]);
        let count = slots(rule, lookahead);
        step(
            rule,
            lookahead,
            &mut scalars,
            &mut x,
            &g,
            &mut state_views[..count],
        )?;
        lrs.push(rule.lr());
        path.push(x);
        if !(x[0].is_finite() && x[1].is_finite()) {
            break;
        }
    }
    Ok(Run { path, lrs })
}
