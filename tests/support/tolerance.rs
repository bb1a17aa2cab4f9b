//! The one tolerance table: how far gradstep may be from the PyTorch recordings, per rule
//! and element type, and why.
//!
//! Two kinds of bound, for two claims:
//! - **Per step** ([`per_step_ulps`]): started from torch's state, one step agrees with
//!   torch within a few ulps for every rule, in every recorded regime (hard gradients,
//!   edge hyperparameters, 1000-step runs), and bit-identically with torch's scalar
//!   kernels where its square root is correctly rounded. This bound does not grow with
//!   the number of steps. `tests/torch_per_step.rs`.
//! - **Trajectories** ([`tolerance`]): gradstep running freely agrees with torch at every
//!   step of the well-conditioned recorded grid (`record.py`: 50 steps, gradient scales
//!   1e-3 to 30). These bounds hold in that regime only: on ill-conditioned runs
//!   trajectories drift apart by rounding, and torch's own AVX512 and scalar kernels
//!   drift apart exactly as far (measured on the 272 runs of `record_steps.py`: f32
//!   up to 111× the bounds below at elements near zero, Adadelta with ρ = 1 and lr = 10;
//!   93× ASGD; 15× SGD; f64 within 13% of 1e-12), so `tests/torch_trajectories.rs`
//!   replays only the well-conditioned grid
//!   and `tests/torch_per_step.rs` compares hard trajectories with torch-vs-torch drift.
//!
//! For trajectories an element passes when `|ours − torch| ≤ rel·|torch| + abs`, at
//! every step, for params and (after the last step) every state slice.
//!
//! **f64: 1e-12 relative, 1e-14 absolute, for every rule** (on the well-conditioned grid). gradstep computes the same
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
        // Bit-exact with optax 0.2.8 / jax 0.10.2 (XLA CPU), whose operations and their
        // order gradstep follows (`v · (1/bc)` included); no fused multiply-adds there.
        "f64" if rule == "rmsprop_bc" => Tolerance { rel: 0.0, abs: 0.0 },
        // Bit-exact with gradstep's numpy reference (tests/fixtures/mukkamala2017), which
        // does the same IEEE operations in the same order (numpy's √ is correctly rounded).
        "f64" if rule == "online_rmsprop" => Tolerance { rel: 0.0, abs: 0.0 },
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
                // Cases from three libraries (tests/fixtures/seed001): torch's Adam and
                // AMSGrad (fused lerp/addcmul, as "adam"), optax's amsgrad (m/(1 − β₁ᵗ)
                // then ·γ, where torch and gradstep fold 1/(1 − β₁ᵗ) into the step
                // size; XLA's own kernels), Keras's Ftrl as the lazy form (f32
                // bit-exact in 3 of 4 cases). [3.52, torch AMSGrad + L2, grads ×30]
                "proximal" => 8.0,
                // Keras's Ftrl on its torch backend: the same expressions in the same
                // order; bit-exact in f32 except with shrinkage and β. [0.71]
                "ftrl" => 2.0,
                // Cross-check of FTRL's named options, not the reference:
                // pytorch_optimizer.FTRL (`initial_accumulator_value=0, single_l2,
                // sqrt_denominator`), which computes (z + g) − σθ where Keras and gradstep
                // compute z + (g − σθ): a different rounding at every step of a running sum
                // that grows to |z| ≈ 10²–10⁴ while g and σθ partly cancel. Worst on the
                // state z; L1's exact zeros are checked to be at the
                // same elements and steps. In f64 within the 1e-12 row (4% of it). [17.9]
                "ftrl_pytorch_optimizer" => 64.0,
                // pytorch_optimizer.Adan: two addcdiv terms and three lerp/addcmul
                // moments, fused in torch (scale-30 proximal case worst). [4.18]
                "adan" => 16.0,
                // optax.lamb: optax sums the norms in f32, gradstep in compensated f64;
                // r multiplies the whole update. [1.47]
                "lamb" => 4.0,
                // Cross-checks of LAMB's named options, not the reference:
                // keras.optimizers.Lamb on its torch backend (`lamb:eps=1e-7,
                // decoupled_weight_decay`): f32 norms, β₁ᵗ in f32, m + (g − m)(1 − β₁),
                // θ − θ·λ·γ. In f64 within the 1e-12 row (measured 3.1e-14 relative,
                // 3% of it). [5.98, decay with grads ×30, on v]
                "lamb_keras" => 16.0,
                // pytorch_optimizer.Lamb (`decoupled_weight_decay, no_v_correction,
                // clamp_norm, eps_in_ratio`): torch's fused add/addcmul moments and f32
                // `linalg.norm`; its 1/(1 − β₁ᵗ) on the step enlarges early steps up to
                // 10×, so roundings in θ weigh more. In f64 within the 1e-12 row (measured
                // 4% of it). [5.86, decoupled decay, lr 0.05]
                "lamb_pytorch_optimizer" => 16.0,
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
                // Bit-exact with optax (as in f64, above). [0]
                "rmsprop_bc" => 0.0,
                // Cross-check, not the reference: the same cases through
                // torch.optim.Adam(betas=(0, α)) (tests/fixtures/optax/rmsprop_bc_torch.json),
                // which divides √v by √bc where optax takes √(v·(1/bc)), uses one division
                // for γg/(…), and fuses multiply-adds. In f64 within the 1e-12 row (measured
                // 4.2e-16 relative to |torch| + 1). [1.32]
                "rmsprop_bc_torch" => 4.0,
                // Bit-exact with the numpy reference (as in f64, above). [0]
                "online_rmsprop" => 0.0,
                // The same operations as the numpy reference, except the exponential of
                // the damping: glibc's exp there, gradstep's (fdlibm's algorithm on lanes)
                // here, each within 1 ulp, so they may differ by an ulp of δ. Measured
                // bit-exact on every recorded case, in f32 and f64. [0]
                "sc_adagrad" => 2.0,
                "sc_rmsprop" => 2.0,
                // Cross-check, not the reference: online_rmsprop with γ = 1 replaying torch's
                // Adagrad recordings (no lr_decay, accumulator from 0). Equal in exact
                // arithmetic; gradstep rounds (1 − 1/t)·v + g²/t and t·v where torch rounds
                // the running sum Σg² (and fuses its multiply-adds). Worst on the state,
                // v against torch's sum / 50; params within 0.6 ε. In f64 within the 1e-12
                // row (measured 1.5e-15). [2.37]
                "online_rmsprop_torch_adagrad" => 8.0,
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

