//! Per-step conformance with `torch.optim` ("teacher forcing"), and trajectory drift.
//!
//! `tests/fixtures/torch/steps.{json,bin}` (`record_steps.py`) hold torch's full state
//! (params, every state tensor, every 0-dim scalar state) at sampled steps of runs over
//! hard regimes, recorded with three sets of torch CPU kernels: `simd` (AVX512 here: fused
//! multiply-adds), `scalar` (`ATEN_CPU_CAPABILITY=default`) and `scalar_crsqrt` (the scalar
//! kernels with a correctly rounded square root in place of torch's).
//!
//! [`per_step`]: for every stored step k whose predecessor k−1 is stored, gradstep starts
//! from torch's state at k−1 (params, state slices, scalar state, all through the public
//! API: [`AnyRule`] fields by name, [`AnyScalars`]) and takes step k with the same
//! gradient; every element of its params, state slices and scalar state is compared with
//! torch's in ulps (see [`ulps`]), against the per-step bounds of the tolerance table
//! ([`gradstep_tests::tolerance::per_step_ulps`]). Against `scalar_crsqrt` the bound is 0:
//! bit-identical, every rule, every element.
//!
//! [`trajectories`]: gradstep runs each case from step 0 on its own; its distance from
//! torch at every stored step is set next to the distance between torch's own kernel
//! sets (the yardstick), and against `scalar_crsqrt` the whole trajectory must be
//! bit-identical.

use std::collections::BTreeMap;

use gradstep::rules::{AnyRule, AnyScalars, RuleId, Value};
use gradstep::{Real, StepCount};
use gradstep_tests::steps::{self, Bits, Snapshot, StepCase, StepFixture};
use gradstep_tests::tolerance::{PER_STEP_KERNELS, Tolerance, per_step_ulps, tolerance};

/// The kernel sets recorded.
const KERNELS: [&str; 3] = PER_STEP_KERNELS;

/// Cases whose comparison with one kernel set is a named difference from torch instead
/// of a rounding bound (README, "Deliberate differences from torch"), and the test that
/// pins it. Centered RMSprop with α = 0 has v = g² and ḡ = g, so v − ḡ² is exactly 0
/// unfused (gradstep, torch's scalar kernels); torch's fused kernels compute the
/// rounding error of g² instead: NaN where it is negative, a finite wrong variance where
/// it is positive.
const NAMED: &[(&str, &str, &str)] = &[(
    "rmsprop_centered_alpha0_",
    "simd",
    "centered_rmsprop_alpha0_differs_from_fused_torch_only",
)];

fn named(case: &StepCase, kernel: &str) -> bool {
    NAMED
        .iter()
        .any(|(prefix, k, _)| case.name.starts_with(prefix) && *k == kernel)
}

/// The case's rule, with every recorded hyperparameter set by name.
fn rule_of(case: &StepCase) -> AnyRule {
    let mut rule = AnyRule::named(&case.rule).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    assert_eq!(
        rule.fields().len(),
        case.hyper.len(),
        "{}: fields",
        case.name
    );
    for (field, value) in &case.hyper {
        let value = match value {
            serde_json::Value::Bool(b) => Value::Flag(*b),
            other => Value::Number(other.as_f64().expect("a number or a flag")),
        };
        rule.set(field, value)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }
    rule.checked()
        .unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

/// torch's scalar state at `snap`, as gradstep's, through the public types.
fn scalars_at(rule: &AnyRule, case: &StepCase, snap: &Snapshot) -> AnyScalars {
    let mut scalars = rule.fresh_scalars();
    if snap.step == 0 {
        return scalars;
    }
    let get = |name: &str| -> f64 {
        let i = case
            .scalars
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("{}: torch has no scalar {name}", case.name));
        snap.scalars[i]
    };
    if case.scalars.iter().any(|n| n == "step") {
        assert_eq!(get("step"), snap.step as f64, "{}: step", case.name);
    }
    match &mut scalars {
        AnyScalars::Step(s) => *s = StepCount::new(snap.step),
        AnyScalars::NAdam(s) => {
            s.step = snap.step;
            s.mu_product = get("mu_product");
        }
        AnyScalars::Asgd(s) => {
            s.step = snap.step;
            s.eta = get("eta");
            s.mu = get("mu");
        }
    }
    scalars
}

