//! Rules from C as data: a [`gradstep_rule`] is a kind (a `GRADSTEP_RULE_*` constant,
//! equal to the registry's stable id) and a union of the typed hyperparameter structs
//! (`gradstep_sgd`, `gradstep_adam`, ...), one member per rule named as the rule. One
//! family of functions serves every rule:
//! - `gradstep_rule_default(kind, &rule)`: torch's defaults; the header's
//!   `gradstep_R_default()` (static inline, generated from the registry) return one
//!   member of it;
//! - `gradstep_rule_parse("adam:lr=1e-3,amsgrad", &rule)`: a rule by name, in the CLI's
//!   syntax;
//! - `gradstep_rule_name(kind)`;
//! - `gradstep_rule_state_len(&rule, n, &len)`: the state elements a step over `n`
//!   parameters needs (the rule's state slices, one after another);
//! - `gradstep_rule_step_f32` / `_f64`: one step over caller-owned params, grads and
//!   state, with the scalar state in a [`gradstep_scalars`].
//!
//! Flags are `uint8_t`: any non-zero value means true. Choice fields (a rule's
//! `momentum` kind, ...) are `uint32_t` indices with named constants
//! (`GRADSTEP_<RULE>_<FIELD>_<VALUE>`); a value out of range is `GRADSTEP_UNKNOWN_KIND`.
//! A zero-initialized
//! [`gradstep_scalars`] is fresh state: the first step initializes the state buffer
//! itself (its contents are ignored), as torch does lazily.
//!
//! The C-visible items are written out (cbindgen cannot see macro output); every
//! conversion between them and the kernel's [`AnyRule`] expands from
//! `gradstep::for_each_rule!`, so a registry row without its struct or union member
//! does not compile.

use core::ffi::c_char;

use gradstep::checkpoint::ElementType;
use gradstep::rules::{AnyRule, AnyScalars, RuleId, SpecError};
use gradstep::{AsgdScalars, NAdamScalars, Real, StepCount};

use crate::boundary::{Raw, Span, check, disjoint, guard, note, read};
use crate::status::{
    GRADSTEP_BAD_RULE_TEXT, GRADSTEP_INTERNAL_ERROR, GRADSTEP_LENGTH_TOO_LARGE,
    GRADSTEP_STATE_LAYOUT, GRADSTEP_UNKNOWN_KIND, gradstep_status,
};

/// The element types of buffers, for `gradstep_element` arguments.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum gradstep_element_type {
    /// `float`.
    GRADSTEP_F32 = 1,
    /// `double`.
    GRADSTEP_F64 = 2,
}

/// The element type of a buffer: a `gradstep_element_type` value (`GRADSTEP_F32` or
/// `GRADSTEP_F64`). Functions take any `uint32_t` here and refuse other values with
/// `GRADSTEP_UNKNOWN_KIND`.
pub type gradstep_element = u32;
/// `gradstep_element_type::GRADSTEP_F32` as a `gradstep_element`.
pub const GRADSTEP_F32: gradstep_element = gradstep_element_type::GRADSTEP_F32 as u32;
/// `gradstep_element_type::GRADSTEP_F64` as a `gradstep_element`.
pub const GRADSTEP_F64: gradstep_element = gradstep_element_type::GRADSTEP_F64 as u32;

/// The element type `element` names.
pub(crate) fn element_type(element: gradstep_element) -> Result<ElementType, gradstep_status> {
    match element {
        GRADSTEP_F32 => Ok(ElementType::F32),
        GRADSTEP_F64 => Ok(ElementType::F64),
        _ => Err(GRADSTEP_UNKNOWN_KIND),
    }
}

/// Which rule a [`gradstep_rule`] holds: a `GRADSTEP_RULE_*` constant, the rule's stable
/// id in gradstep's registry (also the `rule` of a checkpoint). Ids are never reused.
/// Functions take any `uint32_t` here and refuse unknown values with
/// `GRADSTEP_UNKNOWN_KIND`.
pub type gradstep_rule_kind = u32;
/// SGD: the `sgd` member.
pub const GRADSTEP_RULE_SGD: gradstep_rule_kind = 1;
/// Adam: the `adam` member.
pub const GRADSTEP_RULE_ADAM: gradstep_rule_kind = 2;
/// AdamW: the `adamw` member.
pub const GRADSTEP_RULE_ADAMW: gradstep_rule_kind = 3;
/// Adamax: the `adamax` member.
pub const GRADSTEP_RULE_ADAMAX: gradstep_rule_kind = 4;
/// NAdam: the `nadam` member.
pub const GRADSTEP_RULE_NADAM: gradstep_rule_kind = 5;
/// RAdam: the `radam` member.
pub const GRADSTEP_RULE_RADAM: gradstep_rule_kind = 6;
/// Adagrad: the `adagrad` member.
pub const GRADSTEP_RULE_ADAGRAD: gradstep_rule_kind = 7;
/// Adadelta: the `adadelta` member.
pub const GRADSTEP_RULE_ADADELTA: gradstep_rule_kind = 8;
/// RMSprop: the `rmsprop` member.
pub const GRADSTEP_RULE_RMSPROP: gradstep_rule_kind = 9;
/// Rprop: the `rprop` member.
pub const GRADSTEP_RULE_RPROP: gradstep_rule_kind = 10;
/// ASGD: the `asgd` member.
pub const GRADSTEP_RULE_ASGD: gradstep_rule_kind = 11;
/// The generic proximal method (gradstep's own): the `proximal` member.
pub const GRADSTEP_RULE_PROXIMAL: gradstep_rule_kind = 12;
/// FTRL-Proximal (Keras `Ftrl`): the `ftrl` member.
pub const GRADSTEP_RULE_FTRL: gradstep_rule_kind = 13;
/// Adan: the `adan` member.
pub const GRADSTEP_RULE_ADAN: gradstep_rule_kind = 14;
/// LAMB: the `lamb` member.
pub const GRADSTEP_RULE_LAMB: gradstep_rule_kind = 15;
/// RMSprop with bias correction: the `rmsprop_bc` member.
pub const GRADSTEP_RULE_RMSPROP_BC: gradstep_rule_kind = 16;
/// Online RMSprop: the `online_rmsprop` member.
pub const GRADSTEP_RULE_ONLINE_RMSPROP: gradstep_rule_kind = 17;
/// SC-Adagrad: the `sc_adagrad` member.
pub const GRADSTEP_RULE_SC_ADAGRAD: gradstep_rule_kind = 18;
/// SC-RMSprop: the `sc_rmsprop` member.
pub const GRADSTEP_RULE_SC_RMSPROP: gradstep_rule_kind = 19;
/// One past the largest kind: every rule's kind is in `1 .. GRADSTEP_RULE_KIND_END`
/// (a kind whose `gradstep_rule_name` is NULL is not, or no longer, a rule).
pub const GRADSTEP_RULE_KIND_END: gradstep_rule_kind = 20;

