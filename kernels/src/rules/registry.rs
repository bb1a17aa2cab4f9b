//! The one table of rules, and the rule chosen at run time ([`AnyRule`]).
//!
//! [`for_each_rule!`](crate::for_each_rule) holds one row per rule: its stable id, its
//! type, its name, torch's class name, its scalar-state type, the field that schedules
//! cycle as "momentum" (torch's `momentum`, or `betas[0]`), and its hyperparameter
//! fields, numbers first, then flags, in checkpoint order. Everything that enumerates
//! rules expands from that row (this module's [`RuleId`], [`AnyRule`] and its fields by
//! name; the checkpoint codec; the C ABI; the property tests; the torch fixtures'
//! completeness test; the benchmarks), the way rust-lang/libm's `for_each_function!`
//! drives libm's tests, so no other file lists the rules by hand.
//!
//! ```
//! use gradstep::rules::{AnyRule, AnyScalars, Value};
//!
//! // As a config file would name it:
//! let mut rule = AnyRule::parse("adam:lr=3e-4,amsgrad")?;
//! assert_eq!(rule.name(), "adam");
//! assert_eq!(rule.get("amsgrad"), Some(Value::Flag(true)));
//! assert_eq!(rule.state_slots(), 3);
//! rule.set("beta2", Value::Number(0.99))?;
//!
//! let (mut params, grads) = ([1.0f32, -2.0], [0.5f32, -0.5]);
//! let mut state = [0.0f32; 6];
//! let mut scalars: AnyScalars = rule.fresh_scalars();
//! rule.step_flat(&mut scalars, &mut params, &grads, &mut state)?;
//! assert_eq!(scalars.step(), 1);
//! assert!((params[0] - (1.0 - 3e-4)).abs() < 1e-6);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```
//!
//! ## Adding a rule
//! 1. Its file in `kernels/src/rules/` (hyperparameters with torch's defaults,
//!    validation, slot names, coefficients, element kernel, scalar reference).
//! 2. One row below, with the next unused id (ids are never reused).
//! 3. Its fixture recording in `tests/fixtures/` and its row in the tolerance table.
//!
//! Until the C ABI has the rule's struct and union member, and the property tests a
//! subject for it, the workspace does not compile; the completeness test
//! (`tests/registry.rs`) fails while a fixture, tolerance row, C case or bench entry is
//! missing.

use core::fmt;

use crate::error::Error;
use crate::real::Real;
use crate::rules::{NormSums, Rule};
use crate::{
    Adadelta, Adagrad, Adam, AdamW, Adamax, Adan, Asgd, AsgdScalars, Ftrl, Lamb, NAdam,
    NAdamScalars, OnlineRmsProp, Proximal, RAdam, RmsProp, RmsPropBc, Rprop, ScAdagrad, ScRmsProp,
    Sgd, StepCount,
};

