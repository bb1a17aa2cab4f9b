//! Property tests of every rule:
//! - the vectorized `step` equals the scalar `step_reference` bit for bit, over lengths
//!   0..=3·lanes+1, unaligned sub-slices, random options and several steps, starting
//!   from garbage state (step 0 must ignore it), from fresh scalar state or, after that
//!   first step, resumed late (where bias corrections have rounded to 1 and the lanes
//!   do not divide by them, while the reference does);
//! - a step from finite, moderate inputs (0 or 1e-15 ≤ |x| ≤ 1e6) gives finite
//!   outputs (smaller values can underflow, and a formula may divide by the 0 that
//!   leaves: FTRL's denominator after a gradient whose square underflows, as in Keras);
//! - invalid hyperparameters, mismatched lengths and wrong slot counts give the typed
//!   error and leave params, grads, state and scalars untouched.

use gradstep::lanes::Lanes;
use gradstep::rules::ScalarState;
use gradstep::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod subjects;
use subjects::Subject;

/// Buffers for one run: every slice is a window at `offset` into a longer vector, so
/// that the kernels see unaligned starts.
struct Bufs<T> {
    params: Vec<T>,
    grads: Vec<Vec<T>>,
    state: Vec<Vec<T>>,
    offset: usize,
    n: usize,
}

impl<T: Real> Bufs<T> {
    fn new(n: usize, offset: usize, slots: usize, values: &[f64], steps: usize) -> Self {
        let mut it = values.iter().cycle().map(|&x| T::from_f64(x));
        let mut take =
            |len: usize| -> Vec<T> { (0..len).map(|_| it.next().unwrap_or(T::ZERO)).collect() };
        let params = take(n + offset);
        let grads = (0..steps).map(|_| take(n + offset)).collect();
        // Garbage initial state: the first step must overwrite it.
        let state = (0..slots).map(|_| take(n + offset)).collect();
        Bufs {
            params,
            grads,
            state,
            offset,
            n,
        }
    }

    fn step<R: Rule>(
        &mut self,
        rule: &R,
        scalars: &mut R::Scalars,
        k: usize,
        reference: bool,
    ) -> Result<(), Error> {
        let (o, n) = (self.offset, self.n);
        let mut st: Vec<&mut [T]> = self.state.iter_mut().map(|s| &mut s[o..o + n]).collect();
        let p = &mut self.params[o..o + n];
        let g = &self.grads[k][o..o + n];
        if reference {
            rule.step_reference(scalars, p, g, &mut st)
        } else {
            rule.step(scalars, p, g, &mut st)
        }
    }
}

/// The bits of each value, with every NaN mapped to one value: IEEE 754 and Rust leave
/// the sign and payload of a NaN that an operation produces unspecified (x86 gives the
/// negative default NaN, libm and Arm the positive one), so "same bits" means the same
/// bits for every number and NaN where the other side has NaN.
fn bits<T: Real>(xs: &[T]) -> Vec<u64> {
    xs.iter()
        .map(|x| x.to_f64())
        .map(|x| {
            if x.is_nan() {
                f64::NAN.to_bits()
            } else {
                x.to_bits()
            }
        })
        .collect()
}

/// The step counts the reference comparison starts from: fresh, and resumed where the
/// defaults' bias corrections have rounded to 1 (f32 from step 17 321, f64 from
/// 37 412) and where every β < 1 − 10⁻⁷ has (`βᵗ` under 2⁻¹⁴⁴).
fn start_step() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(40_000), Just(1_000_000_000)]
}

