//! Forged handle checkpoints (issue 12, findings 6 and 7), through the C ABI.
//!
//! A checkpoint whose CRC has been fixed up after an edit is, to the loader, as good as
//! a real one: what it may name must be checked as the constructors check it, and what
//! it costs to load must not depend on the numbers it holds.
//!
//! Written first against the handle's own GSOP v1 loader (commit 6638fa9), where the
//! epoch test failed (an epoch of 2⁶² was refused: the loader replayed schedules epoch by
//! epoch, up to 2³² of them) and both finding-7 tests failed (a NaN momentum and an
//! `initial_lr` of −∞ in a group record loaded with status OK). The forging helpers
//! know both layouts so that the same tests ran against both loaders.

use core::ptr;

use gradstep::optimizer::gradstep_optimizer_attach_schedule_handle;
use gradstep::optimizer::{
    gradstep_optimizer, gradstep_optimizer_add_params_f32, gradstep_optimizer_attach_schedule,
    gradstep_optimizer_checkpoint_len, gradstep_optimizer_checkpoint_load,
    gradstep_optimizer_checkpoint_save, gradstep_optimizer_free, gradstep_optimizer_lr,
    gradstep_optimizer_new, gradstep_optimizer_schedule_step, gradstep_optimizer_step,
};
use gradstep::rules::{GRADSTEP_F32, GRADSTEP_RULE_SGD, gradstep_rule, gradstep_rule_default};
use gradstep::schedules::{
    GRADSTEP_SCHEDULE_CYCLIC, GRADSTEP_SCHEDULE_EXPONENTIAL, GRADSTEP_SCHEDULE_LAMBDA,
    GRADSTEP_SCHEDULE_LINEAR, GRADSTEP_SCHEDULE_STEP, gradstep_schedule, gradstep_schedule_config,
    gradstep_schedule_default, gradstep_schedule_free, gradstep_schedule_new_sequential,
};
use gradstep::status::*;

const N: usize = 6;
/// SGD's momentum in these tests: a value whose bytes occur nowhere else.
const MOMENTUM: f64 = 0.8125;

/// CRC-32 (ISO-HDLC, reflected, polynomial 0xEDB88320), bit by bit: an oracle that
/// shares no code with the library's table-driven one.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Rewrites the trailing CRC-32 of `bytes[..len]`.
fn fix_crc(bytes: &mut [u8]) {
    let body = bytes.len() - 4;
    let crc = crc32(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
}

fn version(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[4], bytes[5]])
}

