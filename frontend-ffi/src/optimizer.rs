//! The optimizer handle: create it from a rule's hyperparameters and an element type,
//! register parameter tensors (in param groups with their own hyperparameters), step
//! them all in one call, set the learning rate or attach a schedule per group, free it.
//! The handle owns every state buffer; the caller owns the params and grads, which
//! must stay valid (and not move) until the handle is freed.

use gradstep::checkpoint::{self, AnyRule, AnyScalars};
use gradstep::schedules::Group;

use crate::boundary::{Raw, Span, check, disjoint, guard, read, vec_filled, vec_with_capacity};
use crate::registry::{self, Kind};
use crate::rules::{GRADSTEP_F32, GRADSTEP_F64, gradstep_element, gradstep_rule, to_any};
use crate::schedules::{Built, Position, Running, build, gradstep_schedule_config};
use crate::status::{
    GRADSTEP_BAD_CHECKPOINT, GRADSTEP_BUFFER_TOO_SMALL, GRADSTEP_INVALID_HYPERPARAMETER,
    GRADSTEP_LENGTH_MISMATCH, GRADSTEP_LENGTH_TOO_LARGE, GRADSTEP_OVERLAPPING_BUFFERS,
    GRADSTEP_STEP_OVERFLOW, GRADSTEP_WRONG_ELEMENT_TYPE, GRADSTEP_WRONG_RULE, gradstep_status,
};

/// One parameter group: its hyperparameters, the learning rate (and momentum) that
/// schedules drive, and its schedule.
struct ParamGroup {
    rule: AnyRule,
    group: Group,
    schedule: Option<Running>,
    /// The schedule as attached (not started) and the rate it was started from, so that
    /// a checkpoint can bring a re-attached schedule back to the same epoch.
    origin: Option<(Running, f64)>,
}

/// One registered tensor.
struct Tensor {
    group: usize,
    n: usize,
    buffers: Buffers,
    scalars: AnyScalars,
}

enum Buffers {
    F32 {
        params: *mut f32,
        grads: *const f32,
        state: Vec<f32>,
    },
    F64 {
        params: *mut f64,
        grads: *const f64,
        state: Vec<f64>,
    },
}

impl Buffers {
    /// The byte ranges of the caller's params and grads.
    fn spans(&self, n: usize) -> [Span; 2] {
        match self {
            Buffers::F32 { params, grads, .. } => [Span::of(*params, n), Span::of(*grads, n)],
            Buffers::F64 { params, grads, .. } => [Span::of(*params, n), Span::of(*grads, n)],
        }
    }
}

/// An optimizer over registered tensors (opaque).
pub struct gradstep_optimizer {
    element: u32,
    groups: Vec<ParamGroup>,
    tensors: Vec<Tensor>,
}

/// The rule with the group's scheduled learning rate and momentum/β₁.
fn scheduled(g: &ParamGroup) -> Result<AnyRule, gradstep_status> {
    let mut rule = g.rule;
    rule.set_lr(g.group.lr);
    // A rule without a momentum field ignores the momentum schedules cycle.
    if let (Some(m), Some(_)) = (g.group.momentum, rule.momentum()) {
        rule.set_momentum(m)
            .map_err(|_| GRADSTEP_INVALID_HYPERPARAMETER)?;
    }
    rule.validate()?;
    Ok(rule)
}

