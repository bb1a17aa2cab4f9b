//! Properties of the Lookahead composite over every registered rule: with k = 1 and
//! α = 1 it is the wrapped rule bit for bit; the composite by name
//! (`Lookahead<AnyRule>`) equals the static `Lookahead<R>` and the scalar reference bit
//! for bit, for every momentum option and lengths across the lane tails; bad calls
//! write nothing; every composite prints as a spec that parses back to it.

use gradstep::checkpoint::ElementType;
use gradstep::lookahead::{Lookahead, SyncMomentum};
use gradstep::rules::{AnyRule, RuleId};
use gradstep::{Error, Real, Rule};

/// Deterministic data in [-1, 1) (xorshift), so failures reproduce.
fn data<T: Real>(seed: u64, n: usize) -> Vec<T> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            T::from_f64((x >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
        })
        .collect()
}

/// Each rule with its momentum (or β₁) switched on where it has one, so that rules
/// with a `momentum_buffer` have it.
fn inner_rules() -> Vec<AnyRule> {
    RuleId::ALL
        .iter()
        .map(|id| {
            let mut rule = id.default_rule();
            if rule.momentum() == Some(0.0) {
                rule.set_momentum(0.9).unwrap();
            }
            rule.set_lr(0.01);
            rule.checked().unwrap()
        })
        .collect()
}

fn bits<T: Real>(xs: &[Vec<T>]) -> Vec<u64> {
    xs.iter().flatten().map(|x| x.to_f64().to_bits()).collect()
}

fn views<T>(s: &mut [Vec<T>]) -> Vec<&mut [T]> {
    s.iter_mut().map(|x| &mut x[..]).collect()
}

#[test]
fn k1_alpha1_is_the_wrapped_rule() {
    for inner in inner_rules() {
        for momentum in SyncMomentum::ALL {
            let la = Lookahead {
                k: 1,
                alpha: 1.0,
                momentum: if momentum == SyncMomentum::Reset {
                    // Reset zeroes the momentum whatever α: not the identity.
                    SyncMomentum::None
                } else {
                    momentum
                },
                ..Lookahead::new(inner)
            };
            let n = 19;
            let (mut p, mut q) = (data::<f32>(1, n), data::<f32>(1, n));
            let mut s = vec![vec![3.0f32; n]; la.state_slots()];
            let mut r = vec![vec![3.0f32; n]; inner.state_slots()];
            let (mut sc, mut rc) = (la.fresh_scalars(), inner.fresh_scalars());
            for t in 0..7 {
                let g = data::<f32>(100 + t, n);
                la.step(&mut sc, &mut p, &g, &mut views(&mut s)).unwrap();
                inner.step(&mut rc, &mut q, &g, &mut views(&mut r)).unwrap();
                assert_eq!(bits(&[p.clone()]), bits(&[q.clone()]), "{la}: step {t}");
                assert_eq!(bits(&s[..r.len()]), bits(&r), "{la}: state, step {t}");
                assert_eq!(s[r.len()], p, "{la}: slow weights follow");
            }
            assert_eq!(sc, rc);
        }
    }
}

/// The static `Lookahead<R>` for the rule inside `any`, run side by side with the
/// composite by name and its reference; every bit equal at every step.
macro_rules! static_equals_composite {
    ($({ id: $id:literal, rule: $rule:ident, $($rest:tt)* }),* $(,)?) => {
        fn static_equals_composite<T: Real>(la: Lookahead<AnyRule>, n: usize, steps: u64) {
            match la.rule {
                $(AnyRule::$rule(r) => {
                    let st = Lookahead { rule: r, k: la.k, alpha: la.alpha, momentum: la.momentum };
                    assert_eq!(st.slot_names().collect::<Vec<_>>(),
                        la.slot_names().collect::<Vec<_>>());
                    let mut p = [data::<T>(7, n), data::<T>(7, n), data::<T>(7, n)];
                    let garbage = vec![T::from_f64(-5.0); n];
                    let mut s = [vec![garbage.clone(); la.state_slots()],
                        vec![garbage.clone(); la.state_slots()],
                        vec![garbage; la.state_slots()]];
                    let mut sc_static = <gradstep::$rule as Rule>::Scalars::default();
                    let (mut sc_any, mut sc_ref) = (la.fresh_scalars(), la.fresh_scalars());
                    for t in 0..steps {
                        let g = data::<T>(1000 + t, n);
                        let [p0, p1, p2] = &mut p;
                        let [s0, s1, s2] = &mut s;
                        st.step(&mut sc_static, p0, &g, &mut views(s0)).unwrap();
                        la.step(&mut sc_any, p1, &g, &mut views(s1)).unwrap();
                        la.step_reference(&mut sc_ref, p2, &g, &mut views(s2)).unwrap();
                        let b = bits(std::slice::from_ref(p0));
                        assert_eq!(b, bits(std::slice::from_ref(p1)), "{la} n={n}: static vs by name, step {t}");
                        assert_eq!(b, bits(std::slice::from_ref(p2)), "{la} n={n}: fast vs reference, step {t}");
                        assert_eq!(bits(s0), bits(s1), "{la} n={n}: state, step {t}");
                        assert_eq!(bits(s0), bits(s2), "{la} n={n}: reference state, step {t}");
                    }
                    assert_eq!(sc_any.step(), steps);
                })*
                _ => unreachable!("every registered rule has an arm"),
            }
        }
    };
}

