//! Property tests of the gradient utilities (clipping, the non-finite guard, loss
//! scaling, accumulation), over lengths 0..=3·lanes+1 and unaligned sub-slices:
//! - element-wise paths (clip by value, scaling, unscaling, accumulation) equal a naive
//!   scalar loop bit for bit; norms equal a scalar re-statement of the documented
//!   16-virtual-lane order bit for bit, and the exact norm to within a few ulps;
//! - after clipping, norms are at most `max_norm` (within rounding) and every gradient
//!   is the old one times one common coefficient in [0, 1];
//! - invalid arguments and `error_if_nonfinite` give the typed error with every gradient
//!   untouched;
//! - the guard never writes when a gradient is non-finite, and steps exactly like the
//!   plain rule otherwise;
//! - the loss scale stays finite and > 0 (with a finite inverse) from any valid
//!   configuration and any overflow pattern;
//! - the mean of k identical micro-batches is the micro-batch within rounding.

use gradstep::clip::{clip_grads_with_norm, norm};
use gradstep::lanes::Lanes;
use gradstep::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const VIRTUAL_LANES: usize = 16;
const BLOCK: usize = 256;

fn max_len<T: Real>() -> usize {
    3 * <T as Real>::Vector::WIDTH + 1
}

fn bits<T: Real>(xs: &[T]) -> Vec<u64> {
    xs.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// Gradients as windows at `offset` into longer buffers (unaligned starts).
#[derive(Clone, Debug)]
struct Grads<T> {
    bufs: Vec<Vec<T>>,
    offset: usize,
    lens: Vec<usize>,
}

impl<T: Real> Grads<T> {
    fn new(lens: &[usize], offset: usize, values: &[f64]) -> Self {
        let mut it = values.iter().cycle().map(|&x| T::from_f64(x));
        let bufs = lens
            .iter()
            .map(|&n| {
                (0..n + offset + 3)
                    .map(|_| it.next().unwrap_or(T::ZERO))
                    .collect()
            })
            .collect();
        Grads {
            bufs,
            offset,
            lens: lens.to_vec(),
        }
    }
    fn views(&mut self) -> Vec<&mut [T]> {
        let o = self.offset;
        self.bufs
            .iter_mut()
            .zip(&self.lens)
            .map(|(b, &n)| &mut b[o..o + n])
            .collect()
    }
    fn slices(&self) -> Vec<Vec<T>> {
        let o = self.offset;
        self.bufs
            .iter()
            .zip(&self.lens)
            .map(|(b, &n)| b[o..o + n].to_vec())
            .collect()
    }
    fn all_bits(&self) -> Vec<Vec<u64>> {
        self.bufs.iter().map(|b| bits(b)).collect()
    }
    /// Overwrites element `at` (modulo the total length) with `v`; false if empty.
    fn poison(&mut self, at: usize, v: f64) -> bool {
        let total: usize = self.lens.iter().sum();
        if total == 0 {
            return false;
        }
        let mut k = at % total;
        for (b, &n) in self.bufs.iter_mut().zip(&self.lens) {
            if k < n {
                b[self.offset + k] = T::from_f64(v);
                return true;
            }
            k -= n;
        }
        false
    }
}

// ---------------------------------------------------------------------------------
// Scalar references.

/// torch's clamp, one element at a time.
fn ref_clamp<T: Real>(x: T, c: T) -> T {
    let lo = -c; // −0.0 for c = 0, as Python's `-clip_value`
    if x < lo {
        lo
    } else if x > c {
        c
    } else {
        x
    }
}

/// Neumaier-compensated sum that keeps an infinite or NaN sum as is.
#[derive(Default)]
struct RefTotal {
    sum: f64,
    c: f64,
}
impl RefTotal {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if t.is_finite() {
            if self.sum.abs() >= x.abs() {
                self.c += (self.sum - t) + x;
            } else {
                self.c += (x - t) + self.sum;
            }
        }
        self.sum = t;
    }
    fn value(&self) -> f64 {
        if self.sum.is_finite() {
            self.sum + self.c
        } else {
            self.sum
        }
    }
}

/// The documented reduction order, one element at a time: element i into virtual lane
/// i mod 16 (in T), lanes folded in order into the f64 total after every 256 elements
/// and at the end. L1/L2/Inf only (the vectorized orders).
fn ref_norm_lanes<T: Real>(xs: &[T], p: NormType) -> T {
    if let [x] = xs {
        return T::from_f64(x.to_f64().abs());
    }
    let mut total = RefTotal::default();
    let mut max = 0.0f64;
    for block in xs.chunks(BLOCK) {
        let mut lanes = [T::ZERO; VIRTUAL_LANES];
        for (i, &x) in block.iter().enumerate() {
            let l = &mut lanes[i % VIRTUAL_LANES];
            *l = match p {
                NormType::L1 => *l + x.abs(),
                NormType::L2 => *l + x * x,
                NormType::Inf => {
                    // A NaN lane stays NaN; otherwise `if l > |x| { l } else { |x| }`,
                    // which lets a NaN |x| in.
                    let a = x.abs();
                    if l.to_f64().is_nan() || *l > a { *l } else { a }
                }
                NormType::P(_) => unreachable!(),
            };
        }
        for l in lanes {
            match p {
                NormType::Inf => {
                    if l.to_f64().is_nan() || l.to_f64() > max {
                        max = l.to_f64();
                    }
                }
                _ => total.add(l.to_f64()),
            }
        }
        if total.value().is_nan() || max.is_nan() {
            break;
        }
    }
    T::from_f64(match p {
        NormType::L1 => total.value(),
        NormType::L2 => total.value().sqrt(),
        NormType::Inf => max,
        NormType::P(_) => unreachable!(),
    })
}

