//! The generic proximal method: the seed's closing table (one FTRL-Proximal /
//! proximal-gradient form for every method) as one rule with independent choices.

use super::prelude::Prelude;
use super::registry::{Choice, choice_enum};
use super::{Rule, StepCount, begin_step, lerp, lt, nonzero, powf};
use crate::driver::{Drive, Kernel, Plain};
use crate::error::{Error, check, require};
use crate::lanes::{Divisor, Lanes, Lerp};
use crate::power::Powers;
use crate::real::Real;

choice_enum! {
    /// The momentum of [`Proximal`]: what takes the gradient's place (ĝ).
    pub enum MomentumKind {
        /// ĝ = g.
        None = 0 => "none",
        /// torch SGD's heavy ball: b ← g at t = 1, then b ← μb + (1 − τ)g; ĝ = b.
        HeavyBall = 1 => "heavy_ball",
        /// torch SGD's Nesterov form: b as heavy ball; ĝ = g + μb (needs μ > 0, τ = 0).
        Nesterov = 2 => "nesterov",
        /// The seed's (and Adam's) moving average from 0: m ← m + (1 − β₁)(g − m);
        /// ĝ = m, divided by 1 − β₁ᵗ when `adapt` corrects bias.
        Ema = 3 => "ema",
    }
}

choice_enum! {
    /// The adaptive learning rate of [`Proximal`]: the per-coordinate denominator D.
    /// (The variants are named by what they keep, not by the rules they come from,
    /// so that this file names no other rule's type; their names are the rules'.)
    pub enum AdaptKind {
        /// D = 1: one learning rate for every coordinate.
        None = 0 => "none",
        /// AdaGrad: s ← s + g² (from s₀); D = √s + ε.
        Accumulated = 1 => "adagrad",
        /// RMSprop: v ← β₂v + (1 − β₂)g²; D = √v + ε.
        Average = 2 => "rmsprop",
        /// Online RMSprop: v ← βₜv + (1 − βₜ)g² with βₜ = 1 − γₒ/t; D = √(t·v) + ε.
        OnlineAverage = 3 => "online_rmsprop",
        /// Adam's: v as RMSprop; D = √v/√(1 − β₂ᵗ) + ε.
        Corrected = 4 => "adam",
        /// AMSGrad as torch: v̂ ← max(v̂, v) on the raw v, then D = √v̂/√(1 − β₂ᵗ) + ε.
        MaxPost = 5 => "amsgrad_post",
        /// AMSGrad as optax: v̂ ← max(v̂, v/(1 − β₂ᵗ)); D = √v̂ + ε.
        MaxPre = 6 => "amsgrad_pre",
        /// AMSGrad as Reddi et al.: v̂ ← max(v̂, v); D = √v̂ + ε; no bias correction.
        MaxRaw = 7 => "amsgrad_raw",
        /// AMSGrad without the extra buffer: v ← max(v, β₂v + (1 − β₂)g²);
        /// D = √v/√(1 − β₂ᵗ) + ε.
        MaxInplace = 8 => "amsgrad_inplace",
    }
}

choice_enum! {
    /// How [`Proximal`] applies its L2 strength λ₂.
    pub enum L2Kind {
        /// Classic L2 on the gradient: g ← g + λ₂θ (torch's `weight_decay`).
        Classic = 0 => "classic",
        /// Decoupled: θ ← θ·(1 − γλ₂) before the update (AdamW; the seed's λ₂,ₜ = ηₜλ₂).
        /// Greedy only.
        Decoupled = 1 => "decoupled",
        /// ½λ₂‖θ‖² inside the proximal step: λ₂ joins σ₁:ₜ in the closed form's
        /// denominator (FTRL-Proximal's L2).
        Proximal = 2 => "proximal",
    }
}

choice_enum! {
    /// The schedule of [`Proximal`]'s L1 strength λ₁,ₜ (the seed's table).
    pub enum L1Kind {
        /// Incremental: every step adds λ₁ (greedy: λ₁,ₜ = λ₁ per step; lazy: λ₁,ₜ = t·λ₁).
        Incremental = 0 => "incremental",
        /// Fixed: λ₁,ₜ = λ₁ once for the whole sum. Lazy only (the seed's table: absent
        /// for gradient descent).
        Fixed = 1 => "fixed",
    }
}

choice_enum! {
    /// [`Proximal`]'s representation of the iterate.
    pub enum Representation {
        /// Greedy proximal gradient descent: each step starts from θₜ.
        Greedy = 0 => "greedy",
        /// Lazy FTRL: the linear term z accumulates; θ is solved from z in closed form.
        Lazy = 1 => "lazy",
    }
}

