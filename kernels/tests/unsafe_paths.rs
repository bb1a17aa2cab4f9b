//! The kernel's unsafe code (the driver's pointer loop, the lanes' loads and stores, the
//! reductions), exercised over every length up to past two widths of the widest lane
//! type and at unaligned offsets, for every rule: small and deterministic, so that it
//! runs under Miri (`scripts/miri.sh`, Stacked Borrows and Tree Borrows) in minutes.
//! Natively it is one more bit-exact check of the vector path against the reference.

use gradstep::rules::{AnyRule, RuleId, Value};
use gradstep::{NormType, Real, Rule, all_finite, clip_grad_norm, clip_grad_value, total_norm};

/// Every length from 0 to two f32x16 vectors plus a tail; under Miri (which interprets
/// every lane operation) the lengths around each vector width of every ISA instead.
fn lengths() -> Vec<usize> {
    if cfg!(miri) {
        vec![0, 1, 3, 4, 5, 8, 9, 17, 33]
    } else {
        (0..=35).collect()
    }
}

/// Under Miri, the rules whose kernels take one, two and three state slices (SGD with
/// momentum, Adam, Adam with AMSGrad) and one of each other shape of loop (Rprop's
/// selects): the unsafe code is the driver's loop and the lanes' loads and stores, which
/// every rule shares; the rules' own kernels are safe code, checked natively.
const MIRI_RULES: &[&str] = &["sgd", "adam", "rprop"];

/// Offsets from an allocation's start: aligned, and two misalignments.
fn offsets() -> &'static [usize] {
    if cfg!(miri) { &[0, 1] } else { &[0, 1, 3] }
}

/// Values that vary per element, sign and magnitude, and are never zero.
fn value(i: usize, salt: usize) -> f64 {
    let k = (i * 7 + salt * 13) % 23;
    (k as f64 - 11.5) / 8.0
}

/// A buffer of `n` elements that starts `offset` elements into its allocation, so that
/// vector loads and stores meet every alignment.
fn buffer<T: Real>(n: usize, offset: usize, salt: usize) -> Vec<T> {
    (0..n + offset)
        .map(|i| T::from_f64(value(i, salt)))
        .collect()
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

/// How [`against_reference`] steps.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Step,
    /// `step_scratch`, the scratch at another misalignment than the other buffers.
    Scratch,
    Reference,
}

/// Steps `rule` twice with `step` and with `step_reference` and compares the bits; a
/// layer-wise rule with `step_scratch` too.
fn against_reference<R: Rule, T: Real>(rule: R, n: usize, offset: usize) {
    let slots = rule.state_slots();
    let run = |mode: Mode| {
        let mut p = buffer::<T>(n, offset, 1);
        let g = buffer::<T>(n, offset, 2);
        let mut s: Vec<Vec<T>> = (0..slots).map(|k| buffer::<T>(n, offset, 3 + k)).collect();
        let mut scratch = buffer::<T>(n, offset + 1, 9);
        let mut scalars = R::Scalars::default();
        for _ in 0..2 {
            let mut views: Vec<&mut [T]> = s.iter_mut().map(|s| &mut s[offset..]).collect();
            let (p, g) = (&mut p[offset..], &g[offset..]);
            match mode {
                Mode::Step => rule.step(&mut scalars, p, g, &mut views),
                Mode::Scratch => {
                    rule.step_scratch(&mut scalars, p, g, &mut views, &mut scratch[offset + 1..])
                }
                Mode::Reference => rule.step_reference(&mut scalars, p, g, &mut views),
            }
            .unwrap();
        }
        let state: Vec<Vec<u64>> = s.iter().map(|s| bits(s)).collect();
        (bits(&p), state, scalars)
    };
    let (fast, reference) = (run(Mode::Step), run(Mode::Reference));
    assert!(fast == reference, "{} n={n} offset={offset}", R::NAME);
    if R::WHOLE_SLICE {
        let kept = run(Mode::Scratch);
        assert!(
            kept == reference,
            "{} n={n} offset={offset}: scratch",
            R::NAME
        );
    }
}

