//! The owning optimizer steps each tensor exactly as the bare kernel does.

mod common;

use common::{bits, data, kernel_run, variant, with_slots};
use gradstep::StepCount;
use gradstep::checkpoint::Element;
use gradstep::rules::{AnyRule, AnyScalars, RuleId, Value};
use gradstep_optim::{Buffer, Error, GroupId, Optimizer, TensorId};

/// Lengths with lane tails and an empty tensor.
const LENS: [usize; 4] = [7, 0, 33, 1];
const STEPS: u64 = 6;

fn grads<T: Element>(tensor: usize, t: u64) -> Vec<T> {
    data(1000 * tensor as u64 + t, LENS[tensor])
}

/// Every rule, with 1–3 state slices, in two groups with different hyperparameters:
/// each tensor ends bit for bit where `Rule::step` alone takes it.
fn every_rule_equals_the_kernel<T: Element>() {
    for &id in RuleId::ALL {
        for (a, b) in [
            (id.default_rule(), variant(id)),
            (with_slots(id), variant(id)),
        ] {
            let mut opt = Optimizer::<T>::new(a).unwrap();
            let g1 = opt.add_group(b).unwrap();
            let groups = [GroupId(0), g1, GroupId(0), g1];
            for (k, &n) in LENS.iter().enumerate() {
                assert_eq!(opt.add_tensor(groups[k], n).unwrap(), TensorId(k));
            }
            let mut params: Vec<Vec<T>> = LENS.iter().map(|&n| data(7 + n as u64, n)).collect();
            let initial = params.clone();
            for t in 0..STEPS {
                let g: Vec<Vec<T>> = (0..LENS.len()).map(|k| grads(k, t)).collect();
                let mut list: Vec<(&mut [T], &[T])> = params
                    .iter_mut()
                    .zip(&g)
                    .map(|(p, g)| (&mut p[..], &g[..]))
                    .collect();
                opt.step(&mut list).unwrap();
            }
            for (k, p) in params.iter().enumerate() {
                let rule = if groups[k] == GroupId(0) { a } else { b };
                let mut expect = initial[k].clone();
                kernel_run(&mut |_| rule, &mut expect, &|t| grads(k, t), STEPS);
                assert_eq!(bits(p), bits(&expect), "{id}: tensor {k} ({rule})");
                assert_eq!(opt.tensor_step(TensorId(k)).unwrap(), STEPS);
            }
            // The groups' tensors moved differently: the test can tell the groups apart.
            let mut other = initial[0].clone();
            kernel_run(&mut |_| b, &mut other, &|t| grads(0, t), STEPS);
            assert_ne!(
                bits(&params[0]),
                bits(&other),
                "{id}: groups indistinguishable"
            );
        }
    }
}

#[test]
fn every_rule_equals_the_kernel_f32() {
    every_rule_equals_the_kernel::<f32>();
}

#[test]
fn every_rule_equals_the_kernel_f64() {
    every_rule_equals_the_kernel::<f64>();
}

/// Tensors stepped one at a time keep their own step counts, and equal the kernel.
#[test]
fn step_tensor_keeps_a_step_count_per_tensor() {
    let rule = AnyRule::parse("adam:lr=0.01").unwrap();
    let mut opt = Optimizer::<f32>::new(rule).unwrap();
    let (a, b) = (
        opt.add_tensor(GroupId(0), 5).unwrap(),
        opt.add_tensor(GroupId(0), 9).unwrap(),
    );
    let (mut pa, mut pb) = (data::<f32>(1, 5), data::<f32>(2, 9));
    let (ia, ib) = (pa.clone(), pb.clone());
    for t in 0..4 {
        opt.step_tensor(a, &mut pa, &grads_of(5, t)).unwrap();
    }
    opt.step_tensor(b, &mut pb, &grads_of(9, 0)).unwrap();
    assert_eq!(opt.tensor_step(a).unwrap(), 4);
    assert_eq!(opt.tensor_step(b).unwrap(), 1);
    let (mut ea, mut eb) = (ia, ib);
    kernel_run(&mut |_| rule, &mut ea, &|t| grads_of(5, t), 4);
    kernel_run(&mut |_| rule, &mut eb, &|t| grads_of(9, t), 1);
    assert_eq!((bits(&pa), bits(&pb)), (bits(&ea), bits(&eb)));
    // The state as torch names it.
    assert_eq!(opt.tensor_slot(a, "exp_avg").unwrap().unwrap().len(), 5);
    assert_eq!(opt.tensor_slot(a, "momentum_buffer").unwrap(), None);
}

