//! Lookahead (Zhang et al., 2019, "Lookahead Optimizer: k steps forward, 1 step back"):
//! a wrapper over any rule that pulls the params back towards a slow copy every `k`
//! steps (`pytorch_optimizer.Lookahead`, `optax.lookahead`).
//!
//! Two ways to use it, with the same bits:
//!
//! - statically, [`Lookahead<R>`] over a rule type `R` ([`Adam`](crate::Adam), ...);
//! - by name, `Lookahead<AnyRule>`, which parses from and prints as a spec such as
//!   `lookahead(adam:lr=1e-3):k=5,alpha=0.5,momentum=reset` ([`Lookahead::parse`]), so
//!   everything that takes a rule by name can take the composite.
//!
//! The slow weights (and, with [`SyncMomentum::Pullback`], the slow momentum) are
//! state slices after the wrapped rule's own, so a composite is stepped, saved and
//! restored like any rule: the caller owns every buffer.
//!
//! ```
//! use gradstep::{Adam, Lookahead, Rule};
//!
//! let la = Lookahead::new(Adam { lr: 0.1, ..Adam::default() });
//! assert_eq!(la.slot_names().collect::<Vec<_>>(), ["exp_avg", "exp_avg_sq", "slow_params"]);
//! let mut scalars = Default::default();
//! let mut params = [1.0f32, -2.0];
//! let (mut m, mut v, mut slow) = ([0.0f32; 2], [0.0f32; 2], [0.0f32; 2]);
//! for _ in 0..5 {
//!     la.step(&mut scalars, &mut params, &[0.5, -0.5], &mut [&mut m, &mut v, &mut slow])?;
//! }
//! // After k = 5 steps the params are halfway between the fast ones and where they
//! // started (α = 0.5), and the slow copy holds them.
//! assert!((params[0] - (1.0 - 0.25)).abs() < 1e-5 && slow == params);
//! # Ok::<(), gradstep::Error>(())
//! ```
//!
//! By name:
//!
//! ```
//! use gradstep::lookahead::{Lookahead, SyncMomentum};
//! use gradstep::rules::AnyRule;
//!
//! let la = Lookahead::parse("lookahead(sgd:lr=0.1,momentum=0.9):k=3,momentum=pullback")?;
//! assert_eq!((la.k, la.alpha, la.momentum), (3, 0.5, SyncMomentum::Pullback));
//! assert_eq!(la.rule, AnyRule::parse("sgd:lr=0.1,momentum=0.9")?);
//! // momentum_buffer, slow_params, slow_momentum
//! assert_eq!(la.state_slots(), 3);
//! // Display prints every field and parses back to the same composite.
//! assert_eq!(Lookahead::parse(&la.to_string()), Ok(la));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use crate::checkpoint::{self, CheckpointError, Element};
use crate::driver::{Buffers, Drive, Kernel};
use crate::error::{Error, require};
use crate::lanes::{Lanes, Lerp};
use crate::real::Real;
use crate::rules::{
    AnyRule, AnyScalars, Rule, RuleId, ScalarKind, ScalarState, SpecError, check_buffers, lerp,
};

/// What a sync does to the wrapped rule's momentum (`pytorch_optimizer.Lookahead`'s
/// `pullback_momentum`).
///
/// pytorch_optimizer touches the state tensor named `momentum_buffer`, whatever the
/// wrapped optimizer; gradstep does the same with the state slice of that name (the
/// torch names: SGD's and RMSprop's momentum). Rules without one (Adam's first moment
/// is `exp_avg`) are left alone, as pytorch_optimizer leaves them: it adds a
/// `momentum_buffer` key that such an optimizer never reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SyncMomentum {
    /// `'none'`: the momentum is kept as it is.
    #[default]
    None,
    /// `'reset'`: the momentum is set to zero.
    Reset,
    /// `'pullback'`: the momentum is interpolated like the params, towards a slow
    /// momentum (zero at first) that then takes its value: `b ← lerp(b, b_slow, 1 − α)`,
    /// `b_slow ← b`. The slow momentum is one more state slice, `slow_momentum`.
    Pullback,
}

impl SyncMomentum {
    /// Every value, in the order of its names.
    pub const ALL: [SyncMomentum; 3] = [
        SyncMomentum::None,
        SyncMomentum::Reset,
        SyncMomentum::Pullback,
    ];

