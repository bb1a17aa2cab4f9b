//! Which handles are live, and the one way to reach a handle's value ([`with`]).
//!
//! A handle is an opaque number, not an address: [`register`] gives every new handle an
//! id never given before (shifted left four bits, so that C sees a non-NULL,
//! pointer-aligned value), and nothing ever dereferences it. A freed handle's value
//! therefore never names another handle, however the allocator reuses memory (issue 12,
//! finding 3), and a freed, foreign or mistyped handle is `GRADSTEP_INVALID_HANDLE`,
//! not a crash.
//!
//! The values live in a table of [`Slot`]s that only grows (pages that are never
//! freed). An id is a slot's index and a generation: a freed slot is used again under
//! the next generation, so the old handle's id names it no more, and a slot whose
//! generations run out is retired, so no id is ever given twice. Each slot has one
//! atomic state word holding its occupant's id and kind and whether a call is inside
//! it; reaching a handle's value is one compare-and-swap on that word on the way in and
//! one on the way out, with no lock, no reference count and no hashing (a global
//! lock, an `Arc` and a busy flag cost a 4K-param Adam step ~2 %:
//! frontend-ffi/benches/percall.rs). Different handles therefore work in parallel on
//! different threads. The table's lock is taken only to register and free handles.
//!
//! A call holds its handle's slot for its whole duration, taken by that
//! compare-and-swap: a second call on the same handle at the same time (another thread,
//! or a C callback calling back into the handle it was called from) is refused with
//! `GRADSTEP_BUSY` and does nothing; nothing ever waits, so nothing a caller passes can
//! deadlock (issue 12, finding 4). [`free`] retires the handle at once; if a call is
//! inside it, free marks the slot freed and that call drops the value when it ends, so
//! a free racing a call is safe.

use std::any::{Any, TypeId};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::boundary::{try_box, vec_with_capacity};
use crate::status::{
    GRADSTEP_BUSY, GRADSTEP_INTERNAL_ERROR, GRADSTEP_INVALID_HANDLE, GRADSTEP_NULL_POINTER,
    GRADSTEP_OUT_OF_MEMORY, gradstep_status,
};

/// The kinds of handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Schedule,
    Optimizer,
}

/// A slot's state word: 0 when empty, else `id << 4 | KIND | FREED | BROKEN | BUSY`.
const BUSY: u64 = 1;
/// A call on it panicked (the panic was caught at the boundary): the value may be
/// half-updated, so every later call is refused with `GRADSTEP_INTERNAL_ERROR`.
const BROKEN: u64 = 2;
/// Freed while a call was inside: that call drops the value when it ends.
const FREED: u64 = 4;
/// Set for [`Kind::Optimizer`].
const KIND: u64 = 8;
/// The bits below the id.
const FLAG_BITS: u32 = 4;

/// How many low bits of a handle value are zero (C may store it as a pointer).
const SHIFT: u32 = 4;
/// The bits of an id: those a handle value has above `SHIFT`.
const ID_BITS: u32 = usize::BITS - SHIFT;
/// An id is `generation << INDEX_BITS | index`: half its bits name the slot (2^30
/// handles alive at once on 64-bit targets, 2^14 on 32-bit ones), half count the
/// slot's occupants (generations 1 to 2^30 − 1, resp. 2^14 − 1, then it is retired).
const INDEX_BITS: u32 = ID_BITS / 2;
const GENERATIONS: usize = 1 << (ID_BITS - INDEX_BITS);
/// Page `p` of the table holds `FIRST_PAGE << p` slots.
const FIRST_PAGE: usize = 64;
const PAGES: usize = (INDEX_BITS - FIRST_PAGE.trailing_zeros() + 1) as usize;

/// What a slot holds while a handle is live.
#[derive(Clone, Copy)]
struct Occupant {
    /// The type `value` points to, checked before it is cast back.
    type_id: TypeId,
    /// A `Box<T>` turned into a raw pointer; dropped by whoever ends the handle.
    value: *mut dyn Any,
}

/// One place in the table.
struct Slot {
    /// See [`BUSY`].
    state: AtomicU64,
    /// Written only while the slot is empty and not yet published (register, under
    /// the table's lock), taken only by whoever empties the slot; read by a call that
    /// holds the slot (`BUSY` with the occupant's id) or under the table's lock.
    occupant: UnsafeCell<Option<Occupant>>,
    /// The generation its next occupant gets; read and written under the lock.
    generation: UnsafeCell<usize>,
}

