//! Whole-optimizer checkpoints: round trips mid-training for every rule, and every
//! forged, truncated or corrupted checkpoint refused with the optimizer unchanged.

mod common;

use common::{bits, data, variant, with_slots};
use gradstep::checkpoint::Element;
use gradstep::rules::{AnyRule, RuleId};
use gradstep::schedules::{
    AnyScheduler, CosineAnnealingWarmRestarts, CyclicLr, ExponentialLr, PlateauMode,
    ReduceLrOnPlateau, StepLr,
};
use gradstep_optim::{Error, GroupId, Optimizer, ScheduleState, TensorId};
use proptest::prelude::*;

const LENS: [usize; 3] = [7, 0, 19];

fn crc(bytes: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(bytes)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes the container's CRC (a forger's first step).
fn reseal(b: &mut [u8]) {
    let len = u64_at(b, 16) as usize;
    let c = crc(&b[..len - 4]);
    b[len - 4..len].copy_from_slice(&c.to_le_bytes());
}

/// Recomputes the CRC of the kernel checkpoint at `at`, then the container's.
fn reseal_inner(b: &mut [u8], at: usize) {
    let len = u64_at(b, at + 8) as usize;
    let c = crc(&b[at..at + len - 4]);
    b[at + len - 4..at + len].copy_from_slice(&c.to_le_bytes());
    reseal(b);
}

/// Offsets of the group records and of the tensor records' kernel checkpoints.
fn records(b: &[u8], groups: usize, tensors: usize) -> (Vec<usize>, Vec<usize>) {
    let pad = |x: usize| (x + 7) & !7;
    let mut at = 24;
    let mut g = Vec::new();
    for _ in 0..groups {
        g.push(at);
        at = pad(at + 72 + u64_at(b, at + 64) as usize);
    }
    let mut t = Vec::new();
    for _ in 0..tensors {
        t.push(at + 16);
        at = pad(at + 16 + u64_at(b, at + 8) as usize);
    }
    assert_eq!(at + 4, u64_at(b, 16) as usize);
    (g, t)
}

/// An optimizer of `a`'s kind: group 0 with `a` and a StepLR, group 1 with `b`, the
/// tensors of `LENS` alternating between them.
fn build<T: Element>(a: AnyRule, b: AnyRule) -> Optimizer<T> {
    let mut opt = Optimizer::new(a).unwrap();
    let g = opt.add_group(b).unwrap();
    for (k, &n) in LENS.iter().enumerate() {
        opt.add_tensor(GroupId(k % 2 * g.0), n).unwrap();
    }
    opt.attach_schedule(GroupId(0), StepLr::new(2, 0.5))
        .unwrap();
    opt
}

fn train<T: Element>(opt: &mut Optimizer<T>, params: &mut [Vec<T>], steps: std::ops::Range<u64>) {
    for t in steps {
        let grads: Vec<Vec<T>> = LENS.iter().map(|&n| data(100 * n as u64 + t, n)).collect();
        let mut list: Vec<(&mut [T], &[T])> = params
            .iter_mut()
            .zip(&grads)
            .map(|(p, g)| (&mut p[..], &g[..]))
            .collect();
        opt.step(&mut list).unwrap();
        opt.schedule_step().unwrap();
    }
}

fn params<T: Element>() -> Vec<Vec<T>> {
    LENS.iter().map(|&n| data(n as u64, n)).collect()
}

/// Every rule (with 1–3 slots), f32 and f64: stop after 3 steps, checkpoint, restore
/// into a fresh optimizer, continue: the params and the whole state (its checkpoint's
/// bytes) equal an uninterrupted run's.
fn round_trip<T: Element>() {
    for &id in RuleId::ALL {
        for a in [id.default_rule(), with_slots(id)] {
            let b = variant(id);
            let mut whole = build::<T>(a, b);
            let mut p = params::<T>();
            train(&mut whole, &mut p, 0..6);

            let mut first = build::<T>(a, b);
            let mut q = params::<T>();
            train(&mut first, &mut q, 0..3);
            let saved = first.checkpoint().unwrap();
            assert_eq!(saved.len(), first.checkpoint_len(false).unwrap());
            let mut second = build::<T>(a, b);
            second.load_checkpoint(&saved).unwrap();
            assert_eq!(second.checkpoint().unwrap(), saved, "{a}");
            assert_eq!(second.tensor_step(TensorId(2)).unwrap(), 3);
            train(&mut second, &mut q, 3..6);
            for (x, y) in p.iter().zip(&q) {
                assert_eq!(bits(x), bits(y), "{a}");
            }
            assert_eq!(
                second.checkpoint().unwrap(),
                whole.checkpoint().unwrap(),
                "{a}"
            );

            // The same through a state dict.
            let mut third = build::<T>(a, b);
            let mut r = params::<T>();
            train(&mut first, &mut r, 3..3);
            third.load_state_dict(&first.state_dict()).unwrap();
            assert_eq!(third.checkpoint().unwrap(), saved, "{a}");
        }
    }
}

