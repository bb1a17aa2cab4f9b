//! Composite schedules (torch's `SequentialLR` and `ChainedScheduler`) attached to param
//! groups: a checkpoint taken at any epoch restores the same learning-rate sequence as
//! never stopping, positions are restored directly (an epoch of 2⁶² loads), and forged
//! member positions are refused with the optimizer unchanged.

use gradstep::rules::AnyRule;
use gradstep::schedules::{
    ChainedScheduler, ConstantLr, CosineAnnealingWarmRestarts, ExponentialLr, LinearLr,
    SequentialLr, StepLr,
};
use gradstep_optim::{
    CHAINED_KIND, Error, GroupId, Member, Optimizer, SEQUENTIAL_KIND, ScheduleState,
};

const EPOCHS: usize = 16;
const LENS: [usize; 2] = [9, 4];

/// SGD with momentum; group 0 under SequentialLR(LinearLR warmup, warm restarts,
/// ExponentialLR; milestones 3, 9), group 1 under ChainedScheduler(ConstantLR,
/// StepLR).
fn optimizer() -> Optimizer<f64> {
    let rule = AnyRule::parse("sgd:lr=0.5,momentum=0.9").unwrap();
    let mut opt = Optimizer::new(rule).unwrap();
    let g1 = opt
        .add_group(AnyRule::parse("sgd:lr=0.25,momentum=0.9").unwrap())
        .unwrap();
    opt.add_tensor(GroupId(0), LENS[0]).unwrap();
    opt.add_tensor(g1, LENS[1]).unwrap();
    let warmup = LinearLr {
        start_factor: 0.1,
        total_iters: 3,
        ..LinearLr::default()
    };
    let members = [
        Member::from(warmup),
        CosineAnnealingWarmRestarts::new(2, 2, 0.01).into(),
        ExponentialLr::new(0.8).into(),
    ];
    opt.attach_schedule(GroupId(0), SequentialLr::new(members, &[3, 9]).unwrap())
        .unwrap();
    let constant = ConstantLr {
        factor: 0.5,
        total_iters: 4,
        ..ConstantLr::default()
    };
    let chained = ChainedScheduler::new([Member::from(constant), StepLr::new(3, 0.5).into()]);
    opt.attach_schedule(g1, chained.unwrap()).unwrap();
    opt
}

fn grads(t: usize) -> [Vec<f64>; 2] {
    LENS.map(|n| {
        (0..n)
            .map(|i| ((i * 7 + t * 3) as f64 * 0.37).sin())
            .collect()
    })
}

/// Runs epochs `range` (step, then schedule step); returns each epoch's two rates.
fn run(
    opt: &mut Optimizer<f64>,
    params: &mut [Vec<f64>; 2],
    range: std::ops::Range<usize>,
) -> Vec<[u64; 2]> {
    let mut lrs = Vec::new();
    for t in range {
        let [g0, g1] = grads(t);
        let [p0, p1] = params;
        opt.step(&mut [(&mut p0[..], &g0[..]), (&mut p1[..], &g1[..])])
            .unwrap();
        opt.schedule_step().unwrap();
        lrs.push([0, 1].map(|g| opt.lr(GroupId(g)).unwrap().to_bits()));
    }
    lrs
}

fn fresh_params() -> [Vec<f64>; 2] {
    LENS.map(|n| vec![1.0; n])
}