// SAFETY: the slots are shared by every thread through the static table. `occupant`
// and `generation` follow the discipline on their fields: `state` (acquire/release)
// orders the writes of register and of the emptying thread before every read, and a
// value is reached only by the one call holding `BUSY`. What the values hold that is
// not `Send` is the C caller's: pointers to its buffers and its callbacks' `user`
// pointers, which the header says gradstep uses from whichever thread calls with the
// handle.
unsafe impl Sync for Slot {}

/// The table: pages allocated on demand (under the lock), never freed, so that a slot
/// reference is valid forever.
static TABLE: [AtomicPtr<Slot>; PAGES] = [const { AtomicPtr::new(std::ptr::null_mut()) }; PAGES];

/// The slots free to use again, and the first index never used.
struct Free {
    /// Its capacity is kept at least the number of indices in use, so that giving one
    /// back (at the end of a call, in a `Drop`) never allocates.
    indices: Vec<usize>,
    next: usize,
}

static FREE: Mutex<Free> = Mutex::new(Free {
    indices: Vec::new(),
    next: 0,
});

fn free_list() -> MutexGuard<'static, Free> {
    // A panic while the lock was held cannot leave the list inconsistent (each
    // operation is one push or pop, after its allocation), so a poisoned lock is still
    // usable.
    FREE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The page and offset of slot `index`.
fn place(index: usize) -> (usize, usize) {
    let j = index + FIRST_PAGE;
    let page = (usize::BITS - 1 - j.leading_zeros() - FIRST_PAGE.trailing_zeros()) as usize;
    (page, j - (FIRST_PAGE << page))
}

/// Slot `index`, if its page exists.
fn slot(index: usize) -> Option<&'static Slot> {
    let (page, offset) = place(index);
    let base = TABLE.get(page)?.load(Ordering::Acquire);
    // SAFETY: a non-NULL page pointer was published (release) after its
    // `FIRST_PAGE << page` slots were initialized, and pages are never freed; `offset`
    // is below that length by `place`'s construction.
    (!base.is_null()).then(|| unsafe { &*base.add(offset) })
}

/// The state word of a live, idle handle `id` of `kind`.
fn idle(id: usize, kind: Kind) -> u64 {
    (id as u64) << FLAG_BITS | if kind == Kind::Optimizer { KIND } else { 0 }
}

/// Records `value` as a live handle of `kind` and returns the handle: an opaque,
/// never-reused, non-NULL value that is never dereferenced.
///
/// Every allocation is fallible (`GRADSTEP_OUT_OF_MEMORY`, with nothing changed): the
/// value's box, the free list's room, a new page of slots. Slots run out only with 2^30
/// handles alive at once on 64-bit targets (2^14 on 32-bit ones): then this panics,
/// which the boundary turns into `GRADSTEP_INTERNAL_ERROR`, rather than reuse an id.
pub(crate) fn register<T: 'static>(value: T, kind: Kind) -> Result<*mut T, gradstep_status> {
    let value = try_box(value)?;
    let mut free = free_list();
    let index = match free.indices.pop() {
        Some(index) => index,
        None => {
            let index = free.next;
            // Allocations first, so that a refusal or a panic leaves everything as it was.
            assert!(index < 1 << INDEX_BITS, "gradstep handle slots exhausted");
            // The list is empty (nothing was popped): room for every index in use.
            free.indices
                .try_reserve(index + 1)
                .map_err(|_| GRADSTEP_OUT_OF_MEMORY)?;
            let (page, offset) = place(index);
            if offset == 0 {
                let mut slots = vec_with_capacity(FIRST_PAGE << page)?;
                slots.extend((0..FIRST_PAGE << page).map(|_| Slot {
                    state: AtomicU64::new(0),
                    occupant: UnsafeCell::new(None),
                    generation: UnsafeCell::new(1),
                }));
                // Exactly as long as its capacity: no reallocation.
                let slots: Box<[Slot]> = slots.into_boxed_slice();
                TABLE[page].store(Box::into_raw(slots).cast(), Ordering::Release);
            }
            free.next = index + 1;
            index
        }
    };
    let slot = slot(index).expect("the page of an index in use exists");
    let occupant = Occupant {
        type_id: TypeId::of::<T>(),
        value: Box::into_raw(value) as *mut dyn Any,
    };
    // SAFETY: under the lock, on an empty slot (popped from the free list or never
    // used): no call can hold it, and no other thread writes these fields.
    let id = unsafe {
        let generation = *slot.generation.get();
        *slot.generation.get() = generation + 1;
        *slot.occupant.get() = Some(occupant);
        generation << INDEX_BITS | index
    };
    slot.state.store(idle(id, kind), Ordering::Release);
    drop(free);
    Ok(std::ptr::without_provenance_mut(spread(id)))
}

