//! Every rule gives the same bits on every instruction-set level this machine has
//! (x86-64: scalar, SSE2, AVX2, AVX-512F), selected with the hidden override
//! `gradstep::isa::set_level`: lengths 0..=70 (every tail of every width), unaligned
//! starts, each rule's flags and weight decay, three steps from garbage state.
//!
//! A custom harness (`harness = false`) so that the report of which levels ran, and
//! which this CPU lacks, is always printed rather than captured.

#[cfg(target_arch = "x86_64")]
mod x86 {
    use gradstep::isa::{self, Level};
    use gradstep::rules::{AnyRule, FieldKind, RuleId, Value};
    use gradstep::{Error, Real};

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
                match i % 13 {
                    5 => T::ZERO,
                    9 => T::from_f64(-0.0),
                    _ => T::from_f64((x >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0),
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
                        for k in 0..STEPS {
                            let grads = values::<T>(seed ^ (k as u64 + 1) << 40, n + o);
                            let r = rule.step_flat(
                                &mut scalars,
                                &mut params[o..],
                                &grads[o..],
                                &mut state[o..],
                            );
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
        for level in [Level::Sse2, Level::Avx2, Level::Avx512] {
            if isa::available(level) {
                check_level(level, &reference);
                println!("isa: {}: tested, bit-identical to scalar", level.name());
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
    #[cfg(not(target_arch = "x86_64"))]
    println!("isa: not x86-64: the compile-time lanes only, nothing to select");
}