/// `gradstep_proximal.momentum`: none.
pub const GRADSTEP_PROXIMAL_MOMENTUM_NONE: u32 = 0;
/// `gradstep_proximal.momentum`: torch SGD's heavy ball.
pub const GRADSTEP_PROXIMAL_MOMENTUM_HEAVY_BALL: u32 = 1;
/// `gradstep_proximal.momentum`: torch SGD's Nesterov form.
pub const GRADSTEP_PROXIMAL_MOMENTUM_NESTEROV: u32 = 2;
/// `gradstep_proximal.momentum`: the moving average (Adam's first moment).
pub const GRADSTEP_PROXIMAL_MOMENTUM_EMA: u32 = 3;
/// `gradstep_proximal.adapt`: none.
pub const GRADSTEP_PROXIMAL_ADAPT_NONE: u32 = 0;
/// `gradstep_proximal.adapt`: AdaGrad.
pub const GRADSTEP_PROXIMAL_ADAPT_ADAGRAD: u32 = 1;
/// `gradstep_proximal.adapt`: RMSprop.
pub const GRADSTEP_PROXIMAL_ADAPT_RMSPROP: u32 = 2;
/// `gradstep_proximal.adapt`: online RMSprop (βₜ = 1 − γ/t).
pub const GRADSTEP_PROXIMAL_ADAPT_ONLINE_RMSPROP: u32 = 3;
/// `gradstep_proximal.adapt`: Adam's bias-corrected second moment.
pub const GRADSTEP_PROXIMAL_ADAPT_ADAM: u32 = 4;
/// `gradstep_proximal.adapt`: AMSGrad, maximum of the raw v, then correction (torch).
pub const GRADSTEP_PROXIMAL_ADAPT_AMSGRAD_POST: u32 = 5;
/// `gradstep_proximal.adapt`: AMSGrad, maximum of the corrected v (optax).
pub const GRADSTEP_PROXIMAL_ADAPT_AMSGRAD_PRE: u32 = 6;
/// `gradstep_proximal.adapt`: AMSGrad without bias correction (Reddi et al.).
pub const GRADSTEP_PROXIMAL_ADAPT_AMSGRAD_RAW: u32 = 7;
/// `gradstep_proximal.adapt`: AMSGrad kept in v itself (no extra buffer).
pub const GRADSTEP_PROXIMAL_ADAPT_AMSGRAD_INPLACE: u32 = 8;
/// `gradstep_proximal.l2_kind`: on the gradient.
pub const GRADSTEP_PROXIMAL_L2_KIND_CLASSIC: u32 = 0;
/// `gradstep_proximal.l2_kind`: decoupled (AdamW).
pub const GRADSTEP_PROXIMAL_L2_KIND_DECOUPLED: u32 = 1;
/// `gradstep_proximal.l2_kind`: inside the proximal step.
pub const GRADSTEP_PROXIMAL_L2_KIND_PROXIMAL: u32 = 2;
/// `gradstep_proximal.l1_kind`: incremental.
pub const GRADSTEP_PROXIMAL_L1_KIND_INCREMENTAL: u32 = 0;
/// `gradstep_proximal.l1_kind`: fixed (lazy only).
pub const GRADSTEP_PROXIMAL_L1_KIND_FIXED: u32 = 1;
/// `gradstep_proximal.representation`: greedy proximal gradient descent.
pub const GRADSTEP_PROXIMAL_REPRESENTATION_GREEDY: u32 = 0;
/// `gradstep_proximal.representation`: lazy FTRL (z accumulator).
pub const GRADSTEP_PROXIMAL_REPRESENTATION_LAZY: u32 = 1;

/// The longest rule text [`gradstep_rule_parse`] reads, without its NUL.
pub const GRADSTEP_RULE_TEXT_MAX: usize = 4096;

/// The scalar state of any rule: the step count, plus NAdam's μ-product and ASGD's η
/// and μ (unused fields are ignored and left as they are). All zeros = fresh.
///
/// `cache` holds the bias-correction powers β₁ᵗ and β₂ᵗ of Adam, AdamW, Adamax, RAdam
/// and Adan between steps, so that each step advances them with one multiply instead of
/// computing them afresh (which matters without a double-precision FPU: on a
/// Cortex-M4F about 2 900 instructions per power at t = 10⁶). Adan's third, β₃ᵗ, is
/// computed afresh each call (the owning optimizer's handle keeps it). It never changes a
/// result: zeros (a fresh or restored state) or anything not written by gradstep is
/// detected and recomputed. Keep the struct from step to step and leave it alone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct gradstep_scalars {
    /// Steps taken; 0 means fresh state.
    pub step: u64,
    /// NAdam: the product of the momentum coefficients so far.
    pub mu_product: f64,
    /// ASGD: the current step size η.
    pub eta: f64,
    /// ASGD: the current averaging coefficient μ.
    pub mu: f64,
    /// Cached powers (see above); zeros are fine.
    pub cache: [u64; 14],
}

const _: () = assert!(gradstep::STEP_CACHE_WORDS == 14);