/// gradstep's scalar state under torch's names.
fn scalar_values(scalars: &AnyScalars) -> Vec<(&'static str, f64)> {
    match scalars {
        AnyScalars::Step(s) => vec![("step", s.step as f64)],
        AnyScalars::NAdam(s) => vec![("step", s.step as f64), ("mu_product", s.mu_product)],
        AnyScalars::Asgd(s) => vec![("step", s.step as f64), ("eta", s.eta), ("mu", s.mu)],
    }
}

/// The distance of `ours` from `torch`, in ulps of the element type at the larger of
/// `|torch|` and `|before|` (the same element before the step): the unit of the
/// result, except where the step cancels (θ − u with u ≈ θ, a momentum that reverses),
/// where it is the unit of the operands, since a rounding difference in an operand can
/// be many ulps of a cancelled result. Both NaN: 0; one NaN: infinite.
fn ulps<T: Bits>(ours: f64, torch: f64, before: f64) -> f64 {
    if ours.is_nan() && torch.is_nan() || ours == torch {
        return 0.0;
    }
    if ours.is_nan() || torch.is_nan() {
        return f64::INFINITY;
    }
    (ours - torch).abs() / T::ulp(torch.abs().max(before.abs()))
}

/// The worst element of a set of comparisons.
#[derive(Default)]
struct Worst {
    ulps: f64,
    at: String,
    compared: usize,
    differ: usize,
}

impl Worst {
    fn add(&mut self, u: f64, at: impl FnOnce() -> String) {
        self.compared += 1;
        if u != 0.0 {
            self.differ += 1;
        }
        if u > self.ulps {
            self.ulps = u;
            self.at = at();
        }
    }

    fn merge(&mut self, other: Worst) {
        self.compared += other.compared;
        self.differ += other.differ;
        if other.ulps > self.ulps {
            self.ulps = other.ulps;
            self.at = other.at;
        }
    }
}

/// Step `after.step` from torch's state `before`, compared with torch's `after`.
fn teacher_forced<T: Real + Bits>(
    rule: &AnyRule,
    case: &StepCase,
    before: &Snapshot,
    after: &Snapshot,
) -> Worst {
    let cast = |xs: &[f64]| -> Vec<T> { xs.iter().map(|&x| T::from_f64(x)).collect() };
    let n = case.n;
    let slot_of = |name: &str| -> usize {
        case.slots
            .iter()
            .position(|s| s == name)
            .unwrap_or_else(|| panic!("{}: torch has no state {name}", case.name))
    };
    let names = rule.slot_names();
    assert_eq!(names.len(), case.slots.len(), "{}: state slices", case.name);
    let mut params = cast(&before.params);
    let mut state: Vec<Vec<T>> = names
        .iter()
        .map(|name| match before.step {
            0 => vec![T::ZERO; n],
            _ => cast(&before.slots[slot_of(name)]),
        })
        .collect();
    let mut scalars = scalars_at(rule, case, before);
    let grads = cast(&steps::values(&case.grads, after.step, n));
    let mut slots: Vec<&mut [T]> = state.iter_mut().map(|s| &mut s[..]).collect();
    rule.step(&mut scalars, &mut params, &grads, &mut slots)
        .unwrap_or_else(|e| panic!("{}: step {}: {e}", case.name, after.step));

    let mut worst = Worst::default();
    let k = after.step;
    for (i, p) in params.iter().enumerate() {
        let (ours, torch) = (p.to_f64(), after.params[i]);
        worst.add(ulps::<T>(ours, torch, before.params[i]), || {
            format!("step {k} params[{i}]: ours {ours:e}, torch {torch:e}")
        });
    }
    for (name, slot) in names.iter().zip(&state) {
        let j = slot_of(name);
        for (i, x) in slot.iter().enumerate() {
            let (ours, torch) = (x.to_f64(), after.slots[j][i]);
            let prior = if before.step == 0 {
                0.0
            } else {
                before.slots[j][i]
            };
            worst.add(ulps::<T>(ours, torch, prior), || {
                format!("step {k} {name}[{i}]: ours {ours:e}, torch {torch:e}")
            });
        }
    }
    let ours = scalar_values(&scalars);
    for (j, name) in case.scalars.iter().enumerate() {
        let (_, mine) = ours
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{}: gradstep has no scalar {name}", case.name));
        let torch = after.scalars[j];
        worst.add(ulps::<T>(*mine, torch, torch), || {
            format!("step {k} scalar {name}: ours {mine:e}, torch {torch:e}")
        });
    }
    worst
}

