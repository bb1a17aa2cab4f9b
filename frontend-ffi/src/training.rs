//! Clipping, the non-finite check, dynamic loss scaling and gradient accumulation from C.
//! Gradients of a whole model are passed as parallel arrays: `grads[i]` points to
//! `lens[i]` elements, for `i < count`.

use gradstep::{
    Accumulator, ClipNorm, ClipScope, GradScaler, NormType, Real, Reduction, ScalerState,
};

use crate::boundary::{Span, check, disjoint, guard, read, slices, slices_mut};
use crate::status::{GRADSTEP_UNKNOWN_KIND, gradstep_status};

unsafe fn clip_norm<T: Real>(
    grads: *const *mut T,
    lens: *const usize,
    count: usize,
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: u8,
    total_norm: *mut f64,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let mut g = unsafe { slices_mut(grads, lens, count, &[], &[Span::one(total_norm)])? };
        check(total_norm.cast_const())?;
        let norm = NormType::from_p(norm_type)?;
        let total = gradstep::clip_grad_norm(&mut g, max_norm, norm, error_if_nonfinite != 0)?;
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { total_norm.write(total.to_f64()) };
        Ok(())
    })
}

/// torch's `clip_grad_norm_` over `count` float gradients: the `norm_type`-norm (1, 2,
/// `INFINITY` or any p > 0) of all of them together is written to `*total_norm`, and
/// if it exceeds `max_norm` every gradient is scaled by `max_norm / (total + 1e-6)`.
/// With `error_if_nonfinite` a NaN/infinite total gives `GRADSTEP_NON_FINITE_NORM` and
/// changes nothing.
///
/// # Safety
/// `grads` and `lens` must be NULL or valid for `count` elements, each `grads[i]` NULL
/// or valid for `lens[i]` floats; `total_norm` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_clip_grad_norm_f32(
    grads: *const *mut f32,
    lens: *const usize,
    count: usize,
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: u8,
    total_norm: *mut f64,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe {
        clip_norm(
            grads,
            lens,
            count,
            max_norm,
            norm_type,
            error_if_nonfinite,
            total_norm,
        )
    }
}

/// As [`gradstep_clip_grad_norm_f32`], over doubles.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_clip_grad_norm_f64(
    grads: *const *mut f64,
    lens: *const usize,
    count: usize,
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: u8,
    total_norm: *mut f64,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe {
        clip_norm(
            grads,
            lens,
            count,
            max_norm,
            norm_type,
            error_if_nonfinite,
            total_norm,
        )
    }
}

unsafe fn per_slice<T: Real>(
    grads: *const *mut T,
    lens: *const usize,
    count: usize,
    max_norm: f64,
    norm_type: f64,
    keras: u8,
    error_if_nonfinite: u8,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let mut g = unsafe { slices_mut(grads, lens, count, &[], &[])? };
        let clip = ClipNorm {
            max_norm,
            norm_type: NormType::from_p(norm_type)?,
            error_if_nonfinite: error_if_nonfinite != 0,
            scope: if keras != 0 {
                ClipScope::PerSliceKeras
            } else {
                ClipScope::PerSlice
            },
        };
        clip.clip(&mut g)?;
        Ok(())
    })
}

/// Clips each gradient by its own norm (Keras' `clipnorm`): torch's formula per slice,
/// or with `keras` non-zero Keras' `g · max_norm / max(‖g‖, max_norm)`.
///
/// # Safety
/// As for [`gradstep_clip_grad_norm_f32`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_clip_grad_norm_per_slice_f32(
    grads: *const *mut f32,
    lens: *const usize,
    count: usize,
    max_norm: f64,
    norm_type: f64,
    keras: u8,
    error_if_nonfinite: u8,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe {
        per_slice(
            grads,
            lens,
            count,
            max_norm,
            norm_type,
            keras,
            error_if_nonfinite,
        )
    }
}