/// The per-step bound, in ulps, for `rule` in `dtype` against torch's kernel set `kernels`
/// (`"simd"`, `"scalar"`, `"scalar_crsqrt"`: `tests/fixtures/torch/record_steps.py`), as
/// `tests/torch_per_step.rs` measures it: gradstep starts from torch's full state after
/// step k − 1 and takes step k; each element of its params, state slices and scalar state
/// may differ from torch's by this many ulps of the larger of the element before and
/// after the step (torch's). Unlike a trajectory bound it does not grow with the number
/// of steps.
///
/// Each bound is the measured worst case over every recorded step (torch 2.15, 272 runs
/// of 1 to 1000 steps, lengths 1 to 1000, gradients ×1e4, ×1e-6 and mixed 1e-6…1e4 with
/// exact zeros, hyperparameters at the edges of their ranges), doubled and rounded up to
/// a power of two, at least what the operations allow, the same in f32 and f64 unless
/// said. Measured worst cases (f32/f64) in brackets.
///
/// **`scalar_crsqrt`: 0, bit-identical, for every rule.** torch's scalar kernels round
/// every operation once, in the order gradstep does; with a correctly rounded square root
/// in place of torch's nothing is left to differ. That includes the two scalars that need
/// a non-integer power, NAdam's μₜ = β₁(1 − ½·0.96^(tψ)) and ASGD's η = γ/(1 + κγt)^α:
/// gradstep's `pow` is correctly rounded (`kernels/src/power.rs`), as glibc's, which
/// Python and so torch use, is at every recorded step (Rust's `libm::pow`, used before,
/// was 1 ulp off at NAdam's t = 104 and ASGD's t = 8 here [1/1 in f64]). glibc's is not
/// always: about 0.08% of sampled powers differ from it by an ulp, and a recording that
/// hit one would show Π or η 1 ulp off.
///
/// **`scalar`** (`ATEN_CPU_CAPABILITY=default`): the same, except that torch's CPU `sqrt`
/// is not correctly rounded (1 ulp low for about 0.7% of standard-normal float32 and
/// float64 inputs, with every kernel set). One square
/// root on the update path moves the
/// denominator by 1 ulp and the update by 1–2 ulps: 2 for Adam, AdamW, Adagrad, RAdam
/// [2/0.5, 2/1, 1/0, 0/0]; 4 for NAdam and RMSprop, where it also enters the momentum or
/// the second addcdiv term [2/1, 4/2]; 8 for Adadelta, whose ratio of two roots is
/// squared into `acc_delta` [6/5]. (torch's own square root differs between machines:
/// re-recorded on a Zen 4 in session 23, 87 of the 816 `scalar` recordings and 87 of
/// the `simd` ones changed, all of rules with a square root; no `scalar_crsqrt` one.) 0 for the rules without a square root (SGD, ASGD,
/// Adamax, Rprop) [0/0].
///
/// **`simd`** (AVX2/AVX-512, torch's default): torch fuses `add_(x, alpha=a)`,
/// `addcmul_`, `addcdiv_` and `lerp_` into one rounding where gradstep rounds twice (it
/// does not fuse, so that every target gives the same bits), plus the square root above.
/// A fused sum differs by at most 1 ulp of its largest term; where that sum cancels, the
/// difference is many ulps of the result and of everything computed from it:
/// - Rprop 0 (step sizes are products of the etas, updates ±Δ: nothing fuses) [0/0];
/// - AdamW 2 [2/2], Adamax 4 [2/2] (one fused sum each, cancelling in none of the
///   recorded cases);
/// - Adagrad 8 [3/3], NAdam 8 [2/3], RAdam 8 [3/4]: L2 decay g + λθ is one fused
///   `add_(θ, alpha=λ)` in torch; where it partly cancels, its ulp differences grow in
///   the result and again when it is squared into the second moment;
/// - Adadelta 16 [6/6]: the same, under two square roots and squared into `acc_delta`;
/// - ASGD 64 [9/30]: θ·(1 − κη) − ηg (fused) cancels when the step nearly zeroes θ,
///   and `ax` copies θ (μ = 1) or averages it;
/// - RMSprop 64 [17/23]: centered, v − ḡ² is one fused `addcmul` in torch and cancels
///   whenever the gradient's sign holds (ḡ² ≈ v);
/// - Adam 128 [37/59]: the L2 sum g + λθ cancelling, squared into v;
/// - SGD 256 [113/81]: the L2 sum g + λθ cancelling is the first momentum buffer itself
///   (measured in its own ulps: nothing larger is at hand at step 1).
///
/// These `simd` bounds hold over the recorded cases, not for every input: where a fused
/// sum cancels exactly in gradstep's arithmetic (and torch's scalar kernels'), torch's
/// fused one leaves a residual, which a normalizing rule turns into a whole step. f32,
/// θ = 3, λ = 0.1, g = −(0.1f·3): the L2 sum is 0 here and −7.45e-9 in torch's AVX-512
/// kernels, so after one step SGD's momentum buffer is 0 against −7.45e-9, and Adam's
/// and Adamax's θ stay 3.0 against 3.0427 (Adagrad 3.0987). Against `scalar` and
/// `scalar_crsqrt` such a case is bit-identical as every other (found by a differential
/// fuzz against torch, session 23).
///
/// A wrong equation moves results by far more: a missing bias correction or ε in the
/// wrong place is millions of ulps on the first step.
pub fn per_step_ulps(rule: &str, dtype: &str, kernels: &str) -> f64 {
    per_step_row(rule, dtype, kernels)
        .unwrap_or_else(|| panic!("no per-step bound for {rule} {dtype} against {kernels}"))
}

