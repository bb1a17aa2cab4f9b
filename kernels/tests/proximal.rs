//! The generic proximal rule against the rules it generalises, bit for bit: configured
//! as SGD (with momentum, Nesterov), Adagrad, RMSprop, Adam and Adam with AMSGrad it
//! gives their params and state exactly; its lazy AdaGrad form is `Ftrl`; AMSGrad kept
//! in v equals AMSGrad with a buffer while v never decreases; L1 gives exact zeros
//! exactly where the closed form says; meaningless combinations are refused by name.

use gradstep::lanes::Lanes;
use gradstep::rules::{AnyRule, SpecError, Value};
use gradstep::*;
use proptest::prelude::*;

/// `steps` steps of `rule` from `params0`, gradients from `grads` (cycled); the params
/// and state slices after each run, as bits.
fn run<R: Rule<Scalars = StepCount>, T: Real>(
    rule: R,
    params0: &[T],
    grads: &[Vec<T>],
) -> (Vec<Vec<u64>>, Vec<Vec<u64>>) {
    run_with(rule, params0, grads, R::step)
}

/// `run` through `step` (the vector path, or the scalar reference): the trajectory's
/// params after every step and the final state, as bits.
fn run_with<R: Rule<Scalars = StepCount>, T: Real>(
    rule: R,
    params0: &[T],
    grads: &[Vec<T>],
    step: impl Fn(&R, &mut StepCount, &mut [T], &[T], &mut [&mut [T]]) -> Result<(), Error>,
) -> (Vec<Vec<u64>>, Vec<Vec<u64>>) {
    let n = params0.len();
    let mut params = params0.to_vec();
    let mut state = vec![vec![T::ZERO; n]; rule.state_slots()];
    let mut scalars = StepCount::default();
    let mut trajectory = Vec::new();
    for g in grads {
        let mut slots: Vec<&mut [T]> = state.iter_mut().map(|s| &mut s[..]).collect();
        step(&rule, &mut scalars, &mut params, g, &mut slots).unwrap();
        trajectory.push(params.iter().map(|x| x.to_f64().to_bits()).collect());
    }
    let state = state
        .iter()
        .map(|s| s.iter().map(|x| x.to_f64().to_bits()).collect())
        .collect();
    (trajectory, state)
}

fn data<T: Real>(n: usize, steps: usize, seed: &[f64]) -> (Vec<T>, Vec<Vec<T>>) {
    let at = |k: usize| seed[k % seed.len()] * (1.0 + (k % 7) as f64 * 0.13);
    let params0 = (0..n).map(|i| T::from_f64(at(i))).collect();
    let grads = (0..steps)
        .map(|t| {
            (0..n)
                .map(|i| T::from_f64(at(3 + i * 5 + t * 11) * 0.7))
                .collect()
        })
        .collect();
    (params0, grads)
}

fn seed() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(prop_oneof![1 => Just(0.0), 9 => -3.0..3.0f64], 1..40)
}

fn lengths() -> impl Strategy<Value = usize> {
    0..=3 * <f32 as Real>::Vector::WIDTH + 1
}

