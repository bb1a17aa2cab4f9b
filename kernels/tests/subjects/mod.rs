//! The rules under property test: how to draw valid configurations of each rule and
//! how to break each of its hyperparameters. Shared by the test crates (`mod subjects;`).

use gradstep::*;
use proptest::prelude::*;

/// How many cases a property runs: `default`, or `PROPTEST_CASES` when it is set (as
/// proptest's own default does; `ProptestConfig::with_cases` alone would ignore it), so
/// that the test command can run fewer where a case is slow (debug builds, `qemu-aarch64`)
/// and a longer run can ask for more.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// A hyperparameter field: its name, a setter, and values that must be refused.
pub type Field<R> = (&'static str, fn(&mut R, f64), Vec<f64>);

/// A rule under test: how to draw valid configurations and how to break each field.
pub trait Subject: Rule {
    fn arb() -> BoxedStrategy<Self>;
    /// `(field, setter, values that must be refused)`.
    fn fields() -> Vec<Field<Self>>;
}

fn lr() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 1e-4..0.5f64]
}
fn beta() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 0.0..0.9999f64, Just(0.9), Just(0.999)]
}
fn eps() -> impl Strategy<Value = f64> {
    prop_oneof![Just(1e-8), (-10.0..-3.0f64).prop_map(|e| 10f64.powf(e))]
}
fn decay() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 0.0..0.2f64]
}
fn unit() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64]
}

/// Common bad values: NaN and infinities are refused by every numeric field.
fn bad(extra: &[f64]) -> Vec<f64> {
    let mut v = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    v.extend_from_slice(extra);
    v
}

/// The `fields()` table: `fields!(Rule; field: [refused values beyond NaN and ±inf], ...)`.
macro_rules! fields {
    ($t:ty; $($f:ident: [$($v:expr),*]),* $(,)?) => {
        vec![$((stringify!($f), (|r: &mut $t, v: f64| r.$f = v) as fn(&mut $t, f64), bad(&[$($v),*]))),*]
    };
}

impl Subject for Sgd {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            prop_oneof![Just(0.0), 0.0..0.99f64],
            decay(),
            decay(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(lr, momentum, dampening, weight_decay, nesterov, maximize)| {
                    let nesterov = nesterov && momentum > 0.0;
                    let dampening = if nesterov { 0.0 } else { dampening };
                    Sgd {
                        lr,
                        momentum,
                        dampening,
                        weight_decay,
                        nesterov,
                        maximize,
                    }
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(Sgd; lr: [-1e-3], momentum: [-0.5], dampening: [], weight_decay: [-1.0])
    }
}

impl Subject for Adam {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            beta(),
            beta(),
            eps(),
            decay(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    decoupled_weight_decay,
                    amsgrad,
                    maximize,
                )| Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    decoupled_weight_decay,
                    amsgrad,
                    maximize,
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(Adam; lr: [-1e-3], beta1: [1.0, -0.1, 1.5], beta2: [1.0, -0.1], eps: [0.0, -1e-8], weight_decay: [-0.1])
    }
}

impl Subject for AdamW {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            beta(),
            beta(),
            eps(),
            decay(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize)| AdamW {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    amsgrad,
                    maximize,
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(AdamW; lr: [-1e-3], beta1: [1.0, -0.1, 1.5], beta2: [1.0, -0.1], eps: [0.0, -1e-8], weight_decay: [-0.1])
    }
}

impl Subject for Adamax {
    fn arb() -> BoxedStrategy<Self> {
        (lr(), beta(), beta(), eps(), decay(), any::<bool>())
            .prop_map(|(lr, beta1, beta2, eps, weight_decay, maximize)| Adamax {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                maximize,
            })
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(Adamax; lr: [-1e-3], beta1: [1.0, -0.1, 1.5], beta2: [1.0, -0.1], eps: [0.0, -1e-8], weight_decay: [-0.1])
    }
}

