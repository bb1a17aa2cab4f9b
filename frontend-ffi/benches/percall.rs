//! What a call costs around the kernel: f32 Adam at small sizes, where a step takes
//! about a microsecond and any per-call work shows.
//!
//! Columns, measured side by side in interleaved rounds (every column at every size once
//! per round, in an order rotated each round):
//!
//! - `kernel`: the Rust kernel directly (`AnyRule::step_flat`, the runtime-dispatched
//!   lanes), and `kernel'`, the same again: the spread of `kernel'/kernel` is the
//!   noise band of the run;
//! - `C step`: the C ABI's kernel function `gradstep_rule_step_f32` (pointer checks,
//!   the rule and scalars converted from C and back);
//! - `optim`: the owning optimizer (`gradstep_optim::Optimizer::step`, one tensor, one
//!   thread);
//! - `C handle`: the C handle's step (`gradstep_optimizer_step`, one registered
//!   tensor, one thread);
//! - `kernel+words`: the Rust kernel with its `StepCount` carried through the 14 plain
//!   cache words each call, as the C kernel function carries it (`StepCount::with_cache`
//!   before the step, `cache()` after), with no C boundary: `kernel+words` against
//!   `kernel` is the powers cache's round trip, `C step` against `kernel+words` the
//!   rest of the C function.
//!
//! Each measurement steps for `--ms` milliseconds of the thread's CPU time (Linux;
//! wall time elsewhere) after a warm-up step. Printed: per size, each column's median
//! Gparam/s, and the median of its per-round ratio to `kernel` with the per-round
//! ratios' interquartile range (the noise band). Not a test: nothing asserts a time.
//!
//! `--per-call` (x86-64) times every call alone between two fenced reads of the
//! time-stamp counter (less the median of two reads with nothing between them) and
//! takes each measurement's median call: a call that other processes' time slices
//! interrupted or whose caches they evicted is not the median one. Fenced, calls no
//! longer overlap each other, so at 16 params it measures a call's latency, about
//! twice its share of a batch; at 4K on this shared 2-core machine it narrowed the
//! per-round ratios' IQR (`kernel'`: 0.999–1.002 against 0.987–1.015 in batches).
//! `--raw` also prints every round's figures, one line each (`raw ROUND SIZE COLUMN
//! GPARAM/S`), to compare two builds of the bench round by round.
//!
//! `--placement` measures instead what the state's offset within a page does to a step
//! (4K aliasing; optim/src/layout.rs): the kernel with its state at every multiple of
//! 64 bytes within a page from page-aligned params and grads, and the owning optimizer
//! (which places its own state) with its params 1–3 KiB from the grads, for f32 Adam,
//! SGD with momentum and LAMB (the optimizer's with its scratch memory), printing each
//! one's slowest offsets.
//!
//! `--spread` measures whether buffers all at one offset within a page (page-aligned)
//! are as fast as buffers spread over the page: the kernel of f32 Adam and SGD with
//! momentum with params, grads and each state slot in its own allocation, shifted to the
//! page offsets of a few layouts (the same allocations for every layout: at 16M which
//! physical pages an allocation got swung a ratio by ±25 %), interleaved over `--rounds`, each layout's median
//! Gparam/s and the median and IQR of its per-round ratio to the page-aligned one.
//!
//! `--huge` (Linux) measures what transparent huge pages do to the kernel of f32 Adam and
//! SGD with momentum: the state slots (and then every buffer) in 2 MiB-aligned
//! anonymous mappings advised with `MADV_HUGEPAGE`, against the same in mappings
//! without the advice (4 KiB pages where the system's setting is `madvise`),
//! interleaved over `--rounds`, each one's median Gparam/s and the median and IQR of the
//! per-round ratio (the owning optimizer advises its state so: optim/src/lib.rs).
//!
//! `--buffers` measures the kernel of f32 Adam and SGD with momentum over
//! `gradstep_optim::PageBuffer`s, the memory `gradstep_buffer_new_f32` returns
//! (page-aligned; from 2 MiB a mapping of its own advised for huge pages), against the
//! same over `malloc`'s (`Vec`s), every buffer allocated afresh
//! for each variant in every round, each one's median Gparam/s and the median and IQR
//! of the per-round ratio.
//!
//! Run: `cargo bench -p gradstep-ffi --bench percall -- [--rounds 31] [--ms 10]
//! [--sizes 1K,4K,64K] [--only "C step"] [--per-call] [--raw] [--placement] [--spread]
//! [--huge] [--buffers]` (`--only`: that column
//! and `kernel`, for `perf record` on one path). `--calls N --only COLUMN` makes exactly
//! N calls of that column alone at each size and prints nothing: for `perf stat -e
//! instructions,cycles`, or `valgrind --tool=callgrind` where the machine has no
//! hardware counters, whose difference between two columns or two values of N is the
//! cost of one call without the timer's or the other columns' noise.

