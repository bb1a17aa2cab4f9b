//! What every exported function does at the boundary: catch panics, then check every
//! pointer, every length and every overlap, and only then build slices.
//!
//! A caller's buffer first becomes a [`Raw`]: non-NULL, aligned, and at most
//! [`max_len`] elements (`slice::from_raw_parts` requires the slice to fit in
//! `isize::MAX` bytes). [`disjoint`] compares the raw byte spans. Only a `Raw` can
//! become a slice ([`Raw::slice`], [`Raw::slice_mut`]), so no slice exists before its
//! pointer and length are checked, and the functions that build `&mut` slices call
//! [`disjoint`] before they do.
//!
//! Every refusal also leaves its message for `gradstep_last_error`: [`guard`] records,
//! per thread, the detail noted by [`note`] during the call (a kernel error's
//! `Display`, a rule text's parse error), or else the status's own message.

use std::cell::{Cell, RefCell};
use std::fmt::{Display, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use crate::status::{
    GRADSTEP_INTERNAL_ERROR, GRADSTEP_LENGTH_TOO_LARGE, GRADSTEP_MISALIGNED_POINTER,
    GRADSTEP_NULL_POINTER, GRADSTEP_OK, GRADSTEP_OUT_OF_MEMORY, GRADSTEP_OVERLAPPING_BUFFERS,
    gradstep_status,
};

/// Runs `f`, turning its `Err` into the status and a panic into
/// `GRADSTEP_INTERNAL_ERROR`, so that no unwind crosses into C, and nothing is printed:
/// while `f` runs, this thread is marked as inside gradstep, and [`quiet_hook`] keeps
/// its panics silent.
///
/// It also sets the thread's last error: the detail [`note`]d for the returned status
/// during `f` (or the status's own message), or empty on `GRADSTEP_OK`.
///
/// The thread's bookkeeping is one [`Thread`] reached once per call: in the cdylib each
/// thread-local access may be a call to `__tls_get_addr`, and five of them (three
/// thread-locals) cost a small step a measurable part of its time
/// (frontend-ffi/benches/percall.rs).
///
/// Written as a small shell, inlined into each exported function, around one
/// non-generic [`guarded`] that reaches the closure through a reference: passed by
/// value, the closure's captures (the call's arguments, stored one word at a time) were
/// copied into `guard`'s frame sixteen bytes at a time, a load the processor cannot
/// forward from the narrower stores just made: that stall was 9 ns of the 40 the C
/// side added to a 16-param step on a Zen 5 (frontend-ffi/benches/percall.rs).
#[inline(always)]
pub(crate) fn guard(f: impl FnOnce() -> Result<(), gradstep_status>) -> gradstep_status {
    let mut f = Some(f);
    guarded(&mut || f.take().map_or(Err(GRADSTEP_INTERNAL_ERROR), |f| f()))
}

/// [`guard`]'s work: `f` is called at most once with a result (a second call, which
/// never happens, would be refused as an internal error).
#[inline(never)]
fn guarded(f: &mut dyn FnMut() -> Result<(), gradstep_status>) -> gradstep_status {
    quiet_hook();
    let status = THREAD.try_with(|t| {
        t.depth.set(t.depth.get() + 1);
        // A call nested in this one (from a C callback) has its own pending detail;
        // the outer call's is put back when it returns. Only the status is swapped on
        // every call (moving the message's `String` in and out of its cell cost a
        // small step a few nanoseconds); the message moves only when one is pending.
        let outer = t.pending.replace(GRADSTEP_OK);
        let outer_detail = (outer != GRADSTEP_OK).then(|| t.detail.take());
        let status = run(&mut *f);
        let noted = t.pending.replace(outer);
        t.depth.set(t.depth.get() - 1);
        // Recording allocates at most once per thread and message length: a panic
        // there (out of memory) must not unwind into C either.
        let _ = catch_unwind(AssertUnwindSafe(|| record(t, status, noted)));
        if let Some(detail) = outer_detail {
            t.detail.set(detail);
        }
        status
    });
    // During thread teardown the bookkeeping may be gone: the call still runs (a panic
    // in it may then print), with no last error to leave.
    status.unwrap_or_else(|_| run(f))
}

/// Runs `f`, catching a panic.
fn run(f: &mut dyn FnMut() -> Result<(), gradstep_status>) -> gradstep_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => GRADSTEP_OK,
        Ok(Err(status)) => status,
        Err(_) => GRADSTEP_INTERNAL_ERROR,
    }
}

