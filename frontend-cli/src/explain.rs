//! `gradstep explain RULE`: what a rule does, in plain words. The list of rules, their
//! fields and defaults come from the kernel's registry; the prose lives here, one
//! [`Explanation`] per rule, and a test fails when a registered rule or one of its
//! fields has none (the message says what to add).

use std::fmt::Write as _;

use gradstep::rules::{AnyRule, FieldKind, RuleId, Value};

use crate::Failure;
use crate::functions::num;

/// What `gradstep explain` says about one rule.
pub struct Explanation {
    /// The rule's registry name.
    pub name: &'static str,
    /// One sentence: what the rule does.
    pub summary: &'static str,
    /// The update, one equation a line (g = gradient, θ = parameters, t = step).
    pub equations: &'static str,
    /// What each field that [`COMMON_FIELDS`] does not describe means.
    pub fields: &'static [(&'static str, &'static str)],
    /// Where torch, Keras/TensorFlow and optax differ.
    pub differences: &'static str,
    /// The idea of the source articles (momentum, adaptive scaling, ...) it embodies.
    pub concept: &'static str,
    /// Whether it only works on full-batch gradients (train warns on mini-batches).
    pub full_batch: bool,
}

/// Fields several rules share, described once.
pub const COMMON_FIELDS: &[(&str, &str)] = &[
    ("lr", "η, the learning rate: how far each step moves"),
    (
        "weight_decay",
        "λ: adds λ·θ to the gradient (L2 regularization), pulling weights towards 0",
    ),
    (
        "maximize",
        "climb instead of descend (the gradient's sign is flipped)",
    ),
    (
        "eps",
        "ε: added to the denominator so that a tiny second moment cannot divide by ~0",
    ),
    (
        "beta1",
        "β₁: decay of the running mean of gradients m (the momentum); torch's betas[0]",
    ),
    (
        "beta2",
        "β₂: decay of the running mean of squared gradients v; torch's betas[1]",
    ),
    (
        "amsgrad",
        "use the largest v seen so far (AMSGrad), so the step size never grows back",
    ),
    (
        "decoupled_weight_decay",
        "apply weight decay as θ ← θ·(1 − ηλ) instead of through the gradient (the \
         AdamW way: the decay is not rescaled by the adaptive denominator)",
    ),
];