fn grads_of(n: usize, t: u64) -> Vec<f32> {
    data(77 + t, n)
}

/// Every refusal of a step comes before the first write: the params and the
/// optimizer (its checkpoint) are as they were.
#[test]
fn refused_steps_write_nothing() {
    let rule = AnyRule::parse("sgd:lr=0.1,momentum=0.9").unwrap();
    let mut opt = Optimizer::<f64>::new(rule).unwrap();
    opt.add_tensor(GroupId(0), 4).unwrap();
    opt.add_tensor(GroupId(0), 3).unwrap();
    let (mut w, mut b) = (vec![1.0f64; 4], vec![2.0f64; 3]);
    let (gw, gb) = (vec![0.5f64; 4], vec![0.5f64; 3]);
    opt.step(&mut [(&mut w, &gw), (&mut b, &gb)]).unwrap();
    let before = (opt.checkpoint().unwrap(), w.clone(), b.clone());
    let unchanged = |opt: &Optimizer<f64>, w: &[f64], b: &[f64]| {
        assert_eq!(opt.checkpoint().unwrap(), before.0);
        assert_eq!((w, b), (&before.1[..], &before.2[..]));
    };

    // The last tensor's grads are short: the first tensor is not stepped either.
    let short = vec![0.5f64; 2];
    assert_eq!(
        opt.step(&mut [(&mut w, &gw), (&mut b, &short)]),
        Err(Error::LengthMismatch {
            tensor: TensorId(1),
            buffer: Buffer::Grads,
            expected: 3,
            found: 2
        })
    );
    unchanged(&opt, &w, &b);
    let mut long = vec![0.0f64; 5];
    assert!(matches!(
        opt.step(&mut [(&mut w, &gw), (&mut long, &gb)]),
        Err(Error::LengthMismatch {
            buffer: Buffer::Params,
            ..
        })
    ));
    unchanged(&opt, &w, &b);
    assert_eq!(
        opt.step(&mut [(&mut w, &gw)]),
        Err(Error::TensorCount {
            expected: 2,
            found: 1
        })
    );
    unchanged(&opt, &w, &b);
    assert_eq!(
        opt.step_tensor(TensorId(2), &mut w, &gw),
        Err(Error::NoSuchTensor(TensorId(2)))
    );
    unchanged(&opt, &w, &b);

    // A step counter at its end (loaded through a state dict) refuses the whole step.
    let mut forged = opt.clone();
    let mut d = opt.state_dict();
    d.state[1].scalars = AnyScalars::Step(StepCount::new(u64::MAX));
    forged.load_state_dict(&d).unwrap();
    let before_forged = forged.checkpoint().unwrap();
    assert_eq!(
        forged.step(&mut [(&mut w, &gw), (&mut b, &gb)]),
        Err(Error::Kernel(gradstep::Error::StepOverflow))
    );
    assert_eq!(forged.checkpoint().unwrap(), before_forged);
    assert_eq!((&w[..], &b[..]), (&before.1[..], &before.2[..]));
}

