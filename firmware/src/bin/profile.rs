//! The profiling image: every registered rule, with torch's defaults, stepped at N = 0
//! (the per-step cost alone: validation and the per-step scalars) between two calls of
//! `profile_marker`, for `firmware/profile.sh`, which runs it under QEMU with an
//! instruction trace and counts each function's instructions per step.
//!
//! Each rule first takes `WARMUP` steps on `N` params, so that the timed steps are past
//! the first (which fills the powers cache and initializes the state), then `STEPS`
//! steps on empty slices. The image prints `STEPS` first, then each rule's name before
//! its window, in window order.

#![no_std]
#![no_main]

use core::fmt::Write;

use cortex_m_rt::entry;
use gradstep::MAX_STATE_SLOTS;
use gradstep::rules::RuleId;
use gradstep_firmware::board::{self, Console};
use panic_semihosting as _;

/// Params of the warm-up steps.
const N: usize = 16;
/// Warm-up steps per rule.
const WARMUP: usize = 3;
/// Steps in each rule's window (printed first: `profile.sh` divides by it).
const STEPS: usize = 4;

/// Marks a window's start (`0`) and end (`1`): `profile.sh` finds its address by name.
#[inline(never)]
#[unsafe(no_mangle)]
fn profile_marker(edge: u32) -> u32 {
    core::hint::black_box(edge)
}

#[entry]
fn main() -> ! {
    let mut out = Console::new();
    let mut params = [0.5f32; N];
    let grads = [0.125f32; N];
    let mut state = [0.0f32; MAX_STATE_SLOTS * N];
    let mut ok = true;
    let _ = writeln!(out, "{STEPS}");
    for &id in RuleId::ALL {
        let rule = core::hint::black_box(id.default_rule());
        let mut scalars = rule.fresh_scalars();
        let state = &mut state[..rule.state_slots() * N];
        for _ in 0..WARMUP {
            ok &= rule
                .step_flat(&mut scalars, &mut params, &grads, state)
                .is_ok();
        }
        let _ = writeln!(out, "{id}");
        profile_marker(0);
        for _ in 0..STEPS {
            ok &= rule
                .step_flat::<f32>(&mut scalars, &mut [], &[], &mut [])
                .is_ok();
        }
        profile_marker(1);
    }
    board::exit(ok)
}