/// The scalar state of `rule`'s kind, read from `c`.
pub(crate) fn scalars_from_c(rule: &AnyRule, c: &gradstep_scalars) -> AnyScalars {
    match rule.fresh_scalars() {
        AnyScalars::Step(_) => StepCount::with_cache(c.step, &c.cache).into(),
        AnyScalars::NAdam(_) => NAdamScalars::new(c.step, c.mu_product).into(),
        AnyScalars::Asgd(_) => AsgdScalars {
            step: c.step,
            eta: c.eta,
            mu: c.mu,
        }
        .into(),
    }
}

/// Writes `s` into the fields of `c` its kind uses; the others keep their values.
pub(crate) fn scalars_to_c(s: &AnyScalars, c: &mut gradstep_scalars) {
    match s {
        AnyScalars::Step(s) => (c.step, c.cache) = (s.step, s.cache()),
        AnyScalars::NAdam(s) => (c.step, c.mu_product) = (s.step, s.mu_product),
        AnyScalars::Asgd(s) => (c.step, c.eta, c.mu) = (s.step, s.eta, s.mu),
    }
}

/// SGD (torch `SGD`): momentum, dampening, Nesterov, weight decay.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_sgd {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Momentum factor (0).
    pub momentum: f64,
    /// Dampening for momentum (0).
    pub dampening: f64,
    /// L2 penalty (0).
    pub weight_decay: f64,
    /// Nesterov momentum (0).
    pub nesterov: u8,
    /// Maximize instead of minimize (0).
    pub maximize: u8,
}

/// Adam (torch `Adam`), with AMSGrad and optional decoupled weight decay.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_adam {
    /// Learning rate (1e-3).
    pub lr: f64,
    /// β₁ (0.9).
    pub beta1: f64,
    /// β₂ (0.999).
    pub beta2: f64,
    /// ε (1e-8).
    pub eps: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Decoupled (AdamW-style) weight decay (0).
    pub decoupled_weight_decay: u8,
    /// AMSGrad (0).
    pub amsgrad: u8,
    /// Maximize (0).
    pub maximize: u8,
}

/// AdamW (torch `AdamW`): Adam with decoupled weight decay (default 1e-2).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_adamw {
    /// Learning rate (1e-3).
    pub lr: f64,
    /// β₁ (0.9).
    pub beta1: f64,
    /// β₂ (0.999).
    pub beta2: f64,
    /// ε (1e-8).
    pub eps: f64,
    /// Decoupled weight decay (1e-2).
    pub weight_decay: f64,
    /// AMSGrad (0).
    pub amsgrad: u8,
    /// Maximize (0).
    pub maximize: u8,
}

/// Adamax (torch `Adamax`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_adamax {
    /// Learning rate (2e-3).
    pub lr: f64,
    /// β₁ (0.9).
    pub beta1: f64,
    /// β₂ (0.999).
    pub beta2: f64,
    /// ε (1e-8).
    pub eps: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Maximize (0).
    pub maximize: u8,
}

/// NAdam (torch `NAdam`); its scalar state uses `mu_product`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_nadam {
    /// Learning rate (2e-3).
    pub lr: f64,
    /// β₁ (0.9).
    pub beta1: f64,
    /// β₂ (0.999).
    pub beta2: f64,
    /// ε (1e-8).
    pub eps: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Momentum decay ψ (4e-3).
    pub momentum_decay: f64,
    /// Decoupled weight decay (0).
    pub decoupled_weight_decay: u8,
    /// Maximize (0).
    pub maximize: u8,
}

/// RAdam (torch `RAdam`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_radam {
    /// Learning rate (1e-3).
    pub lr: f64,
    /// β₁ (0.9).
    pub beta1: f64,
    /// β₂ (0.999).
    pub beta2: f64,
    /// ε (1e-8).
    pub eps: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Decoupled weight decay (0).
    pub decoupled_weight_decay: u8,
    /// Maximize (0).
    pub maximize: u8,
}

/// Adagrad (torch `Adagrad`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_adagrad {
    /// Learning rate (1e-2).
    pub lr: f64,
    /// Learning-rate decay (0).
    pub lr_decay: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Initial accumulator value (0).
    pub initial_accumulator_value: f64,
    /// ε (1e-10).
    pub eps: f64,
    /// Maximize (0).
    pub maximize: u8,
}

/// Adadelta (torch `Adadelta`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_adadelta {
    /// Learning rate (1.0).
    pub lr: f64,
    /// ρ (0.9).
    pub rho: f64,
    /// ε (1e-6).
    pub eps: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Maximize (0).
    pub maximize: u8,
}

/// RMSprop (torch `RMSprop`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_rmsprop {
    /// Learning rate (1e-2).
    pub lr: f64,
    /// α (0.99).
    pub alpha: f64,
    /// ε (1e-8).
    pub eps: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Momentum (0).
    pub momentum: f64,
    /// Centered (0).
    pub centered: u8,
    /// Maximize (0).
    pub maximize: u8,
}

/// Rprop (torch `Rprop`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_rprop {
    /// Learning rate: the initial step size (1e-2).
    pub lr: f64,
    /// η− (0.5).
    pub etaminus: f64,
    /// η+ (1.2).
    pub etaplus: f64,
    /// Minimum step size (1e-6).
    pub step_size_min: f64,
    /// Maximum step size (50).
    pub step_size_max: f64,
    /// Maximize (0).
    pub maximize: u8,
}

/// ASGD (torch `ASGD`); its scalar state uses `eta` and `mu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_asgd {
    /// Learning rate (1e-2).
    pub lr: f64,
    /// λ, the decay term (1e-4).
    pub lambd: f64,
    /// α, the power for η's update (0.75).
    pub alpha: f64,
    /// t₀, the step at which averaging starts (1e6).
    pub t0: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Maximize (0).
    pub maximize: u8,
}

/// RMSprop with bias correction (optax `rmsprop(bias_correction=True,
/// eps_in_sqrt=False)`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_rmsprop_bc {
    /// Learning rate (1e-2).
    pub lr: f64,
    /// α, the decay of the average of g² (0.99).
    pub alpha: f64,
    /// ε (1e-8).
    pub eps: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Maximize (0).
    pub maximize: u8,
}