fn step_tensor<T: gradstep::Real>(
    rule: &AnyRule,
    scalars: &mut AnyScalars,
    p: &mut [T],
    g: &[T],
    s: &mut [T],
) -> Result<(), gradstep_status> {
    rule.step_flat(scalars, p, g, s)?;
    Ok(())
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
        let rule = to_any(&unsafe { read(rule)? })?;
        check(out.cast_const())?;
        crate::rules::element_type(element)?;
        rule.validate()?;
        let opt = gradstep_optimizer {
            element,
            groups: vec![ParamGroup {
                rule,
                group: Group::new(rule.lr()),
                schedule: None,
                origin: None,
            }],
            tensors: Vec::new(),
        };
        let handle = registry::register(opt, Kind::Optimizer);
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Adds a param group with these hyperparameters (of the optimizer's rule:
/// `GRADSTEP_WRONG_RULE` otherwise) and writes its index to `*group_out`.
///
/// # Safety
/// `opt` a live handle or NULL; `rule` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group(
    opt: *mut gradstep_optimizer,
    rule: *const gradstep_rule,
    group_out: *mut usize,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; `read` rejects NULL and misalignment.
        let rule = to_any(&unsafe { read(rule)? })?;
        // SAFETY: looked up in the registry.
        let o = unsafe { registry::get(opt, Kind::Optimizer)? };
        check(group_out.cast_const())?;
        if o.groups[0].rule.id() != rule.id() {
            return Err(GRADSTEP_WRONG_RULE);
        }
        rule.validate()?;
        o.groups.push(ParamGroup {
            rule,
            group: Group::new(rule.lr()),
            schedule: None,
            origin: None,
        });
        // SAFETY: checked; writable.
        unsafe { group_out.write(o.groups.len() - 1) };
        Ok(())
    })
}

fn add_params(
    opt: *mut gradstep_optimizer,
    group: usize,
    n: usize,
    make: impl FnOnce(usize) -> Result<(u32, Buffers), gradstep_status>,
) -> Result<(), gradstep_status> {
    // SAFETY: looked up in the registry.
    let o = unsafe { registry::get(opt, Kind::Optimizer)? };
    let g = o.groups.get(group).ok_or(GRADSTEP_LENGTH_MISMATCH)?;
    let slots = g.rule.state_slots();
    let len = slots.checked_mul(n).ok_or(GRADSTEP_LENGTH_TOO_LARGE)?;
    let (element, buffers) = make(len)?;
    if element != o.element {
        return Err(GRADSTEP_WRONG_ELEMENT_TYPE);
    }
    // No two registered buffers may overlap, and a tensor's params not its grads.
    let [p, gr] = buffers.spans(n);
    disjoint(&[p], &[gr])?;
    for t in &o.tensors {
        let [tp, tg] = t.buffers.spans(t.n);
        if p.overlaps(tp) || p.overlaps(tg) || gr.overlaps(tp) {
            return Err(GRADSTEP_OVERLAPPING_BUFFERS);
        }
    }
    let scalars = g.rule.fresh_scalars();
    o.tensors.push(Tensor {
        group,
        n,
        buffers,
        scalars,
    });
    Ok(())
}

/// Registers a tensor of `n` floats in `group`: `params` (updated by each step) and
/// `grads` (read by each step). The optimizer allocates its state.
///
/// # Safety
/// `opt` a live handle or NULL; `params`/`grads` NULL or valid for `n` elements until
/// the optimizer is freed, and not used by anyone else during its calls.
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
        add_params(opt, group, n, |len| {
            Ok((
                GRADSTEP_F32,
                Buffers::F32 {
                    params: params.ptr(),
                    grads: grads.ptr(),
                    state: vec_filled(0.0, len)?,
                },
            ))
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
        add_params(opt, group, n, |len| {
            Ok((
                GRADSTEP_F64,
                Buffers::F64 {
                    params: params.ptr(),
                    grads: grads.ptr(),
                    state: vec_filled(0.0, len)?,
                },
            ))
        })
    })
}

/// Steps every registered tensor with its group's hyperparameters (and scheduled
/// learning rate and momentum). Every group is validated first: on a refusal no
/// tensor has been stepped.
///
/// # Safety
/// `opt` a live handle or NULL; the registered buffers still valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_step(opt: *mut gradstep_optimizer) -> gradstep_status {
    guard(|| {
        // SAFETY: looked up in the registry.
        let o = unsafe { registry::get(opt, Kind::Optimizer)? };
        let rules = o
            .groups
            .iter()
            .map(scheduled)
            .collect::<Result<Vec<_>, _>>()?;
        if o.tensors.iter().any(|t| t.scalars.step() == u64::MAX) {
            return Err(GRADSTEP_STEP_OVERFLOW);
        }
        for t in &mut o.tensors {
            let rule = &rules[t.group];
            match &mut t.buffers {
                Buffers::F32 {
                    params,
                    grads,
                    state,
                } => {
                    // SAFETY: registered non-NULL, aligned, disjoint and valid for `n`
                    // elements until the handle is freed (the caller's contract).
                    let (p, g) = unsafe {
                        (
                            core::slice::from_raw_parts_mut(*params, t.n),
                            core::slice::from_raw_parts(*grads, t.n),
                        )
                    };
                    step_tensor(rule, &mut t.scalars, p, g, state)?;
                }
                Buffers::F64 {
                    params,
                    grads,
                    state,
                } => {
                    // SAFETY: as above.
                    let (p, g) = unsafe {
                        (
                            core::slice::from_raw_parts_mut(*params, t.n),
                            core::slice::from_raw_parts(*grads, t.n),
                        )
                    };
                    step_tensor(rule, &mut t.scalars, p, g, state)?;
                }
            }
        }
        Ok(())
    })
}