/// Every rule's explanation; `tests::every_registered_rule_is_explained` checks that
/// the registry has no rule without one.
pub const EXPLANATIONS: &[Explanation] = &[
    Explanation {
        name: "sgd",
        summary: "Stochastic gradient descent: step against the gradient, optionally with \
                  momentum (a running sum of past gradients).",
        equations: "g ← g + λθ\n\
                    b ← μ·b + (1 − τ)·g        (first step: b = g; only if μ > 0)\n\
                    g ← g + μ·b (nesterov)  or  g ← b\n\
                    θ ← θ − η·g",
        fields: &[
            (
                "momentum",
                "μ: how much of the previous step is kept; 0.9 is the usual choice",
            ),
            (
                "dampening",
                "τ: scales the new gradient's share in the momentum buffer",
            ),
            (
                "nesterov",
                "look-ahead momentum: step with g + μ·b instead of b",
            ),
        ],
        differences: "torch puts η outside the buffer (b ← μb + g, θ ← θ − ηb); the source \
                      article and Keras/TF1 put it inside (v ← γv + ηg, θ ← θ − v): the \
                      same path while η is constant, different once a schedule changes η. \
                      Keras' nesterov uses the same look-ahead; optax's sgd(momentum=..) \
                      uses trace(decay=μ) with the same first step.",
        concept: "gradient descent and momentum: on an ill-conditioned valley plain \
                  descent must keep η small for the steep direction and then crawls along \
                  the flat one; momentum averages successive gradients so that the \
                  oscillating components cancel and the steady ones add up \
                  (`gradstep demo`).",
        full_batch: false,
    },
    Explanation {
        name: "adam",
        summary: "Adaptive moments: momentum (a running mean of gradients) divided by the \
                  root of a running mean of squared gradients, per parameter, with bias \
                  correction.",
        equations: "g ← g + λθ              (or θ ← θ(1 − ηλ) with decoupled_weight_decay)\n\
                    m ← β₁m + (1 − β₁)g\n\
                    v ← β₂v + (1 − β₂)g²    (amsgrad: v̂max ← max(v̂max, v))\n\
                    m̂ = m/(1 − β₁ᵗ),  v̂ = v/(1 − β₂ᵗ)\n\
                    θ ← θ − η·m̂/(√v̂ + ε)",
        fields: &[],
        differences: "Keras/TF put ε before the bias correction (θ ← θ − η√(1−β₂ᵗ)/(1−β₁ᵗ)·\
                      m/(√v + ε), the \"epsilon hat\") and default ε to 1e-7 (torch 1e-8); \
                      optax's adam matches torch and adds eps_root (ε inside the root).",
        concept: "momentum plus RMSprop's per-parameter step size: every parameter moves \
                  about η per step whatever its gradient's scale; the bias correction undoes \
                  the zero start of m and v in the first steps.",
        full_batch: false,
    },
    Explanation {
        name: "adamw",
        summary: "Adam with decoupled weight decay: the decay shrinks the weights directly \
                  instead of passing through the adaptive denominator.",
        equations: "θ ← θ·(1 − ηλ)\n\
                    m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²\n\
                    θ ← θ − η·(m/(1 − β₁ᵗ))/(√(v/(1 − β₂ᵗ)) + ε)",
        fields: &[],
        differences: "torch's default λ is 0.01; optax's adamw 1e-4 and Keras' AdamW 0.004. \
                      optax multiplies the decay by the learning rate as torch does; the \
                      original paper (Loshchilov & Hutter) scales it by a schedule \
                      multiplier only.",
        concept: "regularization that behaves the same for every parameter: with Adam's L2 \
                  penalty, weights with large gradients are barely decayed.",
        full_batch: false,
    },
    Explanation {
        name: "adamax",
        summary: "Adam with the infinity norm: the denominator is a decaying maximum of \
                  |g| instead of a root mean square.",
        equations: "m ← β₁m + (1 − β₁)g\n\
                    u ← max(β₂u, |g| + ε)\n\
                    θ ← θ − (η/(1 − β₁ᵗ))·m/u",
        fields: &[],
        differences: "torch adds ε inside the max; Keras and optax add it to the \
                      denominator (m/(u + ε)). torch's default η is 0.002.",
        concept: "adaptive scaling with a norm that is robust to rare huge gradients.",
        full_batch: false,
    },
    Explanation {
        name: "nadam",
        summary: "Adam with Nesterov momentum: the step uses the momentum of the next step \
                  (look-ahead), with a momentum that warms up.",
        equations: "μₜ = β₁(1 − ½·0.96^(tψ)),  μₜ₊₁ likewise\n\
                    m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²,  v̂ = v/(1 − β₂ᵗ)\n\
                    θ ← θ − η(1 − μₜ)/(1 − ∏ᵢ≤ₜμᵢ)·g/(√v̂ + ε)\n\
                    \u{20}     − ημₜ₊₁/(1 − ∏ᵢ≤ₜ₊₁μᵢ)·m/(√v̂ + ε)",
        fields: &[(
            "momentum_decay",
            "ψ: how fast the momentum warms up to β₁ (Dozat's 0.004)",
        )],
        differences: "Keras' Nadam uses the same momentum schedule; optax's nadam uses a \
                      plain Nesterov correction without the μₜ schedule. \
                      decoupled_weight_decay=true gives NAdamW.",
        concept: "Nesterov's look-ahead (seen in the source articles for SGD) applied to \
                  Adam.",
        full_batch: false,
    },
    Explanation {
        name: "radam",
        summary: "Rectified Adam: plain momentum SGD while the variance estimate is too \
                  young to trust, then Adam scaled by a rectification factor.",
        equations: "m, v, m̂ as Adam;  ρ∞ = 2/(1 − β₂) − 1,  ρₜ = ρ∞ − 2tβ₂ᵗ/(1 − β₂ᵗ)\n\
                    ρₜ > 5:  rₜ = √((ρₜ−4)(ρₜ−2)ρ∞/((ρ∞−4)(ρ∞−2)ρₜ)),\n\
                    \u{20}        θ ← θ − η·m̂·rₜ·√(1 − β₂ᵗ)/(√v + ε)\n\
                    else:    θ ← θ − η·m̂",
        fields: &[],
        differences: "optax's radam uses the same threshold 5; TensorFlow Addons' \
                      RectifiedAdam adds its own warmup options.",
        concept: "an automatic warmup: Adam's early steps are erratic because v is \
                  estimated from few gradients.",
        full_batch: false,
    },
    Explanation {
        name: "adagrad",
        summary: "Per-parameter step sizes that shrink with the sum of all squared \
                  gradients seen: rare features keep large steps.",
        equations: "η̃ = η/(1 + (t − 1)·lr_decay)\n\
                    s ← s + g²\n\
                    θ ← θ − η̃·g/(√s + ε)",
        fields: &[
            ("lr_decay", "shrinks η as 1/(1 + (t − 1)·lr_decay)"),
            (
                "initial_accumulator_value",
                "the starting value of s (torch 0; Keras and optax 0.1)",
            ),
        ],
        differences: "Keras and optax start the accumulator at 0.1 and use ε = 1e-7; \
                      torch starts at 0 with ε = 1e-10, so its first step is about η·sign(g).",
        concept: "adaptive learning rates: the denominator only grows, so steps die out \
                  (RMSprop and Adam replace the sum by a running mean).",
        full_batch: false,
    },
    Explanation {
        name: "adadelta",
        summary: "Adagrad's fix without a learning rate in the units of θ: the step is a \
                  ratio of running RMS of past updates and of gradients.",
        equations: "v ← ρv + (1 − ρ)g²\n\
                    Δ = √(u + ε)/√(v + ε)·g\n\
                    u ← ρu + (1 − ρ)Δ²\n\
                    θ ← θ − η·Δ",
        fields: &[("rho", "ρ: decay of both running means (of g² and of Δ²)")],
        differences: "torch defaults η = 1, ρ = 0.9, ε = 1e-6; Keras η = 0.001, ρ = 0.95, \
                      ε = 1e-7; optax ρ = 0.9, ε = 1e-6.",
        concept: "adaptive scaling with units that match: Δ has the units of θ.",
        full_batch: false,
    },
    Explanation {
        name: "rmsprop",
        summary: "Divide the gradient by the root of a running mean of its square: steps \
                  of about η in every direction, large or small gradients alike.",
        equations: "v ← αv + (1 − α)g²\n\
                    centered: ḡ ← αḡ + (1 − α)g,  d = √(v − ḡ²) + ε;  else d = √v + ε\n\
                    momentum μ > 0: b ← μb + g/d,  θ ← θ − η·b;  else θ ← θ − η·g/d",
        fields: &[
            (
                "alpha",
                "α: decay of the running mean of g² (torch's name; ρ elsewhere)",
            ),
            ("momentum", "μ: momentum on the scaled step"),
            (
                "centered",
                "divide by the variance estimate v − ḡ² instead of the mean square",
            ),
        ],
        differences: "Keras and optax default the decay to 0.9 (torch α = 0.99); Keras' ε \
                      is 1e-7; TF1's RMSProp added ε inside the root.",
        concept: "RMSProp of the source articles: the steep direction (large g²) gets small \
                  steps and the flat one large steps, which is what momentum achieves by \
                  averaging; Adam combines both.",
        full_batch: false,
    },
    Explanation {
        name: "rprop",
        summary: "Resilient backpropagation: only the sign of the gradient counts; each \
                  parameter's step grows while the sign stays and shrinks when it flips.",
        equations: "per element, with the previous gradient g′:\n\
                    g·g′ > 0: s ← min(s·η₊, s_max);   g·g′ < 0: s ← max(s·η₋, s_min), g ← 0\n\
                    θ ← θ − sign(g)·s            (s starts at lr)",
        fields: &[
            (
                "etaminus",
                "η₋: step shrink factor when the gradient's sign flips",
            ),
            ("etaplus", "η₊: step growth factor while the sign holds"),
            ("step_size_min", "the smallest step"),
            ("step_size_max", "the largest step"),
        ],
        differences: "optax's rprop has the same defaults (0.5, 1.2, 1e-6, 50); Keras has \
                      no Rprop. A full-batch method: mini-batch gradients flip sign from \
                      batch to batch, which shrinks every step or makes it erratic.",
        concept: "adaptive step sizes from the sign history alone, without the gradient's \
                  magnitude.",
        full_batch: true,
    },
    Explanation {
        name: "asgd",
        summary: "Averaged SGD: SGD with a decaying step size, keeping a running average \
                  of the iterates (which torch stores but does not return).",
        equations: "ηₜ = lr/(1 + λ·lr·t)^α\n\
                    θ ← θ(1 − λ·ηₜ) − ηₜ·g\n\
                    θ̄ ← θ̄ + (θ − θ̄)·μₜ,  μₜ = 1/max(1, t − t0)",
        fields: &[
            ("lambd", "λ: decay term of the step size (and of θ)"),
            ("alpha", "α: power of the step-size decay"),
            ("t0", "the step from which averaging starts"),
        ],
        differences: "Keras and optax have no ASGD; torch's averaged parameters θ̄ are in \
                      the optimizer state (`ax`), not in the model.",
        concept: "stochastic gradients are noisy; averaging the iterates reduces the noise \
                  of the final answer (Polyak–Ruppert averaging).",
        full_batch: false,
    },
    Explanation {
        name: "adan",
        summary: "Adaptive Nesterov momentum: Adam-style steps whose momentum also follows \
                  how the gradient changes between steps, which is Nesterov's look-ahead \
                  without a second gradient evaluation.",
        equations: "d = g − g₋                     (0 on the first step)\n\
                    m ← m + (1 − β₁)(g − m)\n\
                    n ← n + (1 − β₂)(d − n)\n\
                    v ← β₃v + (1 − β₃)(g + β₂d)²\n\
                    r = √v/√(1 − β₃ᵗ) + ε\n\
                    θ ← θ − η·m/((1 − β₁ᵗ)r) − ηβ₂·n/((1 − β₂ᵗ)r)\n\
                    θ ← θ/(1 + ηλ)                 (proximal weight decay)",
        fields: &[
            (
                "beta1",
                "β₁: memory of the gradient average m (0.98, long: Adan's β's are \
                 1 − the paper's)",
            ),
            (
                "beta2",
                "β₂: memory of the gradient-difference average n, and how much the \
                 difference adds to the squared term",
            ),
            ("beta3", "β₃: memory of the squared term v"),
            (
                "decoupled_weight_decay",
                "multiply θ by 1 − ηλ before the step instead of dividing it by 1 + ηλ \
                 after (the default, proximal form)",
            ),
        ],
        differences: "The reference is pytorch_optimizer.Adan (the paper's code). optax's \
                      adan weights the difference term by 1 − β₂ where the paper's code \
                      uses β₂ (an open upstream fix); gradstep follows the paper. \
                      pytorch_optimizer's max_grad_norm is not a field: clip first.",
        concept: "Nesterov momentum, the way the source article recommends for deep \
                  learning: look ahead along the gradient's change, with Adam's adaptive \
                  scaling and bias correction.",
        full_batch: false,
    },
    Explanation {
        name: "lamb",
        summary: "Layer-wise adaptive moments: Adam's direction plus weight decay, rescaled \
                  per tensor so each layer moves by lr times the size of its own weights \
                  (the trust ratio). Made for very large batches; one call is one tensor.",
        equations: "m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²\n\
                    u = (m/(1 − β₁ᵗ)) / (√(v/(1 − β₂ᵗ)) + ε) + λθ\n\
                    r = ‖θ‖/‖u‖                   (1 if either is 0)\n\
                    θ ← θ − η·r·u",
        fields: &[
            (
                "weight_decay",
                "λ: added to the direction u before the trust ratio (not to the gradient)",
            ),
            (
                "decoupled_weight_decay",
                "shrink θ by 1 − ηλ before the step instead of adding λθ to u \
                 (Keras, pytorch_optimizer)",
            ),
            (
                "no_v_correction",
                "leave v without bias correction and divide the step by 1 − β₁ᵗ after the \
                 trust ratio (pytorch_optimizer): early steps are larger",
            ),
            (
                "clamp_norm",
                "cap ‖θ‖ at 10 in the trust ratio (pytorch_optimizer), so large layers \
                 move no more than a layer of norm 10",
            ),
            ("eps_in_ratio", "r = ‖θ‖/(‖u‖ + ε) (pytorch_optimizer)"),
        ],
        differences: "The reference is optax.lamb. Keras's Lamb is \
                      lamb:eps=1e-7,decoupled_weight_decay; pytorch_optimizer's Lamb is \
                      lamb:decoupled_weight_decay,no_v_correction,clamp_norm,eps_in_ratio \
                      (both checked against recordings).",
        concept: "adaptive learning rate per coordinate (Adam) and per layer (the trust \
                  ratio) together.",
        full_batch: false,
    },
    Explanation {
        name: "rmsprop_bc",
        summary: "RMSprop with Adam's bias correction: the running average of g² is \
                  divided by 1 − αᵗ, so the first steps are not too large.",
        equations: "v ← αv + (1 − α)g²\n\
                    θ ← θ − η·g/(√(v/(1 − αᵗ)) + ε)",
        fields: &[("alpha", "α: decay of the running average of g²")],
        differences: "Bit for bit optax.rmsprop(bias_correction=True, eps_in_sqrt=False); \
                      equal in exact arithmetic to torch.optim.Adam(betas=(0, α)), which \
                      rounds differently. torch's own RMSprop has no bias correction.",
        concept: "bias correction: an average started at 0 underestimates at first; \
                  dividing by 1 − αᵗ removes that start-up bias.",
        full_batch: false,
    },
    Explanation {
        name: "online_rmsprop",
        summary: "RMSprop whose averaging weight 1 − γ/t grows with the step and whose \
                  step size falls like 1/√t (Mukkamala & Hein 2017). With γ = 1 it is \
                  exactly Adagrad.",
        equations: "βₜ = 1 − γ/t\n\
                    v ← βₜv + (1 − βₜ)g²\n\
                    θ ← θ − η·g/(√(t·v) + ε)",
        fields: &[(
            "gamma",
            "γ in (0, 1]: how fast old gradients are forgotten (1 = never: Adagrad)",
        )],
        differences: "No package implements it; gradstep's reference is a small numpy \
                      version of the paper's algorithm (tests/fixtures/mukkamala2017).",
        concept: "an adaptive learning rate with a schedule built in: between Adagrad's \
                  memory of everything and RMSprop's fixed forgetting.",
        full_batch: false,
    },
    Explanation {
        name: "sc_adagrad",
        summary: "Adagrad for strongly convex problems: divides by the sum of squared \
                  gradients itself, not its root, plus a damping that fades as the sum \
                  grows, so steps shrink like 1/t (logarithmic regret).",
        equations: "v ← v + g²\n\
                    θ ← θ − η·g/(v + ξ₂·e^(−ξ₁·v))",
        fields: &[
            ("xi_1", "ξ₁: how fast the damping fades as v grows"),
            ("xi_2", "ξ₂: the damping at the start (v = 0)"),
        ],
        differences: "No package implements it; the reference is a numpy version of the \
                      paper's algorithm. lr must suit the gradient scale (no square root).",
        concept: "adaptive learning rate tuned to strong convexity: 1/t steps instead of \
                  Adagrad's 1/√t.",
        full_batch: false,
    },
    Explanation {
        name: "sc_rmsprop",
        summary: "The strongly convex version of online RMSprop: divides by t·v, the \
                  γ-weighted average times the step, plus the same fading damping. With \
                  γ = 1 it equals SC-Adagrad.",
        equations: "βₜ = 1 − γ/t\n\
                    v ← βₜv + (1 − βₜ)g²\n\
                    θ ← θ − η·g/(t·v + ξ₂·e^(−ξ₁·t·v))",
        fields: &[
            ("gamma", "γ in (0, 1]: how fast old gradients are forgotten"),
            ("xi_1", "ξ₁: how fast the damping fades as t·v grows"),
            ("xi_2", "ξ₂: the damping at the start"),
        ],
        differences: "No package implements it; the reference is a numpy version of the \
                      paper's algorithm.",
        concept: "adaptive learning rate for strongly convex losses, with RMSprop's \
                  forgetting.",
        full_batch: false,
    },
    Explanation {
        name: "proximal",
        summary: "One rule built from the source article's table of optimizer ideas, each \
                  a field: momentum, adaptive step size (AdaGrad, RMSprop, Adam, four \
                  AMSGrads), L1 with exact zeros, three kinds of L2, and greedy (proximal \
                  gradient) or lazy (FTRL) representation. The defaults are plain SGD.",
        equations: "ĝ = momentum(g)           (none, heavy_ball, nesterov, ema)\n\
                    D = adapt(g)              (per-coordinate scale; 1 for none)\n\
                    σₜ = D/η\n\
                    greedy: u = θ − η·ĝ/D,  θ ← sign(u)·max(|u| − ηλ₁/D, 0)\n\
                    lazy:   z ← z + ĝ − (σₜ − σₜ₋₁)·θ\n\
                    \x20       θ = 0 if |z| ≤ λ₁,ₜ, else (sign(z)·λ₁,ₜ − z)/(σₜ + λ₂)",
        fields: &[
            (
                "beta1",
                "β₁: the momentum factor (heavy_ball, nesterov) or the decay of the moving \
                 average (ema)",
            ),
            ("dampening", "τ: heavy-ball dampening, as torch SGD's"),
            (
                "beta2",
                "β₂: decay of the running mean of g² (rmsprop, adam, amsgrad_*)",
            ),
            ("gamma", "γ: online_rmsprop's βₜ = 1 − γ/t"),
            (
                "initial_accumulator_value",
                "where AdaGrad's sum of g² starts",
            ),
            (
                "l1",
                "λ₁: L1 strength; coordinates whose pull is weaker become exactly 0",
            ),
            ("l2", "λ₂: L2 strength, applied as l2_kind says"),
            (
                "momentum",
                "what replaces the gradient: torch SGD's heavy ball or Nesterov, or Adam's \
                 moving average (ema)",
            ),
            (
                "adapt",
                "the per-coordinate step size: AdaGrad, RMSprop, online RMSprop, Adam, or \
                 AMSGrad as torch (post), optax (pre), the paper (raw) or in v itself \
                 (inplace, no extra buffer)",
            ),
            (
                "l2_kind",
                "classic (on the gradient), decoupled (θ shrinks, as AdamW) or proximal \
                 (inside the closed-form step)",
            ),
            (
                "l1_kind",
                "incremental (λ₁,t = t·λ₁, the lazy form's cumulative L1) or fixed (lazy \
                 only)",
            ),
            (
                "representation",
                "greedy: proximal gradient descent on θ; lazy: FTRL, θ solved from the \
                 accumulated z (what gives sparse models)",
            ),
        ],
        differences: "No library has it: it is the source article's generic form. \
                      Configured as SGD, Adagrad, RMSprop, Adam or AMSGrad it equals those \
                      rules bit for bit; lazy AdaGrad equals Keras Ftrl. torch's AMSGrad \
                      applies bias correction after the maximum (post), optax's before (pre).",
        concept: "the article's closing point: these ideas combine freely (FTRL-Proximal \
                  with L1, any momentum, an RMSprop rate with AMSGrad).",
        full_batch: false,
    },
    Explanation {
        name: "ftrl",
        summary: "FTRL-Proximal as in Keras, for sparse linear models: accumulates the \
                  squared gradients and a linear term z, and solves each weight in closed \
                  form, exactly 0 while |z| ≤ l1.",
        equations: "n' = n + g²,  σ = (n'^(−lr_power) − n^(−lr_power))/η\n\
                    z ← z + g − σθ,  n ← n'\n\
                    θ = (sign(z)·l1 − z)/((β + n^(−lr_power))/η + 2·l2)  if |z| > l1, else 0",
        fields: &[
            (
                "lr_power",
                "how the rate shrinks with the accumulator: −0.5 (square root), 0 \
                 (constant) or −1",
            ),
            (
                "initial_accumulator_value",
                "where the sum of g² starts (Keras 0.1)",
            ),
            ("l1", "L1 strength: weights stay exactly 0 while |z| ≤ l1"),
            ("l2", "Keras's L2 strength (doubled in the denominator)"),
            (
                "l2_shrinkage",
                "an L2 penalty added to the gradient that enters z",
            ),
            ("beta", "β: smooths the start of the per-coordinate rate"),
            (
                "single_l2",
                "pytorch_optimizer's denominator: l2 once instead of twice",
            ),
            (
                "sqrt_denominator",
                "pytorch_optimizer's √n in the denominator whatever lr_power is",
            ),
        ],
        differences: "The reference is keras.optimizers.Ftrl. pytorch_optimizer's FTRL is \
                      ftrl:initial_accumulator_value=0,single_l2,sqrt_denominator (checked \
                      against recordings; where every gradient so far was 0 it sets the \
                      weight to 0, as gradstep does); it adds g to z before subtracting σθ \
                      (gradstep keeps Keras's order).",
        concept: "lazy representation (FTRL) versus greedy updates, and proximal L1 that \
                  makes exact zeros: the source article's recipe for sparse models.",
        full_batch: false,
    },
];

