//! The optimizer handle: create it from a rule's hyperparameters and an element type,
//! register parameter tensors (in param groups with their own hyperparameters), step
//! them all in one call, set the learning rate or attach a schedule per group, free it.
//! The handle owns every state buffer; the caller owns the params and grads, which
//! must stay valid (and not move) until the handle is freed.

use gradstep::checkpoint::{AnyRule, AnyScalars};
use gradstep::schedules::Group;
use gradstep::{
    Adadelta, Adagrad, Adam, AdamW, Adamax, Asgd, AsgdScalars, NAdam, NAdamScalars, RAdam, RmsProp,
    Rprop, Rule, Sgd, StepCount,
};

use crate::boundary::{check, guard};
use crate::registry::{self, Kind};
use crate::rules::{
    gradstep_adadelta, gradstep_adagrad, gradstep_adam, gradstep_adamax, gradstep_adamw,
    gradstep_asgd, gradstep_nadam, gradstep_radam, gradstep_rmsprop, gradstep_rprop, gradstep_sgd,
    read,
};
use crate::schedules::{Built, Running, build, gradstep_schedule_config};
use crate::status::{
    GRADSTEP_INVALID_HYPERPARAMETER, GRADSTEP_LENGTH_MISMATCH, GRADSTEP_OVERLAPPING_BUFFERS,
    GRADSTEP_STEP_OVERFLOW, GRADSTEP_UNKNOWN_KIND, GRADSTEP_WRONG_ELEMENT_TYPE,
    GRADSTEP_WRONG_RULE, gradstep_status,
};

/// Element type `float` for [`gradstep_optimizer`] functions.
pub const GRADSTEP_F32: u32 = 1;
/// Element type `double`.
pub const GRADSTEP_F64: u32 = 2;

/// One parameter group: its hyperparameters, the learning rate (and momentum) that
/// schedules drive, and its schedule.
struct ParamGroup {
    rule: AnyRule,
    group: Group,
    schedule: Option<Running>,
}

/// One registered tensor.
struct Tensor {
    group: usize,
    n: usize,
    buffers: Buffers,
    scalars: AnyScalars,
}

enum Buffers {
    F32 {
        params: *mut f32,
        grads: *const f32,
        state: Vec<f32>,
    },
    F64 {
        params: *mut f64,
        grads: *const f64,
        state: Vec<f64>,
    },
}

impl Buffers {
    /// The byte ranges of the caller's params and grads.
    fn spans(&self, n: usize) -> [(usize, usize); 2] {
        match self {
            Buffers::F32 { params, grads, .. } => [
                (*params as usize, n.saturating_mul(4)),
                (*grads as usize, n.saturating_mul(4)),
            ],
            Buffers::F64 { params, grads, .. } => [
                (*params as usize, n.saturating_mul(8)),
                (*grads as usize, n.saturating_mul(8)),
            ],
        }
    }
}

/// An optimizer over registered tensors (opaque).
pub struct gradstep_optimizer {
    element: u32,
    groups: Vec<ParamGroup>,
    tensors: Vec<Tensor>,
}

/// The rule with the group's scheduled learning rate and momentum/β₁.
fn scheduled(g: &ParamGroup) -> Result<AnyRule, gradstep_status> {
    let (lr, m) = (g.group.lr, g.group.momentum);
    let mut rule = g.rule;
    macro_rules! set {
        ($r:ident, $field:ident) => {{
            $r.lr = lr;
            if let Some(m) = m {
                $r.$field = m;
            }
        }};
        ($r:ident) => {{
            $r.lr = lr;
        }};
    }
    match &mut rule {
        AnyRule::Sgd(r) => set!(r, momentum),
        AnyRule::Adam(r) => set!(r, beta1),
        AnyRule::AdamW(r) => set!(r, beta1),
        AnyRule::Adamax(r) => set!(r, beta1),
        AnyRule::NAdam(r) => set!(r, beta1),
        AnyRule::RAdam(r) => set!(r, beta1),
        AnyRule::Adagrad(r) => set!(r),
        AnyRule::Adadelta(r) => set!(r),
        AnyRule::RmsProp(r) => set!(r, momentum),
        AnyRule::Rprop(r) => set!(r),
        AnyRule::Asgd(r) => set!(r),
        _ => return Err(GRADSTEP_UNKNOWN_KIND),
    }
    rule.validate()?;
    Ok(rule)
}

