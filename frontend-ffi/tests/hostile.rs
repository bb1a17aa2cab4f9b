//! Hostile calls through the C ABI (issue 12): lengths no object can have, counts beyond
//! the caller's array, overlapping buffers, huge allocations. Each is answered with a
//! status, before any slice of the caller's memory exists, and writes nothing.
//!
//! These tests were written first against the per-rule ABI they replace (commit
//! 4c4dd8b), where they failed as noted on each; Miri (`cargo +nightly miri test -p
//! gradstep-ffi --test hostile`) also runs them.

use core::ptr;

use gradstep::checkpoint::{gradstep_checkpoint_len, gradstep_checkpoint_load_f32};
use gradstep::checkpoint::{gradstep_checkpoint_save_f32, gradstep_checkpoint_save_f64};
use gradstep::optimizer::{
    gradstep_optimizer, gradstep_optimizer_add_params_f32, gradstep_optimizer_free,
    gradstep_optimizer_new,
};
use gradstep::rules::{
    GRADSTEP_F32, GRADSTEP_F64, GRADSTEP_RULE_ADAM, GRADSTEP_RULE_LAMB, GRADSTEP_RULE_SGD,
    gradstep_rule, gradstep_rule_default, gradstep_rule_state_len, gradstep_rule_step_f32,
    gradstep_rule_step_scratch_f32, gradstep_rule_step_scratch_f64, gradstep_scalars,
};
use gradstep::schedules::{
    GRADSTEP_SCHEDULE_CONSTANT, GRADSTEP_SCHEDULE_EXPONENTIAL, gradstep_schedule,
    gradstep_schedule_default, gradstep_schedule_free, gradstep_schedule_new_chained,
    gradstep_schedule_new_sequential,
};
use gradstep::status::*;
use gradstep::training::{gradstep_clip_grad_norm_f32, gradstep_total_norm_f32};

fn rule(kind: u32) -> gradstep_rule {
    let mut r = core::mem::MaybeUninit::<gradstep_rule>::zeroed();
    // SAFETY: a valid pointer to write to.
    assert_eq!(
        unsafe { gradstep_rule_default(kind, r.as_mut_ptr()) },
        GRADSTEP_OK
    );
    // SAFETY: written by gradstep_rule_default.
    unsafe { r.assume_init() }
}

/// Finding 1: `n = SIZE_MAX/4` floats is more than any object; the per-rule step built
/// the slices first (Miri: "slice is bigger than largest supported object") and then
/// returned OVERLAPPING_BUFFERS by accident (the saturated spans overlapped).
#[test]
fn step_with_a_length_beyond_isize_max_bytes_is_refused_as_too_large() {
    let sgd = rule(GRADSTEP_RULE_SGD);
    let mut sc = gradstep_scalars::default();
    let (mut p, g, mut s) = ([1.0f32; 4], [1.0f32; 4], [0.0f32; 4]);
    for n in [usize::MAX / 4, isize::MAX as usize / 4 + 1] {
        // SAFETY: the pointers are valid for 4 elements; the length is refused first.
        let status = unsafe {
            gradstep_rule_step_f32(
                &sgd,
                &mut sc,
                p.as_mut_ptr(),
                g.as_ptr(),
                n,
                s.as_mut_ptr(),
                4,
            )
        };
        assert_eq!(status, GRADSTEP_LENGTH_TOO_LARGE, "n = {n}");
    }
    // The state length is bounded too.
    // SAFETY: as above.
    let status = unsafe {
        gradstep_rule_step_f32(
            &sgd,
            &mut sc,
            p.as_mut_ptr(),
            g.as_ptr(),
            4,
            s.as_mut_ptr(),
            usize::MAX,
        )
    };
    assert_eq!(status, GRADSTEP_LENGTH_TOO_LARGE);
    assert_eq!((p, sc.step), ([1.0; 4], 0), "a refused step wrote");
}