/// Online RMSprop (Mukkamala & Hein 2017, Algorithm 1 with βₜ = 1 − γ/t).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_online_rmsprop {
    /// Learning rate α (1e-2).
    pub lr: f64,
    /// γ in βₜ = 1 − γ/t, in (0, 1] (0.9).
    pub gamma: f64,
    /// δ, added to √(t·v) (1e-8).
    pub eps: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Maximize (0).
    pub maximize: u8,
}

/// SC-Adagrad (Mukkamala & Hein 2017, Algorithm 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_sc_adagrad {
    /// Learning rate α (1e-2).
    pub lr: f64,
    /// ξ₁, the damping's decay rate (0.1).
    pub xi_1: f64,
    /// ξ₂, the damping at v = 0 (0.1).
    pub xi_2: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Maximize (0).
    pub maximize: u8,
}

/// SC-RMSprop (Mukkamala & Hein 2017, the SC-RMSProp algorithm).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_sc_rmsprop {
    /// Learning rate α (1e-2).
    pub lr: f64,
    /// γ in βₜ = 1 − γ/t, in (0, 1] (0.9).
    pub gamma: f64,
    /// ξ₁, the damping's decay rate (0.1).
    pub xi_1: f64,
    /// ξ₂, the damping at v = 0 (0.1).
    pub xi_2: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Maximize (0).
    pub maximize: u8,
}

/// Adan (`pytorch_optimizer.Adan`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_adan {
    /// Learning rate (1e-3).
    pub lr: f64,
    /// β₁, decay of the gradient's average (0.98).
    pub beta1: f64,
    /// β₂, decay of the gradient difference's average (0.92).
    pub beta2: f64,
    /// β₃, decay of the second moment (0.99).
    pub beta3: f64,
    /// ε (1e-8).
    pub eps: f64,
    /// Weight decay (0).
    pub weight_decay: f64,
    /// Decoupled weight decay (0: proximal, θ divided by 1 + lr·weight_decay).
    pub decoupled_weight_decay: u8,
    /// Maximize (0).
    pub maximize: u8,
}

/// LAMB (`optax.lamb`); one step over one tensor: the trust ratio is per call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_lamb {
    /// Learning rate (1e-3).
    pub lr: f64,
    /// β₁ (0.9).
    pub beta1: f64,
    /// β₂ (0.999).
    pub beta2: f64,
    /// ε (1e-6).
    pub eps: f64,
    /// Weight decay, added to the update before the trust ratio (0).
    pub weight_decay: f64,
    /// Maximize (0).
    pub maximize: u8,
    /// Decay θ by 1 − lr·weight_decay before the step instead of adding it to the
    /// update (0; Keras, pytorch_optimizer).
    pub decoupled_weight_decay: u8,
    /// No bias correction of v; m's as 1/(1 − β₁ᵗ) on the step (0; pytorch_optimizer).
    pub no_v_correction: u8,
    /// Clamp ‖θ‖ to at most 10 in the trust ratio (0; pytorch_optimizer).
    pub clamp_norm: u8,
    /// Add ε to ‖u‖ in the trust ratio (0; pytorch_optimizer).
    pub eps_in_ratio: u8,
}

/// The generic proximal method (gradstep's `Proximal`): choices are `uint32_t`
/// `GRADSTEP_PROXIMAL_<FIELD>_<VALUE>` constants.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_proximal {
    /// Learning rate (1e-3).
    pub lr: f64,
    /// μ of heavy ball / Nesterov, β₁ of the moving average (0.9).
    pub beta1: f64,
    /// Dampening of the heavy ball (0).
    pub dampening: f64,
    /// β₂ of the second moment (0.999).
    pub beta2: f64,
    /// γ of online RMSprop (1).
    pub gamma: f64,
    /// ε (1e-8).
    pub eps: f64,
    /// AdaGrad's initial accumulator (0).
    pub initial_accumulator_value: f64,
    /// L1 strength (0).
    pub l1: f64,
    /// L2 strength (0).
    pub l2: f64,
    /// Momentum (`GRADSTEP_PROXIMAL_MOMENTUM_NONE`).
    pub momentum: u32,
    /// Adaptive rate (`GRADSTEP_PROXIMAL_ADAPT_NONE`).
    pub adapt: u32,
    /// How L2 applies (`GRADSTEP_PROXIMAL_L2_KIND_CLASSIC`).
    pub l2_kind: u32,
    /// How L1 accumulates (`GRADSTEP_PROXIMAL_L1_KIND_INCREMENTAL`).
    pub l1_kind: u32,
    /// Greedy or lazy (`GRADSTEP_PROXIMAL_REPRESENTATION_GREEDY`).
    pub representation: u32,
    /// Maximize (0).
    pub maximize: u8,
}

/// FTRL-Proximal (Keras `Ftrl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct gradstep_ftrl {
    /// Learning rate (1e-3).
    pub lr: f64,
    /// Learning-rate power: 0, -0.5 or -1 (-0.5).
    pub lr_power: f64,
    /// Initial accumulator (0.1).
    pub initial_accumulator_value: f64,
    /// L1 strength (0).
    pub l1: f64,
    /// L2 strength, Keras's (0).
    pub l2: f64,
    /// Shrinkage-type L2 strength (0).
    pub l2_shrinkage: f64,
    /// β (0).
    pub beta: f64,
    /// pytorch_optimizer's denominator, λ₂ instead of 2λ₂ (0).
    pub single_l2: u8,
    /// pytorch_optimizer's denominator, √n whatever the power (0).
    pub sqrt_denominator: u8,
    /// Maximize (0).
    pub maximize: u8,
}

