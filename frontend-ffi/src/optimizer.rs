//! The optimizer handle: a thin wrapper over gradstep-optim's owning [`Optimizer`].
//!
//! The handle holds an `Optimizer<f32>` or `Optimizer<f64>` and, per registered tensor,
//! the caller's params and grads pointers, checked once at registration ([`Raw`]:
//! non-NULL, aligned, bounded by `PTRDIFF_MAX` bytes; every tensor's params disjoint
//! from every other registered buffer). Param groups, per-tensor state, the one-call
//! step, schedules and the checkpoint container (GSOP version 2, restored directly:
//! loading takes time proportional to the bytes, whatever epoch they name) are the
//! owning optimizer's. The caller owns the params and grads, which must stay valid
//! (and not move) until the handle is freed.

use core::ffi::c_char;

use gradstep::checkpoint::{CheckpointError, Element};
use gradstep::lookahead::{Lookahead, LookaheadSpecError, SyncMomentum};
use gradstep_optim::{Error, GroupId, Optimizer};

use crate::boundary::{Raw, Span, check, disjoint, guard, note, read, vec_with_capacity};
use crate::registry::{self, Kind};
use crate::rules::{
    GRADSTEP_F32, from_any, gradstep_element, gradstep_rule, spec_text, text_span, to_any,
};
use crate::schedules::{
    Attach, attach_config, attach_handle, gradstep_schedule, gradstep_schedule_config,
};
use crate::status::*;

/// A registered tensor's buffers, as the caller passed them (checked, not yet slices).
struct Tensor<T> {
    params: Raw<T>,
    grads: Raw<T>,
}

/// The owning optimizer of the handle's element type, and its tensors' buffers
/// (`tensors[i]` is the optimizer's tensor `i`).
enum Typed {
    F32(Optimizer<f32>, Vec<Tensor<f32>>),
    F64(Optimizer<f64>, Vec<Tensor<f64>>),
}

/// An optimizer over registered tensors (opaque). Any thread may use a handle, one call
/// at a time: a call made while another is inside the same handle gets
/// `GRADSTEP_BUSY` and does nothing (gradstep never waits for a handle); different
/// handles run in parallel. A step may use helper threads of its own (the owning
/// optimizer's, with the same bits for any number of threads).
pub struct gradstep_optimizer {
    typed: Typed,
}

impl gradstep_optimizer {
    /// A handle over `typed`, which steps on the calling thread alone under
    /// ThreadSanitizer ([`threads_for_host`]).
    fn new(mut typed: Typed) -> Self {
        if under_thread_sanitizer() {
            match &mut typed {
                Typed::F32(opt, _) => opt.set_threads(1),
                Typed::F64(opt, _) => opt.set_threads(1),
            }
        }
        gradstep_optimizer { typed }
    }
}

/// The helper threads a handle may use when asked for `threads`: `threads`, or 1 under
/// ThreadSanitizer ([`under_thread_sanitizer`]). The helper threads hand work and
/// results over in code TSan cannot see (rayon's, in this uninstrumented library), so
/// a C host running TSan saw a threaded step as data races on its own params (a
/// hostile C caller's report, session 22: `tests/c/stress.c` part 5). The results are
/// the same bits for any number of threads; only the speed differs, and under TSan
/// that is not what is measured.
fn threads_for_host(threads: usize) -> usize {
    if under_thread_sanitizer() { 1 } else { threads }
}

/// Whether ThreadSanitizer's runtime is in the process (its `__tsan_init` found, on
/// Unix), looked up once.
fn under_thread_sanitizer() -> bool {
    static UNDER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNDER.get_or_init(|| {
        // (Miri cannot call `dlsym`, and is not TSan.)
        #[cfg(all(unix, not(miri)))]
        {
            // SAFETY: a NUL-terminated name looked up in the process's global scope;
            // the result is only compared with NULL.
            !unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__tsan_init".as_ptr()) }.is_null()
        }
        #[cfg(any(not(unix), miri))]
        {
            false
        }
    })
}

/// Runs the same generic code on either element type.
macro_rules! typed {
    ($o:expr, |$opt:ident, $tensors:ident| $body:expr) => {
        match &mut $o.typed {
            Typed::F32($opt, $tensors) => $body,
            Typed::F64($opt, $tensors) => $body,
        }
    };
}

/// The status of a refusal by the owning optimizer (outside checkpoint loading), its
/// message noted for `gradstep_last_error`.
fn status(e: Error) -> gradstep_status {
    note(status_kind(e), e)
}

/// The status of a refused checkpoint load, its message noted.
fn load_status(e: Error) -> gradstep_status {
    note(load_status_kind(e), e)
}

/// The status of a refusal by the owning optimizer (outside checkpoint loading).
fn status_kind(e: Error) -> gradstep_status {
    match e {
        Error::Kernel(k) => k.into(),
        Error::WrongRule { .. } => GRADSTEP_WRONG_RULE,
        Error::NoSuchGroup(_) => GRADSTEP_NO_SUCH_GROUP,
        Error::NoSuchTensor(_) | Error::TensorCount { .. } | Error::LengthMismatch { .. } => {
            GRADSTEP_LENGTH_MISMATCH
        }
        Error::OutOfMemory { .. } => GRADSTEP_OUT_OF_MEMORY,
        Error::NoMomentum { .. } => GRADSTEP_INVALID_HYPERPARAMETER,
        Error::StateSlots { .. } => GRADSTEP_STATE_LAYOUT,
        e => load_status_kind(e),
    }
}

