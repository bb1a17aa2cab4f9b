//! Checkpoints from C: save an optimizer's complete state (rule, hyperparameters,
//! scalar state, state buffer, optionally the params) into a caller-provided byte
//! buffer, and restore it. The format is the kernel crate's `gradstep::checkpoint`
//! (versioned, little-endian, CRC-32; documented there and in the README).
//!
//! For each rule `R`: `gradstep_R_checkpoint_len`, `gradstep_R_checkpoint_save_f32`/
//! `_f64` and `gradstep_R_checkpoint_load_f32`/`_f64`; for any checkpoint,
//! `gradstep_checkpoint_peek`. A truncated, corrupted, wrong-version, wrong-rule or
//! wrong-type checkpoint is refused with its status, and nothing is written.

use gradstep::checkpoint::{self, Checkpointable, Element, ElementType};
use gradstep::{Adadelta, Adagrad, Adam, AdamW, Adamax, Asgd, NAdam, RAdam, RmsProp, Rprop, Sgd};

use crate::boundary::{check, guard, slice, slice_mut};
use crate::rules::{
    CScalars, gradstep_adadelta, gradstep_adagrad, gradstep_adam, gradstep_adamax, gradstep_adamw,
    gradstep_asgd, gradstep_nadam, gradstep_radam, gradstep_rmsprop, gradstep_rprop,
    gradstep_scalars, gradstep_sgd, read,
};
use crate::status::{GRADSTEP_STATE_LAYOUT, GRADSTEP_UNKNOWN_KIND, gradstep_status};

/// What [`gradstep_checkpoint_peek`] reads from a checkpoint's header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct gradstep_checkpoint_info {
    /// Format version.
    pub version: u32,
    /// Rule id: 1 sgd, 2 adam, 3 adamw, 4 adamax, 5 nadam, 6 radam, 7 adagrad,
    /// 8 adadelta, 9 rmsprop, 10 rprop, 11 asgd.
    pub rule: u32,
    /// Element type: 1 = float, 2 = double.
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
/// sized before [`load`](crate)ing it.
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
        // SAFETY: the caller's contract; `slice` and `check` reject NULL.
        let b = unsafe { slice(bytes, len)? };
        check(out.cast_const())?;
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

/// Splits a flat state buffer into `slots` slices of `n`.
fn split<T>(flat: &mut [T], slots: usize, n: usize) -> Result<Vec<&mut [T]>, gradstep_status> {
    if slots.checked_mul(n) != Some(flat.len()) {
        return Err(GRADSTEP_STATE_LAYOUT);
    }
    let mut out = Vec::with_capacity(slots);
    let mut rest = flat;
    for _ in 0..slots {
        let (head, tail) = rest.split_at_mut(n);
        out.push(head);
        rest = tail;
    }
    Ok(out)
}