/// The hyperparameters of a [`gradstep_rule`]: the member its `kind` names.
#[repr(C)]
#[derive(Clone, Copy)]
pub union gradstep_rule_params {
    /// [`GRADSTEP_RULE_SGD`].
    pub sgd: gradstep_sgd,
    /// [`GRADSTEP_RULE_ADAM`].
    pub adam: gradstep_adam,
    /// [`GRADSTEP_RULE_ADAMW`].
    pub adamw: gradstep_adamw,
    /// [`GRADSTEP_RULE_ADAMAX`].
    pub adamax: gradstep_adamax,
    /// [`GRADSTEP_RULE_NADAM`].
    pub nadam: gradstep_nadam,
    /// [`GRADSTEP_RULE_RADAM`].
    pub radam: gradstep_radam,
    /// [`GRADSTEP_RULE_ADAGRAD`].
    pub adagrad: gradstep_adagrad,
    /// [`GRADSTEP_RULE_ADADELTA`].
    pub adadelta: gradstep_adadelta,
    /// [`GRADSTEP_RULE_RMSPROP`].
    pub rmsprop: gradstep_rmsprop,
    /// [`GRADSTEP_RULE_RPROP`].
    pub rprop: gradstep_rprop,
    /// [`GRADSTEP_RULE_ASGD`].
    pub asgd: gradstep_asgd,
    /// [`GRADSTEP_RULE_PROXIMAL`].
    pub proximal: gradstep_proximal,
    /// [`GRADSTEP_RULE_FTRL`].
    pub ftrl: gradstep_ftrl,
    /// [`GRADSTEP_RULE_ADAN`].
    pub adan: gradstep_adan,
    /// [`GRADSTEP_RULE_LAMB`].
    pub lamb: gradstep_lamb,
    /// [`GRADSTEP_RULE_RMSPROP_BC`].
    pub rmsprop_bc: gradstep_rmsprop_bc,
    /// [`GRADSTEP_RULE_ONLINE_RMSPROP`].
    pub online_rmsprop: gradstep_online_rmsprop,
    /// [`GRADSTEP_RULE_SC_ADAGRAD`].
    pub sc_adagrad: gradstep_sc_adagrad,
    /// [`GRADSTEP_RULE_SC_RMSPROP`].
    pub sc_rmsprop: gradstep_sc_rmsprop,
}

/// A rule and its hyperparameters: `kind` says which member of `params` holds them
/// (`rule.kind = GRADSTEP_RULE_ADAM; rule.params.adam.lr = 1e-3;`). Fill one with
/// [`gradstep_rule_default`] or [`gradstep_rule_parse`], then change fields.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct gradstep_rule {
    /// Which rule (a `GRADSTEP_RULE_*` constant).
    pub kind: gradstep_rule_kind,
    /// Its hyperparameters, in the member `kind` names.
    pub params: gradstep_rule_params,
}

/// The conversions between C's [`gradstep_rule`] and the kernel's [`AnyRule`], and
/// the rule names, from the registry rows.
macro_rules! c_rules {
    ($({
        id: $id:literal, rule: $rule:ident, name: $name:ident, reference: $reference:literal,
        scalars: $scalars:ident, momentum: [$($momentum:ident)?],
        f64: [$($f:ident),*], bool: [$($b:ident),*],
        choice: [$($c:ident: $ct:ident),*] $(,)?
    }),* $(,)?) => {
        /// The rule `c` describes (not yet validated). Unknown kinds are refused.
        /// Inlined: returned through memory, the rule cost the step functions a few
        /// nanoseconds per call (frontend-ffi/benches/percall.rs).
        #[inline(always)]
        pub(crate) fn to_any(c: &gradstep_rule) -> Result<AnyRule, gradstep_status> {
            match c.kind {
                $($id => {
                    // SAFETY: `kind` names the member the caller filled; its fields are
                    // `double`s, `uint32_t`s and `uint8_t`s, for which every bit pattern
                    // is a value.
                    let h = unsafe { c.params.$name };
                    Ok(AnyRule::$rule(gradstep::$rule {
                        $($f: h.$f,)*
                        $($b: h.$b != 0,)*
                        $($c: <gradstep::$ct as gradstep::rules::Choice>::from_index(h.$c)
                            .ok_or(GRADSTEP_UNKNOWN_KIND)?,)*
                    }))
                })*
                _ => Err(GRADSTEP_UNKNOWN_KIND),
            }
        }

        /// The C form of `rule` (flags as 0 or 1).
        pub(crate) fn from_any(rule: &AnyRule) -> Result<gradstep_rule, gradstep_status> {
            // SAFETY: every member is `double`s, `uint32_t`s and `uint8_t`s: all zeros
            // is a value.
            let mut params: gradstep_rule_params = unsafe { core::mem::zeroed() };
            let kind = match *rule {
                $(AnyRule::$rule(r) => {
                    // Writes to the member that `kind` will name.
                    $(params.$name.$f = r.$f;)*
                    $(params.$name.$b = u8::from(r.$b);)*
                    $(params.$name.$c = gradstep::rules::Choice::index(r.$c);)*
                    $id
                })*
                // `AnyRule` is non-exhaustive outside its crate; every registry row has
                // its arm above, so this one is never taken.
                _ => return Err(GRADSTEP_INTERNAL_ERROR),
            };
            Ok(gradstep_rule { kind, params })
        }

        /// The rule's name as a static NUL-terminated string, or NULL.
        fn name_of(kind: gradstep_rule_kind) -> *const c_char {
            match kind {
                $($id => concat!(stringify!($name), "\0").as_ptr().cast(),)*
                _ => core::ptr::null(),
            }
        }

        #[cfg(test)]
        mod registry_rows {
            use super::*;

            /// Each member's size is exactly its row's fields (8 bytes per number, 4 per
            /// choice, 1 per flag, padded to 8): a C struct with a field the registry
            /// lacks fails.
            #[test]
            fn members_hold_exactly_the_registry_fields() {
                $({
                    let rule = from_any(&RuleId::from_u16($id).unwrap().default_rule()).unwrap();
                    // SAFETY: `from_any` filled this member.
                    let member = unsafe { rule.params.$name };
                    let numbers = [$(stringify!($f)),*].len();
                    let flags = [$(stringify!($b)),*].len();
                    let choices = <[&str]>::len(&[$(stringify!($c)),*]);
                    assert_eq!(
                        core::mem::size_of_val(&member),
                        (numbers * 8 + choices * 4 + flags).next_multiple_of(8),
                        stringify!($name)
                    );
                    assert_eq!(rule.kind, $id);
                })*
            }
        }
    };
}

