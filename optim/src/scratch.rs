//! Scratch memory for the layer-wise rules' steps ([`gradstep::rules::Rule::step_scratch`]).
//!
//! LAMB's step is two passes over a tensor: the first updates the moments and sums the
//! norms of θ and of the update u, the second applies u scaled by the trust ratio. With
//! scratch memory the first pass stores u and the second reads it back instead of
//! computing it again from the moments: the same bits, one square root and one division
//! per element instead of two of each. That pays while the tensor's buffers stay in
//! cache between the passes; from main memory the scratch's traffic costs more than the
//! divider work it saves (f32 LAMB on a Zen 4, scratch / none: ×1.25–1.28 from 4K to
//! 256K elements, ×1.08 at 512K, ×0.79 at 1M and ×0.94 at 16M with the scratch as long
//! as the tensor). So an optimizer of a layer-wise rule keeps one buffer of at most
//! [`SCRATCH_MAX_BYTES`], shared by its tensors one after the other (on several
//! threads, cut between the tensors stepped at once), and steps with it every tensor of
//! up to that many bytes; larger tensors step without.

use gradstep::checkpoint::Element;
use gradstep::lookahead::Lookahead;
use gradstep::rules::AnyRule;

use crate::error::Error;
use crate::{LINE, uses_scratch, zeros};

/// The largest tensor, in bytes of its params, that an [`Optimizer`](crate::Optimizer) of
/// a layer-wise rule (LAMB) steps with scratch memory, and the most scratch memory it
/// holds (plus a cache line per tensor for alignment): 1 MiB, 262 144 `f32` or 131 072
/// `f64` elements. Larger tensors step without scratch, with the same bits.
pub const SCRATCH_MAX_BYTES: usize = 1 << 20;

/// An optimizer's scratch buffer: grown when a tensor that will use it is registered,
/// never during a step.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch<T> {
    buf: Vec<T>,
}

impl<T: Element> Scratch<T> {
    /// The elements of a cache line: the most a slice's alignment skips.
    const PAD: usize = LINE / core::mem::size_of::<T>();

    /// The most elements the buffer holds.
    const MAX_LEN: usize = SCRATCH_MAX_BYTES / core::mem::size_of::<T>() + Self::PAD;

    /// Whether a tensor of `n` elements steps with scratch memory (for a layer-wise
    /// rule outside Lookahead).
    pub(crate) fn wants(n: usize) -> bool {
        n > 0 && n <= SCRATCH_MAX_BYTES / core::mem::size_of::<T>()
    }

    /// Makes room for one more tensor of `n` elements ([`Scratch::wants`]) beside
    /// those before it, up to [`SCRATCH_MAX_BYTES`]: a tensor alone always fits.
    /// [`Error::OutOfMemory`] if the allocation fails (the buffer is then unchanged).
    pub(crate) fn reserve(&mut self, n: usize) -> Result<(), Error> {
        let len = self
            .buf
            .len()
            .saturating_add(n)
            .saturating_add(Self::PAD)
            .min(Self::MAX_LEN);
        if len > self.buf.len() {
            let mut buf = zeros(len)?;
            // What a scratch holds between steps does not matter: no copy.
            core::mem::swap(&mut self.buf, &mut buf);
        }
        Ok(())
    }

    /// The buffer, to cut into one slice per tensor stepped at once.
    pub(crate) fn cutter(&mut self) -> Cutter<'_, T> {
        Cutter {
            rest: &mut self.buf,
        }
    }
}

/// Hands out disjoint slices of a [`Scratch`] buffer.
pub(crate) struct Cutter<'a, T> {
    rest: &'a mut [T],
}

impl<'a, T: Element> Cutter<'a, T> {
    /// Scratch memory for a tensor of `n` elements of `rule` (wrapped in `lookahead` if
    /// set) whose params are at `params`, if it steps with some ([`uses_scratch`]) and
    /// `n` elements are left: a slice that starts at the params' offset within a cache
    /// line where the rest of the buffer allows (the kernels align their vector
    /// accesses to the params: a scratch at another offset makes each of its accesses
    /// straddle two lines), at the rest's start otherwise.
    pub(crate) fn take(
        &mut self,
        rule: &AnyRule,
        lookahead: Option<Lookahead<()>>,
        n: usize,
        params: *const T,
    ) -> Option<&'a mut [T]> {
        if !uses_scratch::<T>(rule, lookahead, n) {
            return None;
        }
        let size = core::mem::size_of::<T>().max(1);
        let rest = core::mem::take(&mut self.rest);
        let (want, base) = (params.addr() % LINE, rest.as_ptr().addr() % LINE);
        let gap = (want + LINE - base) % LINE;
        let skip = if gap.is_multiple_of(size) && gap / size + n <= rest.len() {
            gap / size
        } else {
            0
        };
        if skip + n > rest.len() {
            self.rest = rest;
            return None;
        }
        let (slice, rest) = rest[skip..].split_at_mut(n);
        self.rest = rest;
        Some(slice)
    }
}