/// The generic proximal method of the seed article's closing table (Generic
/// FTRL-Proximal / Generic Mirror (Proximal) Gradient Descent): momentum, adaptive
/// learning rate, L1 and L2 regularisation and the lazy or greedy representation,
/// each an independent field.
///
/// Per step `t = 1, 2, …` with gradient `g` (every operation per coordinate):
///
/// ```text
/// g ← −g                                     if maximize
/// g ← g + λ₂θ                                if l2_kind = classic
/// θ ← θ·(1 − γλ₂)                            if l2_kind = decoupled
/// ĝ  from the momentum choice   (MomentumKind; ema's m is divided by 1 − β₁ᵗ
///                                 through γₜ when adapt is adam, amsgrad_post,
///                                 amsgrad_pre or amsgrad_inplace)
/// D  from the adapt choice      (AdaptKind, fed with g, not ĝ; D = 1 for none)
/// γₜ = γ/(1 − β₁ᵗ) with ema momentum and a bias-corrected adapt, else γ
/// σ₁:ₜ = D/γₜ                               (the seed's "Связь": σ₁:ₜ = 1/ηₜ)
///
/// greedy:  u = θ − γₜ·ĝ/D                    (computed as θ + (−γₜ·ĝ)/D, as torch)
///          u ← sign(u)·max(|u| − γₜλ₁/D, 0)   if λ₁ ≠ 0 (exact zeros)
///          θ ← u / (1 + γₜλ₂/D)               if l2_kind = proximal and λ₂ ≠ 0
/// lazy:    z ← z + (ĝ − (σ₁:ₜ − σ₁:ₜ₋₁)·θ)
///          θ ← 0                                        if |z| ≤ λ₁,ₜ
///          θ ← (sign(z)·λ₁,ₜ − z)/(σ₁:ₜ + λ₂)           otherwise (λ₂ only with proximal)
///          λ₁,ₜ = t·λ₁ (incremental) or λ₁ (fixed);
///          σ₁:₀ = (√s₀ + ε)/γ for adagrad, 0 otherwise; with γₜ = γₜ₋₁ the
///          difference is computed as (Dₜ − Dₜ₋₁)/γ (Keras's form).
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 1e-3 | finite, ≥ 0; > 0 when lazy |
/// | μ, β₁ | `beta1` | 0.9 | finite, ≥ 0; nesterov > 0; ema < 1 |
/// | τ | `dampening` | 0 | finite; 0 with nesterov |
/// | β₂ | `beta2` | 0.999 | [0, 1]; < 1 with a bias-corrected adapt |
/// | γₒ | `gamma` | 1 | (0, 1] (online_rmsprop) |
/// | ε | `eps` | 1e-8 | finite, ≥ 0; > 0 unless adapt is none, or adagrad with s₀ > 0 |
/// | s₀ | `initial_accumulator_value` | 0 | finite, ≥ 0 (adagrad) |
///
/// Every field is checked whatever the choices (a field a choice does not use must still
/// be in range), so that changing a choice never makes a stored configuration invalid
/// except through the rules the choices add.
/// | λ₁ | `l1` | 0 | finite, ≥ 0 |
/// | λ₂ | `l2` | 0 | finite, ≥ 0 |
/// | | `maximize` | false | |
/// | | `momentum` | none | [`MomentumKind`] |
/// | | `adapt` | none | [`AdaptKind`] |
/// | | `l2_kind` | classic | [`L2Kind`] |
/// | | `l1_kind` | incremental | [`L1Kind`] |
/// | | `representation` | greedy | [`Representation`] |
///
/// The defaults are plain SGD (torch's `SGD()`): the rule is the sum of its choices.
///
/// State slices, in order, as the choices need them: `momentum_buffer` (heavy_ball,
/// nesterov) or `exp_avg` (ema); `sum` (adagrad) or `exp_avg_sq` (the others);
/// `max_exp_avg_sq` (amsgrad_post, amsgrad_pre, amsgrad_raw); `z` (lazy). All start at
/// 0 except `sum` (s₀). Scalar state: the step counter.
///
/// Refused, with [`Error::InvalidHyperparameter`] naming the field and why: `lr = 0`
/// with the lazy representation (σ₁:ₜ = D/γ); `l1_kind = fixed` with the greedy
/// representation (the seed's table has no greedy form of it);
/// `l2_kind = decoupled` with the lazy one (decay of θ has no place in a z that
/// accumulates; use classic or proximal); lazy with momentum and an AMSGrad that
/// keeps a separate maximum (four state slices; at most 3: `amsgrad_inplace` needs
/// none); `nesterov` with μ = 0 or τ ≠ 0 (as torch).
///
/// ## The seed's table, row by row
///
/// | row | fields |
/// |---|---|
/// | Generic FTRL-Proximal | `representation = lazy` |
/// | Generic Mirror (Proximal) Gradient Descent | `representation = greedy` |
/// | Momentum: ĝₜ = mₜ = γmₜ₋₁ + (1 − γ)gₜ, "does not affect adaptive v" | `momentum = ema`, `beta1` = the table's γ (adapt is fed g); torch's forms: `heavy_ball`, `nesterov` |
/// | Constant learning rate: σ₁ = 1/η, σₜ = 0 | `adapt = none`, `lr` = η |
/// | Decreasing per-coordinate-free rate σₜ = 1/ηₜ − 1/ηₜ₋₁ | `adapt = none` with `lr` set per step (a schedule) |
/// | Generic adaptive rate σₜ = √vₜ/α − √vₜ₋₁/α | `adapt` ≠ none; `lr` = α; D = √v (+ ε) |
/// | Adaptive rate with scheduler S(α, t) (Adam: α√(1 − β₂ᵗ)/(1 − β₁ᵗ)) | `adapt = adam` (√(1 − β₂ᵗ) in D), `momentum = ema` (1 − β₁ᵗ in γₜ) |
/// | AdaGrad: vₜ = Σ g² | `adapt = adagrad` |
/// | RMSprop: vₜ = βvₜ₋₁ + (1 − β)g² | `adapt = rmsprop`, `beta2` = β |
/// | Online RMSprop: βₜ = 1 − γ/t | `adapt = online_rmsprop`, `gamma` = γ |
/// | Adam: vₜ = (βvₜ₋₁ + (1 − β)g²)/(1 − βᵗ) | `adapt = adam` |
/// | AMSgrad: vₜ = max(vₜ₋₁, βvₜ₋₁ + (1 − β)g²) | `adapt = amsgrad_inplace` (the row's own form, kept in v); with a separate maximum: `amsgrad_post` (torch), `amsgrad_pre` (optax), `amsgrad_raw` (Reddi et al.) |
/// | RAdam ("many letters") | not a choice here: [`RAdam`](crate::RAdam) |
/// | Classic L2: λ₂,ₜ = λ₂ | `l2_kind = classic` (greedy: on the gradient); `proximal` puts λ₂ in the closed form |
/// | Decoupled L2: λ₂,ₜ = ηₜλ₂ | `l2_kind = decoupled` (greedy only) |
/// | Incremental L1: lazy λ₁,ₜ = tλ₁, greedy λ₁,ₜ = λ₁ | `l1_kind = incremental` |
/// | Fixed L1: lazy λ₁,ₜ = λ₁, greedy absent | `l1_kind = fixed` (lazy only) |
///
/// Not here: the seed's "SquareIncremental" L1 and its L1/2 regulariser. All the seed
/// (001, the handbook's optimization chapter) says of them is, in its summary list
/// (translated from the Russian):
///
/// > L1 regularisation in FTRL-Proximal: Incremental/Fixed/SquareIncremental. All three
/// > have different properties and different areas of application. Fixed is the best
/// > for selecting sparse features/embeddings.
///
/// > L1/2 regulariser for selecting embeddings or choosing the dimension automatically.
/// > Can be used as an analogue of FSTR. A very useful approach for sparse neural
/// > networks in recommender systems, for which the adaptive scheme SquareIncremental is
/// > recommended.
///
/// Its table of formulas (above) has rows for Incremental and Fixed only, and the
/// definitions belong to its §15.3 ("Regularisation in online learning"), which the
/// chapter only links to and which is not among the seeds (checked: no other seed
/// mentions either). No exact rule follows from the words alone: "square-incremental"
/// could be λ₁,ₜ = t²λ₁, √t·λ₁ or λ₁ scaled by the accumulated √v (the "adaptive
/// scheme"), and "L1/2" could be the ℓ½ quasi-norm Σ|θᵢ|^½ (whose proximal step is the
/// half-thresholding of Xu et al., 2012) or a mixed ℓ₁/ℓ₂ group norm over embedding rows
/// (which "selecting embeddings or choosing the dimension" suggests, and which is not
/// per-coordinate). gradstep does not guess: an `l1_kind` value is added when a source
/// states the formula.
///
/// ## Equivalences (tested bit for bit)
/// `proximal` with the defaults is [`Sgd`](crate::Sgd); `momentum = heavy_ball` /
/// `nesterov` with `beta1` = μ is SGD with momentum / Nesterov; `adapt = adagrad` is
/// [`Adagrad`](crate::Adagrad) (no `lr_decay`); `adapt = rmsprop` with `beta2` = α is
/// [`RmsProp`](crate::RmsProp) (no momentum, not centered); `momentum = ema, adapt =
/// adam` is [`Adam`](crate::Adam), and with `amsgrad_post` Adam with `amsgrad` (all with
/// `l2_kind` classic or decoupled as their weight decay). `amsgrad_inplace` equals
/// `amsgrad_post` whenever v never decreases.
///
/// ## AMSGrad and bias correction
/// The seed says that standard implementations drop bias correction when AMSGrad is on.
/// That does not hold for torch: `torch.optim.Adam(amsgrad=True)` keeps both
/// corrections and takes the maximum of the raw v before dividing by √(1 − β₂ᵗ)
/// (`amsgrad_post`, the variant the seed's experiments favour). `optax.amsgrad` takes
/// the maximum of the corrected v (`amsgrad_pre`, the variant the seed calls correct);
/// the original paper corrects neither (`amsgrad_raw`). The in-place form keeps no
/// separate maximum: a third less state than Adam with AMSGrad.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Proximal {
    /// Learning rate γ (the table's α or η).
    pub lr: f64,
    /// μ of heavy_ball/nesterov, β₁ of ema.
    pub beta1: f64,
    /// Dampening τ of heavy_ball.
    pub dampening: f64,
    /// β₂ of the moving second moment.
    pub beta2: f64,
    /// γₒ of online RMSprop.
    pub gamma: f64,
    /// ε, added to the root.
    pub eps: f64,
    /// AdaGrad's initial accumulator s₀.
    pub initial_accumulator_value: f64,
    /// L1 strength λ₁.
    pub l1: f64,
    /// L2 strength λ₂.
    pub l2: f64,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
    /// The momentum.
    pub momentum: MomentumKind,
    /// The adaptive learning rate.
    pub adapt: AdaptKind,
    /// How λ₂ applies.
    pub l2_kind: L2Kind,
    /// How λ₁ accumulates.
    pub l1_kind: L1Kind,
    /// Greedy or lazy.
    pub representation: Representation,
}

