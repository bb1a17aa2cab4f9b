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
//! A layer-wise rule (LAMB's trust ratio; `AnyRule::whole_slice`) needs two sums over
//! the whole tensor between its moments and its update. Its tensors are cut into parts
//! of `chunk_len` rounded up to [`NORM_PART_ALIGN`] and stepped in two rounds: every
//! part's moments and sums ([`AnyRule::step_norms_part`]) in the first, with the other
//! rules' chunks, and after the sums of each tensor's parts are merged (exact sums: the
//! order does not matter), every part's update ([`AnyRule::step_apply_part`]) in the
//! second. The bits are again the single-threaded step's. Under Lookahead, whose slow
//! weights wrap the whole step, a layer-wise tensor stays one job. A layer-wise tensor
//! that steps with scratch memory ([`crate::SCRATCH_MAX_BYTES`]) has its own slice of
//! the optimizer's scratch buffer for the step, cut into the same parts as its params,
//! while the buffer lasts (the tensors after it step without: the same bits).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use gradstep::checkpoint::Element;
use gradstep::lookahead::{Lookahead, MAX_SLOTS};
use gradstep::rules::{AnyRule, AnyScalars, NORM_PART_ALIGN, NormSums};

use crate::error::Error;
use crate::scratch::Scratch;
use crate::{ParamGroup, Tensor};

/// What a job does with its slices.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// A whole step of a chunk (or of a whole tensor).
    Step,
    /// The first round of a layer-wise rule's part: its moments and sums.
    Norms,
    /// The second round: the part's update from its tensor's merged sums.
    Apply,
}

/// One chunk of one tensor.
struct Job<'a, T> {
    tensor: usize,
    /// The tensor's first chunk: its resulting scalar state becomes the tensor's.
    first: bool,
    kind: Kind,
    rule: AnyRule,
    lookahead: Option<Lookahead<()>>,
    scalars: AnyScalars,
    params: &'a mut [T],
    grads: &'a [T],
    slots: [&'a mut [T]; MAX_SLOTS],
    count: usize,
    /// The part's scratch memory, if its tensor steps with some.
    scratch: Option<&'a mut [T]>,
    /// A [`Kind::Norms`] or [`Kind::Apply`] job's slot in the parts' sums (kept out of
    /// the job: the sums are a kilobyte, and most jobs are elementwise chunks).
    part: usize,
}

impl<T: Element> Job<'_, T> {
    /// Runs the job: a first round stores its sums in `parts[self.part]`; the second
    /// round reads its tensor's merged sums in `merged`. The scalar state after a step
    /// or an update, `None` after a first round.
    fn run(
        &mut self,
        parts: &[Mutex<NormSums>],
        merged: &[NormSums],
    ) -> Result<Option<AnyScalars>, gradstep::Error> {
        let state = &mut self.slots[..self.count];
        let mut scalars = self.scalars;
        let scratch = self.scratch.as_deref_mut();
        match (self.kind, scratch) {
            (Kind::Step, Some(scratch)) => {
                self.rule
                    .step_scratch(&mut scalars, self.params, self.grads, state, scratch)?
            }
            (Kind::Step, None) => crate::step_slices(
                &self.rule,
                self.lookahead,
                &mut scalars,
                self.params,
                self.grads,
                state,
            )?,
            (Kind::Norms, scratch) => {
                let sums = self.rule.step_norms_part(
                    &self.scalars,
                    self.params,
                    self.grads,
                    state,
                    scratch,
                )?;
                if let Some(slot) = parts.get(self.part) {
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = sums;
                }
                return Ok(None);
            }
            (Kind::Apply, scratch) => {
                let sums = merged.get(self.tensor).unwrap_or(&NormSums::EMPTY);
                self.rule.step_apply_part(
                    &mut scalars,
                    sums,
                    self.params,
                    self.grads,
                    state,
                    scratch,
                )?
            }
        }
        Ok(Some(scalars))
    }
}