/// A thread's bookkeeping at the boundary.
struct Thread {
    /// How many gradstep calls this thread is inside (more than one when a C callback
    /// calls back into gradstep).
    depth: Cell<usize>,
    /// The status of the detail noted during the running call (`GRADSTEP_OK`: none).
    pending: Cell<gradstep_status>,
    /// That detail's message.
    detail: Cell<String>,
    /// The message of this thread's last call that returned a status (empty if it
    /// succeeded), as `gradstep_last_error` returns it.
    last: RefCell<String>,
}

thread_local! {
    static THREAD: Thread = const {
        Thread {
            depth: Cell::new(0),
            pending: Cell::new(GRADSTEP_OK),
            detail: Cell::new(String::new()),
            last: RefCell::new(String::new()),
        }
    };
}

/// Notes `detail` as the message of a refusal with `status` and returns `status`, for
/// `map_err(|e| note(status_of(&e), e))`. A note whose status is not the one the call
/// finally returns (an error handled on the way) is not used.
pub(crate) fn note(status: gradstep_status, detail: impl Display) -> gradstep_status {
    // The message is formatted only when a call is refused; a failed allocation leaves
    // it shorter (`Fallible`), never aborts.
    let mut message = String::new();
    let _ = write!(Fallible(&mut message), "{detail}");
    // During thread teardown the slot may be gone: then there is no one to tell.
    let _ = THREAD.try_with(|t| {
        t.pending.set(status);
        t.detail.set(message);
    });
    status
}

/// Sets the thread's last error after a call returned `status`, the detail noted
/// during it having status `noted` (`GRADSTEP_OK`: none).
fn record(t: &Thread, status: gradstep_status, noted: gradstep_status) {
    let mut last = t.last.borrow_mut();
    last.clear();
    match noted {
        _ if status == GRADSTEP_OK => {}
        noted if noted == status => {
            let _ = Fallible(&mut last).write_str(&t.detail.take());
        }
        _ => {
            let message = status.message().to_str().unwrap_or("internal error");
            let _ = Fallible(&mut last).write_str(message);
        }
    }
}

/// A `String` written only as far as memory allows: a piece that cannot be reserved
/// is an error (which ends a `write!`) instead of `String`'s abort on a failed
/// allocation, which no `catch_unwind` stops (frontend-ffi/tests/alloc_failure.rs).
struct Fallible<'a>(&'a mut String);

impl Write for Fallible<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.try_reserve(s.len()).map_err(|_| std::fmt::Error)?;
        self.0.push_str(s);
        Ok(())
    }
}

/// Copies the thread's last error into `buf[..len]` as `snprintf` would: at most
/// `len - 1` bytes of it (cut at a character boundary) and a NUL, nothing if `buf` is
/// NULL or `len` is 0; returns the message's full length in bytes.
///
/// # Safety
/// `buf` must be NULL or valid for writes of `len` bytes.
pub(crate) unsafe fn last_error(buf: *mut u8, len: usize) -> usize {
    let copy = |t: &Thread| {
        let last = t.last.borrow();
        if !buf.is_null() && len > 0 {
            let mut n = last.len().min(len - 1);
            while !last.is_char_boundary(n) {
                n -= 1;
            }
            // SAFETY: `n + 1 <= len` bytes, writable per the caller's contract; the
            // message is this thread's own allocation, which the caller cannot have
            // a pointer into.
            unsafe {
                core::ptr::copy_nonoverlapping(last.as_ptr(), buf, n);
                buf.add(n).write(0);
            }
        }
        last.len()
    };
    catch_unwind(AssertUnwindSafe(|| THREAD.try_with(copy).unwrap_or(0))).unwrap_or(0)
}