/// Every rule has cases in both dtypes, recorded with every kernel set.
#[test]
fn every_rule_is_recorded_per_step() {
    let fixture = StepFixture::load();
    let index = &fixture.index;
    assert!(index.generator.ends_with("record_steps.py"));
    assert!(index.torch_version.starts_with("2."));
    for k in KERNELS {
        assert!(index.kernels.contains_key(k), "no {k} recording");
    }
    assert_eq!(index.kernels["scalar"], "DEFAULT");
    // Rules torch lacks are checked against their own references by trajectory.
    for &id in RuleId::ALL.iter().filter(|id| id.torch_name().is_some()) {
        for dtype in ["f32", "f64"] {
            let cases: Vec<&StepCase> = index
                .cases
                .iter()
                .filter(|c| c.rule == id.name() && c.dtype == dtype)
                .collect();
            assert!(
                cases.len() >= 5,
                "{id} {dtype}: {} per-step cases",
                cases.len()
            );
            assert!(
                cases.iter().any(|c| c.steps >= 1000),
                "{id} {dtype}: no long run"
            );
            assert!(
                cases.iter().any(|c| c.n == 1000),
                "{id} {dtype}: no n = 1000"
            );
            for c in cases {
                assert_eq!(c.offsets.len(), KERNELS.len(), "{}", c.name);
                assert_eq!(c.recorded.first(), Some(&0), "{}", c.name);
                assert_eq!(c.recorded.last(), Some(&c.steps), "{}", c.name);
            }
        }
    }
}

/// The generator reproduces the recording's gradients: the CRC-32 of every gradient of
/// every case, in its dtype.
#[test]
fn gradients_are_the_recorded_ones() {
    let fixture = StepFixture::load();
    for case in &fixture.index.cases {
        let mut crc = 0;
        for k in 1..=case.steps {
            let g = steps::values(&case.grads, k, case.n);
            let bytes: Vec<u8> = match case.dtype.as_str() {
                "f32" => g.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect(),
                _ => g.iter().flat_map(|&x| x.to_le_bytes()).collect(),
            };
            crc = steps::crc32(crc, &bytes);
        }
        assert_eq!(crc, case.grads_crc32, "{}: gradients", case.name);
        // The initial params are the generator's step 0.
        let p0 = steps::values(&case.grads, 0, case.n);
        let snap = &fixture.snapshots(case, "simd")[0];
        let cast: Vec<f64> = match case.dtype.as_str() {
            "f32" => p0.iter().map(|&x| x as f32 as f64).collect(),
            _ => p0,
        };
        assert_eq!(snap.params, cast, "{}: initial params", case.name);
    }
}

#[test]
fn per_step() {
    let fixture = StepFixture::load();
    // (rule, dtype, kernels) → worst.
    let mut table: BTreeMap<(String, String, &str), Worst> = BTreeMap::new();
    let mut transitions = 0;
    for case in &fixture.index.cases {
        let rule = rule_of(case);
        for kernel in KERNELS {
            if named(case, kernel) {
                continue;
            }
            let snaps = fixture.snapshots(case, kernel);
            let entry = table
                .entry((case.rule.clone(), case.dtype.clone(), kernel))
                .or_default();
            for pair in snaps.windows(2) {
                if pair[1].step != pair[0].step + 1 {
                    continue;
                }
                transitions += 1;
                let mut w = match case.dtype.as_str() {
                    "f32" => teacher_forced::<f32>(&rule, case, &pair[0], &pair[1]),
                    _ => teacher_forced::<f64>(&rule, case, &pair[0], &pair[1]),
                };
                w.at = format!("{}: {}", case.name, w.at);
                entry.merge(w);
            }
        }
    }
    let mut failures = Vec::new();
    println!("per-step worst case in ulps (elements not bit-identical / compared):");
    for ((rule, dtype, kernel), w) in &table {
        let bound = per_step_ulps(rule, dtype, kernel);
        println!(
            "{rule:<9} {dtype} {kernel:<13} {:>12.3} ulps (bound {bound:>5}) {:>6}/{:<7} {}",
            w.ulps, w.differ, w.compared, w.at
        );
        if w.ulps > bound {
            failures.push(format!(
                "{rule} {dtype} {kernel}: {} ulps > {bound} at {}",
                w.ulps, w.at
            ));
        }
    }
    assert!(transitions > 1000, "only {transitions} steps compared");
    assert!(
        failures.is_empty(),
        "outside the per-step bounds:\n{}",
        failures.join("\n")
    );
}

