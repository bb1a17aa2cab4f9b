//! The C ABI's generic step (`gradstep_rule_step_f32`/`_f64`) with a `gradstep_rule`
//! made of arbitrary bytes (any kind number, any field bits, any flag bytes), arbitrary
//! scalar state (step, μ-product, η, μ, cache words), state buffers of the wrong length
//! and buffers that overlap: never a crash; every refusal leaves params, state and
//! scalar state exactly as they were; an accepted step advances the step counter by one.
#![no_main]

use core::mem::size_of;

use gradstep_ffi::rules::{
    gradstep_rule, gradstep_rule_default, gradstep_rule_step_f32, gradstep_rule_step_f64,
    gradstep_scalars,
};
use gradstep_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

/// A plain-old-data value of `T` from raw bytes.
///
/// # Safety
/// Every bit pattern of `size_of::<T>()` bytes must be a valid `T` (numbers, and unions
/// and structs of numbers).
unsafe fn pod<T>(b: &mut Bytes<'_>) -> T {
    let mut raw = vec![0u8; size_of::<T>()];
    b.fill(&mut raw);
    // SAFETY: `raw` holds size_of::<T>() initialized bytes; the caller vouches that any
    // bits are a valid T; read_unaligned needs no alignment.
    unsafe { raw.as_ptr().cast::<T>().read_unaligned() }
}

macro_rules! step_with {
    ($t:ty, $step:path, $b:ident, $rule:ident) => {{
        let b = &mut $b;
        let n = usize::from(b.u8() % 80);
        // One allocation holds params, grads and state, so that they can overlap.
        let state_len = usize::from(b.u8() % 250);
        let total = 2 * n + state_len + 8;
        let mut mem: Vec<$t> = (0..total).map(|_| <$t>::from_bits(b.u64() as _)).collect();
        let overlap = b.u8() % 8 == 0;
        let (p_at, g_at) = (0usize, n);
        let s_at = if overlap {
            usize::from(b.u8()) % (2 * n + 1)
        } else {
            2 * n
        };
        let s_len = state_len.min(total - s_at);
        let mut scalars: gradstep_scalars = unsafe { pod(b) };
        let before_mem: Vec<u64> = mem.iter().map(|x| x.to_bits() as u64).collect();
        let before_scalars = scalars;
        let base = mem.as_mut_ptr();
        // SAFETY: every pointer is inside `mem` and valid for its length; the library
        // refuses overlapping buffers itself (that is what is being fuzzed).
        let status = unsafe {
            $step(
                &$rule,
                &mut scalars,
                base.add(p_at),
                base.add(g_at).cast_const(),
                n,
                base.add(s_at),
                s_len,
            )
        };
        if status == gradstep_ffi::gradstep_status::GRADSTEP_OK {
            assert!(
                !overlap || s_len == 0 || s_at >= 2 * n || n == 0,
                "overlap accepted"
            );
            assert_eq!(scalars.step, before_scalars.step + 1);
        } else {
            let after: Vec<u64> = mem.iter().map(|x| x.to_bits() as u64).collect();
            assert!(
                after == before_mem,
                "a refused step wrote a buffer ({status:?})"
            );
            assert!(
                scalars.step == before_scalars.step
                    && scalars.mu_product.to_bits() == before_scalars.mu_product.to_bits()
                    && scalars.eta.to_bits() == before_scalars.eta.to_bits()
                    && scalars.mu.to_bits() == before_scalars.mu.to_bits()
                    && scalars.cache == before_scalars.cache,
                "a refused step changed the scalar state ({status:?})"
            );
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    // Mostly a real kind with its default fields overwritten in part, sometimes any bits.
    let mut rule: gradstep_rule = unsafe { pod(&mut b) };
    if b.u8() < 200 {
        let kind = (rule.kind % 12) as u32;
        let mut fresh = core::mem::MaybeUninit::<gradstep_rule>::zeroed();
        // SAFETY: a valid out pointer.
        unsafe { gradstep_rule_default(kind, fresh.as_mut_ptr()) };
        // SAFETY: zeroed is a valid gradstep_rule (numbers only).
        let fresh = unsafe { fresh.assume_init() };
        if fresh.kind == kind {
            let keep = b.u8();
            if keep & 1 == 1 {
                rule = fresh;
            } else {
                rule.kind = fresh.kind;
            }
        }
    }
    if b.u8() & 1 == 0 {
        step_with!(f32, gradstep_rule_step_f32, b, rule);
    } else {
        step_with!(f64, gradstep_rule_step_f64, b, rule);
    }
});