/// Whether the current thread is inside a gradstep call.
fn inside() -> bool {
    // During thread teardown the flag may be gone: then no gradstep call is running.
    THREAD.try_with(|t| t.depth.get() > 0).unwrap_or(false)
}

/// Installs, once, a panic hook that chains to the one installed before it: silent for
/// panics of a thread inside a gradstep call (they become `GRADSTEP_INTERNAL_ERROR`),
/// the previous hook's behaviour for every other panic, so the host's own panics still
/// print (or abort, or whatever its hook does). No global hook replaces the host's.
/// A hook the host installs later replaces this one, and is the host's choice.
fn quiet_hook() {
    static ONCE: Once = Once::new();
    // `take_hook` panics on a panicking thread; a later call installs it then.
    if ONCE.is_completed() || std::thread::panicking() {
        return;
    }
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The owning optimizer's helper threads work only inside a gradstep call.
            let worker = std::thread::current().name() == Some(gradstep_optim::WORKER_THREAD_NAME);
            if !inside() && !worker {
                previous(info);
            }
        }));
    });
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

/// Reads one value the caller passed by pointer, after [`check`].
///
/// # Safety
/// If `ptr` passes [`check`], it must be valid for a read of a `T`.
pub(crate) unsafe fn read<T: Copy>(ptr: *const T) -> Result<T, gradstep_status> {
    check(ptr)?;
    // SAFETY: non-NULL and aligned (checked); readable per the caller's contract.
    Ok(unsafe { ptr.read() })
}

/// The most elements of `T` one slice may hold: `isize::MAX` bytes.
pub(crate) const fn max_len<T>() -> usize {
    match size_of::<T>() {
        0 => usize::MAX,
        size => isize::MAX as usize / size,
    }
}

/// The bytes a buffer covers: start address and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Span {
    start: usize,
    len: usize,
}

impl Span {
    /// No bytes: overlaps nothing.
    pub(crate) const EMPTY: Span = Span { start: 0, len: 0 };

    /// The span of `len` elements at `ptr` (the length must already be bounded).
    pub(crate) fn of<T>(ptr: *const T, len: usize) -> Span {
        Span {
            start: ptr as usize,
            len: len.saturating_mul(size_of::<T>()),
        }
    }

    /// The span of one `T` at `ptr`.
    pub(crate) fn one<T>(ptr: *const T) -> Span {
        Span::of(ptr, 1)
    }

    #[inline(always)]
    fn end(self) -> usize {
        self.start.saturating_add(self.len)
    }

    /// Whether the two share a byte (empty spans share none). Without branches: the
    /// step functions test six pairs on every call.
    #[inline(always)]
    pub(crate) fn overlaps(self, other: Span) -> bool {
        (self.len > 0) & (other.len > 0) & (self.start < other.end()) & (other.start < self.end())
    }
}

/// Refuses with `GRADSTEP_OVERLAPPING_BUFFERS` if a span that will be written shares a
/// byte with any other span given (written or only read).
///
/// Plain loops rather than an iterator chain, and one branch at the end: the chain was
/// not inlined and cost every step call a few tens of nanoseconds, and a branch per
/// pair a few more (frontend-ffi/benches/percall.rs).
#[inline(always)]
pub(crate) fn disjoint(written: &[Span], read: &[Span]) -> Result<(), gradstep_status> {
    let mut overlap = false;
    for (i, w) in written.iter().enumerate() {
        for o in &written[i + 1..] {
            overlap |= w.overlaps(*o);
        }
        for o in read {
            overlap |= w.overlaps(*o);
        }
    }
    if overlap {
        Err(GRADSTEP_OVERLAPPING_BUFFERS)
    } else {
        Ok(())
    }
}

/// A caller's buffer of `len` elements whose pointer is non-NULL and aligned and whose
/// length is at most [`max_len`]; not yet a slice.
pub(crate) struct Raw<T> {
    ptr: *mut T,
    len: usize,
}

impl<T> Clone for Raw<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Raw<T> {}