use std::hint::black_box;

use gradstep::optimizer::{
    gradstep_optimizer, gradstep_optimizer_add_params_f32, gradstep_optimizer_free,
    gradstep_optimizer_new, gradstep_optimizer_set_threads, gradstep_optimizer_step,
};
use gradstep::rules::{
    GRADSTEP_F32, GRADSTEP_RULE_ADAM, gradstep_rule, gradstep_rule_default, gradstep_rule_step_f32,
    gradstep_scalars,
};
use gradstep::status::GRADSTEP_OK;
use gradstep_optim::{GroupId, Optimizer, PageBuffer};
use kernels::rules::{AnyRule, AnyScalars, RuleId};
use kernels::{STEP_CACHE_WORDS, StepCount};

#[path = "../../benches/common/clock.rs"]
mod clock;
#[path = "../../benches/common/page_aligned.rs"]
mod page_aligned;
use page_aligned::PageAligned;

const COLUMNS: [&str; 6] = [
    "kernel",
    "kernel'",
    "C step",
    "optim",
    "C handle",
    "kernel+words",
];

thread_local! {
    /// Set by `--calls`: [`measure`] makes exactly this many calls instead of timing.
    static CALLS: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    /// Set by `--per-call`: [`measure`] times each call ([`clock::median_call`]).
    static PER_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Gparam/s of `step` (`n` params per call) over `ms` ms of CPU time. The clock is
/// read once per batch of steps of about 64K params: reading a thread's CPU time is a
/// system call (~0.3 µs here), as long as a 1K step itself.
fn measure(n: usize, ms: f64, mut step: impl FnMut()) -> f64 {
    if let Some(calls) = CALLS.get() {
        for _ in 0..calls {
            step();
        }
        return 0.0;
    }
    step();
    if PER_CALL.get() {
        return clock::median_call(n, ms, step);
    }
    let batch = (1usize << 16).div_ceil(n.max(1));
    let start = clock::thread_cpu_seconds();
    let mut reps = 0usize;
    loop {
        for _ in 0..batch {
            step();
        }
        reps += batch;
        let secs = clock::thread_cpu_seconds() - start;
        if reps >= 2 && secs * 1e3 >= ms {
            return (n * reps) as f64 / secs / 1e9;
        }
    }
}

/// `n` page-aligned values of a xorshift sequence from `seed`, in [−0.1, 0.1).
fn data(n: usize, seed: u32) -> PageAligned {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    PageAligned::filled(
        n,
        std::iter::repeat_with(move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) * 0.2 - 0.1
        }),
    )
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// One size's buffers and each caller's state, each over its own buffers.
struct Case {
    n: usize,
    rule: AnyRule,
    grads: PageAligned,
    kernel: (PageAligned, PageAligned, kernels::rules::AnyScalars),
    c_step: (PageAligned, PageAligned, gradstep_scalars, gradstep_rule),
    optim: (PageAligned, Optimizer<f32>),
    /// `kernel+words`: params, state, the step count and the cache words.
    words: (PageAligned, PageAligned, u64, [u64; STEP_CACHE_WORDS]),
    handle: *mut gradstep_optimizer,
    /// The handle's params (the handle holds a pointer to them: never moved).
    _handle_params: PageAligned,
}

