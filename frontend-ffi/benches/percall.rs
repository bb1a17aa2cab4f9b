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
//!   tensor, one thread).
//!
//! Each measurement steps for `--ms` milliseconds of the thread's CPU time (Linux;
//! wall time elsewhere) after a warm-up step. Printed: per size, each column's median
//! Gparam/s, and the median of its per-round ratio to `kernel` with the per-round
//! ratios' interquartile range (the noise band). Not a test: nothing asserts a time.
//!
//! Run: `cargo bench -p gradstep-ffi --bench percall -- [--rounds 31] [--ms 10]
//! [--sizes 1K,4K,64K] [--only "C step"]` (`--only`: that column and `kernel`, for
//! `perf record` on one path). `--calls N --only COLUMN` makes exactly N calls of that
//! column alone at each size and prints nothing: for `perf stat -e instructions,cycles`,
//! whose difference between two values of N, divided by their difference, is the cost
//! of one call without the timer's or the other columns' noise.

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
use gradstep_optim::{GroupId, Optimizer};
use kernels::rules::{AnyRule, RuleId};

const COLUMNS: [&str; 5] = ["kernel", "kernel'", "C step", "optim", "C handle"];

#[cfg(target_os = "linux")]
fn cpu_seconds() -> f64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec (64-bit fields on 64-bit Linux); Linux's id.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(not(target_os = "linux"))]
fn cpu_seconds() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

thread_local! {
    /// Set by `--calls`: [`measure`] makes exactly this many calls instead of timing.
    static CALLS: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
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
    let batch = (1usize << 16).div_ceil(n.max(1));
    let start = cpu_seconds();
    let mut reps = 0usize;
    loop {
        for _ in 0..batch {
            step();
        }
        reps += batch;
        let secs = cpu_seconds() - start;
        if reps >= 2 && secs * 1e3 >= ms {
            return (n * reps) as f64 / secs / 1e9;
        }
    }
}

/// A buffer whose first element sits on a 64-byte boundary, as torch's allocator
/// places tensors: the columns differ then only by what they do, not by where the
/// allocator happened to put their buffers (a stream straddling cache lines costs a
/// small step several per cent).
struct Aligned {
    v: Vec<f32>,
    off: usize,
    n: usize,
}

impl Aligned {
    fn new(n: usize, seed: Option<u32>) -> Aligned {
        let mut v = vec![0.0f32; n + 16];
        let off = v.as_ptr().align_offset(64);
        if let Some(seed) = seed {
            let mut x = seed.wrapping_mul(2_654_435_761) | 1;
            for e in &mut v[off..off + n] {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *e = (x as f32 / u32::MAX as f32) * 0.2 - 0.1;
            }
        }
        Aligned { v, off, n }
    }

    fn get(&self) -> &[f32] {
        &self.v[self.off..self.off + self.n]
    }

    fn get_mut(&mut self) -> &mut [f32] {
        &mut self.v[self.off..self.off + self.n]
    }
}

fn data(n: usize, seed: u32) -> Aligned {
    Aligned::new(n, Some(seed))
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// One size's buffers and the three callers' state, each over its own buffers.
struct Case {
    n: usize,
    rule: AnyRule,
    grads: Aligned,
    kernel: (Aligned, Aligned, kernels::rules::AnyScalars),
    c_step: (Aligned, Aligned, gradstep_scalars, gradstep_rule),
    optim: (Aligned, Optimizer<f32>),
    handle: *mut gradstep_optimizer,
    /// The handle's params (the handle holds a pointer to them: never moved).
    _handle_params: Aligned,
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
                Aligned::new(n * slots, None),
                rule.fresh_scalars(),
            ),
            c_step: (
                data(n, 1),
                Aligned::new(n * slots, None),
                gradstep_scalars::default(),
                c_rule,
            ),
            optim: (data(n, 1), optim),
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
                    black_box(r).expect("kernel step");
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
                            s.n,
                        )
                    };
                    assert_eq!(black_box(r), GRADSTEP_OK);
                })
            }
            "optim" => {
                let (p, opt) = &mut self.optim;
                measure(n, ms, || {
                    let r = opt.step(&mut [(p.get_mut(), black_box(grads))]);
                    black_box(r).expect("optimizer step");
                })
            }
            "C handle" => {
                let h = self.handle;
                measure(n, ms, || {
                    // SAFETY: a live handle whose buffers are alive.
                    let r = unsafe { gradstep_optimizer_step(black_box(h)) };
                    assert_eq!(black_box(r), GRADSTEP_OK);
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

fn main() {
    let (mut rounds, mut ms, mut sizes) = (31usize, 10.0f64, vec![1usize << 10, 4 << 10]);
    let (mut only, mut calls) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--rounds" => rounds = value().parse().expect("--rounds N"),
            "--ms" => ms = value().parse().expect("--ms MILLISECONDS"),
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
                        match s.strip_suffix(['K', 'k']) {
                            Some(k) => k.parse::<usize>().expect("size") << 10,
                            None => s.parse().expect("size"),
                        }
                    })
                    .collect()
            }
            other => panic!("unknown argument {other:?}"),
        }
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
                per_col[c].push(case.run(COLUMNS[c], ms));
            }
        }
    }
    println!(
        "\nf32 Adam, one thread, Gparam/s (CPU time), {rounds} interleaved rounds of {ms} ms\n"
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
            println!(
                "| {}K | {name} | {gps:.3} | {:.0} | {:.3} | {:.3}–{:.3} |",
                n >> 10,
                n as f64 / gps,
                quantile(&ratios, 0.5),
                quantile(&ratios, 0.25),
                quantile(&ratios, 0.75),
            );
        }
    }
}
