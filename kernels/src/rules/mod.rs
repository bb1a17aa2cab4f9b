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
pub mod adan;
pub mod asgd;
pub mod ftrl;
pub mod lamb;
pub mod nadam;
pub mod online_rmsprop;
pub mod proximal;
pub mod radam;
pub mod rmsprop;
pub mod rmsprop_bc;
pub mod rprop;
pub mod sc_adagrad;
pub mod sc_rmsprop;
pub mod sgd;

mod mukkamala2017;
mod prelude;
pub mod registry;

pub use registry::{
    AnyRule, AnyScalars, Choice, Field, FieldKind, RuleId, ScalarKind, ScalarState, SpecError,
    Value,
};

use crate::driver::{ApplyPart, Buffers, Drive, NormsPart, Scratch, check_scratch};
pub use crate::driver::{NORM_PART_ALIGN, NormSums};
use crate::error::{Buffer, Error};
use crate::power::{Powers, pow, powi};
use crate::real::Real;

/// The most state slices any rule needs (Adan: three moments and the previous
/// gradient).
pub const MAX_STATE_SLOTS: usize = 4;

/// An optimizer update rule over caller-owned slices.
///
/// A rule supplies its validation ([`Rule::validate`]), its state slices
/// ([`Rule::slot_names`]), its step once every check has passed ([`Rule::run`]: per-step
/// coefficients, any scalar state of its own, the element kernel and the state's initial
/// values) and its scalar reference ([`Rule::step_reference`]). The provided
/// [`Rule::step`] is the shell around `run` that every rule shares.
///
/// [`Rule::run`] names crate-private types, so only the crate's own rules (and wrappers
/// such as [`ApplyIfFinite`](crate::ApplyIfFinite)) implement `Rule`.
///
/// Where the caller's buffers sit changes the speed, never the result. On x86 a load
/// whose address matches a recent store's in its low 12 bits waits for it (4K
/// aliasing), and the element loop stores the params and state at `i` and then loads
/// every buffer at `i + W`: a buffer that starts up to about 1 KiB before or after
/// another, counted modulo 4 KiB, can make a step several times slower (on a Zen 4 at
/// 1K params: SGD with momentum 7.9× with its buffer 64 bytes past the params, Adam
/// 3.7× with its moments 64 bytes before them). `Vec`s of a few KiB allocated one after
/// another by glibc's `malloc` land within about a hundred bytes of each other modulo
/// 4 KiB, and only 16-byte aligned (f32 Adam on four 1 000-element `Vec`s: 1.3–1.5×
/// the time per element of page-aligned buffers). Page-aligned buffers, all at the
/// same offset within a page, avoid it, and so do buffers 1 KiB or more apart modulo
/// 4 KiB: the two measured the same from 1K to 16M params (f32 Adam and SGD with
/// momentum, the same allocations shifted). At sizes that stream from memory, buffers on
/// transparent huge pages (Linux: `madvise(MADV_HUGEPAGE)`) stepped f32 Adam and SGD
/// with momentum 1.05–1.33× faster from 1M to 16M params (a Zen 4).
/// `gradstep_optim::Optimizer` places the state it owns, and advises it so.
pub trait Rule: Copy + core::fmt::Debug + PartialEq {
    /// The rule's scalar state: the step counter, plus NAdam's μ-product or ASGD's η and
    /// μ. `Default` is the fresh state (step 0). Plain values, to read, save and restore.
    type Scalars: ScalarState;

    /// The rule's name, lower case as in torch (`"adam"`, `"sgd"`, ...).
    const NAME: &'static str;

    /// `true` for a layer-wise rule (LAMB), whose step depends on a norm over the whole
    /// slice: a [`Rule::step`] call's slice must be one whole tensor; cut into parts,
    /// the tensor is stepped in two calls per part, [`AnyRule::step_norms_part`] on
    /// every part and then [`AnyRule::step_apply_part`] with the parts' merged sums.
    /// `false` for the elementwise rules, whose chunks may be stepped separately with
    /// the same bits.
    const WHOLE_SLICE: bool = false;

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