impl Case {
    fn new(n: usize) -> Case {
        let rule = RuleId::Adam.default_rule();
        let grads = data(n, 2);
        let slots = rule.state_slots();
        let mut c_rule = std::mem::MaybeUninit::<gradstep_rule>::uninit();
        // SAFETY: a valid out pointer.
        let s = unsafe { gradstep_rule_default(GRADSTEP_RULE_ADAM, c_rule.as_mut_ptr()) };
        assert_eq!(s, GRADSTEP_OK);
        // SAFETY: written by the call above, which succeeded.
        let c_rule = unsafe { c_rule.assume_init() };
        let mut optim = Optimizer::new(rule).expect("adam");
        optim.add_tensor(GroupId(0), n).expect("tensor");
        optim.set_threads(1);
        let mut handle_params = data(n, 1);
        let mut handle = std::ptr::null_mut();
        // SAFETY: valid pointers; the params and grads outlive the handle (freed in
        // `Drop` before the vectors).
        unsafe {
            assert_eq!(
                gradstep_optimizer_new(&c_rule, GRADSTEP_F32, &mut handle),
                GRADSTEP_OK
            );
            assert_eq!(gradstep_optimizer_set_threads(handle, 1), GRADSTEP_OK);
            assert_eq!(
                gradstep_optimizer_add_params_f32(
                    handle,
                    0,
                    handle_params.get_mut().as_mut_ptr(),
                    grads.get().as_ptr(),
                    n
                ),
                GRADSTEP_OK
            );
        }
        Case {
            n,
            rule,
            kernel: (
                data(n, 1),
                PageAligned::zeros(n * slots),
                rule.fresh_scalars(),
            ),
            c_step: (
                data(n, 1),
                PageAligned::zeros(n * slots),
                gradstep_scalars::default(),
                c_rule,
            ),
            optim: (data(n, 1), optim),
            words: (
                data(n, 1),
                PageAligned::zeros(n * slots),
                0,
                [0; STEP_CACHE_WORDS],
            ),
            handle,
            _handle_params: handle_params,
            grads,
        }
    }

    /// Exactly `calls` calls of `column`.
    fn repeat(&mut self, column: &str, calls: usize) {
        CALLS.set(Some(calls));
        self.run(column, 0.0);
        CALLS.set(None);
    }

    fn run(&mut self, column: &str, ms: f64) -> f64 {
        let (n, rule, grads) = (self.n, self.rule, self.grads.get());
        match column {
            "kernel" | "kernel'" => {
                let (p, s, sc) = &mut self.kernel;
                measure(n, ms, || {
                    let r = rule.step_flat(sc, p.get_mut(), black_box(grads), s.get_mut());
                    r.expect("kernel step");
                })
            }
            "kernel+words" => {
                let (p, s, step, words) = &mut self.words;
                measure(n, ms, || {
                    let mut sc = AnyScalars::from(StepCount::with_cache(*step, black_box(words)));
                    let r = rule.step_flat(&mut sc, p.get_mut(), black_box(grads), s.get_mut());
                    r.expect("kernel step");
                    if let AnyScalars::Step(sc) = sc {
                        (*step, *words) = (sc.step, sc.cache());
                    }
                })
            }
            "C step" => {
                let (p, s, sc, c_rule) = &mut self.c_step;
                measure(n, ms, || {
                    // SAFETY: valid, disjoint buffers of the lengths passed.
                    let r = unsafe {
                        gradstep_rule_step_f32(
                            c_rule,
                            sc,
                            p.get_mut().as_mut_ptr(),
                            black_box(grads.as_ptr()),
                            n,
                            s.get_mut().as_mut_ptr(),
                            s.get().len(),
                        )
                    };
                    assert_eq!(r, GRADSTEP_OK);
                })
            }
            "optim" => {
                let (p, opt) = &mut self.optim;
                measure(n, ms, || {
                    let r = opt.step(&mut [(p.get_mut(), black_box(grads))]);
                    r.expect("optimizer step");
                })
            }
            "C handle" => {
                let h = self.handle;
                measure(n, ms, || {
                    // SAFETY: a live handle whose buffers are alive.
                    let r = unsafe { gradstep_optimizer_step(black_box(h)) };
                    assert_eq!(r, GRADSTEP_OK);
                })
            }
            other => unreachable!("column {other}"),
        }
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        // SAFETY: the live handle this case created.
        unsafe { gradstep_optimizer_free(self.handle) };
    }
}

