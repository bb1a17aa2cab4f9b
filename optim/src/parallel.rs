//! The multi-tensor step on several threads.
//!
//! Every registered rule's update is elementwise once its per-step coefficients are
//! known, and the coefficients depend only on the hyperparameters and the tensor's
//! scalar state. So a tensor is cut into chunks of `chunk_len` elements, each chunk is
//! stepped by the kernel ([`AnyRule::step`]) from a copy of the tensor's scalar state
//! (every copy advances to the same next state), and the chunks of all tensors are
//! shared out among the threads from one queue. Which thread takes which chunk changes
//! nothing: the result is bit for bit the single-threaded one, for any thread count
//! and chunk length (tested for every rule in `tests/threads.rs`).
//!
//! A rule whose update needs a reduction over the whole tensor (LAMB's trust ratio;
//! `AnyRule::whole_slice`) is not cut: each of its tensors is one job, so its result
//! is the single-threaded one too.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use gradstep::checkpoint::Element;
use gradstep::lookahead::{Lookahead, MAX_SLOTS};
use gradstep::rules::{AnyRule, AnyScalars};

use crate::error::Error;
use crate::{ParamGroup, Tensor};

/// One chunk of one tensor.
struct Job<'a, T> {
    tensor: usize,
    /// The tensor's first chunk: its resulting scalar state becomes the tensor's.
    first: bool,
    rule: AnyRule,
    lookahead: Option<Lookahead<()>>,
    scalars: AnyScalars,
    params: &'a mut [T],
    grads: &'a [T],
    slots: [&'a mut [T]; MAX_SLOTS],
    count: usize,
}

impl<T: Element> Job<'_, T> {
    fn run(mut self) -> (usize, bool, Result<AnyScalars, gradstep::Error>) {
        let result = crate::step_slices(
            &self.rule,
            self.lookahead,
            &mut self.scalars,
            self.params,
            self.grads,
            &mut self.slots[..self.count],
        )
        .map(|()| self.scalars);
        (self.tensor, self.first, result)
    }
}

/// Steps every tensor (already validated) on up to `threads` threads, `chunk_len`
/// elements per job.
pub(crate) fn step<T: Element>(
    groups: &[ParamGroup],
    lookahead: Option<Lookahead<()>>,
    tensors: &mut [Tensor<T>],
    caller: &mut [(&mut [T], &[T])],
    threads: usize,
    chunk_len: usize,
) -> Result<(), Error> {
    let mut jobs = Vec::new();
    for (i, (t, (p, g))) in tensors.iter_mut().zip(caller.iter_mut()).enumerate() {
        let rule = groups[t.group].rule;
        let count = crate::slots_of(&rule, lookahead).min(MAX_SLOTS);
        let mut slots: [&mut [T]; MAX_SLOTS] = Default::default();
        for (s, c) in slots
            .iter_mut()
            .zip(t.state.as_mut_slice().chunks_mut(t.n.max(1)))
        {
            *s = c;
        }
        let (mut p, mut g): (&mut [T], &[T]) = (&mut **p, *g);
        let mut first = true;
        loop {
            // A layer-wise rule's norm is over the whole tensor: one job.
            let len = if rule.whole_slice() {
                p.len()
            } else {
                p.len().min(chunk_len)
            };
            let (ph, pt) = core::mem::take(&mut p).split_at_mut(len);
            let (gh, gt) = g.split_at(len);
            let mut parts: [&mut [T]; MAX_SLOTS] = Default::default();
            for (part, s) in parts.iter_mut().zip(slots.iter_mut()).take(count) {
                let (head, tail) = core::mem::take(s).split_at_mut(len);
                (*part, *s) = (head, tail);
            }
            jobs.try_reserve(1)
                .map_err(|_| Error::OutOfMemory { requested: 1 })?;
            jobs.push(Job {
                tensor: i,
                first,
                rule,
                lookahead,
                scalars: t.scalars,
                params: ph,
                grads: gh,
                slots: parts,
                count,
            });
            (p, g, first) = (pt, gt, false);
            if p.is_empty() {
                break;
            }
        }
    }
    let threads = threads.min(jobs.len()).max(1);
    // Each thread claims the next job by its index; job `i`'s lock is only ever taken
    // by the one thread that claimed `i`, so no thread ever waits on another. (One lock
    // around the whole queue did make them wait: on a busy machine a thread descheduled
    // while holding it stalled the other for a time slice, and two threads stepped 200
    // tensors of 4K 3.7 times slower than one: benches/speed.rs --multi.)
    let mut queue = Vec::new();
    queue
        .try_reserve_exact(jobs.len())
        .map_err(|_| Error::OutOfMemory {
            requested: jobs.len(),
        })?;
    queue.extend(jobs.into_iter().map(|j| Mutex::new(Some(j))));
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        while let Some(slot) = queue.get(next.fetch_add(1, Ordering::Relaxed)) {
            let job = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            let Some(job) = job else { continue };
            let (tensor, first, result) = job.run();
            if first || result.is_err() {
                done.push((tensor, result));
            }
        }
        done
    };
    let results: Vec<_> = std::thread::scope(|s| {
        // A thread the system refuses to start leaves its share to the others.
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name(crate::WORKER_THREAD_NAME.into())
                    .spawn_scoped(s, work)
                    .ok()
            })
            .collect();
        let mut all = work();
        for h in helpers {
            // The kernels do not panic; if one did, pass it on as scope would.
            all.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        all
    });
    let mut error = None;
    for (tensor, result) in results {
        match result {
            Ok(scalars) => tensors[tensor].scalars = scalars,
            Err(e) => error = Some(e),
        }
    }
    match error {
        // Validated beforehand: unreachable unless a kernel refuses what it accepted.
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
