//! An optimizer that owns its state, over the gradstep kernels: torch's
//! `torch.optim.Optimizer` for Rust callers.
//!
//! The kernels ([`gradstep`]) never allocate: the caller owns every buffer. This crate
//! is the std layer on top: an [`Optimizer`] holds param groups with their own
//! hyperparameters and schedules, and every registered tensor's state slices and scalar
//! state (its own step count, as torch's `state[p]["step"]`). The caller keeps owning
//! the params and grads and passes them to each [`Optimizer::step`]. Checkpoints hold
//! the whole optimizer, in a container of kernel checkpoints (format below).
//!
//! ```
//! use gradstep::rules::AnyRule;
//! use gradstep::schedules::StepLr;
//! use gradstep_optim::Optimizer;
//!
//! // The rule as a config file names it; two tensors of different lengths.
//! let rule = AnyRule::parse("adam:lr=3e-3,weight_decay=0.01")?;
//! let new_optimizer = || -> Result<_, gradstep_optim::Error> {
//!     let mut opt = Optimizer::<f32>::new(rule)?;
//!     let g = opt.default_group();
//!     opt.add_tensor(g, 5)?;
//!     opt.add_tensor(g, 3)?;
//!     opt.attach_schedule(g, StepLr::new(2, 0.5))?;
//!     Ok(opt)
//! };
//! let grads = |t: usize| -> (Vec<f32>, Vec<f32>) {
//!     let w = (0..5).map(|i| ((i + t) as f32 * 0.7).sin()).collect();
//!     let b = (0..3).map(|i| ((i * t) as f32 * 0.3).cos()).collect();
//!     (w, b)
//! };
//! let train = |opt: &mut Optimizer<f32>, w: &mut [f32], b: &mut [f32], steps| {
//!     for t in steps {
//!         let (gw, gb) = grads(t);
//!         opt.step(&mut [(&mut *w, &gw[..]), (&mut *b, &gb[..])])?;
//!         opt.schedule_step()?;
//!     }
//!     Ok::<(), gradstep_optim::Error>(())
//! };
//!
//! // Uninterrupted: 6 steps.
//! let (mut w, mut b) = (vec![1.0f32; 5], vec![-1.0f32; 3]);
//! let mut opt = new_optimizer()?;
//! train(&mut opt, &mut w, &mut b, 0..6)?;
//!
//! // Interrupted after 3 steps: checkpoint the optimizer with the params, restore into
//! // a fresh optimizer (same groups, tensors and schedule), continue.
//! let (mut w2, mut b2) = (vec![1.0f32; 5], vec![-1.0f32; 3]);
//! let mut first = new_optimizer()?;
//! train(&mut first, &mut w2, &mut b2, 0..3)?;
//! let bytes = first.checkpoint_with_params(&[&w2, &b2])?;
//! drop(first);
//! let (mut w3, mut b3) = (vec![0.0f32; 5], vec![0.0f32; 3]);
//! let mut second = new_optimizer()?;
//! second.load_checkpoint_with_params(&bytes, &mut [&mut w3, &mut b3])?;
//! assert_eq!(second.tensor_step(gradstep_optim::TensorId(0))?, 3);
//! train(&mut second, &mut w3, &mut b3, 3..6)?;
//!
//! let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
//! assert_eq!((bits(&w3), bits(&b3)), (bits(&w), bits(&b)));
//! assert_eq!(second.lr(second.default_group())?, 3e-3 * 0.5 * 0.5 * 0.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What it does as torch does
//! - **One rule kind, many groups.** [`Optimizer::new`] takes the rule (its
//!   hyperparameters become group 0, the defaults); [`Optimizer::add_group`] adds a group
//!   with its own hyperparameters of the same kind (torch has one optimizer class per
//!   optimizer), refusing another kind.
//! - **State per tensor.** [`Optimizer::add_tensor`] registers a tensor of `n` elements
//!   in a group and allocates its state fallibly (an [`Error::OutOfMemory`] instead of
//!   an abort). Each tensor has its own scalar state and step count. The small
//!   allocations are fallible too (a group, a schedule's box and the copy a schedule
//!   step takes, a load's staging), except the ones std and rayon make inside: the
//!   core count, read once per process; the helper threads' pool, started once, and
//!   its queues, which a multi-threaded step hands work through; and a
//!   [`CustomSchedule`]'s `clone_box`, which is the implementer's.
//! - **Stepping validates first.** [`Optimizer::step`] checks every group's
//!   hyperparameters, every length and every step counter before it writes any tensor:
//!   an `Err` leaves the params, the state and the optimizer untouched, as the kernels
//!   do. Each tensor's step is exactly [`gradstep::Rule::step`] with its group's
//!   hyperparameters, bit for bit.
//! - **Learning rate and momentum per group** ([`Optimizer::lr`],
//!   [`Optimizer::set_lr`], [`Optimizer::momentum`], [`Optimizer::set_momentum`]) as
//!   torch's `group["lr"]`, and **schedules** ([`Optimizer::attach_schedule`],
//!   [`Optimizer::attach_plateau`], then [`Optimizer::schedule_step`] or
//!   [`Optimizer::schedule_step_metric`] after each step): gradstep's torch-exact
//!   schedules ([`gradstep::schedules`]; alone, as `SequentialLR` or `ChainedScheduler`
//!   of up to 4 ([`EpochSchedule`]), or the caller's own ([`CustomSchedule`])) reading
//!   and writing the group's `lr`,
//!   `initial_lr` and momentum.
//! - **`state_dict`** ([`Optimizer::state_dict`], [`Optimizer::load_state_dict`]):
//!   param groups (hyperparameters, `initial_lr`, schedule position, tensor ids) and
//!   per-tensor state (step, named slices).
//!
//! ## Threads and many tensors
//! One call steps every tensor (torch's multi-tensor `_foreach` step). With more than
//! [`Optimizer::threads`] = 1 and at least two chunks' worth of elements, the tensors
//! are cut into chunks of [`Optimizer::chunk_len`] elements, shared out among the
//! threads from one queue (mixed sizes balance themselves), each stepped from a copy of
//! its tensor's scalar state: every rule's update is elementwise given that state, so
//! the result is bit for bit the single-threaded one, for any thread count and chunk
//! length. A layer-wise rule (LAMB) needs its tensor's norms between its moments and its
//! update: its tensors are cut into parts of `chunk_len` rounded up to
//! [`gradstep::rules::NORM_PART_ALIGN`], stepped in two rounds (every part's moments and
//! exact norm sums, then every part's update from the merged sums), with the same bits.
//! The calling thread works, helped by up to `threads − 1` threads of one pool that
//! the process starts on its first multi-threaded step and keeps (asleep between
//! steps), so no step pays for starting threads; in a process forked after that, steps
//! run on the calling thread alone.
//!
//! ## Checkpoint container, version 2
//! [`Optimizer::checkpoint`] writes, and [`Optimizer::load_checkpoint`] reads, the
//! whole optimizer: a fixed header, one record per group (its position data and its
//! hyperparameters as a kernel checkpoint, [`gradstep::checkpoint`], with no arrays), one
//! record per tensor (a kernel checkpoint of its rule, scalar state, state slices and,
//! optionally, params), and a CRC-32 over everything. Version 1 of the `GSOP` magic is
//! the C handle's older hand-written layout. Little-endian throughout; every record
//! starts at a multiple of 8 bytes, so the kernel checkpoints' arrays are 8-byte
//! aligned within the container.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"GSOP"` |
//! | 4 | 2 | format version, `u16` = 2 |
//! | 6 | 1 | element type ([`gradstep::checkpoint::ElementType`]): 1 = `f32`, 2 = `f64` |
//! | 7 | 1 | flags: bit 0 = the tensor records hold params; bit 1 = the optimizer has Lookahead options (a Lookahead block follows the header); bits 2–7 are 0 |
//! | 8 | 4 | number of groups `G`, `u32` |
//! | 12 | 4 | number of tensors `K`, `u32` |
//! | 16 | 8 | total length `L` in bytes, `u64`, including the checksum |
//! | 24 | … | with flag bit 1, the Lookahead block (24 bytes: k `u64`, α `f64`, momentum `u64`: 0 none, 1 reset, 2 pullback); then `G` group records, then `K` tensor records |
//! | `L` − 4 | 4 | CRC-32 (ISO-HDLC, as the kernel's checkpoints), `u32`, of bytes `0..L−4` |
//!
//! A group record (its length is `72 + R` rounded up to a multiple of 8, the padding
//! zero, then, for a composite schedule only, its member block):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | flags, `u64`: bit 0 `initial_lr` set, bit 1 momentum cycled by a schedule, bit 2 a schedule attached, bit 3 it is ReduceLROnPlateau, bit 4 `CosineAnnealingWarmRestarts`' `(T_i, T_cur)` present, bit 5 a composite schedule (a member block follows); other bits 0 |
//! | 8 | 8 | `initial_lr`, `f64` (0 if unset) |
//! | 16 | 8 | schedule kind, `u64` ([`schedule_kind`]; [`PLATEAU_KIND`] = 16; [`SEQUENTIAL_KIND`] = 17, [`CHAINED_KIND`] = 18; 0 without a schedule) |
//! | 24 | 8 | `last_epoch`: `i64` (epoch schedules; a `SequentialLR`'s own; 0 for a `ChainedScheduler`) or `u64` (plateau) |
//! | 32 | 8 | `_step_count`, `u64` (epoch schedules) or `num_bad_epochs` (plateau) |
//! | 40 | 8 | `base_lr`, `f64` (epoch schedules) or `best` (plateau) |
//! | 48 | 8 | `T_i`, `f64` (warm restarts) or `cooldown_counter`, `u64` (plateau) |
//! | 56 | 8 | `T_cur`, `f64` (warm restarts) |
//! | 64 | 8 | length `R` of the kernel checkpoint that follows, `u64` |
//! | 72 | `R` | the group's hyperparameters (with the learning rate and momentum the next step uses) as a kernel checkpoint with `n` = 0, fresh scalar state, no params |
//!
//! A composite's member block: the number of members `M` (2 to [`MAX_MEMBERS`]), `u64`,
//! then `M` records of 56 bytes, in member order:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | the member's kind, `u64` ([`schedule_kind`], or a [`CustomSchedule`]'s) |
//! | 8 | 8 | flags, `u64`: bit 0 `(T_i, T_cur)` present; other bits 0 |
//! | 16 | 8 | `last_epoch`, `i64` (−1: a `SequentialLR` member not reached yet) |
//! | 24 | 8 | `_step_count`, `u64` |
//! | 32 | 8 | `base_lr`, `f64` |
//! | 40 | 8 | `T_i`, `f64` (warm restarts) |
//! | 48 | 8 | `T_cur`, `f64` (warm restarts) |
//!
//! Fields a group does not use are 0. A tensor record (its length `16 + R` rounded up
//! to a multiple of 8, the padding zero, plus its Lookahead slices if any):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | the tensor's group, `u32` |
//! | 4 | 4 | `S`, `u32`: the tensor's Lookahead slices (`slow_params`, then `slow_momentum` with pullback) after the kernel checkpoint; 0 without Lookahead |
//! | 8 | 8 | length `R` of the kernel checkpoint that follows, `u64` |
//! | 16 | `R` | the tensor as a kernel checkpoint: its group's rule (equal to the group record's), scalar state, state slices, params if flag bit 0 |
//! | `16 + R` padded | `S·n·size` padded | the Lookahead slices, elements little-endian as in kernel checkpoints ([`gradstep::checkpoint::write_elements`]) |
//!
//! A file without Lookahead has flag bit 1 clear and `S` = 0 everywhere: the bytes
//! are those of an optimizer before Lookahead existed.
//!
//! ### What loading checks, before changing anything
//! 1. The magic, the version, that the input holds `L` bytes (bytes after `L` are
//!    ignored), the CRC-32, the element type, the flags, the counts against this
//!    optimizer's groups and tensors, and that the records fill `L − 28` bytes exactly
//!    (zero padding and reserved bytes included).
//! 2. Each kernel checkpoint with the kernel's decoder ([`gradstep::checkpoint::peek`],
//!    [`gradstep::checkpoint::decode_any`]: its own CRC, structure and the rule's
//!    `validate`), its length `n` against the registered tensor's before any buffer is
//!    allocated, so a forged checkpoint allocates no more than the optimizer already
//!    holds.
//! 3. Everything [`Optimizer::load_state_dict`] checks (rule kind, membership, slot
//!    names, finite `initial_lr` and scalar state, schedule positions against the
//!    attached schedules, restored directly: no replay, so loading takes time
//!    proportional to the bytes, whatever epoch they name).
//! 4. With [`Optimizer::load_checkpoint_with_params`], the caller's params' lengths.

