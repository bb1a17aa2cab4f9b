//! Regression tests for reported numerical defects (issue 12's hardening findings), each
//! written before its fix.
//!
//! Finding 10: centered RMSprop hid divergence. Once g² overflows, v − ḡ² is ∞ − ∞ = NaN;
//! clamping the variance at 0 turned that NaN into 0, and the run went on with huge
//! finite params where torch gives NaN. Only a finite negative variance (rounding, e.g.
//! after many equal gradients) may be clamped; a non-finite one gives NaN, as torch's
//! `sqrt` does.

use gradstep::rules::{AnyRule, AnyScalars};
use gradstep::*;

/// Elements per tensor: more than one vector of lanes plus a tail, so that both the
/// vector body and the scalar tail of the fast path are exercised.
const N: usize = 19;

/// Centered RMSprop, with or without momentum.
fn centered(momentum: f64) -> RmsProp {
    RmsProp {
        centered: true,
        momentum,
        ..RmsProp::default()
    }
}

/// One step of `rule` from `scalars` and `state` (one value per slot, broadcast), on
/// the fast path or the reference, returning params and state after the step.
fn step<T: Real>(
    rule: RmsProp,
    scalars: StepCount,
    param: f64,
    grad: f64,
    state: &[f64],
    reference: bool,
) -> (Vec<T>, Vec<Vec<T>>) {
    let mut scalars = scalars;
    let mut params = vec![T::from_f64(param); N];
    let grads = vec![T::from_f64(grad); N];
    let mut state: Vec<Vec<T>> = state.iter().map(|&s| vec![T::from_f64(s); N]).collect();
    let mut slots: Vec<&mut [T]> = state.iter_mut().map(|s| s.as_mut_slice()).collect();
    let result = if reference {
        rule.step_reference(&mut scalars, &mut params, &grads, &mut slots)
    } else {
        rule.step(&mut scalars, &mut params, &grads, &mut slots)
    };
    assert_eq!(result, Ok(()));
    (params, state)
}

/// Slot values for `rule` (square_avg, [momentum_buffer,] grad_avg).
fn slots(rule: RmsProp, square_avg: f64, grad_avg: f64) -> Vec<f64> {
    if rule.momentum > 0.0 {
        vec![square_avg, 0.0, grad_avg]
    } else {
        vec![square_avg, grad_avg]
    }
}

/// A gradient whose square overflows, and whose running mean's square does too.
fn huge<T: Real>() -> f64 {
    if T::from_f64(1e300).is_finite() {
        1e200
    } else {
        1e30
    }
}

fn overflow_gives_nan<T: Real>() {
    for momentum in [0.0, 0.9] {
        let rule = centered(momentum);
        let fresh = slots(rule, 0.0, 0.0);
        for reference in [false, true] {
            // Fresh state, a first gradient of 1e30 (f32) or 1e200 (f64): v = ∞ and ḡ² = ∞.
            let (params, _) =
                step::<T>(rule, StepCount::new(0), 1.0, huge::<T>(), &fresh, reference);
            assert!(
                params.iter().all(|p| p.to_f64().is_nan()),
                "{rule:?} (reference: {reference}): params {:?}, torch gives NaN",
                params[0].to_f64()
            );
        }
    }
}

#[test]
fn centered_rmsprop_overflow_gives_nan_f32() {
    overflow_gives_nan::<f32>();
}

#[test]
fn centered_rmsprop_overflow_gives_nan_f64() {
    overflow_gives_nan::<f64>();
}

/// A variance of −∞ (v finite, ḡ² overflowing; reachable from a restored state) is not a
/// rounding error either: torch's `sqrt(−∞)` is NaN.
fn minus_infinity_gives_nan<T: Real>() {
    for momentum in [0.0, 0.9] {
        let rule = centered(momentum);
        for reference in [false, true] {
            let state = slots(rule, 1.0, huge::<T>());
            let (params, _) = step::<T>(rule, StepCount::new(3), 1.0, 0.0, &state, reference);
            assert!(
                params.iter().all(|p| p.to_f64().is_nan()),
                "{rule:?} (reference: {reference}): params {:?}, torch gives NaN",
                params[0].to_f64()
            );
        }
    }
}