impl Default for Proximal {
    fn default() -> Self {
        Proximal {
            lr: 1e-3,
            beta1: 0.9,
            dampening: 0.0,
            beta2: 0.999,
            gamma: 1.0,
            eps: 1e-8,
            initial_accumulator_value: 0.0,
            l1: 0.0,
            l2: 0.0,
            maximize: false,
            momentum: MomentumKind::None,
            adapt: AdaptKind::None,
            l2_kind: L2Kind::Classic,
            l1_kind: L1Kind::Incremental,
            representation: Representation::Greedy,
        }
    }
}

/// Which state slices a configuration keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    m: bool,
    v: bool,
    vmax: bool,
    z: bool,
}

impl Proximal {
    fn layout(&self) -> Layout {
        Layout {
            m: self.momentum != MomentumKind::None,
            v: self.adapt != AdaptKind::None,
            vmax: matches!(
                self.adapt,
                AdaptKind::MaxPost | AdaptKind::MaxPre | AdaptKind::MaxRaw
            ),
            z: self.representation == Representation::Lazy,
        }
    }

    /// Whether `adapt` divides by √(1 − β₂ᵗ) (and so ema's m by 1 − β₁ᵗ).
    fn corrects_bias(&self) -> bool {
        matches!(
            self.adapt,
            AdaptKind::Corrected | AdaptKind::MaxPost | AdaptKind::MaxPre | AdaptKind::MaxInplace
        )
    }

    /// γₜ (f64): γ/(1 − β₁ᵗ) with ema momentum and a bias-corrected adapt, else γ.
    fn step_size(&self, t: u64) -> f64 {
        if self.momentum == MomentumKind::Ema && self.corrects_bias() {
            self.lr / (1.0 - powf(self.beta1, t as f64))
        } else {
            self.lr
        }
    }
}

/// `x` is NaN (the reference keeps a NaN where the kernel's selects do).
#[allow(clippy::eq_op)]
fn is_nan<T: PartialEq + Copy>(x: T) -> bool {
    x != x
}

fn choice_value<C: Choice>(c: C) -> f64 {
    f64::from(c.index())
}