#![deny(missing_docs)]
// Safe Rust throughout but for the huge-page advice (`advise_huge_pages`, one call) and
// `PageBuffer`'s aligned allocation (module `buffer`), allowed there alone.
#![deny(unsafe_code)]

mod buffer;
mod container;
mod error;
mod layout;
mod parallel;
mod schedule;
mod scratch;
mod state;

use gradstep::checkpoint::Element;
use gradstep::lookahead::Lookahead;
use gradstep::rules::{AnyRule, AnyScalars, RuleId};
use gradstep::schedules::{Group, ReduceLrOnPlateau};

pub use buffer::{PAGE, PageBuffer};
pub use error::{Buffer, Error};
pub use schedule::{
    CHAINED_KIND, CustomSchedule, EpochSchedule, MAX_MEMBERS, Member, MemberState, PLATEAU_KIND,
    SEQUENTIAL_KIND, ScheduleState, schedule_kind,
};
pub use scratch::SCRATCH_MAX_BYTES;
pub use state::{GroupState, Slot, StateDict, TensorState};

use schedule::Schedule;
use scratch::Scratch;
use state::group_view;

pub(crate) use layout::{LINE, State};

/// A param group of an [`Optimizer`]: its index, in creation order (0 is the group
/// [`Optimizer::new`] creates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub usize);