/// The status of a refused checkpoint load: the checkpoint is at fault, or does not
/// fit this handle.
fn load_status_kind(e: Error) -> gradstep_status {
    match e {
        Error::Kernel(gradstep::Error::Checkpoint(c)) => match c {
            CheckpointError::WrongRule { .. } => GRADSTEP_CHECKPOINT_WRONG_RULE,
            CheckpointError::WrongElementType { .. } => GRADSTEP_CHECKPOINT_WRONG_TYPE,
            _ => GRADSTEP_BAD_CHECKPOINT,
        },
        // A value the constructors refuse (a rule's `validate`, a schedule position).
        Error::Kernel(_) | Error::Invalid { .. } | Error::NoMomentum { .. } => {
            GRADSTEP_BAD_CHECKPOINT
        }
        Error::WrongRule { .. } => GRADSTEP_CHECKPOINT_WRONG_RULE,
        Error::Mismatch {
            what: "element type",
        } => GRADSTEP_CHECKPOINT_WRONG_TYPE,
        Error::Mismatch { .. }
        | Error::StateSlots { .. }
        | Error::NoSuchGroup(_)
        | Error::NoSuchTensor(_)
        | Error::TensorCount { .. }
        | Error::LengthMismatch { .. } => GRADSTEP_CHECKPOINT_MISMATCH,
        Error::Corrupt {
            what: "unsupported version",
        } => GRADSTEP_CHECKPOINT_VERSION,
        Error::Corrupt { .. } => GRADSTEP_BAD_CHECKPOINT,
        Error::OutOfMemory { .. } => GRADSTEP_OUT_OF_MEMORY,
        _ => GRADSTEP_INTERNAL_ERROR,
    }
}

/// The params of every registered tensor, as byte spans.
fn param_spans<T>(tensors: &[Tensor<T>]) -> Result<Vec<Span>, gradstep_status> {
    let mut spans = vec_with_capacity(tensors.len())?;
    spans.extend(tensors.iter().map(|t| t.params.span()));
    Ok(spans)
}

/// Creates an optimizer with `rule` as group 0, over elements of type `element`
/// ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]), and writes its handle to `*out`. Refused:
/// unknown kinds or element types (`GRADSTEP_UNKNOWN_KIND`), invalid hyperparameters.
///
/// # Safety
/// `rule` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new(
    rule: *const gradstep_rule,
    element: gradstep_element,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; `read` rejects NULL and misalignment.
        let rule_span = Span::one(rule);
        let rule = to_any(&unsafe { read(rule)? })?;
        check(out.cast_const())?;
        disjoint(&[Span::one(out)], &[rule_span])?;
        crate::rules::element_type(element)?;
        let typed = match element {
            GRADSTEP_F32 => Typed::F32(Optimizer::new(rule).map_err(status)?, Vec::new()),
            _ => Typed::F64(Optimizer::new(rule).map_err(status)?, Vec::new()),
        };
        let handle = registry::register(gradstep_optimizer::new(typed), Kind::Optimizer)?;
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Adds a param group with these hyperparameters (of the optimizer's rule:
/// `GRADSTEP_WRONG_RULE` otherwise) and writes its index to `*group_out`.
///
/// # Safety
/// `opt` any value (handles are checked); `rule` NULL or valid for a read; `group_out`
/// NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group(
    opt: *mut gradstep_optimizer,
    rule: *const gradstep_rule,
    group_out: *mut usize,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; `read` rejects NULL and misalignment.
        let rule_span = Span::one(rule);
        let rule = to_any(&unsafe { read(rule)? })?;
        check(group_out.cast_const())?;
        disjoint(&[Span::one(group_out)], &[rule_span])?;
        registry::with(opt, Kind::Optimizer, |o| {
            let GroupId(g) = typed!(o, |opt, _t| opt.add_group(rule)).map_err(status)?;
            // SAFETY: checked; writable.
            unsafe { group_out.write(g) };
            Ok(())
        })
    })
}

