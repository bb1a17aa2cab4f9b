//! A buffer whose first element sits on a page (4096-byte) boundary, so also on the
//! 64-byte one torch's allocator gives tensors. Shared by benches/speed.rs and
//! frontend-ffi/benches/percall.rs (included by `#[path]`): when every buffer of a bench
//! starts on a page, its columns differ only by what they do, not by where the allocator
//! happened to put their buffers. A stream straddling cache lines costs a small step
//! several per cent, and so can streams at different offsets within a page: on session
//! 13's Zen 3, with 64-byte alignment, percall's `kernel+words` measured 0.931 of the
//! kernel at 4K where the C step, which does that and more, measured 0.957 (page-aligned,
//! 0.979 and 0.961); on session 15's Zen 5, `malloc`-placed buffers made the speed
//! bench's kernel column step f32 Adam at 4K at 0.81 of the same step page-aligned.

/// `n` `f32`s from a 4096-byte boundary.
pub struct PageAligned {
    v: Vec<f32>,
    off: usize,
    n: usize,
}

impl PageAligned {
    /// `n` zeros.
    pub fn zeros(n: usize) -> PageAligned {
        let v = vec![0.0f32; n + 1024];
        let off = v.as_ptr().align_offset(4096);
        PageAligned { v, off, n }
    }

    /// The `n` values of `values` (zeros after it ends).
    pub fn filled(n: usize, values: impl IntoIterator<Item = f32>) -> PageAligned {
        let mut b = PageAligned::zeros(n);
        b.fill(values);
        b
    }

    /// Overwrites the elements with `values`, as far as it goes.
    pub fn fill(&mut self, values: impl IntoIterator<Item = f32>) {
        for (e, x) in self.get_mut().iter_mut().zip(values) {
            *e = x;
        }
    }

    pub fn get(&self) -> &[f32] {
        &self.v[self.off..self.off + self.n]
    }

    pub fn get_mut(&mut self) -> &mut [f32] {
        &mut self.v[self.off..self.off + self.n]
    }
}