#[test]
fn every_rule_resumes_bit_identically_f32() {
    round_trip::<f32>();
}

#[test]
fn every_rule_resumes_bit_identically_f64() {
    round_trip::<f64>();
}

/// Schedules with more state than an epoch (warm restarts' T_i/T_cur, a plateau's
/// counters, CyclicLR's momentum) resume where they were, with the params.
#[test]
fn schedules_resume_where_they_were() {
    let rule = AnyRule::parse("sgd:lr=0.1,momentum=0.9").unwrap();
    let make = |opt: &mut Optimizer<f64>| {
        let g1 = opt.add_group(rule).unwrap();
        let g2 = opt.add_group(rule).unwrap();
        opt.add_tensor(GroupId(0), 5).unwrap();
        opt.add_tensor(g1, 4).unwrap();
        opt.add_tensor(g2, 3).unwrap();
        opt.attach_schedule(GroupId(0), CosineAnnealingWarmRestarts::new(2, 2, 0.01))
            .unwrap();
        let mut c = CyclicLr::new(0.01, 0.1);
        c.step_size_up = 3;
        opt.attach_schedule(g1, c).unwrap();
        let mut p = ReduceLrOnPlateau::new(PlateauMode::Min);
        p.patience = 1;
        opt.attach_plateau(g2, p).unwrap();
    };
    let run = |opt: &mut Optimizer<f64>, ps: &mut [Vec<f64>; 3], steps: std::ops::Range<u64>| {
        for t in steps {
            let g: Vec<Vec<f64>> = ps.iter().map(|p| data(t, p.len())).collect();
            let [a, b, c] = ps;
            opt.step(&mut [
                (&mut a[..], &g[0][..]),
                (&mut b[..], &g[1][..]),
                (&mut c[..], &g[2][..]),
            ])
            .unwrap();
            opt.schedule_step().unwrap();
            opt.schedule_step_metric(if t < 2 { 1.0 / (t + 1) as f64 } else { 0.5 })
                .unwrap();
        }
    };
    let fresh = || [data::<f64>(1, 5), data::<f64>(2, 4), data::<f64>(3, 3)];
    let mut whole = Optimizer::<f64>::new(rule).unwrap();
    make(&mut whole);
    let mut p = fresh();
    run(&mut whole, &mut p, 0..9);

    let mut first = Optimizer::<f64>::new(rule).unwrap();
    make(&mut first);
    let mut q = fresh();
    run(&mut first, &mut q, 0..5);
    let [a, b, c] = &q;
    let bytes = first.checkpoint_with_params(&[a, b, c]).unwrap();
    assert!(matches!(
        first.schedule_state(GroupId(2)).unwrap(),
        Some(ScheduleState::Plateau { .. })
    ));
    let mut second = Optimizer::<f64>::new(rule).unwrap();
    make(&mut second);
    let mut r = [vec![0.0; 5], vec![0.0; 4], vec![0.0; 3]];
    {
        let [a, b, c] = &mut r;
        second
            .load_checkpoint_with_params(&bytes, &mut [a, b, c])
            .unwrap();
    }
    assert_eq!(r, q);
    run(&mut second, &mut r, 5..9);
    for (x, y) in p.iter().zip(&r) {
        assert_eq!(bits(x), bits(y));
    }
    assert_eq!(second.checkpoint().unwrap(), whole.checkpoint().unwrap());
    assert!(
        whole.lr(GroupId(2)).unwrap() < 0.1,
        "the plateau cut the rate"
    );
}

/// A trained Adam optimizer (two groups, StepLR on group 0, an ExponentialLR on group
/// 1), its checkpoint with params, and the params.
fn trained() -> (Optimizer<f32>, Vec<Vec<f32>>, Vec<u8>) {
    let rule = AnyRule::parse("adam:lr=0.01").unwrap();
    let mut opt = build::<f32>(rule, variant(RuleId::Adam));
    opt.attach_schedule(GroupId(1), ExponentialLr::new(0.9))
        .unwrap();
    let mut p = params::<f32>();
    train(&mut opt, &mut p, 0..3);
    let refs: Vec<&[f32]> = p.iter().map(|x| &x[..]).collect();
    let bytes = opt.checkpoint_with_params(&refs).unwrap();
    (opt, p, bytes)
}