/// The explanation of the Lookahead wrapper (`gradstep explain lookahead`): not a
/// registered rule but a composite over any of them, so it is kept apart from
/// [`EXPLANATIONS`]; its `fields` are the composite's options.
pub const LOOKAHEAD: Explanation = Explanation {
    name: "lookahead",
    summary: "Lookahead (Zhang et al. 2019): any rule takes k fast steps, then the \
              params move back part of the way to a slow copy, which then takes their \
              value: k steps forward, one step back.",
    equations: "φ ← θ                     (before the first step: the slow weights)\n\
                θ ← the wrapped rule's step\n\
                every k steps:  θ ← φ + α·(θ − φ),  φ ← θ\n\
                  momentum=reset:    b ← 0       (the rule's momentum_buffer)\n\
                  momentum=pullback: b ← b̃ + α·(b − b̃),  b̃ ← b  (b̃ starts at 0)",
    fields: &[
        ("k", "steps between syncs (default 5)"),
        (
            "alpha",
            "α: the fraction of the way from the slow weights to the fast ones that a \
             sync keeps (default 0.5; 1 keeps the fast weights, 0 the slow ones)",
        ),
        (
            "momentum",
            "what a sync does to the rule's momentum_buffer (SGD's, RMSprop's): none \
             (default), reset to 0, or pullback towards a slow momentum",
        ),
    ],
    differences: "follows pytorch_optimizer.Lookahead 4.1.0 (the same torch.lerp \
                  formulas; its pullback_momentum acts on the state named \
                  momentum_buffer only, so Adam's exp_avg is never reset or pulled back, \
                  here as there). optax.lookahead computes the sync through updates, \
                  θ + (u − (1 − α)(θ + u − φ)), which rounds differently (a few ulps; \
                  both are replayed in the tests), and keeps the fast and slow params in \
                  one pytree instead of the state.",
    concept: "averaging in weight space: the slow weights smooth the fast rule's \
              oscillations (a cheap, large-step form of iterate averaging), which makes \
              the wrapped rule less sensitive to its learning rate.",
    full_batch: false,
};

