//! Where a tensor's state slices sit in memory, relative to the caller's params and
//! grads.
//!
//! Two placements slow the kernels' loop down without changing a bit of its result:
//!
//! - *A state slice at another offset within a cache line than the params.* The kernels
//!   align their vector accesses to the params; such a slice's every vector access
//!   straddles two lines (the owning optimizer stepped 64K Adam params 3–4 % slower
//!   than the kernel with `malloc`-placed state: benches/percall.rs).
//! - *4K aliasing.* A load whose address equals that of a store a few iterations
//!   earlier in its low 12 bits (the offset within a 4 KiB page) waits for the store, as
//!   if it read what the store wrote. The element loop stores params and state at `i`
//!   and loads every buffer at `i + W` next: a buffer the loop loads that sits up to a
//!   few hundred bytes *behind* one it stores, modulo 4 KiB, makes every load of it such
//!   a load. Measured on a Zen 4 (page-aligned params and grads, 1K f32 elements, the
//!   state moved in 64-byte steps): SGD with momentum 7.9× slower with its buffer 64
//!   bytes past the params (the params' next loads behind the buffer's stores), 2.2× at
//!   256, 1.1× at 640; Adam 3.7× with its moments 64 bytes before the params, 2.0× at
//!   128; unaffected from about 1 KiB away. `malloc` places the state wherever it
//!   likes, so the C handle, whose allocation happened to land there, stepped 1K Adam
//!   params at 0.46 of the kernel in benches/percall.rs.
//!
//! So a [`State`] of at least [`SPREAD_MIN_BYTES`] per slot gives each slot a page of
//! room in its allocation, and before a step ([`State::place`]), when the params' or
//! grads' page offset is new and a slot is within [`NEAR`] bytes of the params, the
//! grads or another slot (modulo 4 KiB), it moves the slots apart: each in turn to the
//! offset within a page farthest from the params, the grads and the slots placed
//! before it, at the params' offset within a line; at most [`MAX_MOVES`] times (a
//! caller alternating between buffers that want different places would otherwise have
//! the state copied every step). Smaller states keep their slots back to back with a
//! cache line to spare and only match the params' offset within a line: a page per
//! slot would be most of their memory. The caller's own buffers (the kernels' API, the
//! C kernel function) are the caller's to place; buffers at the same offset within a
//! page (page-aligned ones, say) measured safe, and as fast as spread ones from 1K to
//! 16M params (`percall --spread`).

use gradstep::checkpoint::Element;
use gradstep::lookahead::MAX_SLOTS;

use crate::error::Error;

/// The bytes of a cache line.
pub(crate) const LINE: usize = 64;

/// The period of 4K aliasing: a load is compared with earlier stores on its address's
/// low 12 bits.
pub(crate) const PAGE: usize = 4096;

/// Slots of at least this many bytes get a page of room each ([`State`]); smaller ones
/// stay back to back.
pub(crate) const SPREAD_MIN_BYTES: usize = 2048;

/// Slots closer than this (bytes, modulo a page) to the params, the grads or each other
/// are moved apart ([`State::place`]): the slowdowns measured above had faded by about
/// 1 KiB. With more than three slots the page has no room for all at this distance;
/// they are then moved when closer than the best placement found.
pub(crate) const NEAR: usize = 768;

/// A tensor's state slices in one allocation: slot `k` is `buf[at[k]..][..n]`.
#[derive(Clone, Debug)]
pub(crate) struct State<T> {
    buf: Vec<T>,
    /// Each slot's start (elements).
    at: [usize; MAX_SLOTS],
    n: usize,
    count: usize,
    /// Elements from one slot's room to the next: `n` for back-to-back slots, `n` plus
    /// a page (rounded up to lines) when spread.
    room: usize,
    /// Whether the slots are spread (each has a page of room).
    spread: bool,
    /// The params' and grads' page offsets and the buffer's address at the last
    /// [`State::place`] (`None` before the first; a clone has its own buffer).
    placed: Option<(usize, usize, usize)>,
    /// Moves made by [`State::spread_out`]; it makes at most [`MAX_MOVES`].
    moves: u8,
}

/// The most times a spread state moves: a caller alternating between buffers that want
/// different places would otherwise have the state copied at every step, as costly as
/// the stall it avoids. Enough for the first step and a few re-placements of params
/// that moved for good.
pub(crate) const MAX_MOVES: u8 = 4;

/// The distance between two offsets within a page, either way round.
fn circular(a: usize, b: usize) -> usize {
    let d = (a % PAGE + PAGE - b % PAGE) % PAGE;
    d.min(PAGE - d)
}