/// Finding 1: `params` and `grads` are the same bytes. The per-rule step made a `&mut`
/// and a `&` over them before comparing (undefined behaviour: Miri, Stacked Borrows);
/// now the spans are compared first. The scalars inside a buffer count too.
#[test]
fn overlapping_step_buffers_are_refused_before_any_slice() {
    let adam = rule(GRADSTEP_RULE_ADAM);
    let mut sc = gradstep_scalars::default();
    let mut p = [1.0f32; 8];
    let mut s = [0.0f32; 16];
    let pp = p.as_mut_ptr();
    // SAFETY: valid for 8 elements; refused before any slice.
    let status = unsafe { gradstep_rule_step_f32(&adam, &mut sc, pp, pp, 8, s.as_mut_ptr(), 16) };
    assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS);
    // SAFETY: state starting inside params.
    let status = unsafe {
        gradstep_rule_step_f32(&adam, &mut sc, pp, [1.0f32; 4].as_ptr(), 4, pp.add(2), 8)
    };
    assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS);
    // The scalars inside the state buffer.
    let mut two = [gradstep_scalars::default(); 2];
    let sp = two.as_mut_ptr();
    // SAFETY: `two` holds 2 × 144 bytes; 8 floats of state at its start.
    let status = unsafe {
        gradstep_rule_step_f32(
            &adam,
            sp,
            p.as_mut_ptr(),
            [0.5f32; 4].as_ptr(),
            4,
            sp.cast(),
            8,
        )
    };
    assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS);
    assert_eq!((p, sc.step), ([1.0; 8], 0), "a refused step wrote");
}