/// Registers a tensor of the handle's element type: allocates its state (a refusal is
/// `GRADSTEP_OUT_OF_MEMORY`, never an abort), then checks the buffers against each
/// other and every registered one, undoing the registration if they overlap.
fn add_tensor<T: Element>(
    opt: &mut Optimizer<T>,
    tensors: &mut Vec<Tensor<T>>,
    group: usize,
    n: usize,
    t: Tensor<T>,
) -> Result<(), gradstep_status> {
    tensors.try_reserve(1).map_err(|_| GRADSTEP_OUT_OF_MEMORY)?;
    let id = opt.add_tensor(GroupId(group), n).map_err(status)?;
    // A tensor's params may overlap nothing registered (its own grads included); grads
    // are only read, so two tensors may share them.
    let (p, g) = (t.params.span(), t.grads.span());
    let clash = disjoint(&[p], &[g]).is_err()
        || tensors
            .iter()
            .any(|o| p.overlaps(o.params.span()) || p.overlaps(o.grads.span()))
        || tensors.iter().any(|o| g.overlaps(o.params.span()));
    if clash {
        opt.pop_tensor();
        return Err(GRADSTEP_OVERLAPPING_BUFFERS);
    }
    // The buffers stay where they are: place the state for them now, on this thread,
    // rather than move it during the first step.
    if let Err(e) = opt.place_state(id, t.params.ptr(), t.grads.ptr()) {
        opt.pop_tensor();
        return Err(status(e));
    }
    tensors.push(t);
    Ok(())
}

/// Registers a tensor of `n` floats in `group`: `params` (updated by each step) and
/// `grads` (read by each step). The optimizer allocates and places its state; the
/// params and grads are the caller's, and are stepped fastest from
/// `gradstep_buffer_new_f32`'s memory (page-aligned, huge pages from 2 MiB). Refused: a handle of
/// doubles (`GRADSTEP_WRONG_ELEMENT_TYPE`), an unknown group
/// (`GRADSTEP_NO_SUCH_GROUP`), state that cannot be allocated
/// (`GRADSTEP_OUT_OF_MEMORY`), buffers overlapping each other or any registered buffer
/// (`GRADSTEP_OVERLAPPING_BUFFERS`).
///
/// # Safety
/// `opt` any value (handles are checked); `params`/`grads` NULL or valid for `n`
/// elements until the optimizer is freed, and not used by anyone else during its calls.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_params_f32(
    opt: *mut gradstep_optimizer,
    group: usize,
    params: *mut f32,
    grads: *const f32,
    n: usize,
) -> gradstep_status {
    guard(|| {
        let (params, grads) = (Raw::new_mut(params, n)?, Raw::new(grads, n)?);
        registry::with(opt, Kind::Optimizer, |o| match &mut o.typed {
            Typed::F32(opt, tensors) => {
                add_tensor(opt, tensors, group, n, Tensor { params, grads })
            }
            Typed::F64(..) => Err(GRADSTEP_WRONG_ELEMENT_TYPE),
        })
    })
}

/// As [`gradstep_optimizer_add_params_f32`], for doubles.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_params_f64(
    opt: *mut gradstep_optimizer,
    group: usize,
    params: *mut f64,
    grads: *const f64,
    n: usize,
) -> gradstep_status {
    guard(|| {
        let (params, grads) = (Raw::new_mut(params, n)?, Raw::new(grads, n)?);
        registry::with(opt, Kind::Optimizer, |o| match &mut o.typed {
            Typed::F64(opt, tensors) => {
                add_tensor(opt, tensors, group, n, Tensor { params, grads })
            }
            Typed::F32(..) => Err(GRADSTEP_WRONG_ELEMENT_TYPE),
        })
    })
}

/// Up to this many registered tensors, a step lists their slices on the stack: a
/// heap list per call cost a small step a measurable fraction (benches/percall.rs).
const STACK_TENSORS: usize = 16;

/// The owning optimizer's multi-tensor step over the registered buffers.
fn step<T: Element>(opt: &mut Optimizer<T>, tensors: &[Tensor<T>]) -> Result<(), gradstep_status> {
    let slices = |t: &Tensor<T>| {
        // SAFETY: checked non-NULL, aligned and bounded at registration, every params
        // buffer disjoint from every other registered buffer (so the `&mut` slices are
        // exclusive); valid until the handle is freed (the caller's contract).
        unsafe { (t.params.slice_mut(), t.grads.slice()) }
    };
    if let [t] = tensors {
        // The common case without clearing the whole stack array.
        return opt.step(&mut [slices(t)]).map_err(status);
    }
    if tensors.len() <= STACK_TENSORS {
        let mut list: [(&mut [T], &[T]); STACK_TENSORS] = Default::default();
        for (l, t) in list.iter_mut().zip(tensors) {
            *l = slices(t);
        }
        return opt.step(&mut list[..tensors.len()]).map_err(status);
    }
    let mut list = vec_with_capacity(tensors.len())?;
    list.extend(tensors.iter().map(slices));
    opt.step(&mut list).map_err(status)
}

/// Steps every registered tensor with its group's hyperparameters (and scheduled
/// learning rate and momentum), on as many threads as the system reports (the result
/// does not depend on it, bit for bit). Every group and tensor is checked first: on a
/// refusal no tensor has been stepped.
///
/// # Safety
/// `opt` any value (handles are checked); the registered buffers still valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_step(opt: *mut gradstep_optimizer) -> gradstep_status {
    guard(|| {
        registry::with(opt, Kind::Optimizer, |o| {
            typed!(o, |opt, tensors| step(opt, tensors))
        })
    })
}