/// The per-step scalars, computed once per step in f64 and rounded to `T`.
#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    prelude: Prelude<T>,
    layout: Layout,
    momentum: MomentumKind,
    adapt: AdaptKind,
    first: bool,
    mu: T,
    one_minus_dampening: T,
    lerp: Lerp<T>,
    beta2: T,
    one_minus_beta2: T,
    bc2: Divisor<T>,
    bc2_sqrt: Divisor<T>,
    bc2_sqrt_prev: Divisor<T>,
    t: T,
    t_prev: T,
    eps: T,
    neg_step: T,
    // Greedy.
    l1_step: T,
    l1_on: bool,
    l2_step: T,
    l2_prox_on: bool,
    // Lazy.
    step: T,
    step_prev: Divisor<T>,
    same_step: bool,
    d0: T,
    l1_t: T,
    l2: T,
}

impl Proximal {
    /// The step's scalars; `powers` caches β₁ᵗ and β₂ᵗ between steps.
    ///
    /// Each group of scalars is computed only where the configuration uses it (the
    /// others are placeholders the kernels never read): the defaults (SGD) use the step
    /// size alone, and computing all of them cost the Cortex-M4F, which has no
    /// double-precision unit, about 1 000 instructions a step in library calls, and an
    /// x86-64 1K step with SSE2's 16 registers several nanoseconds in spills.
    fn coeffs<T: Real>(&self, t: u64, powers: &mut Powers) -> Coeffs<T> {
        let lazy = self.representation == Representation::Lazy;
        let heavy = matches!(
            self.momentum,
            MomentumKind::HeavyBall | MomentumKind::Nesterov
        );
        let ema = self.momentum == MomentumKind::Ema;
        let adaptive = self.adapt != AdaptKind::None;
        let online = self.adapt == AdaptKind::OnlineAverage;
        // The adapts that average g² into v (all but none and accumulated).
        let averages = adaptive && self.adapt != AdaptKind::Accumulated;
        let (beta2, one_minus_beta2) = if online {
            (1.0 - self.gamma / t as f64, self.gamma / t as f64)
        } else if averages {
            (self.beta2, 1.0 - self.beta2)
        } else {
            (0.0, 0.0)
        };
        // The powers β^t only where a choice uses them, and from the step counter's
        // cache as Adam takes them (the same values as `powf`): correctly rounded powers
        // computed afresh every step cost a 4K-parameter step on x86-64 more than its
        // element loop, and the Cortex-M4F thousands of instructions.
        let corrected = self.corrects_bias();
        let bc2 = if corrected {
            1.0 - powers.pow(1, self.beta2, t)
        } else {
            1.0
        };
        let bc2_sqrt = if corrected { powf(bc2, 0.5) } else { 1.0 };
        let bc2_sqrt_prev = if corrected && lazy {
            powf(1.0 - powf(self.beta2, (t - 1) as f64), 0.5)
        } else {
            1.0
        };
        let step = if ema && corrected {
            self.lr / (1.0 - powers.pow(0, self.beta1, t))
        } else {
            self.lr
        };
        let step_prev = if t > 1 && lazy {
            self.step_size(t - 1)
        } else {
            step
        };
        let l1_on = nonzero(self.l1);
        let l2_prox_on = self.l2_kind == L2Kind::Proximal && nonzero(self.l2);
        let l1_t = match self.l1_kind {
            _ if !lazy => 0.0,
            L1Kind::Incremental => t as f64 * self.l1,
            L1Kind::Fixed => self.l1,
        };
        // σ₁:₀·γ: the denominator of AdaGrad's initial accumulator, 0 for the others.
        let d0 = if self.adapt == AdaptKind::Accumulated {
            Lanes::sqrt_abs(T::from_f64(self.initial_accumulator_value)) + T::from_f64(self.eps)
        } else {
            T::ZERO
        };
        let f = |on: bool, x: f64| if on { T::from_f64(x) } else { T::ZERO };
        Coeffs {
            prelude: Prelude::new(
                self.maximize,
                if self.l2_kind == L2Kind::Proximal {
                    0.0
                } else {
                    self.l2
                },
                self.l2_kind == L2Kind::Decoupled,
                self.lr,
            ),
            layout: self.layout(),
            momentum: self.momentum,
            adapt: self.adapt,
            first: t == 1,
            mu: f(heavy, self.beta1),
            one_minus_dampening: f(heavy, 1.0 - self.dampening),
            lerp: Lerp::new(if ema { 1.0 - self.beta1 } else { 0.0 }),
            beta2: f(averages, beta2),
            one_minus_beta2: f(averages, one_minus_beta2),
            bc2: Divisor::new(T::from_f64(bc2)),
            bc2_sqrt: Divisor::new(T::from_f64(bc2_sqrt)),
            bc2_sqrt_prev: Divisor::new(T::from_f64(bc2_sqrt_prev)),
            t: f(online, t as f64),
            t_prev: f(online && lazy, (t - 1) as f64),
            eps: f(adaptive, self.eps),
            neg_step: f(!lazy, -step),
            l1_step: f(!lazy && l1_on, step * self.l1),
            l1_on,
            l2_step: f(!lazy && l2_prox_on, step * self.l2),
            l2_prox_on,
            step: f(lazy, step),
            step_prev: Divisor::new(if lazy { T::from_f64(step_prev) } else { T::ONE }),
            same_step: !lazy || t == 1 || step == step_prev,
            d0,
            l1_t: T::from_f64(l1_t),
            l2: f(lazy && self.l2_kind == L2Kind::Proximal, self.l2),
        }
    }
}

/// `0` where `keep` is false, `x` elsewhere, and NaN stays NaN (divergence shows).
#[inline(always)]
fn zero_unless<V: Lanes>(keep: V::Mask, x: V) -> V {
    let r = V::select(keep, x, V::splat(<V::Scalar as Real>::ZERO));
    V::select(x.eq(x), r, x)
}

