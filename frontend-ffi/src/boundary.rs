//! What every exported function does at the boundary: catch panics, check pointers.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::status::{
    GRADSTEP_INTERNAL_ERROR, GRADSTEP_MISALIGNED_POINTER, GRADSTEP_NULL_POINTER, GRADSTEP_OK,
    gradstep_status,
};

/// Runs `f`, turning its `Err` into the status and a panic into
/// `GRADSTEP_INTERNAL_ERROR`, so that no unwind crosses into C.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), gradstep_status>) -> gradstep_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => GRADSTEP_OK,
        Ok(Err(status)) => status,
        Err(_) => GRADSTEP_INTERNAL_ERROR,
    }
}

/// Checks that `ptr` is non-NULL and aligned for `T`.
pub(crate) fn check<T>(ptr: *const T) -> Result<(), gradstep_status> {
    if ptr.is_null() {
        Err(GRADSTEP_NULL_POINTER)
    } else if !ptr.is_aligned() {
        Err(GRADSTEP_MISALIGNED_POINTER)
    } else {
        Ok(())
    }
}

/// `ptr[..len]` as a shared slice, after [`check`].
///
/// # Safety
/// If `ptr` passes [`check`], it must be valid for reads of `len` elements for `'a`, and
/// not written through any other pointer meanwhile.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], gradstep_status> {
    check(ptr)?;
    // SAFETY: non-NULL and aligned (checked); valid for `len` reads (caller's contract).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `ptr[..len]` as an exclusive slice, after [`check`].
///
/// # Safety
/// If `ptr` passes [`check`], it must be valid for reads and writes of `len` elements
/// for `'a`, and not accessed through any other pointer meanwhile.
pub(crate) unsafe fn slice_mut<'a, T>(
    ptr: *mut T,
    len: usize,
) -> Result<&'a mut [T], gradstep_status> {
    check(ptr.cast_const())?;
    // SAFETY: non-NULL and aligned (checked); valid for `len` reads and writes and
    // unaliased (caller's contract).
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}
