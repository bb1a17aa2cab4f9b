//! Every rule gives the same bits on every instruction-set level this machine has
//! (x86-64: scalar, SSE2, AVX2, AVX-512F), selected with the hidden override
//! `gradstep::isa::set_level`: lengths 0..=70 (every tail of every width), unaligned
//! starts, each rule's flags and weight decay, three steps from garbage state. So do the
//! gradient utilities' reductions and maps (norms of every vectorized order, clipping in
//! every scope, the finiteness check, loss-scale unscaling, the accumulator's mean) over
//! lengths that cross their 256-element folding blocks, with NaN and ∞ mixed in.
//!
//! A custom harness (`harness = false`) so that the report of which levels ran, and
//! which this CPU lacks, is always printed rather than captured.

#[cfg(target_arch = "x86_64")]
mod x86 {
    use gradstep::clip::{ClipNorm, ClipScope, NormType, total_norm};
    use gradstep::isa::{self, Level};
    use gradstep::rules::{AnyRule, AnyScalars, FieldKind, RuleId, Value};
    use gradstep::{Accumulator, Error, GradScaler, Real, Reduction, all_finite};

    /// Per step: the bits of params and state, or the error.
    type Outcomes = Vec<Result<Vec<u64>, Error>>;

    const MAX_LEN: usize = 70;
    const OFFSETS: usize = 4;
    const STEPS: usize = 3;