/// Group 0's fields in either layout: (flags offset, initial_lr offset, epoch offset).
/// v1: header 16 bytes, then lr, initial_lr, momentum, flags, epoch (8 bytes each).
/// v2: header 24 bytes, then flags, initial_lr, kind, last_epoch, ...
fn group0(bytes: &[u8]) -> (usize, usize, usize) {
    match version(bytes) {
        1 => (16 + 24, 16 + 8, 16 + 32),
        2 => (24, 24 + 8, 24 + 24),
        v => panic!("unknown handle checkpoint version {v}"),
    }
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// The params and grads a handle is registered over (they outlive it).
struct Buffers {
    w: Vec<f32>,
    g: Vec<f32>,
}

impl Buffers {
    fn new() -> Self {
        Buffers {
            w: (0..N).map(|i| 0.5 - i as f32 * 0.125).collect(),
            g: (0..N).map(|i| (i as f32 * 0.7).sin()).collect(),
        }
    }
}

/// An SGD handle (lr 0.1, momentum [`MOMENTUM`]) over `b`, with StepLR(3, 0.5).
fn handle(b: &mut Buffers) -> *mut gradstep_optimizer {
    let opt = sgd_handle(b, MOMENTUM);
    let mut c = gradstep_schedule_default(GRADSTEP_SCHEDULE_STEP);
    c.params.step.step_size = 3;
    c.params.step.gamma = 0.5;
    // SAFETY: a live handle, a valid config.
    let status = unsafe { gradstep_optimizer_attach_schedule(opt, 0, &c) };
    assert_eq!(status, GRADSTEP_OK);
    opt
}

/// An SGD handle (lr 0.1, `momentum`) over `b`, without a schedule.
fn sgd_handle(b: &mut Buffers, momentum: f64) -> *mut gradstep_optimizer {
    let mut sgd = core::mem::MaybeUninit::<gradstep_rule>::zeroed();
    let mut opt = ptr::null_mut();
    // SAFETY: valid pointers; `b` outlives the handle (every test frees it first).
    unsafe {
        assert_eq!(
            gradstep_rule_default(GRADSTEP_RULE_SGD, sgd.as_mut_ptr()),
            GRADSTEP_OK
        );
        let mut sgd = sgd.assume_init();
        sgd.params.sgd.lr = 0.1;
        sgd.params.sgd.momentum = momentum;
        assert_eq!(
            gradstep_optimizer_new(&sgd, GRADSTEP_F32, &mut opt),
            GRADSTEP_OK
        );
        assert_eq!(
            gradstep_optimizer_add_params_f32(opt, 0, b.w.as_mut_ptr(), b.g.as_ptr(), N),
            GRADSTEP_OK
        );
    }
    opt
}

/// One training epoch: an optimizer step, then a schedule step.
fn epoch(opt: *mut gradstep_optimizer) {
    // SAFETY: a live handle.
    unsafe {
        assert_eq!(gradstep_optimizer_step(opt), GRADSTEP_OK);
        assert_eq!(gradstep_optimizer_schedule_step(opt), GRADSTEP_OK);
    }
}

fn lr(opt: *mut gradstep_optimizer) -> f64 {
    let mut lr = f64::NAN;
    // SAFETY: a live handle, a valid output.
    assert_eq!(
        unsafe { gradstep_optimizer_lr(opt, 0, &mut lr) },
        GRADSTEP_OK
    );
    lr
}

fn save(opt: *mut gradstep_optimizer) -> Vec<u8> {
    let (mut len, mut written) = (0, 0);
    // SAFETY: a live handle, valid outputs.
    unsafe {
        assert_eq!(
            gradstep_optimizer_checkpoint_len(opt, &mut len),
            GRADSTEP_OK
        );
        let mut bytes = vec![0u8; len];
        assert_eq!(
            gradstep_optimizer_checkpoint_save(opt, bytes.as_mut_ptr(), len, &mut written),
            GRADSTEP_OK
        );
        assert_eq!(written, len);
        bytes
    }
}

fn load(opt: *mut gradstep_optimizer, bytes: &[u8]) -> gradstep_status {
    // SAFETY: a live handle; the bytes are valid for their length.
    unsafe { gradstep_optimizer_checkpoint_load(opt, bytes.as_ptr(), bytes.len()) }
}

fn free(opt: *mut gradstep_optimizer) {
    // SAFETY: a live handle, freed once.
    assert_eq!(unsafe { gradstep_optimizer_free(opt) }, GRADSTEP_OK);
}

/// A handle trained for 3 epochs (StepLR(3, 0.5) has just decayed: lr 0.05), and its
/// checkpoint.
fn trained() -> (Buffers, Vec<u8>) {
    let mut b = Buffers::new();
    let opt = handle(&mut b);
    for _ in 0..3 {
        epoch(opt);
    }
    assert_eq!(lr(opt), 0.05);
    let bytes = save(opt);
    free(opt);
    (b, bytes)
}

/// Finding 6: a checkpoint that names a schedule epoch of 2⁶² loads (a replay could
/// never finish it; the v1 loader refused anything beyond 2³² and took 92 s for 10⁸),
/// and the schedule then continues from that epoch: StepLR(3) decays at the second
/// epoch after 2⁶² (2⁶² + 2 ≡ 0 mod 3), where the saved epoch 3 would decay only at the
/// third. Restoring instead of replaying is what makes the load take time independent
/// of the epoch; this test would not finish (or be refused) otherwise.
#[test]
fn a_schedule_epoch_of_two_to_the_62_loads_and_continues_from_there() {
    let (_, good) = trained();
    let (_, _, at) = group0(&good);
    assert_eq!(get_u64(&good, at), 3, "the saved epoch");
    let mut forged = good.clone();
    put_u64(&mut forged, at, 1 << 62);
    fix_crc(&mut forged);

    let mut b = Buffers::new();
    let opt = handle(&mut b);
    assert_eq!(load(opt, &forged), GRADSTEP_OK);
    assert_eq!(lr(opt), 0.05);
    epoch(opt);
    assert_eq!(lr(opt), 0.05, "epoch 2^62 + 1");
    epoch(opt);
    assert_eq!(lr(opt), 0.025, "epoch 2^62 + 2 is a multiple of 3");
    // It saves the epoch it reached.
    assert_eq!(get_u64(&save(opt), at), (1 << 62) + 2);
    free(opt);

    // The genuine checkpoint, for contrast: epochs 4 and 5 keep the rate.
    let mut b = Buffers::new();
    let opt = handle(&mut b);
    assert_eq!(load(opt, &good), GRADSTEP_OK);
    epoch(opt);
    epoch(opt);
    assert_eq!(lr(opt), 0.05);
    epoch(opt);
    assert_eq!(lr(opt), 0.025);
    free(opt);
}

/// An epoch past what the schedule can count (`i64::MAX`, and a negative one) is
/// refused, with nothing changed.
#[test]
fn a_schedule_epoch_beyond_i64_or_negative_is_refused() {
    let (_, good) = trained();
    let (_, _, at) = group0(&good);
    for epoch in [u64::MAX, i64::MIN as u64, (-2i64) as u64] {
        let mut forged = good.clone();
        put_u64(&mut forged, at, epoch);
        fix_crc(&mut forged);
        let mut b = Buffers::new();
        let opt = handle(&mut b);
        let before = (save(opt), b.w.clone());
        assert_ne!(load(opt, &forged), GRADSTEP_OK, "epoch {epoch:#x}");
        assert_eq!((save(opt), b.w.clone()), before);
        free(opt);
    }
}

/// Loads `forged` into a fresh handle and checks that it is refused with nothing
/// changed: the handle's own checkpoint and the params are the same bytes before and
/// after, and the handle still steps.
fn refused_with_nothing_changed(forged: &[u8], what: &str) {
    let mut b = Buffers::new();
    let opt = handle(&mut b);
    epoch(opt);
    let before = (save(opt), b.w.clone());
    let status = load(opt, forged);
    assert_ne!(status, GRADSTEP_OK, "{what} was accepted");
    assert_ne!(status, GRADSTEP_INTERNAL_ERROR, "{what}");
    assert_eq!(
        (save(opt), b.w.clone()),
        before,
        "{what}: a refused load changed the handle"
    );
    epoch(opt);
    free(opt);
}

/// Finding 7: a group whose `initial_lr` is −∞ (the flag that says it is set, set).
#[test]
fn a_group_initial_lr_of_minus_infinity_is_refused_with_nothing_changed() {
    let (_, good) = trained();
    let (flags, initial, _) = group0(&good);
    for value in [f64::NEG_INFINITY, f64::NAN, -0.5] {
        let mut forged = good.clone();
        put_u64(&mut forged, flags, get_u64(&good, flags) | 1);
        put_u64(&mut forged, initial, value.to_bits());
        fix_crc(&mut forged);
        refused_with_nothing_changed(&forged, &format!("initial_lr = {value}"));
    }
}

/// Finding 7: a group momentum of NaN. In v1 the group record held the momentum a
/// schedule drives (flag bit 1); in v2 the group's momentum is its rule's, inside the
/// group's kernel checkpoint (whose own CRC is fixed up too).
#[test]
fn a_group_momentum_of_nan_is_refused_with_nothing_changed() {
    let (_, good) = trained();
    let mut forged = good.clone();
    match version(&good) {
        1 => {
            put_u64(&mut forged, 16 + 24, get_u64(&good, 16 + 24) | 2);
            put_u64(&mut forged, 16 + 16, f64::NAN.to_bits());
        }
        _ => {
            // Group 0's record: 72 fixed bytes (the last the length R), then R bytes.
            let r = get_u64(&good, 24 + 64) as usize;
            let record = 24 + 72..24 + 72 + r;
            let pattern = MOMENTUM.to_le_bytes();
            let hits: Vec<usize> = forged[record.clone()]
                .windows(8)
                .enumerate()
                .filter(|(_, w)| *w == pattern)
                .map(|(i, _)| record.start + i)
                .collect();
            assert_eq!(hits.len(), 1, "the momentum in the group's record");
            put_u64(&mut forged, hits[0], f64::NAN.to_bits());
            fix_crc(&mut forged[record]);
        }
    }
    fix_crc(&mut forged);
    refused_with_nothing_changed(&forged, "momentum = NaN");
}

/// The genuine checkpoint loads, and these helpers' CRC agrees with the library's (so
/// that the refusals above are the loader's checks, not a checksum mismatch).
#[test]
fn the_genuine_checkpoint_loads_and_the_crc_oracle_agrees() {
    let (trained_b, good) = trained();
    let mut again = good.clone();
    fix_crc(&mut again);
    assert_eq!(again, good);
    let mut b = Buffers::new();
    let opt = handle(&mut b);
    assert_eq!(load(opt, &good), GRADSTEP_OK);
    assert_eq!(b.w, trained_b.w);
    assert_eq!(lr(opt), 0.05);
    free(opt);
}

/// Counts a LambdaLR callback's calls and remembers the last epoch it was called with.
#[derive(Default)]
struct Calls {
    count: u64,
    last_epoch: u64,
}

/// `0.9^(epoch mod 5)`, counting calls in `user` (a `Calls`).
unsafe extern "C" fn counted(epoch: u64, user: *mut core::ffi::c_void) -> f64 {
    // SAFETY: every test passes a live `Calls` it alone uses.
    let calls = unsafe { &mut *user.cast::<Calls>() };
    calls.count += 1;
    calls.last_epoch = epoch;
    0.9f64.powi((epoch % 5) as i32)
}

fn lambda(calls: &mut Calls) -> gradstep_schedule_config {
    let mut c = gradstep_schedule_default(GRADSTEP_SCHEDULE_LAMBDA);
    c.params.lambda.lr_lambda = Some(counted);
    c.params.lambda.user = (calls as *mut Calls).cast();
    c
}

/// Finding 6 with a C callback: loading calls the LambdaLR's function not once, where
/// the v1 loader replayed it once per saved epoch; the first schedule step after the
/// load calls it for epoch 2⁶² + 1.
#[test]
fn a_lambda_schedule_at_epoch_two_to_the_62_loads_without_calling_back() {
    let mut calls = Calls::default();
    let mut b = Buffers::new();
    let opt = handle(&mut b);
    // SAFETY: a live handle; `calls` outlives it.
    assert_eq!(
        unsafe { gradstep_optimizer_attach_schedule(opt, 0, &lambda(&mut calls)) },
        GRADSTEP_OK
    );
    for _ in 0..3 {
        epoch(opt);
    }
    assert_eq!(
        (calls.count, calls.last_epoch),
        (4, 3),
        "attach, then 3 epochs"
    );
    let good = save(opt);
    free(opt);
    let (_, _, at) = group0(&good);
    assert_eq!(get_u64(&good, at - 8), 1, "LambdaLR's kind");
    let mut forged = good.clone();
    put_u64(&mut forged, at, 1 << 62);
    fix_crc(&mut forged);

    let mut calls = Calls::default();
    let mut b = Buffers::new();
    let opt = handle(&mut b);
    // SAFETY: as above.
    assert_eq!(
        unsafe { gradstep_optimizer_attach_schedule(opt, 0, &lambda(&mut calls)) },
        GRADSTEP_OK
    );
    let attached = calls.count;
    assert_eq!(load(opt, &forged), GRADSTEP_OK);
    assert_eq!(calls.count, attached, "the load called the lambda");
    epoch(opt);
    assert_eq!(
        (calls.count, calls.last_epoch),
        (attached + 1, (1 << 62) + 1)
    );
    // lr = initial_lr · f(2^62 + 1); 2^62 + 1 ≡ 0 (mod 5), so f = 1.
    assert_eq!(lr(opt), 0.1);
    free(opt);
}

/// A SequentialLR schedule handle (LinearLR warmup, then StepLR) attached to the
/// optimizer handle: a checkpoint after any epoch, loaded into a fresh handle with the
/// same schedule attached, continues with the same learning rates and params, bit for
/// bit, as never stopping.
#[test]
fn a_sequential_schedule_handle_round_trips_through_handle_checkpoints() {
    let mut members = [
        gradstep_schedule_default(GRADSTEP_SCHEDULE_LINEAR),
        gradstep_schedule_default(GRADSTEP_SCHEDULE_STEP),
        gradstep_schedule_default(GRADSTEP_SCHEDULE_EXPONENTIAL),
    ];
    members[0].params.linear.start_factor = 0.25;
    members[0].params.linear.total_iters = 3;
    members[1].params.step.step_size = 2;
    members[1].params.step.gamma = 0.5;
    members[2].params.exponential.gamma = 0.75;
    let milestones = [3u64, 7];
    let mut sched: *mut gradstep_schedule = ptr::null_mut();
    // SAFETY: valid arrays of 3 and 2 elements, a valid output.
    assert_eq!(
        unsafe {
            gradstep_schedule_new_sequential(
                members.as_ptr(),
                3,
                milestones.as_ptr(),
                1.0,
                &mut sched,
            )
        },
        GRADSTEP_OK
    );
    let attached = |b: &mut Buffers| {
        let opt = handle(b);
        // SAFETY: live handles.
        let status = unsafe { gradstep_optimizer_attach_schedule_handle(opt, 0, sched) };
        assert_eq!(status, GRADSTEP_OK);
        opt
    };
    const EPOCHS: usize = 11;
    let mut b = Buffers::new();
    let opt = attached(&mut b);
    assert_eq!(lr(opt), 0.1 * 0.25, "the warmup's first rate");
    let mut straight = Vec::new();
    for _ in 0..EPOCHS {
        epoch(opt);
        straight.push(lr(opt).to_bits());
    }
    let final_w = b.w.clone();
    free(opt);
    let distinct: std::collections::HashSet<_> = straight.iter().collect();
    assert!(distinct.len() >= 5, "{straight:?}");
    for stop in 0..EPOCHS {
        let mut b1 = Buffers::new();
        let first = attached(&mut b1);
        let mut lrs = Vec::new();
        for _ in 0..stop {
            epoch(first);
            lrs.push(lr(first).to_bits());
        }
        let bytes = save(first);
        free(first);
        let mut b2 = Buffers::new();
        b2.w.fill(0.0);
        let second = attached(&mut b2);
        assert_eq!(load(second, &bytes), GRADSTEP_OK);
        assert_eq!(b2.w, b1.w);
        for _ in stop..EPOCHS {
            epoch(second);
            lrs.push(lr(second).to_bits());
        }
        assert_eq!(lrs, straight, "stopped after {stop}");
        assert_eq!(b2.w, final_w, "stopped after {stop}");
        free(second);
    }
    // SAFETY: a live handle.
    assert_eq!(unsafe { gradstep_schedule_free(sched) }, GRADSTEP_OK);
}

/// SGD's momentum buffer exists only with momentum ≠ 0: a cycling schedule attached to
/// an SGD group without momentum would give its registered tensors a buffer they were
/// not allocated with. Refused (`GRADSTEP_STATE_LAYOUT`) with the handle unchanged and
/// still stepping; before, the attach succeeded and every later step was refused. A
/// checkpoint of the other momentum does not fit either.
#[test]
fn momentum_that_would_reshape_the_state_is_refused() {
    let (mut b, mut other) = (Buffers::new(), Buffers::new());
    let opt = sgd_handle(&mut b, 0.0);
    let with_momentum = sgd_handle(&mut other, MOMENTUM);
    let mut c = gradstep_schedule_default(GRADSTEP_SCHEDULE_CYCLIC);
    c.params.cyclic.base_lr = 0.01;
    c.params.cyclic.max_lr = 0.1;
    c.params.cyclic.cycle_momentum = 1;
    let before = save(opt);
    // SAFETY: a live handle, a valid config.
    let status = unsafe { gradstep_optimizer_attach_schedule(opt, 0, &c) };
    assert_eq!(status, GRADSTEP_STATE_LAYOUT);
    assert_eq!(
        load(opt, &save(with_momentum)),
        GRADSTEP_CHECKPOINT_MISMATCH
    );
    assert_eq!(load(with_momentum, &before), GRADSTEP_CHECKPOINT_MISMATCH);
    assert_eq!(save(opt), before);
    assert_eq!(lr(opt), 0.1);
    // SAFETY: a live handle.
    assert_eq!(unsafe { gradstep_optimizer_step(opt) }, GRADSTEP_OK);
    // Without cycling the momentum, the same schedule is taken.
    c.params.cyclic.cycle_momentum = 0;
    // SAFETY: a live handle, a valid config.
    let status = unsafe { gradstep_optimizer_attach_schedule(opt, 0, &c) };
    assert_eq!(status, GRADSTEP_OK);
    // SAFETY: a live handle.
    assert_eq!(unsafe { gradstep_optimizer_step(opt) }, GRADSTEP_OK);
    free(opt);
    free(with_momentum);
}