/// `max |a − b| / max |b|` over a vector (0 when equal, NaNs equal to NaNs).
fn drift(a: &[f64], b: &[f64]) -> f64 {
    let scale = b
        .iter()
        .fold(0.0f64, |m, x| m.max(x.abs()))
        .max(f64::MIN_POSITIVE);
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            if x == y || x.is_nan() && y.is_nan() {
                0.0
            } else if x.is_nan() || y.is_nan() {
                f64::INFINITY
            } else {
                (x - y).abs() / scale
            }
        })
        .fold(0.0, f64::max)
}

/// gradstep's own trajectory of `case` from step 0, as snapshots at the recorded steps.
fn free_run<T: Real>(rule: &AnyRule, case: &StepCase) -> Vec<Snapshot> {
    let cast = |xs: &[f64]| -> Vec<T> { xs.iter().map(|&x| T::from_f64(x)).collect() };
    let widen = |xs: &[T]| -> Vec<f64> { xs.iter().map(|x| x.to_f64()).collect() };
    let n = case.n;
    let mut params = cast(&steps::values(&case.grads, 0, n));
    let mut state: Vec<Vec<T>> = vec![vec![T::ZERO; n]; rule.state_slots()];
    let mut scalars = rule.fresh_scalars();
    let mut out = vec![Snapshot {
        step: 0,
        params: widen(&params),
        slots: Vec::new(),
        scalars: Vec::new(),
    }];
    // Slots in torch's order, as stored.
    let order: Vec<usize> = case
        .slots
        .iter()
        .map(|name| rule.slot_names().iter().position(|s| s == name).unwrap())
        .collect();
    for k in 1..=case.steps {
        let grads = cast(&steps::values(&case.grads, k, n));
        let mut slots: Vec<&mut [T]> = state.iter_mut().map(|s| &mut s[..]).collect();
        rule.step(&mut scalars, &mut params, &grads, &mut slots)
            .unwrap_or_else(|e| panic!("{}: step {k}: {e}", case.name));
        if case.recorded.contains(&k) {
            let ours = scalar_values(&scalars);
            out.push(Snapshot {
                step: k,
                params: widen(&params),
                slots: order.iter().map(|&j| widen(&state[j])).collect(),
                scalars: case
                    .scalars
                    .iter()
                    .map(|name| ours.iter().find(|(n, _)| n == name).unwrap().1)
                    .collect(),
            });
        }
    }
    out
}

/// How two runs drift apart over the stored steps, in the params: the largest
/// `max |a − b| / max |b|` (relative to the vector), and the largest use of the
/// trajectory tolerance of `tests/torch_trajectories.rs` (elementwise).
#[derive(Clone, Copy, Default)]
struct Drift {
    norm: f64,
    table: f64,
}

fn run_drift(a: &[Snapshot], b: &[Snapshot], tol: &Tolerance) -> Drift {
    let mut d = Drift::default();
    for (x, y) in a.iter().zip(b) {
        d.norm = d.norm.max(drift(&x.params, &y.params));
        for (&p, &q) in x.params.iter().zip(&y.params) {
            if p != q && !(p.is_nan() && q.is_nan()) {
                let u = tol.usage(p, q);
                d.table = d.table.max(if u.is_nan() { f64::INFINITY } else { u });
            }
        }
    }
    d
}

