//! Memory for params, grads and state placed for a step's speed: `gradstep_buffer_new_f32`,
//! `gradstep_buffer_new_f64`, `gradstep_buffer_free`.

use core::cell::UnsafeCell;
use core::ffi::c_void;

use gradstep::checkpoint::Element;
use gradstep_optim::PageBuffer;

use crate::boundary::{check, guard, max_len, note};
use crate::status::*;

/// A live buffer, of either element type.
enum Owned {
    F32(PageBuffer<f32>),
    F64(PageBuffer<f64>),
}

impl Owned {
    fn addr(&self) -> usize {
        match self {
            Owned::F32(b) => b.as_ptr().addr(),
            Owned::F64(b) => b.as_ptr().addr(),
        }
    }
}

/// Every live buffer, sorted by address: `gradstep_buffer_free` frees only what is in
/// it, so a pointer from anywhere else is refused rather than handed to the allocator.
/// Reached only through [`live`].
struct Live(UnsafeCell<Vec<Owned>>);

// SAFETY: the vector is reached only under `LOCK` ([`live`]); the buffers in it are
// `Send`.
unsafe impl Sync for Live {}

static LIVE: Live = Live(UnsafeCell::new(Vec::new()));

/// The lock over [`LIVE`]: a POSIX mutex on Unix rather than `std`'s (a futex), so that
/// a C host's ThreadSanitizer, which intercepts `pthread_mutex_*` but cannot see
/// inside an uninstrumented library, sees the order of two threads' calls: the
/// vector's `memmove` and `realloc`, which it does intercept, then race nothing.
#[cfg(unix)]
struct Lock(UnsafeCell<libc::pthread_mutex_t>);

#[cfg(unix)]
// SAFETY: a pthread mutex is made to be shared between threads; it never moves (a
// static).
unsafe impl Sync for Lock {}

#[cfg(unix)]
static LOCK: Lock = Lock(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));

/// Runs `f` on the live buffers, under the lock. Held only to insert or remove an entry
/// (never while a buffer is zeroed or freed); `f` never panics (and if it did, the lock
/// would still be released).
fn live<R>(f: impl FnOnce(&mut Vec<Owned>) -> R) -> R {
    #[cfg(unix)]
    {
        struct Unlock;
        impl Drop for Unlock {
            fn drop(&mut self) {
                // SAFETY: locked below by this thread, which holds it until now.
                unsafe { libc::pthread_mutex_unlock(LOCK.0.get()) };
            }
        }
        // SAFETY: a static, initialized mutex; not already held by this thread (`f`
        // does not call back into this module). A default mutex does not fail here.
        unsafe { libc::pthread_mutex_lock(LOCK.0.get()) };
        let _unlock = Unlock;
        // SAFETY: the lock makes this the only reference to the vector until it drops.
        f(unsafe { &mut *LIVE.0.get() })
    }
    #[cfg(not(unix))]
    {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _held = LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // SAFETY: the lock makes this the only reference to the vector until it drops.
        f(unsafe { &mut *LIVE.0.get() })
    }
}

/// Allocates `n` zeros, records them and writes their address to `*out`.
///
/// # Safety
/// `out` NULL or valid for a write.
unsafe fn new<T: Element>(
    n: usize,
    out: *mut *mut T,
    wrap: fn(PageBuffer<T>) -> Owned,
) -> gradstep_status {
    guard(|| {
        check(out.cast_const())?;
        if n > max_len::<T>() {
            return Err(note(
                GRADSTEP_LENGTH_TOO_LARGE,
                format_args!("{n} elements are more than PTRDIFF_MAX bytes"),
            ));
        }
        let refused = || {
            note(
                GRADSTEP_OUT_OF_MEMORY,
                format_args!("cannot allocate a buffer of {n} elements"),
            )
        };
        let mut buffer = PageBuffer::<T>::zeros(n).map_err(|_| refused())?;
        let ptr = buffer.as_mut_ptr();
        let recorded = live(|live| {
            if live.try_reserve(1).is_err() {
                // Given back, to be freed after the lock is released.
                return Err(buffer);
            }
            // Live allocations never share an address: the search misses.
            let at = live.partition_point(|b| b.addr() < ptr.addr());
            live.insert(at, wrap(buffer));
            Ok(())
        });
        // An unrecorded buffer is dropped (freed) here, after the lock.
        recorded.map_err(|_| refused())?;
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { out.write(ptr) };
        Ok(())
    })
}

/// Allocates `n` zeroed `float`s placed where a step runs fastest over them, for params,
/// grads, state or scratch memory, and writes their address to `*out`; free them with
/// `gradstep_buffer_free`. Any buffer works with every function; these make the step
/// over them faster on x86, with the same results:
///
/// - page-aligned (4 KiB): a buffer that starts up to about 1 KiB before another,
///   counted modulo 4 KiB, can make a step several times slower (4K aliasing; see
///   `gradstep_rule_step_f32`), and vector loads from `malloc`'s 16-byte-aligned blocks
///   straddle cache lines;
/// - from 2 MiB (Linux), a fresh mapping of its own from a 2 MiB boundary whose whole
///   2 MiB extents are advised for transparent huge pages before anything touches them
///   (where the system's setting is `madvise`, Debian's default, nothing gets huge
///   pages unasked).
///
/// f32 Adam over them ran 1.05–1.48× as fast as over `malloc`'s memory from 1K to 16M
/// params, SGD with momentum 1.00–2.22× (medians of two runs of 21 rounds, a Zen 4; README,
/// *Speed*, session 21).
///
/// The size is rounded up to whole pages (at least one, also for `n` 0), so no other
/// allocation shares a buffer's pages and no two live buffers share an address.
/// Refused, with `*out` untouched: NULL or misaligned `out`, `n` beyond `PTRDIFF_MAX`
/// bytes (`GRADSTEP_LENGTH_TOO_LARGE`), no memory (`GRADSTEP_OUT_OF_MEMORY`).
///
/// # Safety
/// `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_buffer_new_f32(n: usize, out: *mut *mut f32) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { new(n, out, Owned::F32) }
}