/// The registry: calls `$callback!` with one `{ ... }` row per rule.
///
/// Each row is
/// `{ id: 2, rule: Adam, name: adam, reference: "torch.optim.Adam", scalars: StepCount,
/// momentum: [beta1], f64: [lr, ...], bool: [amsgrad, ...], choice: [] }`: the stable id (never
/// reused), the rule's type (in the crate root), its lower-case name (an identifier, also
/// the C union member), its reference implementation as a Python path (`torch.optim.Adam`;
/// for rules torch lacks, the named reference package's: `optax.lamb`,
/// `pytorch_optimizer.Adan`, `keras.optimizers.Ftrl`; its first component names the
/// fixture directory, `tests/fixtures/<package>/`), the scalar-state type (in the crate
/// root), the field that
/// schedules with momentum cycling drive (empty if none), and the hyperparameter
/// fields, numbers then flags then choices, in the order of the checkpoint's rule
/// section. A choice is written `field: Type`, `Type` a [`Choice`] enum in the crate
/// root (`choice: [momentum: MomentumKind, adapt: AdaptKind]`); rules without one have
/// `choice: []`.
///
/// A callback matches the rows with
///
/// ```text
/// macro_rules! my_callback {
///     ($({
///         id: $id:literal, rule: $rule:ident, name: $name:ident, reference: $reference:literal,
///         scalars: $scalars:ident, momentum: [$($momentum:ident)?],
///         f64: [$($f:ident),*], bool: [$($b:ident),*],
///         choice: [$($c:ident: $ct:ident),*] $(,)?
///     }),* $(,)?) => { ... };
/// }
/// gradstep::for_each_rule!(my_callback);
/// ```
#[macro_export]
macro_rules! for_each_rule {
    ($callback:ident) => {
        $callback! {
            {
                id: 1, rule: Sgd, name: sgd, reference: "torch.optim.SGD", scalars: StepCount,
                momentum: [momentum],
                f64: [lr, momentum, dampening, weight_decay], bool: [nesterov, maximize],
                choice: [],
            },
            {
                id: 2, rule: Adam, name: adam, reference: "torch.optim.Adam", scalars: StepCount,
                momentum: [beta1],
                f64: [lr, beta1, beta2, eps, weight_decay],
                bool: [decoupled_weight_decay, amsgrad, maximize],
                choice: [],
            },
            {
                id: 3, rule: AdamW, name: adamw, reference: "torch.optim.AdamW", scalars: StepCount,
                momentum: [beta1],
                f64: [lr, beta1, beta2, eps, weight_decay], bool: [amsgrad, maximize],
                choice: [],
            },
            {
                id: 4, rule: Adamax, name: adamax, reference: "torch.optim.Adamax", scalars: StepCount,
                momentum: [beta1],
                f64: [lr, beta1, beta2, eps, weight_decay], bool: [maximize],
                choice: [],
            },
            {
                id: 5, rule: NAdam, name: nadam, reference: "torch.optim.NAdam", scalars: NAdamScalars,
                momentum: [beta1],
                f64: [lr, beta1, beta2, eps, weight_decay, momentum_decay],
                bool: [decoupled_weight_decay, maximize],
                choice: [],
            },
            {
                id: 6, rule: RAdam, name: radam, reference: "torch.optim.RAdam", scalars: StepCount,
                momentum: [beta1],
                f64: [lr, beta1, beta2, eps, weight_decay],
                bool: [decoupled_weight_decay, maximize],
                choice: [],
            },
            {
                id: 7, rule: Adagrad, name: adagrad, reference: "torch.optim.Adagrad", scalars: StepCount,
                momentum: [],
                f64: [lr, lr_decay, weight_decay, initial_accumulator_value, eps],
                bool: [maximize],
                choice: [],
            },
            {
                id: 8, rule: Adadelta, name: adadelta, reference: "torch.optim.Adadelta", scalars: StepCount,
                momentum: [],
                f64: [lr, rho, eps, weight_decay], bool: [maximize],
                choice: [],
            },
            {
                id: 9, rule: RmsProp, name: rmsprop, reference: "torch.optim.RMSprop", scalars: StepCount,
                momentum: [momentum],
                f64: [lr, alpha, eps, weight_decay, momentum], bool: [centered, maximize],
                choice: [],
            },
            {
                id: 10, rule: Rprop, name: rprop, reference: "torch.optim.Rprop", scalars: StepCount,
                momentum: [],
                f64: [lr, etaminus, etaplus, step_size_min, step_size_max], bool: [maximize],
                choice: [],
            },
            {
                id: 11, rule: Asgd, name: asgd, reference: "torch.optim.ASGD", scalars: AsgdScalars,
                momentum: [],
                f64: [lr, lambd, alpha, t0, weight_decay], bool: [maximize],
                choice: [],
            },
            {
                id: 12, rule: Proximal, name: proximal, reference: "seed001.proximal",
                scalars: StepCount, momentum: [beta1],
                f64: [lr, beta1, dampening, beta2, gamma, eps, initial_accumulator_value, l1, l2],
                bool: [maximize],
                choice: [
                    momentum: MomentumKind, adapt: AdaptKind, l2_kind: L2Kind, l1_kind: L1Kind,
                    representation: Representation
                ],
            },
            {
                id: 13, rule: Ftrl, name: ftrl, reference: "keras.optimizers.Ftrl",
                scalars: StepCount, momentum: [],
                f64: [lr, lr_power, initial_accumulator_value, l1, l2, l2_shrinkage, beta],
                bool: [single_l2, sqrt_denominator, maximize],
                choice: [],
            },
            {
                id: 14, rule: Adan, name: adan, reference: "pytorch_optimizer.Adan",
                scalars: StepCount, momentum: [beta1],
                f64: [lr, beta1, beta2, beta3, eps, weight_decay],
                bool: [decoupled_weight_decay, maximize],
                choice: [],
            },
            {
                id: 15, rule: Lamb, name: lamb, reference: "optax.lamb",
                scalars: StepCount, momentum: [beta1],
                f64: [lr, beta1, beta2, eps, weight_decay],
                bool: [maximize, decoupled_weight_decay, no_v_correction, clamp_norm, eps_in_ratio],
                choice: [],
            },
            {
                id: 16, rule: RmsPropBc, name: rmsprop_bc, reference: "optax.rmsprop_bc",
                scalars: StepCount, momentum: [],
                f64: [lr, alpha, eps, weight_decay], bool: [maximize],
                choice: [],
            },
            {
                id: 17, rule: OnlineRmsProp, name: online_rmsprop,
                reference: "mukkamala2017.online_rmsprop", scalars: StepCount, momentum: [],
                f64: [lr, gamma, eps, weight_decay], bool: [maximize],
                choice: [],
            },
            {
                id: 18, rule: ScAdagrad, name: sc_adagrad,
                reference: "mukkamala2017.sc_adagrad", scalars: StepCount, momentum: [],
                f64: [lr, xi_1, xi_2, weight_decay], bool: [maximize],
                choice: [],
            },
            {
                id: 19, rule: ScRmsProp, name: sc_rmsprop,
                reference: "mukkamala2017.sc_rmsprop", scalars: StepCount, momentum: [],
                f64: [lr, gamma, xi_1, xi_2, weight_decay], bool: [maximize],
                choice: [],
            },
        }
    };
}

/// The scalar state of a rule: the step counter and whatever else the rule keeps
/// between steps as plain numbers.
pub trait ScalarState: Copy + Default + PartialEq + fmt::Debug {
    /// Steps taken so far; 0 means fresh state.
    fn step(&self) -> u64;
    /// Sets the step counter, leaving the rest as it is: [`Rule::step`] stores the new
    /// step number with it after a successful step.
    fn set_step(&mut self, step: u64);

    /// [`Error::InvalidScalarState`] unless a run of steps can produce this state
    /// (every state at step 0, whose other fields the next step ignores). Checked
    /// before every step and every checkpoint is written.
    fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Whether [`Rule::run`] may change anything of this state that a refused step must
    /// put back, so that the step shell copies the state first. `false` for
    /// [`StepCount`], whose step counter only the shell sets, after success, and whose
    /// powers cache never changes a result (a cache advanced by a refused step is
    /// taken as it is by the retried one): the 112-byte copy was about 110 of the
    /// ~1 800 instructions of Adam's step on the Cortex-M4F.
    #[doc(hidden)]
    const RUN_CHANGES: bool = true;
}