#[test]
fn trajectories() {
    let fixture = StepFixture::load();
    // (rule, dtype) → [gradstep vs simd, gradstep vs scalar, torch scalar vs torch simd],
    // each the worst over the rule's cases.
    let mut table: BTreeMap<(String, String), [(Drift, String); 3]> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in &fixture.index.cases {
        let rule = rule_of(case);
        let tol = tolerance(&case.rule, &case.dtype);
        let ours = match case.dtype.as_str() {
            "f32" => free_run::<f32>(&rule, case),
            _ => free_run::<f64>(&rule, case),
        };
        let simd = fixture.snapshots(case, "simd");
        let scalar = fixture.snapshots(case, "scalar");
        let exact = fixture.snapshots(case, "scalar_crsqrt");
        if ours != exact {
            let (a, b) = ours.iter().zip(&exact).find(|(a, b)| a != b).unwrap();
            let what = if a.params != b.params {
                "params".to_string()
            } else if a.slots != b.slots {
                let j = (0..a.slots.len())
                    .find(|&j| a.slots[j] != b.slots[j])
                    .unwrap();
                format!("state {}", case.slots[j])
            } else {
                format!(
                    "scalars {:?}: ours {:?}, torch {:?}",
                    case.scalars, a.scalars, b.scalars
                )
            };
            let message = format!(
                "{}: not bit-identical to torch's scalar kernels with a correctly rounded \
                 sqrt at step {} ({what}; params drift {:.2e})",
                case.name,
                a.step,
                run_drift(&ours, &exact, &tol).norm
            );
            failures.push(message);
        }
        if named(case, "simd") {
            continue;
        }
        let row = table
            .entry((case.rule.clone(), case.dtype.clone()))
            .or_default();
        for (slot, d) in [
            run_drift(&ours, &simd, &tol),
            run_drift(&ours, &scalar, &tol),
            run_drift(&scalar, &simd, &tol),
        ]
        .into_iter()
        .enumerate()
        {
            if d.norm > row[slot].0.norm {
                row[slot].1 = case.name.clone();
            }
            row[slot].0.norm = row[slot].0.norm.max(d.norm);
            row[slot].0.table = row[slot].0.table.max(d.table);
        }
    }
    println!(
        "trajectory drift over the stored steps, worst case of the rule: max |a − b| / max |b| \
         of the params (×: elementwise use of the trajectory tolerance)"
    );
    println!(
        "{:<9} {:<3} {:>19} {:>19} {:>19}",
        "rule", "", "gradstep-simd", "torch scalar-simd", "gradstep-scalar"
    );
    for ((rule, dtype), row) in &table {
        let [ours, ours_scalar, torch] = row;
        println!(
            "{rule:<9} {dtype:<3} {:>9.2e} ×{:<8.3} {:>9.2e} ×{:<8.3} {:>9.2e} ×{:<8.3} {}",
            ours.0.norm,
            ours.0.table,
            torch.0.norm,
            torch.0.table,
            ours_scalar.0.norm,
            ours_scalar.0.table,
            ours.1
        );
        // gradstep is as close to torch's fused kernels as torch's own scalar kernels are
        // (within 2×, and a few ulps where those agree exactly).
        let eps = if dtype == "f32" {
            f32::EPSILON as f64
        } else {
            f64::EPSILON
        };
        if ours.0.norm > 2.0 * torch.0.norm + 4.0 * eps {
            failures.push(format!(
                "{rule} {dtype}: drift from torch's fused kernels {:e}, torch's own {:e}",
                ours.0.norm, torch.0.norm
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "trajectories that differ:\n{}",
        failures.join("\n")
    );
}

/// The named difference of [`NAMED`]: centered RMSprop with α = 0 is bit-identical to
/// torch's scalar kernels (checked by [`per_step`] and [`trajectories`]) and differs from
/// its fused kernels, which give NaN or a finite variance where the exact one is 0.
#[test]
fn centered_rmsprop_alpha0_differs_from_fused_torch_only() {
    let fixture = StepFixture::load();
    let cases: Vec<&StepCase> = fixture
        .index
        .cases
        .iter()
        .filter(|c| named(c, "simd"))
        .collect();
    assert_eq!(cases.len(), 2, "one case per dtype");
    for case in cases {
        let rule = rule_of(case);
        assert_eq!(rule.get("alpha"), Some(Value::Number(0.0)));
        assert_eq!(rule.get("centered"), Some(Value::Flag(true)));
        let simd = fixture.snapshots(case, "simd");
        let (mut nan, mut finite_different) = (0, 0);
        for pair in simd.windows(2).filter(|p| p[1].step == p[0].step + 1) {
            let w = match case.dtype.as_str() {
                "f32" => teacher_forced::<f32>(&rule, case, &pair[0], &pair[1]),
                _ => teacher_forced::<f64>(&rule, case, &pair[0], &pair[1]),
            };
            if pair[0].params.iter().any(|x| x.is_nan()) {
                continue;
            }
            if pair[1].params.iter().any(|x| x.is_nan()) {
                nan += 1;
            } else if w.differ > 0 {
                finite_different += 1;
            }
        }
        println!(
            "{}: fused torch gives NaN at {nan} steps, a different finite result at {finite_different}",
            case.name
        );
        assert!(
            nan + finite_different > 0,
            "{}: no difference from fused torch",
            case.name
        );
    }
}