/// The step with scratch memory: LAMB's bits are the step's without (f32 and f64,
/// over a vector body and a tail), an elementwise rule's too with the scratch left as
/// it was; a NULL, misaligned, overlapping or wrongly sized scratch is refused with
/// nothing written.
#[test]
fn step_with_scratch_gives_the_same_bits_and_refuses_a_bad_scratch() {
    fn same<T: Copy + PartialEq + core::fmt::Debug + From<f32>>(
        kind: u32,
        n: usize,
        plain: unsafe extern "C" fn(
            *const gradstep_rule,
            *mut gradstep_scalars,
            *mut T,
            *const T,
            usize,
            *mut T,
            usize,
        ) -> gradstep_status,
        kept: unsafe extern "C" fn(
            *const gradstep_rule,
            *mut gradstep_scalars,
            *mut T,
            *const T,
            usize,
            *mut T,
            usize,
            *mut T,
            usize,
        ) -> gradstep_status,
    ) {
        let r = rule(kind);
        let value = |i: usize, k: usize| T::from(((i * k + 3) % 17) as f32 / 4.0 - 2.0);
        let (mut a, mut b): (Vec<T>, Vec<T>) = (
            (0..n).map(|i| value(i, 5)).collect(),
            (0..n).map(|i| value(i, 5)).collect(),
        );
        let mut len = 0;
        // SAFETY: valid pointers.
        assert_eq!(
            unsafe { gradstep_rule_state_len(&r, n, &mut len) },
            GRADSTEP_OK
        );
        let (mut sa, mut sb) = (vec![T::from(0.0); len], vec![T::from(0.0); len]);
        let (mut ca, mut cb) = (gradstep_scalars::default(), gradstep_scalars::default());
        let mut scratch = vec![T::from(9.0); n];
        for t in 0..3 {
            let g: Vec<T> = (0..n).map(|i| value(i, 7 + t)).collect();
            // SAFETY: every buffer valid for its length, none overlapping.
            unsafe {
                let s = plain(
                    &r,
                    &mut ca,
                    a.as_mut_ptr(),
                    g.as_ptr(),
                    n,
                    sa.as_mut_ptr(),
                    len,
                );
                assert_eq!(s, GRADSTEP_OK);
                let s = kept(
                    &r,
                    &mut cb,
                    b.as_mut_ptr(),
                    g.as_ptr(),
                    n,
                    sb.as_mut_ptr(),
                    len,
                    scratch.as_mut_ptr(),
                    n,
                );
                assert_eq!(s, GRADSTEP_OK);
            }
            assert_eq!((&a, &sa, ca.step), (&b, &sb, cb.step), "kind {kind}, n {n}");
        }
        if kind != GRADSTEP_RULE_LAMB {
            assert!(
                scratch.iter().all(|&x| x == T::from(9.0)),
                "scratch written"
            );
        }
    }
    // Under Miri a vector body and a tail; natively past a 256-element norm block too.
    let sizes: &[usize] = if cfg!(miri) { &[1, 37] } else { &[1, 37, 300] };
    for &n in sizes {
        same::<f32>(
            GRADSTEP_RULE_LAMB,
            n,
            gradstep_rule_step_f32,
            gradstep_rule_step_scratch_f32,
        );
        same::<f64>(
            GRADSTEP_RULE_LAMB,
            n,
            gradstep::rules::gradstep_rule_step_f64,
            gradstep_rule_step_scratch_f64,
        );
        same::<f32>(
            GRADSTEP_RULE_ADAM,
            n,
            gradstep_rule_step_f32,
            gradstep_rule_step_scratch_f32,
        );
    }

    let lamb = rule(GRADSTEP_RULE_LAMB);
    let mut sc = gradstep_scalars::default();
    let (mut p, g, mut s, mut u) = ([1.0f32; 8], [0.5f32; 8], [0.0f32; 16], [3.0f32; 9]);
    let (pp, gp, sp, up) = (p.as_mut_ptr(), g.as_ptr(), s.as_mut_ptr(), u.as_mut_ptr());
    let cases: [(*mut f32, usize, gradstep_status); 8] = [
        (ptr::null_mut(), 8, GRADSTEP_NULL_POINTER),
        (
            up.cast::<u8>().wrapping_add(1).cast(),
            8,
            GRADSTEP_MISALIGNED_POINTER,
        ),
        (up, 7, GRADSTEP_LENGTH_MISMATCH),
        (up, 9, GRADSTEP_LENGTH_MISMATCH),
        (up, usize::MAX, GRADSTEP_LENGTH_TOO_LARGE),
        (pp.wrapping_add(4), 8, GRADSTEP_OVERLAPPING_BUFFERS),
        (sp.wrapping_add(12), 8, GRADSTEP_OVERLAPPING_BUFFERS),
        (gp.cast_mut(), 8, GRADSTEP_OVERLAPPING_BUFFERS),
    ];
    for (scratch, len, want) in cases {
        // SAFETY: each case is refused before any access: a NULL or misaligned pointer,
        // a length refused, or a span that overlaps `p`, `s` or `g` (which the call
        // compares as addresses only).
        let status = unsafe {
            gradstep_rule_step_scratch_f32(&lamb, &mut sc, pp, gp, 8, sp, 16, scratch, len)
        };
        assert_eq!(status, want, "scratch {scratch:?}, {len}");
    }
    // The scalars inside the scratch.
    let mut two = [gradstep_scalars::default(); 2];
    let scalars = two.as_mut_ptr();
    // SAFETY: `two` holds 2 × 144 bytes, room for 8 floats of scratch at its start.
    let status = unsafe {
        gradstep_rule_step_scratch_f32(&lamb, scalars, pp, gp, 8, sp, 16, scalars.cast(), 8)
    };
    assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS);
    assert_eq!(
        (p, s, u, sc.step),
        ([1.0; 8], [0.0; 16], [3.0; 9], 0),
        "a refused step wrote"
    );
}

/// Finding 1: a count of 5 with an array of 2 configs. The count (2 to 4) is checked
/// before the array is read: here the elements past the 2 that a caller with count 2
/// would own are poisoned, and the per-rule ABI read and refused them
/// (GRADSTEP_UNKNOWN_KIND) before it looked at the count.
#[test]
fn composite_schedules_check_the_count_before_reading_the_members() {
    let mut members = [gradstep_schedule_default(0); 5];
    members[0] = gradstep_schedule_default(GRADSTEP_SCHEDULE_CONSTANT);
    members[1] = gradstep_schedule_default(GRADSTEP_SCHEDULE_EXPONENTIAL);
    members[0].params.constant.factor = 0.5;
    members[0].params.constant.total_iters = 2;
    members[1].params.exponential.gamma = 0.9;
    for m in &mut members[2..] {
        m.kind = 0xdead;
    }
    let mut s: *mut gradstep_schedule = ptr::null_mut();
    let milestones = [3u64; 4];
    for count in [0, 1, 5, usize::MAX] {
        // SAFETY: valid for 5 members; counts outside 2..=4 are refused first.
        let chained =
            unsafe { gradstep_schedule_new_chained(members.as_ptr(), count, 0.1, &mut s) };
        assert_eq!(chained, GRADSTEP_INVALID_HYPERPARAMETER, "count {count}");
        // SAFETY: as above.
        let sequential = unsafe {
            gradstep_schedule_new_sequential(
                members.as_ptr(),
                count,
                milestones.as_ptr(),
                0.1,
                &mut s,
            )
        };
        assert_eq!(sequential, GRADSTEP_INVALID_HYPERPARAMETER, "count {count}");
    }
    assert!(s.is_null());
    // The two good members with their count.
    // SAFETY: valid for 2 members.
    let status = unsafe { gradstep_schedule_new_chained(members.as_ptr(), 2, 0.1, &mut s) };
    assert_eq!(status, GRADSTEP_OK);
    // SAFETY: a live handle.
    assert_eq!(unsafe { gradstep_schedule_free(s) }, GRADSTEP_OK);
}