impl<T: Element> State<T> {
    /// `count` slots of `n` zeros, laid out as the module describes, or
    /// [`Error::OutOfMemory`].
    pub(crate) fn zeros(n: usize, count: usize) -> Result<Self, Error> {
        let too_big = || Error::OutOfMemory {
            requested: usize::MAX,
        };
        let size = core::mem::size_of::<T>().max(1);
        let count = count.min(MAX_SLOTS);
        let bytes = n.checked_mul(size).ok_or_else(too_big)?;
        let spread = bytes >= SPREAD_MIN_BYTES;
        let line = LINE / size;
        let room = if spread {
            n.div_ceil(line)
                .checked_mul(line)
                .and_then(|l| l.checked_add(PAGE / size))
                .ok_or_else(too_big)?
        } else {
            n
        };
        // Back-to-back slots get a line to spare for `align_within_line`.
        let total = room
            .checked_mul(count)
            .and_then(|t| t.checked_add(if spread { 0 } else { line }))
            .ok_or_else(too_big)?;
        let mut at = [0; MAX_SLOTS];
        for (k, at) in at.iter_mut().enumerate().take(count) {
            *at = k * room;
        }
        Ok(State {
            buf: crate::zeros(total)?,
            at,
            n,
            count,
            room,
            spread,
            placed: None,
            moves: 0,
        })
    }

    /// The number of slots.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Slot `k` (empty past the last).
    pub(crate) fn slot(&self, k: usize) -> &[T] {
        match self.at.get(k) {
            Some(&at) if k < self.count => self.buf.get(at..at + self.n).unwrap_or_default(),
            _ => &[],
        }
    }

    /// Back-to-back slots as one slice (slot `k` at `k·n`), the kernels' flat form;
    /// `None` when spread.
    pub(crate) fn flat_mut(&mut self) -> Option<&mut [T]> {
        if self.spread {
            return None;
        }
        let (at, span) = (self.at[0], self.count * self.n);
        self.buf.get_mut(at..at + span)
    }

    /// Every slot, to write: the first `count` entries (the rest empty).
    #[inline]
    pub(crate) fn slots_mut(&mut self) -> [&mut [T]; MAX_SLOTS] {
        let mut out: [&mut [T]; MAX_SLOTS] = Default::default();
        let mut rest: &mut [T] = &mut self.buf;
        let mut pos = 0;
        for (out, &at) in out.iter_mut().zip(&self.at).take(self.count) {
            // Slots start in order, each past the one before (`at[k] ≥ at[k−1] + n`).
            let Some((_, tail)) = rest.split_at_mut_checked(at.wrapping_sub(pos)) else {
                break;
            };
            let Some((slot, tail)) = tail.split_at_mut_checked(self.n) else {
                break;
            };
            (*out, rest, pos) = (slot, tail, at + self.n);
        }
        out
    }

    /// The least distance (bytes, modulo a page) from a slot's start to the params, the
    /// grads or another slot's start, were each slot `k` at `at[k]`.
    fn distance(&self, at: &[usize], p: usize, g: usize) -> usize {
        let size = core::mem::size_of::<T>().max(1);
        let base = self.buf.as_ptr().addr();
        let addr = |k: usize| base + at[k] * size;
        let mut near = PAGE;
        for k in 0..self.count {
            near = near.min(circular(addr(k), p)).min(circular(addr(k), g));
            for j in 0..k {
                near = near.min(circular(addr(k), addr(j)));
            }
        }
        near
    }

    /// Moves the slots (their values, not their meaning) before a step on `params`
    /// and `grads`, as the module describes.
    #[inline]
    pub(crate) fn place(&mut self, params: *const T, grads: *const T) {
        if !self.spread {
            return self.align_within_line(params.addr());
        }
        let (p, g) = (params.addr() % PAGE, grads.addr() % PAGE);
        let base = self.buf.as_ptr().addr();
        if self.placed != Some((p, g, base)) {
            self.placed = Some((p, g, base));
            self.spread_out(p, g);
        }
    }

    /// [`State::place`] for spread slots, the params or grads at new page offsets.
    #[cold]
    fn spread_out(&mut self, p: usize, g: usize) {
        if self.moves >= MAX_MOVES {
            return;
        }
        let base = self.buf.as_ptr().addr();
        let size = core::mem::size_of::<T>().max(1);
        let lined = (0..self.count).all(|k| (base + self.at[k] * size) % LINE == p % LINE);
        let now = self.distance(&self.at, p, g);
        if lined && now >= NEAR {
            return;
        }
        // Slot 0 at each page offset in turn with up to three slots (one otherwise),
        // every further slot at the offset farthest from the params, the grads and the
        // slots placed before it; the plan that keeps them farthest apart.
        let firsts = if self.count <= 3 { PAGE / LINE } else { 1 };
        let mut best: Option<([usize; MAX_SLOTS], usize)> = None;
        for first in 0..firsts {
            let Some(want) = self.plan(p, g, (self.count <= 3).then_some(first)) else {
                return;
            };
            let near = self.distance(&want, p, g);
            if best.is_none_or(|(_, d)| near > d) {
                best = Some((want, near));
            }
        }
        if let Some((want, near)) = best
            && (!lined || near > now)
        {
            self.moves += 1;
            // Each slot moves within its own room: no move overwrites another slot.
            for (at, &want) in self.at.iter_mut().zip(&want).take(self.count) {
                if want != *at {
                    self.buf.copy_within(*at..*at + self.n, want);
                    *at = want;
                }
            }
        }
    }

