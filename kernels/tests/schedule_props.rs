//! Property tests of the learning-rate schedules: valid configurations never produce a
//! negative or non-finite rate; invalid ones are refused with a typed error and leave
//! the group as it was; the closed forms agree with torch's recursions; and the seeds'
//! cyclic schedule is CyclicLR's triangular mode.

use gradstep::Error;
use gradstep::schedules::{
    Anneal, AnyScheduler, ChainedScheduler, Closed, ClosedForm, ConstantLr, CosineAnnealingLr,
    CosineAnnealingWarmRestarts, CyclicLr, CyclicMode, Decay, ExponentialLr, Group, LambdaLr,
    LinearLr, MultiStepLr, MultiplicativeLr, Noam, OneCycleLr, PiecewiseConstant, PlateauMode,
    PolynomialLr, ReduceLrOnPlateau, Scheduler, SequentialLr, StepLr, ThresholdMode, WarmupDecay,
};
use proptest::prelude::*;

fn decay_095(t: u64) -> f64 {
    libm::pow(0.95, t as f64)
}
fn wobble(t: u64) -> f64 {
    if t.is_multiple_of(3) { 1.1 } else { 0.93 }
}

fn factor() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64]
}
fn positive_factor() -> impl Strategy<Value = f64> {
    prop_oneof![Just(1.0), 1e-6..=1.0f64]
}
fn rate() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 1e-8..10.0f64]
}
fn period() -> impl Strategy<Value = u64> {
    prop_oneof![Just(1u64), 1..50u64, 50..100_000u64]
}

/// Every built-in schedule with a valid random configuration.
fn any_schedule() -> impl Strategy<Value = AnyScheduler> {
    let step = (period(), factor()).prop_map(|(s, g)| StepLr::new(s, g).into());
    let multistep = (prop::collection::vec(0..200u64, 0..16), factor()).prop_map(|(mut m, g)| {
        m.sort_unstable();
        MultiStepLr::new(&m, g).unwrap().into()
    });
    let constant = (positive_factor(), period()).prop_map(|(factor, total_iters)| {
        ConstantLr {
            factor,
            total_iters,
            ..ConstantLr::default()
        }
        .into()
    });
    let linear = (positive_factor(), factor(), period()).prop_map(|(s, e, t)| {
        LinearLr {
            start_factor: s,
            end_factor: e,
            total_iters: t,
            ..LinearLr::default()
        }
        .into()
    });
    let exponential = factor().prop_map(|g| ExponentialLr::new(g).into());
    let polynomial = (period(), 0.0..5.0f64).prop_map(|(t, p)| {
        PolynomialLr {
            total_iters: t,
            power: p,
            ..PolynomialLr::default()
        }
        .into()
    });
    let cosine = (period(), rate()).prop_map(|(t, m)| CosineAnnealingLr::new(t, m).into());
    let restarts = (period(), 1..4u64, rate())
        .prop_map(|(t, m, e)| CosineAnnealingWarmRestarts::new(t, m, e).into());
    let cyclic = (
        rate(),
        rate(),
        period(),
        prop::option::of(0..60u64),
        0..3usize,
        positive_factor(),
        any::<bool>(),
    )
        .prop_map(|(base, max, up, down, mode, gamma, cycle)| {
            let mut s = CyclicLr::new(base, max);
            s.step_size_up = up;
            s.step_size_down = down;
            s.mode = [
                CyclicMode::Triangular,
                CyclicMode::Triangular2,
                CyclicMode::ExpRange,
            ][mode];
            s.gamma = gamma;
            s.cycle_momentum = cycle;
            s.into()
        });
    let one_cycle = (
        rate(),
        2..400u64,
        0.0..1.0f64,
        any::<bool>(),
        any::<bool>(),
        1.0..100.0f64,
    )
        .prop_filter_map(
            "a zero-length warm-up phase",
            |(max, total, pct, linear, three, div)| {
                let mut s = OneCycleLr::new(max, total);
                s.pct_start = pct;
                s.anneal_strategy = if linear { Anneal::Linear } else { Anneal::Cos };
                s.three_phase = three;
                s.div_factor = div;
                (pct * total as f64 != 1.0).then(|| s.into())
            },
        );
    let warmup = (
        0..50u64,
        factor(),
        1..300u64,
        factor(),
        0..3usize,
        0.1..3.0f64,
        any::<bool>(),
    )
        .prop_map(|(w, start, d, end, kind, x, stair)| {
            let decay = match kind {
                0 => Decay::Cosine {
                    decay_steps: d,
                    end_factor: end,
                    exponent: x,
                },
                1 => Decay::Linear {
                    decay_steps: d,
                    end_factor: end,
                },
                _ => Decay::Exponential {
                    transition_steps: d,
                    rate: x.min(1.0),
                    staircase: stair,
                    end_factor: stair.then_some(end),
                },
            };
            WarmupDecay {
                warmup_steps: w,
                start_factor: start,
                decay,
            }
            .into()
        });
    let noam = (1..4096u64, 1..5000u64, rate()).prop_map(|(d, w, f)| {
        Noam {
            d_model: d,
            warmup_steps: w,
            factor: f,
        }
        .into()
    });
    let piecewise = prop::collection::vec((1..20u64, factor()), 0..8).prop_map(|steps| {
        let mut at = 0;
        let (bounds, scales): (Vec<u64>, Vec<f64>) = steps
            .into_iter()
            .map(|(gap, s)| {
                at += gap;
                (at, s)
            })
            .unzip();
        PiecewiseConstant::new(&bounds, &scales).unwrap().into()
    });
    let lambda = Just(LambdaLr::new(decay_095 as fn(u64) -> f64).into());
    let multiplicative = Just(MultiplicativeLr::new(wobble as fn(u64) -> f64).into());
    prop_oneof![
        step,
        multistep,
        constant,
        linear,
        exponential,
        polynomial,
        cosine,
        restarts,
        cyclic,
        one_cycle,
        warmup,
        noam,
        piecewise,
        lambda,
        multiplicative
    ]
}