/// A stepped SGD with momentum (one state slot) over `N` params: its rule, scalars,
/// state, params. (SGD needs no `sqrt`/`pow`, whose libm `asm!` Miri cannot run.)
const N: usize = 6;
const SLOTS: usize = 1;
fn stepped() -> (gradstep_rule, gradstep_scalars, Vec<f32>, Vec<f32>) {
    let mut sgd = rule(GRADSTEP_RULE_SGD);
    sgd.params.sgd.momentum = 0.9;
    let mut sc = gradstep_scalars::default();
    let mut p: Vec<f32> = (0..N).map(|i| i as f32 * 0.5 - 1.0).collect();
    let mut s = vec![0.0f32; SLOTS * N];
    for t in 0..3 {
        let g: Vec<f32> = (0..N).map(|i| ((i + t) % 3) as f32 - 1.0).collect();
        // SAFETY: valid, disjoint buffers.
        let status = unsafe {
            gradstep_rule_step_f32(
                &sgd,
                &mut sc,
                p.as_mut_ptr(),
                g.as_ptr(),
                N,
                s.as_mut_ptr(),
                SLOTS * N,
            )
        };
        assert_eq!(status, GRADSTEP_OK);
    }
    (sgd, sc, s, p)
}

fn checkpoint_len(rule: &gradstep_rule) -> usize {
    let mut len = 0;
    // SAFETY: valid pointers.
    let status = unsafe { gradstep_checkpoint_len(rule, GRADSTEP_F32, N, 1, &mut len) };
    assert_eq!(status, GRADSTEP_OK);
    len
}

/// Finding 5: saving into an `out` that overlaps the state returned OK and wrote a
/// checkpoint that restores different state (the encoder overwrote the state it was
/// still reading).
#[test]
fn checkpoint_save_into_the_state_or_params_is_refused() {
    let (r, sc, s, mut p) = stepped();
    let len = checkpoint_len(&r);
    let (s0, p0) = (s.clone(), p.clone());
    // A buffer whose start is the state: big enough for the checkpoint.
    let mut big = vec![0.0f32; len.div_ceil(4) + SLOTS * N];
    big[..SLOTS * N].copy_from_slice(&s);
    let bp = big.as_mut_ptr();
    let mut written = 0;
    // SAFETY: `big` holds the state at its start and room for the checkpoint.
    let status = unsafe {
        gradstep_checkpoint_save_f32(
            &r,
            &sc,
            bp,
            SLOTS * N,
            p.as_ptr(),
            N,
            bp.cast(),
            len,
            &mut written,
        )
    };
    assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS);
    // Into the params, and `written` inside `out` (u64s, so that it is aligned).
    let mut out = vec![0u64; len.div_ceil(8)];
    // SAFETY: valid pointers for their lengths.
    let status = unsafe {
        gradstep_checkpoint_save_f32(
            &r,
            &sc,
            s.as_ptr(),
            SLOTS * N,
            p.as_ptr(),
            N,
            p.as_mut_ptr().cast(),
            N * 4,
            &mut written,
        )
    };
    assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS);
    // SAFETY: `written` is the first 8 bytes of `out`.
    let status = unsafe {
        gradstep_checkpoint_save_f32(
            &r,
            &sc,
            s.as_ptr(),
            SLOTS * N,
            p.as_ptr(),
            N,
            out.as_mut_ptr().cast(),
            len,
            out.as_mut_ptr().cast(),
        )
    };
    assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS);
    assert_eq!((&s, &p, written), (&s0, &p0, 0), "a refused save wrote");
    assert!(out.iter().all(|&b| b == 0));
    // A save with a length no object can have.
    let s64 = [0.0f64; 2];
    // SAFETY: refused before any slice.
    let status = unsafe {
        gradstep_checkpoint_save_f64(
            &r,
            &sc,
            s64.as_ptr(),
            usize::MAX / 8,
            ptr::null(),
            N,
            out.as_mut_ptr().cast(),
            len,
            &mut written,
        )
    };
    assert_eq!(status, GRADSTEP_LENGTH_TOO_LARGE);
}