    /// Step `t` (1 for the first step, on fresh state), called by [`Rule::step`] once the
    /// hyperparameters and the step counter are checked: computes the step's
    /// coefficients from the hyperparameters, `t` and the rule's own scalar state (which
    /// it may advance: NAdam's Π, ASGD's η and μ, the powers cache of [`StepCount`]; the
    /// step counter itself is the shell's), then calls `Drive::run` exactly once with
    /// the element kernel its options select, `K` = [`Rule::state_slots`], and the
    /// values the state slices start from. The drive checks the buffers before it
    /// writes anything. That one call is the single entry point from every rule into
    /// the element loop, where runtime instruction-set dispatch goes.
    ///
    /// If the drive fails, the shell puts `scalars` back as they were (all but a
    /// [`StepCount`]'s powers cache, which never changes a result:
    /// [`ScalarState::RUN_CHANGES`]).
    fn run<T: Real, D: Drive<T>>(&self, scalars: &mut Self::Scalars, t: u64, drive: D) -> D::Out;

    /// One optimizer step: updates `params` in place from `grads`, advancing the state.
    ///
    /// `state` holds [`Rule::state_slots`] slices, each as long as `params`. On `Err`
    /// nothing was written: the hyperparameters, the step counter's overflow, every
    /// length and the slot count are checked before any write, and the scalar state is
    /// restored if the step fails. Fresh state (step 0) is initialized here, with the
    /// values [`Rule::run`] gives.
    fn step<T: Real>(
        &self,
        scalars: &mut Self::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        advance(self, scalars, |t| {
            Buffers::new(params, grads, state, t == 1)
        })
    }

    /// [`Rule::step`] with scratch memory: `scratch`, as long as `params` (checked with
    /// the other buffers, [`Buffer::Scratch`]; what it holds on entry does not matter
    /// and what it holds after is unspecified), lets a layer-wise rule
    /// ([`Rule::WHOLE_SLICE`]: LAMB) store each element's update in its first pass and
    /// read it back in its second instead of computing it again from the state. The
    /// result is [`Rule::step`]'s to the bit; LAMB does one square root and one
    /// division per element instead of two of each. Elementwise rules leave `scratch`
    /// as it is.
    ///
    /// It pays while the buffers stay in cache; from main memory the scratch's store
    /// and load cost more than the second pass's loads of the moments it saves (the
    /// owning optimizer uses it for tensors of up to `gradstep_optim::SCRATCH_MAX_BYTES`
    /// bytes).
    fn step_scratch<T: Real>(
        &self,
        scalars: &mut Self::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
        scratch: &mut [T],
    ) -> Result<(), Error> {
        if !Self::WHOLE_SLICE {
            // No use for it: the rule's own step, after the scratch's length (a drive
            // with scratch would compile every elementwise kernel a second time: the C
            // library grew by 16 %).
            check_scratch(params.len(), scratch)?;
            return self.step(scalars, params, grads, state);
        }
        advance(self, scalars, |t| Scratch {
            buffers: Buffers::new(params, grads, state, t == 1),
            scratch,
        })
    }

    /// The scalar reference implementation: the same step as [`Rule::step`], written
    /// from the rule's documented equations as a plain loop over elements, with its
    /// coefficients computed inline in `f64`. It shares no coefficient, weight-decay or
    /// kernel code with [`Rule::run`] (only the checks of [`Rule::step`] and the
    /// primitives that define the semantics: torch's `lerp` formula, Python's `pow`,
    /// the scalar square root), so the tests comparing the two bit for bit check the
    /// coefficients as well as the lanes.
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
        let slots = self.state_slots();
        let mut parts = flat_slots(state, params.len(), slots)?;
        self.step(
            scalars,
            params,
            grads,
            &mut parts[..slots.min(MAX_STATE_SLOTS)],
        )
    }

    /// [`Rule::step_scratch`] with the state in one flat buffer, as [`Rule::step_flat`]
    /// takes it.
    fn step_flat_scratch<T: Real>(
        &self,
        scalars: &mut Self::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [T],
        scratch: &mut [T],
    ) -> Result<(), Error> {
        let slots = self.state_slots();
        let mut parts = flat_slots(state, params.len(), slots)?;
        let parts = &mut parts[..slots.min(MAX_STATE_SLOTS)];
        self.step_scratch(scalars, params, grads, parts, scratch)
    }
}