/// A tensor registered with an [`Optimizer`]: its index, in registration order, which
/// is also its place in the list [`Optimizer::step`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub usize);

/// One param group.
#[derive(Clone, Debug)]
struct ParamGroup {
    /// The hyperparameters as the next step uses them: the group's current learning
    /// rate and momentum live in the rule itself, so there is one place to read them.
    /// Always valid: everything that sets it checks the rule's `validate` first, so a
    /// step need not check it again before writing anything.
    rule: AnyRule,
    /// torch's `group["initial_lr"]`.
    initial_lr: Option<f64>,
    /// A cycling schedule drives the momentum ([`Group::momentum`] is `Some`).
    momentum_cycled: bool,
    schedule: Option<Schedule>,
}

impl ParamGroup {
    /// A copy, or [`Error::OutOfMemory`] (its schedule's box).
    fn try_clone(&self) -> Result<Self, Error> {
        Ok(ParamGroup {
            schedule: self
                .schedule
                .as_ref()
                .map(Schedule::try_clone)
                .transpose()?,
            ..*self
        })
    }

    fn view(&self) -> Group {
        group_view(&self.rule, self.initial_lr, self.momentum_cycled)
    }

    /// The group after a schedule wrote `g`: refused if the rule refuses the values
    /// or a momentum is set on a rule without one.
    fn with(&self, id: GroupId, g: &Group, schedule: Option<Schedule>) -> Result<Self, Error> {
        let mut rule = self.rule;
        rule.set_lr(g.lr);
        if let Some(m) = g.momentum {
            rule.set_momentum(m)
                .map_err(|_| Error::NoMomentum { group: id })?;
        }
        rule.validate()?;
        Ok(ParamGroup {
            rule,
            initial_lr: g.initial_lr,
            momentum_cycled: g.momentum.is_some(),
            schedule,
        })
    }
}

/// One registered tensor: its length, group, scalar state and state slices.
#[derive(Clone, Debug)]
struct Tensor<T> {
    group: usize,
    n: usize,
    scalars: AnyScalars,
    /// The state slices, placed away from the params and grads (`layout`).
    state: State<T>,
}

impl<T: Element> Tensor<T> {
    /// The `count` state slices (empty ones past the tensor's own and for an empty
    /// tensor).
    fn slots(&self, count: usize) -> impl Iterator<Item = &[T]> {
        (0..count).map(move |k| self.state.slot(k))
    }

