//! The powers cached in `StepCount` and `NAdamScalars` never change a result: training
//! with one scalar state carried from step to step gives the same bits as training where
//! the cache is dropped before every step (`StepCount::new(step)`,
//! `NAdamScalars::new(step, mu_product)`, as a restored checkpoint or the C per-call API
//! has it), also when β₁ or β₂ (or NAdam's ψ) changes between steps (a schedule cycling
//! it), when training resumes from an earlier step, and when it starts far into training.

use gradstep::*;

/// A scalar state with a cache to drop.
trait Cached: Copy + PartialEq + core::fmt::Debug {
    /// The state after `step` steps (whatever else it holds is kept).
    fn at(step: u64, like: Option<Self>) -> Self;
    /// The same state without its cache.
    fn uncached(&self) -> Self;
    fn step(&self) -> u64;
}

impl Cached for StepCount {
    fn at(step: u64, _: Option<Self>) -> Self {
        StepCount::new(step)
    }
    fn uncached(&self) -> Self {
        StepCount::new(self.step)
    }
    fn step(&self) -> u64 {
        self.step
    }
}

impl Cached for NAdamScalars {
    fn at(step: u64, like: Option<Self>) -> Self {
        NAdamScalars::new(step, like.map_or(1.0, |s| s.mu_product))
    }
    fn uncached(&self) -> Self {
        NAdamScalars::new(self.step, self.mu_product)
    }
    fn step(&self) -> u64 {
        self.step
    }
}

/// Params, grads and state for `n` elements of a rule with `slots` state slices.
struct Run<S> {
    params: Vec<f64>,
    state: Vec<f64>,
    scalars: S,
}

impl<S: Cached> Run<S> {
    fn new(n: usize, slots: usize, start: u64) -> Run<S> {
        Run {
            params: (0..n).map(|i| (i as f64 * 0.37).sin()).collect(),
            state: vec![0.0; n * slots],
            scalars: S::at(start, None),
        }
    }
}

fn grads(n: usize, step: u64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + 1.0) * 0.61 + step as f64 * 0.13).cos() * 0.1)
        .collect()
}

/// Steps `make(k)` on two runs for `steps` steps: `cached` keeps its scalar state,
/// `fresh` gets it without its cache before every step. `rewind` (every so often)
/// takes both back to an earlier step count, as resuming from an old checkpoint would.
fn same_bits<R: Rule<Scalars: Cached>>(
    start: u64,
    steps: u64,
    rewind: Option<u64>,
    make: impl Fn(u64) -> R,
) {
    let n = 37;
    let slots = make(0).state_slots();
    let (mut cached, mut fresh) = (
        Run::<R::Scalars>::new(n, slots, start),
        Run::<R::Scalars>::new(n, slots, start),
    );
    for k in 0..steps {
        if let Some(every) = rewind
            && k % every == every - 1
        {
            let back = cached.scalars.step() / 2 + 1;
            cached.scalars = Cached::at(back, Some(cached.scalars));
            fresh.scalars = Cached::at(back, Some(fresh.scalars));
        }
        let rule = make(k);
        let g = grads(n, k);
        fresh.scalars = fresh.scalars.uncached();
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

/// Where the runs start (fresh, far into training) and how often they rewind.
const STARTS: [(u64, Option<u64>); 4] = [
    (0, None),
    (0, Some(17)),
    (999_990, None),
    (1 << 40, Some(5)),
];

#[test]
fn adam_family_cache_is_invisible() {
    for (start, rewind) in STARTS {
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
fn nadam_cache_is_invisible() {
    for (start, rewind) in STARTS {
        same_bits(start, 120, rewind, |_| NAdam::default());
        same_bits(start, 120, rewind, |_| NAdam {
            momentum_decay: 0.0,
            ..NAdam::default()
        });
        // β₂ and ψ changing between steps: each cached power is keyed by its base or
        // exponent.
        same_bits(start, 120, rewind, |k| NAdam {
            beta2: if k % 3 == 0 { 0.999 } else { 0.99 },
            momentum_decay: if k % 4 < 2 { 4e-3 } else { 5e-3 },
            ..NAdam::default()
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