#[test]
fn centered_rmsprop_minus_infinite_variance_gives_nan_f32() {
    minus_infinity_gives_nan::<f32>();
}

#[test]
fn centered_rmsprop_minus_infinite_variance_gives_nan_f64() {
    minus_infinity_gives_nan::<f64>();
}

/// A finite negative variance is still clamped to 0 (the documented difference from
/// torch, which returns NaN there): the step divides by ε alone.
fn finite_negative_variance_is_clamped<T: Real>() {
    let rule = centered(0.0);
    // v = 0.99·1 + 0.01·2² = 1.03, ḡ = lerp(2, 2, 0.01) = 2: v − ḡ² = −2.97.
    let state = slots(rule, 1.0, 2.0);
    let expected =
        T::from_f64(1.0) - T::from_f64(rule.lr) * T::from_f64(2.0) / T::from_f64(rule.eps);
    for reference in [false, true] {
        let (params, after) = step::<T>(rule, StepCount::new(3), 1.0, 2.0, &state, reference);
        assert!((after[0][0].to_f64() - 1.03).abs() < 1e-6);
        assert_eq!(after[1][0].to_f64(), 2.0);
        for p in &params {
            assert_eq!(
                p.to_f64().to_bits(),
                expected.to_f64().to_bits(),
                "reference: {reference}"
            );
        }
    }
}

#[test]
fn centered_rmsprop_clamps_finite_negative_variance_f32() {
    finite_negative_variance_is_clamped::<f32>();
}

#[test]
fn centered_rmsprop_clamps_finite_negative_variance_f64() {
    finite_negative_variance_is_clamped::<f64>();
}

/// Session 22 (a hostile C caller's report): scalar state that no run of steps produces
/// was stepped (NAdam's μ-product NaN made every param NaN; ASGD's η = −∞ made them
/// infinite). Now refused as [`Error::InvalidScalarState`] with nothing written, through
/// the typed rule, [`AnyRule`] and the checkpoint encoder alike; step 0 ignores these
/// fields.
#[test]
fn unreachable_scalar_state_is_refused_and_step_zero_ignores_it() {
    let g = [0.1f32; N];
    let nadam = NAdam::default();
    for mu_product in [f64::NAN, 1.5, -0.25, f64::INFINITY] {
        let (mut p, mut m, mut v) = ([0.5f32; N], [0.0f32; N], [0.0f32; N]);
        let mut sc = NAdamScalars::new(3, mu_product);
        let r = nadam.step(&mut sc, &mut p, &g, &mut [&mut m, &mut v]);
        assert!(
            matches!(
                r,
                Err(Error::InvalidScalarState {
                    name: "mu_product",
                    ..
                })
            ),
            "{mu_product}: {r:?}"
        );
        assert_eq!((p, sc.step), ([0.5; N], 3), "a refused step wrote");
        let mut out = [0u8; 1024];
        let r = checkpoint::encode(&nadam, &sc, &[&m[..], &v[..]], Some(&p[..]), &mut out);
        assert!(matches!(r, Err(Error::InvalidScalarState { .. })), "{r:?}");
        assert!(out.iter().all(|&b| b == 0), "a refused encode wrote");
        // Fresh state ignores the field: stepped, and μ-product becomes the first μ.
        let mut sc = NAdamScalars::new(0, mu_product);
        nadam
            .step(&mut sc, &mut p, &g, &mut [&mut m, &mut v])
            .unwrap();
        assert!(
            sc.step == 1 && (0.0..1.0).contains(&sc.mu_product),
            "{sc:?}"
        );
    }
    let asgd = AnyRule::parse("asgd").unwrap();
    for (eta, mu, field) in [
        (f64::NEG_INFINITY, 1.0, "eta"),
        (f64::NAN, 1.0, "eta"),
        (-1e-3, 0.5, "eta"),
        (0.01, 0.0, "mu"),
        (0.01, -5.0, "mu"),
        (0.01, 1.0 + 1e-12, "mu"),
    ] {
        let (mut p, mut ax) = ([0.5f32; N], [0.0f32; N]);
        let mut sc = AnyScalars::from(AsgdScalars { step: 7, eta, mu });
        let r = asgd.step(&mut sc, &mut p, &g, &mut [&mut ax]);
        match r {
            Err(Error::InvalidScalarState { name, .. }) => assert_eq!(name, field),
            r => panic!("eta {eta}, mu {mu}: {r:?}"),
        }
        assert_eq!((p, sc.step()), ([0.5; N], 7), "a refused step wrote");
    }
    // The ends of the ranges are accepted (the tests are on the bits, for the cores
    // without a double-precision unit: −0, the largest finite, the smallest subnormal).
    let (mut p, mut ax) = ([0.5f32; N], [0.0f32; N]);
    for (eta, mu) in [(0.0, 1.0), (-0.0, 5e-324), (f64::MAX, 1.0)] {
        let mut sc = AnyScalars::from(AsgdScalars { step: 7, eta, mu });
        let r = asgd.step(&mut sc, &mut p, &g, &mut [&mut ax]);
        assert!(r.is_ok(), "eta {eta}, mu {mu}: {r:?}");
    }
    let (mut m, mut v) = ([0.0f32; N], [0.0f32; N]);
    for mu_product in [0.0, -0.0, 5e-324, 1.0] {
        let mut sc = NAdamScalars::new(2, mu_product);
        let r = nadam.step(&mut sc, &mut p, &g, &mut [&mut m, &mut v]);
        assert!(r.is_ok(), "{mu_product}: {r:?}");
    }
}

