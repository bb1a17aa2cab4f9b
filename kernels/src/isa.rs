//! Which x86-64 instruction set the element loop runs on, chosen at run time.
//!
//! A portable build (`cargo build --release`, no `target-cpu`) runs every rule on the
//! widest lanes the CPU has: AVX-512F, else AVX2, else SSE2 (part of x86-64). The choice
//! is made once, in one place (memchr's pattern): a level the build already has
//! (`-C target-feature=+avx512f`, `-C target-cpu=native`) is taken without asking the CPU;
//! otherwise `cpuid` (and `xgetbv`, for the OS's support of the wider registers) is
//! queried on the first step and the answer cached in a static atomic. Under the
//! `force-scalar` feature the level is always [`Level::Scalar`].
//!
//! Every level gives the same bits (no lane operation is approximate, and the one use of
//! fused multiply-adds is a correctly rounded division, `crate::lanes::Divisor`);
//! `kernels/tests/isa.rs` checks it for every rule on every level the machine has.

use core::arch::x86_64::{__cpuid_count, _xgetbv};
use core::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level of the element loop, from the narrowest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// One element at a time (the tails of every level; `force-scalar`).
    Scalar = 1,
    /// 128-bit lanes (f32 × 4, f64 × 2): the x86-64 baseline.
    Sse2 = 2,
    /// 256-bit lanes (f32 × 8, f64 × 4): AVX2 with FMA (every AVX2 CPU but a few
    /// virtual machines that hide FMA; those run SSE2).
    Avx2 = 3,
    /// 512-bit lanes (f32 × 16, f64 × 8), AVX-512F instructions only.
    Avx512 = 4,
}

impl Level {
    /// Every level, from the narrowest.
    pub const ALL: [Level; 4] = [Level::Scalar, Level::Sse2, Level::Avx2, Level::Avx512];

    /// A short lowercase name: `scalar`, `sse2`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Sse2 => "sse2",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    fn from_u8(v: u8) -> Option<Level> {
        Level::ALL.into_iter().find(|l| *l as u8 == v)
    }
}

const UNSET: u8 = 0;
/// The widest level this build can run on this CPU, once known.
static DETECTED: AtomicU8 = AtomicU8::new(UNSET);
/// The level the loop runs on: `DETECTED` unless [`set_level`] chose another.
static SELECTED: AtomicU8 = AtomicU8::new(UNSET);

/// The widest level this build can run on this CPU.
pub fn detected() -> Level {
    if !cfg!(gradstep_simd) {
        return Level::Scalar;
    }
    if let Some(level) = Level::from_u8(DETECTED.load(Ordering::Relaxed)) {
        return level;
    }
    let level = detect();
    DETECTED.store(level as u8, Ordering::Relaxed);
    level
}

/// `true` if `level` can run on this CPU in this build (every level up to
/// [`detected`]).
pub fn available(level: Level) -> bool {
    level <= detected()
}

/// The level every rule's element loop runs on now.
#[inline]
pub fn level() -> Level {
    if !cfg!(gradstep_simd) {
        return Level::Scalar;
    }
    if let Some(level) = Level::from_u8(SELECTED.load(Ordering::Relaxed)) {
        return level;
    }
    let level = detected();
    // A concurrent `set_level` wins over the default.
    match SELECTED.compare_exchange(UNSET, level as u8, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => level,
        Err(chosen) => Level::from_u8(chosen).unwrap_or(level),
    }
}

/// Selects the level for every later step of every rule, process-wide; `None` goes
/// back to [`detected`]. Returns `false`, and changes nothing, if `level` is not
/// [`available`]. For tests and benchmarks that compare levels.
#[doc(hidden)]
pub fn set_level(level: Option<Level>) -> bool {
    let level = level.unwrap_or_else(detected);
    if !available(level) {
        return false;
    }
    SELECTED.store(level as u8, Ordering::Relaxed);
    true
}

/// The widest level of a SIMD build on this CPU (see the module docs for the order).
fn detect() -> Level {
    if cfg!(target_feature = "avx512f") {
        return Level::Avx512;
    }
    // Miri runs no `cpuid`; it runs the baseline.
    let found = if cfg!(miri) { Level::Sse2 } else { cpu_level() };
    if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
        found.max(Level::Avx2)
    } else {
        found
    }
}

/// What `cpuid` and `xgetbv` report: the instruction sets, and whether the OS saves
/// their registers across context switches (XCR0).
// `__cpuid_count` is an `unsafe fn` in the oldest supported Rust (1.89), safe in newer.
#[allow(unused_unsafe)]
fn cpu_level() -> Level {
    const OSXSAVE: u32 = 1 << 27;
    const AVX: u32 = 1 << 28;
    const FMA: u32 = 1 << 12;
    const AVX2: u32 = 1 << 5;
    const AVX512F: u32 = 1 << 16;
    // XCR0: SSE and AVX state; AVX-512 opmask, upper-256 and high-16 ZMM state.
    const XCR0_AVX: u64 = 0b110;
    const XCR0_AVX512: u64 = 0b1110_0110;

    // SAFETY: `cpuid` exists on every x86-64 CPU; leaf 0 is always valid.
    let max_leaf = unsafe { __cpuid_count(0, 0) }.eax;
    if max_leaf < 7 {
        return Level::Sse2;
    }
    // SAFETY: leaf 1 exists (max_leaf ≥ 7).
    let leaf1 = unsafe { __cpuid_count(1, 0) };
    if leaf1.ecx & OSXSAVE == 0 || leaf1.ecx & AVX == 0 {
        return Level::Sse2;
    }
    // SAFETY: CPUID reports OSXSAVE: the OS enabled XSAVE, so XGETBV is available.
    let xcr0 = unsafe { xcr0() };
    if xcr0 & XCR0_AVX != XCR0_AVX {
        return Level::Sse2;
    }
    // SAFETY: leaf 7 exists (max_leaf ≥ 7).
    let leaf7 = unsafe { __cpuid_count(7, 0) };
    if leaf7.ebx & AVX512F != 0 && xcr0 & XCR0_AVX512 == XCR0_AVX512 {
        Level::Avx512
    } else if leaf7.ebx & AVX2 != 0 && leaf1.ecx & FMA != 0 {
        Level::Avx2
    } else {
        Level::Sse2
    }
}

/// The XCR0 register.
///
/// # Safety
/// The CPU must support XSAVE and the OS have enabled it (CPUID.1:ECX.OSXSAVE).
#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    // SAFETY: the caller guarantees XGETBV is enabled; register 0 always exists.
    unsafe { _xgetbv(0) }
}
