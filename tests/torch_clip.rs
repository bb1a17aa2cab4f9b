//! Replays torch's gradient clipping and loss scaling (tests/fixtures/torch/clip.json and
//! loss_scale.json, written by record_clip.py) through gradstep:
//! - `clip_grad_norm_` (global and per tensor): total and per-slice norms, the returned
//!   norm, the clip coefficient (bit for bit, from torch's own norm), and the clipped
//!   gradients, within `tolerance::clip_tolerance`;
//! - `clip_grad_value_`: bit for bit;
//! - `GradScaler` sequences: inverse scale, `found_inf`, unscaled gradients, scale and
//!   growth tracker, bit for bit;
//! - the defaults of `ClipNorm::new` and `GradScaler::default` against torch's.

use gradstep::clip::{clip_grads_with_norm, norm};
use gradstep::*;
use gradstep_tests::clip_fixtures::{
    self, ClipFixture, Clipped, NormCase, Sample, ScalerFixture, ValueCase, floats,
};
use gradstep_tests::tolerance::{Tolerance, clip_tolerance};

/// Fraction of the tolerance `ours` uses against `torch`: 0 when equal (including both
/// NaN, or the same infinity), ∞ when only one is NaN or infinite.
fn usage(tol: &Tolerance, ours: f64, torch: f64) -> f64 {
    if ours == torch || (ours.is_nan() && torch.is_nan()) {
        0.0
    } else if !ours.is_finite() || !torch.is_finite() {
        f64::INFINITY
    } else {
        (ours - torch).abs() / (tol.rel * torch.abs() + tol.abs)
    }
}

/// The worst use of the budget in one case, and where.
#[derive(Default)]
struct Worst {
    usage: f64,
    at: String,
}

impl Worst {
    fn see(&mut self, u: f64, at: impl FnOnce() -> String) {
        if u > self.usage || u.is_nan() {
            self.usage = u;
            self.at = at();
        }
    }
}

/// The fixture's values in `T`: base values are exact; special values (e.g. 1e30) are
/// rounded, as torch rounded them when they were written into the tensor.
fn cast<T: Real>(xs: &[f64]) -> Vec<T> {
    xs.iter().map(|&x| T::from_f64(x)).collect()
}

fn bits(xs: &[f64]) -> Vec<u64> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// Compares one clipped slice (samples and sums) with torch's.
fn compare_clipped(
    tol: &Tolerance,
    sample: &Sample,
    ours: &[f64],
    torch: &Clipped,
    what: &str,
    worst: &mut Worst,
) {
    let idx = sample.indices(ours.len());
    assert_eq!(idx.len(), torch.samples.len(), "{what}: sample count");
    for (&i, t) in idx.iter().zip(&torch.samples) {
        let u = usage(tol, ours[i], t.0);
        worst.see(u, || {
            format!("{what}[{i}]: ours {:e}, torch {:e}", ours[i], t.0)
        });
    }
    // Sums over every element: compensated, so that only the elements' deviations show.
    let (mut sum, mut abs_sum) = (0.0f64, 0.0f64);
    let (mut c1, mut c2) = (0.0f64, 0.0f64);
    for &x in ours {
        neumaier(&mut sum, &mut c1, x);
        neumaier(&mut abs_sum, &mut c2, x.abs());
    }
    let (sum, abs_sum) = (sum + c1, abs_sum + c2);
    let scale = Tolerance {
        rel: 0.0,
        abs: tol.rel * torch.abs_sum.0,
    };
    for (name, o, t) in [
        ("sum", sum, torch.sum.0),
        ("abs_sum", abs_sum, torch.abs_sum.0),
    ] {
        let u = if torch.abs_sum.0 == 0.0 {
            if o == t { 0.0 } else { f64::INFINITY }
        } else {
            usage(&scale, o, t)
        };
        worst.see(u, || format!("{what} {name}: ours {o:e}, torch {t:e}"));
    }
}