/// `gradstep explain lookahead`.
fn run_lookahead() -> Result<(), Failure> {
    let e = &LOOKAHEAD;
    let mut text = format!(
        "lookahead (pytorch_optimizer.Lookahead, over any rule)\n{}\n\n",
        e.summary
    );
    text += "Update (g = gradient, θ = parameters, b = momentum_buffer):\n";
    for line in e.equations.lines() {
        let _ = writeln!(text, "  {line}");
    }
    text += "\nOptions, set as lookahead(RULE):k=K,alpha=A,momentum=none|reset|pullback:\n";
    for (field, what) in e.fields {
        let _ = writeln!(text, "  {field:<8}  {what}");
    }
    let _ = writeln!(text, "\nWhere frameworks differ:\n  {}", e.differences);
    let _ = writeln!(text, "\nThe idea:\n  {}", e.concept);
    crate::print(&text)
}

/// The explanation of `name`, if there is one.
pub fn of(name: &str) -> Option<&'static Explanation> {
    EXPLANATIONS.iter().find(|e| e.name == name)
}

/// Whether `rule` only works on full-batch gradients.
pub fn full_batch_only(rule: &AnyRule) -> bool {
    of(rule.name()).is_some_and(|e| e.full_batch)
}

/// The description of `field` of rule `name`: the rule's own, else the common one.
pub fn field_text(name: &str, field: &str) -> Option<&'static str> {
    of(name)
        .and_then(|e| e.fields.iter().find(|(f, _)| *f == field))
        .or_else(|| COMMON_FIELDS.iter().find(|(f, _)| *f == field))
        .map(|(_, text)| *text)
}

