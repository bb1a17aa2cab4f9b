//! Replays `tests/fixtures/pytorch_optimizer/lookahead.json` (pytorch_optimizer's
//! `Lookahead` over torch.optim's Adam and SGD) through [`gradstep::Lookahead`]: params
//! at every step, the wrapped rule's state, the slow weights and the step counter after
//! the last, within the wrapped rule's row of the tolerance table. Also checks that the
//! fast path equals the scalar reference bit for bit on the same data, and that bad
//! calls write nothing.

use gradstep::rules::{AnyRule, ScalarState};
use gradstep::*;
use gradstep_tests::fixtures::{self, Case};
use gradstep_tests::tolerance::tolerance;

fn load() -> fixtures::RuleFixture {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pytorch_optimizer/lookahead.json");
    let text = std::fs::read_to_string(&path).expect("lookahead.json");
    serde_json::from_str(&text).expect("parsing lookahead.json")
}

fn wrap<R: Rule>(rule: R, case: &Case) -> Lookahead<R> {
    Lookahead {
        rule,
        k: case.hyper["k"].as_f64().unwrap() as u64,
        alpha: case.hyper["alpha"].as_f64().unwrap(),
        reset_momentum: case.hyper["reset_momentum"].as_bool().unwrap(),
    }
}

/// Runs a case with the fast path and the reference side by side; returns the worst
/// use of the tolerance budget against pytorch_optimizer.
fn replay<R: Rule, T: Real>(la: Lookahead<R>, case: &Case, name: &str) -> f64 {
    let tol = tolerance(name, &case.dtype);
    let cast = |xs: &[f64]| -> Vec<T> { xs.iter().map(|&x| T::from_f64(x)).collect() };
    let n = case.params0.len();
    let slots = la.slot_names().len();
    let (mut p, mut p_ref) = (cast(&case.params0), cast(&case.params0));
    let mut s = vec![vec![T::ZERO; n]; slots];
    let mut s_ref = s.clone();
    let (mut slow, mut slow_ref) = (vec![T::ZERO; n], vec![T::ZERO; n]);
    let (mut sc, mut sc_ref) = (R::Scalars::default(), R::Scalars::default());
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
    for (g, expected) in case.grads.iter().zip(&case.params) {
        let g = cast(g);
        let mut view: Vec<&mut [T]> = s.iter_mut().map(|x| &mut x[..]).collect();
        la.step(&mut sc, &mut p, &g, &mut view, &mut slow).unwrap();
        let mut view: Vec<&mut [T]> = s_ref.iter_mut().map(|x| &mut x[..]).collect();
        la.step_reference(&mut sc_ref, &mut p_ref, &g, &mut view, &mut slow_ref)
            .unwrap();
        let bits = |xs: &[T]| xs.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p), bits(&p_ref), "{}: fast vs reference", case.name);
        assert_eq!(bits(&slow), bits(&slow_ref), "{}: slow weights", case.name);
        check(&p, expected, "params");
    }
    for (name, slot) in la.slot_names().iter().zip(&s) {
        check(slot, &case.state[*name], name);
    }
    check(&slow, &case.state["slow_params"], "slow_params");
    assert_eq!(case.state.len(), slots + 1, "{}: state names", case.name);
    assert_eq!(sc.step() as f64, case.scalars["step"]);
    worst
}

#[test]
fn lookahead_replays_pytorch_optimizer() {
    let fixture = load();
    assert_eq!(fixture.rule, "lookahead");
    assert!(fixture.reference_version.starts_with("pytorch_optimizer "));
    let d = &fixture.defaults;
    let default = Lookahead::new(Adam::default());
    assert_eq!(d["k"].as_f64(), Some(default.k as f64));
    assert_eq!(d["alpha"].as_f64(), Some(default.alpha));
    assert_eq!(d["reset_momentum"].as_bool(), Some(default.reset_momentum));
    assert!(fixture.cases.len() >= 8);
    let mut resets = 0;
    for case in &fixture.cases {
        let spec = case.hyper["inner"].as_str().unwrap();
        let inner = AnyRule::parse(spec).unwrap();
        resets += usize::from(case.hyper["reset_momentum"].as_bool().unwrap());
        let worst = match (inner, case.dtype.as_str()) {
            (AnyRule::Adam(r), "f32") => replay::<_, f32>(wrap(r, case), case, "adam"),
            (AnyRule::Adam(r), _) => replay::<_, f64>(wrap(r, case), case, "adam"),
            (AnyRule::Sgd(r), "f32") => replay::<_, f32>(wrap(r, case), case, "sgd"),
            (AnyRule::Sgd(r), _) => replay::<_, f64>(wrap(r, case), case, "sgd"),
            (other, _) => panic!("{}: no replay for {other}", case.name),
        };
        println!("{:<40} budget used {worst:.4}", case.name);
    }
    assert!(resets >= 2, "the reset option is recorded");
}

#[test]
fn lookahead_refuses_before_writing() {
    let la = Lookahead::new(Sgd {
        momentum: 0.9,
        ..Sgd::default()
    });
    let mut p = [1.0f32, 2.0];
    let mut buf = [7.0f32; 2];
    let mut slow = [5.0f32; 2];
    let mut sc = StepCount::default();
    // A slow buffer of the wrong length: nothing written, not even the fresh copy.
    let mut short = [5.0f32; 1];
    assert!(
        la.step(&mut sc, &mut p, &[0.5, 0.5], &mut [&mut buf], &mut short)
            .is_err()
    );
    assert_eq!((p, buf, short, sc.step), ([1.0, 2.0], [7.0; 2], [5.0], 0));
    for bad in [
        Lookahead { k: 0, ..la },
        Lookahead { alpha: 1.5, ..la },
        Lookahead {
            alpha: f64::NAN,
            ..la
        },
    ] {
        assert!(matches!(
            bad.step(&mut sc, &mut p, &[0.5, 0.5], &mut [&mut buf], &mut slow),
            Err(Error::InvalidHyperparameter { .. })
        ));
        assert_eq!((p, buf, slow, sc.step), ([1.0, 2.0], [7.0; 2], [5.0; 2], 0));
    }
    // α = 1 keeps the fast weights: the same bits as the rule alone.
    let keep = Lookahead {
        alpha: 1.0,
        k: 1,
        ..la
    };
    let (mut q, mut qbuf, mut qsc) = (p, buf, StepCount::default());
    for _ in 0..3 {
        keep.step(&mut sc, &mut p, &[0.5, -0.25], &mut [&mut buf], &mut slow)
            .unwrap();
        la.rule
            .step(&mut qsc, &mut q, &[0.5, -0.25], &mut [&mut qbuf])
            .unwrap();
    }
    assert_eq!((p, buf), (q, qbuf));
    assert_eq!(slow, p);
}
