//! The deliberate differences from torch (README, "Deliberate differences from torch"):
//! each configuration that gradstep refuses and torch accepts. `differences.json`
//! (`tests/fixtures/torch/record_differences.py`) records what torch 2.15 did with each;
//! these tests check that the recording says torch accepted it (or failed only later, with
//! a `ZeroDivisionError`) and that gradstep refuses it with a typed error naming the field,
//! touching nothing.

use gradstep::Error;
use gradstep::rules::{AnyRule, FieldKind, RuleId, Value};
use gradstep::schedules::{
    AnyScheduler, ConstantLr, CosineAnnealingLr, CyclicLr, CyclicMode, ExponentialLr, Group,
    LinearLr, MultiStepLr, OneCycleLr, PolynomialLr, ReduceLrOnPlateau, Scheduler, StepLr,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Recording {
    generator: String,
    torch_version: String,
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    row: String,
    torch: String,
    outcome: String,
    at: Option<String>,
    error: Option<String>,
}

/// The recorded entries of a table row; at least one, and torch accepted every one
/// (`late`: or raised `ZeroDivisionError`).
fn torch_accepts(row: &str, late: bool) -> Vec<String> {
    let path = gradstep_tests::fixtures::dir().join("differences.json");
    let text = std::fs::read_to_string(&path).expect("reading differences.json");
    let rec: Recording = serde_json::from_str(&text).expect("parsing differences.json");
    assert!(rec.generator.ends_with("record_differences.py"));
    assert!(rec.torch_version.starts_with("2."));
    let entries: Vec<&Entry> = rec.entries.iter().filter(|e| e.row == row).collect();
    assert!(!entries.is_empty(), "no recording for row {row}");
    for e in &entries {
        let ok = e.outcome == "accepted"
            || late && e.outcome == "raises" && e.error.as_deref() == Some("ZeroDivisionError");
        assert!(
            ok,
            "{row}: torch {} {} ({:?} at {:?})",
            e.torch, e.outcome, e.error, e.at
        );
    }
    entries.iter().map(|e| e.torch.clone()).collect()
}

/// `result` is the refusal of `field`.
#[track_caller]
fn refuses<T: std::fmt::Debug>(result: Result<T, Error>, field: &str) {
    match result {
        Err(Error::InvalidHyperparameter { name, .. }) => assert_eq!(name, field),
        other => panic!("expected {field} to be refused, got {other:?}"),
    }
}

/// `rule` refuses the configuration, and a step with it leaves every buffer untouched.
#[track_caller]
fn rule_refuses(rule: &AnyRule, field: &str) {
    refuses(rule.validate(), field);
    let (mut params, grads) = ([1.0f32, 1.0, 1.0], [1.0f32, 0.0, -1.0]);
    let mut state = vec![0.5f32; 3 * rule.state_slots()];
    let mut scalars = rule.fresh_scalars();
    refuses(
        rule.step_flat(&mut scalars, &mut params, &grads, &mut state),
        field,
    );
    assert_eq!(params, [1.0; 3]);
    assert!(state.iter().all(|&x| x == 0.5));
    assert_eq!(scalars, rule.fresh_scalars());
}

fn spec(text: &str) -> AnyRule {
    let (name, rest) = text.split_once(':').unwrap();
    let mut rule = AnyRule::named(name).unwrap();
    for item in rest.split(',') {
        let (field, value) = item.split_once('=').unwrap();
        rule.set_text(field, value).unwrap();
    }
    rule
}

/// Schedules: `start` (torch's constructor) refuses, and the group is unchanged.
#[track_caller]
fn schedule_refuses(s: impl Into<AnyScheduler>, field: &str) {
    let mut s = s.into();
    let mut group = Group::new(0.1);
    let before = group;
    refuses(s.start(&mut group), field);
    assert_eq!(group, before);
}

#[test]
fn eps_zero() {
    assert_eq!(torch_accepts("eps_zero", false).len(), 8);
    let mut with_eps = 0;
    // The torch rules (the others refuse ε = 0 too, but torch has no say there).
    for &id in RuleId::ALL.iter().filter(|id| id.torch_name().is_some()) {
        let mut rule = id.default_rule();
        if rule.field("eps").is_err() {
            continue;
        }
        with_eps += 1;
        rule.set("eps", Value::Number(0.0)).unwrap();
        rule_refuses(&rule, "eps");
    }
    assert_eq!(with_eps, 8, "the rules with an ε");
}

#[test]
fn non_finite() {
    torch_accepts("non_finite", false);
    for &id in RuleId::ALL {
        for field in id.fields().iter().filter(|f| f.kind == FieldKind::Number) {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let mut rule = id.default_rule();
                rule.set(field.name, Value::Number(bad)).unwrap();
                rule_refuses(&rule, field.name);
            }
        }
    }
}