#[test]
fn a_checkpoint_at_any_epoch_continues_as_never_stopping() {
    let mut params = fresh_params();
    let mut opt = optimizer();
    let straight = run(&mut opt, &mut params, 0..EPOCHS);
    // The schedules do change the rate (a constant sequence would prove nothing).
    let distinct: std::collections::HashSet<_> = straight.iter().map(|l| l[0]).collect();
    assert!(distinct.len() > 8, "{distinct:?}");
    for stop in 0..EPOCHS {
        let mut p = fresh_params();
        let mut first = optimizer();
        let mut lrs = run(&mut first, &mut p, 0..stop);
        let bytes = first
            .checkpoint_with_params(&[&p[0][..], &p[1][..]])
            .unwrap();
        let state = first.schedule_state(GroupId(0)).unwrap();
        drop(first);
        let mut restored = fresh_params().map(|v| v.iter().map(|_| 0.0).collect::<Vec<_>>());
        let mut second = optimizer();
        {
            let [r0, r1] = &mut restored;
            second
                .load_checkpoint_with_params(&bytes, &mut [&mut r0[..], &mut r1[..]])
                .unwrap();
        }
        assert_eq!(second.schedule_state(GroupId(0)).unwrap(), state);
        lrs.extend(run(&mut second, &mut restored, stop..EPOCHS));
        assert_eq!(lrs, straight, "stopped after {stop} epochs");
        assert_eq!(restored, params, "stopped after {stop} epochs");
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes the container's CRC.
fn reseal(b: &mut [u8]) {
    let len = u64_at(b, 16) as usize;
    let c = gradstep::checkpoint::crc32(&b[..len - 4]);
    b[len - 4..len].copy_from_slice(&c.to_le_bytes());
}

/// Group 0's record offset (24) and its member block's offset: after the 72 fixed
/// bytes and the padded hyperparameter record.
fn member_block(b: &[u8]) -> usize {
    let r = u64_at(b, 24 + 64) as usize;
    (24 + 72 + r + 7) & !7
}

/// The optimizer after 5 epochs (SequentialLR in its second member) and its checkpoint.
fn trained() -> (Optimizer<f64>, Vec<u8>) {
    let mut opt = optimizer();
    run(&mut opt, &mut fresh_params(), 0..5);
    let bytes = opt.checkpoint().unwrap();
    (opt, bytes)
}

#[test]
fn the_state_names_every_member() {
    let (opt, _) = trained();
    match opt.schedule_state(GroupId(0)).unwrap() {
        Some(ScheduleState::Composite {
            kind,
            last_epoch,
            members,
        }) => {
            assert_eq!((kind, last_epoch), (SEQUENTIAL_KIND, 5));
            let m: Vec<_> = members.iter().flatten().collect();
            assert_eq!(m.len(), 3);
            // The warmup ran to its end, the restarts member is at epoch 5 − 3 = 2,
            // the decay has not started.
            assert_eq!(m[1].progress.last_epoch, 2);
            assert_eq!(m[1].restarts.map(|r| r.0), Some(4.0));
            assert_eq!(m[2].progress.last_epoch, -1);
        }
        other => panic!("{other:?}"),
    }
    match opt.schedule_state(GroupId(1)).unwrap() {
        Some(ScheduleState::Composite { kind, members, .. }) => {
            assert_eq!(kind, CHAINED_KIND);
            assert_eq!(members.iter().flatten().count(), 2);
        }
        other => panic!("{other:?}"),
    }
}

/// Finding 6 for composites: the SequentialLR's own epoch and its last member's set to
/// about 2⁶² load at once (a replay would never end) and step on from there.
#[test]
fn an_epoch_of_two_to_the_62_loads_into_a_composite() {
    let (_, good) = trained();
    let mut b = good.clone();
    let members = member_block(&b);
    assert_eq!(u64_at(&b, members), 3, "member count");
    assert_eq!(u64_at(&b, 24 + 24), 5, "the SequentialLR's epoch");
    put_u64(&mut b, 24 + 24, 1 << 62);
    // The third member's last_epoch (word 2 of its record).
    put_u64(&mut b, members + 8 + 2 * 56 + 16, (1 << 62) - 9);
    reseal(&mut b);
    let mut far = optimizer();
    far.load_checkpoint(&b).unwrap();
    match far.schedule_state(GroupId(0)).unwrap() {
        Some(ScheduleState::Composite {
            last_epoch,
            members,
            ..
        }) => {
            assert_eq!(last_epoch, 1 << 62);
            assert_eq!(members[2].unwrap().progress.last_epoch, (1 << 62) - 9);
        }
        other => panic!("{other:?}"),
    }
    // Past the last milestone the ExponentialLR member decays the rate by 0.8.
    let before = far.lr(GroupId(0)).unwrap();
    far.schedule_step().unwrap();
    assert_eq!(far.lr(GroupId(0)).unwrap(), before * 0.8);
}

/// Forged member records: each refused, the optimizer unchanged.
#[test]
fn forged_members_are_refused_with_nothing_changed() {
    let (_, good) = trained();
    let members = member_block(&good);
    let m = |i: usize, word: usize| members + 8 + i * 56 + word * 8;
    let cases: Vec<(usize, u64)> = vec![
        (members, 2),                       // member count differs
        (members, 5),                       // too many members
        (m(0, 0), 7),                       // kind of another schedule
        (m(0, 0), 16),                      // plateau as a member
        (m(1, 1), 0),                       // warm restarts without (T_i, T_cur)
        (m(0, 1), 1),                       // (T_i, T_cur) on a LinearLR
        (m(1, 1), 3),                       // unknown member flags
        (m(2, 2), (-2i64) as u64),          // before -1
        (m(0, 2), i64::MIN as u64),         // negative epoch
        (m(1, 4), f64::NAN.to_bits()),      // NaN base_lr
        (m(1, 4), 0.125f64.to_bits()),      // base_lr other than initial_lr
        (m(1, 5), f64::INFINITY.to_bits()), // infinite T_i
        (m(1, 6), 9.0f64.to_bits()),        // T_cur ≥ T_i
        (m(0, 5), 1),                       // an unused word set
        (24 + 24, (-1i64) as u64),          // the SequentialLR not started
        (24 + 16, u64::from(CHAINED_KIND)), // composite of another kind
        (24 + 16, 3),                       // a single schedule's kind
    ];
    for (at, v) in cases {
        let mut b = good.clone();
        put_u64(&mut b, at, v);
        reseal(&mut b);
        let mut opt = optimizer();
        run(&mut opt, &mut fresh_params(), 0..2);
        let before = opt.checkpoint().unwrap();
        let r = opt.load_checkpoint(&b);
        assert!(r.is_err(), "offset {at} = {v:#x} was accepted");
        assert_eq!(opt.checkpoint().unwrap(), before, "offset {at}: changed");
    }
    // A receiver with a SequentialLR of 2 members, or a single schedule, does not fit.
    let mut two =
        Optimizer::<f64>::new(AnyRule::parse("sgd:lr=0.5,momentum=0.9").unwrap()).unwrap();
    two.add_group(AnyRule::parse("sgd:lr=0.25,momentum=0.9").unwrap())
        .unwrap();
    two.add_tensor(GroupId(0), LENS[0]).unwrap();
    two.add_tensor(GroupId(1), LENS[1]).unwrap();
    let s = SequentialLr::new(
        [
            Member::from(StepLr::new(2, 0.5)),
            StepLr::new(3, 0.5).into(),
        ],
        &[3],
    );
    two.attach_schedule(GroupId(0), s.unwrap()).unwrap();
    two.attach_schedule(GroupId(1), StepLr::new(3, 0.5))
        .unwrap();
    assert!(matches!(
        two.load_checkpoint(&good),
        Err(Error::Mismatch { .. })
    ));
}
