//! The allocation-free API: one hyperparameter struct per rule, with a `_default()`
//! equal to torch's defaults, and step functions over caller-owned buffers.
//!
//! For each rule `R` (sgd, adam, adamw, adamax, nadam, radam, adagrad, adadelta,
//! rmsprop, rprop, asgd):
//! - `gradstep_R` holds the hyperparameters (`double`s, and `uint8_t` flags where any
//!   non-zero value means true);
//! - `gradstep_R_default()` returns torch's defaults;
//! - `gradstep_R_state_len(h, n, &len)` says how many state elements a step over `n`
//!   parameters needs (the rule's state slices, one after another);
//! - `gradstep_R_step_f32` / `_f64` take the hyperparameters, the scalar state, params,
//!   grads, their length `n`, and the state buffer with its length.
//!
//! A zero-initialized [`gradstep_scalars`] is fresh state: the first step initializes
//! the state buffer itself (its contents are ignored), as torch does lazily.

use gradstep::{
    Adadelta, Adagrad, Adam, AdamW, Adamax, Asgd, AsgdScalars, NAdam, NAdamScalars, RAdam, RmsProp,
    Rprop, Rule, Sgd, StepCount,
};

use crate::boundary::{guard, overlap, slice, slice_mut, span};
use crate::status::{GRADSTEP_OVERLAPPING_BUFFERS, gradstep_status};

/// The scalar state of any rule: the step count, plus NAdam's μ-product and ASGD's η
/// and μ (unused fields are ignored and left as they are). All zeros = fresh.
///
/// `cache` holds Adam's, AdamW's, Adamax's and RAdam's bias-correction powers β₁ᵗ and
/// β₂ᵗ between steps, so that each step advances them with one multiply instead of
/// computing them afresh (which matters without a double-precision FPU: on a
/// Cortex-M4F about 2 900 instructions per power at t = 10⁶). It never changes a
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

/// How a rule's scalar state travels through [`gradstep_scalars`].
pub(crate) trait CScalars: Sized {
    fn from_c(c: &gradstep_scalars) -> Self;
    fn to_c(&self, c: &mut gradstep_scalars);
}

impl CScalars for StepCount {
    fn from_c(c: &gradstep_scalars) -> Self {
        StepCount::with_cache(c.step, &c.cache)
    }
    fn to_c(&self, c: &mut gradstep_scalars) {
        (c.step, c.cache) = (self.step, self.cache());
    }
}

impl CScalars for NAdamScalars {
    fn from_c(c: &gradstep_scalars) -> Self {
        NAdamScalars {
            step: c.step,
            mu_product: c.mu_product,
        }
    }
    fn to_c(&self, c: &mut gradstep_scalars) {
        (c.step, c.mu_product) = (self.step, self.mu_product);
    }
}

impl CScalars for AsgdScalars {
    fn from_c(c: &gradstep_scalars) -> Self {
        AsgdScalars {
            step: c.step,
            eta: c.eta,
            mu: c.mu,
        }
    }
    fn to_c(&self, c: &mut gradstep_scalars) {
        (c.step, c.eta, c.mu) = (self.step, self.eta, self.mu);
    }
}

/// The body of every `gradstep_R_step_*`: checks, converts, steps, writes back.
///
/// # Safety
/// The pointers must be NULL or valid as documented on the exported functions.
unsafe fn step<R, C, T>(
    hyper: *const C,
    scalars: *mut gradstep_scalars,
    params: *mut T,
    grads: *const T,
    n: usize,
    state: *mut T,
    state_len: usize,
) -> gradstep_status
where
    R: Rule + From<C>,
    R::Scalars: CScalars,
    C: Copy,
    T: gradstep::Real,
{
    guard(|| {
        // SAFETY: the caller's contract; `read` and `check` reject NULL and misalignment.
        let rule = R::from(unsafe { read(hyper)? });
        crate::boundary::check(scalars.cast_const())?;
        // SAFETY: as above.
        let (p, g, s) = unsafe {
            (
                slice_mut(params, n)?,
                slice(grads, n)?,
                slice_mut(state, state_len)?,
            )
        };
        let (pp, gp, sp) = (
            span(p.as_ptr(), n),
            span(g.as_ptr(), n),
            span(s.as_ptr(), state_len),
        );
        if overlap(pp, gp) || overlap(pp, sp) || overlap(gp, sp) {
            return Err(GRADSTEP_OVERLAPPING_BUFFERS);
        }
        // SAFETY: non-NULL and aligned (checked above); valid per the caller's contract.
        let c = unsafe { &mut *scalars };
        let mut rust = R::Scalars::from_c(c);
        rule.step_flat(&mut rust, p, g, s)?;
        rust.to_c(c);
        Ok(())
    })
}