impl<T: Real> Coeffs<T> {
    /// The adaptive denominator of the state before this step (lazy only), for σ₁:ₜ₋₁.
    #[inline(always)]
    fn previous_d<V: Lanes<Scalar = T>>(&self, v: V, vmax: Option<V>) -> V {
        let eps = V::splat(self.eps);
        match self.adapt {
            AdaptKind::None => V::splat(T::ONE),
            AdaptKind::Accumulated | AdaptKind::Average => v.sqrt_abs() + eps,
            AdaptKind::OnlineAverage => (v * V::splat(self.t_prev)).sqrt_abs() + eps,
            AdaptKind::Corrected | AdaptKind::MaxInplace => {
                v.sqrt_abs_div_by(self.bc2_sqrt_prev) + eps
            }
            AdaptKind::MaxPost => vmax.unwrap_or(v).sqrt_abs_div_by(self.bc2_sqrt_prev) + eps,
            AdaptKind::MaxPre | AdaptKind::MaxRaw => vmax.unwrap_or(v).sqrt_abs() + eps,
        }
    }

    /// The element update. With `PLAIN` ([`Coeffs::plain_shape`] is `Some(SHAPE)`) the
    /// choices are the constants `SHAPE` names, and the options that shape excludes
    /// (prelude, L1, proximal L2, lazy, the first heavy-ball step) vanish.
    #[inline(always)]
    fn update<V: Lanes<Scalar = T>, const PLAIN: bool, const SHAPE: u8>(
        &self,
        p: &mut V,
        g: V,
        m: Option<&mut V>,
        v: Option<&mut V>,
        vmax: Option<&mut V>,
        z: Option<&mut V>,
    ) {
        let (momentum, adapt) = if PLAIN {
            (momentum_of(SHAPE), adapt_of(SHAPE))
        } else {
            (self.momentum, self.adapt)
        };
        let first = !PLAIN && self.first;
        let theta = *p;
        let g = if PLAIN { g } else { self.prelude.apply(p, g) };
        let ghat = match (momentum, m) {
            (MomentumKind::HeavyBall | MomentumKind::Nesterov, Some(b)) => {
                *b = if first {
                    g
                } else {
                    *b * V::splat(self.mu) + V::splat(self.one_minus_dampening) * g
                };
                if momentum == MomentumKind::Nesterov {
                    g + V::splat(self.mu) * *b
                } else {
                    *b
                }
            }
            (MomentumKind::Ema, Some(m)) => {
                *m = self.lerp.apply::<V, PLAIN>(*m, g);
                *m
            }
            _ => g,
        };
        // The previous σ's denominator, from the state before it changes (lazy only).
        let d_prev = match (&z, &v) {
            _ if first => V::splat(self.d0),
            (Some(_), Some(v)) => self.previous_d(**v, vmax.as_deref().copied()),
            _ => V::splat(T::ONE),
        };
        let eps = V::splat(self.eps);
        let d = match (v, vmax) {
            (Some(v), vmax) => {
                let fresh = || *v * V::splat(self.beta2) + V::splat(self.one_minus_beta2) * g * g;
                match (adapt, vmax) {
                    (AdaptKind::Accumulated, _) => {
                        *v = *v + g * g;
                        Some(v.sqrt_abs() + eps)
                    }
                    (AdaptKind::OnlineAverage, _) => {
                        *v = fresh();
                        Some((*v * V::splat(self.t)).sqrt_abs() + eps)
                    }
                    (AdaptKind::Corrected, _) => {
                        *v = fresh();
                        Some(v.sqrt_abs_div_by(self.bc2_sqrt) + eps)
                    }
                    (AdaptKind::MaxInplace, _) => {
                        *v = v.max(fresh());
                        Some(v.sqrt_abs_div_by(self.bc2_sqrt) + eps)
                    }
                    (AdaptKind::MaxPost, Some(vmax)) => {
                        *v = fresh();
                        *vmax = vmax.max(*v);
                        Some(vmax.sqrt_abs_div_by(self.bc2_sqrt) + eps)
                    }
                    (AdaptKind::MaxPre, Some(vmax)) => {
                        *v = fresh();
                        *vmax = vmax.max(v.div_by(self.bc2));
                        Some(vmax.sqrt_abs() + eps)
                    }
                    (AdaptKind::MaxRaw, Some(vmax)) => {
                        *v = fresh();
                        *vmax = vmax.max(*v);
                        Some(vmax.sqrt_abs() + eps)
                    }
                    _ => {
                        *v = fresh();
                        Some(v.sqrt_abs() + eps)
                    }
                }
            }
            (None, _) => None,
        };
        match z {
            None if PLAIN => {
                *p = match d {
                    Some(d) => *p + V::splat(self.neg_step) * ghat / d,
                    None => *p + V::splat(self.neg_step) * ghat,
                };
            }
            None => {
                let mut u = match d {
                    Some(d) => *p + V::splat(self.neg_step) * ghat / d,
                    None => *p + V::splat(self.neg_step) * ghat,
                };
                if self.l1_on {
                    let thr = match d {
                        Some(d) => V::splat(self.l1_step) / d,
                        None => V::splat(self.l1_step),
                    };
                    let shrunk = V::select(u.gt(V::splat(T::ZERO)), u - thr, u + thr);
                    u = zero_unless(u.abs().gt(thr), shrunk);
                }
                if self.l2_prox_on {
                    let c = match d {
                        Some(d) => V::splat(self.l2_step) / d,
                        None => V::splat(self.l2_step),
                    };
                    u = u / (V::splat(T::ONE) + c);
                }
                *p = u;
            }
            Some(z) => {
                let d = d.unwrap_or(V::splat(T::ONE));
                let step = V::splat(self.step);
                let sigma_t = if self.same_step {
                    (d - d_prev) / step
                } else {
                    d / step - d_prev.div_by(self.step_prev)
                };
                *z = *z + (ghat - sigma_t * theta);
                let q = d / step + V::splat(self.l2);
                let l1 = V::splat(self.l1_t);
                let signed = V::select(z.gt(V::splat(T::ZERO)), l1, -l1);
                *p = zero_unless(z.abs().gt(l1), (signed - *z) / q);
            }
        }
    }
}

impl<T: Real> Kernel<T, 0> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, _: &mut [V; 0]) {
        self.update::<V, false, 0>(p, g, None, None, None, None);
    }
}