fn same<R1, R2>(a: R1, b: R2, n: usize, steps: usize, s: &[f64]) -> Result<(), TestCaseError>
where
    R1: Rule<Scalars = StepCount>,
    R2: Rule<Scalars = StepCount>,
{
    let (p, g) = data::<f32>(n, steps, s);
    prop_assert_eq!(run(a, &p, &g), run(b, &p, &g), "f32: {:?} vs {:?}", a, b);
    let (p, g) = data::<f64>(n, steps, s);
    prop_assert_eq!(run(a, &p, &g), run(b, &p, &g), "f64: {:?} vs {:?}", a, b);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn is_sgd_momentum_and_nesterov(
        lr in 1e-4..0.5f64, mu in prop_oneof![Just(0.0), 0.0..0.99f64], damp in 0.0..0.5f64,
        wd in prop_oneof![Just(0.0), 0.0..0.2f64], kind in 0u8..3, maximize in any::<bool>(),
        n in lengths(), steps in 1usize..6, s in seed(),
    ) {
        let nesterov = kind == 2 && mu > 0.0;
        let momentum = if kind == 0 { 0.0 } else { mu };
        let dampening = if nesterov || momentum == 0.0 { 0.0 } else { damp };
        let sgd = Sgd { lr, momentum, dampening, weight_decay: wd, nesterov, maximize };
        let prox = Proximal {
            lr,
            beta1: momentum,
            dampening,
            l2: wd,
            maximize,
            momentum: match (momentum > 0.0, nesterov) {
                (false, _) => MomentumKind::None,
                (true, false) => MomentumKind::HeavyBall,
                (true, true) => MomentumKind::Nesterov,
            },
            ..Proximal::default()
        };
        same(sgd, prox, n, steps, &s)?;
    }

    #[test]
    fn is_adagrad(
        lr in 1e-4..0.5f64, wd in prop_oneof![Just(0.0), 0.0..0.2f64],
        s0 in prop_oneof![Just(0.0), 0.0..1.0f64], eps in 1e-10..1e-4f64,
        maximize in any::<bool>(), n in lengths(), steps in 1usize..6, s in seed(),
    ) {
        let adagrad = Adagrad {
            lr, lr_decay: 0.0, weight_decay: wd, initial_accumulator_value: s0, eps, maximize,
        };
        let prox = Proximal {
            lr, eps, l2: wd, initial_accumulator_value: s0, maximize,
            adapt: AdaptKind::Accumulated, ..Proximal::default()
        };
        same(adagrad, prox, n, steps, &s)?;
    }

    #[test]
    fn is_rmsprop(
        lr in 1e-4..0.5f64, alpha in 0.0..=1.0f64, wd in prop_oneof![Just(0.0), 0.0..0.2f64],
        eps in 1e-10..1e-4f64, maximize in any::<bool>(), n in lengths(), steps in 1usize..6,
        s in seed(),
    ) {
        let rms = RmsProp {
            lr, alpha, eps, weight_decay: wd, momentum: 0.0, centered: false, maximize,
        };
        let prox = Proximal {
            lr, beta2: alpha, eps, l2: wd, maximize, adapt: AdaptKind::Average,
            ..Proximal::default()
        };
        same(rms, prox, n, steps, &s)?;
    }

    #[test]
    fn is_adam_and_torch_amsgrad(
        lr in 1e-4..0.5f64, beta1 in 0.0..0.999f64, beta2 in 0.0..0.9999f64,
        eps in 1e-10..1e-4f64, wd in prop_oneof![Just(0.0), 0.0..0.2f64],
        decoupled in any::<bool>(), amsgrad in any::<bool>(), maximize in any::<bool>(),
        n in lengths(), steps in 1usize..6, s in seed(),
    ) {
        let adam = Adam {
            lr, beta1, beta2, eps, weight_decay: wd, decoupled_weight_decay: decoupled,
            amsgrad, maximize,
        };
        let prox = Proximal {
            lr, beta1, beta2, eps, l2: wd, maximize,
            l2_kind: if decoupled { L2Kind::Decoupled } else { L2Kind::Classic },
            momentum: MomentumKind::Ema,
            adapt: if amsgrad { AdaptKind::MaxPost } else { AdaptKind::Corrected },
            ..Proximal::default()
        };
        same(adam, prox, n, steps, &s)?;
    }

    /// With |g| growing every step, v = β₂v + (1 − β₂)g² never decreases, so the running
    /// maximum is v itself: the in-place form gives torch's AMSGrad bit for bit, with v
    /// in place of max_exp_avg_sq and one slice fewer.
    #[test]
    fn inplace_amsgrad_is_post_amsgrad_while_v_grows(
        lr in 1e-4..0.5f64, beta1 in 0.0..0.999f64, beta2 in 0.0..0.9999f64,
        n in lengths(), steps in 1usize..8, s in seed(),
    ) {
        let post = Proximal {
            lr, beta1, beta2, momentum: MomentumKind::Ema, adapt: AdaptKind::MaxPost,
            ..Proximal::default()
        };
        let inplace = Proximal { adapt: AdaptKind::MaxInplace, ..post };
        let (p, _) = data::<f64>(n, 1, &s);
        let signs: Vec<f64> = (0..n).map(|i| if s[i % s.len()] < 0.0 { -1.0 } else { 1.0 }).collect();
        let grads: Vec<Vec<f64>> = (0..steps)
            .map(|t| signs.iter().map(|sg| sg * (1.0 + t as f64) * 0.5).collect())
            .collect();
        let (a, a_state) = run(post, &p, &grads);
        let (b, b_state) = run(inplace, &p, &grads);
        prop_assert_eq!(a, b);
        prop_assert_eq!(inplace.slot_names(), &["exp_avg", "exp_avg_sq"]);
        prop_assert_eq!(&a_state[0], &b_state[0]);
        prop_assert_eq!(&a_state[2], &b_state[1]);
    }

    /// Lazy proximal with AdaGrad, ε = 0, fixed L1 and proximal L2 is Keras's FTRL with
    /// β = 0 and no shrinkage (l2 = 2 × Keras's), bit for bit.
    #[test]
    fn lazy_adagrad_is_ftrl(
        lr in 1e-3..2.0f64, s0 in 0.01..1.0f64, l1 in prop_oneof![Just(0.0), 0.0..0.5f64],
        l2 in prop_oneof![Just(0.0), 0.0..0.5f64], maximize in any::<bool>(),
        n in lengths(), steps in 1usize..6, s in seed(),
    ) {
        let ftrl = Ftrl {
            lr, initial_accumulator_value: s0, l1, l2, maximize, ..Ftrl::default()
        };
        let prox = Proximal {
            lr, eps: 0.0, initial_accumulator_value: s0, l1, l2: 2.0 * l2, maximize,
            adapt: AdaptKind::Accumulated, l1_kind: L1Kind::Fixed,
            l2_kind: L2Kind::Proximal, representation: Representation::Lazy,
            ..Proximal::default()
        };
        same(ftrl, prox, n, steps, &s)?;
    }

    /// Greedy L1: after a step from θ with adapt none, θ is exactly +0 where
    /// |θ − γg| ≤ γλ₁ and shrunk by γλ₁ towards 0 elsewhere (in T's arithmetic).
    #[test]
    fn greedy_l1_zeros_are_exact(
        lr in 1e-3..0.5f64, l1 in 0.0..4.0f64, n in lengths(), s in seed(),
    ) {
        let rule = Proximal { lr, l1, ..Proximal::default() };
        let (p0, g) = data::<f32>(n, 1, &s);
        let mut p = p0.clone();
        rule.step(&mut StepCount::default(), &mut p, &g[0], &mut []).unwrap();
        let thr = (lr * l1) as f32;
        for i in 0..n {
            let u = p0[i] + (-lr as f32) * g[0][i];
            if u.abs() > thr {
                prop_assert_eq!(p[i], if u > 0.0 { u - thr } else { u + thr });
            } else {
                prop_assert_eq!(p[i].to_bits(), 0.0f32.to_bits(), "i = {}, u = {}", i, u);
            }
        }
    }

    /// Lazy L1: every param is exactly +0 where |z| ≤ λ₁,ₜ (t·λ₁ incremental, λ₁ fixed),
    /// and non-zero elsewhere.
    #[test]
    fn lazy_l1_zeros_are_exact(
        lr in 1e-3..0.5f64, l1 in 0.0..2.0f64, fixed in any::<bool>(), adagrad in any::<bool>(),
        n in lengths(), steps in 1usize..6, s in seed(),
    ) {
        let rule = Proximal {
            lr, l1, representation: Representation::Lazy,
            l1_kind: if fixed { L1Kind::Fixed } else { L1Kind::Incremental },
            adapt: if adagrad { AdaptKind::Accumulated } else { AdaptKind::None },
            ..Proximal::default()
        };
        let (p0, g) = data::<f64>(n, steps, &s);
        let mut p = p0.clone();
        let mut state = vec![vec![0.0; n]; rule.state_slots()];
        let mut sc = StepCount::default();
        for gt in &g {
            let mut slots: Vec<&mut [f64]> = state.iter_mut().map(|x| &mut x[..]).collect();
            rule.step(&mut sc, &mut p, gt, &mut slots).unwrap();
        }
        let l1t = if fixed { l1 } else { steps as f64 * l1 };
        let z = state.last().unwrap();
        for i in 0..n {
            if z[i].abs() <= l1t {
                prop_assert_eq!(p[i].to_bits(), 0.0f64.to_bits());
            } else {
                prop_assert!(p[i] != 0.0 && (p[i] > 0.0) == (z[i] < 0.0), "i = {}", i);
            }
        }
    }
}