fn fresh(rule: &AnyRule) -> AnyScalars {
    match rule {
        AnyRule::NAdam(_) => NAdamScalars::default().into(),
        AnyRule::Asgd(_) => AsgdScalars::default().into(),
        _ => StepCount::default().into(),
    }
}

fn step_tensor<T: gradstep::Real>(
    rule: &AnyRule,
    scalars: &mut AnyScalars,
    p: &mut [T],
    g: &[T],
    s: &mut [T],
) -> Result<(), gradstep_status> {
    match (rule, scalars) {
        (AnyRule::Sgd(r), AnyScalars::Step(sc)) => r.step_flat(sc, p, g, s)?,
        (AnyRule::Adam(r), AnyScalars::Step(sc)) => r.step_flat(sc, p, g, s)?,
        (AnyRule::AdamW(r), AnyScalars::Step(sc)) => r.step_flat(sc, p, g, s)?,
        (AnyRule::Adamax(r), AnyScalars::Step(sc)) => r.step_flat(sc, p, g, s)?,
        (AnyRule::NAdam(r), AnyScalars::NAdam(sc)) => r.step_flat(sc, p, g, s)?,
        (AnyRule::RAdam(r), AnyScalars::Step(sc)) => r.step_flat(sc, p, g, s)?,
        (AnyRule::Adagrad(r), AnyScalars::Step(sc)) => r.step_flat(sc, p, g, s)?,
        (AnyRule::Adadelta(r), AnyScalars::Step(sc)) => r.step_flat(sc, p, g, s)?,
        (AnyRule::RmsProp(r), AnyScalars::Step(sc)) => r.step_flat(sc, p, g, s)?,
        (AnyRule::Rprop(r), AnyScalars::Step(sc)) => r.step_flat(sc, p, g, s)?,
        (AnyRule::Asgd(r), AnyScalars::Asgd(sc)) => r.step_flat(sc, p, g, s)?,
        _ => return Err(GRADSTEP_UNKNOWN_KIND),
    }
    Ok(())
}

fn steps_taken(s: &AnyScalars) -> u64 {
    match s {
        AnyScalars::Step(s) => s.step,
        AnyScalars::NAdam(s) => s.step,
        AnyScalars::Asgd(s) => s.step,
    }
}