/// The exact norm (up to f64 rounding), for accuracy checks.
fn exact_norm<T: Real>(xs: &[T], p: NormType) -> f64 {
    let mut t = RefTotal::default();
    match p {
        NormType::Inf => {
            if xs.iter().any(|x| x.to_f64().is_nan()) {
                return f64::NAN;
            }
            xs.iter().map(|x| x.to_f64().abs()).fold(0.0, f64::max)
        }
        _ => {
            let q = p.p();
            for x in xs {
                t.add(x.to_f64().abs().powf(q));
            }
            t.value().powf(1.0 / q)
        }
    }
}

// ---------------------------------------------------------------------------------
// Strategies.

fn values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![
            1 => Just(0.0),
            1 => Just(-0.0),
            8 => -10.0..10.0f64,
            2 => -1e3..1e3f64,
            1 => -1e-6..1e-6f64,
        ],
        1..64,
    )
}

fn lens<T: Real>() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..=max_len::<T>(), 0..5)
}

fn norm_type() -> impl Strategy<Value = NormType> {
    prop_oneof![
        Just(NormType::L2),
        Just(NormType::L1),
        Just(NormType::Inf),
        Just(NormType::P(3.0)),
        Just(NormType::P(0.5)),
        (0.2..8.0f64).prop_map(NormType::P),
    ]
}

fn vectorized_norm_type() -> impl Strategy<Value = NormType> {
    prop_oneof![Just(NormType::L2), Just(NormType::L1), Just(NormType::Inf)]
}

fn non_finite() -> impl Strategy<Value = f64> {
    prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)]
}

// ---------------------------------------------------------------------------------
// Clipping.

fn clip_value_equals_reference<T: Real>(
    lens: &[usize],
    offset: usize,
    values: &[f64],
    c: f64,
    poison: Option<(usize, f64)>,
) -> Result<(), TestCaseError> {
    let mut g = Grads::<T>::new(lens, offset, values);
    if let Some((at, v)) = poison {
        g.poison(at, v);
    }
    let expected: Vec<Vec<T>> = g
        .slices()
        .iter()
        .map(|s| s.iter().map(|&x| ref_clamp(x, T::from_f64(c))).collect())
        .collect();
    let before = g.clone();
    prop_assert_eq!(clip_grad_value(&mut g.views(), c), Ok(()));
    for (s, e) in g.slices().iter().zip(&expected) {
        prop_assert_eq!(bits(s), bits(e));
    }
    // Outside the windows nothing moved.
    for (b, a) in before.bufs.iter().zip(&g.bufs) {
        prop_assert_eq!(bits(&b[..offset]), bits(&a[..offset]));
    }
    Ok(())
}

fn norms_equal_references<T: Real>(
    lens: &[usize],
    offset: usize,
    values: &[f64],
    p: NormType,
    ulps: f64,
) -> Result<(), TestCaseError> {
    let g = Grads::<T>::new(lens, offset, values);
    let eps = if core::mem::size_of::<T>() == 4 {
        f64::from(f32::EPSILON)
    } else {
        f64::EPSILON
    };
    let mut per_slice = Vec::new();
    for s in g.slices() {
        let n = norm(&s, p).unwrap();
        if !matches!(p, NormType::P(_)) {
            let r = ref_norm_lanes(&s, p);
            prop_assert_eq!(
                n.to_f64().to_bits(),
                r.to_f64().to_bits(),
                "{:?} of {:?}",
                p,
                s
            );
        }
        let exact = exact_norm(&s, p);
        prop_assert!(
            (n.to_f64() - exact).abs() <= ulps * eps * exact || n.to_f64() == exact,
            "{:?}: {:e} vs exact {:e}",
            p,
            n.to_f64(),
            exact
        );
        per_slice.push(n.to_f64());
    }
    // The total is the norm of the per-slice norms (each rounded to T).
    let total = total_norm(&g.slices(), p).unwrap().to_f64();
    let exact_total = match p {
        NormType::Inf => per_slice.iter().copied().fold(0.0, f64::max),
        _ => {
            let q = p.p();
            per_slice
                .iter()
                .map(|n| n.powf(q))
                .sum::<f64>()
                .powf(1.0 / q)
        }
    };
    prop_assert!(
        (total - exact_total).abs() <= ulps * eps * exact_total || total == exact_total,
        "total {:e} vs {:e}",
        total,
        exact_total
    );
    Ok(())
}