/// What is missing for `id` to be explained, as the message a test prints.
pub fn missing(id: RuleId) -> Option<String> {
    let name = id.name();
    let Some(_) = of(name) else {
        let fields: Vec<&str> = id.fields().iter().map(|f| f.name).collect();
        return Some(format!(
            "rule '{name}' (reference {}) has no explanation: add an `Explanation {{ name: \
             \"{name}\", summary, equations, fields, differences, concept, full_batch }}` to \
             EXPLANATIONS in frontend-cli/src/explain.rs, describing in `fields` each of \
             its fields that COMMON_FIELDS does not: {}",
            id.reference(),
            fields
                .iter()
                .filter(|f| !COMMON_FIELDS.iter().any(|(c, _)| c == *f))
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let undescribed: Vec<&str> = id
        .fields()
        .iter()
        .map(|f| f.name)
        .filter(|f| field_text(name, f).is_none())
        .collect();
    (!undescribed.is_empty()).then(|| {
        format!(
            "rule '{name}': fields without a description: {}; add (\"FIELD\", \"what it \
             does\") pairs to its `fields` in EXPLANATIONS in frontend-cli/src/explain.rs",
            undescribed.join(", ")
        )
    })
}

/// `gradstep explain [RULE]`.
pub fn run(rule: Option<&str>) -> Result<(), Failure> {
    let Some(name) = rule else {
        let mut text = String::from("Rules (gradstep explain RULE for the details):\n");
        for &id in RuleId::ALL {
            let summary = of(id.name()).map_or("(not explained yet)", |e| e.summary);
            let _ = writeln!(text, "  {:<9} {summary}", id.name());
        }
        let _ = writeln!(text, "  {:<9} {}", LOOKAHEAD.name, LOOKAHEAD.summary);
        return crate::print(&text);
    };
    if name.trim() == LOOKAHEAD.name {
        return run_lookahead();
    }
    let rule = AnyRule::named(name).map_err(|e| Failure::usage(e.to_string()))?;
    let id = rule.id();
    let e = of(id.name()).ok_or_else(|| {
        Failure::usage(missing(id).unwrap_or_else(|| format!("no explanation of '{name}'")))
    })?;
    let mut text = format!("{} ({})\n{}\n\n", id.name(), id.reference(), e.summary);
    text += "Update (g = gradient, θ = parameters, t = step number from 1):\n";
    for line in e.equations.lines() {
        let _ = writeln!(text, "  {line}");
    }
    text += "\nFields (the reference's defaults), set as --rule ";
    let _ = writeln!(text, "{}:FIELD=VALUE,...:", id.name());
    let width = id.fields().iter().map(|f| f.name.len()).max().unwrap_or(0);
    for field in id.fields() {
        let value = match rule.get(field.name) {
            Some(Value::Number(x)) => num(x),
            Some(Value::Flag(b)) => b.to_string(),
            Some(Value::Choice(c)) => c.to_string(),
            None => String::new(),
        };
        let mut what = field_text(id.name(), field.name).unwrap_or("").to_string();
        if let FieldKind::Choice(names) = field.kind {
            let _ = write!(what, " (one of: {})", names.join(", "));
        }
        let _ = writeln!(
            text,
            "  {:<w$} = {:<6}  {what}",
            field.name,
            value,
            w = width
        );
    }
    if let Some(m) = id.momentum_field() {
        let _ = writeln!(
            text,
            "  (cyclic and onecycle schedules cycle {m} unless cycle_momentum=false)"
        );
    }
    let _ = writeln!(text, "\nWhere frameworks differ:\n  {}", e.differences);
    let _ = writeln!(text, "\nThe idea:\n  {}", e.concept);
    let _ = writeln!(
        text,
        "\nTry: gradstep compare --function rosenbrock --rule {} --rule sgd:lr=0.001,momentum=0.9",
        AnyRule::named(id.name())
            .map(|r| format!("{}:lr={}", id.name(), num(r.lr())))
            .unwrap_or_default()
    );
    crate::print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules are being added to the registry by other people: each needs its prose.
    #[test]
    fn every_registered_rule_is_explained() {
        let missing: Vec<String> = RuleId::ALL.iter().filter_map(|&id| missing(id)).collect();
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }

    #[test]
    fn no_explanation_names_an_unregistered_rule_or_field() {
        for e in EXPLANATIONS {
            let id = RuleId::from_name(e.name)
                .unwrap_or_else(|| panic!("explanation of unknown rule '{}'", e.name));
            for (field, _) in e.fields {
                assert!(
                    id.fields().iter().any(|f| f.name == *field),
                    "{}: no field '{field}'",
                    e.name
                );
            }
        }
    }
}