fn new_optimizer(
    rule: AnyRule,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> Result<(), gradstep_status> {
    check(out.cast_const())?;
    if element != GRADSTEP_F32 && element != GRADSTEP_F64 {
        return Err(GRADSTEP_UNKNOWN_KIND);
    }
    rule.validate()?;
    let lr = lr_of(&rule);
    let opt = gradstep_optimizer {
        element,
        groups: vec![ParamGroup {
            rule,
            group: Group::new(lr),
            schedule: None,
        }],
        tensors: Vec::new(),
    };
    let handle = registry::register(opt, Kind::Optimizer);
    // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
    unsafe { out.write(handle) };
    Ok(())
}

fn lr_of(rule: &AnyRule) -> f64 {
    match rule {
        AnyRule::Sgd(r) => r.lr,
        AnyRule::Adam(r) => r.lr,
        AnyRule::AdamW(r) => r.lr,
        AnyRule::Adamax(r) => r.lr,
        AnyRule::NAdam(r) => r.lr,
        AnyRule::RAdam(r) => r.lr,
        AnyRule::Adagrad(r) => r.lr,
        AnyRule::Adadelta(r) => r.lr,
        AnyRule::RmsProp(r) => r.lr,
        AnyRule::Rprop(r) => r.lr,
        AnyRule::Asgd(r) => r.lr,
        _ => 0.0,
    }
}

fn add_group(
    opt: *mut gradstep_optimizer,
    rule: AnyRule,
    group_out: *mut usize,
) -> Result<(), gradstep_status> {
    // SAFETY: looked up in the registry.
    let o = unsafe { registry::get(opt, Kind::Optimizer)? };
    check(group_out.cast_const())?;
    if core::mem::discriminant(&o.groups[0].rule) != core::mem::discriminant(&rule) {
        return Err(GRADSTEP_WRONG_RULE);
    }
    rule.validate()?;
    o.groups.push(ParamGroup {
        rule,
        group: Group::new(lr_of(&rule)),
        schedule: None,
    });
    // SAFETY: checked; writable.
    unsafe { group_out.write(o.groups.len() - 1) };
    Ok(())
}

/// Creates an optimizer with Sgd and these hyperparameters as group 0, over elements
/// of type `element` ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]).
///
/// # Safety
/// `hyper` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_sgd(
    hyper: *const gradstep_sgd,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        new_optimizer(
            AnyRule::Sgd(Sgd::from(unsafe { read(hyper)? })),
            element,
            out,
        )
    })
}

/// Adds a param group with its own Sgd hyperparameters (the optimizer must be a Sgd
/// one) and writes its index.
///
/// # Safety
/// `opt` a live handle or NULL; `hyper` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group_sgd(
    opt: *mut gradstep_optimizer,
    hyper: *const gradstep_sgd,
    group_out: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        add_group(
            opt,
            AnyRule::Sgd(Sgd::from(unsafe { read(hyper)? })),
            group_out,
        )
    })
}

/// Creates an optimizer with Adam and these hyperparameters as group 0, over elements
/// of type `element` ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]).
///
/// # Safety
/// `hyper` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_adam(
    hyper: *const gradstep_adam,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        new_optimizer(
            AnyRule::Adam(Adam::from(unsafe { read(hyper)? })),
            element,
            out,
        )
    })
}

/// Adds a param group with its own Adam hyperparameters (the optimizer must be a Adam
/// one) and writes its index.
///
/// # Safety
/// `opt` a live handle or NULL; `hyper` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group_adam(
    opt: *mut gradstep_optimizer,
    hyper: *const gradstep_adam,
    group_out: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        add_group(
            opt,
            AnyRule::Adam(Adam::from(unsafe { read(hyper)? })),
            group_out,
        )
    })
}

/// Creates an optimizer with AdamW and these hyperparameters as group 0, over elements
/// of type `element` ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]).
///
/// # Safety
/// `hyper` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_adamw(
    hyper: *const gradstep_adamw,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        new_optimizer(
            AnyRule::AdamW(AdamW::from(unsafe { read(hyper)? })),
            element,
            out,
        )
    })
}

/// Adds a param group with its own AdamW hyperparameters (the optimizer must be a AdamW
/// one) and writes its index.
///
/// # Safety
/// `opt` a live handle or NULL; `hyper` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group_adamw(
    opt: *mut gradstep_optimizer,
    hyper: *const gradstep_adamw,
    group_out: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        add_group(
            opt,
            AnyRule::AdamW(AdamW::from(unsafe { read(hyper)? })),
            group_out,
        )
    })
}

/// Creates an optimizer with Adamax and these hyperparameters as group 0, over elements
/// of type `element` ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]).
///
/// # Safety
/// `hyper` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_adamax(
    hyper: *const gradstep_adamax,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        new_optimizer(
            AnyRule::Adamax(Adamax::from(unsafe { read(hyper)? })),
            element,
            out,
        )
    })
}