/// Steps every tensor (already validated) on up to `threads` threads, `chunk_len`
/// elements per job, layer-wise tensors with slices of `scratch` while it lasts.
pub(crate) fn step<T: Element>(
    groups: &[ParamGroup],
    lookahead: Option<Lookahead<()>>,
    tensors: &mut [Tensor<T>],
    caller: &mut [(&mut [T], &[T])],
    threads: usize,
    chunk_len: usize,
    scratch: &mut Scratch<T>,
) -> Result<(), Error> {
    let tensor_count = tensors.len();
    let mut cutter = scratch.cutter();
    let mut jobs = Vec::new();
    let mut part_sums = Vec::new();
    for (i, (t, (p, g))) in tensors.iter_mut().zip(caller.iter_mut()).enumerate() {
        let rule = groups[t.group].rule;
        let count = crate::slots_of(&rule, lookahead).min(MAX_SLOTS);
        let mut slots: [&mut [T]; MAX_SLOTS] = t.state.slots_mut();
        let (mut p, mut g): (&mut [T], &[T]) = (&mut **p, *g);
        let mut scratch = cutter.take(&rule, lookahead, t.n, p.as_ptr());
        // A layer-wise rule's parts are whole blocks of its norms' summation, and
        // under Lookahead its tensor is one job.
        let (len, kind) = match (rule.whole_slice(), lookahead) {
            (false, _) => (chunk_len, Kind::Step),
            (true, None) => (
                chunk_len
                    .checked_next_multiple_of(NORM_PART_ALIGN)
                    .unwrap_or(usize::MAX),
                Kind::Norms,
            ),
            (true, Some(_)) => (usize::MAX, Kind::Step),
        };
        // A tensor in one part is one whole step.
        let kind = if p.len() <= len { Kind::Step } else { kind };
        let mut first = true;
        loop {
            let len = p.len().min(len);
            let (ph, pt) = core::mem::take(&mut p).split_at_mut(len);
            let (gh, gt) = g.split_at(len);
            let mut parts: [&mut [T]; MAX_SLOTS] = Default::default();
            for (part, s) in parts.iter_mut().zip(slots.iter_mut()).take(count) {
                let (head, tail) = core::mem::take(s).split_at_mut(len);
                (*part, *s) = (head, tail);
            }
            let scratch_part = scratch.take().map(|s| {
                let (head, tail) = s.split_at_mut(len);
                scratch = Some(tail);
                head
            });
            jobs.try_reserve(1)
                .map_err(|_| Error::OutOfMemory { requested: 1 })?;
            let part = part_sums.len();
            if kind == Kind::Norms {
                part_sums
                    .try_reserve(1)
                    .map_err(|_| Error::OutOfMemory { requested: 1 })?;
                part_sums.push(Mutex::new(NormSums::EMPTY));
            }
            jobs.push(Job {
                tensor: i,
                first,
                kind,
                rule,
                lookahead,
                scalars: t.scalars,
                params: ph,
                grads: gh,
                slots: parts,
                count,
                scratch: scratch_part,
                part,
            });
            (p, g, first) = (pt, gt, false);
            if p.is_empty() {
                break;
            }
        }
    }
    // Round one: every whole step, and the layer-wise parts' moments and sums.
    let mut sums = Vec::new();
    sums.try_reserve_exact(tensor_count)
        .map_err(|_| Error::OutOfMemory {
            requested: tensor_count,
        })?;
    sums.resize(tensor_count, NormSums::EMPTY);
    // The first chunks' scalar states, stored once the jobs no longer borrow the tensors.
    let mut scalars = Vec::new();
    scalars
        .try_reserve_exact(tensor_count)
        .map_err(|_| Error::OutOfMemory {
            requested: tensor_count,
        })?;
    let mut parts = Vec::new();
    let mut error = None;
    for (job, result) in run_all(jobs, threads, &part_sums, &[])? {
        match result {
            Ok(Some(s)) if job.first => scalars.push((job.tensor, s)),
            Ok(_) if job.kind == Kind::Norms => {
                if let Some(slot) = part_sums.get(job.part) {
                    sums[job.tensor].merge(&slot.lock().unwrap_or_else(|e| e.into_inner()));
                }
                parts.push(job);
            }
            Ok(_) => {}
            Err(e) => error = Some(e),
        }
    }
    // Round two: the layer-wise parts' updates, from their tensors' merged sums.
    if error.is_none() && !parts.is_empty() {
        for job in &mut parts {
            job.kind = Kind::Apply;
        }
        for (job, result) in run_all(parts, threads, &part_sums, &sums)? {
            match result {
                Ok(Some(s)) if job.first => scalars.push((job.tensor, s)),
                Ok(_) => {}
                Err(e) => error = Some(e),
            }
        }
    }
    // A tensor whose buffers were stepped keeps its advanced scalar state either way.
    for (tensor, s) in scalars {
        tensors[tensor].scalars = s;
    }
    match error {
        // Validated beforehand: unreachable unless a kernel refuses what it accepted.
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

type Ran<'a, T> = (Job<'a, T>, Result<Option<AnyScalars>, gradstep::Error>);

/// Runs every job on up to `threads` threads (`parts`, `merged`: see [`Job::run`]) and
/// gives each back with its result.
fn run_all<'a, T: Element>(
    jobs: Vec<Job<'a, T>>,
    threads: usize,
    parts: &[Mutex<NormSums>],
    merged: &[NormSums],
) -> Result<Vec<Ran<'a, T>>, Error> {
    let threads = threads.min(jobs.len()).max(1);
    let count = jobs.len();
    // Each thread claims the next job by its index; job `i`'s lock is only ever taken
    // by the one thread that claimed `i`, so no thread ever waits on another. (One lock
    // around the whole queue did make them wait: on a busy machine a thread descheduled
    // while holding it stalled the other for a time slice, and two threads stepped 200
    // tensors of 4K 3.7 times slower than one: benches/speed.rs --multi.)
    let mut queue = Vec::new();
    queue
        .try_reserve_exact(count)
        .map_err(|_| Error::OutOfMemory { requested: count })?;
    queue.extend(jobs.into_iter().map(|j| Mutex::new(Some(j))));
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        while let Some(slot) = queue.get(next.fetch_add(1, Ordering::Relaxed)) {
            let job = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            let Some(mut job) = job else { continue };
            let result = job.run(parts, merged);
            done.push((job, result));
        }
        done
    };
    let mut all = Vec::new();
    all.try_reserve_exact(count)
        .map_err(|_| Error::OutOfMemory { requested: count })?;
    // The pool is asked for, and started, only when there are helpers to run.
    let helpers = if threads > 1 { pool() } else { None };
    match helpers {
        Some(pool) => {
            // The helpers' finished jobs, one list per helper.
            let helped = Mutex::new(Vec::new());
            pool.in_place_scope(|s| {
                for _ in 1..threads {
                    s.spawn(|_| {
                        let done = work();
                        helped.lock().unwrap_or_else(|e| e.into_inner()).push(done);
                    });
                }
                all.extend(work());
            });
            // (A panic in a helper, which the kernels do not raise, is passed on by the
            // scope once every helper has finished, as `std::thread::scope` would.)
            for done in helped.into_inner().unwrap_or_else(|e| e.into_inner()) {
                all.extend(done);
            }
        }
        // Without helper threads (one thread, or a system that refused to start them)
        // the caller steps every job.
        _ => all.extend(work()),
    }
    Ok(all)
}

/// The helper threads of every optimizer: one pool, started on the first
/// multi-threaded step with the system's parallelism in threads (named
/// [`WORKER_THREAD_NAME`](crate::WORKER_THREAD_NAME)) and kept, so that a step does not
/// pay for starting threads (a scoped thread per helper per step cost 51 µs on a Zen 5,
/// and two threads stepped 200 tensors of 4K at 0.82 of one). A step asks for up to
/// `threads − 1` helpers; the pool runs as many at once as it has threads, and steps
/// of several optimizers at once share it. The pool's threads sleep between steps and
/// end with the process.
///
/// `None` if the system refused to start it, and in a process forked from the one that
/// started it: a child has none of its parent's threads (a step there that waited for
/// the pool would wait forever), so there the caller steps alone.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<(u32, rayon::ThreadPool)>> = OnceLock::new();
    let (pid, pool) = POOL
        .get_or_init(|| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(crate::system_threads())
                .thread_name(|_| crate::WORKER_THREAD_NAME.into())
                .build()
                .ok()?;
            Some((std::process::id(), pool))
        })
        .as_ref()?;
    (*pid == std::process::id()).then_some(pool)
}