fn group_of<'a>(
    opt: *mut gradstep_optimizer,
    group: usize,
) -> Result<&'a mut ParamGroup, gradstep_status> {
    // SAFETY: looked up in the registry; the borrow ends within the calling function.
    let o = unsafe { registry::get(opt, Kind::Optimizer)? };
    o.groups.get_mut(group).ok_or(GRADSTEP_LENGTH_MISMATCH)
}

/// Sets a group's learning rate (finite, ≥ 0).
///
/// # Safety
/// `opt` a live handle or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_set_lr(
    opt: *mut gradstep_optimizer,
    group: usize,
    lr: f64,
) -> gradstep_status {
    guard(|| {
        let g = group_of(opt, group)?;
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(GRADSTEP_INVALID_HYPERPARAMETER);
        }
        g.group.lr = lr;
        Ok(())
    })
}

/// Writes a group's current learning rate.
///
/// # Safety
/// `opt` a live handle or NULL; `lr` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_lr(
    opt: *mut gradstep_optimizer,
    group: usize,
    lr: *mut f64,
) -> gradstep_status {
    guard(|| {
        let g = group_of(opt, group)?;
        check(lr.cast_const())?;
        // SAFETY: checked; writable.
        unsafe { lr.write(g.group.lr) };
        Ok(())
    })
}

/// Attaches a schedule to a group (replacing any), starting it from the group's
/// current learning rate as torch's constructor does.
///
/// # Safety
/// `opt` a live handle or NULL; `config` NULL or valid for a read.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_attach_schedule(
    opt: *mut gradstep_optimizer,
    group: usize,
    config: *const gradstep_schedule_config,
) -> gradstep_status {
    guard(|| {
        let g = group_of(opt, group)?;
        // SAFETY: `read` checks NULL and alignment.
        let c = unsafe { read(config)? };
        let origin = match build(&c)? {
            Built::Scheduler(s) => Running::One(s),
            Built::Plateau(p) => Running::Plateau(p),
        };
        let mut running = origin.clone();
        let mut state = Group::new(g.group.lr);
        running.start(&mut state)?;
        g.origin = Some((origin, g.group.lr));
        (g.group, g.schedule) = (state, Some(running));
        Ok(())
    })
}

fn step_schedules(
    opt: *mut gradstep_optimizer,
    metric: Option<f64>,
) -> Result<(), gradstep_status> {
    // SAFETY: looked up in the registry.
    let o = unsafe { registry::get(opt, Kind::Optimizer)? };
    // Step copies, so that a refusal by any group's schedule changes none.
    let mut next: Vec<(Group, Option<Running>)> = Vec::with_capacity(o.groups.len());
    for g in &o.groups {
        let mut group = g.group;
        let mut schedule = g.schedule.clone();
        if let Some(s) = &mut schedule {
            s.step(&mut group, metric)?;
        }
        next.push((group, schedule));
    }
    for (g, (group, schedule)) in o.groups.iter_mut().zip(next) {
        (g.group, g.schedule) = (group, schedule);
    }
    Ok(())
}

/// Steps every group's schedule one epoch (call after [`gradstep_optimizer_step`], as
/// in torch). Groups with a ReduceLROnPlateau schedule need
/// [`gradstep_optimizer_schedule_step_metric`].
///
/// # Safety
/// `opt` a live handle or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_schedule_step(
    opt: *mut gradstep_optimizer,
) -> gradstep_status {
    guard(|| step_schedules(opt, None))
}