/// Adds a param group with its own Adamax hyperparameters (the optimizer must be a Adamax
/// one) and writes its index.
///
/// # Safety
/// `opt` a live handle or NULL; `hyper` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group_adamax(
    opt: *mut gradstep_optimizer,
    hyper: *const gradstep_adamax,
    group_out: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        add_group(
            opt,
            AnyRule::Adamax(Adamax::from(unsafe { read(hyper)? })),
            group_out,
        )
    })
}

/// Creates an optimizer with NAdam and these hyperparameters as group 0, over elements
/// of type `element` ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]).
///
/// # Safety
/// `hyper` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_nadam(
    hyper: *const gradstep_nadam,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        new_optimizer(
            AnyRule::NAdam(NAdam::from(unsafe { read(hyper)? })),
            element,
            out,
        )
    })
}

/// Adds a param group with its own NAdam hyperparameters (the optimizer must be a NAdam
/// one) and writes its index.
///
/// # Safety
/// `opt` a live handle or NULL; `hyper` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group_nadam(
    opt: *mut gradstep_optimizer,
    hyper: *const gradstep_nadam,
    group_out: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        add_group(
            opt,
            AnyRule::NAdam(NAdam::from(unsafe { read(hyper)? })),
            group_out,
        )
    })
}

/// Creates an optimizer with RAdam and these hyperparameters as group 0, over elements
/// of type `element` ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]).
///
/// # Safety
/// `hyper` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_radam(
    hyper: *const gradstep_radam,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        new_optimizer(
            AnyRule::RAdam(RAdam::from(unsafe { read(hyper)? })),
            element,
            out,
        )
    })
}

/// Adds a param group with its own RAdam hyperparameters (the optimizer must be a RAdam
/// one) and writes its index.
///
/// # Safety
/// `opt` a live handle or NULL; `hyper` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group_radam(
    opt: *mut gradstep_optimizer,
    hyper: *const gradstep_radam,
    group_out: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        add_group(
            opt,
            AnyRule::RAdam(RAdam::from(unsafe { read(hyper)? })),
            group_out,
        )
    })
}

/// Creates an optimizer with Adagrad and these hyperparameters as group 0, over elements
/// of type `element` ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]).
///
/// # Safety
/// `hyper` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_adagrad(
    hyper: *const gradstep_adagrad,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        new_optimizer(
            AnyRule::Adagrad(Adagrad::from(unsafe { read(hyper)? })),
            element,
            out,
        )
    })
}

/// Adds a param group with its own Adagrad hyperparameters (the optimizer must be a Adagrad
/// one) and writes its index.
///
/// # Safety
/// `opt` a live handle or NULL; `hyper` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group_adagrad(
    opt: *mut gradstep_optimizer,
    hyper: *const gradstep_adagrad,
    group_out: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        add_group(
            opt,
            AnyRule::Adagrad(Adagrad::from(unsafe { read(hyper)? })),
            group_out,
        )
    })
}

/// Creates an optimizer with Adadelta and these hyperparameters as group 0, over elements
/// of type `element` ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]).
///
/// # Safety
/// `hyper` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_adadelta(
    hyper: *const gradstep_adadelta,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        new_optimizer(
            AnyRule::Adadelta(Adadelta::from(unsafe { read(hyper)? })),
            element,
            out,
        )
    })
}

/// Adds a param group with its own Adadelta hyperparameters (the optimizer must be a Adadelta
/// one) and writes its index.
///
/// # Safety
/// `opt` a live handle or NULL; `hyper` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group_adadelta(
    opt: *mut gradstep_optimizer,
    hyper: *const gradstep_adadelta,
    group_out: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        add_group(
            opt,
            AnyRule::Adadelta(Adadelta::from(unsafe { read(hyper)? })),
            group_out,
        )
    })
}