gradstep::for_each_rule!(static_equals_composite);

#[test]
fn by_name_equals_static_and_reference_for_every_rule() {
    for inner in inner_rules() {
        for momentum in SyncMomentum::ALL {
            for (k, alpha) in [(3, 0.3), (2, 0.8), (1, 0.5)] {
                let la = Lookahead {
                    k,
                    alpha,
                    momentum,
                    ..Lookahead::new(inner)
                };
                for n in [0, 1, 3, 8, 17, 33] {
                    static_equals_composite::<f32>(la, n, 7);
                }
                static_equals_composite::<f64>(la, 13, 7);
            }
        }
    }
}

#[test]
fn the_sync_pulls_params_and_momentum_back() {
    // SGD with momentum, k = 2, α = 0.25: after step 2 the params are
    // φ + 0.25(θ − φ) (torch.lerp's second formula, exact here), and with pullback the
    // momentum buffer is 0.25 of the fast one (the slow momentum starts at 0).
    let inner = AnyRule::parse("sgd:lr=0.5,momentum=0.5").unwrap();
    for momentum in SyncMomentum::ALL {
        let la = Lookahead {
            k: 2,
            alpha: 0.25,
            momentum,
            ..Lookahead::new(inner)
        };
        let mut p = vec![1.0f64];
        let mut s = vec![vec![0.0f64]; la.state_slots()];
        let mut sc = la.fresh_scalars();
        for _ in 0..2 {
            la.step(&mut sc, &mut p, &[1.0], &mut views(&mut s))
                .unwrap();
        }
        // Fast: b = 1, θ = 0.5; b = 1.5, θ = -0.25. Sync: 1 + 0.25(-0.25 - 1).
        assert_eq!(p, [0.6875], "{la}");
        assert_eq!(s[1], [0.6875], "{la}: slow weights");
        let b = match momentum {
            SyncMomentum::None => 1.5,
            SyncMomentum::Reset => 0.0,
            SyncMomentum::Pullback => 0.375,
        };
        assert_eq!(s[0], [b], "{la}: momentum buffer");
        if momentum == SyncMomentum::Pullback {
            assert_eq!(s[2], [0.375], "{la}: slow momentum");
        }
    }
}

#[test]
fn refused_calls_write_nothing() {
    for inner in inner_rules() {
        let la = Lookahead {
            momentum: SyncMomentum::Pullback,
            ..Lookahead::new(inner)
        };
        let n = 5;
        let slots = la.state_slots();
        let g = data::<f32>(3, n);
        let mut bad_inner = inner;
        bad_inner.set_lr(-1.0);
        let cases: [(Lookahead<AnyRule>, usize, usize, usize); 6] = [
            (Lookahead { k: 0, ..la }, n, n, slots),
            (Lookahead { alpha: -0.5, ..la }, n, n, slots),
            (
                Lookahead {
                    alpha: f64::INFINITY,
                    ..la
                },
                n,
                n,
                slots,
            ),
            (
                Lookahead {
                    rule: bad_inner,
                    ..la
                },
                n,
                n,
                slots,
            ),
            (la, n, n - 1, slots),
            (la, n, n, slots - 1),
        ];
        for (bad, grads, slow_len, count) in cases {
            let mut p = data::<f32>(4, n);
            let mut s = vec![vec![2.0f32; n]; count];
            if count == slots {
                s[slots - 2] = vec![2.0; slow_len];
            }
            let (p0, s0) = (p.clone(), s.clone());
            let mut sc = bad.fresh_scalars();
            let sc0 = sc;
            let err = bad.step(&mut sc, &mut p, &g[..grads], &mut views(&mut s));
            assert!(err.is_err(), "{bad}: accepted");
            let err_ref = bad.step_reference(&mut sc, &mut p, &g[..grads], &mut views(&mut s));
            assert_eq!(err, err_ref, "{bad}: the reference refuses alike");
            if bad.k == 0 || bad.alpha != la.alpha || bad.rule != la.rule {
                assert!(matches!(err, Err(Error::InvalidHyperparameter { .. })));
            }
            assert_eq!((p, s, sc), (p0, s0, sc0), "{bad}: wrote on refusal");
        }
    }
}