/// Steps every group's schedule with the epoch's metric (all of them must be
/// ReduceLROnPlateau).
///
/// # Safety
/// `opt` a live handle or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_schedule_step_metric(
    opt: *mut gradstep_optimizer,
    metric: f64,
) -> gradstep_status {
    guard(|| step_schedules(opt, Some(metric)))
}

/// Frees an optimizer and its state (not the caller's params and grads). NULL is a
/// no-op; a handle that is not live gives `GRADSTEP_INVALID_HANDLE`.
///
/// # Safety
/// No other thread may use `opt` meanwhile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_free(opt: *mut gradstep_optimizer) -> gradstep_status {
    guard(|| registry::free(opt, Kind::Optimizer))
}

// Checkpoints of a whole optimizer handle.
//
// Layout (little-endian), format version 1:
//   0   4  magic "GSOP"
//   4   2  version (1)
//   6   2  element type (1 float, 2 double)
//   8   4  number of groups G
//   12  4  number of tensors K
//   then G group records:
//       0  8  lr (f64)          8  8  initial_lr (f64)   16 8  momentum (f64)
//       24 8  flags: bit 0 initial_lr set, 1 momentum set, 2 schedule attached,
//             3 the schedule is ReduceLROnPlateau
//       32 8  schedule epoch (i64)            40 8  plateau best (f64)
//       48 8  plateau bad epochs (u64)        56 8  plateau cooldown left (u64)
//       64 8  plateau epochs (u64)            72 8  length L of the rule checkpoint
//       80 L  the group's hyperparameters as a gradstep checkpoint with n = 0
//   then K tensor records: 4 group index (u32), 4 zero, 8 length L, then a gradstep
//       checkpoint of the tensor's state, scalar state and params (L bytes)
//   and a CRC-32 (zlib's) of everything before it.

const MAGIC: &[u8; 4] = b"GSOP";
const VERSION: u16 = 1;
const GROUP_FIXED: usize = 80;

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), gradstep_status> {
        let end = self
            .at
            .checked_add(bytes.len())
            .ok_or(GRADSTEP_BUFFER_TOO_SMALL)?;
        self.buf
            .get_mut(self.at..end)
            .ok_or(GRADSTEP_BUFFER_TOO_SMALL)?
            .copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }
    /// Room for `len` bytes written by someone else.
    fn space(&mut self, len: usize) -> Result<&mut [u8], gradstep_status> {
        let end = self.at.checked_add(len).ok_or(GRADSTEP_BUFFER_TOO_SMALL)?;
        let start = self.at;
        self.at = end;
        self.buf
            .get_mut(start..end)
            .ok_or(GRADSTEP_BUFFER_TOO_SMALL)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], gradstep_status> {
        let end = self.at.checked_add(len).ok_or(GRADSTEP_BAD_CHECKPOINT)?;
        let out = self.buf.get(self.at..end).ok_or(GRADSTEP_BAD_CHECKPOINT)?;
        self.at = end;
        Ok(out)
    }
    fn u64(&mut self) -> Result<u64, gradstep_status> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| GRADSTEP_BAD_CHECKPOINT)?,
        ))
    }
    fn u32(&mut self) -> Result<u32, gradstep_status> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(
            b.try_into().map_err(|_| GRADSTEP_BAD_CHECKPOINT)?,
        ))
    }
    fn u16(&mut self) -> Result<u16, gradstep_status> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes(
            b.try_into().map_err(|_| GRADSTEP_BAD_CHECKPOINT)?,
        ))
    }
    /// A length-prefixed block: a u64 length, then that many bytes.
    fn block(&mut self) -> Result<&'a [u8], gradstep_status> {
        let len = usize::try_from(self.u64()?).map_err(|_| GRADSTEP_BAD_CHECKPOINT)?;
        self.take(len)
    }
    fn f64(&mut self) -> Result<f64, gradstep_status> {
        Ok(f64::from_bits(self.u64()?))
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(bytes)
}

fn element_of(o: &gradstep_optimizer) -> checkpoint::ElementType {
    if o.element == GRADSTEP_F32 {
        checkpoint::ElementType::F32
    } else {
        checkpoint::ElementType::F64
    }
}