/// A fresh optimizer of the same shape: what a checkpoint is loaded into.
fn receiver() -> Optimizer<f32> {
    let rule = AnyRule::parse("adam:lr=0.01").unwrap();
    let mut opt = build::<f32>(rule, variant(RuleId::Adam));
    opt.attach_schedule(GroupId(1), ExponentialLr::new(0.9))
        .unwrap();
    opt
}

/// Loads `bytes` (with params) into a receiver; on `Err`, asserts nothing changed.
fn load(bytes: &[u8]) -> Result<(), Error> {
    let mut opt = receiver();
    let before = opt.checkpoint().unwrap();
    let mut p: Vec<Vec<f32>> = LENS.iter().map(|&n| vec![-7.0; n]).collect();
    let mut refs: Vec<&mut [f32]> = p.iter_mut().map(|x| &mut x[..]).collect();
    let result = opt.load_checkpoint_with_params(bytes, &mut refs);
    if result.is_err() {
        assert_eq!(
            opt.checkpoint().unwrap(),
            before,
            "a refused load changed the optimizer"
        );
        assert!(
            p.iter().flatten().all(|&x| x == -7.0),
            "a refused load wrote params"
        );
        let mut again = receiver();
        assert_eq!(
            format!("{:?}", again.load_checkpoint(bytes)),
            format!("{result:?}"),
            "with and without params"
        );
        assert_eq!(again.checkpoint().unwrap(), before);
    }
    result
}

#[test]
fn intact_checkpoints_load_with_trailing_bytes() {
    let (_, p, bytes) = trained();
    assert_eq!(load(&bytes), Ok(()));
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"trailing flash");
    assert_eq!(load(&longer), Ok(()));
    let mut opt = receiver();
    let mut q: Vec<Vec<f32>> = LENS.iter().map(|&n| vec![0.0; n]).collect();
    let mut refs: Vec<&mut [f32]> = q.iter_mut().map(|x| &mut x[..]).collect();
    opt.load_checkpoint_with_params(&longer, &mut refs).unwrap();
    assert_eq!(q, p);
}

#[test]
fn forged_hyperparameters_are_refused() {
    let (opt, _, good) = trained();
    let (groups, tensors) = records(&good, opt.groups(), opt.tensors());
    // Finding 7: a group's β₁ (the momentum schedules cycle) = NaN, with both CRCs
    // fixed. The kernel's decoder runs the rule's validate.
    let mut b = good.clone();
    let beta1 = groups[0] + 72 + 32 + 8;
    put_u64(&mut b, beta1, f64::NAN.to_bits());
    reseal_inner(&mut b, groups[0] + 72);
    assert!(matches!(
        load(&b),
        Err(Error::Kernel(gradstep::Error::InvalidHyperparameter {
            name: "beta1",
            ..
        }))
    ));
    // The same in a tensor's record only: its rule is not its group's.
    let mut b = good.clone();
    put_u64(&mut b, tensors[0] + 32, 0.5f64.to_bits());
    reseal_inner(&mut b, tensors[0]);
    assert!(matches!(load(&b), Err(Error::Invalid { .. })));
    // initial_lr = −∞.
    let mut b = good.clone();
    put_u64(&mut b, groups[0] + 8, f64::NEG_INFINITY.to_bits());
    reseal(&mut b);
    assert_eq!(
        load(&b),
        Err(Error::Invalid {
            field: "initial_lr"
        })
    );
    // initial_lr present without its flag.
    let mut b = good.clone();
    let flags = u64_at(&b, groups[1]) & !1;
    put_u64(&mut b, groups[1], flags);
    reseal(&mut b);
    assert!(matches!(load(&b), Err(Error::Invalid { .. })));
    // Unknown group flags, a momentum flag on a group, nonzero reserved bytes.
    for (at, v) in [
        (groups[0], u64_at(&good, groups[0]) | 1 << 9),
        (groups[0], u64_at(&good, groups[0]) | 1 << 4),
        (tensors[1] - 12, 1),
    ] {
        let mut b = good.clone();
        put_u64(&mut b, at, v);
        reseal(&mut b);
        assert!(load(&b).is_err(), "offset {at}");
    }
}