#[test]
fn meaningless_combinations_are_refused_by_name() {
    let refused = |spec: &str, field: &str| match AnyRule::parse(spec) {
        Err(SpecError::Invalid {
            error:
                Error::InvalidHyperparameter {
                    name, requirement, ..
                },
            ..
        }) => {
            assert_eq!(name, field, "{spec}: {requirement}");
            requirement
        }
        other => panic!("{spec}: {other:?}"),
    };
    assert!(refused("proximal:l1_kind=fixed", "l1_kind").contains("lazy"));
    assert!(
        refused("proximal:representation=lazy,l2_kind=decoupled", "l2_kind")
            .contains("no lazy form")
    );
    assert!(
        refused(
            "proximal:representation=lazy,momentum=ema,adapt=amsgrad_post",
            "adapt"
        )
        .contains("amsgrad_inplace")
    );
    refused("proximal:representation=lazy,lr=0", "lr");
    refused("proximal:momentum=nesterov,beta1=0", "beta1");
    refused("proximal:momentum=nesterov,dampening=0.1", "dampening");
    refused("proximal:momentum=ema,beta1=1", "beta1");
    refused("proximal:adapt=adam,beta2=1", "beta2");
    refused("proximal:adapt=rmsprop,eps=0", "eps");
    refused("proximal:adapt=online_rmsprop,gamma=0", "gamma");
    // eps = 0 is fine where no root can vanish: AdaGrad from s₀ > 0, or no adapt.
    AnyRule::parse("proximal:adapt=adagrad,eps=0,initial_accumulator_value=0.1").unwrap();
    AnyRule::parse("proximal:eps=0").unwrap();
    refused("ftrl:lr_power=-0.25", "lr_power");
    // pytorch_optimizer.FTRL's defaults (accumulator from 0, no λ₂, no β) are accepted:
    // a zero denominator gives θ = 0, as there; only the shrinkage term would divide by it.
    AnyRule::parse("ftrl:initial_accumulator_value=0").unwrap();
    refused(
        "ftrl:initial_accumulator_value=0,l2_shrinkage=0.1",
        "l2_shrinkage",
    );
    AnyRule::parse("ftrl:initial_accumulator_value=0,l2=0.1").unwrap();
}

