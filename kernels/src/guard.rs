//! Skipping steps whose gradients are not finite (optax `apply_if_finite`, the skip in
//! `torch.amp.GradScaler.step`, Keras's `LossScaleOptimizer`).
//!
//! A NaN or infinite gradient, once applied, poisons the parameters and every moment
//! estimate for good. [`ApplyIfFinite`] wraps any [`Rule`]: it checks the gradients
//! first (a vectorized scan) and steps only if all are finite; otherwise params, state
//! slices and the wrapped rule's scalar state stay exactly as they were, and the skip is
//! counted in [`NonFiniteCounts`].
//!
//! ```
//! use gradstep::{Adam, ApplyIfFinite, Outcome, Rule};
//!
//! let guarded = ApplyIfFinite::new(Adam::default());
//! let mut scalars = Default::default();
//! let mut params = [1.0f32, 2.0];
//! let (mut m, mut v) = ([0.0f32; 2], [0.0f32; 2]);
//! let bad = [0.5f32, f32::NAN];
//! let outcome = guarded.apply(&mut scalars, &mut params, &bad, &mut [&mut m, &mut v])?;
//! assert_eq!(outcome, Outcome::Skipped);
//! assert_eq!((params, scalars.inner.step, scalars.counts.total_notfinite), ([1.0, 2.0], 0, 1));
//! // `ApplyIfFinite` is itself a `Rule`, so it composes like any other.
//! guarded.step(&mut scalars, &mut params, &[0.5, 0.5], &mut [&mut m, &mut v])?;
//! assert_eq!((scalars.inner.step, scalars.counts.notfinite_count), (1, 0));
//! # Ok::<(), gradstep::Error>(())
//! ```
//!
//! For a model with many parameter tensors, decide once for all of them with
//! [`all_finite_slices`], step each tensor (or none), and record the decision with
//! [`NonFiniteCounts::record`].

use crate::driver::{Drive, check_scratch};
use crate::error::Error;
use crate::real::Real;
use crate::reduce::{self, NonFinite};
use crate::rules::{Rule, check_buffers};

/// `true` if no element of `xs` is NaN or infinite (vectorized; stops at the first block
/// of 256 elements that holds one). `true` for an empty slice.
pub fn all_finite<T: Real>(xs: &[T]) -> bool {
    reduce::reduce::<T, NonFinite>(xs) == 0.0
}

/// [`all_finite`] over many slices: `&[&[T]]`, `&[&mut [T]]`, `&[Vec<T>]`, ...
pub fn all_finite_slices<T: Real, S: AsRef<[T]>>(slices: &[S]) -> bool {
    slices.iter().all(|s| all_finite(s.as_ref()))
}

/// What [`ApplyIfFinite::apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every gradient was finite; the wrapped rule stepped.
    Stepped,
    /// Some gradient was NaN or infinite; nothing was written.
    Skipped,
}

/// optax's `ApplyIfFiniteState` counters, without the inner state.
///
/// | field | optax | meaning | initial |
/// |---|---|---|---|
/// | `notfinite_count` | `notfinite_count` | consecutive skipped steps | 0 |
/// | `last_finite` | `last_finite` | whether the last gradients were finite | true |
/// | `total_notfinite` | `total_notfinite` | skipped steps since the start | 0 |
///
/// Counters saturate at `u64::MAX` (optax's `safe_increment`). optax's
/// `max_consecutive_errors`, after which it applies non-finite updates anyway, has no
/// equivalent: gradstep never writes a non-finite step; read `notfinite_count` to stop a
/// run that keeps failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NonFiniteCounts {
    /// Consecutive steps skipped up to now (0 after a finite step).
    pub notfinite_count: u64,
    /// Whether the most recent gradients were all finite.
    pub last_finite: bool,
    /// Steps skipped in total.
    pub total_notfinite: u64,
}

impl Default for NonFiniteCounts {
    fn default() -> Self {
        NonFiniteCounts {
            notfinite_count: 0,
            last_finite: true,
            total_notfinite: 0,
        }
    }
}

impl NonFiniteCounts {
    /// Records whether this step's gradients were all finite, and returns what should be
    /// done with the step: [`Outcome::Stepped`] if `finite`, [`Outcome::Skipped`] if not.
    pub fn record(&mut self, finite: bool) -> Outcome {
        self.last_finite = finite;
        if finite {
            self.notfinite_count = 0;
            Outcome::Stepped
        } else {
            self.notfinite_count = self.notfinite_count.saturating_add(1);
            self.total_notfinite = self.total_notfinite.saturating_add(1);
            Outcome::Skipped
        }
    }
}

/// The scalar state of [`ApplyIfFinite`]: the wrapped rule's, and the skip counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IfFiniteScalars<S> {
    /// The wrapped rule's scalar state (its step counter is not advanced by a skip).
    pub inner: S,
    /// How many steps were skipped.
    pub counts: NonFiniteCounts,
}

