//! Schedule configs built field by field from the fuzzer's bytes, through the C ABI:
//! `gradstep_schedule_new` (and the SequentialLR/ChainedScheduler composites of 2–4
//! such members), then up to 255 steps, metrics, fractional epochs and reads, then
//! `free`. Every call answers with a documented status, never an internal error or a
//! crash; a refused `_new` writes no handle. LambdaLR/MultiplicativeLR get a fixed,
//! valid callback (an arbitrary function pointer is the C caller's own undefined
//! behaviour, not gradstep's), whose factors come from a table.
#![no_main]

use core::ffi::c_void;

use gradstep_ffi::schedules::*;
use gradstep_ffi::status::*;
use gradstep_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

/// Values a caller would pass, sometimes hostile ones, sometimes any bits.
fn value(b: &mut Bytes<'_>) -> f64 {
    const TYPICAL: [f64; 16] = [
        0.0,
        0.1,
        0.5,
        0.9,
        1.0,
        2.0,
        10.0,
        1e-8,
        -1.0,
        1e300,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        5e-324,
        0.999,
    ];
    b.f64_from(&TYPICAL, 223)
}

/// One 8-byte word of a config: a float, a small count or epoch, or any bits.
fn word(b: &mut Bytes<'_>) -> [u8; 8] {
    match b.u8() % 8 {
        0..=3 => value(b).to_ne_bytes(),
        4..=6 => u64::from(b.u8() % 40).to_ne_bytes(),
        _ => b.u64().to_ne_bytes(),
    }
}

unsafe extern "C" fn factor(epoch: u64, _user: *mut c_void) -> f64 {
    const F: [f64; 8] = [1.0, 0.5, 0.95, 2.0, 0.0, 1e-3, 1.5, 0.9];
    F[(epoch % 8) as usize]
}

fn config(b: &mut Bytes<'_>) -> gradstep_schedule_config {
    let kind = u32::from(b.u8() % 18);
    let mut c = gradstep_schedule_default(kind);
    c.kind = kind;
    if kind == GRADSTEP_SCHEDULE_LAMBDA || kind == GRADSTEP_SCHEDULE_MULTIPLICATIVE {
        c.params.lambda = gradstep_lambda_lr {
            lr_lambda: Some(factor),
            user: core::ptr::null_mut(),
        };
        return c;
    }
    // Every other member is integers and floats: any bytes are a valid value.
    // SAFETY: the union is plain old data for these kinds; it is viewed as its bytes.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(
            (&raw mut c.params).cast::<u8>(),
            size_of::<gradstep_schedule_params>(),
        )
    };
    // Keep the defaults for a prefix sometimes, so that valid configs are common.
    let keep = (usize::from(b.u8() % 4) * 8).min(bytes.len());
    for chunk in bytes[keep..].chunks_mut(8) {
        let w = word(b);
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
    c
}

fn known(s: gradstep_status) -> gradstep_status {
    assert!(gradstep_status::from_u32(s as u32).is_some());
    assert_ne!(s, GRADSTEP_INTERNAL_ERROR, "a caught panic");
    s
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let shape = b.u8() % 4;
    let lr = value(&mut b);
    let mut s: *mut gradstep_schedule = core::ptr::null_mut();
    let status = match shape {
        0 | 1 => {
            let c = config(&mut b);
            // SAFETY: valid pointers.
            known(unsafe { gradstep_schedule_new(&c, lr, &mut s) })
        }
        _ => {
            let count = 2 + usize::from(b.u8() % 3);
            let members: Vec<_> = (0..count).map(|_| config(&mut b)).collect();
            let milestones: Vec<u64> = (0..count).map(|_| u64::from(b.u8() % 30)).collect();
            // SAFETY: `members` holds `count` configs, `milestones` `count − 1` or more.
            known(unsafe {
                if shape == 2 {
                    gradstep_schedule_new_sequential(
                        members.as_ptr(),
                        count,
                        milestones.as_ptr(),
                        lr,
                        &mut s,
                    )
                } else {
                    gradstep_schedule_new_chained(members.as_ptr(), count, lr, &mut s)
                }
            })
        }
    };
    if status != GRADSTEP_OK {
        assert!(s.is_null(), "a refused _new wrote a handle");
        return;
    }
    let steps = b.u8();
    for _ in 0..steps {
        let (mut lr, mut m, mut has) = (0.0, 0.0, 0u8);
        // SAFETY: a live handle, valid outputs.
        unsafe {
            match b.u8() % 8 {
                0 => known(gradstep_schedule_step_metric(s, value(&mut b))),
                1 => known(gradstep_schedule_step_to(s, value(&mut b))),
                _ => known(gradstep_schedule_step(s)),
            };
            known(gradstep_schedule_lr(s, &mut lr, &mut m, &mut has));
        }
    }
    // SAFETY: a live handle, freed once; then stale.
    unsafe {
        assert_eq!(gradstep_schedule_free(s), GRADSTEP_OK);
        assert_eq!(gradstep_schedule_free(s), GRADSTEP_INVALID_HANDLE);
    }
});
