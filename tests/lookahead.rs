//! Replays `tests/fixtures/pytorch_optimizer/lookahead.json` (pytorch_optimizer's
//! `Lookahead` over torch.optim's Adam, SGD and RMSprop, momentum `none`, `reset` and
//! `pullback`) through the composite `Lookahead<AnyRule>` built from its spec: params at
//! every step, the wrapped rule's state, the slow weights (and slow momentum) and the
//! step counter after the last, within the wrapped rule's row of the tolerance table. Also checks that the
//! fast path equals the scalar reference bit for bit on the same data, and that bad
//! calls write nothing.

use gradstep::lookahead::SyncMomentum;
use gradstep::rules::AnyRule;
use gradstep::*;
use gradstep_tests::fixtures::{self, Case};
use gradstep_tests::tolerance::tolerance;

fn load(package: &str) -> fixtures::RuleFixture {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/{package}/lookahead.json"));
    let text = std::fs::read_to_string(&path).expect("lookahead.json");
    serde_json::from_str(&text).expect("parsing lookahead.json")
}

/// The case's composite, by name: `lookahead(INNER):k=..,alpha=..,momentum=..`.
fn composite(case: &Case) -> Lookahead<AnyRule> {
    let spec = format!(
        "lookahead({}):k={},alpha={},momentum={}",
        case.hyper["inner"].as_str().unwrap(),
        case.hyper["k"].as_f64().unwrap(),
        case.hyper["alpha"].as_f64().unwrap(),
        case.hyper["momentum"].as_str().unwrap(),
    );
    let la = Lookahead::parse(&spec).unwrap();
    assert_eq!(
        Lookahead::parse(&la.to_string()),
        Ok(la),
        "{spec}: round trip"
    );
    la
}

/// Runs a case with the fast path and the reference side by side; returns the worst
/// use of the tolerance budget against the recording. `every_slot`: the recording
/// holds every state slice (pytorch_optimizer's names are gradstep's); otherwise only
/// those it holds are compared (optax: the slow params).
fn replay<T: Real>(la: Lookahead<AnyRule>, case: &Case, every_slot: bool) -> f64 {
    let tol = tolerance(la.rule.name(), &case.dtype);
    let cast = |xs: &[f64]| -> Vec<T> { xs.iter().map(|&x| T::from_f64(x)).collect() };
    let n = case.params0.len();
    let slots = la.state_slots();
    let (mut p, mut p_ref) = (cast(&case.params0), cast(&case.params0));
    // Garbage in the fresh state: the first step initializes every slice.
    let mut s = vec![vec![T::from_f64(7.0); n]; slots];
    let mut s_ref = s.clone();
    let (mut sc, mut sc_ref) = (la.fresh_scalars(), la.fresh_scalars());
    let mut worst: f64 = 0.0;
    let mut check = |ours: &[T], theirs: &[f64], what: &str| {
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            let u = tol.usage(a.to_f64(), *b);
            assert!(
                u <= 1.0,
                "{}: {what}[{i}]: ours {a:?}, theirs {b}",
                case.name
            );
            worst = worst.max(u);
        }
    };
    let bits = |xs: &[Vec<T>]| {
        xs.iter()
            .flatten()
            .map(|x| x.to_f64().to_bits())
            .collect::<Vec<_>>()
    };
    for (g, expected) in case.grads.iter().zip(&case.params) {
        let g = cast(g);
        let mut view: Vec<&mut [T]> = s.iter_mut().map(|x| &mut x[..]).collect();
        la.step(&mut sc, &mut p, &g, &mut view).unwrap();
        let mut view: Vec<&mut [T]> = s_ref.iter_mut().map(|x| &mut x[..]).collect();
        la.step_reference(&mut sc_ref, &mut p_ref, &g, &mut view)
            .unwrap();
        assert_eq!(
            bits(&[p.clone()]),
            bits(&[p_ref.clone()]),
            "{}: fast vs reference",
            case.name
        );
        assert_eq!(bits(&s), bits(&s_ref), "{}: state", case.name);
        check(&p, expected, "params");
    }
    let names: Vec<&str> = la.slot_names().collect();
    for (name, slot) in names.iter().zip(&s) {
        if let Some(theirs) = case.state.get(*name) {
            check(slot, theirs, name);
        }
    }
    assert!(case.state.contains_key("slow_params"), "{}", case.name);
    if !every_slot {
        assert_eq!(sc.step() as f64, case.scalars["step"]);
        return worst;
    }
    let mut recorded: Vec<&str> = case.state.keys().map(String::as_str).collect();
    let mut ours = names.clone();
    recorded.sort_unstable();
    ours.sort_unstable();
    assert_eq!(ours, recorded, "{}: state names", case.name);
    assert_eq!(sc.step() as f64, case.scalars["step"]);
    worst
}