/// A scalar state that [`AnyScalars`] holds: the registered rules' kinds.
pub trait ScalarKind: ScalarState + Into<AnyScalars> {
    /// The state of this kind inside `any`, if it is of this kind.
    fn from_any(any: AnyScalars) -> Option<Self>;
    /// [`ScalarKind::from_any`], borrowed.
    fn from_any_mut(any: &mut AnyScalars) -> Option<&mut Self>;
}

/// A hyperparameter that takes one of a few named values: a `#[repr(u32)]` enum whose
/// variants are numbered `0, 1, …` in the order of [`Choice::NAMES`] (made with the
/// crate's `choice_enum!`). The index is what checkpoints store (one `u64`) and what
/// the C ABI passes (a `uint32_t`, with named constants in the header).
pub trait Choice: Copy + PartialEq + fmt::Debug + 'static {
    /// The names of the values, in index order (`"none"`, `"heavy_ball"`, ...).
    const NAMES: &'static [&'static str];
    /// The value's index in [`Choice::NAMES`].
    fn index(self) -> u32;
    /// The value with this index, if any.
    fn from_index(index: u32) -> Option<Self>;
    /// The value's name.
    fn name(self) -> &'static str {
        Self::NAMES
            .get(self.index() as usize)
            .copied()
            .unwrap_or("")
    }
    /// The value called `name` (exactly, as in [`Choice::NAMES`]), if any.
    fn from_name(name: &str) -> Option<Self> {
        let k = Self::NAMES.iter().position(|&n| n == name)?;
        Self::from_index(u32::try_from(k).ok()?)
    }
}

/// Defines a [`Choice`] enum: `choice_enum! { /// docs \n pub enum E { /// docs \n A = 0 => "a", ... } }`.
/// The indices must be `0, 1, …` in order (the registry's tests check every choice type).
macro_rules! choice_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $index:literal => $text:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        $vis enum $name {
            $($(#[$vmeta])* $variant = $index),*
        }

        impl $crate::rules::Choice for $name {
            const NAMES: &'static [&'static str] = &[$($text),*];
            fn index(self) -> u32 {
                self as u32
            }
            fn from_index(index: u32) -> Option<Self> {
                match index {
                    $($index => Some($name::$variant),)*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use choice_enum;

/// What kind of value a hyperparameter field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// A number (`f64`).
    Number,
    /// A flag (`bool`).
    Flag,
    /// One of these names (a [`Choice`]).
    Choice(&'static [&'static str]),
}

impl FieldKind {
    /// "a number", "true or false" or "one of its choices", for messages.
    pub const fn what(self) -> &'static str {
        match self {
            FieldKind::Number => "a number",
            FieldKind::Flag => "true or false",
            FieldKind::Choice(_) => "one of its choices",
        }
    }
}

/// A hyperparameter field of a rule, as the registry lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// The field's name, as in the rule's struct (`"lr"`, `"amsgrad"`, ...).
    pub name: &'static str,
    /// What it holds.
    pub kind: FieldKind,
}

/// A hyperparameter's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// The value of a number field.
    Number(f64),
    /// The value of a flag.
    Flag(bool),
    /// The value of a choice field: the name of the value (`"nesterov"`).
    Choice(&'static str),
}

impl Value {
    /// Whether this value fits a field of `kind` (for a choice: one of its names).
    pub fn fits(self, kind: FieldKind) -> bool {
        match (self, kind) {
            (Value::Number(_), FieldKind::Number) | (Value::Flag(_), FieldKind::Flag) => true,
            (Value::Choice(name), FieldKind::Choice(names)) => names.contains(&name),
            _ => false,
        }
    }

    /// Parses `text` as a value of `kind` (`f64`'s syntax, `true`/`false`, or one of the
    /// choice's names, exactly).
    pub fn parse(kind: FieldKind, text: &str) -> Option<Value> {
        match kind {
            FieldKind::Number => text.parse().ok().map(Value::Number),
            FieldKind::Flag => text.parse().ok().map(Value::Flag),
            FieldKind::Choice(names) => names
                .iter()
                .find(|&&n| n == text)
                .map(|&n| Value::Choice(n)),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(x) => fmt::Display::fmt(x, f),
            Value::Flag(b) => fmt::Display::fmt(b, f),
            Value::Choice(name) => f.write_str(name),
        }
    }
}

/// Why a rule could not be chosen or configured by name. The borrowed parts point into
/// the text given; [`fmt::Display`] writes the message with the valid choices, e.g.
/// `unknown rule 'adma' (rules: sgd, adam, ...)`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum SpecError<'a> {
    /// The spec has no rule name.
    NoName,
    /// No rule has this name.
    UnknownRule {
        /// The name given.
        name: &'a str,
    },
    /// The rule has no field of this name.
    UnknownField {
        /// The rule.
        rule: RuleId,
        /// The field given.
        field: &'a str,
    },
    /// The text is not a value of the field's kind.
    BadValue {
        /// The rule.
        rule: RuleId,
        /// The field.
        field: &'static str,
        /// The value given.
        value: &'a str,
        /// What the field holds.
        kind: FieldKind,
    },
    /// A field is given twice in one spec.
    Repeated {
        /// The rule.
        rule: RuleId,
        /// The field.
        field: &'static str,
    },
    /// The rule has no field that schedules can cycle as momentum.
    NoMomentum {
        /// The rule.
        rule: RuleId,
    },
    /// The values are all well-formed, but the rule refuses them ([`Rule::validate`]).
    Invalid {
        /// The rule.
        rule: RuleId,
        /// The rule's own error.
        error: Error,
    },
}