    /// pytorch_optimizer's name: `"none"`, `"reset"`, `"pullback"`.
    pub const fn name(self) -> &'static str {
        match self {
            SyncMomentum::None => "none",
            SyncMomentum::Reset => "reset",
            SyncMomentum::Pullback => "pullback",
        }
    }

    /// The value called `name`.
    pub fn from_name(name: &str) -> Option<SyncMomentum> {
        SyncMomentum::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A rule [`Lookahead`] can wrap: every [`Rule`] (statically) and [`AnyRule`] (by name).
pub trait Wrappable: Copy + fmt::Debug + PartialEq {
    /// The wrapped rule's scalar state.
    type Scalars: Copy + fmt::Debug + PartialEq;
    /// The rule's checks ([`Rule::validate`]).
    fn validate(&self) -> Result<(), Error>;
    /// The rule's state slices ([`Rule::slot_names`]).
    fn slot_names(&self) -> &'static [&'static str];
    /// The rule's fresh scalar state (step 0).
    fn fresh_scalars(&self) -> Self::Scalars;
    /// Steps taken so far in `scalars`.
    fn steps_taken(scalars: &Self::Scalars) -> u64;
    /// Refuses scalar state of another rule ([`Error::WrongScalars`]), which the wrapped
    /// rule's step would refuse only after Lookahead's first step filled its slices.
    /// A [`Rule`]'s scalars are of its own type: nothing to check.
    fn check_scalars(&self, _scalars: &Self::Scalars) -> Result<(), Error> {
        Ok(())
    }
    /// [`Rule::step`].
    fn step<T: Real>(
        &self,
        scalars: &mut Self::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error>;
    /// [`Rule::step_reference`].
    fn step_reference<T: Real>(
        &self,
        scalars: &mut Self::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error>;
}

impl<R: Rule> Wrappable for R {
    type Scalars = R::Scalars;
    fn validate(&self) -> Result<(), Error> {
        Rule::validate(self)
    }
    fn slot_names(&self) -> &'static [&'static str] {
        Rule::slot_names(self)
    }
    fn fresh_scalars(&self) -> R::Scalars {
        R::Scalars::default()
    }
    fn steps_taken(scalars: &R::Scalars) -> u64 {
        scalars.step()
    }
    fn step<T: Real>(
        &self,
        scalars: &mut R::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        Rule::step(self, scalars, params, grads, state)
    }
    fn step_reference<T: Real>(
        &self,
        scalars: &mut R::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        Rule::step_reference(self, scalars, params, grads, state)
    }
}

/// [`Rule::step_reference`] for the rule inside an [`AnyRule`], expanded from the
/// registry.
macro_rules! any_step_reference {
    ($({ id: $id:literal, rule: $rule:ident, $($rest:tt)* }),* $(,)?) => {
        fn any_step_reference<T: Real>(
            rule: &AnyRule,
            scalars: &mut AnyScalars,
            params: &mut [T],
            grads: &[T],
            state: &mut [&mut [T]],
        ) -> Result<(), Error> {
            let wrong = Error::WrongScalars { rule: rule.id() };
            match rule {
                $(AnyRule::$rule(r) => {
                    let s = <<crate::$rule as Rule>::Scalars as ScalarKind>::from_any_mut(scalars)
                        .ok_or(wrong)?;
                    Rule::step_reference(r, s, params, grads, state)
                })*
            }
        }
    };
}

crate::for_each_rule!(any_step_reference);

impl Wrappable for AnyRule {
    type Scalars = AnyScalars;
    fn validate(&self) -> Result<(), Error> {
        AnyRule::validate(self)
    }
    fn slot_names(&self) -> &'static [&'static str] {
        AnyRule::slot_names(self)
    }
    fn fresh_scalars(&self) -> AnyScalars {
        AnyRule::fresh_scalars(self)
    }
    fn steps_taken(scalars: &AnyScalars) -> u64 {
        scalars.step()
    }
    fn check_scalars(&self, scalars: &AnyScalars) -> Result<(), Error> {
        if self.scalars_fit(scalars) {
            Ok(())
        } else {
            Err(Error::WrongScalars { rule: self.id() })
        }
    }
    fn step<T: Real>(
        &self,
        scalars: &mut AnyScalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        AnyRule::step(self, scalars, params, grads, state)
    }
    fn step_reference<T: Real>(
        &self,
        scalars: &mut AnyScalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        any_step_reference(self, scalars, params, grads, state)
    }
}

