//! Which handles are live, and the one way to reach a handle's value ([`with`]).
//!
//! A handle is an opaque number, not an address: [`register`] gives every new handle
//! the next id of a counter that never goes back (shifted left four bits, so that C
//! sees a non-NULL, pointer-aligned value), and nothing ever dereferences it. A freed
//! handle's value therefore never names another handle, however the allocator reuses
//! memory (issue 12, finding 3), and a freed, foreign or mistyped handle is
//! `GRADSTEP_INVALID_HANDLE`, not a crash.
//!
//! Each value sits in its own [`Slot`] behind an `Arc`. The global map's lock is held
//! only to look a handle up, insert or remove it, never during a call, so different
//! handles work in parallel on different threads. A call holds its handle's slot for
//! its whole duration, taken with a try-lock: a second call on the same handle at the
//! same time (another thread, or a C callback calling back into the handle it was
//! called from) is refused with `GRADSTEP_BUSY` and does nothing; nothing ever waits,
//! so nothing a caller passes can deadlock (issue 12, finding 4). [`free`] removes the
//! handle from the map at once; a call already inside it finishes on its own `Arc`, and
//! the value is dropped when the last one ends, so a free racing a call is safe.

use std::any::Any;
use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::status::{
    GRADSTEP_BUSY, GRADSTEP_INTERNAL_ERROR, GRADSTEP_INVALID_HANDLE, GRADSTEP_NULL_POINTER,
    gradstep_status,
};

/// The kinds of handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Schedule,
    Optimizer,
}

/// A handle's value and whether a call is inside it.
struct Slot<T> {
    busy: AtomicBool,
    /// A call on it panicked (the panic was caught at the boundary): the value may be
    /// half-updated, so every later call is refused with `GRADSTEP_INTERNAL_ERROR`.
    broken: AtomicBool,
    value: UnsafeCell<T>,
}

/// Releases a [`Slot`] when a call ends, also when it unwinds.
struct Held<'a> {
    busy: &'a AtomicBool,
    broken: &'a AtomicBool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.broken.store(true, Ordering::Relaxed);
        }
        self.busy.store(false, Ordering::Release);
    }
}

/// A live handle in the map.
struct Entry {
    kind: Kind,
    /// An `Arc<Slot<T>>` for the handle's `T`.
    slot: Arc<dyn Any>,
}

// SAFETY: the map moves entries (and the last `Arc` of a slot may drop) on any thread.
// A slot's value is only reached through `with`, which holds the slot's `busy` flag
// (acquire/release) for the whole call, so it is never used by two threads at once.
// The values are gradstep's own handle types; what they hold that is not `Send` is the
// C caller's: pointers to its buffers and its callbacks' `user` pointers, which the
// header says gradstep uses from whichever thread calls with the handle.
unsafe impl Send for Entry {}

/// Hashes a handle value as itself: [`spread`] already scatters the values (an odd
/// multiple of the id), and only gradstep chooses the keys inserted, so SipHash's
/// protection buys nothing here and costs every call a few tens of nanoseconds (about
/// 2 % of a 1K-param Adam step: benches/percall.rs).
#[derive(Default)]
struct HandleHasher(u64);

impl std::hash::Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_usize(&mut self, v: usize) {
        // The low SHIFT bits are always zero. hashbrown takes a bucket from the low
        // bits and a tag from the top seven: both come from the scattered id bits.
        self.0 = ((v >> SHIFT) as u64).rotate_right(7);
    }
}

struct Live {
    map: HashMap<usize, Entry, std::hash::BuildHasherDefault<HandleHasher>>,
    /// The id the next handle gets; never reused.
    next: usize,
}

fn live() -> MutexGuard<'static, Live> {
    static LIVE: OnceLock<Mutex<Live>> = OnceLock::new();
    // A panic while the lock was held cannot leave the map inconsistent (each operation
    // is one insert, lookup or removal), so a poisoned lock is still usable.
    LIVE.get_or_init(|| {
        Mutex::new(Live {
            map: HashMap::default(),
            next: 1,
        })
    })
    .lock()
    .unwrap_or_else(|e| e.into_inner())
}

/// How many low bits of a handle value are zero (C may store it as a pointer).
const SHIFT: u32 = 4;

/// Records `value` as a live handle of `kind` and returns the handle: an opaque,
/// never-reused, non-NULL value that is never dereferenced.
///
/// Ids run out only after `usize::MAX >> 4` handles (never, on 64-bit targets; after
/// 2^28 on 32-bit ones): then this panics, which the boundary turns into
/// `GRADSTEP_INTERNAL_ERROR`, rather than reuse an id.
pub(crate) fn register<T: 'static>(value: T, kind: Kind) -> *mut T {
    let slot: Arc<dyn Any> = Arc::new(Slot {
        busy: AtomicBool::new(false),
        broken: AtomicBool::new(false),
        value: UnsafeCell::new(value),
    });
    let mut live = live();
    let id = live.next;
    assert!(id <= usize::MAX >> SHIFT, "gradstep handle ids exhausted");
    live.next = id + 1;
    let handle = spread(id);
    live.map.insert(handle, Entry { kind, slot });
    std::ptr::without_provenance_mut(handle)
}

/// The handle value of id `id` (1 ≤ `id` ≤ `usize::MAX >> SHIFT`): the id times an odd
/// constant modulo 2^(bits − SHIFT), shifted left. Multiplying by an odd number is a
/// bijection modulo a power of two, so distinct ids give distinct, non-zero values; it
/// scatters them, so that a value a little off a live handle (another handle ± 16, an
/// address computed from one) is not another live handle.
fn spread(id: usize) -> usize {
    const ODD: u64 = 0x9E37_79B9_7F4A_7C15;
    (id.wrapping_mul(ODD as usize) & (usize::MAX >> SHIFT)) << SHIFT
}