/// `--placement`: what the state's offset within a page, relative to page-aligned
/// params and grads, does to a step (4K aliasing, optim/src/layout.rs). For f32 Adam,
/// SGD with momentum 0.9 and LAMB at each size: the kernel with its state slices back to
/// back starting at each multiple of 64 bytes within a page (the best of three
/// passes over the offsets, `ms` each), and the owning optimizer with the params at each such
/// offset from 1 KiB to 3 KiB (it places its own state; params closer to the grads
/// would make the grads' loads wait on the params' stores, the caller's placement).
/// Prints each one's slowest offsets as the median over offsets divided by that
/// offset's speed.
fn placement(sizes: &[usize], ms: f64) {
    println!("\nstate placement within a page (params and grads page-aligned), f32, one thread");
    println!("\n| rule | size | column | median Gparam/s | slowest offsets (bytes: median / it) |");
    println!("|---|---|---|---|---|");
    let report = |name: &str, n: usize, column: &str, speeds: &[(usize, f64)]| {
        let median = quantile(&speeds.iter().map(|s| s.1).collect::<Vec<_>>(), 0.5);
        let mut slow: Vec<(usize, f64)> = speeds.iter().map(|&(o, v)| (o, median / v)).collect();
        slow.sort_by(|a, b| b.1.total_cmp(&a.1));
        let worst: Vec<String> = slow
            .iter()
            .take(4)
            .map(|(o, r)| format!("{o}: {r:.2}"))
            .collect();
        println!(
            "| {name} | {n} | {column} | {median:.3} | {} |",
            worst.join(", ")
        );
    };
    for spec in ["adam", "sgd:momentum=0.9", "lamb"] {
        let rule = AnyRule::parse(spec).expect("rule");
        let slots = rule.state_slots();
        for &n in sizes {
            let grads = data(n, 2);
            let mut params = data(n, 1);
            let mut room = PageAligned::zeros(slots * n + 1024);
            let mut speeds: Vec<(usize, f64)> = (0..4096).step_by(64).map(|o| (o, 0.0)).collect();
            let mut scalars = rule.fresh_scalars();
            // Three passes over the offsets, the best of each: a slow spell of the
            // machine then marks no run of neighbouring offsets.
            for _ in 0..3 {
                for (off, v) in &mut speeds {
                    let state = &mut room.get_mut()[*off / 4..*off / 4 + slots * n];
                    let s = measure(n, ms, || {
                        let p = params.get_mut();
                        let r = rule.step_flat(&mut scalars, p, black_box(grads.get()), state);
                        r.expect("kernel step");
                    });
                    *v = v.max(s);
                }
            }
            report(spec, n, "kernel, state at", &speeds);
            let mut moving = PageAligned::zeros(n + 1024);
            let mut opt = Optimizer::new(rule).expect("rule");
            opt.add_tensor(GroupId(0), n).expect("tensor");
            opt.set_threads(1);
            // At least 1 KiB from the grads either way: closer, the grads' loads wait
            // on the params' stores whatever the optimizer does with its state.
            let mut speeds: Vec<(usize, f64)> =
                (1024..=3072).step_by(64).map(|o| (o, 0.0)).collect();
            for _ in 0..3 {
                for (off, v) in &mut speeds {
                    let p = &mut moving.get_mut()[*off / 4..*off / 4 + n];
                    let s = measure(n, ms, || {
                        let r = opt.step(&mut [(&mut *p, black_box(grads.get()))]);
                        r.expect("optimizer step");
                    });
                    *v = v.max(s);
                }
            }
            report(spec, n, "optimizer, params at", &speeds);
        }
    }
}

/// One measurement of `rule`'s kernel from fresh scalars over the given buffers.
fn kernel_speed(
    rule: &AnyRule,
    ms: f64,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [&mut [f32]],
) -> f64 {
    let mut scalars = rule.fresh_scalars();
    measure(params.len(), ms, || {
        let r = rule.step(&mut scalars, params, black_box(grads), state);
        r.expect("kernel step");
    })
}

/// `rounds` interleaved rounds of `count` variants (the first variant rotated each
/// round): `measure(i)` is one measurement of variant `i`; each variant's values.
fn interleaved(
    rounds: usize,
    count: usize,
    mut measure: impl FnMut(usize) -> f64,
) -> Vec<Vec<f64>> {
    let mut speeds = vec![Vec::new(); count];
    for r in 0..rounds {
        for j in 0..count {
            let i = (j + r) % count;
            speeds[i].push(measure(i));
        }
    }
    speeds
}