impl fmt::Display for SpecError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SpecError::NoName => f.write_str("the rule has no name"),
            SpecError::UnknownRule { name } => {
                write!(f, "unknown rule '{name}' (rules: ")?;
                list(f, RuleId::ALL.iter().map(|r| r.name()))?;
                f.write_str(")")
            }
            SpecError::UnknownField { rule, field } => {
                write!(f, "rule '{rule}': unknown field '{field}' (fields: ")?;
                list(f, rule.fields().iter().map(|x| x.name))?;
                f.write_str(")")
            }
            SpecError::BadValue {
                rule,
                field,
                value,
                kind,
            } => {
                write!(f, "rule '{rule}': {field} = '{value}' is not ")?;
                match kind {
                    FieldKind::Choice(names) => {
                        f.write_str("one of ")?;
                        list(f, names.iter().copied())
                    }
                    _ => f.write_str(kind.what()),
                }
            }
            SpecError::Repeated { rule, field } => {
                write!(f, "rule '{rule}': field '{field}' is given twice")
            }
            SpecError::NoMomentum { rule } => {
                write!(f, "rule '{rule}' has no momentum (or β₁) to set")
            }
            SpecError::Invalid { rule, error } => write!(f, "rule '{rule}': {error}"),
        }
    }
}

impl core::error::Error for SpecError<'_> {}

fn list<'s>(f: &mut fmt::Formatter<'_>, items: impl Iterator<Item = &'s str>) -> fmt::Result {
    for (i, item) in items.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(item)?;
    }
    Ok(())
}

/// The scalar state of any rule, as [`AnyRule`] keeps it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AnyScalars {
    /// [`StepCount`]: the rules whose only scalar state is the step counter.
    Step(StepCount),
    /// [`NAdamScalars`].
    NAdam(NAdamScalars),
    /// [`AsgdScalars`].
    Asgd(AsgdScalars),
}

impl AnyScalars {
    /// Steps taken so far; 0 means fresh state.
    pub fn step(&self) -> u64 {
        match self {
            AnyScalars::Step(s) => s.step,
            AnyScalars::NAdam(s) => s.step,
            AnyScalars::Asgd(s) => s.step,
        }
    }
}

macro_rules! scalar_state {
    ($($t:ident => $variant:ident, $changes:literal),*) => {$(
        impl From<$t> for AnyScalars {
            fn from(s: $t) -> Self {
                AnyScalars::$variant(s)
            }
        }
        impl ScalarState for $t {
            fn step(&self) -> u64 {
                self.step
            }
            fn set_step(&mut self, step: u64) {
                self.step = step;
            }
            fn check(&self) -> Result<(), Error> {
                self.check_reachable()
            }
            const RUN_CHANGES: bool = $changes;
        }
        impl ScalarKind for $t {
            fn from_any(any: AnyScalars) -> Option<Self> {
                match any {
                    AnyScalars::$variant(s) => Some(s),
                    _ => None,
                }
            }
            fn from_any_mut(any: &mut AnyScalars) -> Option<&mut Self> {
                match any {
                    AnyScalars::$variant(s) => Some(s),
                    _ => None,
                }
            }
        }
    )*};
}

scalar_state!(StepCount => Step, false, NAdamScalars => NAdam, true, AsgdScalars => Asgd, true);

/// The field list of a registry row.
macro_rules! field_list {
    ([$($f:ident),*], [$($b:ident),*], [$($c:ident: $ct:ident),*]) => {
        &[
            $(Field { name: stringify!($f), kind: FieldKind::Number },)*
            $(Field { name: stringify!($b), kind: FieldKind::Flag },)*
            $(Field {
                name: stringify!($c),
                kind: FieldKind::Choice(<crate::$ct as Choice>::NAMES),
            },)*
        ]
    };
}

/// `Some("field")` for the row's momentum field, `None` without one.
macro_rules! momentum_name {
    ([]) => {
        None
    };
    ([$m:ident]) => {
        Some(stringify!($m))
    };
}

/// `Some(r.field)` for the row's momentum field, `None` without one.
macro_rules! momentum_of {
    ($r:ident, []) => {
        None
    };
    ($r:ident, [$m:ident]) => {
        Some($r.$m)
    };
}

/// Sets the row's momentum field; `false` without one.
macro_rules! set_momentum_of {
    ($r:ident, $v:ident, []) => {{
        let _ = ($r, $v);
        false
    }};
    ($r:ident, $v:ident, [$m:ident]) => {{
        $r.$m = $v;
        true
    }};
}