unsafe fn len_of<R: Checkpointable + From<C>, C: Copy>(
    hyper: *const C,
    element: u32,
    n: usize,
    with_params: u8,
    out: *mut usize,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; `read` and `check` reject NULL.
        let rule = R::from(unsafe { read(hyper)? });
        check(out.cast_const())?;
        let element = match element {
            1 => ElementType::F32,
            2 => ElementType::F64,
            _ => return Err(GRADSTEP_UNKNOWN_KIND),
        };
        rule.validate()?;
        let len = checkpoint::encoded_len(&rule, element, n, with_params != 0)?;
        // SAFETY: non-NULL and aligned (checked); writable.
        unsafe { out.write(len) };
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)]
unsafe fn save<R, C, T>(
    hyper: *const C,
    scalars: *const gradstep_scalars,
    state: *const T,
    state_len: usize,
    params: *const T,
    n: usize,
    out: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> gradstep_status
where
    R: Checkpointable + From<C>,
    R::Scalars: CScalars,
    C: Copy,
    T: Element,
{
    guard(|| {
        // SAFETY: the caller's contract; every pointer is checked before use, and
        // `params` may be NULL (no params section).
        let rule = R::from(unsafe { read(hyper)? });
        let sc = R::Scalars::from_c(&unsafe { read(scalars)? });
        let flat = unsafe { slice(state, state_len)? };
        let params = if params.is_null() {
            None
        } else {
            Some(unsafe { slice(params, n)? })
        };
        let buf = unsafe { slice_mut(out, capacity)? };
        check(written.cast_const())?;
        rule.validate()?;
        let slots = rule.state_slots();
        if slots.checked_mul(n) != Some(flat.len()) {
            return Err(GRADSTEP_STATE_LAYOUT);
        }
        let slices: Vec<&[T]> = (0..slots).map(|k| &flat[k * n..(k + 1) * n]).collect();
        let len = checkpoint::encode(&rule, &sc, &slices, params, buf)?;
        // SAFETY: non-NULL and aligned (checked); writable.
        unsafe { written.write(len) };
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)]
unsafe fn load<R, C, T>(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut C,
    scalars_out: *mut gradstep_scalars,
    state: *mut T,
    state_len: usize,
    params: *mut T,
    n: usize,
) -> gradstep_status
where
    R: Checkpointable,
    R::Scalars: CScalars,
    C: Copy + From<R>,
    T: Element,
{
    guard(|| {
        // SAFETY: the caller's contract; every pointer is checked before use, and
        // `params` may be NULL (restore the optimizer state alone).
        let b = unsafe { slice(bytes, len)? };
        check(hyper_out.cast_const())?;
        check(scalars_out.cast_const())?;
        let flat = unsafe { slice_mut(state, state_len)? };
        let params = if params.is_null() {
            None
        } else {
            Some(unsafe { slice_mut(params, n)? })
        };
        let header = checkpoint::peek(b)?;
        if header.n != n as u64 {
            return Err(crate::status::GRADSTEP_LENGTH_MISMATCH);
        }
        let mut slices = split(flat, header.slots, n)?;
        let (rule, sc) = checkpoint::decode::<R, T>(b, &mut slices, params)?;
        // SAFETY: non-NULL and aligned (checked); writable; a read-modify-write so that
        // the fields a rule does not use keep the caller's values.
        unsafe {
            hyper_out.write(C::from(rule));
            let mut c = scalars_out.read();
            sc.to_c(&mut c);
            scalars_out.write(c);
        }
        Ok(())
    })
}

/// The length of a checkpoint of this rule over `n` parameters, `element` 1 (float) or
/// 2 (double), with the params if `with_params` is non-zero.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_sgd_checkpoint_len(
    hyper: *const gradstep_sgd,
    element: u32,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { len_of::<Sgd, _>(hyper, element, n, with_params, out_len) }
}

/// Writes a checkpoint of `float` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_sgd_checkpoint_save_f32(
    hyper: *const gradstep_sgd,
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
        save::<Sgd, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_sgd_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_sgd,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Sgd, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// Writes a checkpoint of `double` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_sgd_checkpoint_save_f64(
    hyper: *const gradstep_sgd,
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
        save::<Sgd, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_sgd_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_sgd,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Sgd, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// The length of a checkpoint of this rule over `n` parameters, `element` 1 (float) or
/// 2 (double), with the params if `with_params` is non-zero.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adam_checkpoint_len(
    hyper: *const gradstep_adam,
    element: u32,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { len_of::<Adam, _>(hyper, element, n, with_params, out_len) }
}

/// Writes a checkpoint of `float` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adam_checkpoint_save_f32(
    hyper: *const gradstep_adam,
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
        save::<Adam, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adam_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_adam,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Adam, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// Writes a checkpoint of `double` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adam_checkpoint_save_f64(
    hyper: *const gradstep_adam,
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
        save::<Adam, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adam_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_adam,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Adam, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// The length of a checkpoint of this rule over `n` parameters, `element` 1 (float) or
