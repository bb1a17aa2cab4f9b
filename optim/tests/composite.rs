//! Composite schedules (torch's `SequentialLR` and `ChainedScheduler`) attached to param
//! groups: a checkpoint taken at any epoch restores the same learning-rate sequence as
//! never stopping, positions are restored directly (an epoch of 2⁶² loads), and forged
//! member positions are refused with the optimizer unchanged.

use gradstep::rules::AnyRule;
use gradstep::schedules::{
    ChainedScheduler, ConstantLr, CosineAnnealingWarmRestarts, ExponentialLr, LinearLr, OneCycleLr,
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

/// A composite with OneCycleLR after its first member: torch's OneCycleLR constructor
/// sets the group's `initial_lr` to `max_lr/div_factor`, so the members before it keep
/// the `base_lr` they found and those after it take OneCycleLR's. An optimizer could
/// not load the checkpoint it had just saved (every member's `base_lr` was required to
/// be the group's final `initial_lr`: "invalid schedule base_lr"; a hostile C caller's
/// report, session 22). Each shape, saved at several epochs, continues as never
/// stopping.
/// Shape `i` of [`composites_with_one_cycle_after_the_first_member_round_trip`] (five):
/// its name and a fresh optimizer under it.
fn one_cycle_shape(i: usize) -> (&'static str, Optimizer<f64>) {
    let one_cycle = || Member::from(OneCycleLr::new(0.1, 40));
    let exponential = || Member::from(ExponentialLr::new(0.9));
    let step = || Member::from(StepLr::new(3, 0.5));
    let mut opt = Optimizer::new(AnyRule::parse("sgd:lr=0.01,momentum=0.9").unwrap()).unwrap();
    opt.add_tensor(GroupId(0), 3).unwrap();
    let chained = |members| ChainedScheduler::new(members).unwrap();
    let name = match i {
        0 => {
            opt.attach_schedule(GroupId(0), chained([exponential(), one_cycle()]))
                .unwrap();
            "chained [exponential, one cycle]"
        }
        1 => {
            let c = ChainedScheduler::new([exponential(), one_cycle(), step()]).unwrap();
            opt.attach_schedule(GroupId(0), c).unwrap();
            "chained [exponential, one cycle, step]"
        }
        2 => {
            opt.attach_schedule(GroupId(0), chained([one_cycle(), exponential()]))
                .unwrap();
            "chained [one cycle, exponential]"
        }
        3 => {
            let s = SequentialLr::new([exponential(), one_cycle()], &[5]).unwrap();
            opt.attach_schedule(GroupId(0), s).unwrap();
            "sequential [exponential, one cycle] at 5"
        }
        _ => {
            let s = SequentialLr::new([step(), one_cycle(), exponential()], &[4, 9]).unwrap();
            opt.attach_schedule(GroupId(0), s).unwrap();
            "sequential [step, one cycle, exponential] at 4, 9"
        }
    };
    (name, opt)
}

/// A composite with OneCycleLR after its first member: torch's OneCycleLR constructor
/// sets the group's `initial_lr` to `max_lr/div_factor`, so the members before it keep
/// the `base_lr` they found and those after it take OneCycleLR's. An optimizer could
/// not load the checkpoint it had just saved (every member's `base_lr` was required to
/// be the group's final `initial_lr`: "invalid schedule base_lr"; a hostile C caller's
/// report, session 22). Each shape, saved at several epochs, continues as never
/// stopping.
#[test]
fn composites_with_one_cycle_after_the_first_member_round_trip() {
    let run = |opt: &mut Optimizer<f64>, p: &mut Vec<f64>, epochs: std::ops::Range<usize>| {
        let mut lrs = Vec::new();
        for t in epochs {
            let g: Vec<f64> = (0..3).map(|i| ((i + t) as f64 * 0.3).sin()).collect();
            opt.step(&mut [(&mut p[..], &g[..])]).unwrap();
            opt.schedule_step().unwrap();
            lrs.push(opt.lr(GroupId(0)).unwrap().to_bits());
        }
        lrs
    };
    for shape in 0..5 {
        let (name, mut opt) = one_cycle_shape(shape);
        let mut p = vec![1.0; 3];
        let straight = run(&mut opt, &mut p, 0..14);
        for stop in [0, 3, 7, 12] {
            let mut q = vec![1.0; 3];
            let mut first = one_cycle_shape(shape).1;
            let mut lrs = run(&mut first, &mut q, 0..stop);
            let bytes = first.checkpoint_with_params(&[&q[..]]).unwrap();
            let mut second = one_cycle_shape(shape).1;
            let mut r = vec![0.0; 3];
            second
                .load_checkpoint_with_params(&bytes, &mut [&mut r[..]])
                .unwrap_or_else(|e| panic!("{name}, saved after {stop}: {e}"));
            lrs.extend(run(&mut second, &mut r, stop..14));
            assert_eq!(lrs, straight, "{name}, saved after {stop}");
            assert_eq!(r, p, "{name}, saved after {stop}");
        }
    }
}
