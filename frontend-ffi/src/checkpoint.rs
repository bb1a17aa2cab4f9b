//! Checkpoints from C: save a rule's complete state (rule, hyperparameters, scalar
//! state, state buffer, optionally the params) into a caller-provided byte buffer, and
//! restore it. The format is the kernel crate's `gradstep::checkpoint` (versioned,
//! little-endian, CRC-32; documented there and in the README).
//!
//! `gradstep_checkpoint_len`, `gradstep_checkpoint_save_f32`/`_f64` and
//! `gradstep_checkpoint_load_f32`/`_f64`, for every rule; `gradstep_checkpoint_peek`
//! reads a header. A truncated, corrupted, wrong-version, wrong-rule or wrong-type
//! checkpoint is refused with its status, and nothing is written.

use gradstep::checkpoint::{self, Element};

use crate::boundary::{Raw, Span, check, disjoint, guard, note, read, vec_with_capacity};
use crate::rules::{
    element_type, from_any, gradstep_element, gradstep_rule, gradstep_rule_kind, gradstep_scalars,
    scalars_from_c, scalars_to_c, to_any,
};
use crate::status::{
    GRADSTEP_CHECKPOINT_WRONG_RULE, GRADSTEP_LENGTH_MISMATCH, GRADSTEP_LENGTH_TOO_LARGE,
    GRADSTEP_STATE_LAYOUT, gradstep_status,
};

/// What [`gradstep_checkpoint_peek`] reads from a checkpoint's header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct gradstep_checkpoint_info {
    /// Format version.
    pub version: u32,
    /// The rule's kind (a `GRADSTEP_RULE_*` constant).
    pub rule: u32,
    /// Element type: `GRADSTEP_F32` or `GRADSTEP_F64`.
    pub element: u32,
    /// Number of state buffers of `n` elements (the state length is `slots · n`).
    pub slots: u32,
    /// Parameter count.
    pub n: u64,
    /// Whether the params are included.
    pub has_params: u8,
    /// The checkpoint's length in bytes.
    pub len: u64,
}

/// Reads a checkpoint's header (without checking its checksum) so that buffers can be
/// sized before [`gradstep_checkpoint_load_f32`]ing it.
///
/// # Safety
/// `bytes` must be NULL or valid for `len` bytes; `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_checkpoint_peek(
    bytes: *const u8,
    len: usize,
    out: *mut gradstep_checkpoint_info,
) -> gradstep_status {
    guard(|| {
        // SAFETY: checked non-NULL, aligned and bounded; readable per the caller's
        // contract, and only read.
        let b = unsafe { Raw::new(bytes, len)?.slice() };
        check(out.cast_const())?;
        disjoint(&[Span::one(out)], &[Span::of(bytes, len)])?;
        let h = checkpoint::peek(b)?;
        let info = gradstep_checkpoint_info {
            version: u32::from(h.version),
            rule: h.rule as u32,
            element: h.element as u32,
            slots: u32::try_from(h.slots).map_err(|_| GRADSTEP_STATE_LAYOUT)?,
            n: h.n,
            has_params: u8::from(h.has_params),
            len: h.len,
        };
        // SAFETY: non-NULL and aligned (checked); writable per the caller's contract.
        unsafe { out.write(info) };
        Ok(())
    })
}

/// The length of a checkpoint of `rule` over `n` parameters of type `element`, with
/// the params if `with_params` is non-zero. A length beyond `PTRDIFF_MAX` bytes (or
/// beyond `SIZE_MAX`) is `GRADSTEP_LENGTH_TOO_LARGE`, with nothing written.
///
/// # Safety
/// `rule` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_checkpoint_len(
    rule: *const gradstep_rule,
    element: gradstep_element,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; `read` rejects NULL and misalignment.
        let rule_span = Span::one(rule);
        let rule = to_any(&unsafe { read(rule)? })?;
        check(out_len.cast_const())?;
        disjoint(&[Span::one(out_len)], &[rule_span])?;
        let element = element_type(element)?;
        rule.validate()?;
        let len = rule.encoded_len(element, n, with_params != 0)?;
        // No object holds more than PTRDIFF_MAX bytes: a save into it could not exist.
        if len > isize::MAX as usize {
            return Err(note(
                GRADSTEP_LENGTH_TOO_LARGE,
                format_args!("checkpoint of {len} bytes: more than PTRDIFF_MAX"),
            ));
        }
        // SAFETY: non-NULL and aligned (checked); writable.
        unsafe { out_len.write(len) };
        Ok(())
    })
}

/// `state` as `slots` slices of `n`, or `GRADSTEP_STATE_LAYOUT`.
fn split<T>(flat: &[T], slots: usize, n: usize) -> Result<Vec<&[T]>, gradstep_status> {
    if slots.checked_mul(n) != Some(flat.len()) {
        return Err(GRADSTEP_STATE_LAYOUT);
    }
    let mut out = vec_with_capacity(slots)?;
    out.extend((0..slots).map(|k| &flat[k * n..(k + 1) * n]));
    Ok(out)
}