fn neumaier(sum: &mut f64, c: &mut f64, x: f64) {
    let t = *sum + x;
    if t.is_finite() {
        if sum.abs() >= x.abs() {
            *c += (*sum - t) + x;
        } else {
            *c += (x - t) + *sum;
        }
    }
    *sum = t;
}

/// The coefficient gradstep multiplies by for a given norm, read off a probe gradient 1.
fn coefficient<T: Real>(max_norm: f64, norm: f64) -> f64 {
    let mut probe = [T::ONE];
    clip_grads_with_norm(&mut [&mut probe[..]], max_norm, T::from_f64(norm)).unwrap();
    probe[0].to_f64()
}

fn replay_norm<T: Real>(fx: &ClipFixture, case: &NormCase, tol: &Tolerance) -> Worst {
    let mut worst = Worst::default();
    let grads64 = case.inputs.grads(&fx.bases);
    let mut grads: Vec<Vec<T>> = grads64.iter().map(|g| cast::<T>(g)).collect();
    let p = NormType::from_p(case.norm_type.0).expect("valid norm type");
    let widen = |xs: &[T]| -> Vec<f64> { xs.iter().map(|x| x.to_f64()).collect() };

    // Norms.
    let total = total_norm(&grads, p).unwrap().to_f64();
    worst.see(usage(tol, total, case.total_norm.0), || {
        format!("total norm: ours {total:e}, torch {:e}", case.total_norm.0)
    });
    for (i, (g, t)) in grads.iter().zip(&case.slice_norms).enumerate() {
        let n = norm(g, p).unwrap().to_f64();
        worst.see(usage(tol, n, t.0), || {
            format!("slice {i} norm: ours {n:e}, torch {:e}", t.0)
        });
    }

    // The coefficient from torch's own norm(s) must be torch's, bit for bit.
    let torch_norms: Vec<f64> = if case.per_slice {
        floats(&case.slice_norms)
    } else {
        vec![case.total_norm.0]
    };
    for (n, c) in torch_norms.iter().zip(&case.coefs) {
        let ours = coefficient::<T>(case.max_norm, *n);
        assert!(
            ours.to_bits() == c.0.to_bits() || (ours.is_nan() && c.0.is_nan()),
            "{}: coefficient for norm {n:e}: ours {ours:e}, torch {:e}",
            case.name,
            c.0
        );
    }

    // Clip.
    let clip = ClipNorm {
        max_norm: case.max_norm,
        norm_type: p,
        error_if_nonfinite: case.error_if_nonfinite,
        scope: if case.per_slice {
            ClipScope::PerSlice
        } else {
            ClipScope::Global
        },
    };
    let before: Vec<Vec<f64>> = grads.iter().map(|g| widen(g)).collect();
    let mut slices: Vec<&mut [T]> = grads.iter_mut().map(|g| &mut g[..]).collect();
    let result = clip.clip(&mut slices);
    if case.error {
        match result {
            Err(Error::NonFiniteNorm { norm }) => assert!(!norm.is_finite(), "{}", case.name),
            other => panic!("{}: torch raised, gradstep gave {other:?}", case.name),
        }
        for (g, b) in grads.iter().zip(&before) {
            assert_eq!(bits(&widen(g)), bits(b), "{}: grads changed", case.name);
        }
    } else {
        let returned = result
            .unwrap_or_else(|e| panic!("{}: {e}", case.name))
            .to_f64();
        assert_eq!(
            returned.to_bits(),
            total.to_bits(),
            "{}: returned norm",
            case.name
        );
    }
    assert_eq!(grads.len(), case.clipped.len());
    for (i, (g, t)) in grads.iter().zip(&case.clipped).enumerate() {
        compare_clipped(
            tol,
            &fx.sample,
            &widen(g),
            t,
            &format!("slice {i}"),
            &mut worst,
        );
    }
    worst
}