/// As [`gradstep_clip_grad_norm_per_slice_f32`], over doubles.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_clip_grad_norm_per_slice_f64(
    grads: *const *mut f64,
    lens: *const usize,
    count: usize,
    max_norm: f64,
    norm_type: f64,
    keras: u8,
    error_if_nonfinite: u8,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe {
        per_slice(
            grads,
            lens,
            count,
            max_norm,
            norm_type,
            keras,
            error_if_nonfinite,
        )
    }
}

unsafe fn norm_of<T: Real>(
    grads: *const *const T,
    lens: *const usize,
    count: usize,
    norm_type: f64,
    out: *mut f64,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (g, spans) = unsafe { slices(grads, lens, count)? };
        check(out.cast_const())?;
        disjoint(&[Span::one(out)], &spans)?;
        let total = gradstep::total_norm(&g, NormType::from_p(norm_type)?)?;
        // SAFETY: checked; writable.
        unsafe { out.write(total.to_f64()) };
        Ok(())
    })
}

/// The `norm_type`-norm of all the gradients together, without clipping (torch's
/// `get_total_norm`).
///
/// # Safety
/// As for [`gradstep_clip_grad_norm_f32`], for reads; `out` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_total_norm_f32(
    grads: *const *const f32,
    lens: *const usize,
    count: usize,
    norm_type: f64,
    out: *mut f64,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { norm_of(grads, lens, count, norm_type, out) }
}

/// As [`gradstep_total_norm_f32`], over doubles.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_total_norm_f64(
    grads: *const *const f64,
    lens: *const usize,
    count: usize,
    norm_type: f64,
    out: *mut f64,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { norm_of(grads, lens, count, norm_type, out) }
}

unsafe fn clip_value<T: Real>(
    grads: *const *mut T,
    lens: *const usize,
    count: usize,
    clip_value: f64,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let mut g = unsafe { slices_mut(grads, lens, count, &[], &[])? };
        gradstep::clip_grad_value(&mut g, clip_value)?;
        Ok(())
    })
}

/// torch's `clip_grad_value_`: clamps every gradient to `[-clip_value, clip_value]`.
///
/// # Safety
/// As for [`gradstep_clip_grad_norm_f32`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_clip_grad_value_f32(
    grads: *const *mut f32,
    lens: *const usize,
    count: usize,
    clip_value: f64,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { self::clip_value(grads, lens, count, clip_value) }
}

/// As [`gradstep_clip_grad_value_f32`], over doubles.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_clip_grad_value_f64(
    grads: *const *mut f64,
    lens: *const usize,
    count: usize,
    clip_value: f64,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { self::clip_value(grads, lens, count, clip_value) }
}

unsafe fn finite<T: Real>(
    grads: *const *const T,
    lens: *const usize,
    count: usize,
    all_finite: *mut u8,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (g, spans) = unsafe { slices(grads, lens, count)? };
        check(all_finite.cast_const())?;
        disjoint(&[Span::one(all_finite)], &spans)?;
        let ok = gradstep::all_finite_slices(&g);
        // SAFETY: checked; writable.
        unsafe { all_finite.write(u8::from(ok)) };
        Ok(())
    })
}

/// Writes 1 to `*all_finite` if no gradient element is NaN or infinite, else 0: the
/// check to skip a step on (optax `apply_if_finite`, `GradScaler`'s skipped steps).
///
/// # Safety
/// As for [`gradstep_clip_grad_norm_f32`], for reads; `all_finite` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_all_finite_f32(
    grads: *const *const f32,
    lens: *const usize,
    count: usize,
    all_finite: *mut u8,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { finite(grads, lens, count, all_finite) }
}

/// As [`gradstep_all_finite_f32`], over doubles.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_all_finite_f64(
    grads: *const *const f64,
    lens: *const usize,
    count: usize,
    all_finite: *mut u8,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { finite(grads, lens, count, all_finite) }
}