    /// The state slices, to write (none for an empty tensor: nothing to write).
    fn slots_mut(&mut self) -> impl Iterator<Item = &mut [T]> {
        let count = if self.n > 0 { self.state.count() } else { 0 };
        self.state.slots_mut().into_iter().take(count)
    }
}

/// `value` in a box of its own, or [`Error::OutOfMemory`] where `Box::new` would abort
/// the process: the optimizer's boxes (a schedule, the copy a schedule step takes) and
/// the C ABI's handles are made with it.
#[allow(unsafe_code)]
pub fn try_box<V>(value: V) -> Result<Box<V>, Error> {
    let layout = core::alloc::Layout::new::<V>();
    if layout.size() == 0 {
        return Ok(Box::new(value));
    }
    // SAFETY: a layout of non-zero size.
    let p = unsafe { std::alloc::alloc(layout) }.cast::<V>();
    if p.is_null() {
        return Err(Error::OutOfMemory { requested: 1 });
    }
    // SAFETY: `p` is fresh memory from the global allocator with `V`'s layout, which is
    // what `Box<V>` frees it with; it is written before the box owns it.
    unsafe {
        p.write(value);
        Ok(Box::from_raw(p))
    }
}

/// The parallelism the system reports (`std::thread::available_parallelism`, at least
/// 1), read once per process: std's reading allocates (on Linux it parses the cgroup
/// quota files), infallibly, so only the first optimizer made in a process can abort
/// on an allocation that fails.
pub(crate) fn system_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// A transparent huge page on x86-64 and aarch64 Linux: 2 MiB.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// Allocates `len` zeros, or [`Error::OutOfMemory`]. On Linux the whole 2 MiB extents
/// of an allocation are advised for transparent huge pages before they are first
/// written ([`advise_huge_pages`]).
pub(crate) fn zeros<T: Element>(len: usize) -> Result<Vec<T>, Error> {
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::OutOfMemory { requested: len })?;
    advise_huge_pages(
        v.as_ptr().cast(),
        len.saturating_mul(core::mem::size_of::<T>()),
    );
    v.resize(len, T::ZERO);
    Ok(v)
}

/// Asks Linux to back the whole 2 MiB extents of `bytes` bytes from `start` with
/// transparent huge pages (`madvise(MADV_HUGEPAGE)`), for a state that a step streams
/// from memory: one TLB entry per 2 MiB instead of per 4 KiB. Where the system's setting
/// is `madvise` (Debian's and Ubuntu's default) nothing gets huge pages without it;
/// under `always` it changes nothing, under `never` the call is refused, which is
/// ignored, as is any other refusal: it is advice, the memory and its contents are the
/// same either way. Measured in [`Optimizer::add_tensor`]'s docs (README, *Speed*,
/// session 20: `percall --huge`).
#[cfg(all(target_os = "linux", not(miri)))]
#[allow(unsafe_code)]
pub(crate) fn advise_huge_pages(start: *const u8, bytes: usize) {
    let (from, to) = (
        (start as usize).next_multiple_of(HUGE_PAGE),
        (start as usize).saturating_add(bytes) / HUGE_PAGE * HUGE_PAGE,
    );
    if to > from {
        // SAFETY: the range lies within an allocation this crate owns (whole pages of
        // it, aligned to 2 MiB); the advice changes neither the mapping's contents nor
        // its validity, only how the kernel may back it.
        let _ = unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
    }
}

/// Elsewhere (and under Miri) no advice is given.
#[cfg(not(all(target_os = "linux", not(miri))))]
pub(crate) fn advise_huge_pages(_: *const u8, _: usize) {}

/// The name of the helper threads of a multi-threaded [`Optimizer::step`] (one pool
/// per process; the calling thread works too). The C ABI's panic hook stays silent for
/// them as for its own calls, so that a C host sees no output from inside gradstep.
pub const WORKER_THREAD_NAME: &str = "gradstep-worker";

/// An optimizer that owns its state: param groups of one rule kind, each with its own
/// hyperparameters and schedule, and registered tensors, each with its own state. The
/// caller owns the params and grads and passes them to [`Optimizer::step`].
#[derive(Clone, Debug)]
pub struct Optimizer<T> {
    kind: RuleId,
    /// Lookahead's k, α and momentum option over every group's rule, if set.
    lookahead: Option<Lookahead<()>>,
    groups: Vec<ParamGroup>,
    tensors: Vec<Tensor<T>>,
    threads: usize,
    chunk_len: usize,
    /// Where a layer-wise rule's step keeps its update between its passes
    /// ([`SCRATCH_MAX_BYTES`]); empty for the other rules.
    scratch: Scratch<T>,
}

/// The default [`Optimizer::chunk_len`]: 2¹⁶ elements, where a chunk's step (tens of
/// microseconds) outweighs handing it to a thread.
pub const DEFAULT_CHUNK_LEN: usize = 1 << 16;

/// Chunk lengths are multiples of this many elements: every chunk but a tensor's last
/// fills whole lanes of every instruction set, and two threads share at most the cache
/// line at a chunk's boundary.
pub const CHUNK_ALIGN: usize = 64;

impl<T: Element> Optimizer<T> {
    /// An optimizer of `rule`'s kind, with `rule`'s hyperparameters as group 0
    /// ([`Optimizer::default_group`]). Refused: hyperparameters the rule's `validate`
    /// refuses.
    pub fn new(rule: AnyRule) -> Result<Self, Error> {
        rule.validate()?;
        let mut groups = Vec::new();
        groups
            .try_reserve_exact(1)
            .map_err(|_| Error::OutOfMemory { requested: 1 })?;
        groups.push(ParamGroup {
            rule,
            initial_lr: None,
            momentum_cycled: false,
            schedule: None,
        });
        Ok(Optimizer {
            kind: rule.id(),
            lookahead: None,
            groups,
            tensors: Vec::new(),
            threads: system_threads(),
            chunk_len: DEFAULT_CHUNK_LEN,
            scratch: Scratch::default(),
        })
    }