/// Vector path == reference path, bit for bit, at every step; outputs finite. With
/// `start` > 0, both first take a step from fresh state (with the first gradient),
/// compared too, and then continue from step `start`: the state is one the rule's steps
/// reach (garbage state past step 0 is outside some rules' domain: FTRL's accumulator
/// never falls below 0, and below it the lanes and the formula differ), the step count
/// a long run's.
fn vector_equals_reference<R: Subject, T: Real>(
    rule: R,
    n: usize,
    offset: usize,
    steps: usize,
    values: &[f64],
    start: u64,
) -> Result<(), TestCaseError> {
    let slots = rule.state_slots();
    let mut fast = Bufs::<T>::new(n, offset, slots, values, steps);
    let mut slow = Bufs::<T>::new(n, offset, slots, values, steps);
    let (mut sf, mut ss) = (R::Scalars::default(), R::Scalars::default());
    // With `start`, step k = 0 is taken twice: from fresh state, then resumed.
    let ks = (start > 0).then_some(0).into_iter().chain(0..steps);
    for (i, k) in ks.enumerate() {
        if start > 0 && i == 1 {
            sf.set_step(start);
            ss.set_step(start);
        }
        // Finite outputs are promised for moderate inputs; a diverging configuration
        // (e.g. centered RMSprop with α = 0 divides by ε every step) may legitimately
        // overflow after a few steps, as it does in torch.
        let moderate = |xs: &[T]| {
            xs[offset..offset + n]
                .iter()
                .all(|x| x.to_f64() == 0.0 || (1e-15..=1e6).contains(&x.to_f64().abs()))
        };
        let inputs_moderate = moderate(&fast.params)
            && moderate(&fast.grads[k])
            && (i == 0 || fast.state.iter().all(|s| moderate(s)));
        prop_assert_eq!(fast.step(&rule, &mut sf, k, false), Ok(()));
        prop_assert_eq!(slow.step(&rule, &mut ss, k, true), Ok(()));
        prop_assert_eq!(
            bits(&fast.params),
            bits(&slow.params),
            "params differ at step {} for {:?}",
            ss.step(),
            rule
        );
        for (a, b) in fast.state.iter().zip(&slow.state) {
            prop_assert_eq!(
                bits(a),
                bits(b),
                "state differs at step {} for {:?}",
                ss.step(),
                rule
            );
        }
        prop_assert_eq!(sf, ss);
        if inputs_moderate {
            let window = &fast.params[offset..offset + n];
            prop_assert!(
                window.iter().all(|x| Real::is_finite(*x)),
                "non-finite params for {:?}: {:?}",
                rule,
                window
            );
            for s in &fast.state {
                prop_assert!(
                    s[offset..offset + n].iter().all(|x| Real::is_finite(*x)),
                    "non-finite state for {:?}",
                    rule
                );
            }
        }
    }
    Ok(())
}

/// Every way of calling a rule wrongly: the error is the expected one and nothing moved.
fn refuses_bad_input<R: Subject, T: Real>(
    rule: R,
    n: usize,
    values: &[f64],
    pick: usize,
) -> Result<(), TestCaseError> {
    let slots = rule.state_slots();
    let mut b = Bufs::<T>::new(n, 0, slots, values, 1);
    // Take one good step so the state is not fresh (a refused call must not reset it).
    let mut scalars = R::Scalars::default();
    prop_assert_eq!(b.step(&rule, &mut scalars, 0, false), Ok(()));
    let snapshot = (
        bits(&b.params),
        b.state.iter().map(|s| bits(s)).collect::<Vec<_>>(),
        scalars,
    );

    let fields = R::fields();
    let (name, set, bads) = &fields[pick % fields.len()];
    for (i, &v) in bads.iter().enumerate() {
        let mut broken = rule;
        set(&mut broken, v);
        let reference = i % 2 == 1;
        let r = b.step(&broken, &mut scalars, 0, reference);
        match r {
            Err(Error::InvalidHyperparameter { name: got, .. }) => {
                prop_assert_eq!(got, *name, "value {}", v)
            }
            other => prop_assert!(false, "{name} = {v} gave {other:?}"),
        }
    }

    // Wrong grads length, wrong state length, wrong number of slices, wrong flat length.
    let mut long_grads = b.grads[0].clone();
    long_grads.push(T::ZERO);
    let mut st: Vec<&mut [T]> = b.state.iter_mut().map(|s| &mut s[..]).collect();
    let e = rule.step(&mut scalars, &mut b.params, &long_grads, &mut st);
    prop_assert_eq!(
        e,
        Err(Error::LengthMismatch {
            buffer: Buffer::Grads,
            expected: n,
            found: n + 1
        })
    );
    let e = rule.step_reference(&mut scalars, &mut b.params, &long_grads, &mut st);
    prop_assert_eq!(
        e,
        Err(Error::LengthMismatch {
            buffer: Buffer::Grads,
            expected: n,
            found: n + 1
        })
    );
    if slots > 0 {
        let k = pick % slots;
        let mut st: Vec<&mut [T]> = b
            .state
            .iter_mut()
            .enumerate()
            .map(|(i, s)| {
                if i == k {
                    &mut s[..n.saturating_sub(1)]
                } else {
                    &mut s[..]
                }
            })
            .collect();
        if n > 0 {
            let e = rule.step(&mut scalars, &mut b.params, &b.grads[0], &mut st);
            prop_assert_eq!(
                e,
                Err(Error::LengthMismatch {
                    buffer: Buffer::State(k),
                    expected: n,
                    found: n - 1
                })
            );
        }
    }
    let mut extra = vec![T::ZERO; n];
    let mut st: Vec<&mut [T]> = b.state.iter_mut().map(|s| &mut s[..]).collect();
    st.push(&mut extra);
    let e = rule.step(&mut scalars, &mut b.params, &b.grads[0], &mut st);
    prop_assert_eq!(
        e,
        Err(Error::StateSlots {
            expected: slots,
            found: slots + 1
        })
    );
    let mut flat = vec![T::ZERO; slots * n + 1];
    let e = rule.step_flat(&mut scalars, &mut b.params, &b.grads[0], &mut flat);
    prop_assert_eq!(
        e,
        Err(Error::FlatStateLength {
            expected: slots * n,
            found: slots * n + 1
        })
    );
    prop_assert!(flat.iter().all(|x| *x == T::ZERO));

    prop_assert_eq!(bits(&b.params), snapshot.0);
    prop_assert_eq!(
        b.state.iter().map(|s| bits(s)).collect::<Vec<_>>(),
        snapshot.1
    );
    prop_assert_eq!(scalars, snapshot.2);

    // The refused calls change nothing the next steps see either (the powers cache a
    // refused step advanced is not put back): two more steps match a twin that never
    // saw them, stepped from copies of the state as it was before them.
    let (mut p2, mut s2, mut sc2) = (b.params.clone(), b.state.clone(), snapshot.2);
    for _ in 0..2 {
        prop_assert_eq!(b.step(&rule, &mut scalars, 0, false), Ok(()));
        let mut st: Vec<&mut [T]> = s2.iter_mut().map(|s| &mut s[..]).collect();
        prop_assert_eq!(rule.step(&mut sc2, &mut p2, &b.grads[0], &mut st), Ok(()));
    }
    prop_assert_eq!(bits(&b.params), bits(&p2));
    prop_assert_eq!(
        b.state.iter().map(|s| bits(s)).collect::<Vec<_>>(),
        s2.iter().map(|s| bits(s)).collect::<Vec<_>>()
    );
    prop_assert_eq!(scalars, sc2);
    Ok(())
}