#[test]
fn choices_by_name() {
    let rule = AnyRule::parse("proximal:momentum=nesterov,adapt=rmsprop,lr=0.01").unwrap();
    assert_eq!(rule.get("momentum"), Some(Value::Choice("nesterov")));
    assert_eq!(rule.get("adapt"), Some(Value::Choice("rmsprop")));
    assert_eq!(rule.slot_names(), &["momentum_buffer", "exp_avg_sq"]);
    let text = rule.to_string();
    assert!(text.contains("momentum=nesterov,adapt=rmsprop"), "{text}");
    assert_eq!(AnyRule::parse(&text), Ok(rule));
    let e = AnyRule::parse("proximal:adapt=adamw").unwrap_err();
    assert_eq!(
        e.to_string(),
        "rule 'proximal': adapt = 'adamw' is not one of none, adagrad, rmsprop, \
         online_rmsprop, adam, amsgrad_post, amsgrad_pre, amsgrad_raw, amsgrad_inplace"
    );
    // The schedules' momentum is β₁ (μ), not the choice.
    let mut r = AnyRule::parse("proximal:momentum=ema").unwrap();
    r.set_momentum(0.8).unwrap();
    assert_eq!(r.get("beta1"), Some(Value::Number(0.8)));
    // Slots follow the choices.
    for (spec, slots) in [
        ("proximal", 0),
        ("proximal:representation=lazy", 1),
        ("proximal:momentum=ema,adapt=amsgrad_post", 3),
        ("proximal:momentum=ema,adapt=amsgrad_inplace", 2),
        (
            "proximal:momentum=heavy_ball,adapt=amsgrad_inplace,representation=lazy",
            3,
        ),
        ("proximal:adapt=amsgrad_pre,representation=lazy", 3),
    ] {
        assert_eq!(AnyRule::parse(spec).unwrap().state_slots(), slots, "{spec}");
    }
}