/// Finding 5: a load whose state and params overlap built two `&mut` over the same
/// memory and returned OK; now it is refused with nothing written. Loading over the
/// checkpoint's own bytes is refused too.
#[test]
fn checkpoint_load_never_builds_two_mut_over_the_same_memory() {
    let (r, sc, s, p) = stepped();
    let len = checkpoint_len(&r);
    // u64s, so that the bytes are aligned for the f32 state put over them below.
    let mut words = vec![0u64; len.div_ceil(8)];
    let bytes: *mut u8 = words.as_mut_ptr().cast();
    let mut written = 0;
    // SAFETY: valid, disjoint buffers.
    let status = unsafe {
        gradstep_checkpoint_save_f32(
            &r,
            &sc,
            s.as_ptr(),
            SLOTS * N,
            p.as_ptr(),
            N,
            bytes,
            len,
            &mut written,
        )
    };
    assert_eq!(status, GRADSTEP_OK);
    let mut rule_out = rule(GRADSTEP_RULE_ADAM);
    let mut sc_out = gradstep_scalars::default();
    let mut buf = vec![7.0f32; (SLOTS + 1) * N];
    let bp = buf.as_mut_ptr();
    // State in buf[..3N], params in buf[3N-1..4N-1]: one element shared.
    // SAFETY: `buf` holds 4N elements.
    let status = unsafe {
        gradstep_checkpoint_load_f32(
            bytes.cast_const(),
            len,
            0,
            &mut rule_out,
            &mut sc_out,
            bp,
            SLOTS * N,
            bp.add(SLOTS * N - 1),
            N,
        )
    };
    assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS);
    // The state over the checkpoint's own bytes.
    // SAFETY: `bytes` holds `len` ≥ SLOTS·N·4 bytes, aligned for f32; the params are
    // separate.
    let status = unsafe {
        gradstep_checkpoint_load_f32(
            bytes.cast_const(),
            len,
            0,
            &mut rule_out,
            &mut sc_out,
            bytes.cast(),
            SLOTS * N,
            bp,
            N,
        )
    };
    assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS);
    assert!(buf.iter().all(|&x| x == 7.0), "a refused load wrote");
    assert_eq!((rule_out.kind, sc_out.step), (GRADSTEP_RULE_ADAM, 0));
    // Disjoint buffers restore what was saved.
    let (mut s2, mut p2) = (vec![0.0f32; SLOTS * N], vec![0.0f32; N]);
    // SAFETY: valid, disjoint buffers.
    let status = unsafe {
        gradstep_checkpoint_load_f32(
            bytes.cast_const(),
            len,
            GRADSTEP_RULE_SGD,
            &mut rule_out,
            &mut sc_out,
            s2.as_mut_ptr(),
            SLOTS * N,
            p2.as_mut_ptr(),
            N,
        )
    };
    assert_eq!(status, GRADSTEP_OK);
    assert_eq!((s2, p2, sc_out.step), (s, p, sc.step));
}