impl Subject for NAdam {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            beta(),
            beta(),
            eps(),
            decay(),
            prop_oneof![Just(4e-3), 0.0..1.0f64],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    momentum_decay,
                    decoupled_weight_decay,
                    maximize,
                )| NAdam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    momentum_decay,
                    decoupled_weight_decay,
                    maximize,
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(NAdam; lr: [-1e-3], beta1: [1.0, -0.1, 1.5], beta2: [1.0, -0.1], eps: [0.0, -1e-8], weight_decay: [-0.1], momentum_decay: [-1e-3])
    }
}

impl Subject for RAdam {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            beta(),
            beta(),
            eps(),
            decay(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize)| RAdam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    decoupled_weight_decay,
                    maximize,
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(RAdam; lr: [-1e-3], beta1: [1.0, -0.1, 1.5], beta2: [1.0, -0.1], eps: [0.0, -1e-8], weight_decay: [-0.1])
    }
}

impl Subject for Adagrad {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            decay(),
            decay(),
            prop_oneof![Just(0.0), 0.0..1.0f64],
            eps(),
            any::<bool>(),
        )
            .prop_map(
                |(lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize)| Adagrad {
                    lr,
                    lr_decay,
                    weight_decay,
                    initial_accumulator_value,
                    eps,
                    maximize,
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(Adagrad; lr: [-1.0], lr_decay: [-1.0], weight_decay: [-1.0], initial_accumulator_value: [-0.1], eps: [0.0, -1.0])
    }
}

impl Subject for Adadelta {
    fn arb() -> BoxedStrategy<Self> {
        (
            prop_oneof![Just(1.0), lr()],
            unit(),
            eps(),
            decay(),
            any::<bool>(),
        )
            .prop_map(|(lr, rho, eps, weight_decay, maximize)| Adadelta {
                lr,
                rho,
                eps,
                weight_decay,
                maximize,
            })
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(Adadelta; lr: [-1.0], rho: [1.01, -0.1], eps: [0.0], weight_decay: [-1.0])
    }
}

impl Subject for RmsProp {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            unit(),
            eps(),
            decay(),
            prop_oneof![Just(0.0), 0.0..0.99f64],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(lr, alpha, eps, weight_decay, momentum, centered, maximize)| RmsProp {
                    lr,
                    alpha,
                    eps,
                    weight_decay,
                    momentum,
                    centered,
                    maximize,
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(RmsProp; lr: [-1.0], alpha: [1.5, -0.1], eps: [0.0], weight_decay: [-1.0], momentum: [-0.9])
    }
}

impl Subject for Rprop {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            0.05..0.95f64,
            1.01..3.0f64,
            0.0..1e-3f64,
            1e-3..100.0f64,
            any::<bool>(),
        )
            .prop_map(
                |(lr, etaminus, etaplus, step_size_min, step_size_max, maximize)| Rprop {
                    lr,
                    etaminus,
                    etaplus,
                    step_size_min,
                    step_size_max,
                    maximize,
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(Rprop; lr: [-1.0], etaminus: [0.0, 1.0, 1.5], etaplus: [1.0, 0.5], step_size_min: [-1e-6], step_size_max: [-1.0])
    }
}

impl Subject for Asgd {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            prop_oneof![Just(1e-4), 0.0..0.1f64],
            0.0..1.0f64,
            prop_oneof![Just(1e6), 0.0..5.0f64],
            decay(),
            any::<bool>(),
        )
            .prop_map(|(lr, lambd, alpha, t0, weight_decay, maximize)| Asgd {
                lr,
                lambd,
                alpha,
                t0,
                weight_decay,
                maximize,
            })
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(Asgd; lr: [-1.0], lambd: [-1.0], alpha: [-0.5], t0: [], weight_decay: [-1.0])
    }
}

impl Subject for RmsPropBc {
    fn arb() -> BoxedStrategy<Self> {
        (lr(), beta(), eps(), decay(), any::<bool>())
            .prop_map(|(lr, alpha, eps, weight_decay, maximize)| RmsPropBc {
                lr,
                alpha,
                eps,
                weight_decay,
                maximize,
            })
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(RmsPropBc; lr: [-1.0], alpha: [1.0, -0.1, 1.5], eps: [0.0, -1e-8], weight_decay: [-1.0])
    }
}

