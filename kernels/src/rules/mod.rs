//! The update rules, one per file, and the [`Rule`] trait they share.
//!
//! Every rule follows the same contract:
//!
//! - its hyperparameter struct's `Default` is torch.optim's default;
//! - [`Rule::step`] validates the hyperparameters, the slice lengths, the number of
//!   state slices and the step counter *before* writing anything, and returns an
//!   [`Error`] with every buffer untouched otherwise;
//! - the state is fresh when the step counter (in [`Rule::Scalars`]) is 0: the first
//!   step initializes the state slices itself (to zero, or the rule's initial value such
//!   as Adagrad's `initial_accumulator_value`), exactly as torch initializes state
//!   lazily on the first step, so the caller never has to pre-fill them;
//! - to resume training, restore the scalar state and the state slices as they were:
//!   the result is bit-identical to never having stopped.

pub mod adadelta;
pub mod adagrad;
pub mod adam;
pub mod adamax;
pub mod asgd;
pub mod nadam;
pub mod radam;
pub mod rmsprop;
pub mod rprop;
pub mod sgd;

mod prelude;
pub mod registry;

pub use registry::{
    AnyRule, AnyScalars, Field, FieldKind, RuleId, ScalarKind, ScalarState, SpecError, Value,
};

use crate::driver::{Kernel, run};
use crate::error::{Buffer, Error};
use crate::power::{Powers, powi};
use crate::real::Real;

/// The most state slices any rule needs (Adam with `amsgrad`, RMSprop centered with
/// momentum).
pub const MAX_STATE_SLOTS: usize = 3;

/// An optimizer update rule over caller-owned slices.
pub trait Rule: Copy + core::fmt::Debug + PartialEq {
    /// The rule's scalar state: the step counter, plus NAdam's μ-product or ASGD's η and
    /// μ. `Default` is the fresh state (step 0). Plain values, to read, save and restore.
    type Scalars: ScalarState;

    /// The rule's name, lower case as in torch (`"adam"`, `"sgd"`, ...).
    const NAME: &'static str;

    /// Checks every hyperparameter; the error names the first one out of range.
    fn validate(&self) -> Result<(), Error>;

    /// Names of the state slices [`Rule::step`] expects, in order, as torch names the
    /// tensors in `optimizer.state[p]`. Their number depends on the options (e.g. Adam
    /// with `amsgrad` needs `max_exp_avg_sq` too); each slice is as long as the params.
    fn slot_names(&self) -> &'static [&'static str];

    /// How many state slices [`Rule::step`] expects: `slot_names().len()`.
    fn state_slots(&self) -> usize {
        self.slot_names().len()
    }

    /// One optimizer step: updates `params` in place from `grads`, advancing the state.
    ///
    /// `state` holds [`Rule::state_slots`] slices, each as long as `params`. On `Err`
    /// nothing was written.
    fn step<T: Real>(
        &self,
        scalars: &mut Self::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error>;

    /// The scalar reference implementation: the same step as [`Rule::step`], written as
    /// a plain loop over elements without lanes. It is the oracle the vectorized path is
    /// tested against (bit-for-bit), and the most direct reading of the equations.
    fn step_reference<T: Real>(
        &self,
        scalars: &mut Self::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error>;

    /// [`Rule::step`] with the state in one flat buffer: slot `k` is
    /// `state[k·n .. (k+1)·n]` for `n = params.len()`, so `state.len()` must be
    /// `state_slots() · n`. Convenient for C callers and firmware.
    fn step_flat<T: Real>(
        &self,
        scalars: &mut Self::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [T],
    ) -> Result<(), Error> {
        let n = params.len();
        let slots = self.state_slots();
        let expected = slots.checked_mul(n).ok_or(Error::FlatStateLength {
            expected: usize::MAX,
            found: state.len(),
        })?;
        if state.len() != expected {
            return Err(Error::FlatStateLength {
                expected,
                found: state.len(),
            });
        }
        let mut parts: [&mut [T]; MAX_STATE_SLOTS] = [&mut [], &mut [], &mut []];
        let mut rest = state;
        for part in parts.iter_mut().take(slots) {
            let (head, tail) = rest.split_at_mut(n);
            *part = head;
            rest = tail;
        }
        self.step(
            scalars,
            params,
            grads,
            &mut parts[..slots.min(MAX_STATE_SLOTS)],
        )
    }
}

/// The scalar state of rules whose only scalar state is the step counter.
///
/// It also carries a cache of the powers `β^t` that the bias-corrected rules (Adam,
/// AdamW, Adamax, RAdam) compute each step, kept at 128 bits so that the next step's
/// power is one multiply instead of a `pow`. The cache never changes a result (a
/// stale or empty cache is recomputed), so it is not part of equality, hashing, `Debug`
/// output or checkpoints: `StepCount::new(t)` resumes exactly.
#[derive(Clone, Copy, Default)]
pub struct StepCount {
    /// Steps taken so far; 0 means the state is fresh and the next step initializes it.
    pub step: u64,
    pub(crate) powers: Powers,
}

/// Words in [`StepCount::cache`].
pub const STEP_CACHE_WORDS: usize = crate::power::CACHE_WORDS;

impl StepCount {
    /// The state after `step` steps (0: fresh).
    pub const fn new(step: u64) -> StepCount {
        StepCount {
            step,
            powers: Powers::EMPTY,
        }
    }

    /// The powers cache as plain words, to carry a `StepCount` through plain data from
    /// one step to the next (the C ABI's `gradstep_scalars` does). All zeros is empty.
    pub fn cache(&self) -> [u64; STEP_CACHE_WORDS] {
        self.powers.words()
    }

    /// The state after `step` steps with a powers cache from [`StepCount::cache`]. The
    /// words are verified (a check word per cached power): anything that `cache` did not
    /// write, such as zeros or altered words, leaves that power uncached, which costs
    /// time on the next step and never changes a result.
    pub fn with_cache(step: u64, cache: &[u64; STEP_CACHE_WORDS]) -> StepCount {
        StepCount {
            step,
            powers: Powers::from_words(cache),
        }
    }
}

impl PartialEq for StepCount {
    fn eq(&self, other: &Self) -> bool {
        self.step == other.step
    }
}

impl Eq for StepCount {}

impl core::hash::Hash for StepCount {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.step.hash(state);
    }
}