/// Writes (or, with `out` too small, sizes) the checkpoint; returns its length.
fn save_into(o: &mut gradstep_optimizer, out: &mut [u8]) -> Result<usize, gradstep_status> {
    let element = element_of(o);
    let mut w = Writer { buf: out, at: 0 };
    w.put(MAGIC)?;
    w.put(&VERSION.to_le_bytes())?;
    w.put(&(o.element as u16).to_le_bytes())?;
    w.put(
        &u32::try_from(o.groups.len())
            .map_err(|_| GRADSTEP_LENGTH_MISMATCH)?
            .to_le_bytes(),
    )?;
    w.put(
        &u32::try_from(o.tensors.len())
            .map_err(|_| GRADSTEP_LENGTH_MISMATCH)?
            .to_le_bytes(),
    )?;
    for g in &mut o.groups {
        let position = g.schedule.as_mut().map(Running::position);
        let mut flags = 0u64;
        flags |= u64::from(g.group.initial_lr.is_some());
        flags |= u64::from(g.group.momentum.is_some()) << 1;
        flags |= u64::from(position.is_some()) << 2;
        let (mut epoch, mut plateau) = (-1i64, None);
        match position {
            Some(Position::Epoch(e)) => epoch = e,
            Some(Position::Plateau(p)) => {
                flags |= 1 << 3;
                plateau = Some(p);
            }
            None => {}
        }
        w.put(&g.group.lr.to_le_bytes())?;
        w.put(&g.group.initial_lr.unwrap_or(0.0).to_le_bytes())?;
        w.put(&g.group.momentum.unwrap_or(0.0).to_le_bytes())?;
        w.put(&flags.to_le_bytes())?;
        w.put(&epoch.to_le_bytes())?;
        w.put(&plateau.map_or(0.0, |p| p.best).to_le_bytes())?;
        w.put(&plateau.map_or(0, |p| p.num_bad_epochs).to_le_bytes())?;
        w.put(&plateau.map_or(0, |p| p.cooldown_counter).to_le_bytes())?;
        w.put(&plateau.map_or(0, |p| p.last_epoch).to_le_bytes())?;
        let len = rule_len(&g.rule, element)?;
        w.put(&(len as u64).to_le_bytes())?;
        let space = w.space(len)?;
        let slots = g.rule.state_slots();
        if o.element == GRADSTEP_F32 {
            let empty: Vec<&[f32]> = vec![&[]; slots];
            checkpoint::encode_any(&g.rule, &g.rule.fresh_scalars(), &empty, None, space)?;
        } else {
            let empty: Vec<&[f64]> = vec![&[]; slots];
            checkpoint::encode_any(&g.rule, &g.rule.fresh_scalars(), &empty, None, space)?;
        }
    }
    for t in &o.tensors {
        let rule = &o.groups[t.group].rule;
        w.put(&(t.group as u32).to_le_bytes())?;
        w.put(&0u32.to_le_bytes())?;
        let len = tensor_len(rule, element, t.n)?;
        w.put(&(len as u64).to_le_bytes())?;
        let space = w.space(len)?;
        match &t.buffers {
            Buffers::F32 { params, state, .. } => {
                // SAFETY: registered non-NULL, aligned and valid for `n` elements.
                let p = unsafe { core::slice::from_raw_parts(*params, t.n) };
                let slices: Vec<&[f32]> = split(state, t.n);
                checkpoint::encode_any(rule, &t.scalars, &slices, Some(p), space)?;
            }
            Buffers::F64 { params, state, .. } => {
                // SAFETY: as above.
                let p = unsafe { core::slice::from_raw_parts(*params, t.n) };
                let slices: Vec<&[f64]> = split(state, t.n);
                checkpoint::encode_any(rule, &t.scalars, &slices, Some(p), space)?;
            }
        }
    }
    let body = w.at;
    let crc = crc32(w.buf.get(..body).ok_or(GRADSTEP_BUFFER_TOO_SMALL)?);
    w.put(&crc.to_le_bytes())?;
    Ok(w.at)
}

fn split<T>(state: &[T], n: usize) -> Vec<&[T]> {
    if n == 0 {
        return Vec::new();
    }
    state.chunks(n).collect()
}

