//! # gradstep
//!
//! The update rules of deep-learning optimizers as `no_std`, allocation-free,
//! SIMD-vectorized kernels over slices the caller owns, numerically equal to
//! `torch.optim` (checked against trajectories recorded from PyTorch).
//!
//! ```
//! use gradstep::{Adam, Rule, StepCount};
//!
//! let adam = Adam { lr: 0.1, ..Adam::default() };
//! let mut params = [1.0f32, -2.0, 3.0];
//! let grads = [0.5f32, -0.5, 0.25];
//! // Adam keeps two state slices (exp_avg, exp_avg_sq), each as long as the params.
//! let (mut m, mut v) = ([0.0f32; 3], [0.0f32; 3]);
//! let mut scalars = StepCount::default();
//! adam.step(&mut scalars, &mut params, &grads, &mut [&mut m, &mut v])?;
//! assert_eq!(scalars.step, 1);
//! // The first Adam step moves every parameter by lr against the gradient's sign.
//! assert!((params[0] - 0.9).abs() < 1e-6 && (params[1] + 1.9).abs() < 1e-6);
//! # Ok::<(), gradstep::Error>(())
//! ```
//!
//! ## Design
//! - Every rule implements [`Rule`]: a hyperparameter struct whose `Default` is torch's,
//!   a step function over `params`, `grads` and the rule's state slices, and a plain
//!   scalar reference implementation ([`Rule::step_reference`]) kept as the oracle.
//! - Nothing allocates and nothing panics on bad input: invalid hyperparameters, length
//!   mismatches and step-counter overflow return an [`Error`] before any buffer is
//!   written.
//! - Each rule is written once over the [`lanes::Lanes`] abstraction and runs on the
//!   target's vector unit (via the `wide` crate) or on scalars (Cortex-M and friends),
//!   with bit-identical results.
//! - Step 0 means fresh state: the first step initializes the state slices, as torch
//!   does lazily. The scalar state ([`StepCount`], [`NAdamScalars`], [`AsgdScalars`]) is
//!   plain data, so training resumes exactly from a saved copy.
//!
//! ## Rules
//! [`Sgd`] (momentum, dampening, Nesterov), [`Adam`] (AMSGrad, decoupled decay),
//! [`AdamW`], [`Adamax`], [`NAdam`], [`RAdam`], [`Adagrad`], [`Adadelta`], [`RmsProp`],
//! [`Rprop`], [`Asgd`]; beyond torch.optim: [`Adan`], [`Lamb`]; from the seed
//! articles: [`RmsPropBc`] (RMSprop with bias
//! correction), and Mukkamala & Hein's [`OnlineRmsProp`], [`ScAdagrad`] and
//! [`ScRmsProp`].
//!
//! ## Around the rules
//! - [`schedules`]: every `torch.optim.lr_scheduler` (torch's chainable recursions
//!   reproduced, closed forms alongside), warmup + decay, noam, piecewise constant.
//! - [`clip`]: clip by value, by global p-norm (torch's `clip_grad_norm_`) or per slice
//!   (Keras' `clipnorm`), over many gradient slices at once.
//! - [`guard`]: skip a step whose gradients are not finite ([`ApplyIfFinite`]).
//! - [`lookahead`]: Lookahead's slow weights over any rule ([`Lookahead`]).
//! - [`loss_scale`]: dynamic loss scaling for f16 training ([`GradScaler`], torch's
//!   `GradScaler` state machine).
//! - [`accumulate`]: gradient accumulation over micro-batches ([`Accumulator`]).
//! - [`checkpoint`]: an optimizer's complete state (rule, hyperparameters, scalar state,
//!   state slices, optionally the params) to and from a byte buffer, in a versioned,
//!   little-endian, CRC-checked format.
//!
//! ## Numerics
//! Per-step scalars (bias corrections, step sizes) are computed in `f64`, as Python does
//! in torch, and rounded to the element type once per step; element operations follow
//! torch's order. Powers with whole exponents (`β₁ᵗ`, `γ^⌊t/s⌋`) are computed exactly
//! in 128-bit integer arithmetic and correctly rounded, which agrees with the C library
//! `pow` that Python calls (glibc: 0.52 ulp) on 99.97% of sampled powers and is never
//! more than 1 ulp from it; [`StepCount`] caches the bias-correction powers so that
//! each step costs one multiply on cores without a double-precision unit. Non-integer
//! powers (NAdam's μₜ, ASGD's η, schedules) are `e^(y·ln x)` carried in double-double
//! arithmetic (about 100 correct bits) and rounded once: correctly rounded, where glibc's
//! `pow` differs by 1 ulp on about 0.08% of sampled powers and Rust's `libm::pow` on 10%.
//! Square roots
//! of quantities that are non-negative by construction (second moments, sums of
//! squares) are taken of their magnitude ([`lanes::Lanes::sqrt_abs`]): identical for
//! every state the rules or torch produce, and on Cortex-M4F a bare `VSQRT`. No fused
//! multiply-add changes a result: the one place the x86-64 lanes use one is a division by
//! a per-step constant ([`lanes::Divisor`]), done as Markstein's correctly rounded
//! sequence, so results are identical on every target.
//!
//! How close to torch (the workspace's `tests/torch_per_step.rs`, bounds and reasons in
//! `tests/support/tolerance.rs`): started from torch's state, one step agrees with
//! torch 2.15 within a few ulps for every rule in every recorded regime (gradients ×1e4,
//! ×1e-6, mixed with zeros, hyperparameters at the edges of their ranges, runs of 1000
//! steps), and is bit-identical to torch's scalar CPU kernels wherever torch's square
//! root is correctly rounded. The
//! differences from torch's default (AVX2/AVX-512) kernels are theirs: they fuse
//! multiply-adds, which changes results by an ulp of the largest term, many ulps of a
//! cancelling result. Whole trajectories agree to 1e-12 relative in `f64` on
//! well-conditioned runs; on ill-conditioned ones they drift by rounding, exactly as far
//! as torch's own vectorized and scalar kernels drift from each other.
//!
//! ## Deliberate differences from torch
//! Each is tested (the README's table names the test).
//!
//! | difference | torch 2.15 | gradstep |
//! |---|---|---|
//! | ε = 0 ([`Adam`], [`AdamW`], [`Adamax`], [`NAdam`], [`RAdam`], [`Adagrad`], [`Adadelta`], [`RmsProp`]) | accepted; a zero gradient gives 0/0 = NaN | refused: ε > 0 |
//! | non-finite hyperparameters | accepted; NaN or ∞ params | every number must be finite |
//! | [`RmsProp`] α > 1 | accepted; v goes negative, NaN | refused: α ∈ [0, 1] |
//! | [`Rprop`] `step_size_min > step_size_max`, or either < 0 | accepted | refused |
//! | centered [`RmsProp`], finite v − ḡ² < 0 by rounding | NaN | clamped to 0 (−∞, NaN stay NaN) |
//! | centered [`RmsProp`] with α = 0, torch's fused kernels | v − ḡ² is g²'s rounding error: NaN or a finite wrong variance | 0, as torch's scalar kernels |
//! | √ of a negative second moment (corrupt state only) | NaN | √ of its magnitude |
//! | fused multiply-add | AVX2/AVX-512 kernels fuse | never: the same bits on every target |
//! | whole powers βᵗ | C `pow` (0.52 ulp) | correctly rounded |
//! | non-integer powers | C `pow` (0.52 ulp) | correctly rounded |
//! | [`schedules::StepLr`], [`schedules::MultiStepLr`], [`schedules::ExponentialLr`] γ < 0 | accepted; the rate alternates sign | refused |
//! | [`schedules::MultiStepLr`] milestones out of order | accepted | refused |
//! | [`schedules::LinearLr`], [`schedules::PolynomialLr`], [`schedules::ConstantLr`] `total_iters = 0` | accepted | refused: ≥ 1 |
//! | ConstantLR factor 0, CosineAnnealingLR T_max 0, CyclicLR step_size_up 0, OneCycleLR pct_start·total_steps = 1 or div_factor 0 | `ZeroDivisionError`, possibly only at a later step | refused when the schedule starts |
//! | [`schedules::CyclicLr`] `exp_range` γ > 1 or ≤ 0 | accepted; γ > 1 grows the rate without bound | refused: γ ∈ (0, 1] |
//! | [`schedules::ReduceLrOnPlateau`] factor, threshold, min_lr or eps < 0 | accepted | refused |
//! | [`schedules::OneCycleLr`] at step `total_steps` | extrapolates (a negative rate, linear annealing) | holds the final values |

