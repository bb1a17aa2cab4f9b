//! The one tolerance table: how far gradstep may be from the PyTorch recordings, per rule
//! and element type, and why.
//!
//! An element passes when `|ours − torch| ≤ rel·|torch| + abs`, at every step, for
//! params and (after the last step) every state slice.
//!
//! **f64: 1e-12 relative, 1e-14 absolute, for every rule.** gradstep computes the same
//! operations in the same order as torch's single-tensor path; what differs is that
//! torch's vectorized CPU kernels fuse `add(alpha)`, `lerp` and `addcmul` into one
//! fused multiply-add (one rounding instead of two), which gradstep does not do so that
//! every target, with or without FMA hardware, gives the same bits. Each unfused
//! operation differs by at most 1 ulp (1.1e-16 relative); over 50 steps of well
//! conditioned updates that stays orders of magnitude below 1e-12. The absolute floor
//! covers params that pass through zero, where relative error is meaningless.
//!
//! Measured (torch 2.15 fixtures): the worst f64 case uses 4% of this budget
//! (RMSprop with momentum, 4e-14 relative); Rprop is bit-exact.
//!
//! **f32**: the same ulp-level differences, at f32's 1.2e-7 per operation, accumulated
//! over 50 steps. The bounds below are per rule, in units of f32 epsilon relative to
//! `|torch| + 1`: the measured worst case over all recorded cases, doubled and rounded
//! up to a power of two (1–16 ε, i.e. 1.2e-7 to 1.9e-6). A regression in semantics (a
//! wrong bias correction, ε in the wrong place, a missing first-step special case)
//! moves results by 1e-4 or more and fails by orders of magnitude (SGD applying
//! dampening on its first step fails by 10⁵× the f32 bound). Choices that differ only
//! in rounding (torch's two lerp formulas) are pinned by the bit-exact comparison of
//! the vector path with the scalar reference instead. Bit-exact f32 equality with torch is not a meaningful target: torch's own
//! results differ between its fused vectorized body and its unfused scalar tail, and
//! between CPU capability levels.

/// A per-element bound: `|ours − torch| ≤ rel·|torch| + abs`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative part.
    pub rel: f64,
    /// Absolute floor.
    pub abs: f64,
}

impl Tolerance {
    /// Whether `ours` is within bounds of `torch`.
    pub fn accepts(&self, ours: f64, torch: f64) -> bool {
        (ours - torch).abs() <= self.rel * torch.abs() + self.abs
    }

    /// How much of the budget the difference uses (≤ 1 passes).
    pub fn usage(&self, ours: f64, torch: f64) -> f64 {
        (ours - torch).abs() / (self.rel * torch.abs() + self.abs)
    }
}

/// f32 epsilon (2⁻²³).
const EPS32: f64 = f32::EPSILON as f64;

/// The bound for `rule` (the registry's name) in `dtype` (`"f32"` or `"f64"`).
///
/// Panics when the table has no such row; [`row`] says whether it has one (the
/// completeness test, `tests/registry.rs`, checks that every registered rule has both).
pub fn tolerance(rule: &str, dtype: &str) -> Tolerance {
    row(rule, dtype).unwrap_or_else(|| panic!("no {dtype} tolerance for rule {rule}"))
}

/// The bound for `rule` in `dtype`, or `None` if the table has no row for it.
pub fn row(rule: &str, dtype: &str) -> Option<Tolerance> {
    Some(match dtype {
        "f64" => Tolerance {
            rel: 1e-12,
            abs: 1e-14,
        },
        "f32" => {
            // `k` in units of f32 epsilon, relative to |torch| + 1 (params are O(1)).
            // Measured worst case over the recorded cases (torch 2.15, 50 steps, grad
            // scales 1e-3..30) in brackets; k = that × 2, rounded up to a power of 2.
            let k = match rule {
                // Every operation is exact or a single comparison-driven choice:
                // step sizes are products of the etas, updates ±Δ. Bit-exact. [0]
                "rprop" => 0.0,
                // One √ ratio per step, no bias correction. [0.98]
                "adadelta" => 2.0,
                // Accumulated g² (torch fuses g·g + s). [1.45]
                "adagrad" => 4.0,
                // lerp and addcmul fused in torch; √v / √bc2. [1.35]
                "adam" => 4.0,
                // η·g with η rounded to f32 each step, as torch. [1.65]
                "asgd" => 4.0,
                // The running max passes one rounding difference on unchanged. [2.52]
                "adamax" => 8.0,
                // Decoupled decay multiplies θ by (1 − γλ) every step. [2.01]
                "adamw" => 8.0,
                // Two addcdiv terms per step; Π rounded to f32 each step. [3.01]
                "nadam" => 8.0,
                // m̂·γ·l·r, four roundings in the update. [2.50]
                "radam" => 8.0,
                // Momentum buffers sum the (fused in torch) update over many steps. [2.66]
                "sgd" => 8.0,
                // Centered: v − ḡ² cancels, and momentum sums g/a over steps. [4.80]
                "rmsprop" => 16.0,
                // Cases from three libraries (tests/fixtures/seed001): torch's Adam and
                // AMSGrad (fused lerp/addcmul, as "adam"), optax's amsgrad (m/(1 − β₁ᵗ)
                // then ·γ, where torch and gradstep fold 1/(1 − β₁ᵗ) into the step
                // size; XLA's own kernels), Keras's Ftrl as the lazy form (f32
                // bit-exact in 3 of 4 cases). [3.52, torch AMSGrad + L2, grads ×30]
                "proximal" => 8.0,
                // Keras's Ftrl on its torch backend: the same expressions in the same
                // order; bit-exact in f32 except with shrinkage and β. [0.71]
                "ftrl" => 2.0,
                _ => return None,
            };
            Tolerance {
                rel: k * EPS32,
                abs: k * EPS32,
            }
        }
        _ => return None,
    })
}