#[test]
fn lookahead_replays_pytorch_optimizer() {
    let fixture = load("pytorch_optimizer");
    assert_eq!(fixture.rule, "lookahead");
    assert!(fixture.reference_version.starts_with("pytorch_optimizer "));
    let d = &fixture.defaults;
    let default = Lookahead::new(Adam::default());
    assert_eq!(d["k"].as_f64(), Some(default.k as f64));
    assert_eq!(d["alpha"].as_f64(), Some(default.alpha));
    assert_eq!(d["momentum"].as_str(), Some(default.momentum.name()));
    assert!(fixture.cases.len() >= 16);
    let mut seen = [0; 3];
    for case in &fixture.cases {
        let la = composite(case);
        seen[la.momentum as usize] += 1;
        let worst = match case.dtype.as_str() {
            "f32" => replay::<f32>(la, case, true),
            _ => replay::<f64>(la, case, true),
        };
        println!("{:<44} budget used {worst:.4}", case.name);
    }
    assert!(
        seen.iter().all(|&n| n >= 2),
        "every momentum option is recorded: {seen:?}"
    );
}

/// optax.lookahead: the same rule in exact arithmetic, its sync computed through
/// updates (fast + (u − (1 − α)(fast + u − slow))), which rounds differently from
/// torch.lerp; replayed within the wrapped rule's row of the tolerance table (the
/// rounding of a sync is a few ulps of the params, below every row's bound).
#[test]
fn lookahead_replays_optax() {
    let fixture = load("optax");
    assert_eq!(fixture.rule, "lookahead");
    assert!(fixture.reference_version.starts_with("optax "));
    assert!(fixture.cases.len() >= 8);
    for case in &fixture.cases {
        let la = composite(case);
        assert_eq!(
            la.momentum,
            SyncMomentum::None,
            "optax has no momentum option"
        );
        let worst = match case.dtype.as_str() {
            "f32" => replay::<f32>(la, case, false),
            _ => replay::<f64>(la, case, false),
        };
        println!("{:<44} budget used {worst:.4}", case.name);
    }
}