fn replay_value<T: Real>(fx: &ClipFixture, case: &ValueCase) {
    let grads64 = case.inputs.grads(&fx.bases);
    let mut grads: Vec<Vec<T>> = grads64.iter().map(|g| cast::<T>(g)).collect();
    let mut slices: Vec<&mut [T]> = grads.iter_mut().map(|g| &mut g[..]).collect();
    clip_grad_value(&mut slices, case.clip_value).unwrap();
    for (i, (g, t)) in grads.iter().zip(&case.clipped).enumerate() {
        let ours: Vec<f64> = g.iter().map(|x| x.to_f64()).collect();
        let sampled: Vec<f64> = fx
            .sample
            .indices(g.len())
            .iter()
            .map(|&k| ours[k])
            .collect();
        // Clamping is exact: the same bits (NaN as NaN, ±0 with their signs).
        let norm_nan = |xs: &[f64]| -> Vec<u64> {
            xs.iter()
                .map(|x| if x.is_nan() { u64::MAX } else { x.to_bits() })
                .collect()
        };
        assert_eq!(
            norm_nan(&sampled),
            norm_nan(&floats(&t.samples)),
            "{} slice {i}",
            case.name
        );
        let exact = Tolerance {
            rel: 1e-15,
            abs: 0.0,
        };
        let mut w = Worst::default();
        compare_clipped(&exact, &fx.sample, &ours, t, "slice", &mut w);
        assert!(w.usage <= 1.0, "{} slice {i}: {}", case.name, w.at);
    }
}

#[test]
fn clip_grad_norm_matches_torch() {
    let fx: ClipFixture = clip_fixtures::load("clip.json");
    assert!(fx.generator.ends_with("record_clip.py") && fx.torch_version.starts_with("2."));
    assert!(fx.norm_cases.len() >= 40);
    let mut failures = Vec::new();
    // Worst deviation per (dtype, norm order), in units of f32 epsilon for f32 and
    // relative for f64: the numbers quoted in tolerance::clip_tolerance.
    let mut worst: std::collections::BTreeMap<(String, String), (f64, String)> = Default::default();
    for case in &fx.norm_cases {
        let dtype = case.inputs.dtype.as_str();
        let tol = clip_tolerance(case.norm_type.0, dtype);
        let w = match dtype {
            "f32" => replay_norm::<f32>(&fx, case, &tol),
            "f64" => replay_norm::<f64>(&fx, case, &tol),
            other => panic!("unknown dtype {other}"),
        };
        println!(
            "{:<40} budget used {:>7.4}  worst at {}",
            case.name, w.usage, w.at
        );
        // Relative deviation = usage · rel (the bounds have no absolute part).
        let unit = if dtype == "f32" {
            f64::from(f32::EPSILON)
        } else {
            1.0
        };
        let dev = if tol.rel == 0.0 {
            if w.usage == 0.0 { 0.0 } else { f64::INFINITY }
        } else {
            w.usage * tol.rel / unit
        };
        let slot = worst
            .entry((dtype.to_owned(), format!("{}", case.norm_type.0)))
            .or_insert((0.0, String::new()));
        if dev > slot.0 {
            *slot = (dev, format!("{}: {}", case.name, w.at));
        }
        if w.usage > 1.0 || w.usage.is_nan() {
            failures.push(format!("{}: {:.3}x at {}", case.name, w.usage, w.at));
        }
    }
    for ((dtype, p), (dev, at)) in &worst {
        let unit = if dtype == "f32" { "eps" } else { "relative" };
        println!("worst {dtype} p={p}: {dev:.3e} {unit} at {at}");
    }
    assert!(
        failures.is_empty(),
        "outside tolerance:\n{}",
        failures.join("\n")
    );
}

#[test]
fn clip_grad_value_matches_torch_bit_for_bit() {
    let fx: ClipFixture = clip_fixtures::load("clip.json");
    assert!(fx.value_cases.len() >= 10);
    for case in &fx.value_cases {
        match case.inputs.dtype.as_str() {
            "f32" => replay_value::<f32>(&fx, case),
            "f64" => replay_value::<f64>(&fx, case),
            other => panic!("unknown dtype {other}"),
        }
    }
}

