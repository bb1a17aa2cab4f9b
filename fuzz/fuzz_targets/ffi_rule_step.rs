//! The C ABI's generic step (`gradstep_rule_step_f32`/`_f64`, and with scratch memory
//! `gradstep_rule_step_scratch_f32`/`_f64`) with a `gradstep_rule` made of arbitrary
//! bytes (any kind number, any field bits, any flag bytes), arbitrary scalar state
//! (step, μ-product, η, μ, cache words), state and scratch buffers of the wrong length
//! and buffers that overlap: never a crash; every refusal leaves params, state, scratch
//! and scalar state exactly as they were; an accepted step advances the step counter by
//! one, and an accepted step with scratch gives the bits of the step without (every NaN
//! counted as one value).
#![no_main]

use core::mem::size_of;

use gradstep_ffi::rules::{
    GRADSTEP_RULE_KIND_END, gradstep_rule, gradstep_rule_default, gradstep_rule_step_f32,
    gradstep_rule_step_f64, gradstep_rule_step_scratch_f32, gradstep_rule_step_scratch_f64,
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

/// Whether `[a, a + a_len)` and `[b, b + b_len)` share an element.
fn overlaps(a: usize, a_len: usize, b: usize, b_len: usize) -> bool {
    a_len > 0 && b_len > 0 && a < b + b_len && b < a + a_len
}

macro_rules! step_with {
    ($t:ty, $step:path, $scratch_step:path, $b:ident, $rule:ident) => {{
        let b = &mut $b;
        let n = usize::from(b.u8() % 80);
        // One allocation holds params, grads, state and scratch, so that they can overlap.
        let state_len = usize::from(b.u8() % 250);
        let with_scratch = b.u8() % 3 == 0;
        let total = 3 * n + state_len + 8;
        let mut mem: Vec<$t> = (0..total).map(|_| <$t>::from_bits(b.u64() as _)).collect();
        let overlap = b.u8() % 8 == 0;
        let (p_at, g_at) = (0usize, n);
        let s_at = if overlap {
            usize::from(b.u8()) % (2 * n + 1)
        } else {
            2 * n
        };
        let s_len = state_len.min(total - s_at);
        // The scratch after the state, sometimes elsewhere and of another length.
        let u_at = if b.u8() % 8 == 0 {
            usize::from(b.u8()) % (total - 7)
        } else {
            2 * n + state_len
        };
        let u_len = if b.u8() % 8 == 0 {
            usize::from(b.u8() % 90)
        } else {
            n
        };
        let u_len = u_len.min(total - u_at);
        let mut scalars: gradstep_scalars = unsafe { pod(b) };
        let before_mem: Vec<u64> = mem.iter().map(|x| x.to_bits() as u64).collect();
        let before_scalars = scalars;
        // The step without scratch over `mem`'s layout at `base`.
        //
        // SAFETY (of its calls): `base` is a `mem`-sized allocation, every pointer is
        // inside it and valid for its length; the library refuses overlapping buffers
        // itself (that is what is being fuzzed).
        let plain = |scalars: &mut gradstep_scalars, base: *mut $t| unsafe {
            let (p, g, s) = (base.add(p_at), base.add(g_at).cast_const(), base.add(s_at));
            $step(&$rule, scalars, p, g, n, s, s_len)
        };
        let base = mem.as_mut_ptr();
        let status = if with_scratch {
            // SAFETY: as for `plain`.
            unsafe {
                let (p, g, s) = (base.add(p_at), base.add(g_at).cast_const(), base.add(s_at));
                $scratch_step(
                    &$rule,
                    &mut scalars,
                    p,
                    g,
                    n,
                    s,
                    s_len,
                    base.add(u_at),
                    u_len,
                )
            }
        } else {
            plain(&mut scalars, base)
        };
        if status == gradstep_ffi::gradstep_status::GRADSTEP_OK {
            assert!(
                !overlap || s_len == 0 || s_at >= 2 * n || n == 0,
                "overlap accepted"
            );
            assert_eq!(scalars.step, before_scalars.step + 1);
            if with_scratch {
                let spans = [(p_at, n), (g_at, n), (s_at, s_len)];
                assert!(
                    u_len == n && spans.iter().all(|&(a, l)| !overlaps(a, l, u_at, u_len)),
                    "a bad scratch accepted"
                );
                // The step without scratch, from the same bytes, gives the same bits.
                let mut again: Vec<$t> = before_mem
                    .iter()
                    .map(|&x| <$t>::from_bits(x as _))
                    .collect();
                let mut sc = before_scalars;
                let status = plain(&mut sc, again.as_mut_ptr());
                assert_eq!(status, gradstep_ffi::gradstep_status::GRADSTEP_OK);
                // Every NaN as one value: which NaN an operation on two NaNs gives
                // (payload, sign) is unspecified, and LLVM may order the operands of
                // another instantiation of the same kernel otherwise.
                let bits = |v: &[$t]| {
                    v.iter()
                        .map(|x| {
                            if x.is_nan() {
                                u64::MAX
                            } else {
                                x.to_bits() as u64
                            }
                        })
                        .collect::<Vec<_>>()
                };
                let (p, s) = (p_at..p_at + n, s_at..s_at + s_len);
                assert!(
                    bits(&mem[p.clone()]) == bits(&again[p])
                        && bits(&mem[s.clone()]) == bits(&again[s])
                        && sc.step == scalars.step,
                    "the step with scratch differs from the step without"
                );
            }
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
        let kind = rule.kind % GRADSTEP_RULE_KIND_END;
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
        step_with!(
            f32,
            gradstep_rule_step_f32,
            gradstep_rule_step_scratch_f32,
            b,
            rule
        );
    } else {
        step_with!(
            f64,
            gradstep_rule_step_f64,
            gradstep_rule_step_scratch_f64,
            b,
            rule
        );
    }
});