/// Any rule with Lookahead's slow weights.
///
/// For step `t = 1, 2, …` of the wrapped rule (fast weights θ, slow weights φ, the
/// wrapped rule's `momentum_buffer` b and a slow momentum b̃, if it has one):
///
/// ```text
/// φ ← θ, b̃ ← 0                             before the first step (fresh state)
/// θ ← the wrapped rule's step
/// if t mod k = 0:
///     θ ← θ + (1 − α)(φ − θ)               (torch.lerp(θ, φ, 1 − α))
///     φ ← θ
///     b ← b                                momentum = none
///     b ← 0                                momentum = reset
///     b ← b + (1 − α)(b̃ − b), b̃ ← b         momentum = pullback
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | k | `k` | 5 | ≥ 1 |
/// | α | `alpha` | 0.5 | [0, 1] |
/// | | `momentum` | `none` | [`SyncMomentum`] |
///
/// State: the wrapped rule's slices, then the slow weights φ (`slow_params`), then,
/// with [`SyncMomentum::Pullback`], the slow momentum b̃ (`slow_momentum`), each as long
/// as the params ([`Lookahead::slot_names`]); scalar state: the wrapped rule's, whose
/// step counter also times the syncs (pytorch_optimizer keeps a separate counter that
/// equals it unless k is changed during training).
///
/// Follows `pytorch_optimizer.Lookahead` 4.1.0 (`torch.lerp`'s two formulas, selected
/// by `|1 − α| < 0.5`, so the bits match). `momentum` is its `pullback_momentum`, which
/// acts on the state named `momentum_buffer` only (see [`SyncMomentum`]).
/// `optax.lookahead(fast, sync_period, slow_step_size)` is the same rule in exact
/// arithmetic with `k = sync_period`, `α = slow_step_size`, `momentum = none` and the
/// fast state kept (`reset_state=False`), but computes the sync through updates
/// (with the fast step's update u, d = θ + u − φ: θ ← θ + (u − (1 − α)d),
/// φ ← φ + αd), which rounds differently and leaves θ and φ a few ulps apart after a
/// sync. Both are recorded (`tests/fixtures/pytorch_optimizer/lookahead.json`,
/// `tests/fixtures/optax/lookahead.json`) and replayed within the wrapped rule's row
/// of the tolerance table (`tests/lookahead.rs`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lookahead<R> {
    /// The wrapped (fast) rule.
    pub rule: R,
    /// Steps between syncs k.
    pub k: u64,
    /// Slow step size α: the fraction of the way from φ to θ that a sync keeps.
    pub alpha: f64,
    /// What a sync does to the wrapped rule's `momentum_buffer`.
    pub momentum: SyncMomentum,
}

impl<R: Default> Default for Lookahead<R> {
    fn default() -> Self {
        Lookahead::new(R::default())
    }
}

/// The sync, as one element kernel: `x ← lerp(x, x̃, 1 − α)`, `x̃ ← x` (params and slow
/// params, or momentum and slow momentum).
#[derive(Clone, Copy, Debug)]
struct Sync<T> {
    lerp: Lerp<T>,
}

impl<T: Real> Kernel<T, 1> for Sync<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, _g: V, [slow]: &mut [V; 1]) {
        *p = self.lerp.apply::<V, false>(*p, *slow);
        *slow = *p;
    }
}

impl<R> Lookahead<R> {
    /// Wraps `rule` with pytorch_optimizer's defaults: k = 5, α = 0.5, momentum kept.
    pub const fn new(rule: R) -> Self {
        Lookahead {
            rule,
            k: 5,
            alpha: 0.5,
            momentum: SyncMomentum::None,
        }
    }

    /// The same k, α and momentum option over another rule (`Lookahead<()>` holds the
    /// options alone, as a frontend keeps them next to its rules).
    pub fn over<S>(self, rule: S) -> Lookahead<S> {
        Lookahead {
            rule,
            k: self.k,
            alpha: self.alpha,
            momentum: self.momentum,
        }
    }
}