    /// Where each slot would start (elements): slot 0 at the `first`-th line of the
    /// page (from the params' offset within a line) if given, and every other slot at
    /// the page offset farthest from the params, the grads and the slots before it.
    /// `None` if a slot cannot start at the params' offset within a line (a params
    /// pointer not aligned to its element).
    fn plan(&self, p: usize, g: usize, first: Option<usize>) -> Option<[usize; MAX_SLOTS]> {
        let size = core::mem::size_of::<T>().max(1);
        let base = self.buf.as_ptr().addr();
        let mut want = [0usize; MAX_SLOTS];
        let mut taken = [0usize; MAX_SLOTS + 2];
        (taken[0], taken[1]) = (p, g);
        for k in 0..self.count {
            let offset = match (k, first) {
                (0, Some(j)) => j * LINE + p % LINE,
                _ => (0..PAGE / LINE)
                    .map(|j| j * LINE + p % LINE)
                    .max_by_key(|&c| {
                        let near = taken[..2 + k].iter().map(|&t| circular(c, t)).min();
                        (near.unwrap_or(PAGE), core::cmp::Reverse(c))
                    })
                    .unwrap_or(p),
            };
            taken[2 + k] = offset;
            let room = base + k * self.room * size;
            let gap = (offset + PAGE - room % PAGE) % PAGE;
            if !gap.is_multiple_of(size) {
                return None;
            }
            want[k] = k * self.room + gap / size;
        }
        Some(want)
    }

    /// Back-to-back slots: moves them to the params' offset within a cache line, when
    /// they are not there already and the allocation allows it.
    #[inline]
    fn align_within_line(&mut self, p: usize) {
        let size = core::mem::size_of::<T>().max(1);
        let base = self.buf.as_ptr().addr() % LINE;
        let gap = (p % LINE + LINE - base) % LINE;
        if !gap.is_multiple_of(size) {
            return;
        }
        let off = gap / size;
        if off != self.at[0] {
            self.move_back_to_back(off);
        }
    }

