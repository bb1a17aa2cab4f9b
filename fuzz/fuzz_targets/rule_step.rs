//! Every rule stepped with hostile hyperparameters, lengths and values: no panic; a
//! refused step leaves params, state and scalar state exactly as they were; an accepted
//! one advances the step counter by one.
#![no_main]

use gradstep::Real;
use gradstep::rules::{AnyRule, FieldKind, RuleId, Value};
use gradstep_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

/// Mostly values a caller would pass (so that steps get past validation), sometimes
/// any bits at all.
fn value(b: &mut Bytes<'_>) -> f64 {
    const TYPICAL: [f64; 16] = [
        0.0, 1e-3, 0.9, 0.999, 1e-8, 0.5, 1.0, 1.2, 1e-6, 50.0, 0.99, 1e4, -0.0, 1e-300, 0.1, 2.0,
    ];
    b.f64_from(&TYPICAL, 191)
}

fn step<T: Real>(rule: &AnyRule, b: &mut Bytes<'_>) {
    let n = usize::from(b.u8()) + usize::from(b.u8() & 1) * 256;
    let slots = rule.state_slots();
    // Usually the right state length; sometimes off by one either way.
    let state_len = (slots * n).saturating_add_signed(match b.u8() {
        0..=249 => 0,
        250..=252 => 1,
        _ => -1,
    });
    let mut params: Vec<T> = (0..n).map(|_| T::from_f64(value(b))).collect();
    let grads: Vec<T> = (0..n).map(|_| T::from_f64(value(b))).collect();
    let mut state: Vec<T> = (0..state_len).map(|_| T::from_f64(value(b))).collect();
    let mut scalars = rule.fresh_scalars();
    for _ in 0..1 + b.u8() % 4 {
        let before = (params.clone(), state.clone(), scalars);
        let same = |a: &[T], b: &[T]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits())
        };
        match rule.step_flat(&mut scalars, &mut params, &grads, &mut state) {
            Ok(()) => assert_eq!(scalars.step(), before.2.step() + 1),
            Err(_) => {
                assert!(same(&params, &before.0), "a refused step wrote params");
                assert!(same(&state, &before.1), "a refused step wrote state");
                assert_eq!(scalars, before.2, "a refused step changed the scalar state");
                return;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let id = RuleId::ALL[usize::from(b.u8()) % RuleId::ALL.len()];
    let mut rule = id.default_rule();
    for field in id.fields() {
        if b.u8() < 128 {
            continue; // keep torch's default
        }
        let value = match field.kind {
            FieldKind::Number => Value::Number(value(&mut b)),
            FieldKind::Flag => Value::Flag(b.u8() & 1 == 1),
            FieldKind::Choice(names) => Value::Choice(names[usize::from(b.u8()) % names.len()]),
        };
        rule.set(field.name, value)
            .expect("a field the registry lists");
    }
    if b.u8() & 1 == 0 {
        step::<f32>(&rule, &mut b);
    } else {
        step::<f64>(&rule, &mut b);
    }
});