/// Finding 2: sizes the allocator cannot give are a status, not an abort of the host
/// (the per-rule ABI aborted: "memory allocation of 8796093022208 bytes failed"). Not
/// under Miri, which stops at an allocation this large instead of failing it.
#[test]
#[cfg_attr(miri, ignore)]
fn allocations_that_cannot_succeed_are_out_of_memory() {
    let adam = rule(GRADSTEP_RULE_ADAM);
    let mut opt: *mut gradstep_optimizer = ptr::null_mut();
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { gradstep_optimizer_new(&adam, GRADSTEP_F32, &mut opt) },
        GRADSTEP_OK
    );
    let (mut p, g) = ([0.0f32; 4], [0.0f32; 4]);
    // 2^40 params: 8 TiB of Adam state. The optimizer keeps the pointers for later
    // steps only; the state allocation is refused first.
    // SAFETY: a live handle; the buffers would have to be valid for n for a later step.
    let status =
        unsafe { gradstep_optimizer_add_params_f32(opt, 0, p.as_mut_ptr(), g.as_ptr(), 1 << 40) };
    assert_eq!(status, GRADSTEP_OUT_OF_MEMORY);
    // More elements than an object can hold: refused before anything.
    // SAFETY: as above.
    let status = unsafe {
        gradstep_optimizer_add_params_f32(opt, 0, p.as_mut_ptr(), g.as_ptr(), usize::MAX / 2)
    };
    assert_eq!(status, GRADSTEP_LENGTH_TOO_LARGE);
    // SAFETY: a live handle.
    assert_eq!(unsafe { gradstep_optimizer_free(opt) }, GRADSTEP_OK);

    // The per-tensor table of a clip over 2^40 tensors cannot be allocated: refused
    // before the (here much shorter) arrays are read past their end.
    let mut w = [3.0f32, 4.0];
    let ptrs = [w.as_mut_ptr()];
    let lens = [2usize];
    let mut total = 0.0;
    // SAFETY: the count is refused before the arrays are read beyond element 0.
    let status = unsafe {
        gradstep_clip_grad_norm_f32(
            ptrs.as_ptr(),
            lens.as_ptr(),
            1 << 40,
            1.0,
            2.0,
            0,
            &mut total,
        )
    };
    assert_eq!(status, GRADSTEP_OUT_OF_MEMORY);
    let cptrs = [w.as_ptr()];
    // SAFETY: as above; more pointers than an object can hold.
    let status = unsafe {
        gradstep_total_norm_f32(
            cptrs.as_ptr(),
            lens.as_ptr(),
            usize::MAX / 4,
            2.0,
            &mut total,
        )
    };
    assert_eq!(status, GRADSTEP_LENGTH_TOO_LARGE);
    assert_eq!(w, [3.0, 4.0]);
}

/// Lengths given with no buffer to go with them: a state length that overflows.
#[test]
fn state_lengths_that_overflow_are_too_large() {
    let adam = rule(GRADSTEP_RULE_ADAM);
    let mut len = 0;
    // SAFETY: valid pointers.
    let status = unsafe { gradstep_rule_state_len(&adam, usize::MAX / 2 + 1, &mut len) };
    assert_eq!(status, GRADSTEP_LENGTH_TOO_LARGE);
    // SAFETY: valid pointers.
    let status =
        unsafe { gradstep_checkpoint_len(&adam, GRADSTEP_F64, usize::MAX / 2, 1, &mut len) };
    // (Was GRADSTEP_BUFFER_TOO_SMALL, with no buffer given; session 22.)
    assert_eq!(status, GRADSTEP_LENGTH_TOO_LARGE);
    assert_eq!(len, 0);
    // A length that fits a `size_t` but no object (more than PTRDIFF_MAX bytes) is too
    // large as well (was OK, with a length every save then refused); one byte less
    // room is not.
    let fixed = {
        let mut one = 0;
        // SAFETY: valid pointers.
        let s = unsafe { gradstep_checkpoint_len(&adam, GRADSTEP_F32, 0, 0, &mut one) };
        assert_eq!(s, GRADSTEP_OK);
        one
    };
    // Adam's two f32 slots: 8 bytes per element.
    let largest = (isize::MAX as usize - fixed) / 8;
    for (n, want) in [
        (1usize << 60, GRADSTEP_LENGTH_TOO_LARGE),
        (largest + 1, GRADSTEP_LENGTH_TOO_LARGE),
        (largest, GRADSTEP_OK),
    ] {
        let mut len = 0;
        // SAFETY: valid pointers.
        let status = unsafe { gradstep_checkpoint_len(&adam, GRADSTEP_F32, n, 0, &mut len) };
        assert_eq!(status, want, "n = {n}");
        if want == GRADSTEP_OK {
            assert_eq!(len, fixed + 8 * largest);
        } else {
            assert_eq!(len, 0, "a refusal wrote");
        }
    }
}

