//! Test data and the bare kernel, shared by the optimizer's tests.
#![allow(dead_code)]

use gradstep::Rule;
use gradstep::checkpoint::Element;
use gradstep::rules::{AnyRule, RuleId, Value};

/// Deterministic values in about [-1, 1] (SplitMix64), with a few exact zeros so that
/// sign-dependent rules (Rprop) see every case.
pub fn data<T: Element>(seed: u64, n: usize) -> Vec<T> {
    let mut s = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(n as u64);
    (0..n)
        .map(|i| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            if i % 11 == 5 {
                T::ZERO
            } else {
                T::from_f64((z >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
            }
        })
        .collect()
}

/// The bits of every element, to compare exactly (NaN payloads and −0 included).
pub fn bits<T: Element>(xs: &[T]) -> Vec<u64> {
    xs.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// A rule of kind `id` that differs from torch's defaults: half the learning rate
/// (Rprop: its own), maximize on, and a weight decay where the rule has one.
pub fn variant(id: RuleId) -> AnyRule {
    let mut r = id.default_rule();
    r.set_lr(r.lr() * 0.5);
    r.set("maximize", Value::Flag(true)).unwrap();
    if r.get("weight_decay").is_some() {
        r.set("weight_decay", Value::Number(0.01)).unwrap();
    }
    r.checked().unwrap()
}

/// A rule of kind `id` with every option that adds a state slice turned on where the
/// rule has one (amsgrad, centered, momentum), so that three slices are exercised.
pub fn with_slots(id: RuleId) -> AnyRule {
    let mut r = id.default_rule();
    for flag in ["amsgrad", "centered"] {
        if r.get(flag).is_some() {
            r.set(flag, Value::Flag(true)).unwrap();
        }
    }
    if id == RuleId::RmsProp || id == RuleId::Sgd {
        r.set("momentum", Value::Number(0.5)).unwrap();
    }
    r.checked().unwrap()
}

/// The bare kernel: `steps` steps of the typed rule inside `rule` ([`Rule::step`], not
/// [`AnyRule`]'s dispatch), with its own scalar state and state slices, on `params`,
/// with gradient `grad(t)` at step `t` and the hyperparameters `at(t)` (a schedule
/// driven by hand, or `rule` itself).
pub fn kernel_run<T: Element>(
    at: &mut dyn FnMut(u64) -> AnyRule,
    params: &mut [T],
    grad: &dyn Fn(u64) -> Vec<T>,
    steps: u64,
) {
    macro_rules! typed {
        ($({
            id: $id:literal, rule: $rule:ident, name: $name:ident, reference: $reference:literal,
            scalars: $scalars:ident, momentum: [$($momentum:ident)?],
            f64: [$($f:ident),*], bool: [$($b:ident),*],
            choice: [$($c:ident: $ct:ident),*] $(,)?
        }),* $(,)?) => {
            match at(0).id() {
                $(RuleId::$rule => {
                    let mut scalars = gradstep::$scalars::default();
                    let n = params.len();
                    let first = gradstep::$rule::try_from(at(0)).unwrap();
                    let mut state: Vec<Vec<T>> = (0..first.state_slots()).map(|_| vec![T::ZERO; n]).collect();
                    for t in 0..steps {
                        let r = gradstep::$rule::try_from(at(t)).unwrap();
                        let mut slices: Vec<&mut [T]> = state.iter_mut().map(|s| &mut s[..]).collect();
                        r.step(&mut scalars, params, &grad(t), &mut slices).unwrap();
                    }
                    assert_eq!(scalars.step, steps);
                })*
                _ => unreachable!("a rule the registry does not list"),
            }
        };
    }
    gradstep::for_each_rule!(typed);
}
