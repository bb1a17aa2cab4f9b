//! A layer-wise rule's step cut into parts (`AnyRule::step_norms_part` on every part,
//! the sums merged, then `AnyRule::step_apply_part`) gives the one-call step's bits
//! whenever the parts are whole blocks of the norms' summation, and refuses what the
//! one-call step refuses without writing; with scratch memory
//! (`AnyRule::step_scratch`, and the parts' scratch) too.

use gradstep::rules::{AnyRule, AnyScalars, NORM_PART_ALIGN, NormSums, RuleId};
use gradstep::{Buffer, Error, Real};

/// Deterministic values in about [-1.5, 1.5], with a few far smaller and larger ones so
/// that the norms' lanes round.
fn data<T: Real>(seed: u64, n: usize) -> Vec<T> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x >> 11) as f64 / (1u64 << 53) as f64 * 3.0 - 1.5;
            T::from_f64(match i % 97 {
                0 => v * 1e-6,
                1 => v * 1e3,
                _ => v,
            })
        })
        .collect()
}

const SPECS: [&str; 5] = [
    "lamb",
    "lamb:weight_decay=0.1",
    "lamb:weight_decay=0.05,decoupled_weight_decay,clamp_norm",
    "lamb:eps_in_ratio,no_v_correction,maximize",
    "lamb:lr=0.01,beta1=0.8,beta2=0.9",
];

struct Tensor<T> {
    params: Vec<T>,
    state: Vec<Vec<T>>,
    scalars: AnyScalars,
}

impl<T: Real> Tensor<T> {
    fn new(rule: &AnyRule, n: usize) -> Self {
        Tensor {
            params: data(n as u64, n),
            state: vec![vec![T::ZERO; n]; rule.state_slots()],
            scalars: rule.fresh_scalars(),
        }
    }

    fn bits(&self) -> (Vec<u64>, Vec<Vec<u64>>, u64) {
        let b = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
        (
            b(&self.params),
            self.state.iter().map(|s| b(s)).collect(),
            self.scalars.step(),
        )
    }

    fn step(&mut self, rule: &AnyRule, grads: &[T]) {
        let mut state: Vec<&mut [T]> = self.state.iter_mut().map(|s| &mut s[..]).collect();
        rule.step(&mut self.scalars, &mut self.params, grads, &mut state)
            .unwrap();
    }

    /// One step with scratch memory, which starts as garbage.
    fn step_scratch(&mut self, rule: &AnyRule, grads: &[T]) {
        let mut state: Vec<&mut [T]> = self.state.iter_mut().map(|s| &mut s[..]).collect();
        let mut scratch = data::<T>(99, self.params.len());
        rule.step_scratch(
            &mut self.scalars,
            &mut self.params,
            grads,
            &mut state,
            &mut scratch,
        )
        .unwrap();
    }

    /// One step in parts of `part` elements (the last shorter), parts visited in
    /// reverse order for the first round and in order for the second; with `scratch`,
    /// each part with its own slice of one scratch buffer (garbage to start with).
    fn step_in_parts(&mut self, rule: &AnyRule, grads: &[T], part: usize, scratch: bool) {
        let n = self.params.len();
        let cuts: Vec<(usize, usize)> = (0..n.div_ceil(part).max(1))
            .map(|k| (k * part, ((k + 1) * part).min(n)))
            .collect();
        let mut buffer = data::<T>(98, n);
        let mut sums = NormSums::EMPTY;
        for &(a, b) in cuts.iter().rev() {
            let mut state: Vec<&mut [T]> = self.state.iter_mut().map(|s| &mut s[a..b]).collect();
            let s = rule
                .step_norms_part(
                    &self.scalars,
                    &mut self.params[a..b],
                    &grads[a..b],
                    &mut state,
                    scratch.then_some(&mut buffer[a..b]),
                )
                .unwrap();
            sums.merge(&s);
        }
        let mut next = None;
        for &(a, b) in &cuts {
            let mut scalars = self.scalars;
            let mut state: Vec<&mut [T]> = self.state.iter_mut().map(|s| &mut s[a..b]).collect();
            rule.step_apply_part(
                &mut scalars,
                &sums,
                &mut self.params[a..b],
                &grads[a..b],
                &mut state,
                scratch.then_some(&mut buffer[a..b]),
            )
            .unwrap();
            assert!(next.is_none_or(|s: AnyScalars| s.step() == scalars.step()));
            next = Some(scalars);
        }
        self.scalars = next.unwrap();
    }
}