#[test]
fn rmsprop_alpha() {
    torch_accepts("rmsprop_alpha", false);
    rule_refuses(&spec("rmsprop:alpha=1.5"), "alpha");
    spec("rmsprop:alpha=1").checked().unwrap();
}

#[test]
fn rprop_step_sizes() {
    assert_eq!(torch_accepts("rprop_step_sizes", false).len(), 3);
    rule_refuses(
        &spec("rprop:step_size_min=1,step_size_max=0.1"),
        "step_size_max",
    );
    rule_refuses(
        &spec("rprop:step_size_min=-1,step_size_max=0.1"),
        "step_size_min",
    );
    rule_refuses(
        &spec("rprop:step_size_min=0,step_size_max=-1"),
        "step_size_max",
    );
    spec("rprop:step_size_min=0.1,step_size_max=0.1")
        .checked()
        .unwrap();
}

#[test]
fn gamma_negative() {
    assert_eq!(torch_accepts("gamma_negative", false).len(), 3);
    schedule_refuses(StepLr::new(1, -0.5), "gamma");
    refuses(MultiStepLr::<16>::new(&[1, 2], -0.5), "gamma");
    schedule_refuses(ExponentialLr::new(-0.5), "gamma");
}

#[test]
fn milestones_unsorted() {
    torch_accepts("milestones_unsorted", false);
    refuses(MultiStepLr::<16>::new(&[3, 1], 0.5), "milestones");
}

#[test]
fn total_iters_zero() {
    assert_eq!(torch_accepts("total_iters_zero", false).len(), 3);
    schedule_refuses(
        LinearLr {
            start_factor: 0.5,
            total_iters: 0,
            ..LinearLr::default()
        },
        "total_iters",
    );
    schedule_refuses(
        PolynomialLr {
            total_iters: 0,
            ..PolynomialLr::default()
        },
        "total_iters",
    );
    schedule_refuses(
        ConstantLr {
            factor: 0.5,
            total_iters: 0,
            ..ConstantLr::default()
        },
        "total_iters",
    );
}

#[test]
fn divides_by_zero() {
    assert_eq!(torch_accepts("divides_by_zero", true).len(), 5);
    schedule_refuses(
        ConstantLr {
            factor: 0.0,
            total_iters: 2,
            ..ConstantLr::default()
        },
        "factor",
    );
    schedule_refuses(CosineAnnealingLr::new(0, 0.0), "t_max");
    schedule_refuses(
        CyclicLr {
            step_size_up: 0,
            cycle_momentum: false,
            ..CyclicLr::new(0.01, 0.1)
        },
        "step_size_up",
    );
    schedule_refuses(
        OneCycleLr {
            pct_start: 0.25,
            ..OneCycleLr::new(0.1, 4)
        },
        "pct_start",
    );
    schedule_refuses(
        OneCycleLr {
            div_factor: 0.0,
            ..OneCycleLr::new(0.1, 8)
        },
        "div_factor",
    );
}