/// The body of every `gradstep_R_state_len`.
///
/// # Safety
/// `hyper` and `out` must each be NULL or valid for one element.
unsafe fn state_len<R: Rule + From<C>, C: Copy>(
    hyper: *const C,
    n: usize,
    out: *mut usize,
) -> gradstep_status {
    guard(|| {
        // SAFETY: the caller's contract; `read` rejects NULL and misalignment.
        let rule = R::from(unsafe { read(hyper)? });
        crate::boundary::check(out.cast_const())?;
        rule.validate()?;
        let len = rule
            .state_slots()
            .checked_mul(n)
            .ok_or(crate::status::GRADSTEP_LENGTH_MISMATCH)?;
        // SAFETY: non-NULL and aligned (checked); writable per the caller's contract.
        unsafe { out.write(len) };
        Ok(())
    })
}

/// Reads a hyperparameter struct, or reports NULL.
///
/// # Safety
/// `h` must be NULL or valid for a read.
pub(crate) unsafe fn read<H: Copy>(h: *const H) -> Result<H, gradstep_status> {
    crate::boundary::check(h)?;
    // SAFETY: non-NULL and aligned (checked); readable per the caller's contract.
    Ok(unsafe { h.read() })
}

/// Converts between a C hyperparameter struct and the kernel's rule, field by field
/// (flags: any non-zero byte is true).
macro_rules! convert {
    ($c:ident = $rust:ident { $($field:ident),* } flags { $($flag:ident),* }) => {
        impl From<$c> for $rust {
            fn from(c: $c) -> $rust {
                $rust { $( $field: c.$field, )* $( $flag: c.$flag != 0, )* }
            }
        }
        impl From<$rust> for $c {
            fn from(r: $rust) -> $c {
                $c { $( $field: r.$field, )* $( $flag: u8::from(r.$flag), )* }
            }
        }
    };
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

convert!(gradstep_sgd = Sgd { lr, momentum, dampening, weight_decay } flags { nesterov, maximize });

/// torch's defaults for [`gradstep_sgd`].
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_sgd_default() -> gradstep_sgd {
    Sgd::default().into()
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with these
/// hyperparameters. Fails on NULL pointers and invalid hyperparameters.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_sgd_state_len(
    hyper: *const gradstep_sgd,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { state_len::<Sgd, _>(hyper, n, out_len) }
}

/// One step over `n` `float` parameters (see the module docs).
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `hyper`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_sgd_step_f32(
    hyper: *const gradstep_sgd,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Sgd, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}

/// One step over `n` `double` parameters (see the module docs).
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_sgd_step_f64(
    hyper: *const gradstep_sgd,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Sgd, _, _>(hyper, scalars, params, grads, n, state, state_len) }
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

convert!(gradstep_adam = Adam { lr, beta1, beta2, eps, weight_decay } flags { decoupled_weight_decay, amsgrad, maximize });

/// torch's defaults for [`gradstep_adam`].
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_adam_default() -> gradstep_adam {
    Adam::default().into()
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with these
/// hyperparameters. Fails on NULL pointers and invalid hyperparameters.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adam_state_len(
    hyper: *const gradstep_adam,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { state_len::<Adam, _>(hyper, n, out_len) }
}

/// One step over `n` `float` parameters (see the module docs).
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `hyper`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adam_step_f32(
    hyper: *const gradstep_adam,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Adam, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}

/// One step over `n` `double` parameters (see the module docs).
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adam_step_f64(
    hyper: *const gradstep_adam,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Adam, _, _>(hyper, scalars, params, grads, n, state, state_len) }
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

convert!(gradstep_adamw = AdamW { lr, beta1, beta2, eps, weight_decay } flags { amsgrad, maximize });

/// torch's defaults for [`gradstep_adamw`].
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_adamw_default() -> gradstep_adamw {
    AdamW::default().into()
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with these
/// hyperparameters. Fails on NULL pointers and invalid hyperparameters.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adamw_state_len(
    hyper: *const gradstep_adamw,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { state_len::<AdamW, _>(hyper, n, out_len) }
}

/// One step over `n` `float` parameters (see the module docs).
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `hyper`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adamw_step_f32(
    hyper: *const gradstep_adamw,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<AdamW, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}

/// One step over `n` `double` parameters (see the module docs).
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adamw_step_f64(
    hyper: *const gradstep_adamw,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<AdamW, _, _>(hyper, scalars, params, grads, n, state, state_len) }
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

convert!(gradstep_adamax = Adamax { lr, beta1, beta2, eps, weight_decay } flags { maximize });

/// torch's defaults for [`gradstep_adamax`].
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_adamax_default() -> gradstep_adamax {
    Adamax::default().into()
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with these
/// hyperparameters. Fails on NULL pointers and invalid hyperparameters.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adamax_state_len(
    hyper: *const gradstep_adamax,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { state_len::<Adamax, _>(hyper, n, out_len) }
}

/// One step over `n` `float` parameters (see the module docs).
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `hyper`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adamax_step_f32(
    hyper: *const gradstep_adamax,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Adamax, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}

/// One step over `n` `double` parameters (see the module docs).
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adamax_step_f64(
    hyper: *const gradstep_adamax,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Adamax, _, _>(hyper, scalars, params, grads, n, state, state_len) }
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

convert!(gradstep_nadam = NAdam { lr, beta1, beta2, eps, weight_decay, momentum_decay } flags { decoupled_weight_decay, maximize });

/// torch's defaults for [`gradstep_nadam`].
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_nadam_default() -> gradstep_nadam {
    NAdam::default().into()
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with these
/// hyperparameters. Fails on NULL pointers and invalid hyperparameters.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_nadam_state_len(
    hyper: *const gradstep_nadam,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { state_len::<NAdam, _>(hyper, n, out_len) }
}

/// One step over `n` `float` parameters (see the module docs).
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `hyper`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_nadam_step_f32(
    hyper: *const gradstep_nadam,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<NAdam, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}

/// One step over `n` `double` parameters (see the module docs).
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_nadam_step_f64(
    hyper: *const gradstep_nadam,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<NAdam, _, _>(hyper, scalars, params, grads, n, state, state_len) }
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

convert!(gradstep_radam = RAdam { lr, beta1, beta2, eps, weight_decay } flags { decoupled_weight_decay, maximize });

/// torch's defaults for [`gradstep_radam`].
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_radam_default() -> gradstep_radam {
    RAdam::default().into()
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with these
/// hyperparameters. Fails on NULL pointers and invalid hyperparameters.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_radam_state_len(
    hyper: *const gradstep_radam,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { state_len::<RAdam, _>(hyper, n, out_len) }
}

/// One step over `n` `float` parameters (see the module docs).
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `hyper`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_radam_step_f32(
    hyper: *const gradstep_radam,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<RAdam, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}

/// One step over `n` `double` parameters (see the module docs).
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_radam_step_f64(
    hyper: *const gradstep_radam,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<RAdam, _, _>(hyper, scalars, params, grads, n, state, state_len) }
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

convert!(gradstep_adagrad = Adagrad { lr, lr_decay, weight_decay, initial_accumulator_value, eps } flags { maximize });

/// torch's defaults for [`gradstep_adagrad`].
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_adagrad_default() -> gradstep_adagrad {
    Adagrad::default().into()
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with these
/// hyperparameters. Fails on NULL pointers and invalid hyperparameters.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adagrad_state_len(
    hyper: *const gradstep_adagrad,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { state_len::<Adagrad, _>(hyper, n, out_len) }
}

/// One step over `n` `float` parameters (see the module docs).
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `hyper`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adagrad_step_f32(
    hyper: *const gradstep_adagrad,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Adagrad, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}

/// One step over `n` `double` parameters (see the module docs).
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adagrad_step_f64(
    hyper: *const gradstep_adagrad,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Adagrad, _, _>(hyper, scalars, params, grads, n, state, state_len) }
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

convert!(gradstep_adadelta = Adadelta { lr, rho, eps, weight_decay } flags { maximize });

/// torch's defaults for [`gradstep_adadelta`].
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_adadelta_default() -> gradstep_adadelta {
    Adadelta::default().into()
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with these
/// hyperparameters. Fails on NULL pointers and invalid hyperparameters.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adadelta_state_len(
    hyper: *const gradstep_adadelta,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { state_len::<Adadelta, _>(hyper, n, out_len) }
}

/// One step over `n` `float` parameters (see the module docs).
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `hyper`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adadelta_step_f32(
    hyper: *const gradstep_adadelta,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Adadelta, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}

/// One step over `n` `double` parameters (see the module docs).
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_adadelta_step_f64(
    hyper: *const gradstep_adadelta,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Adadelta, _, _>(hyper, scalars, params, grads, n, state, state_len) }
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

convert!(gradstep_rmsprop = RmsProp { lr, alpha, eps, weight_decay, momentum } flags { centered, maximize });

/// torch's defaults for [`gradstep_rmsprop`].
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_rmsprop_default() -> gradstep_rmsprop {
    RmsProp::default().into()
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with these
/// hyperparameters. Fails on NULL pointers and invalid hyperparameters.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rmsprop_state_len(
    hyper: *const gradstep_rmsprop,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { state_len::<RmsProp, _>(hyper, n, out_len) }
}

/// One step over `n` `float` parameters (see the module docs).
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `hyper`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rmsprop_step_f32(
    hyper: *const gradstep_rmsprop,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<RmsProp, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}

/// One step over `n` `double` parameters (see the module docs).
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rmsprop_step_f64(
    hyper: *const gradstep_rmsprop,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<RmsProp, _, _>(hyper, scalars, params, grads, n, state, state_len) }
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

convert!(gradstep_rprop = Rprop { lr, etaminus, etaplus, step_size_min, step_size_max } flags { maximize });

/// torch's defaults for [`gradstep_rprop`].
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_rprop_default() -> gradstep_rprop {
    Rprop::default().into()
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with these
/// hyperparameters. Fails on NULL pointers and invalid hyperparameters.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rprop_state_len(
    hyper: *const gradstep_rprop,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { state_len::<Rprop, _>(hyper, n, out_len) }
}

/// One step over `n` `float` parameters (see the module docs).
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `hyper`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rprop_step_f32(
    hyper: *const gradstep_rprop,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Rprop, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}

/// One step over `n` `double` parameters (see the module docs).
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_rprop_step_f64(
    hyper: *const gradstep_rprop,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Rprop, _, _>(hyper, scalars, params, grads, n, state, state_len) }
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

convert!(gradstep_asgd = Asgd { lr, lambd, alpha, t0, weight_decay } flags { maximize });

/// torch's defaults for [`gradstep_asgd`].
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_asgd_default() -> gradstep_asgd {
    Asgd::default().into()
}

/// Writes to `*out_len` the state length a step over `n` parameters needs with these
/// hyperparameters. Fails on NULL pointers and invalid hyperparameters.
///
/// # Safety
/// `hyper` and `out_len` must each be NULL or valid for one element.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_asgd_state_len(
    hyper: *const gradstep_asgd,
    n: usize,
    out_len: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { state_len::<Asgd, _>(hyper, n, out_len) }
}

/// One step over `n` `float` parameters (see the module docs).
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`params`, `grads`: `n`; `state`:
/// `state_len`; `hyper`, `scalars`: one), and the buffers must not be accessed by
/// anyone else during the call. Overlapping buffers are detected and refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_asgd_step_f32(
    hyper: *const gradstep_asgd,
    scalars: *mut gradstep_scalars,
    params: *mut f32,
    grads: *const f32,
    n: usize,
    state: *mut f32,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Asgd, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}

/// One step over `n` `double` parameters (see the module docs).
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_asgd_step_f64(
    hyper: *const gradstep_asgd,
    scalars: *mut gradstep_scalars,
    params: *mut f64,
    grads: *const f64,
    n: usize,
    state: *mut f64,
    state_len: usize,
) -> gradstep_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { step::<Asgd, _, _>(hyper, scalars, params, grads, n, state, state_len) }
}