/// The handle's checkpoint is written from its registered params and restored into
/// them: an output buffer over the params, or a checkpoint read from them, is refused.
#[test]
fn handle_checkpoints_do_not_overlap_the_registered_params() {
    use gradstep::optimizer::{
        gradstep_optimizer_checkpoint_len, gradstep_optimizer_checkpoint_load,
        gradstep_optimizer_checkpoint_save, gradstep_optimizer_step,
    };
    let sgd = rule(GRADSTEP_RULE_SGD);
    let mut opt: *mut gradstep_optimizer = ptr::null_mut();
    // A params buffer big enough to hold the whole checkpoint too.
    let mut w = vec![0.5f32; 1024];
    let g = vec![0.25f32; 64];
    let mut len = 0;
    let mut written = 0;
    // SAFETY: valid pointers; `w` and `g` outlive the handle.
    unsafe {
        assert_eq!(
            gradstep_optimizer_new(&sgd, GRADSTEP_F32, &mut opt),
            GRADSTEP_OK
        );
        assert_eq!(
            gradstep_optimizer_add_params_f32(opt, 0, w.as_mut_ptr(), g.as_ptr(), 64),
            GRADSTEP_OK
        );
        assert_eq!(gradstep_optimizer_step(opt), GRADSTEP_OK);
        assert_eq!(
            gradstep_optimizer_checkpoint_len(opt, &mut len),
            GRADSTEP_OK
        );
        assert!(len < 1024 * 4, "{len}");
        let before = w.clone();
        let status =
            gradstep_optimizer_checkpoint_save(opt, w.as_mut_ptr().cast(), len, &mut written);
        assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS);
        assert_eq!((&w, written), (&before, 0), "a refused save wrote");
        let mut bytes = vec![0u8; len];
        let status = gradstep_optimizer_checkpoint_save(opt, bytes.as_mut_ptr(), len, &mut written);
        assert_eq!(status, GRADSTEP_OK);
        // The checkpoint copied into the params' own memory, then loaded from there.
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), w.as_mut_ptr().cast::<u8>(), len);
        let status = gradstep_optimizer_checkpoint_load(opt, w.as_ptr().cast(), len);
        assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS);
        assert_eq!(gradstep_optimizer_free(opt), GRADSTEP_OK);
    }
}