impl core::fmt::Debug for StepCount {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StepCount")
            .field("step", &self.step)
            .finish()
    }
}

/// Checks `grads` and each of the `slots` state slices against `params`. Touches nothing.
pub(crate) fn check_buffers<T>(
    params: &[T],
    grads: &[T],
    state: &[&mut [T]],
    slots: usize,
) -> Result<(), Error> {
    let n = params.len();
    if grads.len() != n {
        return Err(Error::LengthMismatch {
            buffer: Buffer::Grads,
            expected: n,
            found: grads.len(),
        });
    }
    if state.len() != slots {
        return Err(Error::StateSlots {
            expected: slots,
            found: state.len(),
        });
    }
    for (i, s) in state.iter().enumerate() {
        if s.len() != n {
            return Err(Error::LengthMismatch {
                buffer: Buffer::State(i),
                expected: n,
                found: s.len(),
            });
        }
    }
    Ok(())
}

/// [`check_buffers`], returning the state as an array of exactly `K` slices.
pub(crate) fn buffers<'a, T, const K: usize>(
    params: &[T],
    grads: &[T],
    state: &'a mut [&mut [T]],
) -> Result<[&'a mut [T]; K], Error> {
    check_buffers(params, grads, state, K)?;
    let found = state.len();
    let slots: &'a mut [&mut [T]; K] = state
        .try_into()
        .map_err(|_| Error::StateSlots { expected: K, found })?;
    Ok(slots.each_mut().map(|s| &mut **s))
}

/// Checks the buffers, initializes fresh state (`init[k]` into slot `k` when `init` is
/// given, i.e. at step 0), and runs `kernel` over every element.
pub(crate) fn run_fresh<T: Real, const K: usize, F: Kernel<T, K>>(
    kernel: &F,
    init: Option<[T; K]>,
    params: &mut [T],
    grads: &[T],
    state: &mut [&mut [T]],
) -> Result<(), Error> {
    let mut slots = buffers::<T, K>(params, grads, state)?;
    if let Some(init) = init {
        for (slot, value) in slots.iter_mut().zip(init) {
            slot.fill(value);
        }
    }
    run(kernel, params, grads, slots);
    Ok(())
}

/// The next step number, or the overflow error.
pub(crate) fn next_step(step: u64) -> Result<u64, Error> {
    step.checked_add(1).ok_or(Error::StepOverflow)
}

/// `torch.lerp(a, b, weight)` on scalars, for the reference implementations:
/// `a + w·(b − a)` when `|w| < 0.5`, else `b − (b − a)·(1 − w)`, with `w` rounded to `T`.
pub(crate) fn lerp<T: Real>(a: T, b: T, weight: f64) -> T {
    let w = T::from_f64(weight);
    if weight.abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (T::ONE - w)
    }
}

/// `base ** exp` as Python computes it for floats (C `pow`): correctly rounded
/// [`powi`] for whole exponents in `[0, 2⁵³]` (steps, epochs, milestone counts),
/// `libm::pow` otherwise.
#[inline]
pub(crate) fn powf(base: f64, exp: f64) -> f64 {
    if (0.0..=9_007_199_254_740_992.0).contains(&exp) && exp as u64 as f64 == exp {
        powi(base, exp as u64)
    } else {
        libm::pow(base, exp)
    }
}