/// Creates an optimizer with RmsProp and these hyperparameters as group 0, over elements
/// of type `element` ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]).
///
/// # Safety
/// `hyper` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_rmsprop(
    hyper: *const gradstep_rmsprop,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        new_optimizer(
            AnyRule::RmsProp(RmsProp::from(unsafe { read(hyper)? })),
            element,
            out,
        )
    })
}

/// Adds a param group with its own RmsProp hyperparameters (the optimizer must be a RmsProp
/// one) and writes its index.
///
/// # Safety
/// `opt` a live handle or NULL; `hyper` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group_rmsprop(
    opt: *mut gradstep_optimizer,
    hyper: *const gradstep_rmsprop,
    group_out: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        add_group(
            opt,
            AnyRule::RmsProp(RmsProp::from(unsafe { read(hyper)? })),
            group_out,
        )
    })
}

/// Creates an optimizer with Rprop and these hyperparameters as group 0, over elements
/// of type `element` ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]).
///
/// # Safety
/// `hyper` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_rprop(
    hyper: *const gradstep_rprop,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        new_optimizer(
            AnyRule::Rprop(Rprop::from(unsafe { read(hyper)? })),
            element,
            out,
        )
    })
}

/// Adds a param group with its own Rprop hyperparameters (the optimizer must be a Rprop
/// one) and writes its index.
///
/// # Safety
/// `opt` a live handle or NULL; `hyper` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group_rprop(
    opt: *mut gradstep_optimizer,
    hyper: *const gradstep_rprop,
    group_out: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        add_group(
            opt,
            AnyRule::Rprop(Rprop::from(unsafe { read(hyper)? })),
            group_out,
        )
    })
}

/// Creates an optimizer with Asgd and these hyperparameters as group 0, over elements
/// of type `element` ([`GRADSTEP_F32`] or [`GRADSTEP_F64`]).
///
/// # Safety
/// `hyper` NULL or valid for a read, `out` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_new_asgd(
    hyper: *const gradstep_asgd,
    element: u32,
    out: *mut *mut gradstep_optimizer,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        new_optimizer(
            AnyRule::Asgd(Asgd::from(unsafe { read(hyper)? })),
            element,
            out,
        )
    })
}

/// Adds a param group with its own Asgd hyperparameters (the optimizer must be a Asgd
/// one) and writes its index.
///
/// # Safety
/// `opt` a live handle or NULL; `hyper` NULL or valid for a read; `group_out` NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_group_asgd(
    opt: *mut gradstep_optimizer,
    hyper: *const gradstep_asgd,
    group_out: *mut usize,
) -> gradstep_status {
    // SAFETY: the caller's contract; `read` checks NULL and alignment.
    guard(|| {
        add_group(
            opt,
            AnyRule::Asgd(Asgd::from(unsafe { read(hyper)? })),
            group_out,
        )
    })
}

fn add_params(
    opt: *mut gradstep_optimizer,
    group: usize,
    n: usize,
    make: impl FnOnce(usize) -> Result<(u32, Buffers), gradstep_status>,
) -> Result<(), gradstep_status> {
    // SAFETY: looked up in the registry.
    let o = unsafe { registry::get(opt, Kind::Optimizer)? };
    let g = o.groups.get(group).ok_or(GRADSTEP_LENGTH_MISMATCH)?;
    let slots = g.rule.state_slots();
    let len = slots.checked_mul(n).ok_or(GRADSTEP_LENGTH_MISMATCH)?;
    let (element, buffers) = make(len)?;
    if element != o.element {
        return Err(GRADSTEP_WRONG_ELEMENT_TYPE);
    }
    // No two registered buffers may overlap, and a tensor's params not its grads.
    let [p, gr] = buffers.spans(n);
    let disjoint = |a: (usize, usize), b: (usize, usize)| {
        a.1 == 0 || b.1 == 0 || a.0.saturating_add(a.1) <= b.0 || b.0.saturating_add(b.1) <= a.0
    };
    if !disjoint(p, gr) {
        return Err(GRADSTEP_OVERLAPPING_BUFFERS);
    }
    for t in &o.tensors {
        let [tp, tg] = t.buffers.spans(t.n);
        if !disjoint(p, tp) || !disjoint(p, tg) || !disjoint(gr, tp) {
            return Err(GRADSTEP_OVERLAPPING_BUFFERS);
        }
    }
    let scalars = fresh(&g.rule);
    o.tensors.push(Tensor {
        group,
        n,
        buffers,
        scalars,
    });
    Ok(())
}