/// The coefficient gradstep uses for a total norm, read off a probe gradient of 1.
fn coef_for<T: Real>(max_norm: f64, total: T) -> T {
    let mut probe = [T::ONE];
    clip_grads_with_norm(&mut [&mut probe[..]], max_norm, total).unwrap();
    probe[0]
}

fn global_clip_bounds<T: Real>(
    lens: &[usize],
    offset: usize,
    values: &[f64],
    p: NormType,
    rel: f64,
) -> Result<(), TestCaseError> {
    let mut g = Grads::<T>::new(lens, offset, values);
    let before = g.slices();
    let total = total_norm(&before, p).unwrap();
    let max_norm = total.to_f64() * rel;
    let returned = clip_grad_norm(&mut g.views(), max_norm, p, true).unwrap();
    prop_assert_eq!(returned.to_f64().to_bits(), total.to_f64().to_bits());
    let c = coef_for(max_norm, total);
    prop_assert!(c >= T::ZERO && c <= T::ONE);
    for (a, b) in g.slices().iter().zip(&before) {
        // One common coefficient: the direction is kept.
        let scaled: Vec<T> = b.iter().map(|&x| x * c).collect();
        prop_assert_eq!(bits(a), bits(&scaled));
    }
    let after = total_norm(&g.slices(), p).unwrap().to_f64();
    let slack = 1.0 + 8.0 * f64::from(f32::EPSILON);
    prop_assert!(
        after <= max_norm.max(0.0) * slack || after <= total.to_f64() && c == T::ONE,
        "norm after clipping {:e} > max_norm {:e} (before {:e})",
        after,
        max_norm,
        total.to_f64()
    );
    Ok(())
}

fn per_slice_clip_bounds<T: Real>(
    lens: &[usize],
    offset: usize,
    values: &[f64],
    p: NormType,
    max_norm: f64,
    keras: bool,
) -> Result<(), TestCaseError> {
    let mut g = Grads::<T>::new(lens, offset, values);
    let before = g.slices();
    let clip = ClipNorm {
        norm_type: p,
        scope: if keras {
            ClipScope::PerSliceKeras
        } else {
            ClipScope::PerSlice
        },
        ..ClipNorm::new(max_norm)
    };
    let total = clip.clip(&mut g.views()).unwrap();
    prop_assert_eq!(
        total.to_f64().to_bits(),
        total_norm(&before, p).unwrap().to_f64().to_bits()
    );
    let slack = 1.0 + 8.0 * f64::from(f32::EPSILON);
    for (a, b) in g.slices().iter().zip(&before) {
        let n = norm(b, p).unwrap();
        let after = norm(a, p).unwrap().to_f64();
        prop_assert!(after <= max_norm * slack || after <= n.to_f64());
        if keras {
            let c = T::from_f64(max_norm);
            let d = if n > c { n } else { c };
            let expected: Vec<T> = b.iter().map(|&x| x * c / d).collect();
            prop_assert_eq!(bits(a), bits(&expected));
        } else {
            let c = coef_for(max_norm, n);
            let expected: Vec<T> = b.iter().map(|&x| x * c).collect();
            prop_assert_eq!(bits(a), bits(&expected));
        }
    }
    Ok(())
}

fn refuses_bad_arguments<T: Real>(
    lens: &[usize],
    offset: usize,
    values: &[f64],
    bad: f64,
    pick: usize,
) -> Result<(), TestCaseError> {
    let mut g = Grads::<T>::new(lens, offset, values);
    let snapshot = g.all_bits();
    let bad_norm = [0.0, -1.0, f64::NAN, f64::NEG_INFINITY, -0.5][pick % 5];
    let refused = |r: Result<(), Error>, name: &str| -> Result<(), TestCaseError> {
        match r {
            Err(Error::InvalidHyperparameter { name: got, .. }) => {
                prop_assert_eq!(got, name);
                Ok(())
            }
            other => Err(TestCaseError::fail(format!("{name}: {other:?}"))),
        }
    };
    refused(
        clip_grad_norm(&mut g.views(), bad, NormType::L2, false).map(|_| ()),
        "max_norm",
    )?;
    refused(
        clip_grad_norm(&mut g.views(), 1.0, NormType::P(bad_norm), false).map(|_| ()),
        "norm_type",
    )?;
    refused(NormType::from_p(bad_norm).map(|_| ()), "norm_type")?;
    refused(
        total_norm(&g.slices(), NormType::P(bad_norm)).map(|_| ()),
        "norm_type",
    )?;
    refused(clip_grad_value(&mut g.views(), bad), "clip_value")?;
    refused(
        clip_grads_with_norm(&mut g.views(), bad, T::ONE),
        "max_norm",
    )?;
    for scope in [ClipScope::PerSlice, ClipScope::PerSliceKeras] {
        let clip = ClipNorm {
            scope,
            ..ClipNorm::new(bad)
        };
        refused(clip.clip(&mut g.views()).map(|_| ()), "max_norm")?;
    }
    // Keras's formula divides by max(‖g‖, c): c = 0 is refused there.
    let keras0 = ClipNorm {
        scope: ClipScope::PerSliceKeras,
        ..ClipNorm::new(0.0)
    };
    refused(keras0.clip(&mut g.views()).map(|_| ()), "max_norm")?;
    prop_assert_eq!(g.all_bits(), snapshot);
    Ok(())
}