/// The multiplier of [`spread`].
const ODD: usize = 0x9E37_79B9_7F4A_7C15_u64 as usize;

/// The inverse of `ODD` modulo 2^bits (Newton's iteration doubles the correct low bits
/// each step, from 3: an odd number is its own inverse modulo 8).
const INVERSE: usize = {
    let mut x = ODD;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2usize.wrapping_sub(ODD.wrapping_mul(x)));
        i += 1;
    }
    x
};
const _: () = assert!(ODD.wrapping_mul(INVERSE) == 1);

/// The handle value of id `id` (1 ≤ `id` ≤ `usize::MAX >> SHIFT`): the id times an odd
/// constant modulo 2^(bits − SHIFT), shifted left. Multiplying by an odd number is a
/// bijection modulo a power of two, so distinct ids give distinct, non-zero values; it
/// scatters them, so that a value a little off a live handle (another handle ± 16, an
/// address computed from one) is not another live handle.
fn spread(id: usize) -> usize {
    (id.wrapping_mul(ODD) & (usize::MAX >> SHIFT)) << SHIFT
}

/// The id whose [`spread`] is `handle`, and its slot, if `handle` can be one.
fn lookup(handle: usize) -> Option<(usize, &'static Slot)> {
    if handle.trailing_zeros() < SHIFT {
        return None;
    }
    let id = (handle >> SHIFT).wrapping_mul(INVERSE) & (usize::MAX >> SHIFT);
    // Generation 0 is never given (its idle word could equal an empty slot's).
    if id >> INDEX_BITS == 0 {
        return None;
    }
    Some((id, slot(id & ((1 << INDEX_BITS) - 1))?))
}

/// Holds a slot for a call; releases it when dropped, also on unwind, and drops the
/// value then if the handle was freed meanwhile.
struct Held {
    slot: &'static Slot,
    index: usize,
    idle: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        let after = if std::thread::panicking() {
            self.idle | BROKEN
        } else {
            self.idle
        };
        let released = self.slot.state.compare_exchange(
            self.idle | BUSY,
            after,
            Ordering::Release,
            Ordering::Acquire,
        );
        if released.is_err() {
            // Only `free` changes a held slot's word: it set `FREED`, and left the
            // value to this call.
            empty(self.slot, self.index);
        }
    }
}

/// Empties slot `index`, gives it back and drops its value: by the thread that owns
/// the slot (the call a free left it to, or `free` after taking the word from idle).
fn empty(slot: &Slot, index: usize) {
    // SAFETY: the state word names no live handle any more: no call can take the slot,
    // `free` refuses it, and register cannot use it before it is back in the list.
    let occupant = unsafe { (*slot.occupant.get()).take() };
    slot.state.store(0, Ordering::Release);
    {
        let mut free = free_list();
        // SAFETY: under the lock.
        if unsafe { *slot.generation.get() } < GENERATIONS {
            // Never allocates: the capacity covers every index in use.
            free.indices.push(index);
        }
    }
    if let Some(o) = occupant {
        // SAFETY: `Box::into_raw` made it in `register`; the occupant was taken above,
        // so it is dropped once.
        drop(unsafe { Box::from_raw(o.value) });
    }
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
    let (id, slot) = lookup(ptr.addr()).ok_or(GRADSTEP_INVALID_HANDLE)?;
    let idle = idle(id, kind);
    if let Err(now) =
        slot.state
            .compare_exchange(idle, idle | BUSY, Ordering::Acquire, Ordering::Relaxed)
    {
        return Err(if now & !(BUSY | BROKEN) != idle {
            // Empty, another handle's, another kind's, or freed while a call is inside.
            GRADSTEP_INVALID_HANDLE
        } else if now & BUSY != 0 {
            GRADSTEP_BUSY
        } else {
            GRADSTEP_INTERNAL_ERROR
        });
    }
    let index = id & ((1 << INDEX_BITS) - 1);
    let _held = Held { slot, index, idle };
    // SAFETY: this call holds the slot (`BUSY` under the occupant's id, acquired).
    let occupant = unsafe { *slot.occupant.get() };
    match occupant {
        // SAFETY: the value is a live `Box<T>` (its type checked); holding the slot
        // makes this the only reference to it until `_held` drops, after `f`.
        Some(o) if o.type_id == TypeId::of::<T>() => f(unsafe { &mut *o.value.cast::<T>() }),
        _ => Err(GRADSTEP_INVALID_HANDLE),
    }
}

