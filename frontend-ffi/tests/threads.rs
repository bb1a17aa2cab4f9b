//! `gradstep_optimizer_set_threads`: the thread count is a setting of the handle, and
//! the params after a step are the same bits for any number of threads.

use core::ffi::CStr;
use core::ptr;

use gradstep::optimizer::{
    gradstep_optimizer_add_params_f32, gradstep_optimizer_free, gradstep_optimizer_new,
    gradstep_optimizer_set_threads, gradstep_optimizer_step,
};
use gradstep::rules::{GRADSTEP_F32, gradstep_rule, gradstep_rule_parse};
use gradstep::status::*;

/// Steps tensors of several lengths (two of them longer than two of the optimizer's
/// default chunks, so that several threads have work) `steps` times with `threads`.
fn run(spec: &CStr, threads: usize, steps: usize) -> Vec<Vec<f32>> {
    let mut rule = core::mem::MaybeUninit::<gradstep_rule>::zeroed();
    // SAFETY: a NUL-terminated text and a valid out pointer.
    let s = unsafe { gradstep_rule_parse(spec.as_ptr(), rule.as_mut_ptr()) };
    assert_eq!(s, GRADSTEP_OK);
    // SAFETY: written by gradstep_rule_parse.
    let rule = unsafe { rule.assume_init() };
    let lengths = [200_000usize, 7, 140_001, 64];
    let mut params: Vec<Vec<f32>> = lengths
        .iter()
        .map(|&n| (0..n).map(|i| (i % 13) as f32 * 0.125 - 0.75).collect())
        .collect();
    let grads: Vec<Vec<f32>> = lengths
        .iter()
        .map(|&n| (0..n).map(|i| (i % 7) as f32 * 0.25 - 0.5).collect())
        .collect();
    let mut opt = ptr::null_mut();
    // SAFETY: valid pointers; the buffers outlive the handle (freed below).
    unsafe {
        assert_eq!(
            gradstep_optimizer_new(&rule, GRADSTEP_F32, &mut opt),
            GRADSTEP_OK
        );
        for (p, g) in params.iter_mut().zip(&grads) {
            let s = gradstep_optimizer_add_params_f32(opt, 0, p.as_mut_ptr(), g.as_ptr(), p.len());
            assert_eq!(s, GRADSTEP_OK);
        }
        assert_eq!(gradstep_optimizer_set_threads(opt, threads), GRADSTEP_OK);
        for _ in 0..steps {
            assert_eq!(gradstep_optimizer_step(opt), GRADSTEP_OK);
        }
        assert_eq!(gradstep_optimizer_free(opt), GRADSTEP_OK);
    }
    params
}

/// An elementwise rule, whose chunks step separately, and LAMB, whose tensors are cut
/// into parts stepped in two rounds around their merged norms.
#[test]
fn the_thread_count_changes_no_bit() {
    for spec in [c"adamw:lr=0.01", c"lamb:lr=0.01,weight_decay=0.1"] {
        let one = run(spec, 1, 3);
        for threads in [0, 2, 3, 8] {
            let many = run(spec, threads, 3);
            for (a, b) in one.iter().zip(&many) {
                let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{spec:?}: {threads} threads differ from one");
            }
        }
        // The steps did something.
        assert_ne!(one[0][0], 0.125 * 0.0 - 0.75);
    }
}

#[test]
fn a_stale_handle_is_refused() {
    // SAFETY: any value may be passed; handles are checked.
    let s = unsafe { gradstep_optimizer_set_threads(ptr::null_mut(), 2) };
    assert_eq!(s, GRADSTEP_NULL_POINTER);
    // SAFETY: as above; a made-up handle value.
    let s = unsafe { gradstep_optimizer_set_threads(16 as *mut _, 2) };
    assert_eq!(s, GRADSTEP_INVALID_HANDLE);
}
