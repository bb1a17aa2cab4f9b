//! Every registered rule's f32 step in Gparam/s (parameters updated per second / 1e9),
//! side by side in one run, with the fraction of a roofline the program measures itself.
//!
//! Rows: every rule of the registry with torch's defaults (`RuleId::ALL`, so a new rule
//! appears without a change here) plus SGD with momentum 0.9. Sizes: 1K, 4K, 64K, 1M, 16M
//! parameters. Columns:
//!
//! - `default`: the portable build's own choice of lanes (`gradstep::isa` dispatch);
//! - `sse2`, `avx2`, `avx512`: each x86-64 level this CPU has, forced with the hidden
//!   `gradstep::isa::set_level`;
//! - `native`: the same step in a `-C target-cpu=native` build of this program
//!   (`--native PATH`; `scripts/bench.sh` builds it), and `default*`, this program's
//!   `default` column run the same way: two child processes (`--serve`) started for each
//!   round and asked in turn for each rule and size, so each pair is measured `--ms`
//!   apart; `default*/native` is the median of the pairs' ratios. A child starts cold,
//!   so in-process `default` against a child's `native` measured the process start;
//!   and one child per column and round (before session 20) put seconds between the
//!   two halves of a ratio, in which the machine's load changed (per-round ratios
//!   spread ±10–30 % for a third of the cells);
//! - `scratch`: a layer-wise rule's kernel (LAMB) with scratch memory between its two
//!   passes (`step_scratch`), on the default lanes;
//! - `subnormal` (with `--subnormal`): the default lanes with zero gradients and every
//!   state element at the least subnormal, where the moments of a parameter whose
//!   gradient stays 0 end up (the least subnormal times a factor above ½ rounds back to
//!   itself); a multiply, root or division with a subnormal operand or result can take
//!   a microcode assist (on a Zen 4, 50–57 ns per 512-bit operation instead of 3–4);
//! - `optim/1`: the owning optimizer (`gradstep-optim`) on one thread (with scratch
//!   memory for a layer-wise rule's tensors of up to 1 MiB);
//! - `roof`: the roofline, the same loads and stores as the rule (params and every state
//!   slice read and written, grads read) with trivial math (additions), on the widest
//!   lanes the CPU has;
//! - at 16M, for the two-thread ratios: the optimizer on one and on two threads and the
//!   roofline on one and on two threads (each on half the elements), in wall time;
//! - for Adam, `C`: the plain C loop (`benches/c/adam.c`, `cc -O3 -march=native
//!   -fno-math-errno`, compiled when the program starts and run as a child process once
//!   per round; `--no-c` skips it).
//!
//! Each measurement steps for `--ms` milliseconds (at least two steps) after a warm-up
//! step, timed by the thread's CPU time (`--clock cpu`, the default on Linux: on a
//! machine shared with other work, time the thread spent descheduled would otherwise
//! land on whichever column was running) or by wall time (`--clock wall`); with
//! `--clock calls` (x86-64), each call is timed alone by the time-stamp counter and a
//! measurement is its median call (benches/common/clock.rs: what other work did to a
//! few calls is left out; the C loop does the same). Rounds are interleaved (every
//! rule, size and column once per round), and the median over the rounds is printed, so a noisy, shared machine affects every column
//! alike: the ratios within one run are the claims, not the absolute numbers. A summary
//! of the ratios the speed issue targets follows the tables, and then the spread of
//! three fixed loops (multiply-adds, the divider, a 256 KiB add pass) timed before
//! every size of every round, which shows whether the core changed speed during the run.
//!
//! Every column steps from fresh state (step 0) unless `--resume-at T` is given: then
//! every column, the C loop's and the children's included, starts at step T (one step
//! from fresh state first, for the slices a run's first step leaves; then the scalar
//! state a rule has after T steps, reached by stepping no elements T times): a long
//! run's steady state. There every bias correction of the defaults has rounded to 1 (in
//! f32, 1 − 0.999ᵗ from t = 17 321), and the x86 lanes skip their divisions by it; the C
//! loop still divides.
//!
//! Run: `scripts/bench.sh [ROUNDS]` (also builds the native variant), or
//! `cargo bench --bench speed -- [--rounds N] [--sizes 4K,64K] [--rules adam,sgd]
//! [--ms 25] [--clock cpu|wall|calls] [--native PATH] [--no-c] [--resume-at T] [--subnormal]`.
//! (`--serve`, `--worker` and `--probe` are the child modes that this program's rounds
//! and `scripts/bench_compare.py` use.)

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use gradstep::rules::{AnyRule, AnyScalars, RuleId};
use gradstep_optim::{GroupId, Optimizer, Slot, StateDict, TensorState};

#[path = "common/clock.rs"]
mod clock;
#[path = "common/page_aligned.rs"]
mod page_aligned;
use page_aligned::PageAligned;

#[cfg(target_arch = "x86_64")]
use gradstep::isa::{self, Level};

const K: usize = 1 << 10;
const M: usize = 1 << 20;
/// The size at which the two-thread columns are measured.
const THREADED: usize = 16 * M;

struct Args {
    rounds: usize,
    sizes: Vec<usize>,
    rules: Option<Vec<String>>,
    ms: f64,
    native: Option<PathBuf>,
    c_loop: bool,
    clock: Clock,
    /// Child mode: one round of the `default` column only, printed as `rule size gps`
    /// (with `--multi`: the tensor lists only, printed as `list threads gps`).
    worker: bool,
    /// Also (or, as a worker, only) the multi-tensor step over the tensor lists.
    multi: bool,
    /// Server mode (`--serve`, the `native` and `default*` columns): per line `RULE SIZE`
    /// read from stdin, one measurement of the `default` column, printed as Gparam/s.
    serve: bool,
    /// Probe mode (`--probe`, for `scripts/bench_compare.py`): one sample of the
    /// machine-state probes per line read from stdin, printed as `fp divider memory`
    /// in ns (`-` for a probe the CPU cannot run), and their spread when stdin ends.
    probe: bool,
    /// `--resume-at T`: every column takes one step from fresh state and then steps from
    /// the scalar state after T steps (the step count, and what the rule keeps with it):
    /// a long run's steady state, where the bias corrections have rounded to 1.
    resume_at: u64,
    /// `--subnormal`: also the `subnormal` column.
    subnormal: bool,
}

fn parse_size(s: &str) -> usize {
    let s = s.trim();
    let (num, mul) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], K),
        Some(b'M' | b'm') => (&s[..s.len() - 1], M),
        _ => (s, 1),
    };
    num.parse::<usize>()
        .unwrap_or_else(|_| panic!("bad size {s:?}"))
        * mul
}

fn size_name(n: usize) -> String {
    if n >= M && n.is_multiple_of(M) {
        format!("{}M", n / M)
    } else if n >= K && n.is_multiple_of(K) {
        format!("{}K", n / K)
    } else {
        n.to_string()
    }
}