    /// An optimizer of the composite's rule (group 0), every group's rule wrapped in
    /// its Lookahead options ([`Optimizer::set_lookahead`]): `Lookahead<AnyRule>` as
    /// [`Lookahead::parse`] gives it from `"lookahead(adam:lr=1e-3):k=5"`.
    pub fn new_lookahead(la: Lookahead<AnyRule>) -> Result<Self, Error> {
        let mut opt = Optimizer::new(la.rule)?;
        opt.set_lookahead(Some(la.over(())))?;
        Ok(opt)
    }

    /// Wraps every group's rule in Lookahead with these k, α and momentum options
    /// (`None`: the rules alone). Each tensor then has the rule's state slices plus
    /// `slow_params` (and `slow_momentum` with pullback), the slow weights taken from
    /// the params at the tensor's first step; its step count times the syncs. Refused:
    /// k or α out of range, or any tensor registered (its state would change shape:
    /// set the options first, as pytorch_optimizer wraps an optimizer before stepping).
    pub fn set_lookahead(&mut self, lookahead: Option<Lookahead<()>>) -> Result<(), Error> {
        if let Some(la) = lookahead {
            la.over(self.groups[0].rule).validate()?;
        }
        if !self.tensors.is_empty() {
            return Err(Error::Mismatch {
                what: "Lookahead options change the tensors' state slices: set them before adding tensors",
            });
        }
        self.lookahead = lookahead;
        Ok(())
    }

    /// The Lookahead options every group's rule is wrapped in, if any.
    pub fn lookahead(&self) -> Option<Lookahead<()>> {
        self.lookahead
    }

    /// The most threads [`Optimizer::step`] uses. Default: the parallelism the system
    /// reports (`std::thread::available_parallelism`, logical cores).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Sets the most threads [`Optimizer::step`] uses (0 counts as 1). The results do
    /// not depend on it, bit for bit.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// The elements of a tensor stepped as one piece of work ([`DEFAULT_CHUNK_LEN`]).
    /// A step with fewer than two chunks' worth of elements runs on the calling thread.
    pub fn chunk_len(&self) -> usize {
        self.chunk_len
    }

    /// Sets [`Optimizer::chunk_len`], rounded up to a multiple of [`CHUNK_ALIGN`]. The
    /// results do not depend on it, bit for bit.
    pub fn set_chunk_len(&mut self, chunk_len: usize) {
        self.chunk_len = chunk_len
            .max(1)
            .div_ceil(CHUNK_ALIGN)
            .saturating_mul(CHUNK_ALIGN);
    }

    /// The group [`Optimizer::new`] created.
    pub fn default_group(&self) -> GroupId {
        GroupId(0)
    }

    /// The rule kind of every group.
    pub fn kind(&self) -> RuleId {
        self.kind
    }

    /// Adds a param group with its own hyperparameters. Refused: another rule kind
    /// ([`Error::WrongRule`]), invalid hyperparameters.
    pub fn add_group(&mut self, rule: AnyRule) -> Result<GroupId, Error> {
        self.check_kind(&rule)?;
        rule.validate()?;
        self.groups
            .try_reserve(1)
            .map_err(|_| Error::OutOfMemory { requested: 1 })?;
        self.groups.push(ParamGroup {
            rule,
            initial_lr: None,
            momentum_cycled: false,
            schedule: None,
        });
        Ok(GroupId(self.groups.len() - 1))
    }

    fn check_kind(&self, rule: &AnyRule) -> Result<(), Error> {
        if rule.id() == self.kind {
            Ok(())
        } else {
            Err(Error::WrongRule {
                expected: self.kind,
                found: rule.id(),
            })
        }
    }

    /// Registers a tensor of `n` elements in `group` and allocates its state
    /// (`state_slots · n` elements, fresh: the first step initializes them; a page more
    /// per slot from 2 KiB per slot, so that each step can keep the slots away from
    /// the params and grads modulo 4 KiB, where loads would wait on unrelated stores,
    /// and a cache line more below; for a layer-wise rule, scratch memory too,
    /// [`SCRATCH_MAX_BYTES`] at most for all its tensors). On Linux, the whole 2 MiB
    /// extents of the state are advised for transparent huge pages before they are first
    /// written (a large state then takes one TLB entry per 2 MiB: f32 Adam and SGD with
    /// momentum stepped a median 1.12× faster with their state on huge pages at 4M and
    /// 16M params on a Zen 4, and 1.2× with every buffer on them, which is the caller's
    /// to arrange for its params and grads). Refused: an unknown group, a size that
    /// overflows or cannot be allocated ([`Error::OutOfMemory`], never an abort).
    pub fn add_tensor(&mut self, group: GroupId, n: usize) -> Result<TensorId, Error> {
        let g = self.group(group)?;
        let slots = slots_of(&g.rule, self.lookahead);
        let scalars = g.rule.fresh_scalars();
        let scratch = uses_scratch::<T>(&g.rule, self.lookahead, n);
        let state = State::zeros(n, slots)?;
        self.tensors
            .try_reserve(1)
            .map_err(|_| Error::OutOfMemory { requested: 1 })?;
        if scratch {
            self.scratch.reserve(n)?;
        }
        self.tensors.push(Tensor {
            group: group.0,
            n,
            scalars,
            state,
        });
        Ok(TensorId(self.tensors.len() - 1))
    }

