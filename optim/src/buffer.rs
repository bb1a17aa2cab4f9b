//! [`PageBuffer`]: memory for params, grads or a state placed for a step's speed.
//!
//! The one module of this crate with `unsafe` code besides the huge-page advice: an
//! allocation with an alignment `Vec` cannot ask for.

#![allow(unsafe_code)]

use core::fmt;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use std::alloc::{Layout, alloc, dealloc};

use gradstep::checkpoint::Element;

use crate::{Error, HUGE_PAGE, advise_huge_pages};

/// A page: 4 KiB, the unit that 4K aliasing counts in.
pub const PAGE: usize = 4 << 10;

/// `len` zeros of `T` placed where a step runs fastest over them: the caller's params,
/// grads, or a state for the kernels ([`gradstep::rules::Rule`]), which take any slice
/// but run slower over some.
///
/// - **Page-aligned.** A buffer that starts up to about 1 KiB before another, counted
///   modulo 4 KiB, can make a step several times slower on x86 (4K aliasing: a load
///   waits for an unrelated store to the same low address bits; f32 SGD with momentum
///   7.9× at 1K params, Adam 3.7×, on a Zen 4). Page-aligned buffers are all at one
///   offset within a page, which measured as fast as any spread (README, *Speed*,
///   sessions 19 and 20), and their vector loads never straddle two cache lines, as
///   those of glibc's 16-byte-aligned blocks do.
/// - **On huge pages, from 2 MiB.** On Linux a buffer of 2 MiB or more is a fresh
///   anonymous mapping of its own from a 2 MiB boundary, whose whole 2 MiB extents are
///   advised for transparent huge pages (`madvise(MADV_HUGEPAGE)`) before anything
///   touches them (a 3 MiB buffer's last MiB stays on 4 KiB pages), as the owning
///   optimizer's own state is ([`Optimizer::add_tensor`](crate::Optimizer::add_tensor)):
///   one TLB entry per 2 MiB instead of per 4 KiB. Its pages are backed at their first
///   write. Where the system's setting is `madvise` (Debian's default) nothing gets huge
///   pages unasked; under `never` the advice is refused and the buffer is the same.
///   Elsewhere it is 2 MiB-aligned memory from the global allocator.
///
/// Measured (README, *Speed*, session 21: `percall --buffers`, a Zen 4): the f32 Adam
/// kernel over these buffers ran 1.05–1.48× as fast as over `Vec`s from glibc's
/// `malloc` from 1K to 16M elements (medians of two runs of 21 rounds), SGD with momentum
/// 1.00–2.22×.
///
/// The results of a step are the same bits wherever its buffers are: only the speed
/// differs. Allocation rounds up to whole pages (at least one, also for `len` 0), so no
/// other allocation shares a buffer's pages.
///
/// ```
/// use gradstep::rules::{AnyRule, Rule};
/// use gradstep_optim::PageBuffer;
///
/// let rule = AnyRule::parse("adam")?;
/// let n = 1000;
/// let mut params = PageBuffer::<f32>::zeros(n)?;
/// let mut grads = PageBuffer::<f32>::zeros(n)?;
/// let mut state = PageBuffer::<f32>::zeros(n * rule.state_slots())?;
/// params.fill(1.0);
/// grads.fill(0.5);
/// let mut scalars = rule.fresh_scalars();
/// rule.step_flat(&mut scalars, &mut params, &grads, &mut state)?;
/// assert!(params.iter().all(|&p| p < 1.0));
/// assert_eq!(params.as_ptr().addr() % gradstep_optim::PAGE, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PageBuffer<T> {
    ptr: NonNull<T>,
    len: usize,
    from: Source,
}

/// Where a [`PageBuffer`]'s memory came from, to give it back there.
#[derive(Clone, Copy)]
enum Source {
    /// The global allocator, with this layout.
    Heap(Layout),
    /// An anonymous mapping of its own (Linux, from 2 MiB): its start and length.
    #[cfg(all(target_os = "linux", not(miri)))]
    Mapped { base: *mut libc::c_void, len: usize },
}

// SAFETY: a `PageBuffer` owns its allocation as a `Vec` owns its own; it is sent and
// shared as its elements are.
unsafe impl<T: Send> Send for PageBuffer<T> {}
// SAFETY: as above: `&PageBuffer` gives only `&[T]`.
unsafe impl<T: Sync> Sync for PageBuffer<T> {}