/// As [`run`], through the scalar reference.
fn run_reference<T: Real>(
    rule: Proximal,
    params0: &[T],
    grads: &[Vec<T>],
) -> (Vec<Vec<u64>>, Vec<Vec<u64>>) {
    run_with(rule, params0, grads, Proximal::step_reference)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The configurations with their own kernel instantiation (SGD, heavy ball,
    /// Nesterov, Adagrad, RMSprop, Adam), and next to each the options that send it back
    /// to the general kernel (β₁ < 0.5, maximize, L1), equal the scalar reference bit
    /// for bit at every instruction-set level, in f32 and f64.
    #[test]
    fn specialised_shapes_are_the_reference_at_every_level(
        lr in 1e-3..0.5f64, beta1 in 0.05..0.99f64, beta2 in 0.5..0.9999f64,
        dampening in 0.0..0.5f64, s0 in prop_oneof![Just(0.0), 0.0..1.0f64],
        shape in 0usize..6, maximize in any::<bool>(), l1 in prop_oneof![3 => Just(0.0), 1 => 0.0..0.1f64],
        n in lengths(), steps in 1usize..6, s in seed(),
    ) {
        let (momentum, adapt) = [
            (MomentumKind::None, AdaptKind::None),
            (MomentumKind::HeavyBall, AdaptKind::None),
            (MomentumKind::Nesterov, AdaptKind::None),
            (MomentumKind::None, AdaptKind::Accumulated),
            (MomentumKind::None, AdaptKind::Average),
            (MomentumKind::Ema, AdaptKind::Corrected),
        ][shape];
        let dampening = if momentum == MomentumKind::Nesterov { 0.0 } else { dampening };
        let rule = Proximal {
            lr, beta1, beta2, dampening, initial_accumulator_value: s0, maximize, l1,
            momentum, adapt, ..Proximal::default()
        };
        prop_assume!(rule.validate().is_ok());
        let (p32, g32) = data::<f32>(n, steps, &s);
        let (p64, g64) = data::<f64>(n, steps, &s);
        let want = (run_reference(rule, &p32, &g32), run_reference(rule, &p64, &g64));
        #[cfg(target_arch = "x86_64")]
        {
            let start = gradstep::isa::level();
            for level in gradstep::isa::Level::ALL {
                if !gradstep::isa::set_level(Some(level)) {
                    continue;
                }
                let got = (run(rule, &p32, &g32), run(rule, &p64, &g64));
                gradstep::isa::set_level(Some(start));
                prop_assert_eq!(&got, &want, "{:?} at {:?}", rule, level);
            }
        }
        // One level elsewhere (NEON on aarch64, scalar on targets without lanes).
        #[cfg(not(target_arch = "x86_64"))]
        prop_assert_eq!(&(run(rule, &p32, &g32), run(rule, &p64, &g64)), &want, "{:?}", rule);
    }
}