/// Refused configuration calls leave the optimizer as it was.
#[test]
fn refused_configuration_changes_nothing() {
    let mut opt = Optimizer::<f32>::new(AnyRule::parse("adagrad:lr=0.1").unwrap()).unwrap();
    opt.add_tensor(GroupId(0), 3).unwrap();
    let (mut p, g) = (vec![1.0f32; 3], vec![0.25f32; 3]);
    opt.step(&mut [(&mut p, &g)]).unwrap();
    let before = opt.checkpoint().unwrap();

    assert_eq!(
        opt.add_group(AnyRule::parse("adam").unwrap()),
        Err(Error::WrongRule {
            expected: RuleId::Adagrad,
            found: RuleId::Adam
        })
    );
    assert!(matches!(
        opt.set_lr(GroupId(0), -1.0),
        Err(Error::Kernel(_))
    ));
    assert!(matches!(
        opt.set_lr(GroupId(0), f64::NAN),
        Err(Error::Kernel(_))
    ));
    assert_eq!(
        opt.set_lr(GroupId(3), 0.1),
        Err(Error::NoSuchGroup(GroupId(3)))
    );
    assert_eq!(
        opt.set_momentum(GroupId(0), 0.9),
        Err(Error::NoMomentum { group: GroupId(0) })
    );
    assert_eq!(opt.momentum(GroupId(0)), Ok(None));
    assert!(matches!(
        opt.add_tensor(GroupId(1), 3),
        Err(Error::NoSuchGroup(_))
    ));
    let mut bad = opt.rule(GroupId(0)).unwrap();
    bad.set("eps", Value::Number(-1.0)).unwrap();
    assert!(matches!(
        opt.set_rule(GroupId(0), bad),
        Err(Error::Kernel(_))
    ));
    assert!(matches!(
        opt.set_rule(GroupId(0), AnyRule::parse("sgd").unwrap()),
        Err(Error::WrongRule { .. })
    ));
    assert_eq!(opt.checkpoint().unwrap(), before);
    assert_eq!((opt.groups(), opt.tensors()), (1, 1));

    // Changing the number of state slices of a group with tensors is refused; an
    // empty group may.
    let mut adam = Optimizer::<f32>::new(AnyRule::parse("adam").unwrap()).unwrap();
    let empty = adam.add_group(AnyRule::parse("adam").unwrap()).unwrap();
    adam.add_tensor(GroupId(0), 2).unwrap();
    let ams = AnyRule::parse("adam:amsgrad").unwrap();
    assert_eq!(
        adam.set_rule(GroupId(0), ams),
        Err(Error::StateSlots {
            group: GroupId(0),
            slots: 2,
            needed: 3
        })
    );
    adam.set_rule(empty, ams).unwrap();
    adam.set_rule(GroupId(0), AnyRule::parse("adam:lr=0.5").unwrap())
        .unwrap();
    assert_eq!(adam.lr(GroupId(0)), Ok(0.5));
    adam.set_momentum(GroupId(0), 0.8).unwrap();
    assert_eq!(
        adam.rule(GroupId(0)).unwrap().get("beta1"),
        Some(Value::Number(0.8))
    );
}

/// A step no longer checks the groups' hyperparameters before writing (each change is
/// checked where it is made): whatever values the setters are given, every one they
/// accept leaves a rule that validates, and the next step succeeds, for every rule.
#[test]
fn accepted_changes_leave_valid_hyperparameters() {
    const VALUES: [f64; 12] = [
        f64::NAN,
        f64::NEG_INFINITY,
        -1.0,
        -1e-300,
        -0.0,
        0.0,
        1e-300,
        0.5,
        1.0,
        1.5,
        1e300,
        f64::INFINITY,
    ];
    for &id in RuleId::ALL {
        let mut opt = Optimizer::<f32>::new(id.default_rule()).unwrap();
        let g = opt.add_group(id.default_rule()).unwrap();
        opt.add_tensor(g, 5).unwrap();
        let (mut p, grad) = (vec![0.5f32; 5], vec![0.25f32; 5]);
        let mut accepted = 0;
        let mut check = |opt: &mut Optimizer<f32>, ok: bool, what: &str| {
            accepted += usize::from(ok);
            let rule = opt.rule(g).unwrap();
            assert_eq!(rule.validate(), Ok(()), "{id:?} after {what}: {rule:?}");
            opt.step(&mut [(&mut p, &grad)])
                .unwrap_or_else(|e| panic!("{id:?} after {what}: {e:?}"));
        };
        for &v in &VALUES {
            let ok = opt.set_lr(g, v).is_ok();
            check(&mut opt, ok, &format!("lr {v}"));
            let ok = opt.set_momentum(g, v).is_ok();
            check(&mut opt, ok, &format!("momentum {v}"));
            for field in id.fields() {
                let mut rule = opt.rule(g).unwrap();
                if rule.set(field.name, Value::Number(v)).is_ok() {
                    let ok = opt.set_rule(g, rule).is_ok();
                    check(&mut opt, ok, &format!("{} {v}", field.name));
                }
            }
        }
        // Each rule takes some of the values: the loop above tried both sides.
        assert!(accepted > 0, "{id:?}");
    }
}

/// A tensor too large to allocate is an error, not an abort.
#[test]
fn huge_tensors_are_refused_not_aborted() {
    let mut opt = Optimizer::<f64>::new(AnyRule::parse("adam").unwrap()).unwrap();
    let before = opt.checkpoint().unwrap();
    assert!(matches!(
        opt.add_tensor(GroupId(0), usize::MAX / 2 + 1),
        Err(Error::OutOfMemory { .. })
    ));
    assert!(matches!(
        opt.add_tensor(GroupId(0), 1 << 60),
        Err(Error::OutOfMemory { .. })
    ));
    assert!(matches!(
        opt.add_tensor(GroupId(0), 1 << 45),
        Err(Error::OutOfMemory { .. })
    ));
    assert_eq!(opt.tensors(), 0);
    assert_eq!(opt.checkpoint().unwrap(), before);
}