fn parse_args() -> Args {
    let mut args = Args {
        rounds: 7,
        sizes: vec![K, 4 * K, 64 * K, M, 16 * M],
        rules: None,
        ms: 25.0,
        native: None,
        c_loop: true,
        clock: if cfg!(target_os = "linux") {
            Clock::Cpu
        } else {
            Clock::Wall
        },
        worker: false,
        serve: false,
        multi: false,
        probe: false,
        resume_at: 0,
        subnormal: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--rounds" => args.rounds = value().parse().expect("--rounds N"),
            "--ms" => args.ms = value().parse().expect("--ms MILLISECONDS"),
            "--sizes" => args.sizes = value().split(',').map(parse_size).collect(),
            "--rules" => args.rules = Some(value().split(',').map(str::to_string).collect()),
            "--native" => args.native = Some(PathBuf::from(value())),
            "--no-c" => args.c_loop = false,
            "--clock" => {
                args.clock = match value().as_str() {
                    "cpu" => Clock::Cpu,
                    "wall" => Clock::Wall,
                    "calls" if cfg!(target_arch = "x86_64") => Clock::Calls,
                    other => panic!("--clock cpu|wall|calls (calls: x86-64), not {other:?}"),
                }
            }
            "--worker" => args.worker = true,
            "--serve" => args.serve = true,
            "--multi" => args.multi = true,
            "--probe" => args.probe = true,
            "--resume-at" => args.resume_at = value().parse().expect("--resume-at STEPS"),
            "--subnormal" => args.subnormal = true,
            other => panic!("unknown argument {other:?} (see the doc comment of benches/speed.rs)"),
        }
    }
    args.rounds = args.rounds.max(1);
    args
}

/// The benchmarked rules: every registered rule with torch's defaults, then the
/// variants the targets name.
fn cases(filter: &Option<Vec<String>>) -> Vec<(String, AnyRule)> {
    let mut out: Vec<(String, AnyRule)> = RuleId::ALL
        .iter()
        .map(|id| (id.name().to_string(), id.default_rule()))
        .collect();
    let momentum = AnyRule::parse("sgd:momentum=0.9").expect("SGD has momentum");
    out.push(("sgd_momentum".into(), momentum));
    let adam_like = AnyRule::parse("proximal:momentum=ema,adapt=adam").expect("a proximal form");
    out.push(("proximal_adam".into(), adam_like));
    if let Some(names) = filter {
        out.retain(|(name, _)| names.iter().any(|n| n == name));
    }
    out
}

/// Bytes each step moves per parameter: params read and written, grads read, every
/// state slice read and written.
fn bytes_per_param(rule: &AnyRule) -> usize {
    4 * (3 + 2 * rule.state_slots())
}

/// Which clock a measurement reads.
#[derive(Clone, Copy, PartialEq)]
enum Clock {
    /// The calling thread's CPU time: time the scheduler gave to other processes of a
    /// shared machine does not count. For one-thread columns.
    Cpu,
    /// Wall time: for the two-thread columns and their one-thread baselines.
    Wall,
    /// Each call timed alone by the time-stamp counter, the median call taken (x86-64;
    /// `clock::median_call`): what other work on a shared machine did to a few calls
    /// is left out. Calls are made for `--ms` of the thread's CPU time, which also
    /// times the probes.
    Calls,
}

impl Clock {
    fn name(self) -> &'static str {
        match self {
            Clock::Cpu => "cpu",
            Clock::Wall => "wall",
            Clock::Calls => "calls",
        }
    }

    /// Seconds by this clock: the thread's CPU time, or the wall time since `origin`.
    fn seconds(self, origin: Instant) -> f64 {
        match self {
            Clock::Cpu | Clock::Calls => clock::thread_cpu_seconds(),
            Clock::Wall => origin.elapsed().as_secs_f64(),
        }
    }

    /// What the clock measures, for the report.
    fn describe(self) -> &'static str {
        match self {
            Clock::Cpu | Clock::Calls => "thread CPU time",
            Clock::Wall => "wall time",
        }
    }
}

/// Runs `step` until `ms` milliseconds of `clock` passed (at least twice) after one
/// warm-up step; Gparam/s for `n` parameters per step.
fn measure(n: usize, ms: f64, clock: Clock, mut step: impl FnMut()) -> f64 {
    step();
    if clock == Clock::Calls {
        return clock::median_call(n, ms, step);
    }
    let wall = Instant::now();
    let now = || clock.seconds(wall);
    // The clock is read once per batch of steps of about 64K params: reading a
    // thread's CPU time is a system call (~0.3 µs here), a tenth of a 4K Adam step.
    let batch = (1usize << 16).div_ceil(n.max(1));
    let start = now();
    let mut reps = 0usize;
    loop {
        for _ in 0..batch {
            step();
        }
        reps += batch;
        let secs = now() - start;
        if reps >= 2 && secs * 1e3 >= ms {
            return (n * reps) as f64 / secs / 1e9;
        }
    }
}

fn data(n: usize, seed: u32) -> impl Iterator<Item = f32> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n).map(move |_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x as f32 / u32::MAX as f32) * 0.2 - 0.1
    })
}

/// One size's buffers, reused by every rule at that size. Each size gets its own
/// allocations, as the C loop's and the optimizer's tensors do: on the Zen 3 VM of
/// session 13, f32 Adam at 1M stepped on the first quarter of 16M-sized buffers ran at
/// 0.77 of the same step on 1M-sized ones (11 alternated rounds, IQR 0.54–0.82), which
/// had made the kernel and roofline columns look slower than the C loop at 1M.
///
/// Each buffer starts on a page ([`PageAligned`]), as in `percall`. Placed by `malloc`
/// alone, params, grads and state started at unrelated offsets within a cache line once
/// `malloc` served these sizes from its heap, so every vector access of the streams not
/// aligned with the params straddled two lines: on session 15's Zen 5 (9 rounds) the
/// kernel column stepped f32 Adam at 4K at 0.81 of the same step on page-aligned
/// buffers, SGD-momentum at 0.59, and Adam's roofline measured 0.47 of itself, while the
/// owning optimizer (which places its state at the params' offset) stepped 1.21 times
/// faster than the kernel it calls.
struct Buffers {
    params: PageAligned,
    grads: PageAligned,
    state: PageAligned,
    /// A layer-wise rule's scratch memory (the `scratch` column).
    scratch: PageAligned,
}

impl Buffers {
    fn new(n: usize, slots: usize) -> Self {
        Buffers {
            params: PageAligned::filled(n, data(n, 1)),
            grads: PageAligned::filled(n, data(n, 2)),
            state: PageAligned::zeros(n * slots),
            scratch: PageAligned::zeros(n),
        }
    }

    /// Fresh values for the `n` params and the first `slots · n` state elements.
    fn reset(&mut self, n: usize, slots: usize) {
        self.params.fill(data(n, 1));
        self.state.get_mut()[..n * slots].fill(0.0);
    }
}

// ---------------------------------------------------------------------------------------
// The roofline: the loads and stores of a rule with `S` state slices, trivial math.