fn nonfinite_error_leaves_grads<T: Real>(
    lens: &[usize],
    offset: usize,
    values: &[f64],
    at: usize,
    v: f64,
    p: NormType,
    scope: ClipScope,
) -> Result<(), TestCaseError> {
    let mut g = Grads::<T>::new(lens, offset, values);
    if !g.poison(at, v) {
        return Ok(());
    }
    let snapshot = g.all_bits();
    let clip = ClipNorm {
        norm_type: p,
        error_if_nonfinite: true,
        scope,
        ..ClipNorm::new(1.0)
    };
    match clip.clip(&mut g.views()) {
        Err(Error::NonFiniteNorm { norm }) => prop_assert!(!norm.is_finite()),
        other => return Err(TestCaseError::fail(format!("{other:?}"))),
    }
    prop_assert_eq!(g.all_bits(), snapshot);
    // Without the flag, a non-finite norm is used as torch uses it.
    let clip = ClipNorm {
        error_if_nonfinite: false,
        ..clip
    };
    prop_assert!(clip.clip(&mut g.views()).is_ok());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn clip_value_f32(lens in lens::<f32>(), offset in 0usize..17, v in values(), c in prop_oneof![Just(0.0), 0.0..20.0f64], poison in proptest::option::of((any::<usize>(), non_finite()))) {
        clip_value_equals_reference::<f32>(&lens, offset, &v, c, poison)?;
    }
    #[test]
    fn clip_value_f64(lens in lens::<f64>(), offset in 0usize..9, v in values(), c in prop_oneof![Just(0.0), 0.0..20.0f64], poison in proptest::option::of((any::<usize>(), non_finite()))) {
        clip_value_equals_reference::<f64>(&lens, offset, &v, c, poison)?;
    }
    #[test]
    fn norms_f32(lens in lens::<f32>(), offset in 0usize..17, v in values(), p in norm_type()) {
        norms_equal_references::<f32>(&lens, offset, &v, p, 2.0)?;
    }
    #[test]
    fn norms_f64(lens in lens::<f64>(), offset in 0usize..9, v in values(), p in norm_type()) {
        norms_equal_references::<f64>(&lens, offset, &v, p, 16.0)?;
    }
    #[test]
    fn global_clip_f32(lens in lens::<f32>(), offset in 0usize..17, v in values(), p in norm_type(), rel in prop_oneof![Just(0.0), Just(1.0), 0.0..2.0f64]) {
        global_clip_bounds::<f32>(&lens, offset, &v, p, rel)?;
    }
    #[test]
    fn global_clip_f64(lens in lens::<f64>(), offset in 0usize..9, v in values(), p in norm_type(), rel in prop_oneof![Just(0.0), Just(1.0), 0.0..2.0f64]) {
        global_clip_bounds::<f64>(&lens, offset, &v, p, rel)?;
    }
    #[test]
    fn per_slice_clip_f32(lens in lens::<f32>(), offset in 0usize..17, v in values(), p in norm_type(), max_norm in 1e-3..50.0f64, keras in any::<bool>()) {
        per_slice_clip_bounds::<f32>(&lens, offset, &v, p, max_norm, keras)?;
    }
    #[test]
    fn per_slice_clip_f64(lens in lens::<f64>(), offset in 0usize..9, v in values(), p in norm_type(), max_norm in 1e-3..50.0f64, keras in any::<bool>()) {
        per_slice_clip_bounds::<f64>(&lens, offset, &v, p, max_norm, keras)?;
    }
    #[test]
    fn bad_arguments_f32(lens in lens::<f32>(), offset in 0usize..17, v in values(), bad in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), -10.0..-1e-9f64], pick in any::<usize>()) {
        refuses_bad_arguments::<f32>(&lens, offset, &v, bad, pick)?;
    }
    #[test]
    fn bad_arguments_f64(lens in lens::<f64>(), offset in 0usize..9, v in values(), bad in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), -10.0..-1e-9f64], pick in any::<usize>()) {
        refuses_bad_arguments::<f64>(&lens, offset, &v, bad, pick)?;
    }
    #[test]
    fn nonfinite_error_f32(lens in lens::<f32>(), offset in 0usize..17, v in values(), at in any::<usize>(), x in non_finite(), p in norm_type(), scope in prop_oneof![Just(ClipScope::Global), Just(ClipScope::PerSlice), Just(ClipScope::PerSliceKeras)]) {
        nonfinite_error_leaves_grads::<f32>(&lens, offset, &v, at, x, p, scope)?;
    }
    #[test]
    fn nonfinite_error_f64(lens in lens::<f64>(), offset in 0usize..9, v in values(), at in any::<usize>(), x in non_finite(), p in norm_type(), scope in prop_oneof![Just(ClipScope::Global), Just(ClipScope::PerSlice), Just(ClipScope::PerSliceKeras)]) {
        nonfinite_error_leaves_grads::<f64>(&lens, offset, &v, at, x, p, scope)?;
    }
}