/// Lookahead over a rule chosen by name, given another rule's scalar state at step 0:
/// refused with `WrongScalars`, and nothing written. Before session 23 the slow weights
/// were filled from the params (and, with pullback, the slow momentum zeroed) before
/// the wrapped rule's step refused the scalars.
#[test]
fn lookahead_refuses_another_rules_scalars_before_writing() {
    use gradstep::lookahead::Lookahead;
    for (text, wrong) in [
        (
            "lookahead(adam):k=2",
            AnyScalars::NAdam(NAdamScalars::default()),
        ),
        (
            "lookahead(sgd:momentum=0.9):k=2,momentum=pullback",
            AnyScalars::Asgd(AsgdScalars::default()),
        ),
    ] {
        let la = Lookahead::parse(text).unwrap();
        let slots = la.state_slots();
        let mut params = [1.0f32, 2.0, 3.0];
        let grads = [0.1f32; 3];
        let mut state = vec![[7.0f32; 3]; slots];
        let mut scalars = wrong;
        let mut views: Vec<&mut [f32]> = state.iter_mut().map(|s| &mut s[..]).collect();
        let r = la.step(&mut scalars, &mut params, &grads, &mut views);
        assert!(
            matches!(r, Err(Error::WrongScalars { .. })),
            "{text}: {r:?}"
        );
        assert_eq!(params, [1.0, 2.0, 3.0], "{text}");
        assert!(state.iter().all(|s| *s == [7.0; 3]), "{text}: {state:?}");
        assert_eq!(scalars, wrong, "{text}");
        // The same call with the rule's own scalars steps.
        let mut own = la.fresh_scalars();
        let mut views: Vec<&mut [f32]> = state.iter_mut().map(|s| &mut s[..]).collect();
        la.step(&mut own, &mut params, &grads, &mut views).unwrap();
        assert_ne!(params, [1.0, 2.0, 3.0], "{text}");
    }
}