gradstep::for_each_rule!(c_rules);

/// Writes torch's defaults for rule `kind` to `*out`. Unknown kinds give
/// `GRADSTEP_UNKNOWN_KIND` and write nothing.
///
/// # Safety
/// `out` must be NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rule_default(
    kind: gradstep_rule_kind,
    out: *mut gradstep_rule,
) -> gradstep_status {
    guard(|| {
        check(out.cast_const())?;
        let id = u16::try_from(kind)
            .ok()
            .and_then(RuleId::from_u16)
            .ok_or(GRADSTEP_UNKNOWN_KIND)?;
        let rule = from_any(&id.default_rule())?;
        // SAFETY: non-NULL and aligned (checked); writable per the caller's contract.
        unsafe { out.write(rule) };
        Ok(())
    })
}

/// The rule's name (`"adam"`, `"sgd"`, ...: the names `gradstep_rule_parse` reads) as a
/// static NUL-terminated string, or NULL if `kind` is not a rule.
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_rule_name(kind: gradstep_rule_kind) -> *const c_char {
    name_of(kind)
}

/// A rule spec from C: NUL-terminated text of at most [`GRADSTEP_RULE_TEXT_MAX`] bytes
/// (no byte beyond the bound is read), UTF-8. `GRADSTEP_NULL_POINTER`,
/// `GRADSTEP_LENGTH_TOO_LARGE` or `GRADSTEP_BAD_RULE_TEXT` otherwise.
///
/// # Safety
/// `text` NULL, or readable up to its NUL or `GRADSTEP_RULE_TEXT_MAX + 1` bytes, and
/// unchanged for `'a`.
pub(crate) unsafe fn spec_text<'a>(text: *const c_char) -> Result<&'a str, gradstep_status> {
    let text = text.cast::<u8>();
    check(text)?;
    // SAFETY: non-NULL; readable up to the bound (caller's contract).
    let len =
        unsafe { bounded_strlen(text, GRADSTEP_RULE_TEXT_MAX) }.ok_or(GRADSTEP_LENGTH_TOO_LARGE)?;
    // SAFETY: non-NULL, `len` bytes before the NUL are readable, bounded by the
    // constant; only read.
    let bytes = unsafe { Raw::new(text, len)?.slice() };
    core::str::from_utf8(bytes).map_err(|_| GRADSTEP_BAD_RULE_TEXT)
}

/// The bytes of a text [`spec_text`] read, its NUL included: nothing the call writes
/// may overlap them.
pub(crate) fn text_span(spec: &str) -> Span {
    Span::of(spec.as_ptr(), spec.len() + 1)
}

/// The length of the NUL-terminated `text`, reading at most `max + 1` bytes.
///
/// # Safety
/// `text` must be non-NULL and readable up to its NUL or `max + 1` bytes.
unsafe fn bounded_strlen(text: *const u8, max: usize) -> Option<usize> {
    // SAFETY: each byte up to the NUL (or the bound) is readable (caller's contract);
    // no slice is built.
    (0..=max).find(|&i| unsafe { text.add(i).read() } == 0)
}

/// The status for a spec that does not parse, its message (the CLI's: `unknown field
/// "lx" for adam; its fields are lr, beta1, ...`) noted for `gradstep_last_error`.
fn spec_status(e: SpecError<'_>) -> gradstep_status {
    let status = match e {
        SpecError::UnknownRule { .. } => GRADSTEP_UNKNOWN_KIND,
        SpecError::Invalid { error, .. } => error.into(),
        _ => GRADSTEP_BAD_RULE_TEXT,
    };
    note(status, e)
}

/// Reads a rule from text in the CLI's syntax, `NAME[:FIELD=VALUE,...]`, e.g.
/// `"adam:lr=3e-4,amsgrad"` (a bare `FIELD` means `FIELD=true`; flags are `true` or
/// `false`; numbers in Rust's `f64` syntax, `1e-3`; torch's class names work too:
/// `"AdamW"`), starting from torch's defaults, and writes it to `*out`.
///
/// `text` is NUL-terminated and at most [`GRADSTEP_RULE_TEXT_MAX`] bytes long; no byte
/// beyond that bound is read. Refused: an unknown rule name (`GRADSTEP_UNKNOWN_KIND`),
/// an unknown field, a value of the wrong kind, a field given twice or text that is not
/// UTF-8 (`GRADSTEP_BAD_RULE_TEXT`), values the rule refuses
/// (`GRADSTEP_INVALID_HYPERPARAMETER`), longer text (`GRADSTEP_LENGTH_TOO_LARGE`).
///
/// # Safety
/// `text` NULL, or readable up to its NUL or `GRADSTEP_RULE_TEXT_MAX + 1` bytes; `out`
/// NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rule_parse(
    text: *const c_char,
    out: *mut gradstep_rule,
) -> gradstep_status {
    guard(|| {
        check(out.cast_const())?;
        // SAFETY: NULL, or readable up to its NUL or the bound (caller's contract).
        let spec = unsafe { spec_text(text) }?;
        disjoint(&[Span::one(out)], &[text_span(spec)])?;
        let rule = from_any(&AnyRule::parse(spec).map_err(spec_status)?)?;
        // SAFETY: non-NULL and aligned (checked); writable. `spec` is no longer used.
        unsafe { out.write(rule) };
        Ok(())
    })
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with this
/// rule (its state slices, one after another). Fails on NULL pointers, unknown kinds,
/// invalid hyperparameters, and a length that overflows (`GRADSTEP_LENGTH_TOO_LARGE`).
///
/// # Safety
/// `rule` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rule_state_len(
    rule: *const gradstep_rule,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; `read` rejects NULL and misalignment.
        let rule_span = Span::one(rule);
        let rule = to_any(&unsafe { read(rule)? })?;
        check(out_len.cast_const())?;
        disjoint(&[Span::one(out_len)], &[rule_span])?;
        rule.validate()?;
        let len = rule
            .state_slots()
            .checked_mul(n)
            .ok_or(GRADSTEP_LENGTH_TOO_LARGE)?;
        // SAFETY: non-NULL and aligned (checked); writable per the caller's contract.
        unsafe { out_len.write(len) };
        Ok(())
    })
}