/// Registers a tensor of `n` floats in `group`: `params` (updated by each step) and
/// `grads` (read by each step). The optimizer allocates its state.
///
/// # Safety
/// `opt` a live handle or NULL; `params`/`grads` NULL or valid for `n` elements until
/// the optimizer is freed, and not used by anyone else during its calls.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_params_f32(
    opt: *mut gradstep_optimizer,
    group: usize,
    params: *mut f32,
    grads: *const f32,
    n: usize,
) -> gradstep_status {
    guard(|| {
        check(params.cast_const())?;
        check(grads)?;
        add_params(opt, group, n, |len| {
            Ok((
                GRADSTEP_F32,
                Buffers::F32 {
                    params,
                    grads,
                    state: vec![0.0; len],
                },
            ))
        })
    })
}

/// As [`gradstep_optimizer_add_params_f32`], for doubles.
///
/// # Safety
/// As for the `_f32` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_add_params_f64(
    opt: *mut gradstep_optimizer,
    group: usize,
    params: *mut f64,
    grads: *const f64,
    n: usize,
) -> gradstep_status {
    guard(|| {
        check(params.cast_const())?;
        check(grads)?;
        add_params(opt, group, n, |len| {
            Ok((
                GRADSTEP_F64,
                Buffers::F64 {
                    params,
                    grads,
                    state: vec![0.0; len],
                },
            ))
        })
    })
}

/// Steps every registered tensor with its group's hyperparameters (and scheduled
/// learning rate and momentum). Every group is validated first: on a refusal no
/// tensor has been stepped.
///
/// # Safety
/// `opt` a live handle or NULL; the registered buffers still valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_step(opt: *mut gradstep_optimizer) -> gradstep_status {
    guard(|| {
        // SAFETY: looked up in the registry.
        let o = unsafe { registry::get(opt, Kind::Optimizer)? };
        let rules = o
            .groups
            .iter()
            .map(scheduled)
            .collect::<Result<Vec<_>, _>>()?;
        if o.tensors
            .iter()
            .any(|t| steps_taken(&t.scalars) == u64::MAX)
        {
            return Err(GRADSTEP_STEP_OVERFLOW);
        }
        for t in &mut o.tensors {
            let rule = &rules[t.group];
            match &mut t.buffers {
                Buffers::F32 {
                    params,
                    grads,
                    state,
                } => {
                    // SAFETY: registered non-NULL, aligned, disjoint and valid for `n`
                    // elements until the handle is freed (the caller's contract).
                    let (p, g) = unsafe {
                        (
                            core::slice::from_raw_parts_mut(*params, t.n),
                            core::slice::from_raw_parts(*grads, t.n),
                        )
                    };
                    step_tensor(rule, &mut t.scalars, p, g, state)?;
                }
                Buffers::F64 {
                    params,
                    grads,
                    state,
                } => {
                    // SAFETY: as above.
                    let (p, g) = unsafe {
                        (
                            core::slice::from_raw_parts_mut(*params, t.n),
                            core::slice::from_raw_parts(*grads, t.n),
                        )
                    };
                    step_tensor(rule, &mut t.scalars, p, g, state)?;
                }
            }
        }
        Ok(())
    })
}

fn group_of<'a>(
    opt: *mut gradstep_optimizer,
    group: usize,
) -> Result<&'a mut ParamGroup, gradstep_status> {
    // SAFETY: looked up in the registry; the borrow ends within the calling function.
    let o = unsafe { registry::get(opt, Kind::Optimizer)? };
    o.groups.get_mut(group).ok_or(GRADSTEP_LENGTH_MISMATCH)
}