#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod accumulate;
mod arch;
pub mod checkpoint;
pub mod clip;
mod driver;
mod error;
pub mod guard;
#[cfg(target_arch = "x86_64")]
pub mod isa;
pub mod lanes;
pub mod lookahead;
pub mod loss_scale;
mod power;
mod real;
mod reduce;
pub mod rules;
pub mod schedules;
#[cfg(test)]
mod testing;

pub use accumulate::{Accumulator, Reduction};
pub use checkpoint::CheckpointError;
pub use clip::{ClipNorm, ClipScope, NormType, clip_grad_norm, clip_grad_value, total_norm};
pub use error::{Buffer, Error};
pub use guard::{
    ApplyIfFinite, IfFiniteScalars, NonFiniteCounts, Outcome, all_finite, all_finite_slices,
};
pub use lookahead::Lookahead;
pub use loss_scale::{GradScaler, ScalerState};
pub use real::Real;
pub use rules::adadelta::Adadelta;
pub use rules::adagrad::Adagrad;
pub use rules::adam::{Adam, AdamW};
pub use rules::adamax::Adamax;
pub use rules::adan::Adan;
pub use rules::asgd::{Asgd, AsgdScalars};
pub use rules::ftrl::Ftrl;
pub use rules::lamb::Lamb;
pub use rules::nadam::{NAdam, NAdamScalars};
pub use rules::online_rmsprop::OnlineRmsProp;
pub use rules::proximal::{AdaptKind, L1Kind, L2Kind, MomentumKind, Proximal, Representation};
pub use rules::radam::RAdam;
pub use rules::rmsprop::RmsProp;
pub use rules::rmsprop_bc::RmsPropBc;
pub use rules::rprop::Rprop;
pub use rules::sc_adagrad::ScAdagrad;
pub use rules::sc_rmsprop::ScRmsProp;
pub use rules::sgd::Sgd;
pub use rules::{MAX_STATE_SLOTS, Rule, STEP_CACHE_WORDS, StepCount};