/// Factors torch accepts whose reciprocal (or quotient) overflows a later step into a
/// NaN learning rate: refused when the schedule starts. Before session 23 gradstep
/// accepted them too and refused every step from that one on.
#[test]
fn overflowing_factors() {
    assert_eq!(torch_accepts("overflowing_factors", false).len(), 3);
    schedule_refuses(
        ConstantLr {
            factor: 5e-324,
            total_iters: 3,
            ..ConstantLr::default()
        },
        "factor",
    );
    schedule_refuses(
        LinearLr {
            start_factor: 5e-324,
            total_iters: 3,
            ..LinearLr::default()
        },
        "start_factor",
    );
    schedule_refuses(
        OneCycleLr {
            final_div_factor: 5e-324,
            cycle_momentum: false,
            ..OneCycleLr::new(0.1, 5)
        },
        "final_div_factor",
    );
    // The smallest normal factor is accepted, and its ramp stays finite.
    for mut s in [
        AnyScheduler::from(ConstantLr {
            factor: f64::MIN_POSITIVE,
            total_iters: 3,
            ..ConstantLr::default()
        }),
        LinearLr {
            start_factor: f64::MIN_POSITIVE,
            total_iters: 3,
            ..LinearLr::default()
        }
        .into(),
    ] {
        let mut g = Group::new(0.1);
        s.start(&mut g).unwrap();
        for _ in 0..4 {
            s.step(&mut g).unwrap();
        }
        assert!((g.lr - 0.1).abs() < 1e-12, "{s:?}: {}", g.lr);
    }
}

#[test]
fn cyclic_exp_range_gamma() {
    assert_eq!(torch_accepts("cyclic_exp_range_gamma", false).len(), 2);
    for gamma in [1.5, 0.0] {
        schedule_refuses(
            CyclicLr {
                step_size_up: 2,
                mode: CyclicMode::ExpRange,
                gamma,
                cycle_momentum: false,
                ..CyclicLr::new(0.01, 0.1)
            },
            "gamma",
        );
    }
}

#[test]
fn plateau_negative() {
    assert_eq!(torch_accepts("plateau_negative", false).len(), 4);
    let base = ReduceLrOnPlateau {
        patience: 0,
        ..ReduceLrOnPlateau::default()
    };
    for (field, s) in [
        (
            "factor",
            ReduceLrOnPlateau {
                factor: -0.5,
                ..base
            },
        ),
        (
            "threshold",
            ReduceLrOnPlateau {
                threshold: -0.1,
                ..base
            },
        ),
        (
            "min_lr",
            ReduceLrOnPlateau {
                min_lr: -1.0,
                ..base
            },
        ),
        ("eps", ReduceLrOnPlateau { eps: -1.0, ..base }),
    ] {
        refuses(s.validate(), field);
        let mut group = Group::new(0.1);
        let mut stepped = s;
        refuses(stepped.step(&mut group, 1.0), field);
        assert_eq!(group.lr, 0.1);
        assert_eq!(stepped, s);
    }
}

/// A second moment is non-negative by construction; from corrupt state (negative),
/// gradstep takes the square root of its magnitude where torch gives NaN: the step
/// equals the one from the positive state.
#[test]
fn negative_second_moment_is_taken_by_magnitude() {
    let rule = AnyRule::named("adam").unwrap();
    let step = |v: f32| -> [f32; 2] {
        let mut params = [1.0f32, -1.0];
        let mut state = [0.5f32, -0.25, v, v];
        let mut scalars: gradstep::rules::AnyScalars = gradstep::StepCount::new(3).into();
        rule.step_flat(&mut scalars, &mut params, &[0.0, 0.0], &mut state)
            .unwrap();
        params
    };
    let (negative, positive) = (step(-4.0), step(4.0));
    assert!(negative.iter().all(|x| x.is_finite()));
    assert_eq!(negative, positive);
    assert_ne!(negative, [1.0, -1.0], "the step moved the params");
}