/// Dynamic loss scaling (torch `GradScaler`): the configuration.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_grad_scaler {
    /// Initial scale (65536).
    pub init_scale: f64,
    /// Growth after `growth_interval` finite steps (2).
    pub growth_factor: f64,
    /// Backoff on a non-finite step (0.5).
    pub backoff_factor: f64,
    /// Finite steps between growths (2000).
    pub growth_interval: u32,
}

/// Dynamic loss scaling: the state (plain data; checkpoint it with the rest).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_scaler_state {
    /// The current scale: multiply the loss by it before backpropagation.
    pub scale: f32,
    /// Finite steps since the last growth or backoff.
    pub growth_tracker: u32,
}

impl From<gradstep_grad_scaler> for GradScaler {
    fn from(c: gradstep_grad_scaler) -> Self {
        GradScaler {
            init_scale: c.init_scale,
            growth_factor: c.growth_factor,
            backoff_factor: c.backoff_factor,
            growth_interval: c.growth_interval,
        }
    }
}

impl From<gradstep_scaler_state> for ScalerState {
    fn from(c: gradstep_scaler_state) -> Self {
        ScalerState {
            scale: c.scale,
            growth_tracker: c.growth_tracker,
        }
    }
}

impl From<ScalerState> for gradstep_scaler_state {
    fn from(s: ScalerState) -> Self {
        gradstep_scaler_state {
            scale: s.scale,
            growth_tracker: s.growth_tracker,
        }
    }
}

/// torch's `GradScaler` defaults.
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_grad_scaler_default() -> gradstep_grad_scaler {
    let d = GradScaler::default();
    gradstep_grad_scaler {
        init_scale: d.init_scale,
        growth_factor: d.growth_factor,
        backoff_factor: d.backoff_factor,
        growth_interval: d.growth_interval,
    }
}

/// Validates the configuration and writes the initial state.
///
/// # Safety
/// `config` and `state` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_grad_scaler_init(
    config: *const gradstep_grad_scaler,
    state: *mut gradstep_scaler_state,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; checked before use.
        let c = GradScaler::from(unsafe { read(config)? });
        check(state.cast_const())?;
        disjoint(&[Span::one(state)], &[Span::one(config)])?;
        let s = c.init()?;
        // SAFETY: checked; writable.
        unsafe { state.write(s.into()) };
        Ok(())
    })
}

/// After a step: grows the scale after `growth_interval` finite steps in a row, backs
/// it off when `found_inf` is non-zero.
///
/// # Safety
/// `config` and `state` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_grad_scaler_update(
    config: *const gradstep_grad_scaler,
    state: *mut gradstep_scaler_state,
    found_inf: u8,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; checked before use.
        let c = GradScaler::from(unsafe { read(config)? });
        let mut s = ScalerState::from(unsafe { read(state.cast_const())? });
        disjoint(&[Span::one(state)], &[Span::one(config)])?;
        c.update(&mut s, found_inf != 0)?;
        // SAFETY: checked by `read`; writable.
        unsafe { state.write(s.into()) };
        Ok(())
    })
}

unsafe fn unscale<T: Real>(
    state: *const gradstep_scaler_state,
    grads: *const *mut T,
    lens: *const usize,
    count: usize,
    found_inf: *mut u8,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; checked before use.
        let s = ScalerState::from(unsafe { read(state)? });
        let mut g = unsafe {
            slices_mut(
                grads,
                lens,
                count,
                &[Span::one(state)],
                &[Span::one(found_inf)],
            )?
        };
        check(found_inf.cast_const())?;
        let inf = s.unscale(&mut g)?;
        // SAFETY: checked; writable.
        unsafe { found_inf.write(u8::from(inf)) };
        Ok(())
    })
}

/// Multiplies every gradient by 1/scale (as torch computes it) and writes 1 to
/// `*found_inf` if any result is NaN or infinite (skip the step then).
///
/// # Safety
/// As for [`gradstep_clip_grad_norm_f32`]; `state` valid for a read, `found_inf` for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_grad_scaler_unscale_f32(
    state: *const gradstep_scaler_state,
    grads: *const *mut f32,
    lens: *const usize,
    count: usize,
    found_inf: *mut u8,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { unscale(state, grads, lens, count, found_inf) }
}