macro_rules! every_rule {
    ($({
        id: $id:literal, rule: $rule:ident, name: $name:ident, reference: $reference:literal,
        scalars: $scalars:ident, momentum: [$($momentum:ident)?],
        f64: [$($f:ident),*], bool: [$($b:ident),*],
        choice: [$($c:ident: $ct:ident),*] $(,)?
    }),* $(,)?) => {
        /// Every rule with torch's defaults, and with every flag set (more slots, the
        /// kernels' non-plain variants).
        fn every_rule<T: Real>(n: usize, offset: usize) {
            $(if !cfg!(miri) || MIRI_RULES.contains(&stringify!($name)) {
                let plain = gradstep::$rule::default();
                against_reference::<_, T>(plain, n, offset);
                #[allow(unused_mut)]
                let mut flags = plain;
                $(flags.$b = true;)*
                let mut any = AnyRule::from(flags);
                // Weight decay where the rule has it (the preludes' non-plain paths).
                let _ = any.set("weight_decay", Value::Number(0.01));
                // torch's Nesterov needs momentum and no dampening.
                if any.momentum().is_some_and(|m| m == 0.0) {
                    any.set_momentum(0.5).unwrap();
                }
                if let Ok(r) = gradstep::$rule::try_from(any) {
                    if r.validate().is_ok() {
                        against_reference::<_, T>(r, n, offset);
                    }
                }
            })*
        }
    };
}

gradstep::for_each_rule!(every_rule);

#[test]
fn every_rule_every_length_and_alignment() {
    assert!(!RuleId::ALL.is_empty());
    for n in lengths() {
        for &offset in offsets() {
            every_rule::<f32>(n, offset);
            every_rule::<f64>(n, offset);
        }
    }
}

/// LAMB's first pass, a lane loop of its own (the driver's `first_pass`: the moments and
/// the norms' sums in one sweep, through raw pointers, storing the update in scratch
/// memory with `step_scratch`), under Miri
/// too: the plain rule at two lengths with a vector body and a tail, at every offset
/// (natively `every_rule` covers it at every length, with its flags too). And once
/// across blocks of 256, where on vector lanes a block's fold runs inside the next
/// block's loop, with a last block too short for it (513 = 2 × 256 + 1).
#[test]
fn lamb_norms_pass() {
    for n in [17, 33] {
        for &offset in offsets() {
            against_reference::<_, f32>(gradstep::Lamb::default(), n, offset);
            against_reference::<_, f64>(gradstep::Lamb::default(), n, offset);
        }
    }
    against_reference::<_, f32>(gradstep::Lamb::default(), 513, offsets()[1]);
}

/// The reductions against plain loops over the same elements.
fn reductions<T: Real>(n: usize, offset: usize) {
    let g = buffer::<T>(n, offset, 5);
    let xs = &g[offset..];
    let two = total_norm::<T, _>(&[xs], NormType::L2).unwrap().to_f64();
    let sum: f64 = xs.iter().map(|x| x.to_f64() * x.to_f64()).sum();
    assert!(
        (two - sum.sqrt()).abs() <= 1e-5 * sum.sqrt().max(1.0),
        "n={n}"
    );
    let inf = total_norm::<T, _>(&[xs], NormType::Inf).unwrap().to_f64();
    let max = xs.iter().map(|x| x.to_f64().abs()).fold(0.0, f64::max);
    assert_eq!(inf, max);
    assert!(all_finite(xs));
    let mut with_nan = g.clone();
    if n > 0 {
        with_nan[offset + n - 1] = T::from_f64(f64::NAN);
        assert!(!all_finite(&with_nan[offset..]));
    }

    let mut a = g.clone();
    let mut b = buffer::<T>(n, offset, 6);
    let norm = clip_grad_norm(
        &mut [&mut a[offset..], &mut b[offset..]],
        0.5,
        NormType::L2,
        false,
    )
    .unwrap();
    assert!(norm.to_f64() >= 0.0);
    let mut c = g.clone();
    clip_grad_value(&mut [&mut c[offset..]], 0.25).unwrap();
    for (x, y) in c[offset..].iter().zip(xs) {
        assert_eq!(x.to_f64(), y.to_f64().clamp(-0.25, 0.25));
    }
}

#[test]
fn reductions_every_length_and_alignment() {
    for n in lengths() {
        for &offset in offsets() {
            reductions::<f32>(n, offset);
            reductions::<f64>(n, offset);
        }
    }
}