/// The most state slices a Lookahead takes: a rule's most
/// ([`MAX_STATE_SLOTS`](crate::MAX_STATE_SLOTS)) plus `slow_params` and
/// `slow_momentum`.
pub const MAX_SLOTS: usize = crate::MAX_STATE_SLOTS + 2;

/// Names of Lookahead's own state slices.
const OWN_SLOTS: [&str; 2] = ["slow_params", "slow_momentum"];

impl<R: Wrappable> Lookahead<R> {
    /// Checks k, α and the wrapped rule's hyperparameters.
    pub fn validate(&self) -> Result<(), Error> {
        require(self.k >= 1, "k", self.k as f64, "must be >= 1")?;
        require(
            (0.0..=1.0).contains(&self.alpha),
            "alpha",
            self.alpha,
            "must be in [0, 1]",
        )?;
        self.rule.validate()
    }

    /// Lookahead's own state slices: 1, or 2 with [`SyncMomentum::Pullback`].
    fn own_slots(&self) -> usize {
        1 + usize::from(self.momentum == SyncMomentum::Pullback)
    }

    /// How many state slices [`Lookahead::step`] expects: the wrapped rule's, plus
    /// `slow_params`, plus `slow_momentum` with [`SyncMomentum::Pullback`].
    pub fn state_slots(&self) -> usize {
        self.rule.slot_names().len() + self.own_slots()
    }