/// The body of the step functions: checks, converts, steps, writes back. `scratch`:
/// the scratch functions' buffer and length.
///
/// # Safety
/// The pointers must be NULL or valid as documented on the exported functions.
#[allow(clippy::too_many_arguments)] // the exported functions' own, and the scratch.
unsafe fn step<T: Real>(
    rule: *const gradstep_rule,
    scalars: *mut gradstep_scalars,
    params: *mut T,
    grads: *const T,
    n: usize,
    state: *mut T,
    state_len: usize,
    scratch: Option<(*mut T, usize)>,
) -> gradstep_status {
    guard(|| {
        // Read in place rather than copied (the rule's union and the scalars' 144
        // bytes, in and out, cost a small step a measurable part of its time:
        // frontend-ffi/benches/percall.rs). The rule is converted before any slice
        // exists; the scalars are reached only after they are known disjoint from the
        // buffers. Nothing written may overlap the rule (the caller's struct would
        // change under it).
        check(rule)?;
        let rule_span = Span::one(rule);
        // SAFETY: non-NULL and aligned (checked), readable per the caller's contract;
        // the reference ends with `to_any`, before any slice of a buffer exists.
        let rule = to_any(unsafe { &*rule })?;
        check(scalars.cast_const())?;
        let (p, g, s) = (
            Raw::new_mut(params, n)?,
            Raw::new(grads, n)?,
            Raw::new_mut(state, state_len)?,
        );
        let u = scratch
            .map(|(ptr, len)| Raw::new_mut(ptr, len))
            .transpose()?;
        let read = [g.span(), rule_span];
        match u {
            Some(u) => disjoint(&[p.span(), s.span(), Span::one(scalars), u.span()], &read)?,
            None => disjoint(&[p.span(), s.span(), Span::one(scalars)], &read)?,
        }
        // SAFETY: non-NULL and aligned (checked), valid per the caller's contract, and
        // disjoint from every buffer (checked): no slice below aliases it.
        let c = unsafe { &mut *scalars };
        let mut any = scalars_from_c(&rule, c);
        {
            // SAFETY: checked non-NULL, aligned, bounded and pairwise disjoint above;
            // valid for their lengths per the caller's contract.
            let (p, g, s) = unsafe { (p.slice_mut(), g.slice(), s.slice_mut()) };
            let result = match u {
                // SAFETY: as for the other buffers.
                Some(u) => rule.step_flat_scratch(&mut any, p, g, s, unsafe { u.slice_mut() }),
                None => rule.step_flat(&mut any, p, g, s),
            };
            result.map_err(|e| match e {
                // The kernel knows the total; the C caller also wants its factors.
                gradstep::Error::FlatStateLength { expected, found } => note(
                    GRADSTEP_STATE_LAYOUT,
                    format_args!(
                        "state length {found}, expected {expected} ({} slots \u{d7} {n})",
                        rule.state_slots()
                    ),
                ),
                e => e.into(),
            })?;
        }
        scalars_to_c(&any, c);
        Ok(())
    })
}

/// One step of `rule` over `n` `float` parameters: `params` (updated), `grads` (read),
/// `state` (`gradstep_rule_state_len` elements, updated) and the scalar state.
/// Refused, with nothing written: NULL pointers (even with `n` 0), misaligned
/// pointers, lengths beyond `PTRDIFF_MAX` bytes, overlapping buffers, a state length
/// other than the rule needs, invalid hyperparameters, unknown kinds.
///
/// Placement, for speed only (the results are the same wherever the buffers are): on
/// x86 a buffer that starts up to about 1 KiB *before* another, counted modulo 4 KiB,
/// can make the step several times slower (4K aliasing: at 1K params, SGD with
/// momentum 7.9× with its buffer 64 bytes past the params, Adam 3.7× with its state
/// 64 bytes before them, on a Zen 4). Buffers at the same offset within a page, as
/// page-aligned allocations are, are safe; the optimizer handle places its own state.
/// `gradstep_buffer_new_f32` allocates buffers so (and on huge pages from 2 MiB): f32
/// Adam over them ran 1.05–1.48× as fast as over `malloc`'s memory from 1K to 16M.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `rule`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rule_step_f32(
    rule: *const gradstep_rule,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step(rule, scalars, params, grads, n, state, state_len, None) }
}

/// As [`gradstep_rule_step_f32`], over `double`s.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rule_step_f64(
    rule: *const gradstep_rule,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step(rule, scalars, params, grads, n, state, state_len, None) }
}

/// As [`gradstep_rule_step_f32`], with `scratch`, `scratch_len` (= `n`) `float`s of
/// scratch memory, in which a layer-wise rule (LAMB) keeps each element's update
/// between the two passes of its step instead of computing it twice: the same bits as
/// `gradstep_rule_step_f32`, one square root and one division per element instead of
/// two of each (f32 LAMB ×1.17–1.30 from 1K to 256K elements on a Zen 4; from main
/// memory, past a few MiB, the scratch's traffic costs more than it saves). What the
/// scratch holds before and after does not matter; other rules leave it as it is.
/// Refused as `gradstep_rule_step_f32` is, and for a NULL or misaligned `scratch`, a
/// `scratch_len` other than `n` (`GRADSTEP_LENGTH_MISMATCH`), or a scratch that overlaps
/// another buffer.
///
/// # Safety
/// As for [`gradstep_rule_step_f32`]; `scratch` must be NULL or valid for
/// `scratch_len` elements.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rule_step_scratch_f32(
    rule: *const gradstep_rule,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
    scratch: *mut f32,
    scratch_len: usize,
) -> gradstep_status {
    let scratch = Some((scratch, scratch_len));
    // SAFETY: the caller's contract, forwarded.
    unsafe { step(rule, scalars, params, grads, n, state, state_len, scratch) }
}