/// Sets the most threads `gradstep_optimizer_step` uses (default: the number of
/// logical cores the system reports; 0 counts as 1, which keeps every step on the
/// calling thread). Results are the same bits for any number: tensors are cut into
/// chunks that are stepped independently, whichever thread takes them. In a process
/// running ThreadSanitizer every handle steps on the calling thread: its helper threads
/// synchronize in code TSan cannot see, which it would report as races on your params.
///
/// # Safety
/// `opt` may be any value (handles are checked).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_set_threads(
    opt: *mut gradstep_optimizer,
    threads: usize,
) -> gradstep_status {
    guard(|| {
        registry::with(opt, Kind::Optimizer, |o| {
            typed!(o, |opt, _t| opt.set_threads(threads_for_host(threads)));
            Ok(())
        })
    })
}

/// Sets a group's learning rate (a value the rule accepts: finite, ≥ 0).
///
/// # Safety
/// `opt` any value (handles are checked).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_set_lr(
    opt: *mut gradstep_optimizer,
    group: usize,
    lr: f64,
) -> gradstep_status {
    guard(|| {
        registry::with(opt, Kind::Optimizer, |o| {
            typed!(o, |opt, _t| opt.set_lr(GroupId(group), lr)).map_err(status)
        })
    })
}

/// Writes a group's current learning rate.
///
/// # Safety
/// `opt` any value (handles are checked); `lr` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_lr(
    opt: *mut gradstep_optimizer,
    group: usize,
    lr: *mut f64,
) -> gradstep_status {
    guard(|| {
        registry::with(opt, Kind::Optimizer, |o| {
            let value = typed!(o, |opt, _t| opt.lr(GroupId(group))).map_err(status)?;
            check(lr.cast_const())?;
            // SAFETY: checked; writable.
            unsafe { lr.write(value) };
            Ok(())
        })
    })
}

/// Attaches `schedule` to a group of the handle.
fn attach(
    opt: *mut gradstep_optimizer,
    group: usize,
    schedule: Attach,
) -> Result<(), gradstep_status> {
    registry::with(opt, Kind::Optimizer, |o| {
        let g = GroupId(group);
        match schedule {
            Attach::Epochs(s) => typed!(o, |opt, _t| opt.attach_schedule(g, s)),
            Attach::Plateau(p) => typed!(o, |opt, _t| opt.attach_plateau(g, p)),
        }
        .map_err(status)
    })
}

/// Attaches a schedule to a group (replacing any), started as torch's constructor
/// does: it records the group's `initial_lr` (once: the learning rate when the first
/// schedule is attached) and writes epoch 0's learning rate. Refused, with the group
/// unchanged: an invalid configuration, a cycling schedule on a rule without momentum,
/// a momentum that would change the state of the group's registered tensors
/// (`GRADSTEP_STATE_LAYOUT`: SGD has a momentum buffer only with momentum ≠ 0, so
/// cycling the momentum of an SGD group registered with momentum 0 is refused; set a
/// momentum before adding params). A LambdaLR/MultiplicativeLR callback is called from the thread that calls
/// [`gradstep_optimizer_schedule_step`] (and this function), never during a load.
///
/// # Safety
/// `opt` any value (handles are checked); `config` NULL or valid for a read.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_attach_schedule(
    opt: *mut gradstep_optimizer,
    group: usize,
    config: *const gradstep_schedule_config,
) -> gradstep_status {
    guard(|| {
        // SAFETY: `read` checks NULL and alignment; readable per the caller's contract.
        let c = unsafe { read(config)? };
        attach(opt, group, attach_config(&c)?)
    })
}

/// Attaches a copy of a schedule handle's schedule to a group (replacing any): any
/// kind, including the SequentialLR and ChainedScheduler composites. Only its
/// configuration is copied: it is started on the group as
/// [`gradstep_optimizer_attach_schedule`] starts a config, wherever the handle's own
/// copy is. The schedule handle stays the caller's (free it as usual).
///
/// # Safety
/// `opt` and `schedule` any values (handles are checked).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_attach_schedule_handle(
    opt: *mut gradstep_optimizer,
    group: usize,
    schedule: *mut gradstep_schedule,
) -> gradstep_status {
    guard(|| attach(opt, group, attach_handle(schedule)?))
}

/// Steps every group's epoch-driven schedule (call after [`gradstep_optimizer_step`],
/// as in torch); groups without one, or with ReduceLROnPlateau (stepped by
/// [`gradstep_optimizer_schedule_step_metric`]), are left as they are. All or nothing:
/// if any group's schedule refuses, no group changes (a cycled SGD momentum reaching
/// zero on a group with params, which would drop their momentum buffer, is
/// `GRADSTEP_STATE_LAYOUT`).
///
/// # Safety
/// `opt` any value (handles are checked).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_schedule_step(
    opt: *mut gradstep_optimizer,
) -> gradstep_status {
    guard(|| {
        registry::with(opt, Kind::Optimizer, |o| {
            typed!(o, |opt, _t| opt.schedule_step()).map_err(status)
        })
    })
}