    /// The names of the state slices, in order: the wrapped rule's, then
    /// `slow_params` (and `slow_momentum`), as pytorch_optimizer names them.
    pub fn slot_names(&self) -> impl Iterator<Item = &'static str> + use<R> {
        let inner = self.rule.slot_names().iter().copied();
        inner.chain(OWN_SLOTS[..self.own_slots()].iter().copied())
    }

    /// The wrapped rule's fresh scalar state: the composite's (step 0).
    pub fn fresh_scalars(&self) -> R::Scalars {
        self.rule.fresh_scalars()
    }

    /// Every check before anything is written; returns the step `t` about to be taken.
    fn begin<T>(
        &self,
        scalars: &R::Scalars,
        params: &[T],
        grads: &[T],
        state: &[&mut [T]],
    ) -> Result<u64, Error> {
        self.validate()?;
        self.rule.check_scalars(scalars)?;
        let t = R::steps_taken(scalars)
            .checked_add(1)
            .ok_or(Error::StepOverflow)?;
        check_buffers(params, grads, state, self.state_slots())?;
        Ok(t)
    }

    /// The wrapped rule's `momentum_buffer` slice, if it has one.
    fn momentum_slot(&self) -> Option<usize> {
        self.rule
            .slot_names()
            .iter()
            .position(|n| *n == "momentum_buffer")
    }

    /// One step: the wrapped rule's step, then the sync every k steps. `state` holds
    /// [`Lookahead::state_slots`] slices ([`Lookahead::slot_names`]), each as long as
    /// `params`; on fresh state (step 0) the slow weights are filled from the params
    /// first (and the slow momentum with zeros). On `Err` nothing was written (every
    /// check comes first).
    pub fn step<T: Real>(
        &self,
        scalars: &mut R::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = self.begin(scalars, params, grads, state)?;
        // `begin` checked the number of slices and their lengths, so the checked
        // splits and lookups below always succeed: they leave no panic path in the
        // kernel, where indexing did (the compiler could not prove it away).
        let slots = Error::StateSlots {
            expected: self.state_slots(),
            found: state.len(),
        };
        let (inner, own) = state
            .split_at_mut_checked(self.rule.slot_names().len())
            .ok_or(slots)?;
        let (slow, rest) = own.split_first_mut().ok_or(slots)?;
        if t == 1 {
            for (s, p) in slow.iter_mut().zip(params.iter()) {
                *s = *p;
            }
            if let Some(m) = rest.first_mut() {
                m.fill(T::ZERO);
            }
        }
        self.rule.step(scalars, params, grads, inner)?;
        if t % self.k == 0 {
            let sync = Sync {
                lerp: Lerp::new(1.0 - self.alpha),
            };
            Buffers::new(params, grads, core::slice::from_mut(slow), false)
                .run::<1, _>(&sync, None)?;
            let buffer = self.momentum_slot().and_then(|b| inner.get_mut(b));
            match (self.momentum, buffer) {
                (SyncMomentum::Reset, Some(b)) => b.fill(T::ZERO),
                (SyncMomentum::Pullback, Some(b)) => {
                    Buffers::new(b, grads, rest, false).run::<1, _>(&sync, None)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// [`Lookahead::step`] with the wrapped rule's [`Rule::step_reference`] and the sync
    /// written as a plain loop.
    pub fn step_reference<T: Real>(
        &self,
        scalars: &mut R::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = self.begin(scalars, params, grads, state)?;
        let names = self.rule.slot_names();
        let (inner, own) = state.split_at_mut(names.len());
        if t == 1 {
            for (s, p) in own[0].iter_mut().zip(params.iter()) {
                *s = *p;
            }
            if self.momentum == SyncMomentum::Pullback {
                for x in own[1].iter_mut() {
                    *x = T::ZERO;
                }
            }
        }
        self.rule.step_reference(scalars, params, grads, inner)?;
        if t % self.k == 0 {
            for (p, s) in params.iter_mut().zip(own[0].iter_mut()) {
                *p = lerp(*p, *s, 1.0 - self.alpha);
                *s = *p;
            }
            for (name, slot) in names.iter().zip(inner.iter_mut()) {
                if *name != "momentum_buffer" {
                    continue;
                }
                match self.momentum {
                    SyncMomentum::None => {}
                    SyncMomentum::Reset => {
                        for x in slot.iter_mut() {
                            *x = T::ZERO;
                        }
                    }
                    SyncMomentum::Pullback => {
                        for (b, s) in slot.iter_mut().zip(own[1].iter_mut()) {
                            *b = lerp(*b, *s, 1.0 - self.alpha);
                            *s = *b;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Why a `lookahead(...)` spec was refused ([`Lookahead::parse`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LookaheadSpecError<'a> {
    /// Not of the form `lookahead(INNER)[:OPTION=VALUE,...]`.
    Syntax {
        /// The spec as given.
        spec: &'a str,
    },
    /// The wrapped rule's spec was refused.
    Inner(SpecError<'a>),
    /// An option other than `k`, `alpha`, `momentum`.
    UnknownOption {
        /// The option as given.
        option: &'a str,
    },
    /// An option given twice.
    Repeated {
        /// The option's name.
        option: &'static str,
    },
    /// A value that does not parse as the option's kind.
    BadValue {
        /// The option's name.
        option: &'static str,
        /// The value as given.
        value: &'a str,
    },
    /// k or α out of range ([`Lookahead::validate`]).
    Invalid(Error),
}

impl fmt::Display for LookaheadSpecError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookaheadSpecError::Syntax { spec } => write!(
                f,
                "'{spec}' is not of the form lookahead(RULE[:FIELD=VALUE,...])[:k=K,alpha=A,momentum=none|reset|pullback]"
            ),
            LookaheadSpecError::Inner(e) => write!(f, "lookahead: {e}"),
            LookaheadSpecError::UnknownOption { option } => write!(
                f,
                "lookahead has no option '{option}' (its options: k, alpha, momentum)"
            ),
            LookaheadSpecError::Repeated { option } => {
                write!(f, "lookahead: option '{option}' is given twice")
            }
            LookaheadSpecError::BadValue { option, value } => {
                let want = match *option {
                    "k" => "a whole number >= 1",
                    "alpha" => "a number in [0, 1]",
                    _ => "one of none, reset, pullback",
                };
                write!(f, "lookahead: '{value}' is not {want} for '{option}'")
            }
            LookaheadSpecError::Invalid(e) => write!(f, "lookahead: {e}"),
        }
    }
}

impl core::error::Error for LookaheadSpecError<'_> {}

impl Lookahead<AnyRule> {
    /// The composite a `lookahead(RULE_SPEC)[:k=K,alpha=A,momentum=M]` spec describes:
    /// `RULE_SPEC` is [`AnyRule::parse`]'s syntax, the options default to
    /// pytorch_optimizer's (k 5, α 0.5, momentum `none`), `M` is a [`SyncMomentum`]
    /// name; spaces around names and values are ignored; each option may be given once.
    /// A rule spec without `lookahead(` is refused ([`LookaheadSpecError::Syntax`]): use
    /// [`Lookahead::is_spec`] to tell the two apart.
    pub fn parse(spec: &str) -> Result<Lookahead<AnyRule>, LookaheadSpecError<'_>> {
        let syntax = LookaheadSpecError::Syntax { spec };
        let body = spec
            .trim()
            .strip_prefix("lookahead")
            .map(str::trim_start)
            .and_then(|s| s.strip_prefix('('))
            .ok_or(syntax)?;
        let close = body.rfind(')').ok_or(syntax)?;
        let (inner, tail) = (&body[..close], body[close + 1..].trim());
        if inner.contains(['(', ')']) {
            return Err(syntax);
        }
        let options = match tail.strip_prefix(':') {
            Some(rest) => rest,
            None if tail.is_empty() => "",
            None => return Err(syntax),
        };
        let rule = AnyRule::parse(inner).map_err(LookaheadSpecError::Inner)?;
        let mut la = Lookahead::new(rule);
        let mut seen = [false; 3];
        for item in options.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (option, value) = item.split_once('=').ok_or(syntax)?;
            let (option, value) = (option.trim(), value.trim());
            let (index, name) = match option {
                "k" => (0, "k"),
                "alpha" => (1, "alpha"),
                "momentum" => (2, "momentum"),
                _ => return Err(LookaheadSpecError::UnknownOption { option }),
            };
            if core::mem::replace(&mut seen[index], true) {
                return Err(LookaheadSpecError::Repeated { option: name });
            }
            let bad = LookaheadSpecError::BadValue {
                option: name,
                value,
            };
            match index {
                0 => la.k = value.parse().map_err(|_| bad)?,
                1 => la.alpha = value.parse().map_err(|_| bad)?,
                _ => la.momentum = SyncMomentum::from_name(value).ok_or(bad)?,
            }
        }
        la.validate().map_err(LookaheadSpecError::Invalid)?;
        Ok(la)
    }

    /// `true` if `spec` is meant as a composite (starts with `lookahead(`), so a
    /// frontend can route it to [`Lookahead::parse`] rather than [`AnyRule::parse`].
    pub fn is_spec(spec: &str) -> bool {
        spec.trim()
            .strip_prefix("lookahead")
            .is_some_and(|s| s.trim_start().starts_with('('))
    }

    /// The wrapped rule's number.
    pub const fn id(&self) -> RuleId {
        self.rule.id()
    }
}

/// `lookahead(RULE):k=K,alpha=A,momentum=M` with every field (the wrapped rule as
/// [`AnyRule`]'s `Display` prints it), so [`Lookahead::parse`] gives it back exactly.
impl fmt::Display for Lookahead<AnyRule> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lookahead({}):k={},alpha={:?},momentum={}",
            self.rule,
            self.k,
            self.alpha,
            self.momentum.name()
        )
    }
}

/// The magic of a Lookahead checkpoint's trailer ([`Lookahead::encode_checkpoint`]).
pub const CHECKPOINT_MAGIC: [u8; 4] = *b"GSLA";
/// The version of the trailer's layout.
const CHECKPOINT_VERSION: u16 = 1;
/// Bytes of the trailer before its slices.
const TRAILER_FIXED: usize = 40;

fn pad8(len: usize) -> Option<usize> {
    len.checked_add(7).map(|x| x & !7)
}

fn corrupt(needed: usize, found: usize) -> Error {
    Error::Checkpoint(CheckpointError::Truncated {
        needed: needed as u64,
        found,
    })
}

fn word(bytes: &[u8], at: usize) -> Option<u64> {
    bytes
        .get(at..)?
        .first_chunk::<8>()
        .map(|c| u64::from_le_bytes(*c))
}

/// Checkpoints of a composite: the wrapped rule's own kernel checkpoint
/// ([`crate::checkpoint`], unchanged: its scalar state, its slices, the params if
/// given), zero padding to a multiple of 8, then a trailer:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `b"GSLA"` ([`CHECKPOINT_MAGIC`]) |
/// | 4 | 2 | trailer version, `u16` = 1 |
/// | 6 | 1 | momentum: 0 none, 1 reset, 2 pullback |
/// | 7 | 1 | reserved, 0 |
/// | 8 | 8 | k, `u64` |
/// | 16 | 8 | α, `f64` |
/// | 24 | 8 | n, `u64`: the length of each slice |
/// | 32 | 8 | S, `u64`: Lookahead's slices (`slow_params`, then `slow_momentum` with pullback) |
/// | 40 | S·n·size | the slices, little-endian as in kernel checkpoints, zero-padded to a multiple of 8 |
/// | … | 4 | CRC-32 ([`crate::checkpoint::crc32`]) of the trailer before it, `u32` |
/// | … | 4 | reserved, 0 |
///
/// A plain kernel reader sees the wrapped rule's checkpoint and stops at its stated
/// length; the kernel's format is untouched.
impl Lookahead<AnyRule> {
    /// The length of [`Lookahead::encode_checkpoint`] for slices of `n` elements.
    pub fn checkpoint_len<T: Element>(&self, n: usize, with_params: bool) -> Result<usize, Error> {
        let inner = self.rule.encoded_len(T::TYPE, n, with_params)?;
        let too_large = Error::Checkpoint(CheckpointError::BufferTooSmall {
            needed: usize::MAX,
            found: 0,
        });
        let own = self
            .own_slots()
            .checked_mul(n)
            .and_then(|x| x.checked_mul(core::mem::size_of::<T>()))
            .and_then(pad8)
            .ok_or(too_large)?;
        pad8(inner)
            .and_then(|x| x.checked_add(TRAILER_FIXED + 8))
            .and_then(|x| x.checked_add(own))
            .ok_or(too_large)
    }

    /// Writes the composite's checkpoint (format above) to the front of `out`: its
    /// options, the wrapped rule, `scalars`, the [`Lookahead::state_slots`] slices of
    /// `state` and, if given, the params. Returns its length. Refused, with `out`
    /// untouched: invalid options, slices of the wrong number or lengths, too short an
    /// `out`.
    pub fn encode_checkpoint<T: Element>(
        &self,
        scalars: &AnyScalars,
        state: &[&[T]],
        params: Option<&[T]>,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.validate()?;
        let m = self.rule.slot_names().len();
        if state.len() != self.state_slots() {
            return Err(Error::StateSlots {
                expected: self.state_slots(),
                found: state.len(),
            });
        }
        let n = state[m].len();
        for (i, s) in state.iter().enumerate() {
            if s.len() != n {
                return Err(Error::LengthMismatch {
                    buffer: crate::error::Buffer::State(i),
                    expected: n,
                    found: s.len(),
                });
            }
        }
        if let Some(p) = params
            && p.len() != n
        {
            // The slices are measured against the params, as in a step.
            return Err(Error::LengthMismatch {
                buffer: crate::error::Buffer::State(m),
                expected: p.len(),
                found: n,
            });
        }
        let len = self.checkpoint_len::<T>(n, params.is_some())?;
        let found = out.len();
        let out = out
            .get_mut(..len)
            .ok_or(Error::Checkpoint(CheckpointError::BufferTooSmall {
                needed: len,
                found,
            }))?;
        let inner = checkpoint::encode_any(&self.rule, scalars, &state[..m], params, out)?;
        let start = pad8(inner).unwrap_or(inner);
        out[inner..start].fill(0);
        let t = &mut out[start..];
        t[0..4].copy_from_slice(&CHECKPOINT_MAGIC);
        t[4..6].copy_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        t[6] = SyncMomentum::ALL
            .iter()
            .position(|&x| x == self.momentum)
            .unwrap_or(0) as u8;
        t[7] = 0;
        t[8..16].copy_from_slice(&self.k.to_le_bytes());
        t[16..24].copy_from_slice(&self.alpha.to_bits().to_le_bytes());
        t[24..32].copy_from_slice(&(n as u64).to_le_bytes());
        t[32..40].copy_from_slice(&(self.own_slots() as u64).to_le_bytes());
        let mut at = TRAILER_FIXED;
        for s in &state[m..] {
            at += checkpoint::write_elements(s, &mut t[at..])?;
        }
        let end = t.len() - 8;
        t[at..end].fill(0);
        let crc = checkpoint::crc32(&t[..end]);
        t[end..end + 4].copy_from_slice(&crc.to_le_bytes());
        t[end + 4..].fill(0);
        Ok(len)
    }

    /// Reads a checkpoint written by [`Lookahead::encode_checkpoint`] into `state`
    /// (the composite's [`Lookahead::state_slots`] slices) and, if given, `params`;
    /// returns the composite and its scalar state. Everything is checked first (the
    /// wrapped rule's checkpoint as the kernel checks it, the trailer's magic,
    /// version, CRC, options and lengths): on `Err` nothing was written.
    pub fn decode_checkpoint<T: Element>(
        bytes: &[u8],
        state: &mut [&mut [T]],
        params: Option<&mut [T]>,
    ) -> Result<(Lookahead<AnyRule>, AnyScalars), Error> {
        let (header, rule, _) = checkpoint::inspect(bytes)?;
        let inner_len = usize::try_from(header.len).map_err(|_| corrupt(usize::MAX, 0))?;
        let start = pad8(inner_len).ok_or(corrupt(usize::MAX, bytes.len()))?;
        let t = bytes
            .get(start..)
            .filter(|t| t.len() >= TRAILER_FIXED + 8)
            .ok_or(corrupt(start + TRAILER_FIXED + 8, bytes.len()))?;
        if t[..4] != CHECKPOINT_MAGIC {
            return Err(Error::Checkpoint(CheckpointError::BadMagic));
        }
        let version = u16::from_le_bytes([t[4], t[5]]);
        if version != CHECKPOINT_VERSION {
            return Err(Error::Checkpoint(CheckpointError::UnsupportedVersion {
                found: version,
            }));
        }
        let momentum = SyncMomentum::ALL.get(usize::from(t[6])).copied();
        let (k, alpha, n, count) = (
            word(t, 8).unwrap_or(0),
            f64::from_bits(word(t, 16).unwrap_or(0)),
            word(t, 24).unwrap_or(0),
            word(t, 32).unwrap_or(0),
        );
        let n = usize::try_from(n).map_err(|_| corrupt(usize::MAX, bytes.len()))?;
        let data = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(n))
            .and_then(|x| x.checked_mul(core::mem::size_of::<T>()))
            .ok_or(corrupt(usize::MAX, bytes.len()))?;
        let end = data
            .checked_add(TRAILER_FIXED)
            .and_then(pad8)
            .ok_or(corrupt(usize::MAX, bytes.len()))?;
        let needed = start.saturating_add(end).saturating_add(8);
        let crc_at = t.get(end..end + 8).ok_or(corrupt(needed, bytes.len()))?;
        let stored = u32::from_le_bytes([crc_at[0], crc_at[1], crc_at[2], crc_at[3]]);
        let computed = checkpoint::crc32(&t[..end]);
        if stored != computed {
            return Err(Error::Checkpoint(CheckpointError::ChecksumMismatch {
                stored,
                computed,
            }));
        }
        let bad = |requirement| Error::InvalidHyperparameter {
            name: "lookahead checkpoint",
            value: 0.0,
            requirement,
        };
        let momentum = momentum.ok_or(bad("momentum must be 0, 1 or 2"))?;
        if t[7] != 0 || crc_at[4..] != [0; 4] {
            return Err(bad("reserved bytes must be 0"));
        }
        let la = Lookahead {
            rule,
            k,
            alpha,
            momentum,
        };
        la.validate()?;
        let m = rule.slot_names().len();
        if count != la.own_slots() as u64 {
            return Err(bad("the number of slices must match the momentum option"));
        }
        if state.len() != la.state_slots() {
            return Err(Error::StateSlots {
                expected: la.state_slots(),
                found: state.len(),
            });
        }
        // The wrapped rule's checkpoint records n = 0 when it holds no arrays at all.
        if header.n != n as u64 && !(header.n == 0 && header.slots == 0 && !header.has_params) {
            return Err(bad("the slices' length must match the wrapped rule's"));
        }
        for (i, s) in state.iter().enumerate() {
            if s.len() != n {
                return Err(Error::LengthMismatch {
                    buffer: crate::error::Buffer::State(i),
                    expected: n,
                    found: s.len(),
                });
            }
        }
        let (inner_state, own) = state.split_at_mut(m);
        // Checks the wrapped rule's checkpoint and the params' length before writing.
        let (_, scalars) = checkpoint::decode_any(&bytes[..inner_len], inner_state, params)?;
        let mut at = TRAILER_FIXED;
        for s in own.iter_mut() {
            at += checkpoint::read_elements(&t[at..], s)?;
        }
        Ok((la, scalars))
    }
}