#[inline(always)]
fn roof_body<const S: usize>(p: &mut [f32], g: &[f32], s: [&mut [f32]; S]) {
    let n = p.len();
    let g = &g[..n];
    let mut s = s.map(|s| &mut s[..n]);
    for i in 0..n {
        let gi = g[i];
        p[i] += gi;
        for slot in s.iter_mut() {
            slot[i] += gi;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn roof_avx512<const S: usize>(p: &mut [f32], g: &[f32], s: [&mut [f32]; S]) {
    roof_body(p, g, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn roof_avx2<const S: usize>(p: &mut [f32], g: &[f32], s: [&mut [f32]; S]) {
    roof_body(p, g, s)
}

fn roof_lanes<const S: usize>(p: &mut [f32], g: &[f32], s: [&mut [f32]; S]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { roof_avx512(p, g, s) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { roof_avx2(p, g, s) };
        }
    }
    roof_body(p, g, s)
}

/// One roofline pass: `p`, `g` and the state slices `s`, all of `p.len()` elements.
/// Its first elements, up to a 64-byte boundary of `p`, run apart, as the kernels' do
/// (a vector access that straddles two cache lines costs two).
fn roof(p: &mut [f32], g: &[f32], s: &mut [&mut [f32]]) {
    let head = ((64 - p.as_ptr() as usize % 64) % 64 / 4).min(p.len());
    let (ph, p) = p.split_at_mut(head);
    let (gh, g) = g.split_at(head);
    // No allocation in the timed pass: at most four state slices.
    let k = s.len().min(4);
    let mut heads: [&mut [f32]; 4] = Default::default();
    let mut tails: [&mut [f32]; 4] = Default::default();
    for ((x, h), t) in s.iter_mut().zip(&mut heads).zip(&mut tails) {
        (*h, *t) = x.split_at_mut(head);
    }
    roof_split(ph, gh, &mut heads[..k]);
    roof_split(p, g, &mut tails[..k]);
}

fn roof_split(p: &mut [f32], g: &[f32], s: &mut [&mut [f32]]) {
    match s {
        [] => roof_lanes::<0>(p, g, []),
        [a] => roof_lanes::<1>(p, g, [a]),
        [a, b] => roof_lanes::<2>(p, g, [a, b]),
        [a, b, c] => roof_lanes::<3>(p, g, [a, b, c]),
        [a, b, c, d, ..] => roof_lanes::<4>(p, g, [a, b, c, d]),
    }
}

// ---------------------------------------------------------------------------------------
// The divider roofline: the same loads and stores, and exactly `D` divisions and one
// square root per element (f32, exact IEEE operations, so the lanes' `vdivps` and
// `vsqrtps`; no approximate reciprocal), the least a rule whose equations divide `D`
// times and take one root can do.

#[inline(always)]
fn droof_body<const S: usize, const D: usize>(p: &mut [f32], g: &[f32], s: [&mut [f32]; S]) {
    let n = p.len();
    let g = &g[..n];
    let mut s = s.map(|s| &mut s[..n]);
    for i in 0..n {
        let gi = g[i];
        let (mut a, mut b) = (gi, gi);
        for (k, slot) in s.iter_mut().enumerate() {
            let x = slot[i] + gi;
            slot[i] = x;
            if k == 0 {
                a = x;
            }
            b = x;
        }
        // √|b| (a square root of a non-negative number), then D divisions.
        let mut d = b.abs().sqrt();
        if D == 2 {
            d = d / 1.5 + 1.0;
        } else {
            d += 1.0;
        }
        p[i] += a / d;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn droof_avx512<const S: usize, const D: usize>(p: &mut [f32], g: &[f32], s: [&mut [f32]; S]) {
    droof_body::<S, D>(p, g, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn droof_avx2<const S: usize, const D: usize>(p: &mut [f32], g: &[f32], s: [&mut [f32]; S]) {
    droof_body::<S, D>(p, g, s)
}

fn droof_lanes<const S: usize, const D: usize>(p: &mut [f32], g: &[f32], s: [&mut [f32]; S]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { droof_avx512::<S, D>(p, g, s) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { droof_avx2::<S, D>(p, g, s) };
        }
    }
    droof_body::<S, D>(p, g, s)
}

/// One divider-roofline pass with `divisions` (1 or 2) divisions per element, peeled
/// to a 64-byte boundary of `p` as [`roof`] is.
fn droof(p: &mut [f32], g: &[f32], s: &mut [&mut [f32]], divisions: usize) {
    let head = ((64 - p.as_ptr() as usize % 64) % 64 / 4).min(p.len());
    let (ph, p) = p.split_at_mut(head);
    let (gh, g) = g.split_at(head);
    let k = s.len().min(4);
    let mut heads: [&mut [f32]; 4] = Default::default();
    let mut tails: [&mut [f32]; 4] = Default::default();
    for ((x, h), t) in s.iter_mut().zip(&mut heads).zip(&mut tails) {
        (*h, *t) = x.split_at_mut(head);
    }
    for (p, g, s) in [(ph, gh, &mut heads[..k]), (p, g, &mut tails[..k])] {
        match (s, divisions) {
            ([], 1) => droof_lanes::<0, 1>(p, g, []),
            ([], _) => droof_lanes::<0, 2>(p, g, []),
            ([a], 1) => droof_lanes::<1, 1>(p, g, [a]),
            ([a], _) => droof_lanes::<1, 2>(p, g, [a]),
            ([a, b], 1) => droof_lanes::<2, 1>(p, g, [a, b]),
            ([a, b], _) => droof_lanes::<2, 2>(p, g, [a, b]),
            ([a, b, c], 1) => droof_lanes::<3, 1>(p, g, [a, b, c]),
            ([a, b, c], _) => droof_lanes::<3, 2>(p, g, [a, b, c]),
            ([a, b, c, d, ..], 1) => droof_lanes::<4, 1>(p, g, [a, b, c, d]),
            ([a, b, c, d, ..], _) => droof_lanes::<4, 2>(p, g, [a, b, c, d]),
        }
    }
}

/// `iters` iterations of eight independent 512-bit divider instructions: `vsqrtps zmm`
/// (`kind` 0), `vdivps zmm` (1) or four of each, alternating (2).
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn divider_loop(kind: usize, iters: usize) {
    use std::arch::asm;
    // Eight instructions writing zmm1..zmm8 from zmm0 (and zmm9, the divisor).
    macro_rules! eight {
        ($($i:literal),+) => {
            asm!(
                $($i),+,
                out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _,
                out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _,
                in("zmm0") std::arch::x86_64::_mm512_set1_ps(2.0),
                in("zmm9") std::arch::x86_64::_mm512_set1_ps(3.0),
                options(nomem, nostack, preserves_flags)
            )
        };
    }
    for _ in 0..iters {
        // SAFETY: AVX-512F instructions (the caller's guarantee) on registers only; the
        // clobbered registers are declared.
        unsafe {
            match kind {
                0 => eight!(
                    "vsqrtps zmm1, zmm0",
                    "vsqrtps zmm2, zmm0",
                    "vsqrtps zmm3, zmm0",
                    "vsqrtps zmm4, zmm0",
                    "vsqrtps zmm5, zmm0",
                    "vsqrtps zmm6, zmm0",
                    "vsqrtps zmm7, zmm0",
                    "vsqrtps zmm8, zmm0"
                ),
                1 => eight!(
                    "vdivps zmm1, zmm0, zmm9",
                    "vdivps zmm2, zmm0, zmm9",
                    "vdivps zmm3, zmm0, zmm9",
                    "vdivps zmm4, zmm0, zmm9",
                    "vdivps zmm5, zmm0, zmm9",
                    "vdivps zmm6, zmm0, zmm9",
                    "vdivps zmm7, zmm0, zmm9",
                    "vdivps zmm8, zmm0, zmm9"
                ),
                _ => eight!(
                    "vsqrtps zmm1, zmm0",
                    "vdivps zmm2, zmm0, zmm9",
                    "vsqrtps zmm3, zmm0",
                    "vdivps zmm4, zmm0, zmm9",
                    "vsqrtps zmm5, zmm0",
                    "vdivps zmm6, zmm0, zmm9",
                    "vsqrtps zmm7, zmm0",
                    "vdivps zmm8, zmm0, zmm9"
                ),
            }
        }
    }
}

/// The least time by `clock` of `tries` runs of `f`, in seconds.
fn least_seconds(clock: Clock, tries: usize, mut f: impl FnMut()) -> f64 {
    let origin = Instant::now();
    let mut best = f64::INFINITY;
    for _ in 0..tries {
        let t = clock.seconds(origin);
        f();
        best = best.min(clock.seconds(origin) - t);
    }
    best
}

/// ns per instruction of [`divider_loop`]'s `kind` (0, 1), or per pair of one root and
/// one division (2): the least of `tries` runs of `iters` iterations, timed by `clock`;
/// `None` without AVX-512.
fn divider_ns(clock: Clock, kind: usize, iters: usize, tries: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked above).
        let best = least_seconds(clock, tries, || unsafe { divider_loop(kind, iters) });
        return Some(best * 1e9 / (iters * if kind == 2 { 4 } else { 8 }) as f64);
    }
    let _ = (clock, kind, iters, tries);
    None
}

/// Throughput of the divider on 512-bit vectors: ns per `vsqrtps zmm`, per `vdivps
/// zmm` and per pair of one of each, from a loop of independent instructions (eight
/// per iteration, no dependency between them), timed by `clock`.
fn divider_throughput(clock: Clock) -> Option<[f64; 3]> {
    let [sqrt, div, pair] = [0, 1, 2].map(|kind| divider_ns(clock, kind, 200_000, 5));
    Some([sqrt?, div?, pair?])
}

// ---------------------------------------------------------------------------------------
// The machine's state during the run.
//
// A core of a shared VM does not keep one speed: on session 15's Zen 5 the same Adam
// step alternated between two speeds (0.70 of the fast one in the slow state, a loop of
// multiply-adds 0.60) over seconds to minutes, and on session 16's Zen 4 two
// `scripts/bench.sh 7` runs ten minutes apart measured Adam's roofline at 4K at 2.35 and
// 5.41 Gparam/s. Ratios within one round are the claims, but a round lasts tens of
// seconds: three fixed loops (the floating-point pipes, the divider, the level-2 cache),
// timed before every size of every round, show whether the core changed speed during
// the run.

/// The probes' columns in [`Samples`] (rule "probe", size 0).
const PROBES: [&str; 3] = ["probe/fp", "probe/divider", "probe/memory"];

/// ns per iteration of a loop of independent multiplies and adds (64 accumulators, on
/// the build's own lanes), the least of three runs: the floating-point pipes' speed.
fn fp_probe(clock: Clock) -> f64 {
    const ITERS: usize = 20_000;
    let (c, d) = (black_box(0.999f32), black_box(0.001f32));
    let best = least_seconds(clock, 3, || {
        let mut acc = [1.0f32; 64];
        for _ in 0..ITERS {
            for a in &mut acc {
                *a = *a * c + d;
            }
        }
        black_box(acc);
    });
    best * 1e9 / ITERS as f64
}

/// The probes' buffers, allocated once for the run (fresh pages for every sample made
/// the memory probe's samples spread over 0.74–1.07 of their median on session 16's Zen
/// 4, in a run whose other probes stayed within 2–5 %).
struct Probe {
    a: PageAligned,
    b: PageAligned,
}

impl Probe {
    /// Elements in each of the memory probe's two buffers.
    const N: usize = 32 * K;

    fn new() -> Probe {
        Probe {
            a: PageAligned::filled(Probe::N, data(Probe::N, 3)),
            b: PageAligned::filled(Probe::N, data(Probe::N, 4)),
        }
    }

    /// ns per pass of `a[i] += b[i]` over the two page-aligned buffers of 32K `f32`
    /// (256 KiB together: beyond every level-1 cache, within the level-2 caches of the
    /// machines measured here), the least of three runs of 16 passes: the speed of the
    /// caches that the 4K–64K columns stream from. `a` is reset first, so its values
    /// stay where they started, whatever the number of samples.
    fn memory(&mut self, clock: Clock) -> f64 {
        const PASSES: usize = 16;
        self.a.fill(data(Probe::N, 3));
        let (a, b) = (self.a.get_mut(), self.b.get());
        let best = least_seconds(clock, 3, || {
            for _ in 0..PASSES {
                for (x, y) in a.iter_mut().zip(black_box(b)) {
                    *x += y;
                }
                black_box(&mut *a);
            }
        });
        best * 1e9 / PASSES as f64
    }

    /// Times the probes once into `samples` (columns [`PROBES`]; the divider's only
    /// with AVX-512).
    fn sample(&mut self, samples: &mut Samples, clock: Clock) {
        let values = [
            Some(fp_probe(clock)),
            divider_ns(clock, 2, 20_000, 3),
            Some(self.memory(clock)),
        ];
        for (col, v) in PROBES.into_iter().zip(values) {
            if let Some(v) = v {
                samples
                    .entry(("probe".to_string(), 0, col))
                    .or_default()
                    .push(v);
            }
        }
    }
}

/// The state slices of `n` elements each, one after another in `state`.
fn slices(state: &mut [f32], n: usize, slots: usize) -> Vec<&mut [f32]> {
    state[..n * slots].chunks_exact_mut(n.max(1)).collect()
}

// ---------------------------------------------------------------------------------------
// Child processes: the native build of this program and the C loop.

/// Runs `cmd` and parses its `name size value` (or `size value`) lines.
fn child(cmd: &mut Command) -> Vec<(String, usize, f64)> {
    let out = match cmd.output() {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            eprintln!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
            return Vec::new();
        }
        Err(e) => {
            eprintln!("{cmd:?}: {e}");
            return Vec::new();
        }
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (name, rest) = match f.len() {
                3 => (f[0].to_string(), &f[1..]),
                2 => ("adam".to_string(), &f[..]),
                _ => return None,
            };
            Some((name, rest[0].parse().ok()?, rest[1].parse().ok()?))
        })
        .collect()
}

/// `--serve`: for each line `RULE SIZE` on stdin, the `default` column of that rule at
/// that size from [`prepare`]d state, one measurement, printed as Gparam/s on a line of
/// its own (`-` for a rule this build does not have). The buffers of the last size are
/// kept for the next request of that size.
fn serve(args: &Args, cases: &[(String, AnyRule)], max_slots: usize) {
    let mut buffers: Option<(usize, Buffers)> = None;
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let (Some(name), Some(n)) = (words.next(), words.next()) else {
            break;
        };
        let n = parse_size(n);
        let reply = match cases.iter().find(|(c, _)| c == name) {
            Some((_, rule)) => {
                if buffers.as_ref().is_none_or(|b| b.0 != n) {
                    // The old size's memory goes before the new size's is taken.
                    drop(buffers.take());
                    buffers = Some((n, Buffers::new(n, max_slots)));
                }
                let Some((_, b)) = buffers.as_mut() else {
                    break;
                };
                let mut scalars = prepare(args, rule, b, n);
                measure_kernel(args, rule, &mut scalars, b, n).to_string()
            }
            None => "-".to_string(),
        };
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// A `--serve` child process: the native build, or this program for `default*`.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `exe --serve` with this run's step settings; `None` (said on stderr) if it
    /// cannot start.
    fn spawn(exe: &Path, args: &Args, names: &[&str]) -> Option<Server> {
        let mut child = Command::new(exe)
            .args(["--serve", "--ms", &args.ms.to_string()])
            .args(["--resume-at", &args.resume_at.to_string()])
            .args(["--clock", args.clock.name()])
            .args(["--rules", &names.join(",")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| eprintln!("{}: {e}", exe.display()))
            .ok()?;
        let stdin = child.stdin.take()?;
        let stdout = BufReader::new(child.stdout.take()?);
        Some(Server {
            child,
            stdin,
            stdout,
        })
    }

    /// One measurement of `rule` at `n` params, or `None` if the child did not give one.
    fn measure(&mut self, rule: &str, n: usize) -> Option<f64> {
        writeln!(self.stdin, "{rule} {n}").ok()?;
        self.stdin.flush().ok()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).ok()?;
        line.trim().parse().ok()
    }

    /// Closes the child's stdin (it then exits) and waits for it.
    fn finish(self) {
        let Server {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let _ = child.wait();
    }
}

/// Compiles benches/c/adam.c; `None` (said on stderr) without a C compiler.
fn build_c_loop() -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/c/adam.c");
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gradstep-bench-adam-c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-O3", "-march=native", "-fno-math-errno", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg("-lm")
        .status();
    match status {
        Ok(s) if s.success() => Some(exe),
        other => {
            eprintln!(
                "no C loop column: {cc} failed on {}: {other:?}",
                src.display()
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------------------
// Measuring.

/// Medians are taken over the rounds of each (rule, size, column).
type Samples = BTreeMap<(String, usize, &'static str), Vec<f64>>;

/// The kernel columns: the default dispatch, then every level this CPU has (scalar
/// lanes aside: the reference path, not a contender).
fn kernel_columns() -> Vec<&'static str> {
    let mut cols = vec!["default"];
    #[cfg(target_arch = "x86_64")]
    for level in [Level::Sse2, Level::Avx2, Level::Avx512] {
        if isa::available(level) {
            cols.push(level.name());
        }
    }
    cols
}

/// Selects the lanes of a kernel column.
fn select(col: &str) {
    #[cfg(target_arch = "x86_64")]
    {
        let level = Level::ALL.into_iter().find(|l| l.name() == col);
        assert!(isa::set_level(level), "level {col} not available");
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = col;
}

/// Fresh buffers for `rule` at `n` params and its scalar state to step from: fresh, or
/// with `--resume-at T` the slices of a first step and the scalar state after T steps.
fn prepare(args: &Args, rule: &AnyRule, b: &mut Buffers, n: usize) -> AnyScalars {
    let slots = rule.state_slots();
    b.reset(n, slots);
    let (params, grads, state) = (b.params.get_mut(), b.grads.get(), b.state.get_mut());
    let mut scalars = rule.fresh_scalars();
    if args.resume_at > 0 {
        // The state a first step leaves (a rule may start its state from the first
        // gradient, as Adan its previous gradient: zeros instead would make its moments
        // decay into subnormals), then a long run's count.
        let r = rule.step_flat(&mut scalars, params, grads, &mut state[..n * slots]);
        r.expect("the first step");
        scalars = resumed(rule, args.resume_at);
    }
    scalars
}

/// One measurement of `rule`'s kernel on the selected lanes at `n` params of `b`.
fn measure_kernel(
    args: &Args,
    rule: &AnyRule,
    scalars: &mut AnyScalars,
    b: &mut Buffers,
    n: usize,
) -> f64 {
    let slots = rule.state_slots();
    let (params, grads, state) = (b.params.get_mut(), b.grads.get(), b.state.get_mut());
    measure(n, args.ms, args.clock, || {
        let r = rule.step_flat(scalars, params, black_box(grads), &mut state[..n * slots]);
        r.expect("benchmark step");
    })
}

/// The scalar state `rule` has after `steps` steps: a step over no elements, taken
/// `steps` times (it advances the scalar state as any step does).
fn resumed(rule: &AnyRule, steps: u64) -> AnyScalars {
    let mut s = rule.fresh_scalars();
    for _ in 0..steps {
        let r = rule.step_flat::<f32>(&mut s, &mut [], &[], &mut []);
        r.expect("a step over no elements");
    }
    assert_eq!(s.step(), steps, "a step over no elements counts");
    s
}

/// Takes one step of `opt` over `tensors` (the state a run's first step leaves), then
/// puts every tensor at the scalar state of `steps` steps ([`resumed`]) through the
/// state dict, the slices as that step left them. Nothing when `steps` is 0.
fn resume(opt: &mut Optimizer<f32>, steps: u64, tensors: &mut [(&mut [f32], &[f32])]) {
    if steps == 0 {
        return;
    }
    opt.step(tensors).expect("the first step");
    let d = opt.state_dict();
    // One scalar state per group: every tensor of a group resumes the same way.
    let scalars: Vec<AnyScalars> = (d.param_groups.iter())
        .map(|g| resumed(&g.rule, steps))
        .collect();
    let values: Vec<Vec<Vec<f32>>> = d
        .state
        .iter()
        .map(|t| t.slots.iter().map(|s| s.values.to_vec()).collect())
        .collect();
    let state = d
        .state
        .iter()
        .zip(&values)
        .map(|(t, v)| TensorState {
            group: t.group,
            scalars: scalars[t.group.0],
            slots: (t.slots.iter().zip(v))
                .map(|(s, v)| Slot {
                    name: s.name,
                    values: v,
                })
                .collect(),
        })
        .collect();
    let d = StateDict {
        param_groups: d.param_groups.clone(),
        state,
    };
    opt.load_state_dict(&d).expect("a reachable state");
}

/// The `native` and `default*` columns of one round: the native build and this program
/// (its `default` column again) as two `--serve` child processes started for the round,
/// asked in turn for each rule and size, the first of each pair alternating. A child
/// starts cold (page faults, caches, the clock's first reads), so the two builds are
/// compared child against child; and a pair is measured `--ms` apart, not a whole
/// round: on a shared 2-core VM whose sibling thread's load came and went, a fast
/// rule at 4K ran at 12 or 19 Gparam/s from one second to the next, in one process and
/// with the same code, which one child process per column and round put into the
/// per-round ratios (session 19: their IQR spanned ±10–30 % in 37 of 105 cells).
fn native_pairs(args: &Args, native: &Path, names: &[&str], round: usize, samples: &mut Samples) {
    let this = std::env::current_exe().ok();
    let servers = [(Some(native), "native"), (this.as_deref(), "default*")];
    let mut servers: Vec<(Server, &'static str)> = servers
        .into_iter()
        .filter_map(|(exe, col)| Some((Server::spawn(exe?, args, names)?, col)))
        .collect();
    let mut pair = round;
    for &n in &args.sizes {
        for &name in names {
            let len = servers.len();
            for i in (0..len).map(|i| (i + pair) % len) {
                let (server, col) = &mut servers[i];
                if let Some(v) = server.measure(name, n) {
                    samples
                        .entry((name.to_string(), n, *col))
                        .or_default()
                        .push(v);
                }
            }
            pair += 1;
        }
    }
    for (server, _) in servers {
        server.finish();
    }
}

/// One round over every rule and size: the kernel columns (in an order rotated by
/// `round`), the roofline and the owning optimizer.
fn round(
    args: &Args,
    cases: &[(String, AnyRule)],
    max_slots: usize,
    round: usize,
    samples: &mut Samples,
    mut probe: Option<&mut Probe>,
) {
    let mut cols = kernel_columns();
    if args.worker {
        cols.truncate(1);
    }
    let len = cols.len();
    cols.rotate_left(round % len);
    for &n in &args.sizes {
        if let Some(probe) = probe.as_mut() {
            probe.sample(samples, args.clock);
        }
        let b = &mut Buffers::new(n, max_slots);
        for (name, rule) in cases {
            let slots = rule.state_slots();
            let mut push = |col: &'static str, v: f64| {
                samples.entry((name.clone(), n, col)).or_default().push(v)
            };
            let mut scalars = prepare(args, rule, b, n);
            for &col in &cols {
                select(col);
                push(col, measure_kernel(args, rule, &mut scalars, b, n));
            }
            let (params, grads, state) = (b.params.get_mut(), b.grads.get(), b.state.get_mut());
            let clock = args.clock;
            select("default");
            if args.worker {
                continue;
            }
            if rule.whole_slice() {
                // The kernel with scratch memory between its passes (`step_scratch`).
                let mut s = slices(state, n, slots);
                let u = b.scratch.get_mut();
                let v = measure(n, args.ms, clock, || {
                    let r = rule.step_scratch(&mut scalars, params, black_box(grads), &mut s, u);
                    r.expect("benchmark step");
                });
                push("scratch", v);
            }
            if args.subnormal {
                let zeros = vec![0.0f32; n];
                let mut tiny = vec![f32::from_bits(1); n * slots];
                let mut p = params.to_vec();
                // Past the first step (the kernel columns took it), which would
                // initialize the state.
                let mut sc = scalars;
                let v = measure(n, args.ms, clock, || {
                    let r = rule.step_flat(&mut sc, &mut p, black_box(&zeros), &mut tiny);
                    r.expect("benchmark step");
                });
                push("subnormal", v);
            }
            let mut s = slices(state, n, slots);
            let v = measure(n, args.ms, clock, || roof(params, black_box(grads), &mut s));
            push("roof", v);
            for (col, d) in [("droof1", 1), ("droof2", 2)] {
                let v = measure(n, args.ms, clock, || {
                    droof(params, black_box(grads), &mut s, d)
                });
                push(col, v);
            }
            let mut opt = Optimizer::<f32>::new(*rule).expect("valid rule");
            opt.add_tensor(GroupId(0), n).expect("tensor");
            resume(&mut opt, args.resume_at, &mut [(&mut *params, grads)]);
            opt.set_threads(1);
            let mut step = |opt: &mut Optimizer<f32>, clock| {
                measure(n, args.ms, clock, || {
                    let r = opt.step(&mut [(&mut *params, black_box(&*grads))]);
                    r.expect("optimizer step");
                })
            };
            push("optim/1", step(&mut opt, clock));
            if n != THREADED {
                continue;
            }
            // Threads: wall time, one thread and two back to back.
            push("optim/1w", step(&mut opt, Clock::Wall));
            opt.set_threads(2);
            push("optim/2w", step(&mut opt, Clock::Wall));
            let half = n / 2;
            let mut s = slices(state, n, slots);
            let v = measure(n, args.ms, Clock::Wall, || {
                roof(params, black_box(grads), &mut s)
            });
            push("roof/1w", v);
            let (mut lo, mut hi): (Vec<&mut [f32]>, Vec<&mut [f32]>) =
                s.iter_mut().map(|x| x.split_at_mut(half)).unzip();
            let (p0, p1) = params.split_at_mut(half);
            let (g0, g1) = grads.split_at(half);
            let v = measure(n, args.ms, Clock::Wall, || {
                std::thread::scope(|sc| {
                    sc.spawn(|| roof(p1, black_box(g1), &mut hi));
                    roof(p0, black_box(g0), &mut lo);
                })
            });
            push("roof/2w", v);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The multi-tensor step: the owning optimizer over a list of tensors of mixed sizes.

/// The tensor lists: a small transformer's parameters (an embedding, four big
/// matrices, many vectors) and many equal small tensors.
fn tensor_lists() -> Vec<(&'static str, Vec<usize>)> {
    let mut transformer = vec![16 * M, 4 * M, 4 * M, 4 * M, 4 * M];
    transformer.extend([64 * K; 24]);
    transformer.extend([4 * K; 48]);
    transformer.extend([K; 48]);
    vec![("transformer", transformer), ("200x4K", vec![4 * K; 200])]
}

/// One list's buffers: params and grads per tensor, and an Adam optimizer over them.
struct MultiCase {
    name: &'static str,
    total: usize,
    params: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    opt: Optimizer<f32>,
}

impl MultiCase {
    fn new(name: &'static str, sizes: &[usize], resume_at: u64) -> MultiCase {
        let mut opt = Optimizer::<f32>::new(RuleId::Adam.default_rule()).expect("adam");
        for &n in sizes {
            opt.add_tensor(GroupId(0), n).expect("tensor");
        }
        let mut params: Vec<Vec<f32>> = sizes.iter().map(|&n| data(n, 1).collect()).collect();
        let grads: Vec<Vec<f32>> = sizes.iter().map(|&n| data(n, 2).collect()).collect();
        let mut list: Vec<(&mut [f32], &[f32])> = (params.iter_mut().zip(&grads))
            .map(|(p, g)| (&mut p[..], &g[..]))
            .collect();
        resume(&mut opt, resume_at, &mut list);
        MultiCase {
            name,
            total: sizes.iter().sum(),
            params,
            grads,
            opt,
        }
    }

    /// Gparam/s of the whole list's step on `threads` threads, wall time.
    fn run(&mut self, threads: usize, ms: f64) -> f64 {
        self.opt.set_threads(threads);
        let (params, grads, opt) = (&mut self.params, &self.grads, &mut self.opt);
        measure(self.total, ms, Clock::Wall, || {
            let mut list: Vec<(&mut [f32], &[f32])> = params
                .iter_mut()
                .zip(grads)
                .map(|(p, g)| (&mut p[..], black_box(&g[..])))
                .collect();
            black_box(opt.step(&mut list)).expect("multi-tensor step");
        })
    }
}

/// One round over the tensor lists, one thread and two, in an order rotated by
/// `round`; and the cost of starting and joining one scoped thread, in µs.
fn multi_round(cases: &mut [MultiCase], ms: f64, round: usize, samples: &mut Samples) {
    for case in cases.iter_mut() {
        let mut threads = [1, 2];
        threads.rotate_left(round % 2);
        for t in threads {
            let v = case.run(t, ms);
            let col = if t == 1 { "multi/1" } else { "multi/2" };
            samples
                .entry((case.name.to_string(), case.total, col))
                .or_default()
                .push(v);
        }
    }
    let start = Instant::now();
    let reps = 200;
    for _ in 0..reps {
        std::thread::scope(|s| {
            s.spawn(|| black_box(0));
        });
    }
    let micros = start.elapsed().as_secs_f64() * 1e6 / reps as f64;
    samples
        .entry(("spawn".into(), 1, "spawn"))
        .or_default()
        .push(micros);
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// The probes' spread over the run ([`Probe::sample`], timed `when`), and a warning
/// when any of them changed by more than 10 % between the fastest and the slowest
/// sample.
fn report_state(samples: &Samples, when: &str) {
    let mut lines = Vec::new();
    let (mut changed, mut count) = (false, 0);
    let names = [
        "multiply-add loop",
        "root-and-division pair",
        "256 KiB add pass",
    ];
    for (col, what) in PROBES.into_iter().zip(names) {
        let Some(v) = samples.get(&("probe".to_string(), 0, col)) else {
            continue;
        };
        let Some(med) = median(v) else { continue };
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        changed |= hi > lo * 1.10;
        count = count.max(v.len());
        lines.push(format!(
            "{what} {med:.2} ns (fastest {:.2}, slowest {:.2} of the median)",
            lo / med,
            hi / med
        ));
    }
    if lines.is_empty() {
        return;
    }
    println!(
        "- the machine's speed during the run (fixed loops timed {when}, {count} samples), \
         median and spread: {}",
        lines.join("; ")
    );
    if changed {
        println!(
            "  - the slowest sample is more than 10 % slower than the fastest: the machine \
             changed speed during this run, and ratios between columns measured in \
             different states are less reliable (rerun, or compare more rounds)"
        );
    }
}

/// [`Args::probe`]'s loop: the probes' buffers live as long as the process, as in a
/// run of this program. Each line read takes one sample and prints its values; at the
/// end of stdin the spread of all of them is printed as [`report_state`] prints it.
fn probe_server(clock: Clock) {
    use std::io::{BufRead, Write};
    let mut probe = Probe::new();
    let mut samples = Samples::new();
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
        probe.sample(&mut samples, clock);
        let last = PROBES.map(|col| {
            samples
                .get(&("probe".to_string(), 0, col))
                .and_then(|v| v.last())
                .map_or("-".to_string(), |v| format!("{v:.3}"))
        });
        if writeln!(out, "{}", last.join(" "))
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
    drop(out);
    report_state(&samples, "at the caller's sampling points");
}

fn main() {
    let args = parse_args();
    if args.probe {
        probe_server(args.clock);
        return;
    }
    let cases = cases(&args.rules);
    let max_slots = cases
        .iter()
        .map(|(_, r)| r.state_slots())
        .max()
        .unwrap_or(0);
    let mut samples = Samples::new();

    let mut multi: Vec<MultiCase> = if args.multi {
        tensor_lists()
            .iter()
            .map(|(name, sizes)| MultiCase::new(name, sizes, args.resume_at))
            .collect()
    } else {
        Vec::new()
    };

    if args.worker && args.multi {
        multi_round(&mut multi, args.ms, 0, &mut samples);
        for ((name, _, col), v) in &samples {
            if let Some(t) = col.strip_prefix("multi/") {
                println!("{name} {t} {}", v[0]);
            }
        }
        return;
    }
    if args.serve {
        serve(&args, &cases, max_slots);
        return;
    }
    if args.worker {
        round(&args, &cases, max_slots, 0, &mut samples, None);
        for ((name, n, _), v) in &samples {
            println!("{name} {n} {}", v[0]);
        }
        return;
    }

    let has_adam = cases.iter().any(|(name, _)| name == "adam");
    let c_loop = if args.c_loop && has_adam {
        build_c_loop()
    } else {
        None
    };
    let names: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
    let sizes: Vec<String> = args.sizes.iter().map(|n| n.to_string()).collect();
    #[cfg(target_arch = "x86_64")]
    eprintln!("default level on this CPU: {}", isa::detected().name());
    let mut probe = Probe::new();
    for r in 0..args.rounds {
        eprintln!("round {}/{}", r + 1, args.rounds);
        round(&args, &cases, max_slots, r, &mut samples, Some(&mut probe));
        multi_round(&mut multi, args.ms, r, &mut samples);
        if let Some(native) = &args.native {
            native_pairs(&args, native, &names, r, &mut samples);
        }
        if let Some(exe) = &c_loop {
            let mut cmd = Command::new(exe);
            cmd.args([args.clock.name(), &args.ms.to_string()])
                .arg((args.resume_at + 1).to_string())
                .args(&sizes);
            for (name, n, v) in child(&mut cmd) {
                samples.entry((name, n, "C")).or_default().push(v);
            }
        }
    }
    report(&args, &cases, &samples);
}

// ---------------------------------------------------------------------------------------
// Reporting.

fn report(args: &Args, cases: &[(String, AnyRule)], samples: &Samples) {
    let med = |name: &str, n: usize, col: &'static str| {
        samples
            .get(&(name.to_string(), n, col))
            .and_then(|v| median(v))
    };
    let fmt =
        |x: Option<f64>, digits: usize| x.map_or("–".to_string(), |x| format!("{x:.digits$}"));
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    // Quartiles of the per-round ratios of two columns. The builds are compared so:
    // each round's `default*` and `native` are a pair measured `--ms` apart
    // ([`native_pairs`]), so the median of the pairs' ratios is the claim (not the
    // ratio of the two columns' medians, which takes each from another round). The
    // forced level that the default build picks runs the same code as `default` in the
    // same process: its per-round ratio is the in-process noise band.
    let quartiles = |name: &str, n: usize, a: &'static str, b: &'static str| {
        let x = samples.get(&(name.to_string(), n, a))?;
        let y = samples.get(&(name.to_string(), n, b))?;
        let mut r: Vec<f64> = x.iter().zip(y).map(|(x, y)| x / y).collect();
        r.sort_by(f64::total_cmp);
        let q = |f: usize| r.get(r.len() * f / 4).copied();
        Some([q(1)?, q(2)?, q(3)?])
    };
    let pairs = |name: &str, n: usize| Some(quartiles(name, n, "default*", "native")?[1]);

    let mut cols: Vec<&'static str> = kernel_columns();
    for c in [
        "default*",
        "native",
        "C",
        "scratch",
        "subnormal",
        "optim/1",
        "roof",
        "droof1",
        "droof2",
    ] {
        if samples.keys().any(|k| k.2 == c) {
            cols.push(c);
        }
    }
    println!(
        "\nf32, Gparam/s, medians of {} interleaved rounds; clock: {}; {}",
        args.rounds,
        match args.clock {
            Clock::Cpu => "the thread's CPU time (two-thread rows: wall time)",
            Clock::Wall => "wall time",
            Clock::Calls => "each call alone, the median call (two-thread rows: wall time)",
        },
        match args.resume_at {
            0 => "from fresh state".to_string(),
            t => format!("resumed at step {t}"),
        }
    );
    for &n in &args.sizes {
        println!("\n### {} parameters\n", size_name(n));
        print!("| rule | B/param |");
        for c in &cols {
            print!(" {c} |");
        }
        println!(" default/roof | default*/native |");
        print!("|---|---|");
        for _ in &cols {
            print!("---|");
        }
        println!("---|---|");
        for (name, rule) in cases {
            print!("| {name} | {} |", bytes_per_param(rule));
            for c in &cols {
                print!(" {} |", fmt(med(name, n, c), 3));
            }
            let d = med(name, n, "default");
            println!(
                " {} | {} |",
                fmt(ratio(d, med(name, n, "roof")), 2),
                fmt(pairs(name, n), 2)
            );
        }
    }

    println!("\n### The issue's targets, as ratios of the medians above\n");
    let per_size = |f: &dyn Fn(usize) -> Option<f64>| {
        args.sizes
            .iter()
            .map(|&n| format!("{} {}", size_name(n), fmt(f(n), 2)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Default vs native, every rule and size.
    let mut worst: Option<(f64, String, usize)> = None;
    for (name, _) in cases {
        for &n in &args.sizes {
            if let Some(r) = pairs(name, n)
                && worst
                    .as_ref()
                    .is_none_or(|w| (r - 1.0).abs() > (w.0 - 1.0).abs())
            {
                worst = Some((r, name.clone(), n));
            }
        }
    }
    match worst {
        Some((r, name, n)) => println!(
            "- default* / native (median of the pairs' ratios): farthest from 1 is {r:.3} ({name}, {}); per rule and size in the tables",
            size_name(n)
        ),
        None => println!("- default / native: not measured (no --native)"),
    }
    #[cfg(target_arch = "x86_64")]
    let same_code = isa::detected().name();
    #[cfg(not(target_arch = "x86_64"))]
    let same_code = "default";
    let (mut cells, mut within, mut outside) = (0, 0, Vec::new());
    for (name, _) in cases {
        for &n in &args.sizes {
            let Some([q1, q2, q3]) = quartiles(name, n, "default*", "native") else {
                continue;
            };
            cells += 1;
            if (q2 - 1.0).abs() <= 0.05 {
                within += 1;
            } else {
                let noise = quartiles(name, n, "default", same_code)
                    .map_or("–".to_string(), |[a, _, b]| format!("{a:.2}–{b:.2}"));
                outside.push(format!(
                    "{name} {} {q2:.3} (IQR {q1:.2}–{q3:.2}; default/{same_code}, the same \
                     code: {noise})",
                    size_name(n)
                ));
            }
        }
    }
    if cells > 0 {
        println!(
            "- default* / native (both child processes), median of the per-round ratios: \
             {within} of {cells} cells within 5 %{}",
            if outside.is_empty() { "" } else { "; outside:" }
        );
        for o in outside {
            println!("  - {o}");
        }
    }
    let a = |n: usize, col: &'static str| med("adam", n, col);
    println!(
        "- adam default / C loop: {}",
        per_size(&|n| ratio(a(n, "default"), a(n, "C")))
    );
    println!(
        "- adam default / roofline: {}",
        per_size(&|n| ratio(a(n, "default"), a(n, "roof")))
    );
    println!(
        "- adam C loop / roofline: {}",
        per_size(&|n| ratio(a(n, "C"), a(n, "roof")))
    );
    println!(
        "- adam default / sse2: {}",
        per_size(&|n| ratio(a(n, "default"), a(n, "sse2")))
    );
    println!(
        "- adam optimizer (1 thread) / kernel: {}",
        per_size(&|n| ratio(a(n, "optim/1"), a(n, "default")))
    );
    // A layer-wise rule's kernel with scratch memory between its two passes, and its
    // optimizer, which uses it for tensors of up to `SCRATCH_MAX_BYTES`; the kernel
    // column steps without. The median of the per-round ratios, with their IQR.
    for (name, _) in cases.iter().filter(|(_, rule)| rule.whole_slice()) {
        let iqr = |n: usize, col: &'static str| {
            quartiles(name, n, col, "default").map(|[a, m, b]| format!("{m:.2} ({a:.2}–{b:.2})"))
        };
        let row = |col: &'static str| {
            let cells: Vec<String> = args
                .sizes
                .iter()
                .map(|&n| format!("{} {}", size_name(n), iqr(n, col).unwrap_or("–".into())))
                .collect();
            cells.join(", ")
        };
        println!("- {name} kernel with scratch / without: {}", row("scratch"));
        println!(
            "- {name} optimizer (1 thread; scratch memory up to {} KiB) / kernel: {}",
            gradstep_optim::SCRATCH_MAX_BYTES / 1024,
            row("optim/1")
        );
    }
    if args.subnormal {
        println!(
            "- default / subnormal (zero gradients, the state at the least subnormal), \
             median of the per-round ratios (IQR):"
        );
        for (name, _) in cases {
            let cells: Vec<String> = (args.sizes.iter())
                .map(|&n| {
                    let q = quartiles(name, n, "default", "subnormal");
                    let q = q.map(|[a, m, b]| format!("{m:.2} ({a:.2}–{b:.2})"));
                    format!("{} {}", size_name(n), q.unwrap_or("–".into()))
                })
                .collect();
            println!("  - {name}: {}", cells.join(", "));
        }
    }
    // Time per byte relative to SGD-momentum: (gps·bytes) of SGD-m / (gps·bytes) of rule.
    let sgdm = cases.iter().find(|(name, _)| name == "sgd_momentum");
    if let Some((_, sgdm_rule)) = sgdm {
        println!("- time per byte / SGD-momentum's (1.0 = as fast per byte):");
        for (name, rule) in cases {
            let tpb = |n: usize| {
                let s = med("sgd_momentum", n, "default")? * bytes_per_param(sgdm_rule) as f64;
                let r = med(name, n, "default")? * bytes_per_param(rule) as f64;
                Some(s / r)
            };
            println!("  - {name}: {}", per_size(&tpb));
        }
        for (name, rule) in cases.iter().filter(|(_, rule)| rule.whole_slice()) {
            let tpb = |n: usize| {
                let s = med("sgd_momentum", n, "default")? * bytes_per_param(sgdm_rule) as f64;
                let r = med(name, n, "optim/1")? * bytes_per_param(rule) as f64;
                Some(s / r)
            };
            println!("  - {name}, optimizer with scratch: {}", per_size(&tpb));
        }
    }
    println!(
        "- default / divider roofline (the same loads and stores with one square root and \
         one division per element, as Adam needs | with one root and two divisions, as \
         NAdam needs):"
    );
    for (name, _) in cases {
        let d = |n: usize, col: &'static str| ratio(med(name, n, "default"), med(name, n, col));
        println!(
            "  - {name}: {} | {}",
            per_size(&|n| d(n, "droof1")),
            per_size(&|n| d(n, "droof2"))
        );
    }
    if let Some([sqrt, div, pair]) = divider_throughput(args.clock) {
        println!(
            "- divider throughput (independent 512-bit instructions, {}): \
             vsqrtps zmm {sqrt:.2} ns, vdivps zmm {div:.2} ns, one of each {pair:.2} ns; \
             per f32 element: one root and one division {:.3} ns, one root and two \
             divisions {:.3} ns",
            args.clock.describe(),
            pair / 16.0,
            (pair + div) / 16.0
        );
    }
    report_state(samples, "before every size of every round");
    if args.multi {
        println!("\n### The multi-tensor step (Adam, wall time, Gparam/s of the whole list)\n");
        println!("| list | tensors | params | 1 thread | 2 threads | 2 / 1 |");
        println!("|---|---|---|---|---|---|");
        for (name, sizes) in tensor_lists() {
            let total: usize = sizes.iter().sum();
            let one = med(name, total, "multi/1");
            let two = med(name, total, "multi/2");
            println!(
                "| {name} | {} | {} | {} | {} | {} |",
                sizes.len(),
                total,
                fmt(one, 3),
                fmt(two, 3),
                fmt(ratio(two, one), 2)
            );
        }
        if let Some(us) = med("spawn", 1, "spawn") {
            println!("\nStarting and joining one scoped thread: {us:.1} µs (median)");
        }
    }
    if args.sizes.contains(&THREADED) {
        let n = THREADED;
        println!(
            "- two threads / one at {} (wall time, back to back):",
            size_name(n)
        );
        for (name, _) in cases {
            println!(
                "  - {name}: optimizer {}, roofline {} (optimizer/2 of roofline/2: {})",
                fmt(ratio(med(name, n, "optim/2w"), med(name, n, "optim/1w")), 2),
                fmt(ratio(med(name, n, "roof/2w"), med(name, n, "roof/1w")), 2),
                fmt(ratio(med(name, n, "optim/2w"), med(name, n, "roof/2w")), 2)
            );
        }
    }
}