    /// Deterministic values in [-2, 2) with zeros of both signs mixed in.
    fn values<T: Real>(seed: u64, len: usize) -> Vec<T> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let unit = (x >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0;
                match i % 13 {
                    5 => T::ZERO,
                    9 => T::from_f64(-0.0),
                    // Subnormal (f32 below 2⁻¹²⁶, f64 below 2⁻¹⁰²²): the multiplying
                    // divisions' range tests must send these to the divider.
                    11 if size_of::<T>() == 4 => T::from_f64(unit * 5e-39),
                    11 => T::from_f64(unit * 1e-308),
                    _ => T::from_f64(unit),
                }
            })
            .collect()
    }

    /// The rule's default, each flag on alone, and weight decay, if it has one.
    fn variants(id: RuleId) -> Vec<AnyRule> {
        let mut out = vec![id.default_rule()];
        for field in id.fields() {
            let mut rule = id.default_rule();
            let value = match (field.kind, field.name) {
                (FieldKind::Flag, _) => Value::Flag(true),
                (FieldKind::Number, "weight_decay") => Value::Number(0.01),
                // Each value of a choice but the default, alone.
                (FieldKind::Choice(names), _) => {
                    for &name in names {
                        let mut rule = id.default_rule();
                        if rule.set(field.name, Value::Choice(name)).is_ok()
                            && rule.validate().is_ok()
                            && rule != id.default_rule()
                        {
                            out.push(rule);
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            if rule.set(field.name, value).is_ok() && rule.validate().is_ok() {
                out.push(rule);
            }
        }
        out
    }

    /// Scalar state at step 40 000 (the rest as fresh): 1 − 0.999ᵗ is 1 in `f64` from
    /// t = 37 412 (in `f32` from 17 321), as is every other bias correction of the
    /// defaults.
    fn late(s: &mut AnyScalars) {
        const T: u64 = 40_000;
        match s {
            AnyScalars::Step(c) => c.step = T,
            AnyScalars::NAdam(c) => c.step = T,
            AnyScalars::Asgd(c) => c.step = T,
        }
    }

    /// Bits of params and state after each step (or the error), over every rule,
    /// variant, length and offset, at the current level.
    fn run_all<T: Real>(bits: impl Fn(T) -> u64) -> Outcomes {
        let mut out = Vec::new();
        for &id in RuleId::ALL {
            for (v, rule) in variants(id).into_iter().enumerate() {
                let slots = rule.state_slots();
                for n in 0..=MAX_LEN {
                    for o in 0..OFFSETS {
                        let seed = (id as u64) << 32 | (v as u64) << 16 | (n * OFFSETS + o) as u64;
                        let mut params = values::<T>(seed, n + o);
                        let mut state = values::<T>(seed ^ 0xABCD, slots * n + o);
                        let mut scalars = rule.fresh_scalars();
                        // The last offset resumes at a late step, where every bias
                        // correction has rounded to 1 (which the lanes do not divide by).
                        if o == OFFSETS - 1 {
                            late(&mut scalars);
                        }
                        // The same steps with scratch memory (layer-wise rules: the
                        // update kept between the passes), from garbage scratch.
                        let (mut params2, mut state2) = (params.clone(), state.clone());
                        let mut scratch = values::<T>(seed ^ 0x5C5C, n + o);
                        let mut scalars2 = scalars;
                        for k in 0..STEPS {
                            let grads = values::<T>(seed ^ (k as u64 + 1) << 40, n + o);
                            let r = rule.step_flat(
                                &mut scalars,
                                &mut params[o..],
                                &grads[o..],
                                &mut state[o..],
                            );
                            if rule.whole_slice() {
                                let (mut rest, mut slots) = (&mut state2[o..], Vec::new());
                                for _ in 0..rule.state_slots() {
                                    let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
                                    slots.push(head);
                                    rest = tail;
                                }
                                let r2 = rule.step_scratch(
                                    &mut scalars2,
                                    &mut params2[o..],
                                    &grads[o..],
                                    &mut slots,
                                    &mut scratch[o..],
                                );
                                assert_eq!(r, r2, "{id} v{v} n {n} o {o}: with scratch");
                                let same = params[o..]
                                    .iter()
                                    .chain(&state[o..])
                                    .zip(params2[o..].iter().chain(&state2[o..]))
                                    .all(|(&a, &b)| bits(a) == bits(b));
                                assert!(same, "{id} v{v} n {n} o {o}: bits with scratch");
                            }
                            out.push(r.map(|()| {
                                params[o..]
                                    .iter()
                                    .chain(&state[o..])
                                    .map(|&x| bits(x))
                                    .collect()
                            }));
                        }
                    }
                }
            }
        }
        out
    }

    /// Lengths for the utilities: every tail of the 16 virtual lanes around 0, one and
    /// two 256-element blocks, and a long slice.
    fn utility_lengths() -> Vec<usize> {
        let mut out: Vec<usize> = (0..=40).collect();
        for base in [256, 512] {
            out.extend(base - 17..=base + 17);
        }
        out.push(3001);
        out
    }

    /// Bits of every utility's results (values returned and slices written) at the
    /// current level. `special`: one element in 7 of some slices is NaN or ±∞. Every NaN
    /// counts as one value: IEEE 754 leaves a produced NaN's sign open, and x86's default
    /// NaN is negative where a NaN operand's sign passes through (the props tests'
    /// convention too).
    fn utilities<T: Real>(bits: impl Fn(T) -> u64) -> Vec<u64> {
        let bits = |x: T| {
            if x.to_f64().is_nan() {
                u64::MAX - 1
            } else {
                bits(x)
            }
        };
        let mut out = Vec::new();
        let norms = [NormType::L1, NormType::L2, NormType::Inf];
        for n in utility_lengths() {
            for o in [0, 1, 3] {
                for special in [None, Some(f64::NAN), Some(f64::INFINITY)] {
                    let seed = (n * 4 + o) as u64;
                    let mut x = values::<T>(seed, n + o);
                    // Large values too, so that sums of squares are not all tiny.
                    for (i, e) in x.iter_mut().enumerate() {
                        if i % 11 == 3 {
                            *e = T::from_f64(e.to_f64() * 1e3);
                        }
                        if let (Some(s), 6) = (special, i % 7) {
                            *e = T::from_f64(if i % 2 == 0 { s } else { -s });
                        }
                    }
                    let y = values::<T>(seed ^ 0x5555, n / 2 + 1);
                    for norm in norms {
                        let t = total_norm::<T, &[T]>(&[&x[o..], &y], norm).expect("norm");
                        out.push(bits(t));
                    }
                    out.push(all_finite(&x[o..]) as u64);
                    for (scope, norm) in [
                        (ClipScope::Global, NormType::L2),
                        (ClipScope::PerSlice, NormType::Inf),
                        (ClipScope::PerSliceKeras, NormType::L1),
                    ] {
                        let (mut a, mut b) = (x.clone(), y.clone());
                        let clip = ClipNorm {
                            norm_type: norm,
                            scope,
                            ..ClipNorm::new(0.5)
                        };
                        let r = clip.clip(&mut [&mut a[o..], &mut b[..]]);
                        out.push(r.map_or(u64::MAX, &bits));
                        out.extend(a[o..].iter().chain(&b).map(|&e| bits(e)));
                    }
                    let mut a = x.clone();
                    let state = GradScaler::default().init().expect("scaler");
                    let found_inf = state.unscale(&mut [&mut a[o..]]).expect("unscale");
                    out.push(found_inf as u64);
                    out.extend(a[o..].iter().map(|&e| bits(e)));
                    let (mut a, mut acc) = (x.clone(), Accumulator::default());
                    for _ in 0..3 {
                        acc.add(&mut [&mut a[o..]], &[&x[o..]]).expect("add");
                    }
                    acc.finish(&mut [&mut a[o..]], Reduction::Mean);
                    out.extend(a[o..].iter().map(|&e| bits(e)));
                }
            }
        }
        out
    }

    fn check_level(level: Level, reference: &(Outcomes, Outcomes)) {
        assert!(isa::set_level(Some(level)));
        assert_eq!(isa::level(), level);
        let f32s = run_all::<f32>(|x| x.to_bits() as u64);
        let f64s = run_all::<f64>(f64::to_bits);
        assert_eq!(f32s.len(), reference.0.len());
        for (i, (got, want)) in f32s.iter().zip(&reference.0).enumerate() {
            assert_eq!(got, want, "f32 case {i} differs at level {}", level.name());
        }
        for (i, (got, want)) in f64s.iter().zip(&reference.1).enumerate() {
            assert_eq!(got, want, "f64 case {i} differs at level {}", level.name());
        }
    }

    /// The utilities at `level` against their results at the scalar level.
    fn check_utilities(level: Level, reference: &(Vec<u64>, Vec<u64>)) {
        assert!(isa::set_level(Some(level)));
        let f32s = utilities::<f32>(|x| x.to_bits() as u64);
        let f64s = utilities::<f64>(f64::to_bits);
        for (what, got, want) in [("f32", &f32s, &reference.0), ("f64", &f64s, &reference.1)] {
            assert_eq!(got.len(), want.len());
            if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
                panic!(
                    "{what} utilities differ at level {}: value {i}: {:#x} vs {:#x}",
                    level.name(),
                    got[i],
                    want[i]
                );
            }
        }
    }

    pub fn main() {
        let detected = isa::detected();
        println!(
            "isa: default level on this CPU and build: {}",
            detected.name()
        );
        assert!(isa::set_level(Some(Level::Scalar)));
        let reference = (
            run_all::<f32>(|x| x.to_bits() as u64),
            run_all::<f64>(f64::to_bits),
        );
        let ok = reference
            .0
            .iter()
            .chain(&reference.1)
            .filter(|r| r.is_ok())
            .count();
        // Steps that succeed are the point; an all-error reference would prove nothing.
        assert!(
            ok * 10 >= reference.0.len() * 2 * 9,
            "too few successful steps: {ok}"
        );
        println!(
            "isa: scalar: reference ({} rules, {} steps per type)",
            RuleId::ALL.len(),
            reference.0.len()
        );
        assert!(isa::set_level(Some(Level::Scalar)));
        let utilities_reference = (
            utilities::<f32>(|x| x.to_bits() as u64),
            utilities::<f64>(f64::to_bits),
        );
        // The utilities' results must not be trivial: finite norms and clipped values.
        let finite = utilities_reference
            .0
            .iter()
            .filter(|&&b| b < 1 << 32 && f32::from_bits(b as u32).is_finite() && b != 0)
            .count();
        assert!(finite * 2 > utilities_reference.0.len(), "{finite}");
        println!(
            "isa: scalar: utilities reference ({} values per type)",
            utilities_reference.0.len()
        );
        for level in [Level::Sse2, Level::Avx2, Level::Avx512] {
            if isa::available(level) {
                check_level(level, &reference);
                check_utilities(level, &utilities_reference);
                println!(
                    "isa: {}: tested (rules and utilities), bit-identical to scalar",
                    level.name()
                );
            } else {
                println!(
                    "isa: {}: not available on this CPU (or build), not tested",
                    level.name()
                );
            }
        }
        // Levels beyond the CPU's are refused, and the default comes back.
        for level in Level::ALL {
            assert_eq!(isa::set_level(Some(level)), level <= detected);
        }
        assert!(isa::set_level(None));
        assert_eq!(isa::level(), detected);
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    x86::main();
    #[cfg(target_arch = "aarch64")]
    println!(
        "isa: aarch64: NEON lanes only (baseline, nothing to select); the props tests \
         compare them with the scalar reference, the lib tests each lane op"
    );
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    println!("isa: neither x86-64 nor aarch64: the compile-time lanes only, nothing to select");
}
