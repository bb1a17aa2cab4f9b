//! Schedules attached to groups equal the kernel driven with the schedule by hand.

mod common;

use common::{bits, data, kernel_run};
use gradstep::rules::AnyRule;
use gradstep::schedules::{
    AnyScheduler, CosineAnnealingWarmRestarts, CyclicLr, Group, LambdaLr, OneCycleLr, PlateauMode,
    ReduceLrOnPlateau, Scheduler, StepLr,
};
use gradstep_optim::{Error, GroupId, Optimizer, ScheduleState};

const N: usize = 9;
const STEPS: u64 = 12;

fn grad(t: u64) -> Vec<f64> {
    data(500 + t, N)
}

fn metric(t: u64) -> f64 {
    // Improves, then stalls: ReduceLROnPlateau must cut the rate.
    if t < 3 { 1.0 - 0.1 * t as f64 } else { 0.75 }
}

/// The rules a hand-driven schedule gives at each step: torch's loop (step, then
/// `scheduler.step()`), writing the group's lr and momentum into the rule.
fn by_hand(
    rule: AnyRule,
    mut schedule: Option<AnyScheduler>,
    plateau: Option<ReduceLrOnPlateau>,
) -> Vec<AnyRule> {
    let mut group = Group::new(rule.lr());
    if let Some(s) = &mut schedule {
        s.start(&mut group).unwrap();
    }
    let mut plateau = plateau;
    let mut rules = Vec::new();
    for t in 0..STEPS {
        let mut r = rule;
        r.set_lr(group.lr);
        if let Some(m) = group.momentum {
            r.set_momentum(m).unwrap();
        }
        rules.push(r);
        if let Some(s) = &mut schedule {
            s.step(&mut group).unwrap();
        }
        if let Some(p) = &mut plateau {
            p.step(&mut group, metric(t)).unwrap();
        }
    }
    rules
}

/// Group 0 unscheduled, group 1 with the schedule; each group's tensor equals the
/// kernel with the hand-driven rules.
fn check(spec: &str, schedule: Option<AnyScheduler>, plateau: Option<ReduceLrOnPlateau>) {
    let rule = AnyRule::parse(spec).unwrap();
    let mut opt = Optimizer::<f64>::new(rule).unwrap();
    let g = opt.add_group(rule).unwrap();
    opt.add_tensor(GroupId(0), N).unwrap();
    opt.add_tensor(g, N).unwrap();
    if let Some(s) = schedule.clone() {
        opt.attach_schedule(g, s).unwrap();
    }
    if let Some(p) = plateau {
        opt.attach_plateau(g, p).unwrap();
    }
    let (mut a, mut b) = (data::<f64>(1, N), data::<f64>(1, N));
    let initial = a.clone();
    let mut lrs = Vec::new();
    for t in 0..STEPS {
        let gr = grad(t);
        lrs.push(opt.lr(g).unwrap());
        opt.step(&mut [(&mut a, &gr), (&mut b, &gr)]).unwrap();
        opt.schedule_step().unwrap();
        opt.schedule_step_metric(metric(t)).unwrap();
    }
    let rules = by_hand(rule, schedule, plateau);
    let hand_lrs: Vec<f64> = rules.iter().map(AnyRule::lr).collect();
    assert_eq!(lrs, hand_lrs, "{spec}");
    assert!(
        hand_lrs.windows(2).any(|w| w[0] != w[1]),
        "{spec}: the schedule changes the rate"
    );
    let mut expect = initial.clone();
    kernel_run(&mut |t| rules[t as usize], &mut expect, &grad, STEPS);
    assert_eq!(bits(&b), bits(&expect), "{spec}: scheduled group");
    let mut plain = initial;
    kernel_run(&mut |_| rule, &mut plain, &grad, STEPS);
    assert_eq!(bits(&a), bits(&plain), "{spec}: unscheduled group");
    assert_ne!(bits(&a), bits(&b));
}

#[test]
fn step_lr_on_adam() {
    check("adam:lr=0.01", Some(StepLr::new(3, 0.5).into()), None);
}

#[test]
fn cyclic_lr_cycles_sgd_momentum() {
    let mut c = CyclicLr::new(0.01, 0.1);
    c.step_size_up = 4;
    check("sgd:lr=0.01,momentum=0.9", Some(c.into()), None);
}

#[test]
fn one_cycle_cycles_adam_beta1() {
    check("adamw", Some(OneCycleLr::new(0.05, STEPS + 1).into()), None);
}

#[test]
fn warm_restarts_on_rmsprop() {
    check(
        "rmsprop:lr=0.01",
        Some(CosineAnnealingWarmRestarts::new(3, 2, 0.001).into()),
        None,
    );
}

#[test]
fn lambda_on_nadam() {
    let f: fn(u64) -> f64 = |t| 1.0 / (1.0 + t as f64);
    check("nadam", Some(LambdaLr::new(f).into()), None);
}

#[test]
fn plateau_on_sgd() {
    let mut p = ReduceLrOnPlateau::new(PlateauMode::Min);
    p.patience = 2;
    check("sgd:lr=0.1", None, Some(p));
}