/// `step_flat` is `step` on the same state laid out end to end.
fn flat_equals_sliced<R: Subject, T: Real>(
    rule: R,
    n: usize,
    values: &[f64],
) -> Result<(), TestCaseError> {
    let slots = rule.state_slots();
    let mut b = Bufs::<T>::new(n, 0, slots, values, 2);
    let mut flat: Vec<T> = b.state.concat();
    let mut p2 = b.params.clone();
    let (mut s1, mut s2) = (R::Scalars::default(), R::Scalars::default());
    for k in 0..2 {
        prop_assert_eq!(b.step(&rule, &mut s1, k, false), Ok(()));
        prop_assert_eq!(
            rule.step_flat(&mut s2, &mut p2, &b.grads[k], &mut flat),
            Ok(())
        );
    }
    prop_assert_eq!(bits(&b.params), bits(&p2));
    prop_assert_eq!(bits(&b.state.concat()), bits(&flat));
    Ok(())
}

/// Step 0 ignores whatever the state slices hold, and a run resumed from a copy of its
/// scalar state and state slices continues bit-identically.
fn fresh_and_resume<R: Subject, T: Real>(
    rule: R,
    n: usize,
    values: &[f64],
    split: usize,
) -> Result<(), TestCaseError> {
    let slots = rule.state_slots();
    let steps = 4;
    let mut garbage = Bufs::<T>::new(n, 0, slots, values, steps);
    let mut zeroed = Bufs::<T>::new(n, 0, slots, values, steps);
    zeroed.state.iter_mut().for_each(|s| s.fill(T::ZERO));
    let (mut sg, mut sz) = (R::Scalars::default(), R::Scalars::default());
    prop_assert_eq!(garbage.step(&rule, &mut sg, 0, false), Ok(()));
    prop_assert_eq!(zeroed.step(&rule, &mut sz, 0, false), Ok(()));
    prop_assert_eq!(bits(&garbage.params), bits(&zeroed.params));
    prop_assert_eq!(
        garbage.state.iter().map(|s| bits(s)).collect::<Vec<_>>(),
        zeroed.state.iter().map(|s| bits(s)).collect::<Vec<_>>()
    );

    // Resume: copy everything after `split` steps into fresh buffers and go on.
    let split = 1 + split % (steps - 1);
    for k in 1..split {
        prop_assert_eq!(garbage.step(&rule, &mut sg, k, false), Ok(()));
    }
    let mut resumed = Bufs::<T> {
        params: garbage.params.clone(),
        grads: garbage.grads.clone(),
        state: garbage.state.clone(),
        offset: 0,
        n,
    };
    let mut sr = sg;
    for k in split..steps {
        prop_assert_eq!(garbage.step(&rule, &mut sg, k, false), Ok(()));
        prop_assert_eq!(resumed.step(&rule, &mut sr, k, false), Ok(()));
    }
    prop_assert_eq!(bits(&garbage.params), bits(&resumed.params));
    prop_assert_eq!(sg, sr);
    Ok(())
}

fn max_len<T: Real>() -> usize {
    3 * <T as Real>::Vector::WIDTH + 1
}