fn sane(group: &Group) -> bool {
    group.lr.is_finite() && group.lr >= 0.0 && group.momentum.is_none_or(f64::is_finite)
}

/// Runs up to `steps` steps; OneCycleLR ends with `ScheduleFinished`.
fn drive<S: Scheduler>(s: &mut S, group: &mut Group, steps: usize) -> Result<(), TestCaseError> {
    s.start(group)
        .map_err(|e| TestCaseError::fail(format!("start: {e}")))?;
    prop_assert!(sane(group), "epoch 0: {group:?}");
    for t in 1..=steps {
        let before = *group;
        match s.step(group) {
            Ok(()) => prop_assert!(sane(group), "epoch {t}: {group:?}"),
            Err(Error::ScheduleFinished { .. }) => {
                prop_assert_eq!(*group, before);
                break;
            }
            // A user function (MultiplicativeLR's wobble) may push the rate out of range.
            Err(Error::InvalidHyperparameter { name: "lr", .. }) => {
                prop_assert_eq!(*group, before);
                break;
            }
            Err(e) => return Err(TestCaseError::fail(format!("epoch {t}: {e}"))),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_schedules_give_finite_non_negative_rates(
        s in any_schedule(),
        lr in rate(),
        steps in 0..600usize,
    ) {
        let mut s = s;
        let mut group = Group::new(lr);
        drive(&mut s, &mut group, steps)?;
    }

    #[test]
    fn composites_give_finite_non_negative_rates(
        a in any_schedule(),
        b in any_schedule(),
        c in any_schedule(),
        m1 in 0..40u64,
        gap in 1..40u64,
        lr in rate(),
    ) {
        let mut seq = SequentialLr::new([a.clone(), b.clone(), c.clone()], &[m1, m1 + gap]).unwrap();
        drive(&mut seq, &mut Group::new(lr), 120)?;
        let mut chain = ChainedScheduler::new([a, b, c]).unwrap();
        drive(&mut chain, &mut Group::new(lr), 120)?;
    }

    #[test]
    fn plateau_never_raises_the_rate_or_goes_below_min_lr(
        metrics in prop::collection::vec(prop_oneof![Just(f64::NAN), -10.0..10.0f64], 0..200),
        factor in 0.0..0.999f64,
        patience in 0..5u64,
        cooldown in 0..4u64,
        threshold in 0.0..0.1f64,
        abs in any::<bool>(),
        max in any::<bool>(),
        min_lr in 0.0..0.01f64,
    ) {
        let mut s = ReduceLrOnPlateau::new(if max { PlateauMode::Max } else { PlateauMode::Min });
        s.factor = factor;
        s.patience = patience;
        s.cooldown = cooldown;
        s.threshold = threshold;
        s.threshold_mode = if abs { ThresholdMode::Abs } else { ThresholdMode::Rel };
        s.min_lr = min_lr;
        let mut group = Group::new(0.1);
        let mut last = group.lr;
        for m in metrics {
            let reduced = s.step(&mut group, m).unwrap();
            prop_assert!(group.lr <= last);
            prop_assert_eq!(reduced, group.lr < last);
            prop_assert!(group.lr >= min_lr.min(0.1));
            last = group.lr;
        }
    }

    /// torch's recursions and closed forms trace the same curve when run alone.
    #[test]
    fn chainable_forms_match_closed_forms(
        which in 0..7usize,
        p in period(),
        f in positive_factor(),
        lr in 1e-6..10.0f64,
    ) {
        let p = p.min(500);
        let schedules: [AnyScheduler; 7] = [
            StepLr::new(p, f).into(),
            MultiStepLr::new(&[p, p + 3, 2 * p + 3], f).unwrap().into(),
            ConstantLr { factor: f, total_iters: p, ..ConstantLr::default() }.into(),
            LinearLr { start_factor: f, end_factor: 1.0 - f / 2.0, total_iters: p, ..LinearLr::default() }.into(),
            ExponentialLr::new(f).into(),
            PolynomialLr { total_iters: p, power: 1.0 + f, ..PolynomialLr::default() }.into(),
            CosineAnnealingLr::new(p, f * lr / 3.0).into(),
        ];
        let mut s = schedules[which].clone();
        let form: &dyn ClosedForm = match &s {
            AnyScheduler::Step(x) => x,
            AnyScheduler::MultiStep(x) => x,
            AnyScheduler::Constant(x) => x,
            AnyScheduler::Linear(x) => x,
            AnyScheduler::Exponential(x) => x,
            AnyScheduler::Polynomial(x) => x,
            AnyScheduler::CosineAnnealing(x) => x,
            _ => unreachable!(),
        };
        let expected: Vec<f64> = (0..=600).map(|t| form.lr_at(lr, t)).collect();
        let mut group = Group::new(lr);
        s.start(&mut group).unwrap();
        for (t, &want) in expected.iter().enumerate() {
            if t > 0 {
                s.step(&mut group).unwrap();
            }
            // Relative to the base rate: near a zero of the schedule the recursion's
            // rounding is relative to the rates it came from.
            prop_assert!(
                (group.lr - want).abs() <= 1e-9 * lr,
                "epoch {t}: chainable {:e}, closed {want:e}", group.lr
            );
        }
    }
}

/// Each invalid configuration is refused by `start` with the named error, and the
/// group is untouched.
#[test]
fn invalid_configurations_are_refused() {
    fn refused<S: Scheduler>(mut s: S, name: &str) {
        let mut group = Group::new(0.1);
        let before = group;
        match s.start(&mut group) {
            Err(Error::InvalidHyperparameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: expected an error, got {other:?}"),
        }
        assert_eq!(group, before, "{name}: group changed");
    }
    refused(StepLr::new(0, 0.1), "step_size");
    refused(StepLr::new(3, -0.1), "gamma");
    refused(StepLr::new(3, f64::NAN), "gamma");
    refused(ExponentialLr::new(f64::INFINITY), "gamma");
    refused(
        ConstantLr {
            factor: 0.0,
            ..ConstantLr::default()
        },
        "factor",
    );
    refused(
        ConstantLr {
            factor: 1.5,
            ..ConstantLr::default()
        },
        "factor",
    );
    refused(
        ConstantLr {
            total_iters: 0,
            ..ConstantLr::default()
        },
        "total_iters",
    );
    refused(
        LinearLr {
            start_factor: 0.0,
            ..LinearLr::default()
        },
        "start_factor",
    );
    refused(
        LinearLr {
            end_factor: -0.5,
            ..LinearLr::default()
        },
        "end_factor",
    );
    refused(
        LinearLr {
            total_iters: 0,
            ..LinearLr::default()
        },
        "total_iters",
    );
    refused(
        PolynomialLr {
            total_iters: 0,
            ..PolynomialLr::default()
        },
        "total_iters",
    );
    refused(
        PolynomialLr {
            power: -1.0,
            ..PolynomialLr::default()
        },
        "power",
    );
    refused(CosineAnnealingLr::new(0, 0.0), "t_max");
    refused(CosineAnnealingLr::new(10, -1e-3), "eta_min");
    refused(CosineAnnealingWarmRestarts::new(0, 1, 0.0), "t_0");
    refused(CosineAnnealingWarmRestarts::new(5, 0, 0.0), "t_mult");
    let mut c = CyclicLr::new(0.01, 0.1);
    c.step_size_up = 0;
    refused(c, "step_size_up");
    refused(CyclicLr::new(-0.01, 0.1), "base_lr");
    let mut c = CyclicLr::new(0.01, 0.1);
    c.mode = CyclicMode::ExpRange;
    c.gamma = 1.5;
    refused(c, "gamma");
    refused(OneCycleLr::new(0.1, 0), "total_steps");
    refused(
        OneCycleLr {
            pct_start: 1.5,
            ..OneCycleLr::new(0.1, 100)
        },
        "pct_start",
    );
    refused(
        OneCycleLr {
            pct_start: 0.1,
            ..OneCycleLr::new(0.1, 10)
        },
        "pct_start",
    );
    refused(
        OneCycleLr {
            div_factor: 0.0,
            ..OneCycleLr::new(0.1, 100)
        },
        "div_factor",
    );
    refused(Closed::new(WarmupDecay::cosine(5, 0)), "decay_steps");
    refused(
        Closed::new(Noam {
            d_model: 0,
            warmup_steps: 10,
            factor: 1.0,
        }),
        "d_model",
    );

    // A negative or non-finite starting rate.
    for lr in [-0.1, f64::NAN, f64::INFINITY] {
        let mut group = Group::new(lr);
        let e = StepLr::new(3, 0.5).start(&mut group).unwrap_err();
        assert!(matches!(e, Error::InvalidHyperparameter { name: "lr", .. }));
    }

    // Lists: out of order, too long, mismatched.
    assert!(matches!(
        MultiStepLr::<16>::new(&[5, 3], 0.1),
        Err(Error::InvalidHyperparameter {
            name: "milestones",
            ..
        })
    ));
    assert!(matches!(
        MultiStepLr::<2>::new(&[1, 2, 3], 0.1),
        Err(Error::InvalidHyperparameter {
            name: "milestones",
            ..
        })
    ));
    assert!(matches!(
        PiecewiseConstant::<16>::new(&[5, 5], &[0.5, 0.5]),
        Err(Error::InvalidHyperparameter {
            name: "boundaries",
            ..
        })
    ));
    assert!(matches!(
        PiecewiseConstant::<16>::new(&[5], &[0.5, 0.5]),
        Err(Error::InvalidHyperparameter { name: "scales", .. })
    ));
    assert!(matches!(
        PiecewiseConstant::<16>::new(&[5], &[-0.5]),
        Err(Error::InvalidHyperparameter { name: "scales", .. })
    ));
    let two = || {
        [
            AnyScheduler::from(StepLr::new(2, 0.5)),
            ExponentialLr::new(0.9).into(),
        ]
    };
    assert!(matches!(
        SequentialLr::new(two(), &[]),
        Err(Error::InvalidHyperparameter {
            name: "milestones",
            ..
        })
    ));
    let three = [
        AnyScheduler::from(StepLr::new(2, 0.5)),
        ExponentialLr::new(0.9).into(),
        StepLr::new(1, 0.5).into(),
    ];
    assert!(matches!(
        SequentialLr::new(three, &[8, 4]),
        Err(Error::InvalidHyperparameter {
            name: "milestones",
            ..
        })
    ));
    assert!(ChainedScheduler::<AnyScheduler, 0>::new([]).is_err());

    let mut plateau = ReduceLrOnPlateau {
        factor: 1.0,
        ..ReduceLrOnPlateau::default()
    };
    let mut group = Group::new(0.1);
    assert!(plateau.step(&mut group, 1.0).is_err());
    assert_eq!(plateau.last_epoch, 0);
}

/// A user function that makes the rate negative or infinite is refused at that step,
/// leaving the group and the schedule where they were.
#[test]
fn user_functions_cannot_produce_bad_rates() {
    fn negative(t: u64) -> f64 {
        if t < 3 { 1.0 } else { -1.0 }
    }
    fn explode(_: u64) -> f64 {
        1e300
    }
    let mut s = LambdaLr::new(negative as fn(u64) -> f64);
    let mut group = Group::new(0.5);
    s.start(&mut group).unwrap();
    s.step(&mut group).unwrap();
    s.step(&mut group).unwrap();
    let (before, epoch) = (group, s.last_epoch());
    assert!(s.step(&mut group).is_err());
    assert_eq!((group, s.last_epoch()), (before, epoch));

    let mut s = MultiplicativeLr::new(explode as fn(u64) -> f64);
    let mut group = Group::new(0.5);
    s.start(&mut group).unwrap();
    s.step(&mut group).unwrap();
    assert_eq!(group.lr, 0.5e300);
    assert!(s.step(&mut group).is_err());
    assert_eq!(group.lr, 0.5e300);
}

/// OneCycleLR: `total_steps` steps are allowed (the last holds the final rate), one
/// more is `ScheduleFinished`, leaving everything as it was.
#[test]
fn one_cycle_ends_cleanly() {
    let mut s = OneCycleLr {
        anneal_strategy: Anneal::Linear,
        ..OneCycleLr::new(0.5, 40)
    };
    let mut group = Group::new(123.0);
    s.start(&mut group).unwrap();
    assert_eq!(group.lr, 0.02);
    assert_eq!(group.initial_lr, Some(0.02));
    assert_eq!(group.momentum, Some(0.95));
    for _ in 0..40 {
        s.step(&mut group).unwrap();
        assert!(group.lr > 0.0);
    }
    let end = group;
    assert_eq!(
        s.step(&mut group),
        Err(Error::ScheduleFinished { total_steps: 40 })
    );
    assert_eq!(group, end);
    assert_eq!(s.last_epoch(), 40);
}

/// The seeds' cyclic schedule, `lr = base + (max − base)·max(0, 1 − |t/s − 2c + 1|)`,
/// `c = ⌊1 + t/(2s)⌋`, is CyclicLR's triangular mode with `up = down = s`.
#[test]
fn seed_cyclic_schedule_is_cyclic_lr_triangular() {
    for (s, base, max) in [
        (1u64, 0.1, 1.0),
        (4, 0.001, 0.006),
        (5, 0.01, 0.1),
        (2000, 1e-4, 1e-2),
        (7, 0.0, 3.0),
    ] {
        let mut sched = CyclicLr::new(base, max);
        sched.step_size_up = s;
        sched.cycle_momentum = false;
        let mut group = Group::new(0.5);
        sched.start(&mut group).unwrap();
        for t in 0..(6 * s + 3) {
            if t > 0 {
                sched.step(&mut group).unwrap();
            }
            let (tf, sf) = (t as f64, s as f64);
            let cycle = (1.0 + tf / (2.0 * sf)).floor();
            let seed = base + (max - base) * (1.0 - (tf / sf - 2.0 * cycle + 1.0).abs()).max(0.0);
            // Two spellings of one formula: they may round differently in the last bit
            // or two, never more.
            let ulps = 4.0 * f64::EPSILON * max;
            assert!(
                (group.lr - seed).abs() <= ulps,
                "s = {s}, t = {t}: CyclicLR {:e}, seed {seed:e}",
                group.lr
            );
        }
    }
}

/// CosineAnnealingLR with a half period past ~2·10⁸ epochs: near the minimum torch's
/// ratio `(1 + cos(π·t/T))/(1 + cos(π·(t−1)/T))` has a denominator that rounds to 0
/// (torch raises ZeroDivisionError there). Every such step is the closed form instead;
/// before session 23 it was NaN, refused, and the schedule could not step again.
#[test]
fn cosine_with_a_huge_half_period_steps_through_its_minimum() {
    for t_max in [300_000_000u64, 400_000_000, 1 << 30, 1 << 40, 1 << 61] {
        for eta_min in [0.0, 1e-3] {
            let mut s = CosineAnnealingLr::new(t_max, eta_min);
            let mut g = Group::new(0.1);
            s.start(&mut g).unwrap();
            // Where stepping would be three epochs before T, at the closed form's rate.
            let from = t_max - 3;
            s.progress.last_epoch = from as i64;
            s.progress.step_count = from + 1;
            g.lr = s.lr_at(0.1, from);
            for k in 1..=8 {
                s.step(&mut g)
                    .unwrap_or_else(|e| panic!("T {t_max}, η_min {eta_min}, T−3+{k}: {e:?}"));
                assert!(
                    g.lr.is_finite() && g.lr >= eta_min && g.lr <= 0.1,
                    "T {t_max}, η_min {eta_min}, T−3+{k}: {}",
                    g.lr
                );
            }
        }
    }
}

fn nan_lambda(_: u64) -> f64 {
    f64::NAN
}

fn nan_scale(_: f64) -> f64 {
    f64::NAN
}

/// `start` refused by its initial step leaves the group and the schedule as they were,
/// as every other refused call does: for each kind of schedule (torch's base-class
/// ones, a closed form, warm restarts, the composites, `AnyScheduler`). Before session
/// 23 the attach half's writes stayed (`initial_lr`, CyclicLR's rate and momentum, the
/// schedule's progress).
#[test]
fn a_refused_start_changes_nothing() {
    fn check<S: Scheduler + std::fmt::Debug>(name: &str, mut s: S, lr: f64) {
        let mut g = Group::new(lr);
        let before = (format!("{s:?}"), g);
        assert!(s.start(&mut g).is_err(), "{name} started");
        assert_eq!((format!("{s:?}"), g), before, "{name}");
    }
    let lambda = LambdaLr::new(nan_lambda as fn(u64) -> f64);
    check("LambdaLR", lambda, 0.1);
    check("LambdaLR, any", AnyScheduler::from(lambda), 0.1);
    let mut cyclic = CyclicLr::new(0.5, 1.0);
    cyclic.mode = CyclicMode::Custom {
        scale_fn: nan_scale,
        scale_mode: gradstep::schedules::ScaleMode::Cycle,
    };
    check("CyclicLR", cyclic, 0.1);
    let warmup = WarmupDecay {
        warmup_steps: 10,
        start_factor: 1e308,
        decay: Decay::Linear {
            decay_steps: 5,
            end_factor: 0.0,
        },
    };
    check("WarmupDecay", Closed::new(warmup), 10.0);
    check("WarmupDecay, any", AnyScheduler::from(warmup), 10.0);
    let restarts = CosineAnnealingWarmRestarts::new(10, 1, 0.0);
    check("warm restarts at lr ∞", restarts, f64::INFINITY);
    let members = [AnyScheduler::from(StepLr::new(2, 0.5)), lambda.into()];
    check(
        "ChainedScheduler",
        ChainedScheduler::new(members).unwrap(),
        0.1,
    );
    let members = [AnyScheduler::from(lambda), StepLr::new(2, 0.5).into()];
    check(
        "SequentialLR",
        SequentialLr::new(members, &[3]).unwrap(),
        0.1,
    );
}

/// PiecewiseConstant's scales whose running product overflows (every step from the
/// second boundary on would be an infinite rate) are refused when built; before
/// session 23 they were accepted and each such step refused.
#[test]
fn piecewise_scales_whose_product_overflows_are_refused() {
    match PiecewiseConstant::<16>::new(&[2, 4], &[1e300, 1e300]) {
        Err(Error::InvalidHyperparameter { name, .. }) => assert_eq!(name, "scales"),
        other => panic!("{other:?}"),
    }
    let s = PiecewiseConstant::<16>::new(&[2, 4], &[1e300, 1e-300]).unwrap();
    let mut s = Closed::new(s);
    let mut g = Group::new(0.1);
    s.start(&mut g).unwrap();
    for _ in 0..5 {
        s.step(&mut g).unwrap();
    }
    assert!((g.lr - 0.1).abs() < 1e-15, "{}", g.lr);
}