/// Steps every group's ReduceLROnPlateau with the epoch's metric; other groups are
/// left as they are. All or nothing.
///
/// # Safety
/// `opt` any value (handles are checked).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_schedule_step_metric(
    opt: *mut gradstep_optimizer,
    metric: f64,
) -> gradstep_status {
    guard(|| {
        registry::with(opt, Kind::Optimizer, |o| {
            typed!(o, |opt, _t| opt.schedule_step_metric(metric)).map_err(status)
        })
    })
}

/// Frees an optimizer and its state (not the caller's params and grads). NULL is a
/// no-op; a handle that is not live gives `GRADSTEP_INVALID_HANDLE`.
///
/// # Safety
/// `opt` may be any value (handle values are never reused). It may race any other call
/// on the same handle: a call already inside finishes, every later call gets
/// `GRADSTEP_INVALID_HANDLE`, and the state is dropped when the last call leaves.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_free(opt: *mut gradstep_optimizer) -> gradstep_status {
    guard(|| registry::free(opt, Kind::Optimizer))
}

/// The length of a checkpoint of the whole optimizer (its current shape), params
/// included.
///
/// # Safety
/// `opt` any value (handles are checked); `out_len` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_checkpoint_len(
    opt: *mut gradstep_optimizer,
    out_len: *mut usize,
) -> gradstep_status {
    guard(|| {
        registry::with(opt, Kind::Optimizer, |o| {
            check(out_len.cast_const())?;
            let len = typed!(o, |opt, _t| opt.checkpoint_len(true))
                .map_err(|_| GRADSTEP_LENGTH_TOO_LARGE)?;
            // SAFETY: checked; writable.
            unsafe { out_len.write(len) };
            Ok(())
        })
    })
}

fn save<T: Element>(
    opt: &Optimizer<T>,
    tensors: &[Tensor<T>],
    out: Raw<u8>,
    written: *mut usize,
) -> Result<usize, gradstep_status> {
    // The checkpoint is written from the registered params: `out` must not be one.
    disjoint(&[out.span(), Span::one(written)], &param_spans(tensors)?)?;
    let mut params = vec_with_capacity(tensors.len())?;
    // SAFETY: checked at registration; only read, and disjoint from `out` (above).
    params.extend(tensors.iter().map(|t| unsafe { t.params.slice() }));
    // SAFETY: checked non-NULL, aligned and bounded, disjoint from the params the
    // encoder reads; writable per the caller's contract.
    let buf = unsafe { out.slice_mut() };
    opt.write_checkpoint(Some(&params), buf).map_err(status)
}

/// Saves the optimizer's complete state, params included, as an owning-optimizer
/// checkpoint (the `GSOP` container, format version 2: every group's hyperparameters
/// with its current learning rate and momentum, `initial_lr` and schedule position;
/// every tensor's scalar state, state slices and params, each a gradstep checkpoint;
/// CRC-32 checked). Version 1, written by gradstep's earlier handle, is no longer read
/// (`GRADSTEP_CHECKPOINT_VERSION`). `out` needs [`gradstep_optimizer_checkpoint_len`]
/// bytes (`GRADSTEP_BUFFER_TOO_SMALL` otherwise) and must not overlap a registered
/// params buffer.
///
/// # Safety
/// `opt` any value (handles are checked); `out` NULL or valid for `capacity` bytes;
/// `written` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_checkpoint_save(
    opt: *mut gradstep_optimizer,
    out: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> gradstep_status {
    guard(|| {
        registry::with(opt, Kind::Optimizer, |o| {
            let out = Raw::new_mut(out, capacity)?;
            check(written.cast_const())?;
            let len = typed!(o, |opt, tensors| save(opt, tensors, out, written))?;
            // SAFETY: checked; writable.
            unsafe { written.write(len) };
            Ok(())
        })
    })
}

fn load<T: Element>(
    opt: &mut Optimizer<T>,
    tensors: &[Tensor<T>],
    bytes: Raw<u8>,
) -> Result<(), gradstep_status> {
    // The params are written from the decoded copy: `bytes` must not be one.
    disjoint(&param_spans(tensors)?, &[bytes.span()])?;
    // SAFETY: checked non-NULL, aligned and bounded; only read, and disjoint from the
    // params the load writes.
    let bytes = unsafe { bytes.slice() };
    let mut params = vec_with_capacity(tensors.len())?;
    // SAFETY: checked at registration, every params buffer disjoint from every other
    // registered buffer and from `bytes`; valid per the caller's contract.
    params.extend(tensors.iter().map(|t| unsafe { t.params.slice_mut() }));
    opt.load_checkpoint_with_params(bytes, &mut params)
        .map_err(load_status)
}

