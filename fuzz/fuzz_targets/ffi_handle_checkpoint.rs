//! Any bytes through `gradstep_optimizer_checkpoint_load` into an optimizer handle of a
//! fixed shape (Adam over f32, two groups, tensors of 3 and 5, an ExponentialLR on group
//! 0, stepped twice): never a crash or an internal error; a refusal leaves the handle
//! saving exactly the bytes it saved before; after an accepted load the handle still
//! answers every call with a status.
//!
//! The first byte picks how the rest is used: 0: the checkpoint as given; 1: the
//! handle's own checkpoint with `(offset u16, xor u8)` patches and its CRC fixed (a
//! forger's checkpoint); 2: the same patches, CRC not fixed; 3: the handle's own
//! checkpoint cut short or extended with the rest.
#![no_main]

use gradstep_ffi::optimizer::*;
use gradstep_ffi::rules::{GRADSTEP_F32, GRADSTEP_RULE_ADAM, gradstep_rule, gradstep_rule_default};
use gradstep_ffi::schedules::{GRADSTEP_SCHEDULE_EXPONENTIAL, gradstep_schedule_default};
use gradstep_ffi::status::*;
use libfuzzer_sys::fuzz_target;

fn known(s: gradstep_status) -> gradstep_status {
    assert!(gradstep_status::from_u32(s as u32).is_some());
    assert_ne!(s, GRADSTEP_INTERNAL_ERROR, "a caught panic");
    s
}

fn ok(s: gradstep_status) {
    assert_eq!(s, GRADSTEP_OK);
}

fn save(opt: *mut gradstep_optimizer) -> Vec<u8> {
    let mut len = 0;
    // SAFETY: a live handle, a valid pointer.
    ok(unsafe { gradstep_optimizer_checkpoint_len(opt, &mut len) });
    let mut out = vec![0u8; len];
    let mut written = 0;
    // SAFETY: `out` is valid for `len` bytes and disjoint from the registered params.
    ok(unsafe { gradstep_optimizer_checkpoint_save(opt, out.as_mut_ptr(), len, &mut written) });
    assert_eq!(written, len);
    out
}

fuzz_target!(|data: &[u8]| {
    let mut adam = core::mem::MaybeUninit::<gradstep_rule>::zeroed();
    // SAFETY: a valid pointer to write to.
    ok(unsafe { gradstep_rule_default(GRADSTEP_RULE_ADAM, adam.as_mut_ptr()) });
    // SAFETY: written just above.
    let adam = unsafe { adam.assume_init() };
    let (mut p0, g0) = ([1.0f32, -2.0, 3.0], [0.5f32, -0.25, 1.0]);
    let (mut p1, g1) = ([0.1f32, 0.2, -0.3, 0.4, 5.0], [1.0f32, 1.0, -1.0, 0.0, 2.0]);
    let mut opt = core::ptr::null_mut();
    let mut group = 0;
    let mut sched = gradstep_schedule_default(GRADSTEP_SCHEDULE_EXPONENTIAL);
    sched.params.exponential.gamma = 0.9;
    // SAFETY: valid pointers; the buffers outlive the handle (freed below).
    unsafe {
        ok(gradstep_optimizer_new(&adam, GRADSTEP_F32, &mut opt));
        ok(gradstep_optimizer_add_group(opt, &adam, &mut group));
        ok(gradstep_optimizer_add_params_f32(
            opt,
            0,
            p0.as_mut_ptr(),
            g0.as_ptr(),
            3,
        ));
        ok(gradstep_optimizer_add_params_f32(
            opt,
            group,
            p1.as_mut_ptr(),
            g1.as_ptr(),
            5,
        ));
        ok(gradstep_optimizer_attach_schedule(opt, 0, &sched));
        for _ in 0..2 {
            ok(gradstep_optimizer_step(opt));
            ok(gradstep_optimizer_schedule_step(opt));
        }
    }
    let good = save(opt);
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    let bytes = match mode % 4 {
        0 => rest.to_vec(),
        m @ (1 | 2) => {
            let mut b = good.clone();
            for patch in rest.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([patch[0], patch[1]])) % b.len();
                b[at] ^= patch[2];
            }
            if m == 1 {
                let body = b.len() - 4;
                let crc = gradstep::checkpoint::crc32(&b[..body]);
                b[body..].copy_from_slice(&crc.to_le_bytes());
            }
            b
        }
        _ => {
            let cut = rest.first().map_or(0, |&c| usize::from(c)) % (good.len() + 1);
            let mut b = good[..cut].to_vec();
            b.extend_from_slice(rest);
            b
        }
    };
    let params = (p0, p1);
    // SAFETY: `bytes` is valid for its length and disjoint from the params.
    let status =
        known(unsafe { gradstep_optimizer_checkpoint_load(opt, bytes.as_ptr(), bytes.len()) });
    if status == GRADSTEP_OK {
        // SAFETY: a live handle.
        unsafe {
            known(gradstep_optimizer_step(opt));
            known(gradstep_optimizer_schedule_step(opt));
        }
    } else {
        assert_eq!(
            save(opt),
            good,
            "a refused load ({status:?}) changed the handle"
        );
        assert_eq!((p0, p1), params, "a refused load changed the params");
    }
    // SAFETY: a live handle, freed once.
    ok(unsafe { gradstep_optimizer_free(opt) });
});