/// The median and IQR of the per-round ratios `a / b`, as `median (q1–q3)`.
fn ratio_quartiles(a: &[f64], b: &[f64]) -> String {
    let r: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    format!(
        "{:.3} ({:.2}–{:.2})",
        quantile(&r, 0.5),
        quantile(&r, 0.25),
        quantile(&r, 0.75)
    )
}

/// `--spread`: page-aligned buffers against spread ones (see the module docs). The
/// layouts give the page offsets in bytes of the params, the grads and the state slots.
fn spread(sizes: &[usize], ms: f64, rounds: usize) {
    const LAYOUTS: [[usize; 4]; 4] = [
        [0, 0, 0, 0],
        [0, 1024, 2048, 3072],
        [0, 2048, 1024, 3072],
        [0, 2048, 0, 2048],
    ];
    println!(
        "
spread buffers against page-aligned ones, f32, one thread, {rounds} rounds"
    );
    println!(
        "
| rule | size | offsets (p, g, slots) | median Gparam/s | / page-aligned (median, IQR) |"
    );
    println!("|---|---|---|---|---|");
    for spec in ["adam", "sgd:momentum=0.9"] {
        let rule = AnyRule::parse(spec).expect("rule");
        let slots = rule.state_slots();
        for &n in sizes {
            // One allocation per buffer with a page of room, shared by every layout: with
            // an allocation per layout, which physical pages each got (their DRAM banks
            // at 16M) differed with the layout and swung its ratio either way.
            let mut bufs = vec![data(n + 1024, 1), data(n + 1024, 2)];
            bufs.extend((0..slots).map(|_| PageAligned::zeros(n + 1024)));
            let speeds = interleaved(rounds, LAYOUTS.len(), |i| {
                let o = LAYOUTS[i];
                let [p, g, rest @ ..] = bufs.as_mut_slice() else {
                    unreachable!("params, grads and the slots")
                };
                let mut state: Vec<&mut [f32]> = rest
                    .iter_mut()
                    .zip(&o[2..])
                    .map(|(b, &off)| &mut b.get_mut()[off / 4..off / 4 + n])
                    .collect();
                kernel_speed(
                    &rule,
                    ms,
                    &mut p.get_mut()[o[0] / 4..o[0] / 4 + n],
                    &g.get()[o[1] / 4..o[1] / 4 + n],
                    &mut state,
                )
            });
            for (o, v) in LAYOUTS.iter().zip(&speeds) {
                let offsets: Vec<String> =
                    o[..2 + slots.min(2)].iter().map(usize::to_string).collect();
                println!(
                    "| {spec} | {n} | {} | {:.3} | {} |",
                    offsets.join(", "),
                    quantile(v, 0.5),
                    ratio_quartiles(v, &speeds[0]),
                );
            }
        }
    }
}

/// `--buffers`: the kernel over `PageBuffer`s (the memory `gradstep_buffer_new_f32`
/// returns) against the same over `malloc`'s (`Vec`s), a fresh allocation of every
/// buffer for each variant in every round (so that neither keeps a lucky or unlucky set
/// of physical pages), for f32 Adam and SGD with momentum: each one's median Gparam/s
/// and the median and IQR of the per-round ratio.
fn buffers(sizes: &[usize], ms: f64, rounds: usize) {
    println!("\ngradstep_buffer_new_f32 against malloc (Vec), f32, one thread, {rounds} rounds");
    println!(
        "\n| rule | size | median Gparam/s (malloc / gradstep) | gradstep / malloc (median, IQR) |"
    );
    println!("|---|---|---|---|");
    for spec in ["adam", "sgd:momentum=0.9"] {
        let rule = AnyRule::parse(spec).expect("rule");
        let count = 2 + rule.state_slots();
        for &n in sizes {
            // Params, grads and the slots, filled; the kernel's speed over them.
            let over = |mut bufs: Vec<&mut [f32]>| {
                let [p, g, state @ ..] = bufs.as_mut_slice() else {
                    unreachable!("params, grads and the slots")
                };
                p.copy_from_slice(data(n, 1).get());
                g.copy_from_slice(data(n, 2).get());
                kernel_speed(&rule, ms, p, g, state)
            };
            let speeds = interleaved(rounds, 2, |i| {
                if i == 0 {
                    let mut bufs: Vec<Vec<f32>> = (0..count).map(|_| vec![0.0; n]).collect();
                    over(bufs.iter_mut().map(|b| &mut b[..]).collect())
                } else {
                    let mut bufs: Vec<PageBuffer<f32>> = (0..count)
                        .map(|_| PageBuffer::zeros(n).expect("a page buffer"))
                        .collect();
                    over(bufs.iter_mut().map(|b| &mut b[..]).collect())
                }
            });
            println!(
                "| {spec} | {n} | {:.3} / {:.3} | {} |",
                quantile(&speeds[0], 0.5),
                quantile(&speeds[1], 0.5),
                ratio_quartiles(&speeds[1], &speeds[0]),
            );
        }
    }
}