fn parts_give_the_one_call_bits<T: Real>() {
    for spec in SPECS {
        let rule = AnyRule::parse(spec).unwrap();
        for n in [1, 255, 4096, 4097, 5003, 20000] {
            let mut kept = Tensor::<T>::new(&rule, n);
            let parts = [NORM_PART_ALIGN, 2 * NORM_PART_ALIGN, 4 * NORM_PART_ALIGN, n];
            for (i, part) in parts.into_iter().enumerate() {
                let mut whole = Tensor::<T>::new(&rule, n);
                let (mut cut, mut cut_kept) = (Tensor::<T>::new(&rule, n), Tensor::new(&rule, n));
                for t in 0..3 {
                    let grads = data::<T>(100 + t, n);
                    whole.step(&rule, &grads);
                    if i == parts.len() - 1 {
                        kept.step_scratch(&rule, &grads);
                        assert!(whole.bits() == kept.bits(), "{spec}: n {n}, scratch");
                    }
                    cut.step_in_parts(&rule, &grads, part, false);
                    cut_kept.step_in_parts(&rule, &grads, part, true);
                    assert!(
                        whole.bits() == cut.bits() && whole.bits() == cut_kept.bits(),
                        "{spec}: n {n}, parts of {part}, step {}",
                        t + 1
                    );
                }
            }
        }
    }
}

#[test]
fn lamb_in_parts_gives_the_one_call_bits_f32() {
    parts_give_the_one_call_bits::<f32>();
}

#[test]
fn lamb_in_parts_gives_the_one_call_bits_f64() {
    parts_give_the_one_call_bits::<f64>();
}

/// Parts that are not whole blocks still give a valid step: the norms' lanes are
/// grouped differently, which moves the params by at most a few units in the last place
/// (the trust ratio is the same to ~1e-7 relative).
#[test]
fn unaligned_parts_give_a_step_within_rounding() {
    let rule = AnyRule::parse("lamb:weight_decay=0.1").unwrap();
    let n = 5003;
    let (mut whole, mut cut) = (Tensor::<f32>::new(&rule, n), Tensor::<f32>::new(&rule, n));
    let before = whole.params.clone();
    let grads = data::<f32>(7, n);
    whole.step(&rule, &grads);
    cut.step_in_parts(&rule, &grads, 100, false);
    let mut moved = 0;
    for ((w, c), b) in whole.params.iter().zip(&cut.params).zip(&before) {
        let step = (w - b).abs();
        assert!((w - c).abs() <= step * 1e-5 + b.abs() * 1e-7, "{w} vs {c}");
        moved += usize::from(w != b);
    }
    assert!(moved > n / 2, "the step moved the params");
    assert_eq!(
        whole.state, cut.state,
        "the moments do not depend on the norms"
    );
}

/// Both calls of a step in parts on the whole of `t`, with `scalars` (the tensor's
/// if `None`), each refused or not; the buffers are the same for both.
fn both_parts<T: Real>(
    rule: &AnyRule,
    t: &mut Tensor<T>,
    scalars: Option<AnyScalars>,
    grads: &[T],
) -> [Result<(), Error>; 2] {
    let mut scalars = scalars.unwrap_or(t.scalars);
    let mut state: Vec<&mut [T]> = t.state.iter_mut().map(|s| &mut s[..]).collect();
    let first = rule
        .step_norms_part(&scalars, &mut t.params, grads, &mut state, None)
        .map(|_| ());
    let second = rule.step_apply_part(
        &mut scalars,
        &NormSums::EMPTY,
        &mut t.params,
        grads,
        &mut state,
        None,
    );
    [first, second]
}

#[test]
fn elementwise_rules_have_no_parts() {
    for &id in RuleId::ALL {
        let rule = id.default_rule();
        if rule.whole_slice() {
            continue;
        }
        let mut t = Tensor::<f32>::new(&rule, 300);
        let grads = data::<f32>(1, 300);
        let before = t.bits();
        let refused = Err(Error::NotLayerWise { rule: id });
        assert_eq!(both_parts(&rule, &mut t, None, &grads), [refused, refused]);
        assert!(t.bits() == before, "{id}: written");
    }
}

#[test]
fn refusals_write_nothing() {
    let rule = AnyRule::parse("lamb").unwrap();
    let mut t = Tensor::<f64>::new(&rule, 300);
    let before = t.bits();
    let short = Err(Error::LengthMismatch {
        buffer: Buffer::Grads,
        expected: 300,
        found: 299,
    });
    let grads = data::<f64>(1, 299);
    assert_eq!(both_parts(&rule, &mut t, None, &grads), [short, short]);
    let grads = data::<f64>(1, 300);
    // Another rule's scalar state.
    let nadam = AnyRule::parse("nadam").unwrap().fresh_scalars();
    let wrong = Err(Error::WrongScalars { rule: RuleId::Lamb });
    assert_eq!(
        both_parts(&rule, &mut t, Some(nadam), &grads),
        [wrong, wrong]
    );
    // Invalid hyperparameters.
    let bad = AnyRule::Lamb(gradstep::Lamb {
        beta1: 1.5,
        ..Default::default()
    });
    for result in both_parts(&bad, &mut t, None, &grads) {
        assert!(
            matches!(
                result,
                Err(Error::InvalidHyperparameter { name: "beta1", .. })
            ),
            "{result:?}"
        );
    }
    assert!(t.bits() == before, "written");
}