fn gamma() -> impl Strategy<Value = f64> {
    prop_oneof![Just(1.0), Just(0.9), 1e-3..=1.0f64]
}

fn xi() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.1), Just(1.0), 1e-3..10.0f64]
}

impl Subject for OnlineRmsProp {
    fn arb() -> BoxedStrategy<Self> {
        (lr(), gamma(), eps(), decay(), any::<bool>())
            .prop_map(|(lr, gamma, eps, weight_decay, maximize)| OnlineRmsProp {
                lr,
                gamma,
                eps,
                weight_decay,
                maximize,
            })
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(OnlineRmsProp; lr: [-1.0], gamma: [0.0, -0.5, 1.01], eps: [0.0, -1e-8], weight_decay: [-1.0])
    }
}

impl Subject for ScAdagrad {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            prop_oneof![Just(0.0), xi()],
            xi(),
            decay(),
            any::<bool>(),
        )
            .prop_map(|(lr, xi_1, xi_2, weight_decay, maximize)| ScAdagrad {
                lr,
                xi_1,
                xi_2,
                weight_decay,
                maximize,
            })
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(ScAdagrad; lr: [-1.0], xi_1: [-0.1], xi_2: [0.0, -0.1], weight_decay: [-1.0])
    }
}

impl Subject for ScRmsProp {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            gamma(),
            prop_oneof![Just(0.0), xi()],
            xi(),
            decay(),
            any::<bool>(),
        )
            .prop_map(
                |(lr, gamma, xi_1, xi_2, weight_decay, maximize)| ScRmsProp {
                    lr,
                    gamma,
                    xi_1,
                    xi_2,
                    weight_decay,
                    maximize,
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(ScRmsProp; lr: [-1.0], gamma: [0.0, -0.5, 1.01], xi_1: [-0.1], xi_2: [0.0, -0.1], weight_decay: [-1.0])
    }
}