/// Rprop as torch 2.15 steps it where `torch.sign` meets a zero or a NaN: `sign(±0)`
/// and `sign(NaN)` are +0 (checked against torch 2.15.0's `Rprop(foreach=False)`,
/// f32 and f64, 1 and 20 elements). So a −0 param with a −0 gradient stays −0, and a
/// NaN gradient leaves the param and its step size as they were (the NaN is kept as
/// the previous gradient, whose products then count as 0). Before session 23 gradstep
/// took `sign(x) = x` there: −0 became +0 and a NaN gradient made the param NaN.
#[test]
fn rprop_signs_of_zero_and_nan_are_torchs() {
    fn run<T: Real + core::fmt::Debug>(bits: fn(T) -> u64) {
        let rule = Rprop {
            lr: 0.01,
            ..Rprop::default()
        };
        let n = 20;
        let mut p: Vec<T> = (0..n)
            .map(|i| T::from_f64(if i % 2 == 0 { 1.0 } else { -0.0 }))
            .collect();
        let mut state = vec![T::ZERO; 2 * n];
        let mut scalars = StepCount::default();
        let step = |p: &mut Vec<T>, state: &mut Vec<T>, s: &mut StepCount, g: [f64; 2]| {
            let g: Vec<T> = (0..n).map(|i| T::from_f64(g[i % 2])).collect();
            let (a, b) = state.split_at_mut(n);
            rule.step(s, p, &g, &mut [a, b]).unwrap();
        };
        let one = T::from_f64(1.0);
        let moved = T::from_f64(1.0) - T::from_f64(0.01);
        for (g, want) in [
            ([f64::NAN, -0.0], one),
            ([0.5, -0.0], moved),
            ([f64::NAN, 0.0], moved),
        ] {
            step(&mut p, &mut state, &mut scalars, g);
            for i in 0..n {
                let expect = if i % 2 == 0 { want } else { T::from_f64(-0.0) };
                assert_eq!(bits(p[i]), bits(expect), "g {g:?}, param {i}: {:?}", p[i]);
                assert_eq!(bits(state[n + i]), bits(T::from_f64(0.01)), "step size {i}");
            }
        }
    }
    run::<f32>(|x| u64::from(x.to_bits()));
    run::<f64>(f64::to_bits);
}

/// ASGD whose η = lr/(1 + λ·lr·t)^α overflows the power (torch: `OverflowError` in
/// `step()`, after the param was updated): gradstep takes the limit, η = 0, and goes on
/// (README, deliberate differences).
#[test]
fn asgd_with_an_overflowing_power_takes_eta_zero() {
    let rule = Asgd {
        lr: 0.01,
        alpha: 1e300,
        ..Asgd::default()
    };
    let (mut p, g) = (vec![1.0f64; 5], vec![0.5f64; 5]);
    let mut ax = vec![0.0f64; 5];
    let mut s = AsgdScalars::default();
    for _ in 0..3 {
        rule.step(&mut s, &mut p, &g, &mut [&mut ax]).unwrap();
    }
    assert_eq!(s.eta.to_bits(), 0.0f64.to_bits(), "{s:?}");
    // The first step used η = lr (t = 0 in the power); the later ones moved nothing.
    let first = 1.0 * (1.0 - 1e-4 * 0.01) - 0.01 * 0.5;
    assert!(p.iter().all(|&x| x == first), "{p:?}");
}

/// A lerp weight of exactly 1 (Adam with β₁ = 0) and a −0 gradient: `exp_avg` is +0 on
/// every element, torch's scalar formula (its vector body gives −0; README, deliberate
/// differences).
#[test]
fn lerp_weight_one_gives_positive_zero() {
    let rule = Adam {
        beta1: 0.0,
        ..Adam::default()
    };
    let mut p = vec![1.0f32; 37];
    let g = vec![-0.0f32; 37];
    let (mut m, mut v) = (vec![7.0f32; 37], vec![7.0f32; 37]);
    let mut s = StepCount::default();
    rule.step(&mut s, &mut p, &g, &mut [&mut m, &mut v])
        .unwrap();
    assert!(m.iter().all(|x| x.to_bits() == 0), "{m:?}");
    assert!(p.iter().all(|&x| x == 1.0), "{p:?}");
}