impl<T> Raw<T> {
    /// Checks a buffer that will only be read. NULL is refused even with `len` 0.
    pub(crate) fn new(ptr: *const T, len: usize) -> Result<Raw<T>, gradstep_status> {
        Raw::new_mut(ptr.cast_mut(), len)
    }

    /// Checks a buffer that will be written.
    pub(crate) fn new_mut(ptr: *mut T, len: usize) -> Result<Raw<T>, gradstep_status> {
        check(ptr.cast_const())?;
        if len > max_len::<T>() {
            return Err(GRADSTEP_LENGTH_TOO_LARGE);
        }
        Ok(Raw { ptr, len })
    }

    /// Its address (for placement decisions: nothing is read through it).
    pub(crate) fn ptr(self) -> *const T {
        self.ptr.cast_const()
    }

    /// The bytes it covers.
    pub(crate) fn span(self) -> Span {
        Span::of(self.ptr, self.len)
    }

    /// Element `i` (`i < len`), read without making a slice.
    ///
    /// # Safety
    /// The buffer must be valid for reads of `len` elements.
    pub(crate) unsafe fn get(self, i: usize) -> T
    where
        T: Copy,
    {
        debug_assert!(i < self.len);
        // SAFETY: `i < len` and the buffer is readable (caller's contract).
        unsafe { self.ptr.add(i).read() }
    }

    /// The shared slice.
    ///
    /// # Safety
    /// The buffer must be valid for reads of `len` elements for `'a` and not written
    /// meanwhile (by the caller, or through a `&mut` built here: check with
    /// [`disjoint`] first).
    pub(crate) unsafe fn slice<'a>(self) -> &'a [T] {
        // SAFETY: non-NULL, aligned, at most isize::MAX bytes (checked by `new`);
        // valid and unaliased per the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The exclusive slice.
    ///
    /// # Safety
    /// The buffer must be valid for reads and writes of `len` elements for `'a` and not
    /// accessed through any other pointer or slice meanwhile (check with [`disjoint`]
    /// against every other buffer of the call first).
    pub(crate) unsafe fn slice_mut<'a>(self) -> &'a mut [T] {
        // SAFETY: as for `slice`, and exclusive per the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// `value` in a box of its own, or `GRADSTEP_OUT_OF_MEMORY` where `Box::new` would abort
/// the process.
pub(crate) fn try_box<V>(value: V) -> Result<Box<V>, gradstep_status> {
    gradstep_optim::try_box(value).map_err(|_| GRADSTEP_OUT_OF_MEMORY)
}

/// An empty vector with room for `n` elements, or `GRADSTEP_OUT_OF_MEMORY`.
pub(crate) fn vec_with_capacity<T>(n: usize) -> Result<Vec<T>, gradstep_status> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| GRADSTEP_OUT_OF_MEMORY)?;
    Ok(v)
}

/// `count` caller buffers given as parallel arrays of pointers and lengths, each
/// checked as a [`Raw`]. The arrays themselves are read element by element (no slice
/// of them is built) after their own pointers and `count` are checked.
///
/// # Safety
/// `ptrs` and `lens`, if they pass [`Raw::new`], must be valid for `count` reads.
unsafe fn raws<T>(
    ptrs: *const *mut T,
    lens: *const usize,
    count: usize,
) -> Result<(Vec<Raw<T>>, [Span; 2]), gradstep_status> {
    let (p, l) = (Raw::new(ptrs, count)?, Raw::new(lens, count)?);
    let mut out = vec_with_capacity(count)?;
    for i in 0..count {
        // SAFETY: `i < count`; readable per the caller's contract.
        let (ptr, len) = unsafe { (p.get(i), l.get(i)) };
        out.push(Raw::new_mut(ptr, len)?);
    }
    Ok((out, [p.span(), l.span()]))
}

/// `count` caller slices given as parallel arrays of pointers and lengths, each checked
/// like [`Raw::new_mut`], and refused with `GRADSTEP_OVERLAPPING_BUFFERS` if any two
/// overlap, or overlap the two arrays (two `&mut` to the same memory would be
/// undefined behaviour). `reads` are the call's other inputs (buffers, structs), `outs`
/// its other outputs (structs it writes): no slice may overlap either, no output an
/// input (the arrays included) or another output.
///
/// # Safety
/// `ptrs` and `lens` must be NULL or valid for `count` elements, and every slice that
/// passes the checks valid for reads and writes of its length and otherwise unaliased.
pub(crate) unsafe fn slices_mut<'a, T>(
    ptrs: *const *mut T,
    lens: *const usize,
    count: usize,
    reads: &[Span],
    outs: &[Span],
) -> Result<Vec<&'a mut [T]>, gradstep_status> {
    // SAFETY: the caller's contract for the two arrays.
    let (raws, arrays) = unsafe { raws(ptrs, lens, count)? };
    let mut spans = vec_with_capacity(count)?;
    spans.extend(raws.iter().map(|r| r.span()).filter(|s| s.len > 0));
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[0].overlaps(w[1])) {
        return Err(GRADSTEP_OVERLAPPING_BUFFERS);
    }
    for s in &spans {
        disjoint(&[*s], &arrays)?;
        disjoint(&[*s], reads)?;
        disjoint(&[*s], outs)?;
    }
    disjoint(outs, &arrays)?;
    disjoint(outs, reads)?;
    let mut out = vec_with_capacity(count)?;
    for r in raws {
        // SAFETY: checked non-NULL, aligned, bounded, and disjoint from every other
        // buffer of the call above; valid per the caller's contract.
        out.push(unsafe { r.slice_mut() });
    }
    Ok(out)
}