/// 2 (double), with the params if `with_params` is non-zero.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adamw_checkpoint_len(
    hyper: *const gradstep_adamw,
    element: u32,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { len_of::<AdamW, _>(hyper, element, n, with_params, out_len) }
}

/// Writes a checkpoint of `float` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adamw_checkpoint_save_f32(
    hyper: *const gradstep_adamw,
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
        save::<AdamW, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adamw_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_adamw,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<AdamW, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// Writes a checkpoint of `double` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adamw_checkpoint_save_f64(
    hyper: *const gradstep_adamw,
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
        save::<AdamW, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adamw_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_adamw,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<AdamW, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// The length of a checkpoint of this rule over `n` parameters, `element` 1 (float) or
/// 2 (double), with the params if `with_params` is non-zero.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adamax_checkpoint_len(
    hyper: *const gradstep_adamax,
    element: u32,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { len_of::<Adamax, _>(hyper, element, n, with_params, out_len) }
}

/// Writes a checkpoint of `float` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adamax_checkpoint_save_f32(
    hyper: *const gradstep_adamax,
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
        save::<Adamax, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adamax_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_adamax,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Adamax, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// Writes a checkpoint of `double` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adamax_checkpoint_save_f64(
    hyper: *const gradstep_adamax,
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
        save::<Adamax, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adamax_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_adamax,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Adamax, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// The length of a checkpoint of this rule over `n` parameters, `element` 1 (float) or
/// 2 (double), with the params if `with_params` is non-zero.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_nadam_checkpoint_len(
    hyper: *const gradstep_nadam,
    element: u32,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { len_of::<NAdam, _>(hyper, element, n, with_params, out_len) }
}

/// Writes a checkpoint of `float` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_nadam_checkpoint_save_f32(
    hyper: *const gradstep_nadam,
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
        save::<NAdam, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_nadam_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_nadam,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<NAdam, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// Writes a checkpoint of `double` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_nadam_checkpoint_save_f64(
    hyper: *const gradstep_nadam,
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
        save::<NAdam, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_nadam_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_nadam,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<NAdam, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// The length of a checkpoint of this rule over `n` parameters, `element` 1 (float) or
/// 2 (double), with the params if `with_params` is non-zero.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_radam_checkpoint_len(
    hyper: *const gradstep_radam,
    element: u32,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { len_of::<RAdam, _>(hyper, element, n, with_params, out_len) }
}

/// Writes a checkpoint of `float` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_radam_checkpoint_save_f32(
    hyper: *const gradstep_radam,
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
        save::<RAdam, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_radam_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_radam,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<RAdam, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// Writes a checkpoint of `double` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_radam_checkpoint_save_f64(
    hyper: *const gradstep_radam,
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
        save::<RAdam, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_radam_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_radam,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<RAdam, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// The length of a checkpoint of this rule over `n` parameters, `element` 1 (float) or
/// 2 (double), with the params if `with_params` is non-zero.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adagrad_checkpoint_len(
    hyper: *const gradstep_adagrad,
    element: u32,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { len_of::<Adagrad, _>(hyper, element, n, with_params, out_len) }
}

/// Writes a checkpoint of `float` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adagrad_checkpoint_save_f32(
    hyper: *const gradstep_adagrad,
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
        save::<Adagrad, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adagrad_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_adagrad,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Adagrad, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// Writes a checkpoint of `double` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adagrad_checkpoint_save_f64(
    hyper: *const gradstep_adagrad,
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
        save::<Adagrad, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adagrad_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_adagrad,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Adagrad, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// The length of a checkpoint of this rule over `n` parameters, `element` 1 (float) or
/// 2 (double), with the params if `with_params` is non-zero.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adadelta_checkpoint_len(
    hyper: *const gradstep_adadelta,
    element: u32,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { len_of::<Adadelta, _>(hyper, element, n, with_params, out_len) }
}