    /// Moves back-to-back slots to start at `off`, if the allocation allows it.
    #[cold]
    fn move_back_to_back(&mut self, off: usize) {
        let span = self.count * self.n;
        if off + span <= self.buf.len() {
            self.buf.copy_within(self.at[0]..self.at[0] + span, off);
            for (k, at) in self.at.iter_mut().enumerate().take(self.count) {
                *at = off + k * self.n;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A large state is advised for transparent huge pages (Linux): the mapping that
    /// holds its first whole 2 MiB extent is eligible (`THPeligible: 1` in
    /// /proc/self/smaps), which under the `madvise` setting takes the advice. Says so
    /// and checks nothing where the kernel has huge pages off or does not report it.
    #[test]
    #[cfg(all(target_os = "linux", not(miri)))]
    fn large_state_is_eligible_for_huge_pages() {
        let s = State::<f32>::zeros(4 << 20, 2).unwrap();
        let start = s.buf.as_ptr() as usize;
        let extent = start.next_multiple_of(crate::HUGE_PAGE);
        assert!(extent + crate::HUGE_PAGE <= start + s.buf.len() * 4);
        assert_huge_page_eligible(extent);
    }

    /// Asserts that the mapping holding `addr` is eligible for transparent huge pages
    /// (`THPeligible: 1` in /proc/self/smaps). Says so and checks nothing where the
    /// kernel has huge pages off or does not report it.
    #[cfg(all(target_os = "linux", not(miri)))]
    pub(crate) fn assert_huge_page_eligible(addr: usize) {
        let setting = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !setting.contains("[madvise]") && !setting.contains("[always]") {
            eprintln!("transparent huge pages are off here ({setting:?}): not checked");
            return;
        }
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        if !smaps.contains("THPeligible:") {
            eprintln!("this kernel's /proc/self/smaps has no THPeligible: not checked");
            return;
        }
        let mut inside = false;
        let mut eligible = None;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Some((a, b)) = range.split_once('-')
                && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                inside = a <= addr && addr < b;
            } else if inside && let Some(v) = line.strip_prefix("THPeligible:") {
                eligible = Some(v.trim() == "1");
            }
        }
        assert_eq!(
            eligible,
            Some(true),
            "the mapping of {addr:#x} is not eligible"
        );
    }

    /// Fills every slot with values naming their slot and index.
    fn fill(s: &mut State<f64>) {
        for (k, slot) in s.slots_mut().into_iter().enumerate() {
            for (i, x) in slot.iter_mut().enumerate() {
                *x = (k * 1_000_000 + i) as f64;
            }
        }
    }

    fn check(s: &State<f64>, n: usize, count: usize, what: &str) {
        for k in 0..count {
            let slot = s.slot(k);
            assert_eq!(slot.len(), n, "{what}: slot {k}'s length");
            for (i, &x) in slot.iter().enumerate() {
                assert_eq!(x, (k * 1_000_000 + i) as f64, "{what}: slot {k}[{i}]");
            }
        }
        assert!(s.slot(count).is_empty());
        let mut ranges: Vec<(usize, usize)> = (0..count)
            .map(|k| (s.slot(k).as_ptr().addr(), s.slot(k).as_ptr().addr() + 8 * n))
            .collect();
        ranges.sort();
        for w in ranges.windows(2) {
            assert!(w[0].1 <= w[1].0, "{what}: slots overlap");
        }
    }

    /// Moving the slots moves their values with them, for every count of slots,
    /// back-to-back and spread, however the params and grads fall.
    #[test]
    fn moves_keep_every_value_and_no_slots_overlap() {
        let anchor = vec![0.0f64; 1024];
        let at = |bytes: usize| anchor.as_ptr().wrapping_byte_add(bytes);
        for n in [0usize, 1, 37, 255, 256, 1000, 1024, 3000] {
            for count in 0..=MAX_SLOTS {
                let mut s = State::<f64>::zeros(n, count).unwrap();
                assert_eq!(s.count(), count);
                assert_eq!(s.spread, n * 8 >= SPREAD_MIN_BYTES);
                fill(&mut s);
                for (p, g) in [(0, 0), (8, 4096 - 64), (64, 2048), (4032, 72), (1000, 3000)] {
                    s.moves = 0; // Every placement here, not only the first few.
                    s.place(at(p), at(g));
                    check(&s, n, count, &format!("n {n}, {count} slots, at {p}/{g}"));
                    if n > 0 && count > 0 {
                        let start = s.slot(0).as_ptr().addr();
                        assert_eq!(start % LINE, at(p).addr() % LINE, "n {n}, {count}");
                    }
                }
            }
        }
    }

    /// Params alternating between two places that want the slots elsewhere: the state
    /// moves `MAX_MOVES` times, then stays, its values intact.
    #[test]
    fn alternating_params_stop_moving_the_state() {
        let anchor = vec![0.0f64; 1024];
        let at = |bytes: usize| anchor.as_ptr().wrapping_byte_add(bytes);
        let mut s = State::<f64>::zeros(1000, 2).unwrap();
        fill(&mut s);
        let mut starts = Vec::new();
        for step in 0..12 {
            // Each place puts the params where the other's slots went.
            let start = s.slot(0).as_ptr().addr() % PAGE;
            let p = (start + PAGE - at(0).addr() % PAGE) % PAGE;
            s.place(at(p + 8 * (step % 2)), at(p + 8 * (step % 2)));
            starts.push(s.slot(0).as_ptr().addr());
            check(&s, 1000, 2, &format!("step {step}"));
        }
        let moved = starts.windows(2).filter(|w| w[0] != w[1]).count() + 1;
        assert_eq!(moved, usize::from(MAX_MOVES), "{starts:?}");
        assert_eq!(s.moves, MAX_MOVES);
    }

    /// With the params and grads at any two offsets, one or two slots end at least
    /// `NEAR` from them and each other; three at least 640 bytes, more at least 320 (the
    /// least the search finds over every pair of offsets 16 bytes apart: a page has no
    /// room for more).
    #[test]
    fn slots_stay_apart() {
        let anchor = vec![0.0f32; 2048];
        let at = |bytes: usize| anchor.as_ptr().wrapping_byte_add(bytes);
        for (count, least) in [(1, NEAR), (2, NEAR), (3, 640), (4, 320), (5, 320), (6, 320)] {
            let mut s = State::<f32>::zeros(1024, count).unwrap();
            for p in (0..PAGE).step_by(4 * 37) {
                for g in (0..PAGE).step_by(4 * 101) {
                    s.moves = 0; // Every placement here, not only the first few.
                    s.place(at(p), at(g));
                    let near = s.distance(&s.at, at(p).addr() % PAGE, at(g).addr() % PAGE);
                    assert!(
                        near >= least,
                        "{count} slots, params {p}, grads {g}: {near}"
                    );
                }
            }
        }
    }
}