/// As [`gradstep_grad_scaler_unscale_f32`], over doubles.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_grad_scaler_unscale_f64(
    state: *const gradstep_scaler_state,
    grads: *const *mut f64,
    lens: *const usize,
    count: usize,
    found_inf: *mut u8,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { unscale(state, grads, lens, count, found_inf) }
}

/// Gradient accumulation over micro-batches: the count of micro-batches in the
/// accumulation buffers. Zero-initialize it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct gradstep_accumulator {
    /// Micro-batches added since the last finish.
    pub count: u64,
}

unsafe fn accumulate<T: Real>(
    acc: *mut gradstep_accumulator,
    buffers: *const *mut T,
    grads: *const *const T,
    lens: *const usize,
    count: usize,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; checked before use.
        let mut a = Accumulator {
            count: unsafe { read(acc.cast_const())? }.count,
        };
        // The gradients are only read; the buffers, written, must overlap none of them
        // (checked by `slices_mut` before any `&mut` exists).
        let (g, reads) = unsafe { slices(grads, lens, count)? };
        let mut b = unsafe { slices_mut(buffers, lens, count, &reads, &[Span::one(acc)])? };
        a.add(&mut b, &g)?;
        // SAFETY: checked by `read`; writable.
        unsafe { acc.write(gradstep_accumulator { count: a.count }) };
        Ok(())
    })
}

/// Adds one micro-batch: `buffers[i] += grads[i]` (the first micro-batch copies, so the
/// buffers need no zeroing), for `lens[i]` elements each.
///
/// # Safety
/// `acc` valid for one element; `buffers`, `grads`, `lens` NULL or valid for `count`
/// elements, each `buffers[i]`/`grads[i]` valid for `lens[i]` elements.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_accumulate_f32(
    acc: *mut gradstep_accumulator,
    buffers: *const *mut f32,
    grads: *const *const f32,
    lens: *const usize,
    count: usize,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { accumulate(acc, buffers, grads, lens, count) }
}

/// As [`gradstep_accumulate_f32`], over doubles.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_accumulate_f64(
    acc: *mut gradstep_accumulator,
    buffers: *const *mut f64,
    grads: *const *const f64,
    lens: *const usize,
    count: usize,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { accumulate(acc, buffers, grads, lens, count) }
}

unsafe fn finish<T: Real>(
    acc: *mut gradstep_accumulator,
    buffers: *const *mut T,
    lens: *const usize,
    count: usize,
    mean: u8,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; checked before use.
        let mut a = Accumulator {
            count: unsafe { read(acc.cast_const())? }.count,
        };
        let mut b = unsafe { slices_mut(buffers, lens, count, &[], &[Span::one(acc)])? };
        let reduction = match mean {
            0 => Reduction::Sum,
            1 => Reduction::Mean,
            _ => return Err(GRADSTEP_UNKNOWN_KIND),
        };
        a.finish(&mut b, reduction);
        // SAFETY: checked by `read`; writable.
        unsafe { acc.write(gradstep_accumulator { count: a.count }) };
        Ok(())
    })
}

/// Ends a round: with `mean` = 1 divides the buffers by the number of micro-batches
/// (0: leaves the sum), and resets the count.
///
/// # Safety
/// As for [`gradstep_accumulate_f32`], without `grads`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_accumulate_finish_f32(
    acc: *mut gradstep_accumulator,
    buffers: *const *mut f32,
    lens: *const usize,
    count: usize,
    mean: u8,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { finish(acc, buffers, lens, count, mean) }
}

/// As [`gradstep_accumulate_finish_f32`], over doubles.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_accumulate_finish_f64(
    acc: *mut gradstep_accumulator,
    buffers: *const *mut f64,
    lens: *const usize,
    count: usize,
    mean: u8,
) -> gradstep_status {
    // SAFETY: forwarded.
    unsafe { finish(acc, buffers, lens, count, mean) }
}
