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
//! [`Rprop`], [`Asgd`].
//!
//! ## Around the rules
//! - [`schedules`]: every `torch.optim.lr_scheduler` (torch's chainable recursions
//!   reproduced, closed forms alongside), warmup + decay, noam, piecewise constant.
//! - [`clip`]: clip by value, by global p-norm (torch's `clip_grad_norm_`) or per slice
//!   (Keras' `clipnorm`), over many gradient slices at once.
//! - [`guard`]: skip a step whose gradients are not finite ([`ApplyIfFinite`]).
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
//! each step costs one multiply on cores without a double-precision unit. Square roots
//! of quantities that are non-negative by construction (second moments, sums of
//! squares) are taken of their magnitude ([`lanes::Lanes::sqrt_abs`]): identical for
//! every state the rules or torch produce, and on Cortex-M4F a bare `VSQRT`. No fused multiply-add is used, so results are identical on every
//! target. `f64` results agree with torch to 1e-12 relative; `f32` results to the bounds
//! in the crate's tolerance table (`tests/support/tolerance.rs`), which come from torch's
//! own use of fused multiply-add in its vectorized CPU kernels.

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
pub mod loss_scale;
mod power;
mod real;
mod reduce;
pub mod rules;
pub mod schedules;

pub use accumulate::{Accumulator, Reduction};
pub use checkpoint::CheckpointError;
pub use clip::{ClipNorm, ClipScope, NormType, clip_grad_norm, clip_grad_value, total_norm};
pub use error::{Buffer, Error};
pub use guard::{
    ApplyIfFinite, IfFiniteScalars, NonFiniteCounts, Outcome, all_finite, all_finite_slices,
};
pub use loss_scale::{GradScaler, ScalerState};
pub use real::Real;
pub use rules::adadelta::Adadelta;
pub use rules::adagrad::Adagrad;
pub use rules::adam::{Adam, AdamW};
pub use rules::adamax::Adamax;
pub use rules::asgd::{Asgd, AsgdScalars};
pub use rules::ftrl::Ftrl;
pub use rules::nadam::{NAdam, NAdamScalars};
pub use rules::proximal::{AdaptKind, L1Kind, L2Kind, MomentumKind, Proximal, Representation};
pub use rules::radam::RAdam;
pub use rules::rmsprop::RmsProp;
pub use rules::rprop::Rprop;
pub use rules::sgd::Sgd;
pub use rules::{MAX_STATE_SLOTS, Rule, STEP_CACHE_WORDS, StepCount};