/// Runs `f` on the live handle `ptr` of `kind`: the one way to reach a handle's value.
///
/// NULL is `GRADSTEP_NULL_POINTER`; a value that is not a live handle of `kind` (freed,
/// foreign, or of the other kind) is `GRADSTEP_INVALID_HANDLE`; a handle another call
/// is inside is `GRADSTEP_BUSY`; a handle a panicking call left is
/// `GRADSTEP_INTERNAL_ERROR`. In those cases `f` does not run. Otherwise `f`'s result
/// is returned. No lock is held while `f` runs but the handle's own.
pub(crate) fn with<T: 'static, R>(
    ptr: *mut T,
    kind: Kind,
    f: impl FnOnce(&mut T) -> Result<R, gradstep_status>,
) -> Result<R, gradstep_status> {
    if ptr.is_null() {
        return Err(GRADSTEP_NULL_POINTER);
    }
    let arc = {
        let live = live();
        let entry = live.map.get(&ptr.addr());
        match entry {
            Some(e) if e.kind == kind => Arc::clone(&e.slot),
            _ => return Err(GRADSTEP_INVALID_HANDLE),
        }
    };
    let slot = arc
        .downcast_ref::<Slot<T>>()
        .ok_or(GRADSTEP_INVALID_HANDLE)?;
    if slot
        .busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return Err(GRADSTEP_BUSY);
    }
    let _held = Held {
        busy: &slot.busy,
        broken: &slot.broken,
    };
    if slot.broken.load(Ordering::Relaxed) {
        return Err(GRADSTEP_INTERNAL_ERROR);
    }
    // SAFETY: `busy` was false and is now ours until `_held` drops (after `f`), so no
    // other reference to the value exists; `arc` keeps the slot alive meanwhile.
    f(unsafe { &mut *slot.value.get() })
}

/// Frees a live handle: NULL is a no-op, anything else not a live handle of `kind` is
/// `GRADSTEP_INVALID_HANDLE`. From its return on the handle is refused; a call that is
/// inside it meanwhile finishes, and the value is dropped when it does.
pub(crate) fn free<T: 'static>(ptr: *mut T, kind: Kind) -> Result<(), gradstep_status> {
    if ptr.is_null() {
        return Ok(());
    }
    let entry = {
        let mut live = live();
        match live.map.get(&ptr.addr()) {
            Some(e) if e.kind == kind && e.slot.is::<Slot<T>>() => live.map.remove(&ptr.addr()),
            _ => return Err(GRADSTEP_INVALID_HANDLE),
        }
    };
    // Dropped here, outside the map's lock (or later, by a call still inside it).
    drop(entry);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_never_reused_and_never_addresses() {
        let a = register(1u32, Kind::Schedule);
        assert_eq!(free(a, Kind::Schedule), Ok(()));
        let b = register(2u32, Kind::Schedule);
        assert_ne!(a, b);
        assert!(b.addr().is_multiple_of(16) && b.addr().abs_diff(a.addr()) > 1 << 20);
        assert!((1..100_000).all(|id| spread(id) != 0 && spread(id) != spread(id + 1)));
        assert_eq!(
            with(a, Kind::Schedule, |v| Ok(*v)),
            Err(GRADSTEP_INVALID_HANDLE)
        );
        assert_eq!(with(b, Kind::Schedule, |v| Ok(*v)), Ok(2));
        assert_eq!(
            with(b, Kind::Optimizer, |v| Ok(*v)),
            Err(GRADSTEP_INVALID_HANDLE)
        );
        // Same kind, another type: refused, not transmuted.
        let c = b.cast::<u64>();
        assert_eq!(
            with(c, Kind::Schedule, |v| Ok(*v)),
            Err(GRADSTEP_INVALID_HANDLE)
        );
        assert_eq!(free(c, Kind::Schedule), Err(GRADSTEP_INVALID_HANDLE));
        assert_eq!(free(b, Kind::Schedule), Ok(()));
        assert_eq!(free(b, Kind::Schedule), Err(GRADSTEP_INVALID_HANDLE));
        assert_eq!(free(core::ptr::null_mut::<u32>(), Kind::Schedule), Ok(()));
        assert_eq!(
            with(core::ptr::null_mut::<u32>(), Kind::Schedule, |v| Ok(*v)),
            Err(GRADSTEP_NULL_POINTER)
        );
    }

    #[test]
    fn a_nested_call_is_busy_and_a_panicked_handle_is_refused() {
        let a = register(5i32, Kind::Optimizer);
        let inner = with(a, Kind::Optimizer, |v| {
            *v += 1;
            Ok(with(a, Kind::Optimizer, |w| Ok(*w)))
        });
        assert_eq!(inner, Ok(Err(GRADSTEP_BUSY)));
        assert_eq!(with(a, Kind::Optimizer, |v| Ok(*v)), Ok(6));
        let status = crate::boundary::guard(|| {
            with(a, Kind::Optimizer, |_| -> Result<(), _> {
                panic!("in a call")
            })
        });
        assert_eq!(status, GRADSTEP_INTERNAL_ERROR);
        assert_eq!(
            with(a, Kind::Optimizer, |v| Ok(*v)),
            Err(GRADSTEP_INTERNAL_ERROR)
        );
        assert_eq!(free(a, Kind::Optimizer), Ok(()));
    }
}