impl<S: crate::rules::ScalarState> crate::rules::ScalarState for IfFiniteScalars<S> {
    fn step(&self) -> u64 {
        self.inner.step()
    }
    fn set_step(&mut self, step: u64) {
        self.inner.set_step(step);
    }
    fn check(&self) -> Result<(), crate::Error> {
        self.inner.check()
    }
}

/// Any [`Rule`], stepped only when every gradient is finite (optax `apply_if_finite`).
///
/// ```text
/// if all gᵢ finite:  step the rule;               notfinite_count ← 0
/// else:              leave θ, state, scalars;     notfinite_count += 1, total_notfinite += 1
/// ```
///
/// It is a [`Rule`] itself (same name, hyperparameters and state slices as the rule it
/// wraps; scalar state [`IfFiniteScalars`]), so [`Rule::step`] and [`Rule::step_flat`]
/// work; [`ApplyIfFinite::apply`] also says whether it stepped.
///
/// Bad calls are refused the same way whatever the gradients hold: invalid
/// hyperparameters, length or slot-count mismatches return the wrapped rule's error
/// before anything, counters included, is written. A skip does not check the step
/// counter for overflow, since no step is taken.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ApplyIfFinite<R> {
    /// The wrapped rule.
    pub rule: R,
}

impl<R: Rule> ApplyIfFinite<R> {
    /// Wraps `rule`.
    pub fn new(rule: R) -> Self {
        ApplyIfFinite { rule }
    }

    /// Steps the wrapped rule if every gradient is finite, or skips; see the type docs.
    pub fn apply<T: Real>(
        &self,
        scalars: &mut IfFiniteScalars<R::Scalars>,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<Outcome, Error> {
        self.guarded(scalars, params, grads, state, Step::Kernel(None))
    }

    fn guarded<T: Real>(
        &self,
        scalars: &mut IfFiniteScalars<R::Scalars>,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
        how: Step<'_, T>,
    ) -> Result<Outcome, Error> {
        let finite = match how {
            Step::Reference => grads.iter().all(|g| Real::is_finite(*g)),
            Step::Kernel(_) => all_finite(grads),
        };
        if finite {
            match how {
                Step::Reference => {
                    self.rule
                        .step_reference(&mut scalars.inner, params, grads, state)?
                }
                Step::Kernel(None) => self.rule.step(&mut scalars.inner, params, grads, state)?,
                Step::Kernel(Some(scratch)) => {
                    self.rule
                        .step_scratch(&mut scalars.inner, params, grads, state, scratch)?
                }
            }
        } else {
            self.rule.validate()?;
            check_buffers(params, grads, state, self.rule.state_slots())?;
            if let Step::Kernel(Some(scratch)) = how {
                check_scratch(params.len(), scratch)?;
            }
        }
        Ok(scalars.counts.record(finite))
    }
}

impl<R: Rule> Rule for ApplyIfFinite<R> {
    type Scalars = IfFiniteScalars<R::Scalars>;
    const NAME: &'static str = R::NAME;
    const WHOLE_SLICE: bool = R::WHOLE_SLICE;

    fn validate(&self) -> Result<(), Error> {
        self.rule.validate()
    }

    fn slot_names(&self) -> &'static [&'static str] {
        self.rule.slot_names()
    }

    /// The wrapped rule's step. Only the wrapped rule's checks lead here: this type's
    /// [`Rule::step`] is not the shared shell but checks the gradients first.
    fn run<T: Real, D: Drive<T>>(&self, scalars: &mut Self::Scalars, t: u64, drive: D) -> D::Out {
        self.rule.run(&mut scalars.inner, t, drive)
    }

    /// Steps the wrapped rule if every gradient is finite; see [`ApplyIfFinite::apply`].
    fn step<T: Real>(
        &self,
        scalars: &mut Self::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        self.guarded(scalars, params, grads, state, Step::Kernel(None))
            .map(|_| ())
    }

    /// [`Rule::step_scratch`] of the wrapped rule if every gradient is finite; see
    /// [`ApplyIfFinite::apply`].
    fn step_scratch<T: Real>(
        &self,
        scalars: &mut Self::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
        scratch: &mut [T],
    ) -> Result<(), Error> {
        self.guarded(scalars, params, grads, state, Step::Kernel(Some(scratch)))
            .map(|_| ())
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut Self::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        self.guarded(scalars, params, grads, state, Step::Reference)
            .map(|_| ())
    }
}

/// Which step [`ApplyIfFinite`] takes when the gradients are finite.
enum Step<'a, T> {
    /// [`Rule::step`], or [`Rule::step_scratch`] with this scratch.
    Kernel(Option<&'a mut [T]>),
    /// [`Rule::step_reference`].
    Reference,
}