#[test]
fn clip_defaults_are_torch_defaults() {
    let fx: ClipFixture = clip_fixtures::load("clip.json");
    let c = ClipNorm::new(1.0);
    let p = fx.defaults["norm_type"].as_f64().unwrap();
    assert_eq!(c.norm_type, NormType::from_p(p).unwrap());
    assert_eq!(NormType::default(), NormType::from_p(p).unwrap());
    assert_eq!(
        Some(c.error_if_nonfinite),
        fx.defaults["error_if_nonfinite"].as_bool()
    );
    assert_eq!(c.scope, ClipScope::Global);
    assert_eq!(fx.defaults.len(), 2);
}

fn replay_scaler<T: Real>(case: &clip_fixtures::ScalerCase) {
    let c = case.config;
    let scaler = GradScaler {
        init_scale: c.init_scale,
        growth_factor: c.growth_factor,
        backoff_factor: c.backoff_factor,
        growth_interval: c.growth_interval,
    };
    let mut state = scaler.init().unwrap();
    assert_eq!(
        f64::from(state.scale),
        case.scale0,
        "{}: initial scale",
        case.name
    );
    assert_eq!(state.growth_tracker, 0);
    for (k, step) in case.steps.iter().enumerate() {
        let at = format!("{} step {}", case.name, k + 1);
        assert_eq!(
            f64::from(state.inv_scale()),
            step.inv_scale,
            "{at}: inv_scale"
        );
        let mut grads: Vec<Vec<T>> = step.grads.iter().map(|g| cast::<T>(&floats(g))).collect();
        let mut slices: Vec<&mut [T]> = grads.iter_mut().map(|g| &mut g[..]).collect();
        let found_inf = state.unscale(&mut slices).unwrap();
        assert_eq!(found_inf, step.found_inf, "{at}: found_inf");
        for (g, u) in grads.iter().zip(&step.unscaled) {
            let ours: Vec<u64> = g
                .iter()
                .map(|x| {
                    if x.to_f64().is_nan() {
                        u64::MAX
                    } else {
                        x.to_f64().to_bits()
                    }
                })
                .collect();
            let theirs: Vec<u64> = u
                .iter()
                .map(|x| {
                    if x.0.is_nan() {
                        u64::MAX
                    } else {
                        x.0.to_bits()
                    }
                })
                .collect();
            assert_eq!(ours, theirs, "{at}: unscaled grads");
        }
        scaler.update(&mut state, found_inf).unwrap();
        assert_eq!(f64::from(state.scale), step.scale, "{at}: scale");
        assert_eq!(state.growth_tracker, step.growth_tracker, "{at}: tracker");
    }
}

#[test]
fn grad_scaler_matches_torch_bit_for_bit() {
    let fx: ScalerFixture = clip_fixtures::load("loss_scale.json");
    assert!(fx.generator.ends_with("record_clip.py") && fx.torch_version.starts_with("2."));
    let d = GradScaler::default();
    assert_eq!(
        (
            d.init_scale,
            d.growth_factor,
            d.backoff_factor,
            d.growth_interval
        ),
        (
            fx.defaults.init_scale,
            fx.defaults.growth_factor,
            fx.defaults.backoff_factor,
            fx.defaults.growth_interval
        ),
        "GradScaler::default differs from torch's"
    );
    let (mut grew, mut backed_off) = (false, false);
    for case in &fx.cases {
        match case.dtype.as_str() {
            "f32" => replay_scaler::<f32>(case),
            "f64" => replay_scaler::<f64>(case),
            other => panic!("unknown dtype {other}"),
        }
        let mut prev = case.scale0;
        for s in &case.steps {
            grew |= s.scale > prev;
            backed_off |= s.scale < prev;
            prev = s.scale;
        }
    }
    assert!(
        grew && backed_off,
        "fixtures must exercise growth and backoff"
    );
}