/// A cycling schedule on a rule without momentum is refused at attach, and the
/// group is unchanged.
#[test]
fn cycling_momentum_needs_a_momentum() {
    let mut opt = Optimizer::<f32>::new(AnyRule::parse("adagrad:lr=0.5").unwrap()).unwrap();
    let before = opt.checkpoint().unwrap();
    assert_eq!(
        opt.attach_schedule(GroupId(0), CyclicLr::new(0.01, 0.1)),
        Err(Error::NoMomentum { group: GroupId(0) })
    );
    assert!(matches!(
        opt.attach_schedule(GroupId(0), StepLr::new(0, 0.5)),
        Err(Error::Kernel(_))
    ));
    assert_eq!(opt.checkpoint().unwrap(), before);
    assert_eq!(opt.lr(GroupId(0)), Ok(0.5));
    assert_eq!(opt.schedule_state(GroupId(0)), Ok(None));
    // Without cycling, fine.
    let mut c = CyclicLr::new(0.01, 0.1);
    c.cycle_momentum = false;
    opt.attach_schedule(GroupId(0), c).unwrap();
    assert_eq!(opt.lr(GroupId(0)), Ok(0.01));
    assert_eq!(opt.initial_lr(GroupId(0)), Ok(Some(0.01)));
}

/// One group's schedule refusing (OneCycleLR past its end) changes no group.
#[test]
fn schedule_steps_are_all_or_nothing() {
    let rule = AnyRule::parse("adam").unwrap();
    let mut opt = Optimizer::<f64>::new(rule).unwrap();
    let g = opt.add_group(rule).unwrap();
    opt.attach_schedule(GroupId(0), StepLr::new(1, 0.5))
        .unwrap();
    opt.attach_schedule(g, OneCycleLr::new(0.1, 2)).unwrap();
    opt.schedule_step().unwrap();
    opt.schedule_step().unwrap();
    let before = opt.checkpoint().unwrap();
    let lr0 = opt.lr(GroupId(0)).unwrap();
    assert_eq!(
        opt.schedule_step(),
        Err(Error::Kernel(gradstep::Error::ScheduleFinished {
            total_steps: 2
        }))
    );
    assert_eq!(opt.lr(GroupId(0)), Ok(lr0));
    assert_eq!(opt.checkpoint().unwrap(), before);
    // The metric step touches only ReduceLROnPlateau groups: none here.
    opt.schedule_step_metric(1.0).unwrap();
    assert_eq!(opt.checkpoint().unwrap(), before);
    assert!(matches!(
        opt.schedule_state(GroupId(0)),
        Ok(Some(ScheduleState::Epochs { kind: 3, .. }))
    ));
    opt.detach_schedule(g).unwrap();
    opt.schedule_step().unwrap();
    assert_eq!(opt.lr(GroupId(0)), Ok(lr0 * 0.5));
}

/// SGD's momentum buffer exists only with momentum ≠ 0, and a registered tensor's
/// state was allocated for its group's rule: a change of momentum between zero and
/// non-zero on a group with tensors would leave every later step refused. It is
/// refused where it is made (setter, schedule attach, schedule step, loaded state),
/// with the optimizer unchanged and still stepping.
#[test]
fn momentum_that_would_reshape_the_state_is_refused() {
    let reshape = |e: Result<(), Error>| {
        assert!(
            matches!(
                e,
                Err(Error::StateSlots {
                    group: GroupId(0),
                    ..
                })
            ),
            "{e:?}"
        )
    };
    let sgd = |spec: &str| {
        let mut opt = Optimizer::<f32>::new(AnyRule::parse(spec).unwrap()).unwrap();
        opt.add_tensor(GroupId(0), 3).unwrap();
        opt
    };
    let (mut p, g) = (vec![1.0f32; 3], vec![0.25f32; 3]);
    for (spec, momentum) in [("sgd:lr=0.1", 0.9), ("sgd:lr=0.1,momentum=0.9", 0.0)] {
        let mut opt = sgd(spec);
        opt.step(&mut [(&mut p, &g)]).unwrap();
        let before = opt.checkpoint().unwrap();
        reshape(opt.set_momentum(GroupId(0), momentum));
        let mut rule = opt.rule(GroupId(0)).unwrap();
        rule.set_momentum(momentum).unwrap();
        reshape(opt.set_rule(GroupId(0), rule));
        // A cycling schedule sets the momentum when attached (torch's CyclicLR does).
        let mut c = CyclicLr::new(0.01, 0.1);
        (c.base_momentum, c.max_momentum) = (momentum, momentum);
        reshape(opt.attach_schedule(GroupId(0), c));
        // A saved state of the other momentum does not fit these tensors.
        let other = sgd(if momentum == 0.0 {
            "sgd:lr=0.1"
        } else {
            "sgd:lr=0.1,momentum=0.9"
        });
        reshape(opt.load_state_dict(&other.state_dict()));
        assert_eq!(opt.checkpoint().unwrap(), before);
        opt.step(&mut [(&mut p, &g)]).unwrap();
        // A group without tensors may change: its tensors are allocated for it.
        let empty = opt.add_group(AnyRule::parse(spec).unwrap()).unwrap();
        opt.set_momentum(empty, momentum).unwrap();
    }

    // A schedule whose momentum reaches zero during its cycle: that step is refused
    // (all or nothing), and the optimizer keeps stepping with the previous values.
    let mut opt = sgd("sgd:lr=0.1,momentum=0.9");
    let mut c = CyclicLr::new(0.01, 0.1);
    (c.step_size_up, c.base_momentum, c.max_momentum) = (2, 0.0, 0.9);
    let attached = opt.attach_schedule(GroupId(0), c);
    let mut refused = 0;
    for _ in 0..6 {
        let lr = opt.lr(GroupId(0)).unwrap();
        match opt.schedule_step() {
            Ok(()) => assert_ne!(opt.momentum(GroupId(0)), Ok(Some(0.0))),
            Err(e) => {
                reshape(Err(e));
                assert_eq!(opt.lr(GroupId(0)), Ok(lr));
                refused += 1;
            }
        }
        opt.step(&mut [(&mut p, &g)]).unwrap();
    }
    assert!(attached.is_err() || refused > 0, "{attached:?}");
}