macro_rules! registry {
    ($({
        id: $id:literal, rule: $rule:ident, name: $name:ident, reference: $reference:literal,
        scalars: $scalars:ident, momentum: [$($momentum:ident)?],
        f64: [$($f:ident),*], bool: [$($b:ident),*],
        choice: [$($c:ident: $ct:ident),*] $(,)?
    }),* $(,)?) => {
        /// The stable number of each rule (checkpoints, the C ABI). Never reused.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        #[non_exhaustive]
        pub enum RuleId {
            $(
                #[doc = concat!("[`", stringify!($rule), "`](crate::", stringify!($rule),
                    ") (reference: `", $reference, "`).")]
                $rule = $id,
            )*
        }

        impl RuleId {
            /// Every rule, in id order.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$rule),*];

            /// The rule with this number, if any.
            pub const fn from_u16(id: u16) -> Option<Self> {
                match id {
                    $($id => Some(RuleId::$rule),)*
                    _ => None,
                }
            }

            /// The rule called `name` (its [`RuleId::name`] or its reference's class
            /// name, `"Adam"`, `"RMSprop"`, in any case), if any.
            pub fn from_name(name: &str) -> Option<Self> {
                RuleId::ALL.iter().copied().find(|r| {
                    name.eq_ignore_ascii_case(r.name())
                        || name.eq_ignore_ascii_case(r.reference_class())
                })
            }

            /// The rule's name, lower case as [`Rule::NAME`] (`"adam"`, `"sgd"`, ...).
            pub const fn name(self) -> &'static str {
                match self {
                    $(RuleId::$rule => stringify!($name),)*
                }
            }

            /// The reference implementation, as a Python path: `"torch.optim.Adam"`,
            /// or for a rule torch lacks its named reference package's
            /// (`"optax.lamb"`, `"pytorch_optimizer.Adan"`).
            pub const fn reference(self) -> &'static str {
                match self {
                    $(RuleId::$rule => $reference,)*
                }
            }

            /// The reference's package: the first component of [`RuleId::reference`]
            /// (`"torch"`, `"optax"`, ...), which names its fixture directory.
            pub fn reference_package(self) -> &'static str {
                let r = self.reference();
                r.split('.').next().unwrap_or(r)
            }

            /// The reference's class or function name: the last component of
            /// [`RuleId::reference`] (`"Adam"`, `"lamb"`).
            pub fn reference_class(self) -> &'static str {
                let r = self.reference();
                r.rsplit('.').next().unwrap_or(r)
            }

            /// `torch.optim`'s class name (`"Adam"`, `"SGD"`, ...), if torch has the rule.
            pub fn torch_name(self) -> Option<&'static str> {
                self.reference().strip_prefix("torch.optim.")
            }

            /// The hyperparameter fields, numbers first, then flags.
            pub const fn fields(self) -> &'static [Field] {
                match self {
                    $(RuleId::$rule => field_list!([$($f),*], [$($b),*], [$($c: $ct),*]),)*
                }
            }

            /// The field that schedules cycle as momentum (`momentum`, or `beta1` for
            /// torch's `betas[0]`), if the rule has one.
            pub const fn momentum_field(self) -> Option<&'static str> {
                match self {
                    $(RuleId::$rule => momentum_name!([$($momentum)?]),)*
                }
            }

            /// The rule with torch's defaults.
            pub fn default_rule(self) -> AnyRule {
                match self {
                    $(RuleId::$rule => AnyRule::$rule($rule::default()),)*
                }
            }
        }

        /// Any rule, chosen at run time: by name ([`AnyRule::parse`], [`AnyRule::named`]),
        /// from a checkpoint ([`crate::checkpoint::decode_any`]), or from a C caller.
        /// Its fields are read and written by name; it steps like the rule it holds.
        #[derive(Clone, Copy, Debug, PartialEq)]
        #[non_exhaustive]
        pub enum AnyRule {
            $(
                #[doc = concat!("[`", stringify!($rule), "`](crate::", stringify!($rule), ").")]
                $rule($rule),
            )*
        }

        $(
            impl From<$rule> for AnyRule {
                fn from(r: $rule) -> Self {
                    AnyRule::$rule(r)
                }
            }

            impl TryFrom<AnyRule> for $rule {
                type Error = AnyRule;
                /// The rule inside, or the `AnyRule` back if it holds another.
                fn try_from(any: AnyRule) -> Result<Self, AnyRule> {
                    match any {
                        AnyRule::$rule(r) => Ok(r),
                        other => Err(other),
                    }
                }
            }
        )*

        impl AnyRule {
            /// The rule's number.
            pub const fn id(&self) -> RuleId {
                match self {
                    $(AnyRule::$rule(_) => RuleId::$rule,)*
                }
            }

            /// [`Rule::validate`].
            pub fn validate(&self) -> Result<(), Error> {
                match self {
                    $(AnyRule::$rule(r) => r.validate(),)*
                }
            }

            /// [`Rule::WHOLE_SLICE`]: the step needs the whole tensor, in one call or in
            /// parts ([`AnyRule::step_norms_part`]).
            pub const fn whole_slice(&self) -> bool {
                match self {
                    $(AnyRule::$rule(_) => <$rule as Rule>::WHOLE_SLICE,)*
                }
            }

            /// [`Rule::slot_names`].
            pub fn slot_names(&self) -> &'static [&'static str] {
                match self {
                    $(AnyRule::$rule(r) => r.slot_names(),)*
                }
            }

            /// The fresh scalar state (step 0) of the rule's kind.
            pub fn fresh_scalars(&self) -> AnyScalars {
                match self {
                    $(AnyRule::$rule(_) => $scalars::default().into(),)*
                }
            }

            /// The value of the field called `name`, if the rule has one.
            pub fn get(&self, name: &str) -> Option<Value> {
                match self {
                    $(AnyRule::$rule(r) => match name {
                        $(stringify!($f) => Some(Value::Number(r.$f)),)*
                        $(stringify!($b) => Some(Value::Flag(r.$b)),)*
                        $(stringify!($c) => Some(Value::Choice(Choice::name(r.$c))),)*
                        _ => None,
                    },)*
                }
            }

            /// Sets the field called `name`. Refused: a field the rule does not have
            /// ([`SpecError::UnknownField`]) or a value of the other kind
            /// ([`SpecError::BadValue`]). The value's range is checked by
            /// [`AnyRule::validate`] (and by every step).
            pub fn set<'a>(&mut self, name: &'a str, value: Value) -> Result<(), SpecError<'a>> {
                let id = self.id();
                let field = self.field(name)?;
                match (self, value) {
                    $(
                        $((AnyRule::$rule(r), Value::Number(v)) if name == stringify!($f) => r.$f = v,)*
                        $((AnyRule::$rule(r), Value::Flag(v)) if name == stringify!($b) => r.$b = v,)*
                        $((AnyRule::$rule(r), Value::Choice(v))
                            if name == stringify!($c) && <crate::$ct as Choice>::from_name(v).is_some() =>
                        {
                            if let Some(v) = <crate::$ct as Choice>::from_name(v) {
                                r.$c = v;
                            }
                        })*
                    )*
                    (_, value) => return Err(SpecError::BadValue {
                        rule: id,
                        field: field.name,
                        value: match value {
                            Value::Number(_) => "a number",
                            Value::Flag(_) => "a flag",
                            Value::Choice(name) => name,
                        },
                        kind: field.kind,
                    }),
                }
                Ok(())
            }

            /// The learning rate γ.
            pub fn lr(&self) -> f64 {
                match self {
                    $(AnyRule::$rule(r) => r.lr,)*
                }
            }

            /// Sets the learning rate γ (checked by [`AnyRule::validate`]).
            pub fn set_lr(&mut self, lr: f64) {
                match self {
                    $(AnyRule::$rule(r) => r.lr = lr,)*
                }
            }

            /// The value schedules cycle as momentum ([`RuleId::momentum_field`]).
            pub fn momentum(&self) -> Option<f64> {
                match self {
                    $(AnyRule::$rule(r) => {
                        let _ = r;
                        momentum_of!(r, [$($momentum)?])
                    })*
                }
            }

            /// Sets the momentum field ([`RuleId::momentum_field`]); refused
            /// ([`SpecError::NoMomentum`]) for a rule without one.
            pub fn set_momentum(&mut self, momentum: f64) -> Result<(), SpecError<'static>> {
                let rule = self.id();
                let done = match self {
                    $(AnyRule::$rule(r) => set_momentum_of!(r, momentum, [$($momentum)?]),)*
                };
                if done { Ok(()) } else { Err(SpecError::NoMomentum { rule }) }
            }

            /// [`Rule::step`] for the rule inside, with its scalar state in `scalars`
            /// (of the rule's kind: [`Error::WrongScalars`] otherwise).
            pub fn step<T: Real>(
                &self,
                scalars: &mut AnyScalars,
                params: &mut [T],
                grads: &[T],
                state: &mut [&mut [T]],
            ) -> Result<(), Error> {
                let wrong = Error::WrongScalars { rule: self.id() };
                match self {
                    $(AnyRule::$rule(r) => {
                        let s = $scalars::from_any_mut(scalars).ok_or(wrong)?;
                        r.step(s, params, grads, state)
                    })*
                }
            }

            /// [`Rule::step_scratch`] for the rule inside (see [`AnyRule::step`]): the
            /// same bits as [`AnyRule::step`], with `scratch` (as long as `params`) for
            /// a layer-wise rule's update between its two passes.
            pub fn step_scratch<T: Real>(
                &self,
                scalars: &mut AnyScalars,
                params: &mut [T],
                grads: &[T],
                state: &mut [&mut [T]],
                scratch: &mut [T],
            ) -> Result<(), Error> {
                let wrong = Error::WrongScalars { rule: self.id() };
                match self {
                    $(AnyRule::$rule(r) => {
                        let s = $scalars::from_any_mut(scalars).ok_or(wrong)?;
                        r.step_scratch(s, params, grads, state, scratch)
                    })*
                }
            }

            /// [`Rule::step_flat_scratch`] for the rule inside (see [`AnyRule::step`]).
            pub fn step_flat_scratch<T: Real>(
                &self,
                scalars: &mut AnyScalars,
                params: &mut [T],
                grads: &[T],
                state: &mut [T],
                scratch: &mut [T],
            ) -> Result<(), Error> {
                let wrong = Error::WrongScalars { rule: self.id() };
                match self {
                    $(AnyRule::$rule(r) => {
                        let s = $scalars::from_any_mut(scalars).ok_or(wrong)?;
                        r.step_flat_scratch(s, params, grads, state, scratch)
                    })*
                }
            }

            /// The first of the two calls that step one part of a tensor of a
            /// layer-wise rule ([`Rule::WHOLE_SLICE`]: LAMB), so that the parts can be
            /// stepped on several threads: initializes fresh state and updates the
            /// part's moments, leaves its params as they are, and returns the part's
            /// sums of squares. `scalars` are the tensor's, read and not advanced.
            ///
            /// Call it on every part of the tensor, [`NormSums::merge`] the results,
            /// then call [`AnyRule::step_apply_part`] on every part with the merged sums
            /// and a copy of the same `scalars` (every copy advances to the same next
            /// state). With every part but the last a multiple of
            /// [`NORM_PART_ALIGN`](crate::rules::NORM_PART_ALIGN)
            /// elements the result is the bits of one [`AnyRule::step`] over the whole
            /// tensor. Each call checks what [`AnyRule::step`] checks before it writes;
            /// to keep a failed step from leaving some parts' moments advanced, check
            /// every part's lengths before the first call (the owning optimizer does).
            ///
            /// With `scratch` (as long as the part's params), the part's update is
            /// stored there for [`AnyRule::step_apply_part`], which must then be given
            /// the same scratch, untouched in between (see [`Rule::step_scratch`]).
            ///
            /// `Err(Error::NotLayerWise)` for an elementwise rule, which needs no such
            /// cut: its chunks step separately with [`AnyRule::step`].
            pub fn step_norms_part<T: Real>(
                &self,
                scalars: &AnyScalars,
                params: &mut [T],
                grads: &[T],
                state: &mut [&mut [T]],
                scratch: Option<&mut [T]>,
            ) -> Result<NormSums, Error> {
                let wrong = Error::WrongScalars { rule: self.id() };
                match self {
                    $(AnyRule::$rule(r) => {
                        let s = $scalars::from_any(*scalars).ok_or(wrong)?;
                        super::norms_part(r, self.id(), &s, params, grads, state, scratch)
                    })*
                }
            }

            /// The second call of a step in parts (see [`AnyRule::step_norms_part`]):
            /// the part's update from `sums`, every part's sums merged, advancing
            /// `scalars` as [`AnyRule::step`] does. `scratch`: the one the part's
            /// first call stored its update in, or `None` if it had none (the update
            /// is then computed again from the state).
            pub fn step_apply_part<T: Real>(
                &self,
                scalars: &mut AnyScalars,
                sums: &NormSums,
                params: &mut [T],
                grads: &[T],
                state: &mut [&mut [T]],
                scratch: Option<&mut [T]>,
            ) -> Result<(), Error> {
                let wrong = Error::WrongScalars { rule: self.id() };
                match self {
                    $(AnyRule::$rule(r) => {
                        let s = $scalars::from_any_mut(scalars).ok_or(wrong)?;
                        super::apply_part(r, self.id(), s, sums, params, grads, state, scratch)
                    })*
                }
            }

            /// [`Rule::step_flat`] for the rule inside (see [`AnyRule::step`]).
            pub fn step_flat<T: Real>(
                &self,
                scalars: &mut AnyScalars,
                params: &mut [T],
                grads: &[T],
                state: &mut [T],
            ) -> Result<(), Error> {
                let wrong = Error::WrongScalars { rule: self.id() };
                match self {
                    $(AnyRule::$rule(r) => {
                        let s = $scalars::from_any_mut(scalars).ok_or(wrong)?;
                        r.step_flat(s, params, grads, state)
                    })*
                }
            }
        }
    };
}

