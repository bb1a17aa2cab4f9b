//! The bias-correction powers cached in `StepCount` never change a result: training with
//! one `StepCount` carried from step to step gives the same bits as training where the
//! cache is dropped before every step (`StepCount::new(step)`, as a restored checkpoint
//! or the C per-call API has it), also when β₁ changes between steps (a schedule cycling
//! it), when training resumes from an earlier step, and when it starts far into training.

use gradstep::*;

/// Params, grads and state for `n` elements of a rule with `slots` state slices.
struct Run {
    params: Vec<f64>,
    state: Vec<f64>,
    scalars: StepCount,
}

impl Run {
    fn new(n: usize, slots: usize, start: u64) -> Run {
        Run {
            params: (0..n).map(|i| (i as f64 * 0.37).sin()).collect(),
            state: vec![0.0; n * slots],
            scalars: StepCount::new(start),
        }
    }
}

fn grads(n: usize, step: u64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + 1.0) * 0.61 + step as f64 * 0.13).cos() * 0.1)
        .collect()
}

/// Steps `make(k)` on two runs for `steps` steps: `cached` keeps its `StepCount`,
/// `fresh` gets `StepCount::new(step)` before every step. `rewind` (every so often)
/// takes both back to an earlier step count, as resuming from an old checkpoint would.
fn same_bits<R: Rule<Scalars = StepCount>>(
    start: u64,
    steps: u64,
    rewind: Option<u64>,
    make: impl Fn(u64) -> R,
) {
    let n = 37;
    let slots = make(0).state_slots();
    let (mut cached, mut fresh) = (Run::new(n, slots, start), Run::new(n, slots, start));
    for k in 0..steps {
        if let Some(every) = rewind
            && k % every == every - 1
        {
            let back = cached.scalars.step / 2 + 1;
            cached.scalars.step = back;
            fresh.scalars.step = back;
        }
        let rule = make(k);
        let g = grads(n, k);
        fresh.scalars = StepCount::new(fresh.scalars.step);
        rule.step_flat(
            &mut cached.scalars,
            &mut cached.params,
            &g,
            &mut cached.state,
        )
        .unwrap();
        rule.step_flat(&mut fresh.scalars, &mut fresh.params, &g, &mut fresh.state)
            .unwrap();
        assert_eq!(cached.scalars, fresh.scalars);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&cached.params),
            bits(&fresh.params),
            "{} step {k}",
            R::NAME
        );
        assert_eq!(
            bits(&cached.state),
            bits(&fresh.state),
            "{} step {k}",
            R::NAME
        );
    }
}

#[test]
fn adam_family_cache_is_invisible() {
    for (start, rewind) in [
        (0, None),
        (0, Some(17)),
        (999_990, None),
        (1 << 40, Some(5)),
    ] {
        same_bits(start, 120, rewind, |_| Adam {
            lr: 0.01,
            ..Adam::default()
        });
        same_bits(start, 120, rewind, |_| AdamW::default());
        same_bits(start, 120, rewind, |_| Adamax::default());
        same_bits(start, 120, rewind, |_| RAdam::default());
        // β₁ cycling as CyclicLR / OneCycleLR with cycle_momentum do it for Adam.
        same_bits(start, 120, rewind, |k| Adam {
            beta1: 0.85 + 0.01 * (k % 10) as f64,
            amsgrad: true,
            ..Adam::default()
        });
        same_bits(start, 120, rewind, |k| RAdam {
            beta2: if k % 3 == 0 { 0.999 } else { 0.99 },
            ..RAdam::default()
        });
    }
}

#[test]
fn the_cache_is_not_part_of_the_state() {
    let adam = Adam::default();
    let mut scalars = StepCount::default();
    let (mut p, g, mut s) = ([1.0f32; 4], [0.5f32; 4], [0.0f32; 8]);
    for _ in 0..3 {
        adam.step_flat(&mut scalars, &mut p, &g, &mut s).unwrap();
    }
    assert_eq!(scalars, StepCount::new(3));
    assert_ne!(scalars, StepCount::new(4));
    assert_eq!(format!("{scalars:?}"), "StepCount { step: 3 }");
    let mut out = vec![0u8; 256];
    let (a, b) = (
        checkpoint::encode::<_, f32>(&adam, &scalars, &[&s[..4], &s[4..]], None, &mut out).unwrap(),
        out.clone(),
    );
    let mut out2 = vec![0u8; 256];
    let c = checkpoint::encode::<_, f32>(
        &adam,
        &StepCount::new(3),
        &[&s[..4], &s[4..]],
        None,
        &mut out2,
    )
    .unwrap();
    assert_eq!(b[..a], out2[..c]);
}
