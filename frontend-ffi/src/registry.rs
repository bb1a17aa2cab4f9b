//! Which handles are live. Every handle function looks its pointer up here before
//! touching it, so a freed, foreign or mistyped handle is a status, not a crash.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::status::{GRADSTEP_INVALID_HANDLE, GRADSTEP_NULL_POINTER, gradstep_status};

/// The kinds of handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Schedule,
    Optimizer,
}

fn live() -> MutexGuard<'static, HashMap<usize, Kind>> {
    static LIVE: OnceLock<Mutex<HashMap<usize, Kind>>> = OnceLock::new();
    // A panic while the lock was held cannot leave the map inconsistent (each operation
    // is one insert, lookup or removal), so a poisoned lock is still usable.
    LIVE.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Moves `value` to the heap, records it as live, and returns the handle.
pub(crate) fn register<T>(value: T, kind: Kind) -> *mut T {
    let ptr = Box::into_raw(Box::new(value));
    live().insert(ptr as usize, kind);
    ptr
}

/// The live handle `ptr` of `kind`, borrowed mutably.
///
/// # Safety
/// Handles must only be used from one thread at a time (the header says so).
pub(crate) unsafe fn get<'a, T>(ptr: *mut T, kind: Kind) -> Result<&'a mut T, gradstep_status> {
    if ptr.is_null() {
        return Err(GRADSTEP_NULL_POINTER);
    }
    if live().get(&(ptr as usize)) != Some(&kind) {
        return Err(GRADSTEP_INVALID_HANDLE);
    }
    // SAFETY: registered by `register` with this kind and not yet freed, so it is a
    // valid, uniquely owned `Box<T>` allocation; exclusive use is the caller's contract.
    Ok(unsafe { &mut *ptr })
}

/// Runs `f` on the live handle `ptr` of `kind`: the one way to reach a handle's value.
///
/// NULL is `GRADSTEP_NULL_POINTER`; a pointer that is not a live handle of `kind`
/// (freed, foreign, or of the other kind) is `GRADSTEP_INVALID_HANDLE`, and `f` does
/// not run. Otherwise `f`'s result is returned.
pub(crate) fn with<T, R>(
    ptr: *mut T,
    kind: Kind,
    f: impl FnOnce(&mut T) -> Result<R, gradstep_status>,
) -> Result<R, gradstep_status> {
    // SAFETY: `get` checks that `ptr` is live and of `kind`; the borrow ends with `f`.
    let obj = unsafe { get(ptr, kind)? };
    f(obj)
}

/// Frees a live handle; NULL is a no-op, anything else not live is an error.
pub(crate) fn free<T>(ptr: *mut T, kind: Kind) -> Result<(), gradstep_status> {
    if ptr.is_null() {
        return Ok(());
    }
    let mut map = live();
    if map.get(&(ptr as usize)) != Some(&kind) {
        return Err(GRADSTEP_INVALID_HANDLE);
    }
    map.remove(&(ptr as usize));
    drop(map);
    // SAFETY: it was live, so it came from `Box::into_raw` in `register` and has not
    // been freed; it is now unregistered, so it cannot be freed or used again.
    drop(unsafe { Box::from_raw(ptr) });
    Ok(())
}