#[test]
fn lookahead_refuses_before_writing() {
    let la = Lookahead {
        momentum: SyncMomentum::Pullback,
        ..Lookahead::new(Sgd {
            momentum: 0.9,
            ..Sgd::default()
        })
    };
    let mut p = [1.0f32, 2.0];
    let mut buf = [7.0f32; 2];
    let mut slow = [5.0f32; 2];
    let mut slow_m = [6.0f32; 2];
    let mut sc = StepCount::default();
    // A slow buffer of the wrong length, or a missing slice: nothing written, not even
    // the fresh copy.
    let mut short = [5.0f32; 1];
    assert!(matches!(
        la.step(
            &mut sc,
            &mut p,
            &[0.5, 0.5],
            &mut [&mut buf, &mut short, &mut slow_m]
        ),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        la.step(&mut sc, &mut p, &[0.5, 0.5], &mut [&mut buf, &mut slow]),
        Err(Error::StateSlots {
            expected: 3,
            found: 2
        })
    ));
    assert_eq!(
        (p, buf, short, slow, sc.step),
        ([1.0, 2.0], [7.0; 2], [5.0], [5.0; 2], 0)
    );
    for bad in [
        Lookahead { k: 0, ..la },
        Lookahead { alpha: 1.5, ..la },
        Lookahead {
            alpha: f64::NAN,
            ..la
        },
        Lookahead {
            rule: Sgd {
                lr: -1.0,
                ..la.rule
            },
            ..la
        },
    ] {
        assert!(matches!(
            bad.step(
                &mut sc,
                &mut p,
                &[0.5, 0.5],
                &mut [&mut buf, &mut slow, &mut slow_m]
            ),
            Err(Error::InvalidHyperparameter { .. })
        ));
        assert_eq!(
            (p, buf, slow, slow_m, sc.step),
            ([1.0, 2.0], [7.0; 2], [5.0; 2], [6.0; 2], 0)
        );
    }
    // α = 1 keeps the fast weights: the same bits as the rule alone, and the pulled
    // back momentum is the fast one.
    let keep = Lookahead {
        alpha: 1.0,
        k: 1,
        ..la
    };
    let (mut q, mut qbuf, mut qsc) = (p, buf, StepCount::default());
    for _ in 0..3 {
        keep.step(
            &mut sc,
            &mut p,
            &[0.5, -0.25],
            &mut [&mut buf, &mut slow, &mut slow_m],
        )
        .unwrap();
        la.rule
            .step(&mut qsc, &mut q, &[0.5, -0.25], &mut [&mut qbuf])
            .unwrap();
    }
    assert_eq!((p, buf), (q, qbuf));
    assert_eq!((slow, slow_m), (p, buf));
}

#[test]
fn lookahead_specs_parse_print_and_refuse() {
    use gradstep::lookahead::LookaheadSpecError as E;
    let la = Lookahead::parse(" lookahead ( adam:lr=1e-3 ) : k = 7, momentum=reset").unwrap();
    assert_eq!(
        (la.rule, la.k, la.alpha, la.momentum),
        (
            AnyRule::parse("adam:lr=1e-3").unwrap(),
            7,
            0.5,
            SyncMomentum::Reset
        )
    );
    assert_eq!(Lookahead::parse(&la.to_string()), Ok(la));
    assert_eq!(
        Lookahead::parse("lookahead(sgd)").unwrap(),
        Lookahead::new(AnyRule::named("sgd").unwrap())
    );
    assert!(Lookahead::is_spec("lookahead (sgd)") && !Lookahead::is_spec("sgd"));
    assert!(matches!(Lookahead::parse("adam"), Err(E::Syntax { .. })));
    assert!(matches!(
        Lookahead::parse("lookahead(adam"),
        Err(E::Syntax { .. })
    ));
    assert!(matches!(
        Lookahead::parse("lookahead(lookahead(adam))"),
        Err(E::Syntax { .. })
    ));
    assert!(matches!(
        Lookahead::parse("lookahead(adam)k=2"),
        Err(E::Syntax { .. })
    ));
    assert!(matches!(
        Lookahead::parse("lookahead(nope)"),
        Err(E::Inner(_))
    ));
    assert!(matches!(
        Lookahead::parse("lookahead(adam:lr=-1)"),
        Err(E::Inner(_))
    ));
    assert!(matches!(
        Lookahead::parse("lookahead(adam):kk=2"),
        Err(E::UnknownOption { option: "kk" })
    ));
    assert!(matches!(
        Lookahead::parse("lookahead(adam):k=2,k=3"),
        Err(E::Repeated { option: "k" })
    ));
    for bad in ["k=-1", "k=1.5", "alpha=x", "momentum=nesterov"] {
        let spec = format!("lookahead(adam):{bad}");
        assert!(
            matches!(Lookahead::parse(&spec), Err(E::BadValue { .. })),
            "{spec}"
        );
    }
    for bad in ["k=0", "alpha=1.5", "alpha=NaN", "alpha=-0.1"] {
        let spec = format!("lookahead(adam):{bad}");
        let err = Lookahead::parse(&spec).unwrap_err();
        assert!(
            matches!(err, E::Invalid(Error::InvalidHyperparameter { .. })),
            "{spec}"
        );
        assert!(
            err.to_string()
                .starts_with("lookahead: invalid hyperparameter"),
            "{err}"
        );
    }
}