proptest! {
    // Long slices: several 256-element blocks and a ragged end.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn long_norms_f32(n in 0usize..1300, offset in 0usize..17, v in values(), p in vectorized_norm_type(), poison in proptest::option::of((any::<usize>(), non_finite()))) {
        let mut g = Grads::<f32>::new(&[n], offset, &v);
        if let Some((at, x)) = poison {
            g.poison(at, x);
        }
        let s = &g.slices()[0];
        let n = norm(s, p).unwrap();
        let r = ref_norm_lanes(s, p);
        prop_assert!(n.to_bits() == r.to_bits() || (n.is_nan() && r.is_nan()), "{} vs {}", n, r);
        if poison.is_none() {
            // Worst case of 16 f32 terms per virtual lane (15 roundings of the sum, one per
            // square): 7.5 ε for Σ|x|, half of 8 ε for √Σx², plus the final rounding.
            let ulps = match p {
                NormType::L1 => 8.0,
                NormType::L2 => 4.5,
                _ => 0.0,
            };
            let exact = exact_norm(s, p);
            prop_assert!((f64::from(n) - exact).abs() <= ulps * f64::from(f32::EPSILON) * exact);
        }
    }
    #[test]
    fn long_norms_f64(n in 0usize..1300, offset in 0usize..9, v in values(), p in vectorized_norm_type()) {
        let g = Grads::<f64>::new(&[n], offset, &v);
        let s = &g.slices()[0];
        prop_assert_eq!(norm(s, p).unwrap().to_bits(), ref_norm_lanes(s, p).to_bits());
    }
}

// ---------------------------------------------------------------------------------
// Non-finite guard.

fn guard_case<R: Rule, T: Real>(
    rule: R,
    n: usize,
    offset: usize,
    values: &[f64],
    poison: Option<(usize, f64)>,
    reference: bool,
) -> Result<(), TestCaseError> {
    let slots = rule.state_slots();
    let g = Grads::<T>::new(&vec![n; 2 + slots], offset, values);
    let mut bufs = g.slices();
    let mut grads = bufs.remove(0);
    let mut params = bufs.remove(0);
    let mut state = bufs;
    // One plain step first so the state is not fresh.
    let guarded = ApplyIfFinite::new(rule);
    let mut scalars = IfFiniteScalars::<R::Scalars>::default();
    {
        let mut st: Vec<&mut [T]> = state.iter_mut().map(|s| &mut s[..]).collect();
        prop_assert_eq!(
            guarded.apply(&mut scalars, &mut params, &grads, &mut st),
            Ok(Outcome::Stepped)
        );
    }
    let poisoned = match poison {
        Some((at, v)) if n > 0 => {
            grads[at % n] = T::from_f64(v);
            true
        }
        _ => false,
    };
    let (p0, s0, sc0) = (
        bits(&params),
        state.iter().map(|s| bits(s)).collect::<Vec<_>>(),
        scalars,
    );
    // The plain rule on copies, for comparison.
    let mut plain_params = params.clone();
    let mut plain_state = state.clone();
    let mut plain_scalars = scalars.inner;

    let mut st: Vec<&mut [T]> = state.iter_mut().map(|s| &mut s[..]).collect();
    let r = if reference {
        guarded
            .step_reference(&mut scalars, &mut params, &grads, &mut st)
            .map(|_| {
                if scalars.counts.last_finite {
                    Outcome::Stepped
                } else {
                    Outcome::Skipped
                }
            })
    } else {
        guarded.apply(&mut scalars, &mut params, &grads, &mut st)
    };
    if poisoned {
        prop_assert_eq!(r, Ok(Outcome::Skipped));
        prop_assert_eq!(bits(&params), p0);
        prop_assert_eq!(state.iter().map(|s| bits(s)).collect::<Vec<_>>(), s0);
        prop_assert_eq!(scalars.inner, sc0.inner);
        prop_assert_eq!(scalars.counts.notfinite_count, 1);
        prop_assert_eq!(scalars.counts.total_notfinite, 1);
        prop_assert!(!scalars.counts.last_finite);
    } else {
        prop_assert_eq!(r, Ok(Outcome::Stepped));
        let mut pst: Vec<&mut [T]> = plain_state.iter_mut().map(|s| &mut s[..]).collect();
        prop_assert_eq!(
            rule.step(&mut plain_scalars, &mut plain_params, &grads, &mut pst),
            Ok(())
        );
        prop_assert_eq!(bits(&params), bits(&plain_params));
        prop_assert_eq!(
            state.iter().map(|s| bits(s)).collect::<Vec<_>>(),
            plain_state.iter().map(|s| bits(s)).collect::<Vec<_>>()
        );
        prop_assert_eq!(scalars.inner, plain_scalars);
        prop_assert_eq!(scalars.counts, NonFiniteCounts::default());
    }
    // A bad call is refused whatever the gradients hold, and nothing moves.
    let snapshot = (bits(&params), scalars);
    let mut short = grads.clone();
    short.push(T::ZERO);
    let mut st: Vec<&mut [T]> = state.iter_mut().map(|s| &mut s[..]).collect();
    let r = guarded.apply(&mut scalars, &mut params, &short, &mut st);
    prop_assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{:?}", r);
    prop_assert_eq!((bits(&params), scalars), snapshot);
    Ok(())
}