/// The `slots` state slices of `n` elements each in a flat `state` buffer (slot `k` is
/// `state[k·n .. (k+1)·n]`), or [`Error::FlatStateLength`] unless `state` holds exactly
/// `slots · n` elements.
#[inline(always)]
fn flat_slots<T>(
    state: &mut [T],
    n: usize,
    slots: usize,
) -> Result<[&mut [T]; MAX_STATE_SLOTS], Error> {
    let found = state.len();
    let expected = slots.checked_mul(n).ok_or(Error::FlatStateLength {
        expected: usize::MAX,
        found,
    })?;
    if found != expected {
        return Err(Error::FlatStateLength { expected, found });
    }
    let mut parts: [&mut [T]; MAX_STATE_SLOTS] = Default::default();
    let mut rest = state;
    for part in parts.iter_mut().take(slots) {
        // The length is checked above, so this always splits; the checked form
        // leaves no panic path in the kernel (the compiler could not prove the
        // plain one's, and a Cortex-M image carried it per rule).
        let Some((head, tail)) = rest.split_at_mut_checked(n) else {
            return Err(Error::FlatStateLength { expected, found });
        };
        *part = head;
        rest = tail;
    }
    Ok(parts)
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
    /// [`ScalarState::check`]: every step count is one steps produce.
    #[inline(always)]
    pub(crate) fn check_reachable(&self) -> Result<(), Error> {
        Ok(())
    }

    /// The state after `step` steps (0: fresh).
    pub const fn new(step: u64) -> StepCount {
        StepCount {
            step,
            powers: Powers::EMPTY,
        }
    }

    /// The powers cache as plain words, to carry a `StepCount` through plain data from
    /// one step to the next (the C ABI's `gradstep_scalars` does). All zeros is empty.
    #[inline]
    pub fn cache(&self) -> [u64; STEP_CACHE_WORDS] {
        self.powers.words()
    }

    /// The state after `step` steps with a powers cache from [`StepCount::cache`]. The
    /// words are verified (a check word per cached power): anything that `cache` did not
    /// write, such as zeros or altered words, leaves that power uncached, which costs
    /// time on the next step and never changes a result.
    #[inline]
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

/// The checks of a step that come before its coefficients: the hyperparameters, then
/// the step counter's overflow. Returns the step number `t` (1 on fresh state). The
/// buffers are checked by the drive, before it writes anything.
pub(crate) fn next_step<R: Rule>(rule: &R, scalars: &R::Scalars) -> Result<u64, Error> {
    rule.validate()?;
    scalars.check()?;
    scalars.step().checked_add(1).ok_or(Error::StepOverflow)
}

/// The first part of a layer-wise rule's step over one part of a tensor (see
/// [`AnyRule::step_norms_part`]): `scalars` are read, not advanced.
pub(crate) fn norms_part<R: Rule, T: Real>(
    rule: &R,
    id: RuleId,
    scalars: &R::Scalars,
    params: &mut [T],
    grads: &[T],
    state: &mut [&mut [T]],
    scratch: Option<&mut [T]>,
) -> Result<NormSums, Error> {
    let refuse = Error::NotLayerWise { rule: id };
    if !R::WHOLE_SLICE {
        return Err(refuse);
    }
    let t = next_step(rule, scalars)?;
    // The powers cache may advance; this part's copy of it is dropped.
    let mut scalars = *scalars;
    let buffers = Buffers::new(params, grads, state, t == 1);
    let drive = NormsPart {
        buffers,
        scratch,
        refuse,
    };
    rule.run(&mut scalars, t, drive)
}

/// The second part of a layer-wise rule's step over one part of a tensor (see
/// [`AnyRule::step_apply_part`]): advances `scalars` as [`Rule::step`] does.
#[allow(clippy::too_many_arguments)] // `AnyRule::step_apply_part`'s, and the rule's.
pub(crate) fn apply_part<R: Rule, T: Real>(
    rule: &R,
    id: RuleId,
    scalars: &mut R::Scalars,
    sums: &NormSums,
    params: &mut [T],
    grads: &[T],
    state: &mut [&mut [T]],
    scratch: Option<&mut [T]>,
) -> Result<(), Error> {
    let refuse = Error::NotLayerWise { rule: id };
    if !R::WHOLE_SLICE {
        return Err(refuse);
    }
    advance(rule, scalars, |_| ApplyPart {
        buffers: Buffers::new(params, grads, state, false),
        sums: sums.values(),
        scratch,
        refuse,
    })
}

/// The shell of every step that advances the scalar state ([`Rule::step`],
/// [`apply_part`]): checks the hyperparameters and the step counter, runs the rule with
/// the drive `drive(t)` builds for step `t`, then stores `t`, or puts `scalars` back as
/// they were if the drive refused (when [`ScalarState::RUN_CHANGES`]: otherwise there is
/// nothing to put back).
#[inline(always)]
pub(crate) fn advance<R: Rule, T: Real, D: Drive<T, Out = Result<(), Error>>>(
    rule: &R,
    scalars: &mut R::Scalars,
    drive: impl FnOnce(u64) -> D,
) -> Result<(), Error> {
    let t = next_step(rule, scalars)?;
    let before = if R::Scalars::RUN_CHANGES {
        Some(*scalars)
    } else {
        None
    };
    match rule.run(scalars, t, drive(t)) {
        Ok(()) => {
            scalars.set_step(t);
            Ok(())
        }
        Err(e) => {
            if let Some(before) = before {
                *scalars = before;
            }
            Err(e)
        }
    }
}

/// Every check of a step, in the order [`Rule::step`] makes them: [`next_step`], then
/// the lengths and the slot count. For the references, which check before they loop.
pub(crate) fn begin_step<R: Rule, T>(
    rule: &R,
    scalars: &R::Scalars,
    params: &[T],
    grads: &[T],
    state: &[&mut [T]],
) -> Result<u64, Error> {
    let t = next_step(rule, scalars)?;
    check_buffers(params, grads, state, rule.state_slots())?;
    Ok(t)
}

/// `torch.lerp(a, b, weight)` on scalars, for the reference implementations:
/// `a + w·(b − a)` when `|w| < 0.5`, else `b − (b − a)·(1 − w)`, with `w` rounded to `T`
/// (and compared so, as torch does).
pub(crate) fn lerp<T: Real>(a: T, b: T, weight: f64) -> T {
    let w = T::from_f64(weight);
    if w.to_f64().abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (T::ONE - w)
    }
}