#[test]
fn forged_schedule_positions_are_refused_or_restored_without_replay() {
    let (opt, _, good) = trained();
    let (groups, _) = records(&good, opt.groups(), opt.tensors());
    let last_epoch = groups[0] + 24;
    // Finding 6: an epoch in the quintillions is restored directly (a replay would
    // not end), and the schedule steps on from there.
    let mut b = good.clone();
    put_u64(&mut b, last_epoch, 1 << 62);
    reseal(&mut b);
    let mut far = receiver();
    far.load_checkpoint(&b).unwrap();
    match far.schedule_state(GroupId(0)).unwrap() {
        Some(ScheduleState::Epochs { progress, .. }) => assert_eq!(progress.last_epoch, 1 << 62),
        other => panic!("{other:?}"),
    }
    far.schedule_step().unwrap();
    // Negative epochs (not started), a base_lr other than initial_lr, NaN base_lr,
    // kind 0, kind 99, kind of another schedule.
    let base_lr = groups[0] + 40;
    for (at, v) in [
        (last_epoch, (-1i64) as u64),
        (last_epoch, i64::MIN as u64),
        (base_lr, 0.5f64.to_bits()),
        (base_lr, f64::NAN.to_bits()),
        (groups[0] + 16, 0),
        (groups[0] + 16, 99),
        (groups[0] + 16, 7),
        (groups[0] + 16, 16),
        (groups[0] + 48, 1.0f64.to_bits()),
    ] {
        let mut b = good.clone();
        put_u64(&mut b, at, v);
        reseal(&mut b);
        assert!(load(&b).is_err(), "offset {at} = {v:#x}");
    }
}

#[test]
fn forged_plateau_counters_are_refused() {
    let rule = AnyRule::parse("sgd:lr=0.1").unwrap();
    let make = || {
        let mut opt = Optimizer::<f32>::new(rule).unwrap();
        opt.add_tensor(GroupId(0), 2).unwrap();
        let mut p = ReduceLrOnPlateau::new(PlateauMode::Min);
        (p.patience, p.cooldown) = (3, 2);
        opt.attach_plateau(GroupId(0), p).unwrap();
        opt
    };
    let mut opt = make();
    opt.schedule_step_metric(1.0).unwrap();
    opt.schedule_step_metric(2.0).unwrap();
    let good = opt.checkpoint().unwrap();
    make().load_checkpoint(&good).unwrap();
    // best = NaN, bad epochs beyond patience, cooldown beyond cooldown.
    for (at, v) in [(64, f64::NAN.to_bits()), (56, 4), (72, 3)] {
        let mut b = good.clone();
        put_u64(&mut b, at, v);
        reseal(&mut b);
        let mut o = make();
        let before = o.checkpoint().unwrap();
        assert!(
            matches!(o.load_checkpoint(&b), Err(Error::Invalid { .. })),
            "offset {at}"
        );
        assert_eq!(o.checkpoint().unwrap(), before);
    }
    // Into a group with an epoch schedule instead: refused.
    let mut o = Optimizer::<f32>::new(rule).unwrap();
    o.add_tensor(GroupId(0), 2).unwrap();
    o.attach_schedule(GroupId(0), StepLr::new(1, 0.5)).unwrap();
    assert!(matches!(
        o.load_checkpoint(&good),
        Err(Error::Mismatch { .. })
    ));
}

#[test]
fn forged_scalar_state_is_refused() {
    let rule = AnyRule::parse("nadam").unwrap();
    let mut opt = Optimizer::<f64>::new(rule).unwrap();
    opt.add_tensor(GroupId(0), 3).unwrap();
    let (mut p, g) = (vec![1.0; 3], vec![0.5; 3]);
    opt.step(&mut [(&mut p, &g)]).unwrap();
    let good = opt.checkpoint().unwrap();
    let (_, tensors) = records(&good, 1, 1);
    // NAdam's section: 6 numbers, the option word, the step, then mu_product.
    let mu = tensors[0] + 32 + 8 * 8;
    assert_eq!(
        f64::from_bits(u64_at(&good, mu)),
        opt.tensor_scalars(TensorId(0))
            .map(|s| match s {
                gradstep::rules::AnyScalars::NAdam(s) => s.mu_product,
                _ => unreachable!(),
            })
            .unwrap()
    );
    let mut b = good.clone();
    put_u64(&mut b, mu, f64::NAN.to_bits());
    reseal_inner(&mut b, tensors[0]);
    let mut fresh = Optimizer::<f64>::new(rule).unwrap();
    fresh.add_tensor(GroupId(0), 3).unwrap();
    let before = fresh.checkpoint().unwrap();
    // Refused here, or by the kernel's decoder where it checks scalar state itself.
    let e = fresh.load_checkpoint(&b).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                field: "scalar state"
            } | Error::Kernel(gradstep::Error::Checkpoint(
                gradstep::CheckpointError::InvalidField { .. }
            ))
        ),
        "{e:?}"
    );
    assert_eq!(fresh.checkpoint().unwrap(), before);
    fresh.load_checkpoint(&good).unwrap();
}