/// Writes a checkpoint of `float` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adadelta_checkpoint_save_f32(
    hyper: *const gradstep_adadelta,
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
        save::<Adadelta, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adadelta_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_adadelta,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Adadelta, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// Writes a checkpoint of `double` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adadelta_checkpoint_save_f64(
    hyper: *const gradstep_adadelta,
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
        save::<Adadelta, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_adadelta_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_adadelta,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Adadelta, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// The length of a checkpoint of this rule over `n` parameters, `element` 1 (float) or
/// 2 (double), with the params if `with_params` is non-zero.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rmsprop_checkpoint_len(
    hyper: *const gradstep_rmsprop,
    element: u32,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { len_of::<RmsProp, _>(hyper, element, n, with_params, out_len) }
}

/// Writes a checkpoint of `float` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_rmsprop_checkpoint_save_f32(
    hyper: *const gradstep_rmsprop,
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
        save::<RmsProp, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_rmsprop_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_rmsprop,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<RmsProp, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// Writes a checkpoint of `double` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_rmsprop_checkpoint_save_f64(
    hyper: *const gradstep_rmsprop,
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
        save::<RmsProp, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_rmsprop_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_rmsprop,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<RmsProp, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// The length of a checkpoint of this rule over `n` parameters, `element` 1 (float) or
/// 2 (double), with the params if `with_params` is non-zero.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rprop_checkpoint_len(
    hyper: *const gradstep_rprop,
    element: u32,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { len_of::<Rprop, _>(hyper, element, n, with_params, out_len) }
}

/// Writes a checkpoint of `float` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_rprop_checkpoint_save_f32(
    hyper: *const gradstep_rprop,
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
        save::<Rprop, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_rprop_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_rprop,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Rprop, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// Writes a checkpoint of `double` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_rprop_checkpoint_save_f64(
    hyper: *const gradstep_rprop,
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
        save::<Rprop, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_rprop_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_rprop,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Rprop, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// The length of a checkpoint of this rule over `n` parameters, `element` 1 (float) or
/// 2 (double), with the params if `with_params` is non-zero.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_asgd_checkpoint_len(
    hyper: *const gradstep_asgd,
    element: u32,
    n: usize,
    with_params: u8,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { len_of::<Asgd, _>(hyper, element, n, with_params, out_len) }
}

/// Writes a checkpoint of `float` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_asgd_checkpoint_save_f32(
    hyper: *const gradstep_asgd,
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
        save::<Asgd, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_asgd_checkpoint_load_f32(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_asgd,
    scalars_out: *mut gradstep_scalars,
    state: *mut f32,
    state_len: usize,
    params: *mut f32,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Asgd, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}

/// Writes a checkpoint of `double` state (and the params unless `params` is NULL) into
/// `out[..capacity]` and its length into `*written`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`state`: `state_len`, `params`:
/// `n`, `out`: `capacity`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_asgd_checkpoint_save_f64(
    hyper: *const gradstep_asgd,
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
        save::<Asgd, _, _>(
            hyper, scalars, state, state_len, params, n, out, capacity, written,
        )
    }
}

/// Restores a checkpoint of this rule: the hyperparameters into `*hyper_out`, the
/// scalar state into `*scalars_out`, the state into `state[..state_len]` and, unless
/// `params` is NULL, the params into `params[..n]`. On any failure nothing is written.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`bytes`: `len`, `state`:
/// `state_len`, `params`: `n`, the others one element).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gradstep_asgd_checkpoint_load_f64(
    bytes: *const u8,
    len: usize,
    hyper_out: *mut gradstep_asgd,
    scalars_out: *mut gradstep_scalars,
    state: *mut f64,
    state_len: usize,
    params: *mut f64,
    n: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        load::<Asgd, _, _>(
            bytes,
            len,
            hyper_out,
            scalars_out,
            state,
            state_len,
            params,
            n,
        )
    }
}