impl<T: Real> Kernel<T, 1> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [a]: &mut [V; 1]) {
        let l = self.layout;
        if l.m {
            self.update::<V, false, 0>(p, g, Some(a), None, None, None);
        } else if l.v {
            self.update::<V, false, 0>(p, g, None, Some(a), None, None);
        } else {
            self.update::<V, false, 0>(p, g, None, None, None, Some(a));
        }
    }
}

impl<T: Real> Kernel<T, 2> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [a, b]: &mut [V; 2]) {
        let l = self.layout;
        match (l.m, l.v, l.vmax) {
            (true, true, _) => self.update::<V, false, 0>(p, g, Some(a), Some(b), None, None),
            (true, false, _) => self.update::<V, false, 0>(p, g, Some(a), None, None, Some(b)),
            (false, _, true) => self.update::<V, false, 0>(p, g, None, Some(a), Some(b), None),
            (false, _, false) => self.update::<V, false, 0>(p, g, None, Some(a), None, Some(b)),
        }
    }
}

impl<T: Real> Kernel<T, 3> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [a, b, c]: &mut [V; 3]) {
        let l = self.layout;
        match (l.m, l.vmax) {
            (true, true) => self.update::<V, false, 0>(p, g, Some(a), Some(b), Some(c), None),
            (true, false) => self.update::<V, false, 0>(p, g, Some(a), Some(b), None, Some(c)),
            (false, _) => self.update::<V, false, 0>(p, g, None, Some(a), Some(b), Some(c)),
        }
    }
}

/// The choices of a [`Plain`] shape: `16·momentum + adapt` (their indices).
const fn shape(momentum: MomentumKind, adapt: AdaptKind) -> u8 {
    16 * momentum as u8 + adapt as u8
}

const fn momentum_of(shape: u8) -> MomentumKind {
    match shape / 16 {
        1 => MomentumKind::HeavyBall,
        2 => MomentumKind::Nesterov,
        3 => MomentumKind::Ema,
        _ => MomentumKind::None,
    }
}

const fn adapt_of(shape: u8) -> AdaptKind {
    match shape % 16 {
        1 => AdaptKind::Accumulated,
        2 => AdaptKind::Average,
        3 => AdaptKind::OnlineAverage,
        4 => AdaptKind::Corrected,
        5 => AdaptKind::MaxPost,
        6 => AdaptKind::MaxPre,
        7 => AdaptKind::MaxRaw,
        8 => AdaptKind::MaxInplace,
        _ => AdaptKind::None,
    }
}

/// The shapes with their own instantiation: the configurations that equal SGD (plain,
/// heavy ball, Nesterov), Adagrad, RMSprop and Adam.
const PLAIN: u8 = shape(MomentumKind::None, AdaptKind::None);
const HEAVY_BALL: u8 = shape(MomentumKind::HeavyBall, AdaptKind::None);
const NESTEROV: u8 = shape(MomentumKind::Nesterov, AdaptKind::None);
const ACCUMULATED: u8 = shape(MomentumKind::None, AdaptKind::Accumulated);
const AVERAGE: u8 = shape(MomentumKind::None, AdaptKind::Average);
const EMA_CORRECTED: u8 = shape(MomentumKind::Ema, AdaptKind::Corrected);

impl<T: Real> Coeffs<T> {
    /// The [`Plain`] shape of this step, if its configuration has one: greedy, no
    /// prelude (maximize, classic or decoupled L2), no L1, no proximal L2, not the
    /// first step of a heavy-ball buffer, and ema's lerp in its `a + w·(b − a)` form.
    fn plain_shape(&self) -> Option<u8> {
        let momentum_first = self.first
            && matches!(
                self.momentum,
                MomentumKind::HeavyBall | MomentumKind::Nesterov
            );
        let plain = self.prelude.is_identity()
            && !self.l1_on
            && !self.l2_prox_on
            && !self.layout.z
            && !momentum_first
            && (self.momentum != MomentumKind::Ema || self.lerp.is_small());
        plain.then(|| shape(self.momentum, self.adapt))
    }
}

impl<T: Real, const SHAPE: u8> Kernel<T, 0> for Plain<Coeffs<T>, SHAPE> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, _: &mut [V; 0]) {
        self.0
            .update::<V, true, SHAPE>(p, g, None, None, None, None);
    }
}

impl<T: Real, const SHAPE: u8> Kernel<T, 1> for Plain<Coeffs<T>, SHAPE> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [a]: &mut [V; 1]) {
        if SHAPE / 16 != 0 {
            self.0
                .update::<V, true, SHAPE>(p, g, Some(a), None, None, None);
        } else {
            self.0
                .update::<V, true, SHAPE>(p, g, None, Some(a), None, None);
        }
    }
}

impl<T: Real, const SHAPE: u8> Kernel<T, 2> for Plain<Coeffs<T>, SHAPE> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, [m, v]: &mut [V; 2]) {
        self.0
            .update::<V, true, SHAPE>(p, g, Some(m), Some(v), None, None);
    }
}

/// Slot names by layout: `[momentum kind][adapt slots][lazy]`.
const SLOTS: [[[&[&str]; 2]; 4]; 3] = [
    [
        [&[], &["z"]],
        [&["sum"], &["sum", "z"]],
        [&["exp_avg_sq"], &["exp_avg_sq", "z"]],
        [
            &["exp_avg_sq", "max_exp_avg_sq"],
            &["exp_avg_sq", "max_exp_avg_sq", "z"],
        ],
    ],
    [
        [&["momentum_buffer"], &["momentum_buffer", "z"]],
        [
            &["momentum_buffer", "sum"],
            &["momentum_buffer", "sum", "z"],
        ],
        [
            &["momentum_buffer", "exp_avg_sq"],
            &["momentum_buffer", "exp_avg_sq", "z"],
        ],
        [
            &["momentum_buffer", "exp_avg_sq", "max_exp_avg_sq"],
            &["momentum_buffer", "exp_avg_sq", "max_exp_avg_sq", "z"],
        ],
    ],
    [
        [&["exp_avg"], &["exp_avg", "z"]],
        [&["exp_avg", "sum"], &["exp_avg", "sum", "z"]],
        [&["exp_avg", "exp_avg_sq"], &["exp_avg", "exp_avg_sq", "z"]],
        [
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "z"],
        ],
    ],
];