/// As [`gradstep_rule_step_scratch_f32`], over `double`s.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rule_step_scratch_f64(
    rule: *const gradstep_rule,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
    scratch: *mut f64,
    scratch_len: usize,
) -> gradstep_status {
    let scratch = Some((scratch, scratch_len));
    // SAFETY: the caller's contract, forwarded.
    unsafe { step(rule, scalars, params, grads, n, state, state_len, scratch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_constants_are_the_registry_ids() {
        let constants = [
            (GRADSTEP_RULE_SGD, RuleId::Sgd),
            (GRADSTEP_RULE_ADAM, RuleId::Adam),
            (GRADSTEP_RULE_ADAMW, RuleId::AdamW),
            (GRADSTEP_RULE_ADAMAX, RuleId::Adamax),
            (GRADSTEP_RULE_NADAM, RuleId::NAdam),
            (GRADSTEP_RULE_RADAM, RuleId::RAdam),
            (GRADSTEP_RULE_ADAGRAD, RuleId::Adagrad),
            (GRADSTEP_RULE_ADADELTA, RuleId::Adadelta),
            (GRADSTEP_RULE_RMSPROP, RuleId::RmsProp),
            (GRADSTEP_RULE_RPROP, RuleId::Rprop),
            (GRADSTEP_RULE_ASGD, RuleId::Asgd),
            (GRADSTEP_RULE_PROXIMAL, RuleId::Proximal),
            (GRADSTEP_RULE_FTRL, RuleId::Ftrl),
            (GRADSTEP_RULE_ADAN, RuleId::Adan),
            (GRADSTEP_RULE_LAMB, RuleId::Lamb),
            (GRADSTEP_RULE_RMSPROP_BC, RuleId::RmsPropBc),
            (GRADSTEP_RULE_ONLINE_RMSPROP, RuleId::OnlineRmsProp),
            (GRADSTEP_RULE_SC_ADAGRAD, RuleId::ScAdagrad),
            (GRADSTEP_RULE_SC_RMSPROP, RuleId::ScRmsProp),
        ];
        assert_eq!(
            constants.len(),
            RuleId::ALL.len(),
            "a rule lacks its constant"
        );
        for (constant, id) in constants {
            assert_eq!(constant, u32::from(id as u16), "{id}");
        }
        let end = RuleId::ALL.iter().map(|&id| id as u16).max().unwrap() + 1;
        assert_eq!(GRADSTEP_RULE_KIND_END, u32::from(end));
    }

    #[test]
    fn every_rule_round_trips_through_its_c_form() {
        for &id in RuleId::ALL {
            let mut any = id.default_rule();
            // Change every field, so that a crossed or dropped field shows.
            for (k, field) in id.fields().iter().enumerate() {
                let v = match any.get(field.name).unwrap() {
                    gradstep::rules::Value::Number(x) => {
                        gradstep::rules::Value::Number(x + 0.01 * (k + 1) as f64)
                    }
                    gradstep::rules::Value::Flag(b) => gradstep::rules::Value::Flag(!b),
                    gradstep::rules::Value::Choice(name) => match field.kind {
                        gradstep::rules::FieldKind::Choice(names) => {
                            let k = names.iter().position(|&n| n == name).unwrap();
                            gradstep::rules::Value::Choice(names[(k + 1) % names.len()])
                        }
                        _ => unreachable!("a choice value in a field of another kind"),
                    },
                };
                any.set(field.name, v).unwrap();
            }
            let c = from_any(&any).unwrap();
            assert_eq!(c.kind, u32::from(id as u16));
            assert_eq!(to_any(&c), Ok(any), "{id}");
            // SAFETY: gradstep_rule_name returns a static string for known kinds.
            let name = unsafe { core::ffi::CStr::from_ptr(gradstep_rule_name(c.kind)) };
            assert_eq!(name.to_str(), Ok(id.name()));
        }
        assert!(gradstep_rule_name(0).is_null());
        assert!(gradstep_rule_name(GRADSTEP_RULE_KIND_END).is_null());
    }

    /// Every value of every choice field has its constant in the header,
    /// `GRADSTEP_<RULE>_<FIELD>_<VALUE>`, equal to its index; an index past the last is
    /// refused as an unknown kind.
    ///
    /// Under Miri only the C form's half runs (the union write and `to_any` refusing
    /// it): the header half is a text search with no unsafe code, which cost Miri ~7 s
    /// of string scanning and finds nothing there the normal run does not.
    #[test]
    fn every_choice_value_has_its_named_constant() {
        let header = if cfg!(miri) {
            String::new()
        } else {
            std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/gradstep.h"),
            )
            .unwrap()
        };
        let mut seen = 0;
        for &id in RuleId::ALL {
            for field in id.fields() {
                let gradstep::rules::FieldKind::Choice(names) = field.kind else {
                    continue;
                };
                for (k, name) in names.iter().enumerate() {
                    let line = format!(
                        "#define GRADSTEP_{}_{}_{} {k}\n",
                        id.name().to_uppercase(),
                        field.name.to_uppercase(),
                        name.to_uppercase()
                    );
                    assert!(
                        cfg!(miri) || header.contains(&line),
                        "header lacks {line:?}"
                    );
                    seen += 1;
                }
                // One past the last value: the C form is refused.
                let mut c = from_any(&id.default_rule()).unwrap();
                let text = format!("{}:{}={}", id.name(), field.name, names[0]);
                assert!(AnyRule::parse(&text).is_ok(), "{text}");
                if id == RuleId::Proximal {
                    // Writing a union field is safe; `c` holds the proximal member.
                    {
                        match field.name {
                            "momentum" => c.params.proximal.momentum = names.len() as u32,
                            "adapt" => c.params.proximal.adapt = names.len() as u32,
                            "l2_kind" => c.params.proximal.l2_kind = names.len() as u32,
                            "l1_kind" => c.params.proximal.l1_kind = names.len() as u32,
                            _ => c.params.proximal.representation = names.len() as u32,
                        }
                    }
                    assert_eq!(to_any(&c), Err(GRADSTEP_UNKNOWN_KIND), "{}", field.name);
                }
            }
        }
        assert!(seen >= 20, "only {seen} choice values");
    }
}
