//! The clocks of the benches, shared by benches/speed.rs and
//! frontend-ffi/benches/percall.rs (included by `#[path]`): the calling thread's CPU time,
//! and each call timed alone by the time-stamp counter.
//!
//! A thread's CPU time leaves out the time the scheduler gave other processes of a
//! shared machine, but not what their work did to this one's caches and memory
//! bandwidth, nor the interrupts taken on its time. Timing every call alone between two
//! fenced readings of the time-stamp counter and taking the median call leaves those
//! out too: a call that another process's time slice interrupted, or whose caches it
//! evicted, is not the median one. Fenced, calls no longer overlap each other, so for a
//! call of a few dozen nanoseconds it measures its latency, more than its share of a
//! batch (about twice, at 16 params of f32 Adam); from a few hundred nanoseconds up the
//! difference is small, and it is the same for every column compared.

#![allow(dead_code)]

use std::time::Instant;

/// The calling thread's CPU time in seconds (Linux; elsewhere, the wall time since the
/// first call).
#[cfg(target_os = "linux")]
pub fn thread_cpu_seconds() -> f64 {
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
    // SAFETY: `ts` is a valid, writable timespec (64-bit `time_t` and `long` on the
    // 64-bit Linux targets this runs on); the clock id is Linux's.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The wall time since the first call, where there is no thread CPU clock to read.
#[cfg(not(target_os = "linux"))]
pub fn thread_cpu_seconds() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// The time-stamp counter, fenced so that the call between two readings is neither
/// started before the first nor finished after the second.
#[cfg(target_arch = "x86_64")]
pub fn ticks() -> u64 {
    use std::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: `lfence` (SSE2) and `rdtsc` are part of every x86-64 processor.
    #[allow(unused_unsafe)]
    unsafe {
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
}

/// Time-stamp counter ticks per nanosecond, measured once against the wall clock.
#[cfg(target_arch = "x86_64")]
pub fn ticks_per_ns() -> f64 {
    static RATE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *RATE.get_or_init(|| {
        let (t0, w0) = (ticks(), Instant::now());
        while w0.elapsed().as_millis() < 50 {}
        (ticks() - t0) as f64 / w0.elapsed().as_nanos() as f64
    })
}

/// The median ticks between two readings with nothing between them: subtracted from
/// each timed call (about 40 ns on session 12's Zen 5, most of a 16-param step).
#[cfg(target_arch = "x86_64")]
pub fn timer_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let mut d: Vec<u64> = (0..100_001)
            .map(|_| {
                let t0 = ticks();
                ticks() - t0
            })
            .collect();
        d.sort_unstable();
        d[d.len() / 2]
    })
}

/// Gparam/s of `step`'s median call (`n` params per call), each call timed alone by the
/// time-stamp counter, calls made for `ms` ms of the thread's CPU time (at least three).
#[cfg(target_arch = "x86_64")]
pub fn median_call(n: usize, ms: f64, mut step: impl FnMut()) -> f64 {
    let (rate, timer) = (ticks_per_ns(), timer_ticks());
    let mut times = Vec::with_capacity(1 << 16);
    let start = thread_cpu_seconds();
    loop {
        // The CPU clock is a system call: read it once per ~64K params, at most 256
        // calls.
        for _ in 0..(1usize << 16).div_ceil(n.max(1)).min(256) {
            let t0 = ticks();
            step();
            times.push(ticks() - t0);
        }
        if times.len() >= 3 && (thread_cpu_seconds() - start) * 1e3 >= ms {
            break;
        }
    }
    times.sort_unstable();
    n as f64 / (times[times.len() / 2].saturating_sub(timer).max(1) as f64 / rate)
}

/// Elsewhere there is no time-stamp counter to read.
#[cfg(not(target_arch = "x86_64"))]
pub fn median_call(_: usize, _: f64, _: impl FnMut()) -> f64 {
    panic!("timing each call reads the x86-64 time-stamp counter");
}