fn rule_len(rule: &AnyRule, element: checkpoint::ElementType) -> Result<usize, gradstep_status> {
    tensor_len_with(rule, element, 0, false)
}

fn tensor_len(
    rule: &AnyRule,
    element: checkpoint::ElementType,
    n: usize,
) -> Result<usize, gradstep_status> {
    tensor_len_with(rule, element, n, true)
}

fn tensor_len_with(
    rule: &AnyRule,
    element: checkpoint::ElementType,
    n: usize,
    params: bool,
) -> Result<usize, gradstep_status> {
    Ok(rule.encoded_len(element, n, params)?)
}

/// The length of a checkpoint of the whole optimizer (its current shape).
///
/// # Safety
/// `opt` a live handle or NULL; `out_len` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_checkpoint_len(
    opt: *mut gradstep_optimizer,
    out_len: *mut usize,
) -> gradstep_status {
    guard(|| {
        // SAFETY: looked up in the registry.
        let o = unsafe { registry::get(opt, Kind::Optimizer)? };
        check(out_len.cast_const())?;
        let element = element_of(o);
        let add = |len: usize, more: usize| len.checked_add(more).ok_or(GRADSTEP_LENGTH_TOO_LARGE);
        let mut len = 16 + 4;
        for g in &o.groups {
            len = add(len, add(GROUP_FIXED, rule_len(&g.rule, element)?)?)?;
        }
        for t in &o.tensors {
            len = add(
                len,
                add(16, tensor_len(&o.groups[t.group].rule, element, t.n)?)?,
            )?;
        }
        // SAFETY: checked; writable.
        unsafe { out_len.write(len) };
        Ok(())
    })
}

/// Saves the optimizer's complete state: every group's hyperparameters, learning rate,
/// momentum and schedule position, and every tensor's state, scalar state and params.
///
/// # Safety
/// `opt` a live handle or NULL; `out` NULL or valid for `capacity` bytes; `written`
/// NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_checkpoint_save(
    opt: *mut gradstep_optimizer,
    out: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> gradstep_status {
    guard(|| {
        // SAFETY: looked up in the registry.
        let o = unsafe { registry::get(opt, Kind::Optimizer)? };
        let out = Raw::new_mut(out, capacity)?;
        check(written.cast_const())?;
        // The checkpoint is written from the registered params: `out` must not be one.
        let mut read = vec_with_capacity(o.tensors.len())?;
        read.extend(o.tensors.iter().map(|t| t.buffers.spans(t.n)[0]));
        disjoint(&[out.span(), Span::one(written)], &read)?;
        // SAFETY: checked non-NULL, aligned and bounded, disjoint from the params the
        // encoder reads; writable per the caller's contract.
        let buf = unsafe { out.slice_mut() };
        let len = save_into(o, buf)?;
        // SAFETY: checked; writable.
        unsafe { written.write(len) };
        Ok(())
    })
}

/// One tensor's decoded contents, held until everything has been checked.
enum Decoded {
    F32(Vec<f32>, Vec<f32>),
    F64(Vec<f64>, Vec<f64>),
}

/// Decodes a gradstep checkpoint of `n` elements in `slots` state slices (with params
/// unless `n` is 0: the groups' hyperparameter records carry none).
fn decode_tensor<T: checkpoint::Element + Default + Clone>(
    bytes: &[u8],
    n: usize,
    slots: usize,
) -> Result<(AnyRule, AnyScalars, Vec<T>, Vec<T>), gradstep_status> {
    let mut state = vec![T::default(); slots * n];
    let mut params = vec![T::default(); n];
    let (rule, scalars) = {
        let mut slices: Vec<&mut [T]> = if n == 0 {
            (0..slots).map(|_| &mut [][..]).collect()
        } else {
            state.chunks_mut(n).collect()
        };
        let params = (n > 0).then_some(&mut params[..]);
        checkpoint::decode_any(bytes, &mut slices, params)?
    };
    Ok((rule, scalars, state, params))
}