/// The bound for learning-rate schedules (all `f64`, as Python computes them):
/// 1e-12 relative, no absolute floor (a schedule that should reach exactly 0 must).
///
/// gradstep evaluates torch's expressions in torch's order, so the only differences
/// come from `cos`/`pow` (libm here, the platform's C library in Python, both within
/// 1 ulp) and from optax's XLA kernels; the recursive ("chainable") forms carry those
/// ulps from step to step. Measured on the torch 2.15 / optax 0.2.8 fixtures: see the
/// replay's printed worst case.
pub fn schedule_tolerance() -> Tolerance {
    Tolerance {
        rel: 1e-12,
        abs: 0.0,
    }
}

/// The bound for gradient-norm clipping (`clip_grad_norm_`, `get_total_norm`), per norm
/// order `p` (`f64::INFINITY` for the max norm) and element type, relative and with no
/// absolute floor: clipped gradients are products `g · c`, so their error is relative
/// whatever their magnitude (the fixtures span 2⁻²⁰ to 2²⁰), and a zero must stay zero.
/// It applies to the total norm, each slice's norm and each clipped gradient; sums of
/// clipped slices are judged against `rel · Σ|g|`. `clip_grad_value_` and `GradScaler`
/// are checked bit for bit instead (they are single exactly rounded operations).
///
/// The clip coefficient is not the source of error: computed from torch's own norm it
/// matches torch bit for bit (checked for every case). What differs is the norm. gradstep
/// sums on 16 virtual lanes folded into `f64`, and its `f32` norms are the correctly
/// rounded exact norms in every case checked; torch sums in `f32` (and computes `|g|ᵖ` in
/// `f32`), so its own error grows with the number of terms and with how far `p` is from
/// 2.
///
/// **f64: 1e-12 relative.** Measured worst: 3.9e-15 (p = 0.5), 5e-16 otherwise.
///
/// **f32**, in units of f32 epsilon; the measured worst case over the fixtures (slices up
/// to 4099 elements, torch 2.15 AVX512 kernels), doubled and rounded up to a
/// power of two as in [`tolerance`] (measured worst in parentheses):
/// - ∞: 0, bit-exact (a maximum is exact, so are `c` and `g · c`) (0)
/// - 2: 4 (1.02).
/// - 1: 16 (a sum of |g| has no square root to halve its error) (4.97).
/// - 3: 32 (`|g|³` rounded in `f32` by torch, then a cube root) (8.06).
/// - 0.5: 64 (`√|g|` summed in `f32`; the final square doubles the relative error) (17.2).
///
/// Beyond the fixtures torch's `f32` error keeps growing: for 10⁶ standard normal
/// elements it is −85 ε (p = 2), −711 ε (p = 1) and −2443 ε (p = 3) against the exact
/// norm (measured with torch 2.15 on the CPU), while gradstep's stays within about 1 ulp. A wrong
/// formula (the 1e-6 added to the coefficient instead of the norm, a missing clamp,
/// per-slice instead of global norms) moves results by far more than these bounds.
pub fn clip_tolerance(p: f64, dtype: &str) -> Tolerance {
    let k = match dtype {
        "f64" => {
            return Tolerance {
                rel: 1e-12,
                abs: 0.0,
            };
        }
        "f32" if p == f64::INFINITY => 0.0,
        "f32" if p == 2.0 => 4.0,
        "f32" if p == 1.0 => 16.0,
        "f32" if p == 3.0 => 32.0,
        "f32" if p == 0.5 => 64.0,
        "f32" => panic!("no f32 clip tolerance for norm order {p}"),
        other => panic!("unknown dtype {other}"),
    };
    Tolerance {
        rel: k * EPS32,
        abs: 0.0,
    }
}