/// Sets a group's learning rate (finite, ≥ 0).
///
/// # Safety
/// `opt` a live handle or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_set_lr(
    opt: *mut gradstep_optimizer,
    group: usize,
    lr: f64,
) -> gradstep_status {
    guard(|| {
        let g = group_of(opt, group)?;
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(GRADSTEP_INVALID_HYPERPARAMETER);
        }
        g.group.lr = lr;
        Ok(())
    })
}

/// Writes a group's current learning rate.
///
/// # Safety
/// `opt` a live handle or NULL; `lr` NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_lr(
    opt: *mut gradstep_optimizer,
    group: usize,
    lr: *mut f64,
) -> gradstep_status {
    guard(|| {
        let g = group_of(opt, group)?;
        check(lr.cast_const())?;
        // SAFETY: checked; writable.
        unsafe { lr.write(g.group.lr) };
        Ok(())
    })
}

/// Attaches a schedule to a group (replacing any), starting it from the group's
/// current learning rate as torch's constructor does.
///
/// # Safety
/// `opt` a live handle or NULL; `config` NULL or valid for a read.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_attach_schedule(
    opt: *mut gradstep_optimizer,
    group: usize,
    config: *const gradstep_schedule_config,
) -> gradstep_status {
    guard(|| {
        let g = group_of(opt, group)?;
        // SAFETY: `read` checks NULL and alignment.
        let c = unsafe { read(config)? };
        let mut running = match build(&c)? {
            Built::Scheduler(s) => Running::One(s),
            Built::Plateau(p) => Running::Plateau(p),
        };
        let mut state = Group::new(g.group.lr);
        running.start(&mut state)?;
        (g.group, g.schedule) = (state, Some(running));
        Ok(())
    })
}

fn step_schedules(
    opt: *mut gradstep_optimizer,
    metric: Option<f64>,
) -> Result<(), gradstep_status> {
    // SAFETY: looked up in the registry.
    let o = unsafe { registry::get(opt, Kind::Optimizer)? };
    // Step copies, so that a refusal by any group's schedule changes none.
    let mut next: Vec<(Group, Option<Running>)> = Vec::with_capacity(o.groups.len());
    for g in &o.groups {
        let mut group = g.group;
        let mut schedule = g.schedule.clone();
        if let Some(s) = &mut schedule {
            s.step(&mut group, metric)?;
        }
        next.push((group, schedule));
    }
    for (g, (group, schedule)) in o.groups.iter_mut().zip(next) {
        (g.group, g.schedule) = (group, schedule);
    }
    Ok(())
}

/// Steps every group's schedule one epoch (call after [`gradstep_optimizer_step`], as
/// in torch). Groups with a ReduceLROnPlateau schedule need
/// [`gradstep_optimizer_schedule_step_metric`].
///
/// # Safety
/// `opt` a live handle or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_schedule_step(
    opt: *mut gradstep_optimizer,
) -> gradstep_status {
    guard(|| step_schedules(opt, None))
}

/// Steps every group's schedule with the epoch's metric (all of them must be
/// ReduceLROnPlateau).
///
/// # Safety
/// `opt` a live handle or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_schedule_step_metric(
    opt: *mut gradstep_optimizer,
    metric: f64,
) -> gradstep_status {
    guard(|| step_schedules(opt, Some(metric)))
}

/// Frees an optimizer and its state (not the caller's params and grads). NULL is a
/// no-op; a handle that is not live gives `GRADSTEP_INVALID_HANDLE`.
///
/// # Safety
/// No other thread may use `opt` meanwhile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_optimizer_free(opt: *mut gradstep_optimizer) -> gradstep_status {
    guard(|| registry::free(opt, Kind::Optimizer))
}