/// Restores a checkpoint written by [`gradstep_optimizer_checkpoint_save`] into an
/// optimizer of the same shape: the same rule and element type, the same number of
/// groups, tensors of the same lengths registered in the same groups and order, and
/// the same kinds of schedules attached again (torch: construct the optimizer and
/// schedulers, then load their state). Schedules are restored to the saved position
/// directly, never replayed, so a load takes time proportional to its bytes whatever
/// epoch they name. Every field is checked as the constructors check it (a
/// hyperparameter the rule refuses, a non-finite `initial_lr`, a schedule position no
/// run reaches: `GRADSTEP_BAD_CHECKPOINT`) before anything changes: on any refusal the
/// handle and the params are as they were.
///
/// # Safety
/// `opt` any value (handles are checked); `bytes` NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_checkpoint_load(
    opt: *mut gradstep_optimizer,
    bytes: *const u8,
    len: usize,
) -> gradstep_status {
    guard(|| {
        registry::with(opt, Kind::Optimizer, |o| {
            let bytes = Raw::new(bytes, len)?;
            typed!(o, |opt, tensors| load(opt, tensors, bytes))
        })
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::rules::{GRADSTEP_RULE_ADAM, gradstep_rule_default};

    /// Leaks `values` as a raw buffer, as C memory is: no Rust reference to it remains
    /// that a retag could invalidate while the handle holds its pointer (Miri checks).
    fn leak(values: Vec<f32>) -> *mut f32 {
        Box::into_raw(values.into_boxed_slice()).cast::<f32>()
    }

    /// The buffers [`handle`] leaked, to give back once its handle is freed.
    struct Buffers([(*mut f32, usize); 4]);

    impl Drop for Buffers {
        fn drop(&mut self) {
            for &(ptr, len) in &self.0 {
                // SAFETY: made by `leak` with this length; the handle is freed.
                drop(unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(ptr, len)) });
            }
        }
    }

    /// The 7 params of [`handle`]'s first tensor, read through its raw pointer.
    fn params_of(w: *mut f32) -> Vec<f32> {
        // SAFETY: leaked by `leak` with 7 elements; no call is writing it now.
        unsafe { core::slice::from_raw_parts(w, 7) }.to_vec()
    }

    /// An Adam handle over two tensors (params and grads leaked so they outlive it),
    /// stepped a few times, and its checkpoint.
    fn handle() -> (*mut gradstep_optimizer, *mut f32, Vec<u8>, Buffers) {
        let (w, b) = (leak(vec![0.5f32; 7]), leak(vec![-1.0f32; 3]));
        let (g, gb) = (
            leak(vec![0.25f32; 7]).cast_const(),
            leak(vec![-0.5f32; 3]).cast_const(),
        );
        let buffers = Buffers([(w, 7), (b, 3), (g.cast_mut(), 7), (gb.cast_mut(), 3)]);
        let mut opt = core::ptr::null_mut();
        // SAFETY: a zeroed rule is a valid value to overwrite.
        let mut adam: gradstep_rule = unsafe { core::mem::zeroed() };
        let mut group = 0;
        // SAFETY: valid pointers throughout; the buffers outlive the handle.
        unsafe {
            assert_eq!(
                gradstep_rule_default(GRADSTEP_RULE_ADAM, &mut adam),
                GRADSTEP_OK
            );
            assert_eq!(
                gradstep_optimizer_new(&adam, GRADSTEP_F32, &mut opt),
                GRADSTEP_OK
            );
            assert_eq!(
                gradstep_optimizer_add_group(opt, &adam, &mut group),
                GRADSTEP_OK
            );
            assert_eq!(
                gradstep_optimizer_add_params_f32(opt, 0, w, g, 7),
                GRADSTEP_OK
            );
            assert_eq!(
                gradstep_optimizer_add_params_f32(opt, group, b, gb, 3),
                GRADSTEP_OK
            );
            for _ in 0..3 {
                assert_eq!(gradstep_optimizer_step(opt), GRADSTEP_OK);
            }
            let mut len = 0;
            assert_eq!(
                gradstep_optimizer_checkpoint_len(opt, &mut len),
                GRADSTEP_OK
            );
            let mut bytes = vec![0u8; len];
            let mut written = 0;
            assert_eq!(
                gradstep_optimizer_checkpoint_save(opt, bytes.as_mut_ptr(), len, &mut written),
                GRADSTEP_OK
            );
            assert_eq!(written, len);
            (opt, w, bytes, buffers)
        }
    }

    #[derive(Clone, Debug)]
    enum Mutation {
        Flip(usize, u8),
        Truncate(usize),
        Insert(usize, u8),
        Remove(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
            any::<usize>().prop_map(Mutation::Truncate),
            (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Insert(i, x)),
            any::<usize>().prop_map(Mutation::Remove),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
        let n = bytes.len().max(1);
        match *m {
            Mutation::Flip(i, x) => {
                if let Some(b) = bytes.get_mut(i % n) {
                    *b ^= x;
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i % n),
            Mutation::Insert(i, x) => bytes.insert(i % (bytes.len() + 1), x),
            Mutation::Remove(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % n);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn loader_answers_every_mutation_with_a_status(
            mutations in prop::collection::vec(mutation(), 1..4),
            random in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let (opt, w, good, buffers) = handle();
            let before = params_of(w);
            for bytes in [
                {
                    let mut b = good.clone();
                    for m in &mutations {
                        apply(&mut b, m);
                    }
                    b
                },
                random,
            ] {
                // SAFETY: a live handle; the bytes are valid for their length.
                let status = unsafe { gradstep_optimizer_checkpoint_load(opt, bytes.as_ptr(), bytes.len()) };
                prop_assert_ne!(status, GRADSTEP_INTERNAL_ERROR);
                if status != GRADSTEP_OK {
                    prop_assert_eq!(&params_of(w)[..], &before[..]);
                } else {
                    // Bytes after the stated length are ignored; everything before
                    // it is checked (CRC), so an accepted checkpoint is the good one.
                    prop_assert_eq!(&bytes[..good.len()], &good[..], "a damaged checkpoint was accepted");
                }
            }
            // The intact checkpoint still loads.
            // SAFETY: as above.
            let status = unsafe { gradstep_optimizer_checkpoint_load(opt, good.as_ptr(), good.len()) };
            prop_assert_eq!(status, GRADSTEP_OK);
            // SAFETY: a live handle.
            prop_assert_eq!(unsafe { gradstep_optimizer_free(opt) }, GRADSTEP_OK);
            drop(buffers);
        }
    }

    /// Every error of the owning optimizer has a status other than the internal error
    /// (a new variant would show up here as `GRADSTEP_INTERNAL_ERROR`).
    #[test]
    fn optim_errors_map_to_their_statuses() {
        use gradstep::rules::RuleId;
        let cases = [
            (
                Error::WrongRule {
                    expected: RuleId::Adam,
                    found: RuleId::Sgd,
                },
                GRADSTEP_WRONG_RULE,
                GRADSTEP_CHECKPOINT_WRONG_RULE,
            ),
            (
                Error::NoSuchGroup(GroupId(3)),
                GRADSTEP_NO_SUCH_GROUP,
                GRADSTEP_CHECKPOINT_MISMATCH,
            ),
            (
                Error::OutOfMemory { requested: 1 },
                GRADSTEP_OUT_OF_MEMORY,
                GRADSTEP_OUT_OF_MEMORY,
            ),
            (
                Error::Mismatch {
                    what: "element type",
                },
                GRADSTEP_CHECKPOINT_WRONG_TYPE,
                GRADSTEP_CHECKPOINT_WRONG_TYPE,
            ),
            (
                Error::Mismatch {
                    what: "a tensor's group",
                },
                GRADSTEP_CHECKPOINT_MISMATCH,
                GRADSTEP_CHECKPOINT_MISMATCH,
            ),
            (
                Error::Invalid {
                    field: "initial_lr",
                },
                GRADSTEP_BAD_CHECKPOINT,
                GRADSTEP_BAD_CHECKPOINT,
            ),
            (
                Error::Corrupt {
                    what: "unsupported version",
                },
                GRADSTEP_CHECKPOINT_VERSION,
                GRADSTEP_CHECKPOINT_VERSION,
            ),
            (
                Error::Corrupt {
                    what: "checksum mismatch",
                },
                GRADSTEP_BAD_CHECKPOINT,
                GRADSTEP_BAD_CHECKPOINT,
            ),
            (
                Error::Kernel(gradstep::Error::StepOverflow),
                GRADSTEP_STEP_OVERFLOW,
                GRADSTEP_BAD_CHECKPOINT,
            ),
        ];
        for (e, outside, loading) in cases {
            assert_eq!((status(e), load_status(e)), (outside, loading), "{e:?}");
        }
    }
}

/// [`gradstep_lookahead`]'s `momentum`: the wrapped rule's `momentum_buffer` is kept
/// at a sync (pytorch_optimizer's `pullback_momentum='none'`).
pub const GRADSTEP_LOOKAHEAD_NONE: u32 = 0;
/// [`gradstep_lookahead`]'s `momentum`: set to zero at a sync (`'reset'`).
pub const GRADSTEP_LOOKAHEAD_RESET: u32 = 1;
/// [`gradstep_lookahead`]'s `momentum`: interpolated towards a slow momentum at a sync
/// (`'pullback'`; one more state slice per tensor).
pub const GRADSTEP_LOOKAHEAD_PULLBACK: u32 = 2;

/// A Lookahead composite (Zhang et al. 2019, `pytorch_optimizer.Lookahead`): the
/// wrapped rule, the steps between syncs `k` (≥ 1), the slow step size `alpha` (in
/// [0, 1]) and what a sync does to the rule's momentum (`GRADSTEP_LOOKAHEAD_*`).
/// Every `k` steps the params move to `slow + alpha·(params − slow)` (torch's `lerp`)
/// and the slow weights take their value; the slow weights start as the params at
/// each tensor's first step.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct gradstep_lookahead {
    /// The wrapped rule.
    pub rule: gradstep_rule,
    /// Steps between syncs (pytorch_optimizer's default 5).
    pub k: u64,
    /// Slow step size α (default 0.5).
    pub alpha: f64,
    /// `GRADSTEP_LOOKAHEAD_NONE`, `_RESET` or `_PULLBACK`.
    pub momentum: u32,
}

/// The kernel's momentum option for a C value.
fn sync_momentum(momentum: u32) -> Result<SyncMomentum, gradstep_status> {
    usize::try_from(momentum)
        .ok()
        .and_then(|m| SyncMomentum::ALL.get(m).copied())
        .ok_or_else(|| note(GRADSTEP_UNKNOWN_KIND, "unknown Lookahead momentum option"))
}

/// The Lookahead options of a C composite (the rule is converted separately).
fn lookahead_options(la: &gradstep_lookahead) -> Result<Lookahead<()>, gradstep_status> {
    Ok(Lookahead {
        rule: (),
        k: la.k,
        alpha: la.alpha,
        momentum: sync_momentum(la.momentum)?,
    })
}

/// Reads a Lookahead composite from text, `lookahead(RULE)[:k=K,alpha=A,momentum=M]`
/// (RULE in [`gradstep_rule_parse`]'s syntax; `M` is `none`, `reset` or `pullback`;
/// omitted options are pytorch_optimizer's defaults k 5, alpha 0.5, none), e.g.
/// `"lookahead(sgd:lr=0.1,momentum=0.9):k=5,alpha=0.5,momentum=pullback"`, and writes
/// it to `*out`. Same bounds and statuses as [`gradstep_rule_parse`]; an unknown
/// option or malformed text is `GRADSTEP_BAD_RULE_TEXT`, k = 0 or alpha outside [0, 1]
/// `GRADSTEP_INVALID_HYPERPARAMETER`.
///
/// # Safety
/// `text` NULL, or readable up to its NUL or `GRADSTEP_RULE_TEXT_MAX + 1` bytes; `out`
/// NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_lookahead_parse(
    text: *const c_char,
    out: *mut gradstep_lookahead,
) -> gradstep_status {
    guard(|| {
        check(out.cast_const())?;
        // SAFETY: NULL, or readable up to its NUL or the bound (caller's contract).
        let spec = unsafe { spec_text(text) }?;
        disjoint(&[Span::one(out)], &[text_span(spec)])?;
        let la = Lookahead::parse(spec).map_err(|e| {
            let status = match e {
                LookaheadSpecError::Inner(gradstep::rules::SpecError::UnknownRule { .. }) => {
                    GRADSTEP_UNKNOWN_KIND
                }
                LookaheadSpecError::Inner(gradstep::rules::SpecError::Invalid {
                    error, ..
                })
                | LookaheadSpecError::Invalid(error) => error.into(),
                _ => GRADSTEP_BAD_RULE_TEXT,
            };
            note(status, e)
        })?;
        let value = gradstep_lookahead {
            rule: from_any(&la.rule)?,
            k: la.k,
            alpha: la.alpha,
            momentum: SyncMomentum::ALL
                .iter()
                .position(|&m| m == la.momentum)
                .unwrap_or(0) as u32,
        };
        // SAFETY: non-NULL and aligned (checked); writable. `spec` is no longer used.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// [`gradstep_optimizer_new`] for a Lookahead composite: every group's rule is
/// wrapped in `la`'s k, alpha and momentum option ([`gradstep_optimizer_set_lookahead`]).
///
/// # Safety
/// `la` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_lookahead(
    la: *const gradstep_lookahead,
    element: gradstep_element,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; `read` rejects NULL and misalignment.
        let la_span = Span::one(la);
        let la = unsafe { read(la)? };
        let rule = to_any(&la.rule)?;
        let options = lookahead_options(&la)?;
        check(out.cast_const())?;
        disjoint(&[Span::one(out)], &[la_span])?;
        crate::rules::element_type(element)?;
        let typed = match element {
            GRADSTEP_F32 => Typed::F32(
                Optimizer::new_lookahead(options.over(rule)).map_err(status)?,
                Vec::new(),
            ),
            _ => Typed::F64(
                Optimizer::new_lookahead(options.over(rule)).map_err(status)?,
                Vec::new(),
            ),
        };
        let handle = registry::register(gradstep_optimizer::new(typed), Kind::Optimizer)?;
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Wraps every group's rule of the optimizer in Lookahead with these options: `k`
/// steps between syncs (≥ 1), slow step size `alpha` (in [0, 1]), `momentum` one of
/// `GRADSTEP_LOOKAHEAD_*`. Each tensor's state then holds its slow weights (and slow
/// momentum with pullback), taken from its params at its first step. Refused, with
/// the handle unchanged: k or alpha out of range (`GRADSTEP_INVALID_HYPERPARAMETER`),
/// an unknown momentum option (`GRADSTEP_UNKNOWN_KIND`), params already added
/// (`GRADSTEP_STATE_LAYOUT`: the options decide each tensor's state, so set them
/// before `gradstep_optimizer_add_params_*`).
///
/// # Safety
/// `opt` may be any value (handles are checked).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_set_lookahead(
    opt: *mut gradstep_optimizer,
    k: u64,
    alpha: f64,
    momentum: u32,
) -> gradstep_status {
    guard(|| {
        let options = Lookahead {
            rule: (),
            k,
            alpha,
            momentum: sync_momentum(momentum)?,
        };
        registry::with(opt, Kind::Optimizer, |o| {
            typed!(o, |opt, _t| opt.set_lookahead(Some(options))).map_err(|e| match e {
                Error::Mismatch { .. } => note(GRADSTEP_STATE_LAYOUT, e),
                e => status(e),
            })
        })
    })
}
