//! Every update rule of the kernel crate, by name, with its hyperparameters by field
//! name: `sgd:lr=0.01,momentum=0.9`.

use std::str::FromStr;

use gradstep::schedules::{AnyScheduler, Group, Scheduler};
use gradstep::{MAX_STATE_SLOTS, Rule};

use crate::functions::{Function, num};

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
    /// The value as `--help` shows a default.
    fn show(&self) -> String;
}

impl Value for f64 {
    const WHAT: &'static str = "a number";
    fn parse(text: &str) -> Option<Self> {
        f64::from_str(text).ok()
    }
    fn show(&self) -> String {
        num(*self)
    }
}

impl Value for bool {
    const WHAT: &'static str = "true or false";
    fn parse(text: &str) -> Option<Self> {
        bool::from_str(text).ok()
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Value for u64 {
    const WHAT: &'static str = "a whole number";
    fn parse(text: &str) -> Option<Self> {
        u64::from_str(text).ok()
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// One run: every iterate from the start, ending early at the first non-finite one.
pub struct Run {
    /// x₀, x₁, …
    pub path: Vec<[f64; 2]>,
}

macro_rules! rules {
    ($($variant:ident $name:literal { $($field:ident: $ty:ty),* $(,)? })*) => {
        /// Any rule of the kernel crate, with its hyperparameters.
        #[derive(Clone, Copy, Debug)]
        pub enum AnyRule {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant(gradstep::$variant),
            )*
        }

        /// The rule names, in the order `--help` lists them.
        pub const RULES: &[&str] = &[$($name),*];

        impl AnyRule {
            /// The rule called `name`, with torch's defaults.
            pub fn new(name: &str) -> Option<AnyRule> {
                match name {
                    $($name => Some(AnyRule::$variant(Default::default())),)*
                    _ => None,
                }
            }

            /// The hyperparameter fields.
            pub fn fields(&self) -> &'static [&'static str] {
                match self {
                    $(AnyRule::$variant(_) => &[$(stringify!($field)),*],)*
                }
            }

            /// `field=default` for every field, for `--help`.
            pub fn defaults(&self) -> Vec<String> {
                match self {
                    $(AnyRule::$variant(r) => vec![
                        $(format!("{}={}", stringify!($field), Value::show(&r.$field))),*
                    ],)*
                }
            }

            /// Sets the fields of `spec`; the values are checked by `validate` later.
            fn set(&mut self, spec: &Spec) -> Result<(), String> {
                let fields = self.fields();
                for (field, value) in &spec.fields {
                    match self {
                        $(AnyRule::$variant(r) => match field.as_str() {
                            $(stringify!($field) => r.$field = spec.parse_value::<$ty>(field, value)?,)*
                            _ => return Err(spec.unknown_field(field, fields)),
                        },)*
                    }
                }
                Ok(())
            }

            /// The kernel's own check of the hyperparameters.
            pub fn validate(&self) -> Result<(), gradstep::Error> {
                match self {
                    $(AnyRule::$variant(r) => r.validate(),)*
                }
            }

            /// The learning rate.
            pub fn lr(&self) -> f64 {
                match self {
                    $(AnyRule::$variant(r) => r.lr,)*
                }
            }

            /// An optimizer for f32 parameter tensors of the given lengths, each with
            /// its own state (as torch keeps `optimizer.state[p]` per parameter).
            pub fn optimizer(&self, sizes: &[usize]) -> Box<dyn Optimizer> {
                match *self {
                    $(AnyRule::$variant(r) => Box::new(Tensors::new(
                        r,
                        |mut r, lr| {
                            r.lr = lr;
                            r
                        },
                        sizes,
                    )),)*
                }
            }

            /// `steps` steps on `function` from its start, the learning rate set by
            /// `schedule` before each step if there is one.
            pub fn run(
                &self,
                function: &Function,
                steps: usize,
                schedule: Option<AnyScheduler>,
            ) -> Result<Run, gradstep::Error> {
                match *self {
                    $(AnyRule::$variant(r) => descend(
                        r,
                        r.lr,
                        |mut r, lr| {
                            r.lr = lr;
                            r
                        },
                        function,
                        steps,
                        schedule,
                    ),)*
                }
            }
        }

        /// Fails to compile when a rule gains a field that is not listed above.
        #[allow(dead_code)]
        fn every_field_is_listed(rule: AnyRule) {
            match rule {
                $(AnyRule::$variant(gradstep::$variant { $($field: _),* }) => {})*
            }
        }
    };
}

rules! {
    Sgd "sgd" { lr: f64, momentum: f64, dampening: f64, weight_decay: f64, nesterov: bool, maximize: bool }
    Adam "adam" {
        lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64,
        decoupled_weight_decay: bool, amsgrad: bool, maximize: bool,
    }
    AdamW "adamw" { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64, amsgrad: bool, maximize: bool }
    Adamax "adamax" { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64, maximize: bool }
    NAdam "nadam" {
        lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64, momentum_decay: f64,
        decoupled_weight_decay: bool, maximize: bool,
    }
    RAdam "radam" {
        lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64,
        decoupled_weight_decay: bool, maximize: bool,
    }
    Adagrad "adagrad" {
        lr: f64, lr_decay: f64, weight_decay: f64, initial_accumulator_value: f64, eps: f64,
        maximize: bool,
    }
    Adadelta "adadelta" { lr: f64, rho: f64, eps: f64, weight_decay: f64, maximize: bool }
    RmsProp "rmsprop" {
        lr: f64, alpha: f64, eps: f64, weight_decay: f64, momentum: f64, centered: bool,
        maximize: bool,
    }
    Rprop "rprop" {
        lr: f64, etaminus: f64, etaplus: f64, step_size_min: f64, step_size_max: f64,
        maximize: bool,
    }
    Asgd "asgd" { lr: f64, lambd: f64, alpha: f64, t0: f64, weight_decay: f64, maximize: bool }
}

impl AnyRule {
    /// The rule a spec describes, its fields set and checked by the kernel's `validate`.
    pub fn from_spec(spec: &Spec) -> Result<AnyRule, String> {
        let mut rule = AnyRule::new(&spec.name)
            .ok_or_else(|| format!("unknown rule '{}' (rules: {})", spec.name, RULES.join(", ")))?;
        rule.set(spec)?;
        rule.validate()
            .map_err(|e| format!("rule '{}': {e}", spec.name))?;
        Ok(rule)
    }
}

/// A rule stepping several f32 parameter tensors at a learning rate given per step.
pub trait Optimizer {
    /// One step of every tensor at learning rate `lr`; `grads[i]` belongs to `params[i]`.
    fn step(
        &mut self,
        lr: f64,
        params: &mut [Vec<f32>],
        grads: &[Vec<f32>],
    ) -> Result<(), gradstep::Error>;
}

/// A rule with its scalar state and state slices for each tensor.
struct Tensors<R: Rule> {
    rule: R,
    with_lr: fn(R, f64) -> R,
    scalars: Vec<R::Scalars>,
    /// `state[i]` holds the rule's state slices for tensor `i`.
    state: Vec<Vec<Vec<f32>>>,
}

impl<R: Rule> Tensors<R> {
    fn new(rule: R, with_lr: fn(R, f64) -> R, sizes: &[usize]) -> Self {
        Tensors {
            rule,
            with_lr,
            scalars: vec![R::Scalars::default(); sizes.len()],
            state: sizes
                .iter()
                .map(|&n| vec![vec![0.0; n]; rule.state_slots()])
                .collect(),
        }
    }
}

impl<R: Rule> Optimizer for Tensors<R> {
    fn step(
        &mut self,
        lr: f64,
        params: &mut [Vec<f32>],
        grads: &[Vec<f32>],
    ) -> Result<(), gradstep::Error> {
        let rule = (self.with_lr)(self.rule, lr);
        let tensors = params.iter_mut().zip(grads);
        for ((p, g), (scalars, state)) in tensors.zip(self.scalars.iter_mut().zip(&mut self.state))
        {
            let mut slots: Vec<&mut [f32]> = state.iter_mut().map(|s| &mut s[..]).collect();
            rule.step(scalars, p, g, &mut slots)?;
        }
        Ok(())
    }
}

/// The optimization loop, for any rule: `with_lr` puts the scheduled learning rate into
/// the rule before each step.
fn descend<R: Rule>(
    mut rule: R,
    lr: f64,
    with_lr: impl Fn(R, f64) -> R,
    function: &Function,
    steps: usize,
    mut schedule: Option<AnyScheduler>,
) -> Result<Run, gradstep::Error> {
    let mut group = Group::new(lr);
    if let Some(s) = &mut schedule {
        s.start(&mut group)?;
        rule = with_lr(rule, group.lr);
    }
    let mut x = function.start;
    let mut path = Vec::with_capacity(steps + 1);
    path.push(x);
    let mut state = [[0.0f64; 2]; MAX_STATE_SLOTS];
    let mut scalars = R::Scalars::default();
    for _ in 0..steps {
        let g = (function.grad)(x);
        if !(g[0].is_finite() && g[1].is_finite()) {
            break;
        }
        let [a, b, c] = &mut state;
        let mut slots: [&mut [f64]; MAX_STATE_SLOTS] = [a, b, c];
        rule.step(&mut scalars, &mut x, &g, &mut slots[..rule.state_slots()])?;
        path.push(x);
        if !(x[0].is_finite() && x[1].is_finite()) {
            break;
        }
        if let Some(s) = &mut schedule {
            s.step(&mut group)?;
            rule = with_lr(rule, group.lr);
        }
    }
    Ok(Run { path })
}