/// Frees a live handle: NULL is a no-op, anything else not a live handle of `kind` is
/// `GRADSTEP_INVALID_HANDLE`. From its return on the handle is refused; a call that is
/// inside it meanwhile finishes, and the value is dropped when it does.
pub(crate) fn free<T: 'static>(ptr: *mut T, kind: Kind) -> Result<(), gradstep_status> {
    if ptr.is_null() {
        return Ok(());
    }
    let (id, slot) = lookup(ptr.addr()).ok_or(GRADSTEP_INVALID_HANDLE)?;
    let idle = idle(id, kind);
    // The lock keeps the occupant in place while its type is read: only a free (under
    // the lock) can retire a live handle.
    let free = free_list();
    let mut now = slot.state.load(Ordering::Acquire);
    loop {
        if now & !(BUSY | BROKEN) != idle {
            return Err(GRADSTEP_INVALID_HANDLE);
        }
        // SAFETY: the slot holds handle `id` and is not freed; under the lock no one
        // else can retire it, so the occupant stays as it is while read.
        let occupant = unsafe { *slot.occupant.get() };
        if occupant.is_none_or(|o| o.type_id != TypeId::of::<T>()) {
            return Err(GRADSTEP_INVALID_HANDLE);
        }
        let (after, ours) = if now & BUSY != 0 {
            (now | FREED, false)
        } else {
            (0, true)
        };
        match slot
            .state
            .compare_exchange(now, after, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                drop(free);
                if ours {
                    // Dropped here, outside the lock.
                    empty(slot, id & ((1 << INDEX_BITS) - 1));
                }
                return Ok(());
            }
            Err(changed) => now = changed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_never_reused_and_never_addresses() {
        let a = register(1u32, Kind::Schedule).unwrap();
        assert_eq!(free(a, Kind::Schedule), Ok(()));
        let b = register(2u32, Kind::Schedule).unwrap();
        assert_ne!(a, b);
        assert!(b.addr().is_multiple_of(16) && b.addr().abs_diff(a.addr()) > 1 << 20);
        // `spread` is arithmetic on integers, with no memory access and no unsafe code:
        // Miri checks the first 1000 ids (all 100 000 took it ~18 s), the normal run
        // all of them.
        let ids = if cfg!(miri) { 1..1_000 } else { 1..100_000 };
        assert!(
            ids.into_iter()
                .all(|id| spread(id) != 0 && spread(id) != spread(id + 1))
        );
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
        let a = register(5i32, Kind::Optimizer).unwrap();
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
    /// Counts its drops.
    struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_free_inside_a_call_drops_the_value_when_the_call_ends() {
        let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let a = register(Counted(drops.clone()), Kind::Optimizer).unwrap();
        let inside = with(a, Kind::Optimizer, |v| {
            assert_eq!(free(a, Kind::Optimizer), Ok(()));
            // Freed, but still this call's: not dropped, refused to anyone else.
            assert_eq!(v.0.load(Ordering::SeqCst), 0);
            assert_eq!(free(a, Kind::Optimizer), Err(GRADSTEP_INVALID_HANDLE));
            Ok(with(a, Kind::Optimizer, |_| Ok(())))
        });
        assert_eq!(inside, Ok(Err(GRADSTEP_INVALID_HANDLE)));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(
            with(a, Kind::Optimizer, |_| Ok(())),
            Err(GRADSTEP_INVALID_HANDLE)
        );
        // Freed when idle: dropped at once.
        let b = register(Counted(drops.clone()), Kind::Schedule).unwrap();
        assert_eq!(free(b, Kind::Schedule), Ok(()));
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn reused_slots_give_new_handles_and_the_old_ones_stay_refused() {
        // Past the first page (64 slots), freeing and registering again in between, so
        // that slots are reused under new generations. Under Miri 120 + 30 handles:
        // still past the first page and reusing slots in both loops, the paths Miri is
        // here for (a page published and reached, a slot emptied and taken again), at
        // ~10 ms of Miri per register; the normal run makes 300 + 100.
        let (first, again) = if cfg!(miri) { (120, 30) } else { (300, 100) };
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for i in 0..first {
            let h = register(i, Kind::Schedule).unwrap();
            if i % 3 == 0 {
                assert_eq!(free(h, Kind::Schedule), Ok(()));
                dead.push(h);
            } else {
                live.push((h, i));
            }
        }
        for _ in 0..again {
            let h = register(7u32, Kind::Schedule).unwrap();
            assert_eq!(free(h, Kind::Schedule), Ok(()));
            dead.push(h);
        }
        // No handle was given twice, live or freed: sorted, not scanned once per
        // handle (that was quadratic, ~50 s under Miri).
        let mut live_addrs: Vec<usize> = live.iter().map(|&(h, _)| h.addr()).collect();
        live_addrs.sort_unstable();
        let mut made: Vec<usize> = dead.iter().map(|h| h.addr()).collect();
        made.extend_from_slice(&live_addrs);
        made.sort_unstable();
        assert!(
            made.windows(2).all(|w| w[0] != w[1]),
            "a handle given twice"
        );
        for &h in &dead {
            assert_eq!(
                with(h, Kind::Schedule, |v| Ok(*v)),
                Err(GRADSTEP_INVALID_HANDLE)
            );
            assert_eq!(free(h, Kind::Schedule), Err(GRADSTEP_INVALID_HANDLE));
        }
        for &(h, i) in &live {
            assert_eq!(with(h, Kind::Schedule, |v| Ok(*v)), Ok(i));
            // Values near a live handle, and its id with generation 0, are none.
            for near in [
                h.addr() + 16,
                h.addr() - 16,
                h.addr() + 1,
                h.addr() >> 1 << 1,
            ] {
                if live_addrs.binary_search(&near).is_err() {
                    let p = std::ptr::without_provenance_mut::<u32>(near);
                    assert_eq!(
                        with(p, Kind::Schedule, |v| Ok(*v)),
                        Err(GRADSTEP_INVALID_HANDLE)
                    );
                }
            }
        }
        let index_only = std::ptr::without_provenance_mut::<u32>(spread(3));
        assert_eq!(
            with(index_only, Kind::Schedule, |v| Ok(*v)),
            Err(GRADSTEP_INVALID_HANDLE)
        );
        for &(h, _) in &live {
            assert_eq!(free(h, Kind::Schedule), Ok(()));
        }
    }
    #[test]
    fn a_free_racing_calls_on_another_thread_drops_the_value_once() {
        for _ in 0..4 {
            let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let h = register(Counted(drops.clone()), Kind::Optimizer)
                .unwrap()
                .addr();
            let freed = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    let p = std::ptr::without_provenance_mut::<Counted>(h);
                    loop {
                        // Seen freed before the call: the call must be refused.
                        let was_freed = freed.load(Ordering::SeqCst);
                        match with(p, Kind::Optimizer, |v| Ok(v.0.load(Ordering::SeqCst))) {
                            Ok(d) => assert!(!was_freed && d == 0, "a call after free"),
                            Err(e) => {
                                assert_eq!(e, GRADSTEP_INVALID_HANDLE);
                                break;
                            }
                        }
                    }
                });
                std::thread::yield_now();
                let p = std::ptr::without_provenance_mut::<Counted>(h);
                assert_eq!(free(p, Kind::Optimizer), Ok(()));
                freed.store(true, Ordering::SeqCst);
            });
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        }
    }
}