fn adam() -> impl Strategy<Value = Adam> {
    (any::<bool>(), 0.0..0.2f64).prop_map(|(amsgrad, weight_decay)| Adam {
        lr: 0.01,
        amsgrad,
        weight_decay,
        ..Adam::default()
    })
}

fn sgd() -> impl Strategy<Value = Sgd> {
    (prop_oneof![Just(0.0), 0.0..0.95f64], any::<bool>()).prop_map(|(momentum, nesterov)| Sgd {
        lr: 0.05,
        momentum,
        nesterov: nesterov && momentum > 0.0,
        ..Sgd::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn guard_adam_f32(rule in adam(), n in 0..=max_len::<f32>(), offset in 0usize..17, v in values(), poison in proptest::option::of((any::<usize>(), non_finite())), reference in any::<bool>()) {
        guard_case::<Adam, f32>(rule, n, offset, &v, poison, reference)?;
    }
    #[test]
    fn guard_sgd_f64(rule in sgd(), n in 0..=max_len::<f64>(), offset in 0usize..9, v in values(), poison in proptest::option::of((any::<usize>(), non_finite())), reference in any::<bool>()) {
        guard_case::<Sgd, f64>(rule, n, offset, &v, poison, reference)?;
    }
    #[test]
    fn all_finite_equals_naive(lens in lens::<f32>(), offset in 0usize..17, v in values(), poison in proptest::option::of((any::<usize>(), non_finite()))) {
        let mut g = Grads::<f32>::new(&lens, offset, &v);
        if let Some((at, x)) = poison {
            g.poison(at, x);
        }
        let slices = g.slices();
        let naive = slices.iter().flatten().all(|x| x.is_finite());
        prop_assert_eq!(all_finite_slices(&slices), naive);
        for s in &slices {
            prop_assert_eq!(all_finite(s), s.iter().all(|x| x.is_finite()));
        }
    }
}

#[test]
fn guard_counters_saturate_and_reset() {
    let mut c = NonFiniteCounts {
        notfinite_count: u64::MAX,
        last_finite: false,
        total_notfinite: u64::MAX,
    };
    assert_eq!(c.record(false), Outcome::Skipped);
    assert_eq!((c.notfinite_count, c.total_notfinite), (u64::MAX, u64::MAX));
    assert_eq!(c.record(true), Outcome::Stepped);
    assert_eq!(
        c,
        NonFiniteCounts {
            notfinite_count: 0,
            last_finite: true,
            total_notfinite: u64::MAX
        }
    );
    // optax's initial state: last_finite = true.
    assert!(NonFiniteCounts::default().last_finite);
}

#[test]
fn all_finite_stops_at_first_block_and_sees_late_values() {
    let mut xs = vec![1.0f32; 5000];
    assert!(all_finite(&xs));
    xs[4999] = f32::INFINITY;
    assert!(!all_finite(&xs));
    xs[4999] = 1.0;
    xs[0] = f32::NAN;
    assert!(!all_finite(&xs));
    assert!(all_finite::<f64>(&[]));
}

// ---------------------------------------------------------------------------------
// Loss scaling.

fn scaler() -> impl Strategy<Value = GradScaler> {
    (
        -120.0..120.0f64,
        prop_oneof![Just(2.0), 1.0001..16.0f64],
        prop_oneof![Just(0.5), 1e-4..0.9999f64],
        prop_oneof![Just(1u32), 1u32..6, Just(2000)],
    )
        .prop_map(
            |(e, growth_factor, backoff_factor, growth_interval)| GradScaler {
                init_scale: 2f64.powf(e),
                growth_factor,
                backoff_factor,
                growth_interval,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn loss_scale_stays_finite_and_positive(config in scaler(), pattern in prop::collection::vec(any::<bool>(), 0..600), burst in any::<bool>()) {
        let mut s = config.init().unwrap();
        // Long runs of one outcome drive the scale to both ends of the f32 range.
        let pattern: Vec<bool> = if burst {
            pattern.iter().copied().chain(std::iter::repeat_n(true, 300)).chain(std::iter::repeat_n(false, 300)).collect()
        } else {
            pattern
        };
        for found_inf in pattern {
            let before = s;
            prop_assert_eq!(config.update(&mut s, found_inf), Ok(()));
            prop_assert!(s.scale.is_finite() && s.scale > 0.0, "{:?} -> {:?}", before, s);
            prop_assert!(s.inv_scale().is_finite() && s.inv_scale() > 0.0);
            prop_assert!(s.growth_tracker < config.growth_interval);
            if found_inf {
                prop_assert!(s.scale <= before.scale && s.growth_tracker == 0);
            } else {
                prop_assert!(s.scale >= before.scale);
            }
        }
    }

    #[test]
    fn unscale_equals_naive(lens in lens::<f32>(), offset in 0usize..17, v in values(), e in -40i32..40, poison in proptest::option::of((any::<usize>(), non_finite()))) {
        let s = ScalerState { scale: 2f32.powi(e) * 1.37, growth_tracker: 0 };
        let mut g = Grads::<f32>::new(&lens, offset, &v);
        if let Some((at, x)) = poison {
            g.poison(at, x);
        }
        let before = g.slices();
        let found = s.unscale(&mut g.views()).unwrap();
        prop_assert_eq!(found, !before.iter().flatten().all(|x| x.is_finite()));
        let inv = (1.0 / f64::from(s.scale)) as f32;
        for (a, b) in g.slices().iter().zip(&before) {
            let expected: Vec<f32> = b.iter().map(|x| x * inv).collect();
            prop_assert_eq!(bits(a), bits(&expected));
        }
        // f64 gradients multiply by the f64 value of the f32 inverse.
        let mut g64 = Grads::<f64>::new(&lens, offset, &v);
        let b64 = g64.slices();
        s.unscale(&mut g64.views()).unwrap();
        for (a, b) in g64.slices().iter().zip(&b64) {
            let expected: Vec<f64> = b.iter().map(|x| x * f64::from(inv)).collect();
            prop_assert_eq!(bits(a), bits(&expected));
        }
    }
}

#[test]
fn loss_scale_refuses_bad_configs_and_states() {
    let ok = GradScaler::default();
    let bad = [
        (
            "init_scale",
            GradScaler {
                init_scale: 0.0,
                ..ok
            },
        ),
        (
            "init_scale",
            GradScaler {
                init_scale: -1.0,
                ..ok
            },
        ),
        (
            "init_scale",
            GradScaler {
                init_scale: f64::NAN,
                ..ok
            },
        ),
        (
            "init_scale",
            GradScaler {
                init_scale: 1e39,
                ..ok
            },
        ),
        (
            "init_scale",
            GradScaler {
                init_scale: 1e-50,
                ..ok
            },
        ),
        (
            "init_scale",
            GradScaler {
                init_scale: 1e-40,
                ..ok
            },
        ),
        (
            "growth_factor",
            GradScaler {
                growth_factor: 1.0,
                ..ok
            },
        ),
        (
            "growth_factor",
            GradScaler {
                growth_factor: f64::INFINITY,
                ..ok
            },
        ),
        (
            "backoff_factor",
            GradScaler {
                backoff_factor: 1.0,
                ..ok
            },
        ),
        (
            "backoff_factor",
            GradScaler {
                backoff_factor: 0.0,
                ..ok
            },
        ),
        (
            "backoff_factor",
            GradScaler {
                backoff_factor: f64::NAN,
                ..ok
            },
        ),
        (
            "growth_interval",
            GradScaler {
                growth_interval: 0,
                ..ok
            },
        ),
    ];
    let mut state = ok.init().unwrap();
    for (name, config) in bad {
        match config.init() {
            Err(Error::InvalidHyperparameter { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{name}: {other:?}"),
        }
        assert!(config.update(&mut state, true).is_err());
        assert_eq!(state, ok.init().unwrap());
    }
    for scale in [0.0f32, -1.0, f32::NAN, f32::INFINITY, 1e-40] {
        let mut s = ScalerState {
            scale,
            growth_tracker: 3,
        };
        let mut g = [1.0f32, 2.0];
        assert!(s.unscale(&mut [&mut g[..]]).is_err());
        assert_eq!(g, [1.0, 2.0]);
        assert!(ok.update(&mut s, false).is_err());
        assert_eq!(s.growth_tracker, 3);
    }
}

#[test]
fn loss_scale_pinned_sequence() {
    // torch: growth is refused at the top of the f32 range; here the backoff is refused
    // at the bottom too (torch would reach 0 after enough backoffs).
    let g = GradScaler {
        init_scale: 3e38,
        growth_interval: 1,
        ..GradScaler::default()
    };
    let mut s = g.init().unwrap();
    g.update(&mut s, false).unwrap();
    assert_eq!(s.scale, 3e38);
    let g = GradScaler {
        init_scale: 1e-37,
        ..GradScaler::default()
    };
    let mut s = g.init().unwrap();
    for _ in 0..10 {
        g.update(&mut s, true).unwrap();
    }
    // Five halvings of 1e-37 (≈ 3.1e-39, inverse ≈ 3.2e38) keep a finite f32 inverse;
    // the sixth (inverse ≈ 6.4e38) would not, so the scale stops there.
    let mut expected = 1e-37f32;
    for _ in 0..5 {
        expected = (f64::from(expected) * 0.5) as f32;
    }
    assert_eq!(s.scale, expected);
    assert!(s.inv_scale().is_finite());
    assert!(!((1.0 / (f64::from(expected) * 0.5)) as f32).is_finite());
    // scale_loss multiplies in the loss's type.
    let s = GradScaler::default().init().unwrap();
    assert_eq!(s.scale_loss(0.5f32), 32768.0);
    assert_eq!(s.inv_scale(), 1.0 / 65536.0);
}

// ---------------------------------------------------------------------------------
// Accumulation.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn accumulate_equals_naive_f32(lens in lens::<f32>(), offset in 0usize..17, v in values(), k in 1usize..6, mean in any::<bool>()) {
        accumulate_case::<f32>(&lens, offset, &v, k, mean)?;
    }
    #[test]
    fn accumulate_equals_naive_f64(lens in lens::<f64>(), offset in 0usize..9, v in values(), k in 1usize..6, mean in any::<bool>()) {
        accumulate_case::<f64>(&lens, offset, &v, k, mean)?;
    }
    #[test]
    fn mean_of_identical_micro_batches(lens in lens::<f32>(), offset in 0usize..17, v in values(), k in 1u64..40) {
        let g = Grads::<f32>::new(&lens, offset, &v);
        let micro = g.slices();
        let mut acc = Grads::<f32>::new(&lens, offset, &[f64::NAN]);
        let mut a = Accumulator::default();
        let refs: Vec<&[f32]> = micro.iter().map(|s| &s[..]).collect();
        for _ in 0..k {
            a.add(&mut acc.views(), &refs).unwrap();
        }
        prop_assert_eq!(a.finish(&mut acc.views(), Reduction::Mean), k);
        for (m, x) in acc.slices().iter().zip(&micro) {
            for (m, x) in m.iter().zip(x) {
                // k additions of x, each rounding by at most ½ ulp of the running sum,
                // then one division.
                let bound = (k as f32) * f32::EPSILON * x.abs();
                prop_assert!((m - x).abs() <= bound, "{} vs {} (k = {})", m, x, k);
            }
        }
    }
}

fn accumulate_case<T: Real>(
    lens: &[usize],
    offset: usize,
    values: &[f64],
    k: usize,
    mean: bool,
) -> Result<(), TestCaseError> {
    // k micro-batches, each a rotation of the values.
    let micro: Vec<Vec<Vec<T>>> = (0..k)
        .map(|i| {
            let rotated: Vec<f64> = values
                .iter()
                .cycle()
                .skip(i)
                .take(values.len())
                .copied()
                .collect();
            Grads::<T>::new(lens, 0, &rotated).slices()
        })
        .collect();
    // Garbage in the buffers: the first add must overwrite it.
    let mut acc = Grads::<T>::new(lens, offset, &[f64::NAN, 7.0]);
    let mut a = Accumulator::default();
    for m in &micro {
        let refs: Vec<&[T]> = m.iter().map(|s| &s[..]).collect();
        prop_assert_eq!(a.add(&mut acc.views(), &refs), Ok(()));
    }
    prop_assert_eq!(a.count, k as u64);
    let reduction = if mean {
        Reduction::Mean
    } else {
        Reduction::Sum
    };
    prop_assert_eq!(a.finish(&mut acc.views(), reduction), k as u64);
    prop_assert_eq!(a.count, 0);
    for (s, got) in acc.slices().iter().enumerate() {
        let expected: Vec<T> = (0..lens[s])
            .map(|i| {
                let mut x = micro[0][s][i];
                for m in &micro[1..] {
                    x = x + m[s][i];
                }
                if mean && k > 1 {
                    x / T::from_f64(k as f64)
                } else {
                    x
                }
            })
            .collect();
        prop_assert_eq!(bits(got), bits(&expected));
    }
    // Mismatches are refused with nothing written and the count unchanged.
    let snapshot = acc.all_bits();
    let mut a = Accumulator { count: 2 };
    if let Some(first) = micro[0].first() {
        let mut longer = first.clone();
        longer.push(T::ONE);
        let mut refs: Vec<&[T]> = micro[0].iter().map(|s| &s[..]).collect();
        refs[0] = &longer;
        let r = a.add(&mut acc.views(), &refs);
        prop_assert!(
            matches!(
                r,
                Err(Error::LengthMismatch {
                    buffer: Buffer::Grads,
                    ..
                })
            ),
            "{:?}",
            r
        );
    }
    let mut refs: Vec<&[T]> = micro[0].iter().map(|s| &s[..]).collect();
    refs.push(&[]);
    prop_assert_eq!(
        a.add(&mut acc.views(), &refs),
        Err(Error::LengthMismatch {
            buffer: Buffer::Grads,
            expected: lens.len(),
            found: lens.len() + 1
        })
    );
    let mut full = Accumulator { count: u64::MAX };
    let refs: Vec<&[T]> = micro[0].iter().map(|s| &s[..]).collect();
    prop_assert_eq!(full.add(&mut acc.views(), &refs), Err(Error::StepOverflow));
    prop_assert_eq!(acc.all_bits(), snapshot);
    prop_assert_eq!((a.count, full.count), (2, u64::MAX));
    Ok(())
}

#[test]
fn finish_without_micro_batches_gives_zeros() {
    let mut buf = [f32::NAN; 5];
    let mut a = Accumulator::default();
    assert_eq!(a.finish(&mut [&mut buf[..]], Reduction::Mean), 0);
    assert_eq!(buf, [0.0; 5]);
}