#[test]
fn every_composite_prints_as_a_spec_that_parses_back() {
    for inner in inner_rules() {
        for momentum in SyncMomentum::ALL {
            let la = Lookahead {
                k: 7,
                alpha: 0.1 + 0.2,
                momentum,
                ..Lookahead::new(inner)
            };
            let text = la.to_string();
            assert!(Lookahead::is_spec(&text), "{text}");
            assert_eq!(Lookahead::parse(&text), Ok(la), "{text}");
        }
    }
}

/// A composite's checkpoint (the wrapped rule's kernel checkpoint plus the Lookahead
/// trailer) restores into garbage buffers and resumes bit for bit, for every rule and
/// momentum option; a corrupted trailer or a plain kernel checkpoint is refused with
/// the buffers untouched.
#[test]
fn checkpoints_round_trip_and_resume_bit_for_bit() {
    let n = 11;
    for inner in inner_rules() {
        for momentum in SyncMomentum::ALL {
            let la = Lookahead {
                k: 2,
                alpha: 0.3,
                momentum,
                ..Lookahead::new(inner)
            };
            let mut p = data::<f32>(5, n);
            let mut s = vec![vec![0.0f32; n]; la.state_slots()];
            let mut sc = la.fresh_scalars();
            for t in 0..3 {
                let g = data::<f32>(200 + t, n);
                la.step(&mut sc, &mut p, &g, &mut views(&mut s)).unwrap();
            }
            let len = la.checkpoint_len::<f32>(n, true).unwrap();
            let mut bytes = vec![0u8; len + 5];
            let (p0, s0, sc0) = (p.clone(), s.clone(), sc);
            let views_ro: Vec<&[f32]> = s0.iter().map(|x| &x[..]).collect();
            let written = la
                .encode_checkpoint(&sc, &views_ro, Some(&p), &mut bytes)
                .unwrap();
            assert_eq!(written, len, "{la}");
            bytes.truncate(len);

            let mut q = vec![9.0f32; n];
            let mut r = vec![vec![9.0f32; n]; la.state_slots()];
            let (back, mut rc) =
                Lookahead::decode_checkpoint(&bytes, &mut views(&mut r), Some(&mut q)).unwrap();
            assert_eq!((back, rc), (la, sc), "{la}");
            assert_eq!(bits(&[q.clone()]), bits(&[p.clone()]), "{la}: params");
            assert_eq!(bits(&r), bits(&s), "{la}: state");
            for t in 3..7 {
                let g = data::<f32>(200 + t, n);
                la.step(&mut sc, &mut p, &g, &mut views(&mut s)).unwrap();
                back.step(&mut rc, &mut q, &g, &mut views(&mut r)).unwrap();
            }
            assert_eq!(bits(&[q.clone()]), bits(&[p.clone()]), "{la}: resumed");

            // Refusals: a flipped trailer byte, a trailer cut off, a plain checkpoint.
            let mut forged = bytes.clone();
            let last = forged.len() - 12;
            forged[last] ^= 1;
            let m = inner.state_slots();
            let mut plain = vec![0u8; inner.encoded_len(ElementType::F32, n, true).unwrap()];
            gradstep::checkpoint::encode_any(&inner, &sc0, &views_ro[..m], Some(&p0), &mut plain)
                .unwrap();
            for bad in [&forged[..], &bytes[..bytes.len() - 1], &plain[..]] {
                let mut r2 = vec![vec![9.0f32; n]; la.state_slots()];
                assert!(
                    Lookahead::decode_checkpoint::<f32>(bad, &mut views(&mut r2), None).is_err(),
                    "{la}"
                );
                assert!(
                    r2.iter().flatten().all(|&x| x == 9.0),
                    "{la}: wrote on refusal"
                );
            }
        }
    }
}