impl Rule for Proximal {
    type Scalars = StepCount;
    const NAME: &'static str = "proximal";

    fn validate(&self) -> Result<(), Error> {
        // Every field is checked whatever the choices, so that a configuration stays
        // valid when a choice changes; then what the choices add.
        check::non_negative("lr", self.lr)?;
        check::non_negative("beta1", self.beta1)?;
        check::finite("dampening", self.dampening)?;
        check::unit_closed("beta2", self.beta2)?;
        check::unit_positive("gamma", self.gamma)?;
        check::non_negative("eps", self.eps)?;
        check::non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        match self.momentum {
            MomentumKind::None | MomentumKind::HeavyBall => {}
            MomentumKind::Nesterov => {
                require(
                    lt(0.0, self.beta1),
                    "beta1",
                    self.beta1,
                    "nesterov needs momentum beta1 > 0",
                )?;
                require(
                    !nonzero(self.dampening),
                    "dampening",
                    self.dampening,
                    "nesterov needs dampening = 0",
                )?;
            }
            MomentumKind::Ema => check::unit_open("beta1", self.beta1)?,
        }
        if self.corrects_bias() {
            check::unit_open("beta2", self.beta2)?;
        }
        let root_can_vanish = match self.adapt {
            AdaptKind::None => false,
            AdaptKind::Accumulated => !nonzero(self.initial_accumulator_value),
            _ => true,
        };
        if root_can_vanish {
            require(
                lt(0.0, self.eps),
                "eps",
                self.eps,
                "must be > 0 (eps = 0 only with adagrad and initial_accumulator_value > 0)",
            )?;
        }
        check::non_negative("l1", self.l1)?;
        check::non_negative("l2", self.l2)?;
        let lazy = self.representation == Representation::Lazy;
        require(
            !lazy || lt(0.0, self.lr),
            "lr",
            self.lr,
            "the lazy representation needs lr > 0 (σ₁:ₜ = D/γ)",
        )?;
        require(
            lazy || self.l1_kind != L1Kind::Fixed,
            "l1_kind",
            choice_value(self.l1_kind),
            "fixed L1 exists only in the lazy (FTRL) representation",
        )?;
        require(
            !lazy || self.l2_kind != L2Kind::Decoupled,
            "l2_kind",
            choice_value(self.l2_kind),
            "decoupled L2 has no lazy form: use classic or proximal",
        )?;
        let l = self.layout();
        require(
            !(l.m && l.vmax && l.z),
            "adapt",
            choice_value(self.adapt),
            "lazy with momentum and a separate AMSGrad maximum needs 4 state slices \
             (at most 3): use amsgrad_inplace",
        )
    }