/// Restores a checkpoint written by [`gradstep_optimizer_checkpoint_save`] into an
/// optimizer of the same shape: the same rule and element type, the same number of
/// groups, and tensors of the same lengths registered in the same groups and order.
/// Groups whose schedule was saved must have the same schedule attached again first;
/// it is brought back to the saved epoch. On any refusal nothing changes.
///
/// # Safety
/// `opt` a live handle or NULL; `bytes` NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_checkpoint_load(
    opt: *mut gradstep_optimizer,
    bytes: *const u8,
    len: usize,
) -> gradstep_status {
    guard(|| {
        // SAFETY: looked up in the registry.
        let o = unsafe { registry::get(opt, Kind::Optimizer)? };
        let b = Raw::new(bytes, len)?;
        // The params are written last, from the decoded copy: `bytes` must not be one.
        let mut written = vec_with_capacity(o.tensors.len())?;
        written.extend(o.tensors.iter().map(|t| t.buffers.spans(t.n)[0]));
        disjoint(&written, &[b.span()])?;
        // SAFETY: checked non-NULL, aligned and bounded; only read, and disjoint from
        // the params the commit writes.
        let b = unsafe { b.slice() };
        let body = b.len().checked_sub(4).ok_or(GRADSTEP_BAD_CHECKPOINT)?;
        let mut r = Reader { buf: b, at: 0 };
        if r.take(4)? != MAGIC {
            return Err(GRADSTEP_BAD_CHECKPOINT);
        }
        if r.u16()? != VERSION {
            return Err(crate::status::GRADSTEP_CHECKPOINT_VERSION);
        }
        let stored = u32::from_le_bytes(b[body..].try_into().map_err(|_| GRADSTEP_BAD_CHECKPOINT)?);
        if crc32(&b[..body]) != stored {
            return Err(GRADSTEP_BAD_CHECKPOINT);
        }
        if u32::from(r.u16()?) != o.element {
            return Err(crate::status::GRADSTEP_CHECKPOINT_WRONG_TYPE);
        }
        if r.u32()? as usize != o.groups.len() || r.u32()? as usize != o.tensors.len() {
            return Err(crate::status::GRADSTEP_CHECKPOINT_MISMATCH);
        }
        let element = element_of(o);
        // Decode everything before changing anything.
        let mut groups = Vec::with_capacity(o.groups.len());
        for g in &o.groups {
            let lr = r.f64()?;
            let initial = r.f64()?;
            let momentum = r.f64()?;
            let flags = r.u64()?;
            let epoch = r.u64()? as i64;
            let best = r.f64()?;
            let (bad, cooldown, plateau_epoch) = (r.u64()?, r.u64()?, r.u64()?);
            let rule_bytes = r.block()?;
            let slots = checkpoint::peek(rule_bytes)?.slots;
            let rule = if o.element == GRADSTEP_F32 {
                decode_tensor::<f32>(rule_bytes, 0, slots)?.0
            } else {
                decode_tensor::<f64>(rule_bytes, 0, slots)?.0
            };
            if rule.id() != g.rule.id() {
                return Err(crate::status::GRADSTEP_CHECKPOINT_WRONG_RULE);
            }
            let group = Group {
                lr,
                initial_lr: (flags & 1 != 0).then_some(initial),
                momentum: (flags & 2 != 0).then_some(momentum),
            };
            if !(lr.is_finite() && lr >= 0.0) {
                return Err(GRADSTEP_BAD_CHECKPOINT);
            }
            let schedule = if flags & 4 != 0 {
                let (origin, start_lr) = g
                    .origin
                    .as_ref()
                    .ok_or(crate::status::GRADSTEP_CHECKPOINT_MISMATCH)?;
                let position = if flags & 8 != 0 {
                    let mut p = match origin {
                        Running::Plateau(p) => *p,
                        _ => return Err(crate::status::GRADSTEP_CHECKPOINT_MISMATCH),
                    };
                    (p.best, p.num_bad_epochs, p.cooldown_counter, p.last_epoch) =
                        (best, bad, cooldown, plateau_epoch);
                    Position::Plateau(p)
                } else {
                    Position::Epoch(epoch)
                };
                Some(Running::replay(origin, *start_lr, position)?)
            } else {
                None
            };
            groups.push((rule, group, schedule));
        }
        let mut tensors = Vec::with_capacity(o.tensors.len());
        for t in &o.tensors {
            if r.u32()? as usize != t.group {
                return Err(crate::status::GRADSTEP_CHECKPOINT_MISMATCH);
            }
            r.u32()?;
            let bytes = r.block()?;
            let header = checkpoint::peek(bytes)?;
            if header.n != t.n as u64 || header.element != element || !header.has_params {
                return Err(crate::status::GRADSTEP_CHECKPOINT_MISMATCH);
            }
            let (rule, scalars, decoded) = if o.element == GRADSTEP_F32 {
                let (rule, s, st, p) = decode_tensor::<f32>(bytes, t.n, header.slots)?;
                (rule, s, Decoded::F32(st, p))
            } else {
                let (rule, s, st, p) = decode_tensor::<f64>(bytes, t.n, header.slots)?;
                (rule, s, Decoded::F64(st, p))
            };
            if rule != groups[t.group].0 {
                return Err(GRADSTEP_BAD_CHECKPOINT);
            }
            tensors.push((scalars, decoded));
        }
        if r.at != body {
            return Err(GRADSTEP_BAD_CHECKPOINT);
        }
        // Commit.
        for (g, (rule, group, schedule)) in o.groups.iter_mut().zip(groups) {
            (g.rule, g.group, g.schedule) = (rule, group, schedule);
        }
        for (t, (scalars, decoded)) in o.tensors.iter_mut().zip(tensors) {
            t.scalars = scalars;
            match (&mut t.buffers, decoded) {
                (Buffers::F32 { params, state, .. }, Decoded::F32(st, p)) => {
                    *state = st;
                    // SAFETY: registered non-NULL, aligned and valid for `n` elements.
                    unsafe { core::slice::from_raw_parts_mut(*params, t.n) }.copy_from_slice(&p);
                }
                (Buffers::F64 { params, state, .. }, Decoded::F64(st, p)) => {
                    *state = st;
                    // SAFETY: as above.
                    unsafe { core::slice::from_raw_parts_mut(*params, t.n) }.copy_from_slice(&p);
                }
                _ => return Err(GRADSTEP_BAD_CHECKPOINT),
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::rules::{GRADSTEP_RULE_ADAM, gradstep_rule_default};
    use crate::status::{GRADSTEP_INTERNAL_ERROR, GRADSTEP_OK};

    /// An Adam handle over two tensors (params and grads leaked so they outlive it),
    /// stepped a few times, and its checkpoint.
    fn handle() -> (*mut gradstep_optimizer, &'static mut [f32], Vec<u8>) {
        let w: &'static mut [f32] = Box::leak(vec![0.5f32; 7].into_boxed_slice());
        let b: &'static mut [f32] = Box::leak(vec![-1.0f32; 3].into_boxed_slice());
        let g: &'static [f32] = Box::leak(vec![0.25f32; 7].into_boxed_slice());
        let gb: &'static [f32] = Box::leak(vec![-0.5f32; 3].into_boxed_slice());
        let mut opt = core::ptr::null_mut();
        // SAFETY: a zeroed rule is a valid value to overwrite.
        let mut adam: gradstep_rule = unsafe { core::mem::zeroed() };
        let mut group = 0;
        // SAFETY: valid pointers throughout; the buffers live forever.
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
                gradstep_optimizer_add_params_f32(opt, 0, w.as_mut_ptr(), g.as_ptr(), 7),
                GRADSTEP_OK
            );
            assert_eq!(
                gradstep_optimizer_add_params_f32(opt, group, b.as_mut_ptr(), gb.as_ptr(), 3),
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
            (opt, w, bytes)
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
            let (opt, w, good) = handle();
            let before = w.to_vec();
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
                    prop_assert_eq!(&w[..], &before[..]);
                } else {
                    prop_assert_eq!(&bytes, &good, "a damaged checkpoint was accepted");
                }
            }
            // The intact checkpoint still loads.
            // SAFETY: as above.
            let status = unsafe { gradstep_optimizer_checkpoint_load(opt, good.as_ptr(), good.len()) };
            prop_assert_eq!(status, GRADSTEP_OK);
            // SAFETY: a live handle.
            prop_assert_eq!(unsafe { gradstep_optimizer_free(opt) }, GRADSTEP_OK);
        }
    }
}