/// `x ≠ 0` on the bits (±0 are the only doubles whose bits other than the sign are all
/// zero; NaN is nonzero, as `!=` has it): the per-step scalars' on/off tests of a
/// hyperparameter, where a float comparison is a library call on a core without a
/// double-precision unit (the Cortex-M4F and M0).
///
/// Tested as two 32-bit halves: LLVM folds the 64-bit form (`bits << 1 != 0`, or `bits &
/// !SIGN != 0`) back into the float comparison `x != 0.0`, which on those cores is the
/// `__aeabi_dcmpeq` call this function exists to avoid (`firmware/profile.sh` showed 3 of
/// them per SGD step).
#[inline(always)]
pub(crate) fn nonzero(x: f64) -> bool {
    let bits = x.to_bits();
    ((bits >> 32) as u32) << 1 | bits as u32 != 0
}

/// `x.is_finite()` on the high word (the exponent field not all ones): core's
/// `is_finite` is `|x| < ∞`, which LLVM sometimes keeps as a float comparison, a library
/// call on the Cortex-M4F and M0 (in `pow`, every NAdam and ASGD step).
#[inline(always)]
pub(crate) fn finite(x: f64) -> bool {
    ((x.to_bits() >> 32) as u32) << 1 < 0xFFE0_0000
}