    fn slot_names(&self) -> &'static [&'static str] {
        let l = self.layout();
        let m = match self.momentum {
            MomentumKind::None => 0,
            MomentumKind::HeavyBall | MomentumKind::Nesterov => 1,
            MomentumKind::Ema => 2,
        };
        let a = match (l.v, l.vmax, self.adapt) {
            (false, _, _) => 0,
            (true, false, AdaptKind::Accumulated) => 1,
            (true, false, _) => 2,
            (true, true, _) => 3,
        };
        SLOTS[m][a][usize::from(l.z)]
    }

    fn run<T: Real, D: Drive<T>>(&self, scalars: &mut StepCount, t: u64, drive: D) -> D::Out {
        let c = self.coeffs::<T>(t, &mut scalars.powers);
        let s0 = T::from_f64(self.initial_accumulator_value);
        let mut init = [T::ZERO; 3];
        if self.adapt == AdaptKind::Accumulated {
            init[usize::from(self.layout().m)] = s0;
        }
        // One instantiation per common configuration, picked once per step; the
        // general kernel (every choice a runtime flag) for the rest.
        match c.plain_shape() {
            Some(PLAIN) => return drive.run::<0, _>(&Plain::<_, PLAIN>(c), None),
            Some(HEAVY_BALL) => return drive.run::<1, _>(&Plain::<_, HEAVY_BALL>(c), None),
            Some(NESTEROV) => return drive.run::<1, _>(&Plain::<_, NESTEROV>(c), None),
            Some(ACCUMULATED) => {
                return drive.run::<1, _>(&Plain::<_, ACCUMULATED>(c), Some([init[0]]));
            }
            Some(AVERAGE) => return drive.run::<1, _>(&Plain::<_, AVERAGE>(c), Some([init[0]])),
            Some(EMA_CORRECTED) => {
                return drive.run::<2, _>(&Plain::<_, EMA_CORRECTED>(c), Some([init[0], init[1]]));
            }
            _ => {}
        }
        match self.state_slots() {
            0 => drive.run::<0, _>(&c, None),
            1 => drive.run::<1, _>(&c, Some([init[0]])),
            2 => drive.run::<2, _>(&c, Some([init[0], init[1]])),
            _ => drive.run::<3, _>(&c, Some(init)),
        }
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut StepCount,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
        let names = self.slot_names();
        let slot = |name: &str| names.iter().position(|&n| n == name);
        let m_k = slot("momentum_buffer").or(slot("exp_avg"));
        let v_k = slot("sum").or(slot("exp_avg_sq"));
        let vmax_k = slot("max_exp_avg_sq");
        let z_k = slot("z");
        let (lr, lambda2, lambda1) = (self.lr, self.l2, self.l1);
        let ema_corrected = self.momentum == MomentumKind::Ema
            && matches!(
                self.adapt,
                AdaptKind::Corrected
                    | AdaptKind::MaxPost
                    | AdaptKind::MaxPre
                    | AdaptKind::MaxInplace
            );
        let gamma_at = |s: u64| {
            if ema_corrected {
                lr / (1.0 - powf(self.beta1, s as f64))
            } else {
                lr
            }
        };
        let gamma_t = gamma_at(t);
        let gamma_prev = if t > 1 { gamma_at(t - 1) } else { gamma_t };
        let bias2 = |s: u64| 1.0 - powf(self.beta2, s as f64);
        let (beta, one_minus_beta) = if self.adapt == AdaptKind::OnlineAverage {
            (1.0 - self.gamma / t as f64, self.gamma / t as f64)
        } else {
            (self.beta2, 1.0 - self.beta2)
        };
        let eps = T::from_f64(self.eps);
        // D from a second moment `x` (already the maximum where there is one) at step s.
        let denominator = |x: T, s: u64| -> T {
            match self.adapt {
                AdaptKind::None => T::ONE,
                AdaptKind::OnlineAverage => Lanes::sqrt_abs(x * T::from_f64(s as f64)) + eps,
                AdaptKind::Corrected | AdaptKind::MaxPost | AdaptKind::MaxInplace => {
                    Lanes::sqrt_abs(x) / T::from_f64(powf(bias2(s), 0.5)) + eps
                }
                _ => Lanes::sqrt_abs(x) + eps,
            }
        };
        for i in 0..params.len() {
            if t == 1 {
                state.iter_mut().for_each(|s| s[i] = T::ZERO);
                if let (AdaptKind::Accumulated, Some(k)) = (self.adapt, v_k) {
                    state[k][i] = T::from_f64(self.initial_accumulator_value);
                }
            }
            let theta = params[i];
            let (mut p, mut g) = (params[i], grads[i]);
            if self.maximize {
                g = -g;
            }
            if lambda2 != 0.0 {
                match self.l2_kind {
                    L2Kind::Classic => g = g + T::from_f64(lambda2) * p,
                    L2Kind::Decoupled => p = p * T::from_f64(1.0 - lr * lambda2),
                    L2Kind::Proximal => {}
                }
            }
            let mu = T::from_f64(self.beta1);
            let ghat = match (self.momentum, m_k) {
                (MomentumKind::Ema, Some(k)) => {
                    state[k][i] = lerp(state[k][i], g, 1.0 - self.beta1);
                    state[k][i]
                }
                (MomentumKind::None, _) | (_, None) => g,
                (kind, Some(k)) => {
                    let b = if t == 1 {
                        g
                    } else {
                        state[k][i] * mu + T::from_f64(1.0 - self.dampening) * g
                    };
                    state[k][i] = b;
                    if kind == MomentumKind::Nesterov {
                        g + mu * b
                    } else {
                        b
                    }
                }
            };
            // The second moment before and after this step.
            let old_second = match (vmax_k, v_k) {
                (Some(k), _) | (None, Some(k)) => state[k][i],
                _ => T::ZERO,
            };
            let mut second = T::ONE;
            if let Some(k) = v_k {
                let old = state[k][i];
                let new = if self.adapt == AdaptKind::Accumulated {
                    old + g * g
                } else {
                    old * T::from_f64(beta) + T::from_f64(one_minus_beta) * g * g
                };
                let kept = if self.adapt == AdaptKind::MaxInplace && old > new {
                    old
                } else {
                    new
                };
                state[k][i] = kept;
                second = kept;
                if let Some(j) = vmax_k {
                    let candidate = if self.adapt == AdaptKind::MaxPre {
                        kept / T::from_f64(bias2(t))
                    } else {
                        kept
                    };
                    let max = if state[j][i] > candidate {
                        state[j][i]
                    } else {
                        candidate
                    };
                    state[j][i] = max;
                    second = max;
                }
            }
            let d = denominator(second, t);
            let gt = T::from_f64(gamma_t);
            match z_k {
                None => {
                    let mut u = if self.adapt == AdaptKind::None {
                        p + T::from_f64(-gamma_t) * ghat
                    } else {
                        p + T::from_f64(-gamma_t) * ghat / d
                    };
                    if lambda1 != 0.0 {
                        let c = T::from_f64(gamma_t * lambda1);
                        let thr = if self.adapt == AdaptKind::None {
                            c
                        } else {
                            c / d
                        };
                        u = if is_nan(u) || Lanes::abs(u) > thr {
                            if u > T::ZERO { u - thr } else { u + thr }
                        } else {
                            T::ZERO
                        };
                    }
                    if self.l2_kind == L2Kind::Proximal && lambda2 != 0.0 {
                        let c = T::from_f64(gamma_t * lambda2);
                        let c = if self.adapt == AdaptKind::None {
                            c
                        } else {
                            c / d
                        };
                        u = u / (T::ONE + c);
                    }
                    params[i] = u;
                }
                Some(k) => {
                    // σₜ = σ₁:ₜ − σ₁:ₜ₋₁, with σ₁:₀ = (√s₀ + ε)/γ for AdaGrad, else 0.
                    let d_prev = if t == 1 {
                        if self.adapt == AdaptKind::Accumulated {
                            Lanes::sqrt_abs(T::from_f64(self.initial_accumulator_value)) + eps
                        } else {
                            T::ZERO
                        }
                    } else {
                        denominator(old_second, t - 1)
                    };
                    let sigma_t = if t == 1 || gamma_t == gamma_prev {
                        (d - d_prev) / gt
                    } else {
                        d / gt - d_prev / T::from_f64(gamma_prev)
                    };
                    let zv = state[k][i] + (ghat - sigma_t * theta);
                    state[k][i] = zv;
                    let l1t = T::from_f64(match self.l1_kind {
                        L1Kind::Incremental => t as f64 * lambda1,
                        L1Kind::Fixed => lambda1,
                    });
                    let l2 = T::from_f64(if self.l2_kind == L2Kind::Proximal {
                        lambda2
                    } else {
                        0.0
                    });
                    params[i] = if is_nan(zv) || Lanes::abs(zv) > l1t {
                        let signed = if zv > T::ZERO { l1t } else { -l1t };
                        (signed - zv) / (d / gt + l2)
                    } else {
                        T::ZERO
                    };
                }
            }
        }
        scalars.step = t;
        Ok(())
    }
}