for_each_rule!(registry);

impl AnyRule {
    /// Whether `scalars` are this rule's kind of scalar state (what its step takes;
    /// another kind is [`Error::WrongScalars`]).
    pub fn scalars_fit(&self, scalars: &AnyScalars) -> bool {
        core::mem::discriminant(scalars) == core::mem::discriminant(&self.fresh_scalars())
    }

    /// The rule called `name` ([`RuleId::from_name`]) with torch's defaults.
    pub fn named(name: &str) -> Result<AnyRule, SpecError<'_>> {
        let name = name.trim();
        if name.is_empty() {
            return Err(SpecError::NoName);
        }
        RuleId::from_name(name)
            .map(RuleId::default_rule)
            .ok_or(SpecError::UnknownRule { name })
    }

    /// The rule's name ([`RuleId::name`]).
    pub const fn name(&self) -> &'static str {
        self.id().name()
    }

    /// The hyperparameter fields ([`RuleId::fields`]).
    pub const fn fields(&self) -> &'static [Field] {
        self.id().fields()
    }

    /// [`Rule::state_slots`].
    pub fn state_slots(&self) -> usize {
        self.slot_names().len()
    }

    /// The field called `name`, or [`SpecError::UnknownField`].
    pub fn field<'a>(&self, name: &'a str) -> Result<Field, SpecError<'a>> {
        self.fields()
            .iter()
            .copied()
            .find(|f| f.name == name)
            .ok_or(SpecError::UnknownField {
                rule: self.id(),
                field: name,
            })
    }

    /// Sets the field called `name` from its text (`f64`'s syntax for numbers,
    /// `true`/`false` for flags), without checking its range.
    pub fn set_text<'a>(&mut self, name: &'a str, text: &'a str) -> Result<(), SpecError<'a>> {
        let field = self.field(name)?;
        let value = Value::parse(field.kind, text.trim()).ok_or(SpecError::BadValue {
            rule: self.id(),
            field: field.name,
            value: text,
            kind: field.kind,
        })?;
        self.set(name, value)
    }

    /// The rule a `NAME[:FIELD=VALUE,...]` spec describes, the CLI's syntax:
    /// `"adam:lr=3e-4,amsgrad=true"`. A bare `FIELD` means `FIELD=true`; spaces around
    /// names and values are ignored; a field may be given once. The rule starts from
    /// torch's defaults and must pass [`Rule::validate`] with the fields set.
    pub fn parse(spec: &str) -> Result<AnyRule, SpecError<'_>> {
        let (name, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let mut rule = AnyRule::named(name)?;
        let items = || rest.split(',').map(str::trim).filter(|s| !s.is_empty());
        for (i, item) in items().enumerate() {
            let (field, value) = item.split_once('=').unwrap_or((item, "true"));
            let field = field.trim();
            let known = rule.field(field)?;
            if items()
                .take(i)
                .any(|earlier| earlier.split_once('=').unwrap_or((earlier, "")).0.trim() == field)
            {
                return Err(SpecError::Repeated {
                    rule: rule.id(),
                    field: known.name,
                });
            }
            rule.set_text(field, value.trim())?;
        }
        rule.checked()
    }

    /// The rule itself if it passes [`Rule::validate`], else [`SpecError::Invalid`].
    pub fn checked(self) -> Result<AnyRule, SpecError<'static>> {
        self.validate().map_err(|error| SpecError::Invalid {
            rule: self.id(),
            error,
        })?;
        Ok(self)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `name:field=value,...` with every field, so that [`AnyRule::parse`] gives the rule