/// `x < y` on the bits, with the float comparison's answer for every pair (±0 equal,
/// NaN unordered): for the per-step tests between hyperparameters and against
/// constants, each a library call of about 30 instructions on the Cortex-M4F and M0.
#[inline(always)]
pub(crate) fn lt(x: f64, y: f64) -> bool {
    ordered(x, y) & (order(x) < order(y))
}

/// `x <= y` on the bits, as [`lt`].
#[inline(always)]
pub(crate) fn le(x: f64, y: f64) -> bool {
    ordered(x, y) & (order(x) <= order(y))
}

/// `x == c` on the bits for a constant `c` other than ±0 and NaN (for 0 use
/// [`nonzero`]: LLVM turns a zero test on the bits back into a float comparison). Such
/// a `c` has one encoding, so the bits are equal exactly where the values are.
#[inline(always)]
pub(crate) fn is(x: f64, c: f64) -> bool {
    x.to_bits() == c.to_bits()
}

/// Neither is NaN.
#[inline(always)]
fn ordered(x: f64, y: f64) -> bool {
    const MAGNITUDE: u64 = !(1 << 63);
    let inf = f64::INFINITY.to_bits();
    (x.to_bits() & MAGNITUDE <= inf) & (y.to_bits() & MAGNITUDE <= inf)
}

/// An integer that orders as the value among non-NaN doubles: the magnitude's bits
/// (which order as the magnitudes), negated for a negative value; ±0 are both 0.
#[inline(always)]
fn order(x: f64) -> i64 {
    let bits = x.to_bits() as i64;
    let magnitude = bits & i64::MAX;
    if bits < 0 { -magnitude } else { magnitude }
}

/// `base ** exp` as Python computes it for floats (C `pow`): correctly rounded
/// [`powi`] for whole exponents in `[0, 2⁵³]` (steps, epochs, milestone counts),
/// correctly rounded [`pow`] (double-double `e^(y·ln x)`) otherwise.
#[inline]
pub(crate) fn powf(base: f64, exp: f64) -> f64 {
    match whole(exp) {
        Some(n) => powi(base, n),
        None => pow(base, exp),
    }
}

/// `exp` as a whole number if it is one in `[0, 2⁵³]` (±0 included), else `None`: the
/// test `(0.0..=2⁵³).contains(&exp) && exp as u64 as f64 == exp` on the bits, where it
/// is two conversions and three comparisons, each a library call, on a core without a
/// double-precision unit (NAdam's and ASGD's steps make it twice).
#[inline]
pub(crate) fn whole(exp: f64) -> Option<u64> {
    const FRACTION: u64 = (1 << 52) - 1;
    let bits = exp.to_bits();
    if !nonzero(exp) {
        return Some(0);
    }
    // Positive (the sign bit clear) and in [1, 2⁵⁴): the biased exponents of 2⁰ ..= 2⁵³.
    let field = bits >> 52;
    if !(1023..=1076).contains(&field) {
        return None;
    }
    if field == 1076 {
        // In [2⁵³, 2⁵⁴): whole, and in range only as 2⁵³ itself.
        return (bits & FRACTION == 0).then_some(1 << 53);
    }
    // exp = m·2^(−shift), m the 53-bit significand: whole when the `shift` bits below
    // the point are zero.
    let (m, shift) = (bits & FRACTION | 1 << 52, 1075 - field);
    (m & ((1 << shift) - 1) == 0).then_some(m >> shift)
}