/// A checkpoint that does not fit the optimizer it is loaded into is refused.
#[test]
fn checkpoints_of_another_shape_are_refused() {
    let (_, _, good) = trained();
    let rule = AnyRule::parse("adam:lr=0.01").unwrap();
    let refuse = |mut opt: Optimizer<f32>| {
        let before = opt.checkpoint().unwrap();
        let e = opt.load_checkpoint(&good).unwrap_err();
        assert!(
            matches!(e, Error::Mismatch { .. } | Error::WrongRule { .. }),
            "{e}"
        );
        assert_eq!(opt.checkpoint().unwrap(), before);
    };
    // No schedule on group 1; another kind of schedule on group 1.
    refuse(build::<f32>(rule, variant(RuleId::Adam)));
    let mut o = build::<f32>(rule, variant(RuleId::Adam));
    o.attach_schedule(GroupId(1), AnyScheduler::from(StepLr::new(1, 0.1)))
        .unwrap();
    refuse(o);
    // A schedule attached where none was saved.
    let mut o = receiver();
    o.attach_schedule(GroupId(1), ExponentialLr::new(0.9))
        .unwrap();
    let mut bare = Optimizer::<f32>::new(rule).unwrap();
    let g = bare.add_group(variant(RuleId::Adam)).unwrap();
    for (k, &n) in LENS.iter().enumerate() {
        bare.add_tensor(GroupId(k % 2 * g.0), n).unwrap();
    }
    bare.attach_schedule(GroupId(1), ExponentialLr::new(0.9))
        .unwrap();
    let no_schedule_on_0 = bare.checkpoint().unwrap();
    let before = o.checkpoint().unwrap();
    assert!(matches!(
        o.load_checkpoint(&no_schedule_on_0),
        Err(Error::Mismatch { .. })
    ));
    assert_eq!(o.checkpoint().unwrap(), before);
    // Another tensor length, another group, one tensor more, another rule kind.
    let mut o = Optimizer::<f32>::new(rule).unwrap();
    let g = o.add_group(variant(RuleId::Adam)).unwrap();
    for (k, &n) in LENS.iter().enumerate() {
        o.add_tensor(GroupId(k % 2 * g.0), n + usize::from(k == 2))
            .unwrap();
    }
    o.attach_schedule(GroupId(0), StepLr::new(2, 0.5)).unwrap();
    o.attach_schedule(g, ExponentialLr::new(0.9)).unwrap();
    refuse(o);
    let mut o = Optimizer::<f32>::new(rule).unwrap();
    let g = o.add_group(variant(RuleId::Adam)).unwrap();
    for &n in &LENS {
        o.add_tensor(g, n).unwrap();
    }
    o.attach_schedule(GroupId(0), StepLr::new(2, 0.5)).unwrap();
    o.attach_schedule(g, ExponentialLr::new(0.9)).unwrap();
    refuse(o);
    let mut o = receiver();
    o.add_tensor(GroupId(0), 1).unwrap();
    refuse(o);
    let mut o = Optimizer::<f32>::new(AnyRule::parse("adamw:lr=0.01").unwrap()).unwrap();
    let g = o.add_group(variant(RuleId::AdamW)).unwrap();
    for (k, &n) in LENS.iter().enumerate() {
        o.add_tensor(GroupId(k % 2 * g.0), n).unwrap();
    }
    o.attach_schedule(GroupId(0), StepLr::new(2, 0.5)).unwrap();
    o.attach_schedule(g, ExponentialLr::new(0.9)).unwrap();
    refuse(o);
    // Another element type.
    let mut o = Optimizer::<f64>::new(rule).unwrap();
    assert_eq!(
        o.load_checkpoint(&good),
        Err(Error::Mismatch {
            what: "element type"
        })
    );
    // Params asked of a checkpoint without them, or of the wrong lengths.
    let (opt, _, _) = trained();
    let state_only = opt.checkpoint().unwrap();
    let mut o = receiver();
    let mut p: Vec<Vec<f32>> = LENS.iter().map(|&n| vec![3.0; n]).collect();
    let mut refs: Vec<&mut [f32]> = p.iter_mut().map(|x| &mut x[..]).collect();
    assert!(matches!(
        o.load_checkpoint_with_params(&state_only, &mut refs),
        Err(Error::Mismatch { .. })
    ));
    refs.pop();
    assert!(matches!(
        o.load_checkpoint_with_params(&good, &mut refs),
        Err(Error::TensorCount { .. })
    ));
    assert!(p.iter().flatten().all(|&x| x == 3.0));
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Insert(i, x)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len().max(1);
    match *m {
        Mutation::Flip(i, x) => {
            if let Some(b) = bytes.get_mut(i % n) {
                *b ^= x;
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i % n),
        Mutation::Insert(i, x) => bytes.insert(i % (bytes.len() + 1), x),
        Mutation::Remove(i) => {
            if !bytes.is_empty() {
                bytes.remove(i % n);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any damage is refused with nothing changed, unless it left the checkpoint
    /// itself intact (bytes appended after it). With the CRC fixed by a forger, the
    /// structure checks must still refuse or load a consistent state; nothing panics.
    #[test]
    fn damaged_checkpoints_are_refused(
        mutations in prop::collection::vec(mutation(), 1..4),
        random in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let (_, _, good) = trained();
        let mut b = good.clone();
        for m in &mutations {
            apply(&mut b, m);
        }
        if load(&b).is_ok() {
            prop_assert_eq!(&b[..good.len()], &good[..], "a damaged checkpoint was accepted");
        }
        prop_assert!(load(&random).is_err());
        // A forger fixes the outer CRC (if the length field still fits).
        if b.len() >= 24 {
            let len = u64_at(&b, 16);
            if (28..=b.len() as u64).contains(&len) {
                reseal(&mut b);
                let _ = load(&b);
            }
        }
    }
}

/// `pop_tensor` undoes the last `add_tensor` (a frontend whose own checks of a
/// tensor's buffers fail after its state was allocated): the optimizer is as before.
#[test]
fn pop_tensor_undoes_the_last_registration() {
    let mut opt = Optimizer::<f32>::new(AnyRule::parse("adam:lr=0.01").unwrap()).unwrap();
    assert_eq!(opt.pop_tensor(), None);
    let g = opt.default_group();
    opt.add_tensor(g, 5).unwrap();
    let before = opt.checkpoint().unwrap();
    assert_eq!(opt.add_tensor(g, 3).unwrap(), TensorId(1));
    assert_eq!(opt.pop_tensor(), Some(TensorId(1)));
    assert_eq!(opt.tensors(), 1);
    assert_eq!(opt.checkpoint().unwrap(), before);
    assert_eq!(opt.add_tensor(g, 7).unwrap(), TensorId(1));
    assert_eq!(opt.tensor_len(TensorId(1)).unwrap(), 7);
}

/// A tensor of a rule without state slices allocates nothing, so it may be registered
/// at any length that fits a usize; a checkpoint holding its params would not fit any
/// allocation (> isize::MAX bytes), and its length is refused rather than reported.
/// Before session 23, `checkpoint_len(true)` returned ~9.2·10¹⁸.
#[test]
fn a_checkpoint_length_no_allocation_holds_is_refused() {
    let mut opt = Optimizer::<f32>::new(AnyRule::parse("sgd:lr=0.1").unwrap()).unwrap();
    let n = (1usize << 61) + 3;
    opt.add_tensor(opt.default_group(), n).unwrap();
    let without = opt.checkpoint_len(false).unwrap();
    assert!(without < 4096, "{without}");
    assert!(
        matches!(opt.checkpoint_len(true), Err(Error::OutOfMemory { .. })),
        "{:?}",
        opt.checkpoint_len(true)
    );
    // The largest whose length fits is reported.
    let mut opt = Optimizer::<f32>::new(AnyRule::parse("sgd:lr=0.1").unwrap()).unwrap();
    opt.add_tensor(opt.default_group(), (isize::MAX as usize) / 8)
        .unwrap();
    let len = opt.checkpoint_len(true).unwrap();
    assert!(
        len <= isize::MAX as usize && len > isize::MAX as usize / 2,
        "{len}"
    );
}