impl Subject for Adan {
    fn arb() -> BoxedStrategy<Self> {
        (
            lr(),
            (beta(), beta(), beta()),
            eps(),
            decay(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(
                    lr,
                    (beta1, beta2, beta3),
                    eps,
                    weight_decay,
                    decoupled_weight_decay,
                    maximize,
                )| {
                    Adan {
                        lr,
                        beta1,
                        beta2,
                        beta3,
                        eps,
                        weight_decay,
                        decoupled_weight_decay,
                        maximize,
                    }
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(Adan; lr: [-1e-3], beta1: [1.0, -0.1], beta2: [1.0, -0.1], beta3: [1.0, 1.5], eps: [0.0, -1e-8], weight_decay: [-0.1])
    }
}

impl Subject for Lamb {
    fn arb() -> BoxedStrategy<Self> {
        (
            (lr(), beta(), beta(), eps(), decay()),
            (
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            ),
        )
            .prop_map(
                |(
                    (lr, beta1, beta2, eps, weight_decay),
                    (maximize, decoupled_weight_decay, no_v_correction, clamp_norm, eps_in_ratio),
                )| Lamb {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    maximize,
                    decoupled_weight_decay,
                    no_v_correction,
                    clamp_norm,
                    eps_in_ratio,
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(Lamb; lr: [-1e-3], beta1: [1.0, -0.1], beta2: [1.0, -0.1], eps: [0.0, -1e-8], weight_decay: [-0.1])
    }
}

fn choose<C: rules::Choice>(k: u32) -> C {
    C::from_index(k % C::NAMES.len() as u32).unwrap()
}

impl Subject for Proximal {
    fn arb() -> BoxedStrategy<Self> {
        (
            (
                lr(),
                beta(),
                decay(),
                beta(),
                prop_oneof![Just(1.0), 0.05..=1.0f64],
            ),
            (
                eps(),
                prop_oneof![Just(0.0), 0.0..1.0f64],
                prop_oneof![Just(0.0), 0.0..0.5f64],
                decay(),
            ),
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<bool>(),
            ),
        )
            .prop_map(
                |(
                    (lr, beta1, dampening, beta2, gamma),
                    (eps, s0, l1, l2),
                    (m, a, k2, k1, r, maximize),
                )| {
                    let mut p = Proximal {
                        lr,
                        beta1,
                        dampening,
                        beta2,
                        gamma,
                        eps,
                        initial_accumulator_value: s0,
                        l1,
                        l2,
                        maximize,
                        momentum: choose(m),
                        adapt: choose(a),
                        l2_kind: choose(k2),
                        l1_kind: choose(k1),
                        representation: choose(r),
                    };
                    // Make the drawn choices a valid combination (validate's rules).
                    if p.momentum == MomentumKind::Nesterov {
                        p.dampening = 0.0;
                        if p.beta1 == 0.0 {
                            p.beta1 = 0.5;
                        }
                    }
                    let lazy = p.representation == Representation::Lazy;
                    if lazy && p.lr == 0.0 {
                        p.lr = 0.01;
                    }
                    if !lazy && p.l1_kind == L1Kind::Fixed {
                        p.l1_kind = L1Kind::Incremental;
                    }
                    if lazy && p.l2_kind == L2Kind::Decoupled {
                        p.l2_kind = L2Kind::Proximal;
                    }
                    if lazy
                        && p.momentum != MomentumKind::None
                        && matches!(
                            p.adapt,
                            AdaptKind::MaxPost | AdaptKind::MaxPre | AdaptKind::MaxRaw
                        )
                    {
                        p.adapt = AdaptKind::MaxInplace;
                    }
                    p
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(Proximal; lr: [-1e-3], beta1: [-0.5], dampening: [], beta2: [-0.1, 1.5],
            gamma: [0.0, -0.5, 1.5], eps: [-1e-8], initial_accumulator_value: [-1.0],
            l1: [-1.0], l2: [-1.0])
    }
}

impl Subject for Ftrl {
    fn arb() -> BoxedStrategy<Self> {
        (
            (
                1e-4..0.5f64,
                prop_oneof![Just(-0.5), Just(0.0), Just(-1.0)],
                prop_oneof![Just(0.1), 0.01..1.0f64, Just(0.0)],
            ),
            (
                prop_oneof![Just(0.0), 0.0..0.5f64],
                decay(),
                decay(),
                prop_oneof![Just(0.0), 0.0..1.0f64],
            ),
            (any::<bool>(), any::<bool>(), any::<bool>()),
        )
            .prop_map(
                |(
                    (lr, lr_power, s0),
                    (l1, l2, l2_shrinkage, beta),
                    (single_l2, sqrt_denominator, maximize),
                )| {
                    // From n₀ = 0, sometimes with λ₂ = β = 0 (pytorch_optimizer's
                    // defaults: q = 0 where every gradient so far was 0), where
                    // shrinkage must be 0.
                    let (l2, beta) = if s0 == 0.0 && l1 < 0.25 {
                        (0.0, 0.0)
                    } else {
                        (l2, beta)
                    };
                    let zero_q = s0 == 0.0 && l2 == 0.0 && beta == 0.0;
                    Ftrl {
                        lr,
                        lr_power,
                        initial_accumulator_value: s0,
                        l1,
                        l2,
                        l2_shrinkage: if zero_q { 0.0 } else { l2_shrinkage },
                        beta,
                        single_l2,
                        sqrt_denominator,
                        maximize,
                    }
                },
            )
            .boxed()
    }
    fn fields() -> Vec<Field<Self>> {
        fields!(Ftrl; lr: [0.0, -1e-3], lr_power: [-0.25, 0.5, -2.0],
            initial_accumulator_value: [-1.0], l1: [-1.0], l2: [-1.0], l2_shrinkage: [-1.0],
            beta: [-1.0])
    }
}