/// Scalar state no run of steps can produce (NAdam's μ-product outside [0, 1], ASGD's η
/// not finite and ≥ 0 or μ outside (0, 1], after step 0) was stepped (params became
/// NaN or infinite) and saved into a checkpoint that the loader then refused (a hostile
/// C caller's report, session 22). Now the step and the save refuse it, writing nothing;
/// at step 0 these fields are ignored (fresh state: all zeros), so a fresh state saves
/// and loads.
#[test]
fn scalar_state_no_step_produces_is_refused_by_step_and_save() {
    use gradstep::checkpoint::gradstep_checkpoint_load_f64;
    use gradstep::checkpoint::gradstep_checkpoint_save_f64;
    use gradstep::rules::{GRADSTEP_RULE_ASGD, GRADSTEP_RULE_NADAM, gradstep_rule_step_f64};
    let n = 4;
    let nadam = |mu_product| gradstep_scalars {
        step: 3,
        mu_product,
        ..gradstep_scalars::default()
    };
    let asgd = |eta, mu| gradstep_scalars {
        step: 3,
        eta,
        mu,
        ..gradstep_scalars::default()
    };
    let cases = [
        (GRADSTEP_RULE_NADAM, nadam(f64::NAN)),
        (GRADSTEP_RULE_NADAM, nadam(1.5)),
        (GRADSTEP_RULE_NADAM, nadam(-0.25)),
        (GRADSTEP_RULE_ASGD, asgd(f64::NAN, 1.0)),
        (GRADSTEP_RULE_ASGD, asgd(f64::NEG_INFINITY, 1.0)),
        (GRADSTEP_RULE_ASGD, asgd(-0.5, 1.0)),
        (GRADSTEP_RULE_ASGD, asgd(0.01, -5.0)),
        (GRADSTEP_RULE_ASGD, asgd(0.01, 0.0)),
        (GRADSTEP_RULE_ASGD, asgd(0.01, 1.5)),
    ];
    // One step, and a save into 4096 bytes of `fill`: the statuses, the bytes, `written`.
    let step = |r: &gradstep_rule, sc: &mut gradstep_scalars, p: &mut [f64], s: &mut [f64]| {
        let g = vec![0.1f64; p.len()];
        // SAFETY: valid, disjoint buffers of the lengths passed.
        unsafe {
            gradstep_rule_step_f64(
                r,
                sc,
                p.as_mut_ptr(),
                g.as_ptr(),
                p.len(),
                s.as_mut_ptr(),
                s.len(),
            )
        }
    };
    let save = |r: &gradstep_rule, sc: &gradstep_scalars, p: &[f64], s: &[f64], fill: u8| {
        let (mut out, mut written) = (vec![fill; 4096], 99);
        // SAFETY: as above; `out` holds 4096 bytes.
        let status = unsafe {
            gradstep_checkpoint_save_f64(
                r,
                sc,
                s.as_ptr(),
                s.len(),
                p.as_ptr(),
                p.len(),
                out.as_mut_ptr(),
                out.len(),
                &mut written,
            )
        };
        (status, out, written)
    };
    for (kind, bad) in cases {
        let r = rule(kind);
        let slots = if kind == GRADSTEP_RULE_NADAM { 2 } else { 1 };
        let (mut p, mut s, mut sc) = (vec![0.5f64; n], vec![0.25f64; slots * n], bad);
        let status = step(&r, &mut sc, &mut p, &mut s);
        assert_eq!(status, GRADSTEP_INVALID_SCALAR_STATE, "step {kind} {bad:?}");
        // (Debug: exact for every f64, NaN included.)
        let (after, before) = (format!("{sc:?}"), format!("{bad:?}"));
        assert_eq!(
            (p[0], s[0], after),
            (0.5, 0.25, before),
            "a refused step wrote"
        );
        let (status, out, written) = save(&r, &sc, &p, &s, 7);
        assert_eq!(status, GRADSTEP_INVALID_SCALAR_STATE, "save {kind} {bad:?}");
        assert!(
            out.iter().all(|&b| b == 7) && written == 99,
            "a refused save wrote"
        );
    }
    // Fresh (all-zero) scalar state: stepped, and saved and loaded, as it always was.
    for kind in [GRADSTEP_RULE_NADAM, GRADSTEP_RULE_ASGD] {
        let r = rule(kind);
        let slots = if kind == GRADSTEP_RULE_NADAM { 2 } else { 1 };
        let (p, s, sc) = (
            vec![0.5f64; n],
            vec![0.0f64; slots * n],
            gradstep_scalars::default(),
        );
        let (status, out, written) = save(&r, &sc, &p, &s, 0);
        assert_eq!(status, GRADSTEP_OK, "save fresh {kind}");
        let (mut r2, mut sc2) = (rule(GRADSTEP_RULE_SGD), gradstep_scalars::default());
        let (mut s2, mut p2) = (vec![0.0f64; slots * n], vec![0.0f64; n]);
        // SAFETY: as above; `out[..written]` is the checkpoint.
        let status = unsafe {
            gradstep_checkpoint_load_f64(
                out.as_ptr(),
                written,
                0,
                &mut r2,
                &mut sc2,
                s2.as_mut_ptr(),
                s2.len(),
                p2.as_mut_ptr(),
                n,
            )
        };
        assert_eq!(status, GRADSTEP_OK, "load fresh {kind}");
        assert_eq!((r2.kind, sc2.step, p2), (kind, 0, p.clone()));
        let (mut p, mut s, mut sc) = (p.clone(), s, sc);
        let status = step(&r, &mut sc, &mut p, &mut s);
        assert_eq!((status, sc.step), (GRADSTEP_OK, 1), "step fresh {kind}");
    }
}