fn values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![
            1 => Just(0.0),
            8 => -10.0..10.0f64,
            1 => -1e3..1e3f64,
            // Subnormal in f32 (below 2⁻¹²⁶ ≈ 1.2e-38), and in f64 (below 2⁻¹⁰²² ≈
            // 2.2e-308): where the lanes' multiplying divisions must divide.
            1 => -1e-38..1e-38f64,
            1 => -1e-307..1e-307f64,
        ],
        1..64,
    )
}

/// One module of property tests per registry row (`gradstep::for_each_rule!`): a rule
/// without a [`Subject`] impl does not compile.
macro_rules! rule_props {
    ($({ id: $id:literal, rule: $r:ident, name: $m:ident, $($rest:tt)* }),* $(,)?) => {$(
        mod $m {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(subjects::cases(1024)))]
                #[test]
                fn vector_equals_reference_f32(rule in <$r>::arb(), n in 0..=max_len::<f32>(), offset in 0usize..17, steps in 1usize..5, v in values(), start in start_step()) {
                    vector_equals_reference::<$r, f32>(rule, n, offset, steps, &v, start)?;
                }
                #[test]
                fn vector_equals_reference_f64(rule in <$r>::arb(), n in 0..=max_len::<f64>(), offset in 0usize..9, steps in 1usize..5, v in values(), start in start_step()) {
                    vector_equals_reference::<$r, f64>(rule, n, offset, steps, &v, start)?;
                }
                #[test]
                fn refuses_bad_input_f32(rule in <$r>::arb(), n in 0..=max_len::<f32>(), v in values(), pick in any::<usize>()) {
                    refuses_bad_input::<$r, f32>(rule, n, &v, pick)?;
                }
                #[test]
                fn refuses_bad_input_f64(rule in <$r>::arb(), n in 0..=max_len::<f64>(), v in values(), pick in any::<usize>()) {
                    refuses_bad_input::<$r, f64>(rule, n, &v, pick)?;
                }
                #[test]
                fn fresh_state_and_resume(rule in <$r>::arb(), n in 0..=max_len::<f64>(), v in values(), split in any::<usize>()) {
                    fresh_and_resume::<$r, f64>(rule, n, &v, split)?;
                }
                #[test]
                fn flat_state_layout(rule in <$r>::arb(), n in 0..=max_len::<f32>(), v in values()) {
                    flat_equals_sliced::<$r, f32>(rule, n, &v)?;
                }
            }
        }
    )*};
}

gradstep::for_each_rule!(rule_props);

#[test]
fn nesterov_needs_momentum_and_no_dampening() {
    let mut p = [1.0f32];
    let mut b = [0.0f32];
    let mut s = StepCount::default();
    let bad = Sgd {
        nesterov: true,
        momentum: 0.0,
        ..Sgd::default()
    };
    assert!(matches!(
        bad.step(&mut s, &mut p, &[1.0], &mut []),
        Err(Error::InvalidHyperparameter {
            name: "momentum",
            ..
        })
    ));
    let bad = Sgd {
        nesterov: true,
        momentum: 0.9,
        dampening: 0.1,
        ..Sgd::default()
    };
    assert!(matches!(
        bad.step(&mut s, &mut p, &[1.0], &mut [&mut b]),
        Err(Error::InvalidHyperparameter {
            name: "dampening",
            ..
        })
    ));
    assert_eq!((p, b, s.step), ([1.0], [0.0], 0));
}

#[test]
fn step_counter_overflow_is_an_error() {
    let mut p = [1.0f64];
    let (mut m, mut v) = ([0.5f64], [0.25f64]);
    let mut s = StepCount::new(u64::MAX);
    let r = Adam::default().step(&mut s, &mut p, &[1.0], &mut [&mut m, &mut v]);
    assert_eq!(r, Err(Error::StepOverflow));
    assert_eq!((p, m, v, s.step), ([1.0], [0.5], [0.25], u64::MAX));
}

#[test]
fn errors_display_their_cause() {
    let e = Adam {
        beta1: 1.0,
        ..Adam::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid hyperparameter beta1 = 1: must be in [0, 1)"
    );
    let e = Error::LengthMismatch {
        buffer: Buffer::State(1),
        expected: 4,
        found: 3,
    };
    assert_eq!(
        e.to_string(),
        "state slice 1 has length 3, parameters have 4"
    );
}

#[test]
fn rprop_step_size_bounds_must_be_ordered() {
    let r = Rprop {
        step_size_min: 1.0,
        step_size_max: 0.5,
        ..Rprop::default()
    };
    assert!(matches!(
        r.validate(),
        Err(Error::InvalidHyperparameter {
            name: "step_size_max",
            ..
        })
    ));
}