    /// Places a tensor's state for the params and grads it will step with: what every
    /// step does first (see [`Optimizer::add_tensor`]), done ahead of time, so that a
    /// frontend whose buffers are fixed at registration (the C handle) moves the state
    /// there, on the registering thread, and not during a step. Only the addresses are
    /// used; nothing is read through them.
    pub fn place_state(
        &mut self,
        id: TensorId,
        params: *const T,
        grads: *const T,
    ) -> Result<(), Error> {
        self.tensor(id)?;
        self.tensors[id.0].state.place(params, grads);
        Ok(())
    }

    /// Unregisters the most recently registered tensor and frees its state, undoing
    /// its [`Optimizer::add_tensor`] (e.g. when a frontend's own checks of the
    /// tensor's buffers fail after the state was allocated). Returns its id, or `None`
    /// if no tensor is registered.
    pub fn pop_tensor(&mut self) -> Option<TensorId> {
        self.tensors.pop().map(|_| TensorId(self.tensors.len()))
    }

    /// Number of param groups.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Number of registered tensors.
    pub fn tensors(&self) -> usize {
        self.tensors.len()
    }

    fn group(&self, id: GroupId) -> Result<&ParamGroup, Error> {
        self.groups.get(id.0).ok_or(Error::NoSuchGroup(id))
    }

    fn tensor(&self, id: TensorId) -> Result<&Tensor<T>, Error> {
        self.tensors.get(id.0).ok_or(Error::NoSuchTensor(id))
    }

    /// A tensor's length.
    pub fn tensor_len(&self, id: TensorId) -> Result<usize, Error> {
        Ok(self.tensor(id)?.n)
    }

    /// A tensor's group.
    pub fn tensor_group(&self, id: TensorId) -> Result<GroupId, Error> {
        Ok(GroupId(self.tensor(id)?.group))
    }

    /// A tensor's step count (torch's `state[p]["step"]`).
    pub fn tensor_step(&self, id: TensorId) -> Result<u64, Error> {
        Ok(self.tensor(id)?.scalars.step())
    }

    /// A tensor's scalar state.
    pub fn tensor_scalars(&self, id: TensorId) -> Result<AnyScalars, Error> {
        Ok(self.tensor(id)?.scalars)
    }

    /// A tensor's state slice called `name` (torch's `state[p][name]`), if its rule
    /// has one.
    pub fn tensor_slot(&self, id: TensorId, name: &str) -> Result<Option<&[T]>, Error> {
        let t = self.tensor(id)?;
        let rule = &self.groups[t.group].rule;
        Ok(slot_names(rule, self.lookahead)
            .zip(t.slots(slots_of(rule, self.lookahead)))
            .find(|&(n, _)| n == name)
            .map(|(_, s)| s))
    }

    /// A group's hyperparameters, as the next step uses them.
    pub fn rule(&self, group: GroupId) -> Result<AnyRule, Error> {
        Ok(self.group(group)?.rule)
    }

    /// Replaces a group's hyperparameters (torch: editing `param_group` entries).
    /// Refused: another rule kind, invalid values, or options that change the number
    /// of state slices (amsgrad, centered, momentum on or off) while the group has
    /// tensors.
    pub fn set_rule(&mut self, group: GroupId, rule: AnyRule) -> Result<(), Error> {
        self.check_kind(&rule)?;
        rule.validate()?;
        let g = self.group(group)?;
        self.check_slots(group.0, &rule)?;
        if g.momentum_cycled && rule.momentum().is_none() {
            return Err(Error::NoMomentum { group });
        }
        self.groups[group.0].rule = rule;
        Ok(())
    }

    /// torch's `group["lr"]`.
    pub fn lr(&self, group: GroupId) -> Result<f64, Error> {
        Ok(self.group(group)?.rule.lr())
    }

    /// Sets torch's `group["lr"]` (the rule's `validate` decides what is valid).
    pub fn set_lr(&mut self, group: GroupId, lr: f64) -> Result<(), Error> {
        let mut rule = self.group(group)?.rule;
        rule.set_lr(lr);
        rule.validate()?;
        self.groups[group.0].rule = rule;
        Ok(())
    }

    /// The group's momentum (torch's `group["momentum"]`, or `group["betas"][0]`), if
    /// its rule has one.
    pub fn momentum(&self, group: GroupId) -> Result<Option<f64>, Error> {
        Ok(self.group(group)?.rule.momentum())
    }

    /// Sets the group's momentum (or β₁). Refused: a rule without one
    /// ([`Error::NoMomentum`]), a value the rule refuses, a change between zero and
    /// non-zero SGD momentum on a group with tensors ([`Error::StateSlots`]: their
    /// state has no momentum buffer, or one the rule would no longer use).
    pub fn set_momentum(&mut self, group: GroupId, momentum: f64) -> Result<(), Error> {
        let mut rule = self.group(group)?.rule;
        rule.set_momentum(momentum)
            .map_err(|_| Error::NoMomentum { group })?;
        rule.validate()?;
        self.check_slots(group.0, &rule)?;
        self.groups[group.0].rule = rule;
        Ok(())
    }

    /// Refuses `rule` as group `group`'s if it has another number of state slices than
    /// the group's rule and the group has tensors: their state was allocated for the
    /// group's rule (SGD has its momentum buffer only with momentum ≠ 0; torch creates
    /// it at the first step with momentum). Every change of a group's rule checks it,
    /// so every tensor's state always fits its group's rule.
    pub(crate) fn check_slots(&self, group: usize, rule: &AnyRule) -> Result<(), Error> {
        let (slots, needed) = (self.groups[group].rule.state_slots(), rule.state_slots());
        if needed != slots && self.tensors.iter().any(|t| t.group == group) {
            return Err(Error::StateSlots {
                group: GroupId(group),
                slots,
                needed,
            });
        }
        Ok(())
    }