/// The first part does not advance the scalar state; the second does, as a step does.
#[test]
fn only_the_second_part_counts_the_step() {
    let rule = AnyRule::parse("lamb").unwrap();
    let mut t = Tensor::<f32>::new(&rule, 600);
    let grads = data::<f32>(3, 600);
    let mut state: Vec<&mut [f32]> = t.state.iter_mut().map(|s| &mut s[..]).collect();
    let sums = rule
        .step_norms_part(&t.scalars, &mut t.params, &grads, &mut state, None)
        .unwrap();
    assert_eq!(t.scalars.step(), 0);
    let params_after_first = t.params.clone();
    assert_eq!(
        params_after_first,
        data::<f32>(600, 600),
        "the first part keeps the params"
    );
    rule.step_apply_part(
        &mut t.scalars,
        &sums,
        &mut t.params,
        &grads,
        &mut state,
        None,
    )
    .unwrap();
    assert_eq!(t.scalars.step(), 1);
    assert!(sums.values()[0] > 0.0 && sums.values()[1] > 0.0);
}

/// A scratch slice of another length than the params is refused before anything is
/// written: by the one-call step (every rule, though only a layer-wise one uses it),
/// by both calls of a step in parts, and by `ApplyIfFinite`'s step whether it steps or
/// skips. A rule that has no use for the scratch leaves it as it was.
#[test]
fn scratch_of_another_length_is_refused_without_writing() {
    let wrong = |found| {
        Err(Error::LengthMismatch {
            buffer: Buffer::Scratch,
            expected: 300,
            found,
        })
    };
    for &id in RuleId::ALL {
        let rule = id.default_rule();
        let mut t = Tensor::<f32>::new(&rule, 300);
        let grads = data::<f32>(1, 300);
        let before = t.bits();
        for len in [0, 299, 301] {
            let mut scratch = vec![7.0f32; len];
            let mut state: Vec<&mut [f32]> = t.state.iter_mut().map(|s| &mut s[..]).collect();
            let r = rule.step_scratch(
                &mut t.scalars,
                &mut t.params,
                &grads,
                &mut state,
                &mut scratch,
            );
            assert_eq!(r, wrong(len), "{id}");
            if rule.whole_slice() {
                let r = rule.step_norms_part(
                    &t.scalars,
                    &mut t.params,
                    &grads,
                    &mut state,
                    Some(&mut scratch),
                );
                assert_eq!(r.map(|_| ()), wrong(len));
                let r = rule.step_apply_part(
                    &mut t.scalars,
                    &NormSums::EMPTY,
                    &mut t.params,
                    &grads,
                    &mut state,
                    Some(&mut scratch),
                );
                assert_eq!(r, wrong(len));
            }
            assert!(scratch.iter().all(|&x| x == 7.0), "{id}: scratch written");
        }
        assert!(t.bits() == before, "{id}: written");
        // The right length: an elementwise rule steps as without and keeps the scratch.
        let mut scratch = vec![7.0f32; 300];
        let mut other = Tensor::<f32>::new(&rule, 300);
        other.step(&rule, &grads);
        let mut state: Vec<&mut [f32]> = t.state.iter_mut().map(|s| &mut s[..]).collect();
        rule.step_scratch(
            &mut t.scalars,
            &mut t.params,
            &grads,
            &mut state,
            &mut scratch,
        )
        .unwrap();
        assert!(t.bits() == other.bits(), "{id}: the step with scratch");
        if !rule.whole_slice() {
            assert!(scratch.iter().all(|&x| x == 7.0), "{id}: scratch written");
        }
    }
}

/// `ApplyIfFinite` around LAMB: with scratch, finite gradients step to the bits of the
/// step without; non-finite ones skip, and a wrong scratch length is refused either way.
#[test]
fn apply_if_finite_steps_with_scratch() {
    use gradstep::{ApplyIfFinite, Rule};
    let guarded = ApplyIfFinite::new(gradstep::Lamb::default());
    let n = 5000;
    let (mut a, mut b) = (data::<f32>(5, n), data::<f32>(5, n));
    let (mut sa, mut sb) = (vec![vec![0.0f32; n]; 2], vec![vec![0.0f32; n]; 2]);
    let (mut ca, mut cb) = (Default::default(), Default::default());
    let mut scratch = data::<f32>(6, n);
    for k in 0..3 {
        let mut grads = data::<f32>(10 + k, n);
        if k == 1 {
            grads[17] = f32::NAN;
        }
        let [a0, a1] = &mut sa[..] else {
            unreachable!()
        };
        guarded
            .step(&mut ca, &mut a, &grads, &mut [a0, a1])
            .unwrap();
        let [b0, b1] = &mut sb[..] else {
            unreachable!()
        };
        let short = guarded.step_scratch(&mut cb, &mut b, &grads, &mut [b0, b1], &mut scratch[1..]);
        assert_eq!(
            short,
            Err(Error::LengthMismatch {
                buffer: Buffer::Scratch,
                expected: n,
                found: n - 1
            })
        );
        guarded
            .step_scratch(&mut cb, &mut b, &grads, &mut [b0, b1], &mut scratch)
            .unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b), "step {k}");
        assert_eq!(sa, sb, "step {k}");
        assert_eq!(ca, cb, "step {k}");
    }
    assert_eq!(a.len(), n);
}