/// As [`gradstep_buffer_new_f32`], for `n` `double`s.
///
/// # Safety
/// `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_buffer_new_f64(n: usize, out: *mut *mut f64) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { new(n, out, Owned::F64) }
}

/// Frees a buffer from `gradstep_buffer_new_f32` or `_f64`. NULL is a no-op. Any other
/// pointer (from `malloc`, inside a buffer, or freed already, unless a later
/// `gradstep_buffer_new_*` returned the same address) is refused with
/// `GRADSTEP_INVALID_HANDLE` and nothing is freed.
///
/// # Safety
/// `buffer` may be any value. If it is a live buffer, nothing may use it during or after
/// the call (an optimizer handle holding it as params or grads must be freed first).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_buffer_free(buffer: *mut c_void) -> gradstep_status {
    guard(|| {
        if buffer.is_null() {
            return Ok(());
        }
        let found = live(|live| {
            let at = live
                .binary_search_by_key(&buffer.addr(), Owned::addr)
                .ok()?;
            Some(live.remove(at))
        });
        // The buffer is dropped (freed) here, after the lock.
        found.map(drop).ok_or_else(|| {
            note(
                GRADSTEP_INVALID_HANDLE,
                format_args!("{buffer:p} is not a live buffer from gradstep_buffer_new"),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr::null_mut;

    /// Under Miri (which runs this module): small sizes only.
    const SIZES: [usize; 4] = [0, 1, 1000, 1025];

    #[test]
    fn buffers_are_zeroed_aligned_distinct_and_freed_once() {
        let mut made = Vec::new();
        for n in SIZES {
            let (mut a, mut b) = (null_mut::<f32>(), null_mut::<f64>());
            // SAFETY: valid out pointers.
            unsafe {
                assert_eq!(gradstep_buffer_new_f32(n, &mut a), GRADSTEP_OK);
                assert_eq!(gradstep_buffer_new_f64(n, &mut b), GRADSTEP_OK);
            }
            for (p, bytes) in [(a.cast::<u8>(), 4 * n), (b.cast::<u8>(), 8 * n)] {
                assert_eq!(p.addr() % gradstep_optim::PAGE, 0);
                // SAFETY: a live buffer of `bytes` bytes, used by nothing else.
                let s = unsafe { core::slice::from_raw_parts_mut(p, bytes) };
                assert!(s.iter().all(|&x| x == 0));
                s.fill(0xA5);
                made.push(p);
            }
        }
        let mut sorted = made.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            made.len(),
            "two live buffers share an address"
        );
        for p in made {
            // SAFETY: any value may be passed; each is freed once, then refused.
            unsafe {
                assert_eq!(gradstep_buffer_free(p.cast()), GRADSTEP_OK);
                assert_eq!(gradstep_buffer_free(p.cast()), GRADSTEP_INVALID_HANDLE);
            }
        }
    }

    #[test]
    fn refusals_write_nothing_and_free_nothing() {
        let mut keep = null_mut::<f32>();
        // SAFETY: valid out pointers, or NULL and misaligned ones, which are refused
        // before any write; `free` takes any value.
        unsafe {
            assert_eq!(
                gradstep_buffer_new_f32(8, null_mut()),
                GRADSTEP_NULL_POINTER
            );
            let misaligned = core::ptr::dangling_mut::<u8>().wrapping_add(1).cast();
            assert_eq!(
                gradstep_buffer_new_f64(8, misaligned),
                GRADSTEP_MISALIGNED_POINTER
            );
            let mut out = core::ptr::dangling_mut::<f32>();
            let too_many = isize::MAX as usize / 4 + 1;
            assert_eq!(
                gradstep_buffer_new_f32(too_many, &mut out),
                GRADSTEP_LENGTH_TOO_LARGE
            );
            assert_eq!(
                gradstep_buffer_new_f32(usize::MAX, &mut out),
                GRADSTEP_LENGTH_TOO_LARGE
            );
            // Within PTRDIFF_MAX bytes but not rounded up to a page, or no such memory.
            let most = isize::MAX as usize / 4;
            assert_eq!(
                gradstep_buffer_new_f32(most, &mut out),
                GRADSTEP_OUT_OF_MEMORY
            );
            let mut message = [0u8; 128];
            let len = crate::boundary::last_error(message.as_mut_ptr(), message.len());
            let want = format!("cannot allocate a buffer of {most} elements");
            assert_eq!(&message[..len.min(127)], want.as_bytes());
            assert_eq!(
                out,
                core::ptr::dangling_mut::<f32>(),
                "a refusal wrote *out"
            );

            assert_eq!(gradstep_buffer_new_f32(100, &mut keep), GRADSTEP_OK);
            assert_eq!(gradstep_buffer_free(null_mut()), GRADSTEP_OK);
            // Inside a live buffer, and from elsewhere: refused, the buffer kept.
            assert_eq!(
                gradstep_buffer_free(keep.add(1).cast()),
                GRADSTEP_INVALID_HANDLE
            );
            let mut other = 0f32;
            assert_eq!(
                gradstep_buffer_free((&raw mut other).cast()),
                GRADSTEP_INVALID_HANDLE
            );
            keep.write(3.0);
            assert_eq!(keep.read(), 3.0);
            assert_eq!(gradstep_buffer_free(keep.cast()), GRADSTEP_OK);
        }
    }
}