impl<T: Element> PageBuffer<T> {
    /// `len` zeros. Refused with [`Error::OutOfMemory`] (nothing allocated) when
    /// `len` elements are more than one allocation can hold or there is no memory for
    /// them; never aborts.
    pub fn zeros(len: usize) -> Result<Self, Error> {
        let refused = || Error::OutOfMemory { requested: len };
        let bytes = len.checked_mul(size_of::<T>()).ok_or_else(refused)?;
        let size = bytes
            .max(1)
            .checked_next_multiple_of(PAGE)
            .ok_or_else(refused)?;
        #[cfg(all(target_os = "linux", not(miri)))]
        if bytes >= HUGE_PAGE {
            return Self::mapped(len, size).ok_or_else(refused);
        }
        let align = if bytes >= HUGE_PAGE { HUGE_PAGE } else { PAGE };
        // Refuses a size that, rounded up to `align`, exceeds `isize::MAX`.
        let layout = Layout::from_size_align(size, align).map_err(|_| refused())?;
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc(layout) };
        let ptr = NonNull::new(raw).ok_or_else(refused)?;
        // Before the first write, which is when the kernel picks the pages' size (for
        // memory the allocator maps afresh; pages it reuses keep theirs).
        advise_huge_pages(raw, size);
        // SAFETY: `size` bytes from `raw` are this allocation, writable; all-zero bytes
        // are `T`'s zero (an IEEE float).
        unsafe { raw.write_bytes(0, size) };
        Ok(PageBuffer {
            ptr: ptr.cast(),
            len,
            from: Source::Heap(layout),
        })
    }

    /// `len` zeros (`size` bytes, whole pages, at least 2 MiB) in an anonymous mapping
    /// of their own from a 2 MiB boundary, advised for huge pages before anything
    /// touches it: fresh pages, which read as zeros and are backed at their first write
    /// (the allocator's memory of that size may be reused, already on 4 KiB pages:
    /// glibc maps blocks afresh only above a threshold that its frees raise to 32 MiB).
    /// `None` if the mapping is refused or its length overflows.
    #[cfg(all(target_os = "linux", not(miri)))]
    fn mapped(len: usize, size: usize) -> Option<Self> {
        let map_len = size.checked_add(HUGE_PAGE)?;
        if map_len > isize::MAX as usize {
            return None;
        }
        // SAFETY: a new private anonymous mapping, placed by the kernel; checked below.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        // The mapping holds `size` bytes from its first 2 MiB boundary: it starts on a
        // page, so that boundary is at most 2 MiB − 4 KiB in.
        let at = base
            .cast::<u8>()
            .wrapping_add(base.addr().next_multiple_of(HUGE_PAGE) - base.addr());
        advise_huge_pages(at, size);
        Some(PageBuffer {
            ptr: NonNull::new(at.cast())?,
            len,
            from: Source::Mapped { base, len: map_len },
        })
    }
}

impl<T> PageBuffer<T> {
    /// The first element's address, without making a slice of the buffer (as the
    /// slice's own `as_ptr` would): for a buffer whose elements others may be writing
    /// through a pointer handed out earlier.
    pub fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }

    /// As [`PageBuffer::as_ptr`], for writing.
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T> Deref for PageBuffer<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialized elements from an aligned, live allocation of at
        // least `len * size_of::<T>()` bytes (checked in `zeros` to be at most
        // `isize::MAX`), owned by `self`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> DerefMut for PageBuffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for PageBuffer<T> {
    fn drop(&mut self) {
        match self.from {
            // SAFETY: allocated in `zeros` with this layout, freed once, here. The
            // elements are floats: nothing to drop.
            Source::Heap(layout) => unsafe { dealloc(self.ptr.as_ptr().cast(), layout) },
            #[cfg(all(target_os = "linux", not(miri)))]
            Source::Mapped { base, len } => {
                // SAFETY: the whole mapping `mapped` made, unmapped once, here; a
                // refusal (which only a wrong range gives) leaves it mapped.
                let _ = unsafe { libc::munmap(base, len) };
            }
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for PageBuffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alignment by size, zeros, and the length, for both element types and the sizes
    /// at the edges of the rules (0, below and at a page, below and at 2 MiB).
    #[test]
    fn zeroed_and_aligned_by_size() {
        fn check<T: Element + fmt::Debug>(len: usize) {
            let mut b = PageBuffer::<T>::zeros(len).unwrap();
            assert_eq!(b.len(), len);
            let bytes = len * size_of::<T>();
            let align = if bytes >= HUGE_PAGE { HUGE_PAGE } else { PAGE };
            assert_eq!(b.as_ptr().addr() % align, 0, "{len} elements");
            assert!(b.iter().all(|x| x.to_f64().to_bits() == 0));
            // Every element is writable and reads back.
            for (i, x) in b.iter_mut().enumerate() {
                *x = T::from_f64(i as f64);
            }
            assert!(b.iter().enumerate().all(|(i, x)| x.to_f64() == i as f64));
        }
        for len in [
            0,
            1,
            1023,
            1024,
            1025,
            (2 << 20) / 4 - 1,
            (2 << 20) / 4,
            3 << 20,
        ] {
            check::<f32>(len);
            check::<f64>(len / 2);
        }
    }

    /// Sizes no allocation can hold are refused, never a panic or an abort.
    #[test]
    fn impossible_sizes_are_refused() {
        for len in [usize::MAX, usize::MAX / 4, isize::MAX as usize / 4 + 1] {
            assert!(matches!(
                PageBuffer::<f32>::zeros(len),
                Err(Error::OutOfMemory { requested }) if requested == len
            ));
        }
        assert!(matches!(
            PageBuffer::<f64>::zeros(isize::MAX as usize / 8),
            Err(Error::OutOfMemory { .. })
        ));
    }

    /// A buffer of 2 MiB or more is eligible for transparent huge pages, as the owning
    /// optimizer's state is (the same check as `layout`'s test of it).
    #[test]
    #[cfg(all(target_os = "linux", not(miri)))]
    fn large_buffers_are_eligible_for_huge_pages() {
        let b = PageBuffer::<f32>::zeros(1 << 20).unwrap();
        crate::layout::tests::assert_huge_page_eligible(b.as_ptr().addr());
    }
}
