//! Throughput of every rule's vectorized `step` and its scalar `step_reference`, in f32,
//! at a cache-resident size (4096 params) and a memory-bound one (2²⁰ params).
//!
//! Throughput is reported in bytes moved per step: params read and written, grads read,
//! every state slice read and written; compare it with the machine's memory bandwidth
//! (the `axpy` row is the floor: one read-modify-write of params plus a read of grads).
//!
//! The entries: every registered rule with torch's defaults, plus a few variants
//! (`tests/support/bench.rs`).
//!
//! Run: `cargo bench --bench rules` (add `-- adam` to filter).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gradstep::rules::AnyRule;
use gradstep::*;
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 2] = [4096, 1 << 20];

fn data(n: usize, seed: u32) -> Vec<f32> {
    // A cheap deterministic sequence in [-1, 1).
    let mut x = seed.wrapping_mul(2654435761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

fn bench_rule<R: Rule>(c: &mut Criterion, name: &str, rule: R) {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in SIZES {
        let slots = rule.state_slots();
        let bytes = (n * 4 * (3 + 2 * slots)) as u64;
        group.throughput(Throughput::Bytes(bytes));
        let mut params = data(n, 1);
        let grads = data(n, 2);
        let mut state: Vec<Vec<f32>> = (0..slots)
            .map(|k| data(n, 3 + k as u32).iter().map(|x| x.abs()).collect())
            .collect();
        // Start past step 0 so the timed steps are steady-state ones.
        let mut scalars = R::Scalars::default();
        {
            let mut st: Vec<&mut [f32]> = state.iter_mut().map(|s| &mut s[..]).collect();
            rule.step(&mut scalars, &mut params, &grads, &mut st)
                .expect("valid benchmark setup");
        }
        for (label, reference) in [("simd", false), ("scalar", true)] {
            group.bench_with_input(BenchmarkId::new(label, n), &n, |b, _| {
                b.iter(|| {
                    let mut st: Vec<&mut [f32]> = state.iter_mut().map(|s| &mut s[..]).collect();
                    // Reset the counter so that long runs never change the schedule.
                    let mut s = scalars;
                    let r = if reference {
                        rule.step_reference(&mut s, &mut params, black_box(&grads), &mut st)
                    } else {
                        rule.step(&mut s, &mut params, black_box(&grads), &mut st)
                    };
                    r.expect("valid benchmark step");
                })
            });
        }
    }
    group.finish();
}

/// The memory floor: `θ ← θ − γg`, a plain loop the compiler vectorizes itself.
fn bench_axpy(c: &mut Criterion) {
    let mut group = c.benchmark_group("axpy");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in SIZES {
        group.throughput(Throughput::Bytes((n * 4 * 3) as u64));
        let mut params = data(n, 1);
        let grads = data(n, 2);
        group.bench_with_input(BenchmarkId::new("loop", n), &n, |b, _| {
            b.iter(|| {
                for (p, g) in params.iter_mut().zip(black_box(&grads)) {
                    *p -= 1e-3 * g;
                }
            })
        });
    }
    group.finish();
}

/// [`bench_rule`] for the rule inside `rule`, whatever it is: one arm per registry row
/// (`gradstep::for_each_rule!`), so every registered rule can be benchmarked.
macro_rules! bench_any {
    ($({ id: $id:literal, rule: $r:ident, $($rest:tt)* }),* $(,)?) => {
        fn bench_any(c: &mut Criterion, name: &str, rule: AnyRule) {
            $(
                if let Ok(r) = $r::try_from(rule) {
                    return bench_rule(c, name, r);
                }
            )*
            panic!("{name}: rule {} is not in the registry", rule.name());
        }
    };
}

gradstep::for_each_rule!(bench_any);

fn rules(c: &mut Criterion) {
    bench_axpy(c);
    // Every registered rule with torch's defaults, and the variants
    // (gradstep_tests::bench, checked against the registry by tests/registry.rs).
    for (name, rule) in gradstep_tests::bench::entries() {
        bench_any(c, &name, rule);
    }
}

criterion_group!(benches, rules);
criterion_main!(benches);