/// Like [`slices_mut`], for slices that are only read (overlap among them is then
/// harmless). Returns their spans and the two arrays' too, for the caller's own
/// overlap checks: none may be under anything the call writes.
///
/// # Safety
/// As for [`slices_mut`], for reads.
pub(crate) unsafe fn slices<'a, T>(
    ptrs: *const *const T,
    lens: *const usize,
    count: usize,
) -> Result<(Vec<&'a [T]>, Vec<Span>), gradstep_status> {
    // SAFETY: the caller's contract for the two arrays.
    let (raws, arrays) = unsafe { raws(ptrs.cast::<*mut T>(), lens, count)? };
    let mut spans = vec_with_capacity(count + 2)?;
    spans.extend(raws.iter().map(|r| r.span()));
    spans.extend(arrays);
    let mut out = vec_with_capacity(count)?;
    for r in raws {
        // SAFETY: checked non-NULL, aligned and bounded; readable per the caller's
        // contract (the caller checks that nothing it writes overlaps `spans`).
        out.push(unsafe { r.slice() });
    }
    Ok((out, spans))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's last error as a `String`.
    fn last() -> String {
        let mut buf = [0u8; 256];
        // SAFETY: a writable local buffer of the length passed.
        let n = unsafe { last_error(buf.as_mut_ptr(), buf.len()) };
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// A detail noted before a nested call (a C callback calling back into gradstep)
    /// survives it, whatever the nested call noted or returned; the nested call's own
    /// detail is its last error until the outer call returns.
    #[test]
    fn a_detail_noted_before_a_nested_call_survives_it() {
        let outer = guard(|| {
            note(GRADSTEP_LENGTH_TOO_LARGE, "outer detail");
            let inner = guard(|| Err(note(GRADSTEP_NULL_POINTER, "inner detail")));
            assert_eq!(inner, GRADSTEP_NULL_POINTER);
            assert_eq!(last(), "inner detail");
            assert_eq!(guard(|| Ok(())), GRADSTEP_OK);
            assert_eq!(last(), "");
            Err(GRADSTEP_LENGTH_TOO_LARGE)
        });
        assert_eq!(outer, GRADSTEP_LENGTH_TOO_LARGE);
        assert_eq!(last(), "outer detail");
        // A detail noted for another status than the one returned is not used; none
        // is left over for the next call.
        assert_eq!(
            guard(|| {
                note(GRADSTEP_NULL_POINTER, "not this one");
                Err(GRADSTEP_LENGTH_TOO_LARGE)
            }),
            GRADSTEP_LENGTH_TOO_LARGE
        );
        assert_ne!(last(), "not this one");
        assert_eq!(guard(|| Err(GRADSTEP_NULL_POINTER)), GRADSTEP_NULL_POINTER);
        assert_ne!(last(), "not this one");
    }

    /// Issue 12, finding 2 (printing): a panic inside the boundary (here a size that
    /// overflows, as `Vec` reports it) printed its message and a backtrace on the host's
    /// stderr. Run in a child process (this test binary again) whose stderr is captured:
    /// the boundary's panics print nothing, even nested, while a panic of the host's own
    /// in the same process still reaches the previous hook and prints.
    #[test]
    #[cfg_attr(miri, ignore = "re-runs its own binary: Miri cannot spawn processes")]
    fn boundary_panics_print_nothing_and_host_panics_still_print() {
        const CHILD: &str = "GRADSTEP_TEST_PANIC_CHILD";
        const NAME: &str =
            "boundary::tests::boundary_panics_print_nothing_and_host_panics_still_print";
        if std::env::var_os(CHILD).is_some() {
            let overflow = guard(|| {
                let n = std::hint::black_box(usize::MAX);
                let v: Vec<u64> = Vec::with_capacity(n);
                Err(if v.is_empty() {
                    GRADSTEP_OK
                } else {
                    GRADSTEP_OUT_OF_MEMORY
                })
            });
            assert_eq!(overflow, GRADSTEP_INTERNAL_ERROR);
            let nested = guard(|| {
                assert_eq!(
                    guard(|| panic!("inner boundary marker")),
                    GRADSTEP_INTERNAL_ERROR
                );
                panic!("outer boundary marker")
            });
            assert_eq!(nested, GRADSTEP_INTERNAL_ERROR);
            let host = catch_unwind(|| panic!("host panic marker"));
            assert!(host.is_err());
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test:\n{stdout}"
        );
        for quiet in ["capacity overflow", "boundary marker"] {
            assert!(!stderr.contains(quiet), "printed {quiet:?}:\n{stderr}");
        }
        assert!(
            stderr.contains("host panic marker"),
            "host panic silenced:\n{stderr}"
        );
    }

    #[test]
    fn lengths_beyond_isize_max_bytes_are_refused_before_any_slice() {
        let x = [0f32; 4];
        assert_eq!(max_len::<f32>(), isize::MAX as usize / 4);
        assert!(Raw::new(x.as_ptr(), max_len::<f32>()).is_ok());
        assert_eq!(
            Raw::new(x.as_ptr(), max_len::<f32>() + 1).err(),
            Some(GRADSTEP_LENGTH_TOO_LARGE)
        );
        assert_eq!(
            Raw::new(x.as_ptr(), usize::MAX / 4).err(),
            Some(GRADSTEP_LENGTH_TOO_LARGE)
        );
        assert_eq!(
            Raw::<f32>::new(core::ptr::null(), 0).err(),
            Some(GRADSTEP_NULL_POINTER)
        );
    }

    #[test]
    fn spans_overlap_only_when_they_share_a_byte() {
        let x = [0f64; 4];
        let p = x.as_ptr();
        // SAFETY: in bounds of `x`.
        let (a, b) = (Span::of(p, 2), Span::of(unsafe { p.add(2) }, 2));
        assert!(!a.overlaps(b) && !b.overlaps(a));
        // SAFETY: in bounds of `x`.
        let c = Span::of(unsafe { p.add(1) }, 2);
        assert!(a.overlaps(c) && c.overlaps(b));
        assert!(!Span::of(p, 0).overlaps(a));
        assert_eq!(disjoint(&[a], &[b]), Ok(()));
        assert_eq!(disjoint(&[a, c], &[]), Err(GRADSTEP_OVERLAPPING_BUFFERS));
        assert_eq!(disjoint(&[a], &[c]), Err(GRADSTEP_OVERLAPPING_BUFFERS));
        // Two buffers that are only read may overlap.
        assert_eq!(disjoint(&[b], &[a, a]), Ok(()));
    }
}