/// `n` `f32`s in an anonymous mapping of their own from a 2 MiB boundary, advised for
/// transparent huge pages or not, written once (so backed) before use.
#[cfg(target_os = "linux")]
struct Mapped {
    base: *mut libc::c_void,
    len: usize,
    at: *mut f32,
    n: usize,
}

#[cfg(target_os = "linux")]
impl Mapped {
    fn new(n: usize, huge: bool, value: f32) -> Mapped {
        const HUGE: usize = 2 << 20;
        let len = (n * 4).next_multiple_of(HUGE) + HUGE;
        // SAFETY: a fresh private anonymous mapping; checked below.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(base != libc::MAP_FAILED, "mmap of {len} bytes");
        let at = (base as usize).next_multiple_of(HUGE);
        // The slice `get_mut` makes lies inside the mapping (which `mmap` kept within
        // isize::MAX bytes) and in no other buffer: the mapping is this value's own.
        assert!(
            at - base as usize + n * 4 <= len,
            "the slice fits the mapping"
        );
        if huge {
            // SAFETY: whole pages of the mapping just made; advice only.
            let r =
                unsafe { libc::madvise(at as *mut libc::c_void, len - HUGE, libc::MADV_HUGEPAGE) };
            assert_eq!(r, 0, "madvise(MADV_HUGEPAGE)");
        }
        let mut m = Mapped {
            base,
            len,
            at: at as *mut f32,
            n,
        };
        m.get_mut().fill(value);
        m
    }

    fn get_mut(&mut self) -> &mut [f32] {
        // SAFETY: `n` f32s from a 2 MiB boundary inside the mapping, which this value
        // owns and unmaps only when dropped.
        unsafe { core::slice::from_raw_parts_mut(self.at, self.n) }
    }
}