    /// torch's `group["initial_lr"]`: set when the first schedule is attached.
    pub fn initial_lr(&self, group: GroupId) -> Result<Option<f64>, Error> {
        Ok(self.group(group)?.initial_lr)
    }

    /// Attaches an epoch-driven schedule to a group (replacing any), started as
    /// torch's scheduler constructor does: it records `initial_lr` (if not yet set)
    /// and writes epoch 0's learning rate (and momentum, for a cycling schedule).
    /// Any built-in schedule, a [`CustomSchedule`], or a `SequentialLR` or
    /// `ChainedScheduler` of 2 to 4 [`Member`]s ([`EpochSchedule`]). Refused, with the
    /// group unchanged: an invalid configuration, a cycling schedule on a rule without
    /// momentum, a learning rate the rule refuses, a momentum that changes the state
    /// slices of the group's tensors ([`Error::StateSlots`]: cycling SGD's momentum
    /// from zero; set a momentum before adding the tensors). A cycling schedule whose
    /// momentum reaches zero on such a group is refused at that step.
    pub fn attach_schedule(
        &mut self,
        group: GroupId,
        schedule: impl Into<EpochSchedule>,
    ) -> Result<(), Error> {
        self.attach(group, Schedule::Epochs(try_box(schedule.into())?))
    }

    /// Attaches torch's `ReduceLROnPlateau` to a group (replacing any schedule),
    /// stepped by [`Optimizer::schedule_step_metric`].
    pub fn attach_plateau(
        &mut self,
        group: GroupId,
        schedule: ReduceLrOnPlateau,
    ) -> Result<(), Error> {
        self.attach(group, Schedule::Plateau(schedule))
    }

    fn attach(&mut self, group: GroupId, mut schedule: Schedule) -> Result<(), Error> {
        let g = self.group(group)?;
        let mut view = g.view();
        schedule.start(&mut view)?;
        let next = g.with(group, &view, Some(schedule))?;
        self.check_slots(group.0, &next.rule)?;
        self.groups[group.0] = next;
        Ok(())
    }

    /// Removes a group's schedule; the learning rate stays where the schedule left it.
    pub fn detach_schedule(&mut self, group: GroupId) -> Result<(), Error> {
        self.group(group)?;
        self.groups[group.0].schedule = None;
        Ok(())
    }

    /// Where a group's schedule is, if one is attached.
    pub fn schedule_state(&self, group: GroupId) -> Result<Option<ScheduleState>, Error> {
        Ok(self.group(group)?.schedule.as_ref().map(Schedule::state))
    }

    /// torch's `scheduler.step()` for every group's epoch-driven schedule (call after
    /// [`Optimizer::step`]). Groups without one, or with ReduceLROnPlateau, are left
    /// as they are. All or nothing: if any schedule refuses, no group changes.
    pub fn schedule_step(&mut self) -> Result<(), Error> {
        self.step_schedules(None)
    }

    /// torch's `scheduler.step(metric)` for every group's ReduceLROnPlateau. Groups
    /// without one are left as they are. All or nothing.
    pub fn schedule_step_metric(&mut self, metric: f64) -> Result<(), Error> {
        self.step_schedules(Some(metric))
    }

    fn step_schedules(&mut self, metric: Option<f64>) -> Result<(), Error> {
        // Step copies, so that a refusal by any group's schedule changes none.
        let mut next = Vec::new();
        next.try_reserve_exact(self.groups.len())
            .map_err(|_| Error::OutOfMemory {
                requested: self.groups.len(),
            })?;
        for (i, g) in self.groups.iter().enumerate() {
            let mut schedule = g.schedule.as_ref().map(Schedule::try_clone).transpose()?;
            let mut view = g.view();
            match (&mut schedule, metric) {
                (Some(Schedule::Epochs(s)), None) => {
                    gradstep::schedules::Scheduler::step(&mut **s, &mut view)?
                }
                (Some(Schedule::Plateau(p)), Some(m)) => {
                    p.step(&mut view, m)?;
                }
                _ => {
                    next.push(g.try_clone()?);
                    continue;
                }
            }
            let g = g.with(GroupId(i), &view, schedule)?;
            self.check_slots(i, &g.rule)?;
            next.push(g);
        }
        self.groups = next;
        Ok(())
    }

    /// One optimizer step over every registered tensor: `tensors[i]` is tensor `i`'s
    /// `(params, grads)`, stepped with its group's hyperparameters (exactly
    /// [`gradstep::Rule::step`] with the tensor's scalar state and state slices).
    ///
    /// Checked before any tensor is written: the number of tensors, every length,
    /// every step counter (the groups' hyperparameters were checked when they were
    /// set). On `Err` nothing changed.
    pub fn step(&mut self, tensors: &mut [(&mut [T], &[T])]) -> Result<(), Error> {
        if tensors.len() != self.tensors.len() {
            return Err(Error::TensorCount {
                expected: self.tensors.len(),
                found: tensors.len(),
            });
        }
        let mut total = 0usize;
        for (i, (t, (p, g))) in self.tensors.iter().zip(tensors.iter()).enumerate() {
            self.check_tensor(TensorId(i), t, p, g)?;
            total = total.saturating_add(t.n);
        }
        for (t, (p, g)) in self.tensors.iter_mut().zip(tensors.iter()) {
            t.state.place(p.as_ptr(), g.as_ptr());
        }
        if self.threads > 1 && total / 2 >= self.chunk_len {
            return parallel::step(
                &self.groups,
                self.lookahead,
                &mut self.tensors,
                tensors,
                self.threads,
                self.chunk_len,
                &mut self.scratch,
            );
        }
        for (t, (p, g)) in self.tensors.iter_mut().zip(tensors.iter_mut()) {
            let rule = &self.groups[t.group].rule;
            let scratch = self
                .scratch
                .cutter()
                .take(rule, self.lookahead, t.n, p.as_ptr());
            step_tensor(rule, self.lookahead, t, p, g, scratch)?;
        }
        Ok(())
    }