/// back exactly (numbers in Rust's shortest round-trip form).
impl fmt::Display for AnyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        for (i, field) in self.fields().iter().enumerate() {
            f.write_str(if i == 0 { ":" } else { "," })?;
            match self.get(field.name) {
                Some(Value::Number(x)) => write!(f, "{}={x:?}", field.name)?,
                Some(value) => write!(f, "{}={value}", field.name)?,
                None => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn ids_names_and_types_agree() {
        macro_rules! check {
            ($({
                id: $id:literal, rule: $rule:ident, name: $name:ident, reference: $reference:literal,
                scalars: $scalars:ident, momentum: [$($momentum:ident)?],
                f64: [$($f:ident),*], bool: [$($b:ident),*],
        choice: [$($c:ident: $ct:ident),*] $(,)?
            }),* $(,)?) => {$(
                assert_eq!(<$rule as Rule>::NAME, stringify!($name));
                assert_eq!(RuleId::$rule as u16, $id);
                assert_eq!(RuleId::from_u16($id), Some(RuleId::$rule));
                assert_eq!(AnyRule::from($rule::default()).id(), RuleId::$rule);
                assert_eq!(RuleId::from_name($reference.rsplit('.').next().unwrap()),
                    Some(RuleId::$rule));
                // Every field of the struct is in the row: the literal names them all.
                let r = $rule::default();
                let _ = $rule { $($f: r.$f,)* $($b: r.$b,)* $($c: r.$c,)* };
                // Every choice type numbers its values 0, 1, … in the order of its names.
                $(
                    let names = <crate::$ct as Choice>::NAMES;
                    for (k, name) in names.iter().enumerate() {
                        let v = <crate::$ct as Choice>::from_index(k as u32).unwrap();
                        assert_eq!((v.index(), v.name()), (k as u32, *name));
                        assert_eq!(<crate::$ct as Choice>::from_name(name), Some(v));
                    }
                    assert_eq!(<crate::$ct as Choice>::from_index(names.len() as u32), None);
                )*
            )*};
        }
        for_each_rule!(check);
        // Ids are in order; they are dense once every rule of a wave has landed (rules
        // added in parallel branches keep the ids they were given).
        for pair in RuleId::ALL.windows(2) {
            assert!((pair[0] as u16) < pair[1] as u16, "ids are in order");
        }
        assert_eq!(RuleId::ALL[0] as u16, 1);
        assert_eq!(RuleId::from_u16(0), None);
        assert_eq!(
            RuleId::from_u16(*RuleId::ALL.last().unwrap() as u16 + 1),
            None
        );
    }

    #[test]
    fn every_field_reads_and_writes_by_name() {
        for &id in RuleId::ALL {
            let mut rule = id.default_rule();
            for field in id.fields() {
                let value = match (rule.get(field.name).unwrap(), field.kind) {
                    (Value::Number(x), _) => Value::Number(x + 0.125),
                    (Value::Flag(b), _) => Value::Flag(!b),
                    (Value::Choice(name), FieldKind::Choice(names)) => {
                        let k = names.iter().position(|&n| n == name).unwrap();
                        Value::Choice(names[(k + 1) % names.len()])
                    }
                    (Value::Choice(_), kind) => {
                        panic!("{id}.{}: a choice in a {kind:?}", field.name)
                    }
                };
                assert!(value.fits(field.kind));
                rule.set(field.name, value).unwrap();
                assert_eq!(rule.get(field.name), Some(value), "{id}.{}", field.name);
                assert_eq!(
                    Value::parse(field.kind, &value.to_string()),
                    Some(value),
                    "{id}.{}",
                    field.name
                );
                let wrong = match value {
                    Value::Number(_) => Value::Flag(true),
                    Value::Flag(_) | Value::Choice(_) => Value::Number(1.0),
                };
                assert!(matches!(
                    rule.set(field.name, wrong),
                    Err(SpecError::BadValue { .. })
                ));
            }
            assert_eq!(rule.get("no_such_field"), None);
        }
    }

    choice_enum! {
        /// A choice for the tests.
        enum Shape {
            /// First.
            Round = 0 => "round",
            /// Second.
            Square = 1 => "square",
        }
    }

    #[test]
    fn choices_parse_by_name_and_say_what_they_accept() {
        let kind = FieldKind::Choice(Shape::NAMES);
        assert_eq!(Value::parse(kind, "square"), Some(Value::Choice("square")));
        assert_eq!(Value::parse(kind, "Square"), None);
        assert_eq!(Value::parse(kind, "1"), None);
        assert!(Value::Choice("round").fits(kind));
        assert!(!Value::Choice("oval").fits(kind));
        assert!(!Value::Number(0.0).fits(kind));
        assert_eq!(Value::Choice("round").to_string(), "round");
        assert_eq!((Shape::Square.index(), Shape::Square.name()), (1, "square"));
        assert_eq!(Shape::from_name("round"), Some(Shape::Round));
        assert_eq!(Shape::from_index(2), None);
        let e = SpecError::BadValue {
            rule: RuleId::Sgd,
            field: "shape",
            value: "oval",
            kind,
        };
        assert_eq!(
            e.to_string(),
            "rule 'sgd': shape = 'oval' is not one of round, square"
        );
    }

    #[test]
    fn momentum_is_the_field_schedules_cycle() {
        let mut sgd = AnyRule::parse("sgd:momentum=0.5").unwrap();
        assert_eq!(sgd.momentum(), Some(0.5));
        sgd.set_momentum(0.8).unwrap();
        assert_eq!(sgd.get("momentum"), Some(Value::Number(0.8)));
        let mut adam = AnyRule::parse("adam").unwrap();
        assert_eq!(adam.momentum(), Some(0.9));
        adam.set_momentum(0.85).unwrap();
        assert_eq!(adam.get("beta1"), Some(Value::Number(0.85)));
        let mut adagrad = AnyRule::parse("adagrad").unwrap();
        assert_eq!(adagrad.momentum(), None);
        assert_eq!(
            adagrad.set_momentum(0.5),
            Err(SpecError::NoMomentum {
                rule: RuleId::Adagrad
            })
        );
    }
}