/// The kernel sets the per-step recordings hold (`record_steps.py`'s `KERNELS`).
pub const PER_STEP_KERNELS: [&str; 3] = ["simd", "scalar", "scalar_crsqrt"];

/// [`per_step_ulps`], or `None` if the table has no such row (the completeness test,
/// `tests/registry.rs`, checks that every registered rule has all of them).
pub fn per_step_row(rule: &str, dtype: &str, kernels: &str) -> Option<f64> {
    if !matches!(dtype, "f32" | "f64") {
        return None;
    }
    let (simd, scalar, crsqrt) = match rule {
        "rprop" => (0.0, 0.0, 0.0),
        "sgd" => (256.0, 0.0, 0.0),
        "asgd" => (64.0, 0.0, 0.0),
        "adamax" => (4.0, 0.0, 0.0),
        "adagrad" => (8.0, 2.0, 0.0),
        "adamw" => (2.0, 2.0, 0.0),
        "adam" => (128.0, 2.0, 0.0),
        "radam" => (8.0, 2.0, 0.0),
        "nadam" => (8.0, 4.0, 0.0),
        "rmsprop" => (64.0, 4.0, 0.0),
        "adadelta" => (16.0, 8.0, 0.0),
        _ => return None,
    };
    match kernels {
        "simd" => Some(simd),
        "scalar" => Some(scalar),
        "scalar_crsqrt" => Some(crsqrt),
        _ => None,
    }
}