    /// Steps one tensor alone (its group's hyperparameters, its own step count), with
    /// the same checks as [`Optimizer::step`].
    pub fn step_tensor(
        &mut self,
        id: TensorId,
        params: &mut [T],
        grads: &[T],
    ) -> Result<(), Error> {
        let t = self.tensor(id)?;
        let rule = self.groups[t.group].rule;
        self.check_tensor(id, t, params, grads)?;
        let lookahead = self.lookahead;
        let t = &mut self.tensors[id.0];
        t.state.place(params.as_ptr(), grads.as_ptr());
        let scratch = self
            .scratch
            .cutter()
            .take(&rule, lookahead, t.n, params.as_ptr());
        step_tensor(&rule, lookahead, t, params, grads, scratch)
    }

    fn check_tensor(&self, id: TensorId, t: &Tensor<T>, p: &[T], g: &[T]) -> Result<(), Error> {
        for (buffer, len) in [(Buffer::Params, p.len()), (Buffer::Grads, g.len())] {
            if len != t.n {
                return Err(Error::LengthMismatch {
                    tensor: id,
                    buffer,
                    expected: t.n,
                    found: len,
                });
            }
        }
        if t.scalars.step() == u64::MAX {
            return Err(gradstep::Error::StepOverflow.into());
        }
        Ok(())
    }
}

/// The number of state slices of a tensor of `rule`, wrapped in `lookahead` if set.
pub(crate) fn slots_of(rule: &AnyRule, lookahead: Option<Lookahead<()>>) -> usize {
    match lookahead {
        Some(la) => la.over(*rule).state_slots(),
        None => rule.state_slots(),
    }
}

/// The names of a tensor's state slices, in order (see [`slots_of`]): the rule's, then
/// Lookahead's own.
pub(crate) fn slot_names(
    rule: &AnyRule,
    lookahead: Option<Lookahead<()>>,
) -> impl Iterator<Item = &'static str> {
    let inner = rule.slot_names();
    let own = lookahead.map(|la| la.over(*rule).slot_names().skip(inner.len()));
    inner.iter().copied().chain(own.into_iter().flatten())
}

/// `items` collected, or [`Error::OutOfMemory`] where `collect` would abort the process.
pub(crate) fn try_collect<X>(items: impl IntoIterator<Item = X>) -> Result<Vec<X>, Error> {
    let items = items.into_iter();
    let mut v = Vec::new();
    let oom = |_| Error::OutOfMemory { requested: 1 };
    v.try_reserve_exact(items.size_hint().0).map_err(oom)?;
    for x in items {
        v.try_reserve(1).map_err(oom)?;
        v.push(x);
    }
    Ok(v)
}

/// One step of `rule` (wrapped in `lookahead` if set) over caller-cut slices.
pub(crate) fn step_slices<T: Element>(
    rule: &AnyRule,
    lookahead: Option<Lookahead<()>>,
    scalars: &mut AnyScalars,
    params: &mut [T],
    grads: &[T],
    state: &mut [&mut [T]],
) -> Result<(), gradstep::Error> {
    match lookahead {
        Some(la) => la.over(*rule).step(scalars, params, grads, state),
        None => rule.step(scalars, params, grads, state),
    }
}

/// Whether a tensor of `n` elements of `rule` (wrapped in `lookahead` if set) steps
/// with scratch memory: a layer-wise rule's tensor of up to [`SCRATCH_MAX_BYTES`],
/// outside Lookahead (whose wrapped step has no scratch form).
pub(crate) fn uses_scratch<T: Element>(
    rule: &AnyRule,
    lookahead: Option<Lookahead<()>>,
    n: usize,
) -> bool {
    rule.whole_slice() && lookahead.is_none() && Scratch::<T>::wants(n)
}

/// The unit of work: one tensor with its group's rule, and scratch memory as long as
/// the tensor if it steps with some ([`scratch::Cutter::take`]).
fn step_tensor<T: Element>(
    rule: &AnyRule,
    lookahead: Option<Lookahead<()>>,
    t: &mut Tensor<T>,
    params: &mut [T],
    grads: &[T],
    scratch: Option<&mut [T]>,
) -> Result<(), Error> {
    if lookahead.is_none()
        && scratch.is_none()
        && let Some(state) = t.state.flat_mut()
    {
        // Back-to-back slots: the kernel's flat form, which cuts them without the
        // general path's per-slot checks.
        rule.step_flat(&mut t.scalars, params, grads, state)?;
        return Ok(());
    }
    let slots = t.state.count();
    let mut parts = t.state.slots_mut();
    let parts = &mut parts[..slots];
    if let Some(scratch) = scratch {
        rule.step_scratch(&mut t.scalars, params, grads, parts, scratch)?;
        return Ok(());
    }
    step_slices(rule, lookahead, &mut t.scalars, params, grads, parts)?;
    Ok(())
}
