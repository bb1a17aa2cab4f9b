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

/// The bytes `ptr[..n]` covers, as `(start address, length)`.
pub(crate) fn span<T>(ptr: *const T, n: usize) -> (usize, usize) {
    (ptr as usize, n.saturating_mul(size_of::<T>()))
}

/// Whether two byte spans share a byte (empty spans share none).
pub(crate) fn overlap(a: (usize, usize), b: (usize, usize)) -> bool {
    a.1 > 0 && b.1 > 0 && a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
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

/// `count` caller slices given as parallel arrays of pointers and lengths, each checked
/// like [`slice_mut`], and refused with `GRADSTEP_OVERLAPPING_BUFFERS` if any two
/// overlap (two `&mut` to the same memory would be undefined behaviour).
///
/// # Safety
/// `ptrs` and `lens` must be NULL or valid for `count` elements, and every slice that
/// passes the checks valid for reads and writes of its length and otherwise unaliased.
pub(crate) unsafe fn slices_mut<'a, T>(
    ptrs: *const *mut T,
    lens: *const usize,
    count: usize,
) -> Result<Vec<&'a mut [T]>, gradstep_status> {
    // SAFETY: the caller's contract for the two arrays.
    let (ptrs, lens) = unsafe { (slice(ptrs, count)?, slice(lens, count)?) };
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(count);
    for (&p, &n) in ptrs.iter().zip(lens) {
        check(p.cast_const())?;
        let bytes = n
            .checked_mul(size_of::<T>())
            .ok_or(crate::status::GRADSTEP_LENGTH_MISMATCH)?;
        if bytes > 0 {
            spans.push((p as usize, bytes));
        }
    }
    spans.sort_unstable();
    if spans
        .windows(2)
        .any(|w| w[0].0.saturating_add(w[0].1) > w[1].0)
    {
        return Err(crate::status::GRADSTEP_OVERLAPPING_BUFFERS);
    }
    let mut out = Vec::with_capacity(count);
    for (&p, &n) in ptrs.iter().zip(lens) {
        // SAFETY: checked non-NULL, aligned and disjoint from the others above; valid
        // per the caller's contract.
        out.push(unsafe { slice_mut(p, n)? });
    }
    Ok(out)
}

/// Like [`slices_mut`], for slices that are only read (overlap is then harmless).
///
/// # Safety
/// As for [`slices_mut`], for reads.
pub(crate) unsafe fn slices<'a, T>(
    ptrs: *const *const T,
    lens: *const usize,
    count: usize,
) -> Result<Vec<&'a [T]>, gradstep_status> {
    // SAFETY: the caller's contract for the two arrays and every slice.
    let (ptrs, lens) = unsafe { (slice(ptrs, count)?, slice(lens, count)?) };
    ptrs.iter()
        .zip(lens)
        // SAFETY: as above.
        .map(|(&p, &n)| unsafe { slice(p, n) })
        .collect()
}