/// `state` as `slots` exclusive slices of `n`, or `GRADSTEP_STATE_LAYOUT`.
fn split_mut<T>(flat: &mut [T], slots: usize, n: usize) -> Result<Vec<&mut [T]>, gradstep_status> {
    if slots.checked_mul(n) != Some(flat.len()) {
        return Err(GRADSTEP_STATE_LAYOUT);
    }
    let mut out = vec_with_capacity(slots)?;
    let mut rest = flat;
    for _ in 0..slots {
        let (head, tail) = rest.split_at_mut(n);
        out.push(head);
        rest = tail;
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
unsafe fn save<T: Element>(
    rule: *const gradstep_rule,
    scalars: *const gradstep_scalars,
    state: *const T,
    state_len: usize,
    params: *const T,
    n: usize,
    out: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; `read` rejects NULL and misalignment.
        let rule_span = Span::one(rule);
        let rule = to_any(&unsafe { read(rule)? })?;
        // SAFETY: as above.
        let sc = scalars_from_c(&rule, &unsafe { read(scalars)? });
        let st = Raw::new(state, state_len)?;
        // `params` may be NULL: no params section.
        let p = (!params.is_null())
            .then(|| Raw::new(params, n))
            .transpose()?;
        let o = Raw::new_mut(out, capacity)?;
        check(written.cast_const())?;
        let read_spans = [
            st.span(),
            p.map_or(Span::EMPTY, Raw::span),
            rule_span,
            Span::one(scalars),
        ];
        disjoint(&[o.span(), Span::one(written)], &read_spans)?;
        rule.validate()?;
        // SAFETY: checked non-NULL, aligned and bounded; `out` is disjoint from the
        // buffers read; valid per the caller's contract.
        let (flat, params, buf) = unsafe { (st.slice(), p.map(|p| p.slice()), o.slice_mut()) };
        let slices = split(flat, rule.state_slots(), n)?;
        let len = checkpoint::encode_any(&rule, &sc, &slices, params, buf)?;
        // SAFETY: non-NULL and aligned (checked); disjoint from `out`; writable.
        unsafe { written.write(len) };
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)]
unsafe fn load<T: Element>(
    bytes: *const u8,
    len: usize,
    expect: gradstep_rule_kind,
    rule_out: *mut gradstep_rule,
    scalars_out: *mut gradstep_scalars,
    state: *mut T,
    state_len: usize,
    params: *mut T,
    n: usize,
) -> gradstep_status {
    guard(|| {
        let b = Raw::new(bytes, len)?;
        check(rule_out.cast_const())?;
        // SAFETY: the caller's contract; `read` rejects NULL and misalignment. Read
        // first so that the fields the rule does not use keep the caller's values.
        let mut c = unsafe { read(scalars_out.cast_const())? };
        let st = Raw::new_mut(state, state_len)?;
        // `params` may be NULL: restore the optimizer state alone.
        let p = (!params.is_null())
            .then(|| Raw::new_mut(params, n))
            .transpose()?;
        let written = [
            st.span(),
            p.map_or(Span::EMPTY, Raw::span),
            Span::one(rule_out),
            Span::one(scalars_out),
        ];
        disjoint(&written, &[b.span()])?;
        // SAFETY: checked non-NULL, aligned and bounded; every buffer written is
        // disjoint from every other one and from `bytes`; valid per the caller's
        // contract.
        let (b, flat, params) = unsafe { (b.slice(), st.slice_mut(), p.map(|p| p.slice_mut())) };
        let header = checkpoint::peek(b)?;
        if expect != 0 && u32::from(header.rule as u16) != expect {
            return Err(GRADSTEP_CHECKPOINT_WRONG_RULE);
        }
        if header.n != n as u64 {
            return Err(GRADSTEP_LENGTH_MISMATCH);
        }
        let mut slices = split_mut(flat, header.slots, n)?;
        let (rule, sc) = checkpoint::decode_any::<T>(b, &mut slices, params)?;
        let rule = from_any(&rule)?;
        scalars_to_c(&sc, &mut c);
        // SAFETY: non-NULL and aligned (checked); writable; disjoint from the slices.
        unsafe {
            rule_out.write(rule);
            scalars_out.write(c);
        }
        Ok(())
    })
}

/// Writes a checkpoint of `rule`, its scalar state, the `float` state (`state_len`
/// elements: the rule's slices of `n`) and, unless `params` is NULL, the `n` params
/// into `out[..capacity]`, and its length into `*written`. Refused, with nothing
/// written: `out` too small (`GRADSTEP_BUFFER_TOO_SMALL`), `out` or `written`
/// overlapping the state or params, and the step functions' refusals.
///
/// # Safety
/// Each pointer must be NULL (`params` may be) or valid for its length (`state`:
/// `state_len`, `params`: `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_checkpoint_save_f32(
    rule: *const gradstep_rule,
    scalars: *const gradstep_scalars,
    state: *const f32,
    state_len: usize,
    params: *const f32,
    n: usize,
    out: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        save(
            rule, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// As [`gradstep_checkpoint_save_f32`], for `double` state and params.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_checkpoint_save_f64(
    rule: *const gradstep_rule,
    scalars: *const gradstep_scalars,
    state: *const f64,
    state_len: usize,
    params: *const f64,
    n: usize,
    out: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        save(
            rule, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of `float` state: the rule into `*rule_out`, the scalar state
/// into `*scalars_out` (fields the rule does not use keep their values), the state into
/// `state[..state_len]` (size it with `gradstep_checkpoint_peek`: `slots · n`) and,
/// unless `params` is NULL, the params into `params[..n]`. With `expect` non-zero the
/// checkpoint must hold that rule kind (`GRADSTEP_CHECKPOINT_WRONG_RULE` otherwise); 0
/// accepts any rule. Refused, with nothing written: a damaged, wrong-version,
/// wrong-rule or wrong-type checkpoint, lengths other than the checkpoint's, and
/// outputs that overlap each other or `bytes`.
///
/// # Safety
/// Each pointer must be NULL (`params` may be) or valid for its length (`bytes`: `len`,
/// `state`: `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    expect: gradstep_rule_kind,
    rule_out: *mut gradstep_rule,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load(
            bytes,
            len,
            expect,
            rule_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// As [`gradstep_checkpoint_load_f32`], for `double` state and params.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    expect: gradstep_rule_kind,
    rule_out: *mut gradstep_rule,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load(
            bytes,
            len,
            expect,
            rule_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}