#[cfg(target_os = "linux")]
impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// `--huge`: the kernel's state (then every buffer) on huge pages against the same on
/// 4 KiB pages (see the module docs).
#[cfg(target_os = "linux")]
fn huge(sizes: &[usize], ms: f64, rounds: usize) {
    let setting =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    println!(
        "
transparent huge pages ({}), f32, one thread, {rounds} rounds",
        setting.trim()
    );
    println!(
        "
| rule | size | on huge pages | median Gparam/s (4 KiB / huge) | huge / 4 KiB (median, IQR) |"
    );
    println!("|---|---|---|---|---|");
    for spec in ["adam", "sgd:momentum=0.9"] {
        let rule = AnyRule::parse(spec).expect("rule");
        let slots = rule.state_slots();
        for &n in sizes {
            for all in [false, true] {
                // [4 KiB pages, huge pages]: params, grads, then the slots.
                let mut sets: Vec<Vec<Mapped>> = [false, true]
                    .into_iter()
                    .map(|h| {
                        let mut b = vec![
                            Mapped::new(n, h && all, 0.5),
                            Mapped::new(n, h && all, 0.01),
                        ];
                        b.extend((0..slots).map(|_| Mapped::new(n, h, 0.0)));
                        b
                    })
                    .collect();
                let speeds = interleaved(rounds, 2, |i| {
                    let [p, g, rest @ ..] = sets[i].as_mut_slice() else {
                        unreachable!("params, grads and the slots")
                    };
                    let mut state: Vec<&mut [f32]> = rest.iter_mut().map(Mapped::get_mut).collect();
                    kernel_speed(&rule, ms, p.get_mut(), g.get_mut(), &mut state)
                });
                println!(
                    "| {spec} | {n} | {} | {:.3} / {:.3} | {} |",
                    if all { "every buffer" } else { "the state" },
                    quantile(&speeds[0], 0.5),
                    quantile(&speeds[1], 0.5),
                    ratio_quartiles(&speeds[1], &speeds[0]),
                );
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn huge(_: &[usize], _: f64, _: usize) {
    println!("--huge: transparent huge pages are Linux's");
}

fn main() {
    let (mut rounds, mut ms, mut sizes) = (31usize, 10.0f64, vec![1usize << 10, 4 << 10]);
    let (mut only, mut calls, mut raw, mut place) = (None, None, false, false);
    let (mut spread_out, mut huge_pages, mut gradstep_buffers) = (false, false, false);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--rounds" => rounds = value().parse().expect("--rounds N"),
            "--ms" => ms = value().parse().expect("--ms MILLISECONDS"),
            "--per-call" => PER_CALL.set(true),
            "--raw" => raw = true,
            "--placement" => place = true,
            "--spread" => spread_out = true,
            "--huge" => huge_pages = true,
            "--buffers" => gradstep_buffers = true,
            "--calls" => calls = Some(value().parse::<usize>().expect("--calls N")),
            "--only" => {
                let c = value();
                assert!(COLUMNS.contains(&c.as_str()), "--only: one of {COLUMNS:?}");
                only = Some(c)
            }
            "--sizes" => {
                sizes = value()
                    .split(',')
                    .map(|s| {
                        let s = s.trim();
                        if let Some(k) = s.strip_suffix(['K', 'k']) {
                            k.parse::<usize>().expect("size") << 10
                        } else if let Some(m) = s.strip_suffix(['M', 'm']) {
                            m.parse::<usize>().expect("size") << 20
                        } else {
                            s.parse().expect("size")
                        }
                    })
                    .collect()
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    if place {
        return placement(&sizes, ms);
    }
    if spread_out {
        return spread(&sizes, ms, rounds);
    }
    if huge_pages {
        return huge(&sizes, ms, rounds);
    }
    if gradstep_buffers {
        return buffers(&sizes, ms, rounds);
    }
    let mut cases: Vec<Case> = sizes.iter().map(|&n| Case::new(n)).collect();
    if let Some(calls) = calls {
        let column = only.expect("--calls needs --only COLUMN");
        for case in &mut cases {
            case.repeat(&column, calls);
        }
        return;
    }
    // samples[size][column][round]
    let mut samples = vec![vec![Vec::new(); COLUMNS.len()]; sizes.len()];
    for r in 0..rounds {
        for (case, per_col) in cases.iter_mut().zip(&mut samples) {
            for k in 0..COLUMNS.len() {
                let c = (k + r) % COLUMNS.len();
                if only.as_ref().is_some_and(|o| c != 0 && o != COLUMNS[c]) {
                    // Skipped: printed as NaN.
                    per_col[c].push(f64::NAN);
                    continue;
                }
                let gps = case.run(COLUMNS[c], ms);
                if raw {
                    println!("raw {r} {} {} {gps}", case.n, COLUMNS[c]);
                }
                per_col[c].push(gps);
            }
        }
    }
    let clock = if PER_CALL.get() {
        "median call"
    } else {
        "CPU time"
    };
    println!(
        "\nf32 Adam, one thread, Gparam/s ({clock}), {rounds} interleaved rounds of {ms} ms\n"
    );
    println!("| size | column | Gparam/s | ns/step | / kernel (median) | IQR of per-round ratio |");
    println!("|---|---|---|---|---|---|");
    for (&n, per_col) in sizes.iter().zip(&samples) {
        for (c, name) in COLUMNS.iter().enumerate() {
            let ratios: Vec<f64> = per_col[c]
                .iter()
                .zip(&per_col[0])
                .map(|(x, k)| x / k)
                .collect();
            let gps = quantile(&per_col[c], 0.5);
            let size = if n % 1024 == 0 {
                format!("{}K", n >> 10)
            } else {
                n.to_string()
            };
            println!(
                "| {size} | {name} | {gps:.3} | {:.0} | {:.3} | {:.3}–{:.3} |",
                n as f64 / gps,
                quantile(&ratios, 0.5),
                quantile(&ratios, 0.25),
                quantile(&ratios, 0.75),
            );
        }
    }
}
