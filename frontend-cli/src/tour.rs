//! `gradstep tour`: the seed article's ideas, one stop each. Every stop states what the
//! article claims, runs the rules the claim is about on one of the article's test
//! problems (or the data set shipped with gradstep), prints the number it measured and
//! whether it agrees with the claim, and draws one picture, `tour-NAME.svg`.
//!
//! The article is seed 001, chapter 15.4 of the Yandex ML handbook, «Методы оптимизации
//! в Deep Learning»; the quadratic 0.1·x1² + 2·x2² from (−5, −2) with η = 0.4 and
//! γ = 0.5 is the test problem of the momentum article (seed 004, Dive into Deep
//! Learning's momentum section), and seed 000 («Введение в оптимизацию: Momentum,
//! RMSProp, Adam») is quoted for the per-parameter rates. Every number printed is
//! computed by the run, never written into the text: a verdict that no longer holds
//! after a change to a rule says so itself.

use std::fmt::Write as _;
use std::path::Path;

use gradstep::rules::{AnyRule, AnyScalars};

use crate::Failure;
use crate::compare;
use crate::data::{self, Task};
use crate::functions::{self, Function};
use crate::model::{Activation, Head, Model};
use crate::output::{check_writable, write_files};
use crate::plot::{self, Series, Surface};
use crate::rng::{Rng, Stream};
use crate::rules::{self, Spec};
use crate::schedule;
use crate::train;

/// The article every stop cites.
pub const SEED: &str =
    "seed 001 (Yandex ML handbook, ch. 15.4 «Методы оптимизации в Deep Learning»)";

/// One stop of the tour.
pub struct Concept {
    /// The name `--concept` takes; the picture is `tour-NAME.svg`.
    pub name: &'static str,
    /// What it shows, for `--help`.
    pub what: &'static str,
    /// Runs it: the text printed and the picture drawn.
    run: fn() -> Result<(String, String), Failure>,
}

/// The stops, in tour order.
pub const CONCEPTS: [Concept; 7] = [
    Concept {
        name: "adaptive",
        what: "adaptive learning rates: per-coordinate steps, and how fast the rate decays",
        run: adaptive_stop,
    },
    Concept {
        name: "bias-correction",
        what: "bias correction: the size of the first steps with and without it",
        run: bias_stop,
    },
    Concept {
        name: "amsgrad",
        what: "AMSGrad: a per-coordinate rate that never grows, in its four forms",
        run: amsgrad_stop,
    },
    Concept {
        name: "l1",
        what: "proximal L1, greedy and lazy (FTRL): exact zeros on a sparse regression",
        run: l1_stop,
    },
    Concept {
        name: "momentum",
        what: "heavy ball, Nesterov and EMA momentum, full-batch and with gradient noise",
        run: momentum_stop,
    },
    Concept {
        name: "adan",
        what: "Adan vs Adam vs Nesterov SGD on the shipped digits",
        run: adan_stop,
    },
    Concept {
        name: "decay",
        what: "learning-rate decay and warm restarts against a constant rate under noise",
        run: decay_stop,
    },
];

/// What one stop printed and drew.
struct Stop {
    text: String,
    file: String,
    svg: String,
}

/// Runs the tour (or one stop), writes its pictures into `out`, then prints it.
pub fn run(out: &Path, concept: Option<&str>) -> Result<(), Failure> {
    let chosen: Vec<&Concept> = match concept {
        None => CONCEPTS.iter().collect(),
        Some(name) => match CONCEPTS.iter().find(|c| c.name == name) {
            Some(c) => vec![c],
            None => {
                return Err(Failure::usage(format!(
                    "unknown concept '{name}' (concepts: {})",
                    names()
                )));
            }
        },
    };
    let files: Vec<String> = chosen
        .iter()
        .map(|c| format!("tour-{}.svg", c.name))
        .collect();
    let file_refs: Vec<&str> = files.iter().map(String::as_str).collect();
    // The directory is tried before anything runs.
    check_writable(out, &file_refs)?;
    let mut stops = Vec::with_capacity(chosen.len());
    for (concept, file) in chosen.iter().zip(files) {
        let (text, svg) = (concept.run)()?;
        stops.push(Stop { text, file, svg });
    }
    let pictures: Vec<(&str, &str)> = stops
        .iter()
        .map(|s| (s.file.as_str(), s.svg.as_str()))
        .collect();
    let written = write_files(out, &pictures)?;
    let mut text = format!(
        "A tour of the seed's ideas: {} stop{}, each a claim of {SEED}, a run, and what \
         gradstep measured.\n",
        stops.len(),
        if stops.len() == 1 { "" } else { "s" }
    );
    for (i, (s, path)) in stops.iter().zip(&written).enumerate() {
        let _ = write!(text, "\n{}. {}", i + 1, s.text);
        let _ = writeln!(text, "picture: {}", path.display());
    }
    crate::print(&text)
}

/// The stops with what each shows, for `gradstep tour --help`.
pub fn concepts_help() -> String {
    let mut text = String::from("Concepts (--concept NAME), in tour order:\n");
    for c in &CONCEPTS {
        let _ = writeln!(text, "  {:<16} {}", c.name, c.what);
    }
    text
}

/// The concept names, for messages.
pub fn names() -> String {
    CONCEPTS.map(|c| c.name).join(", ")
}

// ---------------------------------------------------------------------------------
// Shared pieces.

/// The rule a spec names (the CLI's own parser and the kernel's checks).
fn rule(spec: &str) -> Result<AnyRule, Failure> {
    let parsed = Spec::parse("rule", spec).map_err(Failure::usage)?;
    rules::from_spec(&parsed).map_err(Failure::usage)
}

/// A rule stepping one f64 parameter vector.
struct Stepper {
    rule: AnyRule,
    scalars: AnyScalars,
    state: Vec<Vec<f64>>,
}

impl Stepper {
    fn new(spec: &str, n: usize) -> Result<Stepper, Failure> {
        let rule = rule(spec)?;
        Ok(Stepper {
            rule,
            scalars: rule.fresh_scalars(),
            state: vec![vec![0.0; n]; rule.state_slots()],
        })
    }

    fn step(&mut self, x: &mut [f64], g: &[f64]) -> Result<(), Failure> {
        let mut slots: Vec<&mut [f64]> = self.state.iter_mut().map(|s| &mut s[..]).collect();
        self.rule
            .step(&mut self.scalars, x, g, &mut slots)
            .map_err(|e| Failure::usage(format!("rule '{}': {e}", self.rule)))
    }
}

/// The quadratic of the momentum article (seed 004): 0.1·x1² + 2·x2² from (−5, −2).
fn quadratic() -> &'static Function {
    functions::by_name("quadratic").expect("the quadratic is a built-in function")
}

/// `steps` steps of `spec` on `function` from its start, with Gaussian gradient noise of
/// `sigma` (seeded; none for 0) and an optional schedule spec.
fn descend(
    spec: &str,
    function: &Function,
    steps: usize,
    sigma: f64,
    seed: u64,
    schedule: Option<&str>,
) -> Result<rules::Run, Failure> {
    let rule = rule(spec)?;
    let schedule = schedule
        .map(|s| {
            let spec = Spec::parse("schedule", s)?;
            schedule::from_spec(&spec, steps as u64)
        })
        .transpose()
        .map_err(Failure::usage)?;
    let mut rng = Rng::new(seed, Stream::Noise);
    let grad = |x: [f64; 2]| {
        let g = (function.grad)(x);
        if sigma == 0.0 {
            g
        } else {
            [g[0] + sigma * rng.normal(), g[1] + sigma * rng.normal()]
        }
    };
    rules::descend(rule, function.start, grad, steps, schedule.as_ref())
        .map_err(|e| Failure::usage(format!("rule '{spec}': {e}")))
}

/// Series over owned point lists, coloured in order.
fn series<'a>(curves: &'a [(String, Vec<[f64; 2]>)]) -> Vec<Series<'a>> {
    curves
        .iter()
        .enumerate()
        .map(|(i, (label, points))| Series {
            label,
            points,
            colour: plot::colour(i),
        })
        .collect()
}

/// The verdict line of a stop.
fn verdict(agrees: bool, how: &str) -> String {
    if agrees {
        format!("verdict: the measurement agrees with the claim: {how}\n")
    } else {
        format!("verdict: the measurement DISAGREES with the claim: {how}\n")
    }
}

/// Geometric mean of `values`.
fn geometric_mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v.ln(), n + 1));
    (sum / n as f64).exp()
}

// ---------------------------------------------------------------------------------
// 1. Adaptive learning rates.

/// The rules of the first-step measurement: one rate for all, and three adaptive ones.
const ADAPTIVE_FIRST: [&str; 4] = [
    "sgd:lr=0.1",
    "adagrad:lr=0.1",
    "rmsprop:lr=0.1",
    "adam:lr=0.1",
];

/// The rules whose effective rate is traced under pure-noise gradients (no momentum,
/// so that the step is −η·g and η = |Δθ|/|g|).
const ADAPTIVE_RATES: [&str; 4] = [
    "adagrad:lr=0.1",
    "rmsprop:lr=0.1",
    "adam:lr=0.1,beta1=0",
    "online_rmsprop:lr=0.1",
];

/// Steps of the rate trace: the windows around t = 100 and t = 10 000 are each a factor
/// 1.25 either side.
const RATE_STEPS: usize = 12_500;

/// What the adaptive stop measured.
pub struct Adaptive {
    /// (rule, |Δx1|, |Δx2|) of the first step on the quadratic from (−5, −2).
    pub first: Vec<(String, f64, f64)>,
    /// (rule, [t, η_t]) under N(0, 1) gradients.
    pub rates: Vec<(String, Vec<[f64; 2]>)>,
    /// (rule, the exponent p of η_t ∝ t^p between t ≈ 100 and t ≈ 10 000).
    pub exponents: Vec<(String, f64)>,
}

/// Measures the adaptive stop.
pub fn adaptive() -> Result<Adaptive, Failure> {
    let f = quadratic();
    let mut first = Vec::new();
    for spec in ADAPTIVE_FIRST {
        let run = descend(spec, f, 1, 0.0, 0, None)?;
        let d = [
            run.path[1][0] - run.path[0][0],
            run.path[1][1] - run.path[0][1],
        ];
        first.push((spec.to_string(), d[0].abs(), d[1].abs()));
    }
    let mut rates = Vec::new();
    let mut exponents = Vec::new();
    for spec in ADAPTIVE_RATES {
        let mut stepper = Stepper::new(spec, 1)?;
        let mut rng = Rng::new(0, Stream::Noise);
        let mut x = [0.0];
        let mut trace = Vec::with_capacity(RATE_STEPS);
        for t in 1..=RATE_STEPS {
            let g = [rng.normal()];
            let before = x[0];
            stepper.step(&mut x, &g)?;
            trace.push([t as f64, (x[0] - before).abs() / g[0].abs()]);
        }
        let window = |lo: f64, hi: f64| {
            geometric_mean(
                trace
                    .iter()
                    .filter(|p| p[0] >= lo && p[0] <= hi)
                    .map(|p| p[1]),
            )
        };
        let early = window(80.0, 125.0);
        let late = window(8_000.0, 12_500.0);
        exponents.push((spec.to_string(), (late / early).log10() / 2.0));
        rates.push((spec.to_string(), trace));
    }
    Ok(Adaptive {
        first,
        rates,
        exponents,
    })
}

fn adaptive_stop() -> Result<(String, String), Failure> {
    let m = adaptive()?;
    let mut t = String::from("Adaptive learning rates\n");
    t += "claim (seed 001, «Собираем все идеи воедино»; seed 000, «RMSProp: адаптивное \
         масштабирование»): an adaptive rate fits the step to the geometry of the problem, \
         per coordinate (\"parameters with large gradients get smaller updates, those with \
         small gradients larger ones\"); and (the closing table) AdaGrad's rate decays like \
         1/√t, Online RMSprop's too, RMSprop's and Adam's stay O(1).\n";
    t += "run 1: one step on 0.1·x1² + 2·x2² from (−5, −2), where ∇f = (−1, −8):\n";
    for (spec, d1, d2) in &m.first {
        let _ = writeln!(
            t,
            "  {spec:<24} |Δx1| = {d1:.6}, |Δx2| = {d2:.6}, ratio {:.4}",
            d1 / d2
        );
    }
    t += &format!(
        "run 2: {RATE_STEPS} steps on N(0, 1) gradients (no momentum), the rate \
         η_t = |Δθ|/|g|; exponent p of η_t ∝ t^p from t ≈ 100 to t ≈ 10 000:\n"
    );
    for (spec, p) in &m.exponents {
        let _ = writeln!(t, "  {spec:<24} p = {p:+.3}");
    }
    let sgd_ratio = m.first[0].1 / m.first[0].2;
    let adaptive_equal = m.first[1..]
        .iter()
        .all(|(_, a, b)| (a / b - 1.0).abs() < 1e-6);
    let p = |i: usize| m.exponents[i].1;
    let decays = (p(0) + 0.5).abs() < 0.1 && (p(3) + 0.5).abs() < 0.1;
    let flat = p(1).abs() < 0.1 && p(2).abs() < 0.1;
    t += &verdict(
        adaptive_equal && decays && flat,
        &format!(
            "SGD's first step is as uneven as the gradient (ratio {sgd_ratio:.3}); the \
             adaptive rules move both coordinates equally (ratio 1 within 1e-6). \
             AdaGrad's and Online RMSprop's rates fall as t^{:.2} and t^{:.2}, RMSprop's \
             and Adam's stay flat (t^{:+.2}, t^{:+.2}).",
            p(0),
            p(3),
            p(1),
            p(2)
        ),
    );
    let svg = plot::log_lines_svg(
        "Effective rate η_t = |Δθ|/|g| under N(0, 1) gradients",
        "step",
        "η_t  (log scale)",
        &series(&m.rates),
    )?;
    Ok((t, svg))
}

// ---------------------------------------------------------------------------------
// 2. Bias correction.

/// (spec, what it is): corrected and uncorrected Adam and RMSprop, lr 0.1, β₂ = 0.999.
const BIAS_RULES: [(&str, &str); 4] = [
    ("adam:lr=0.1", "Adam, both corrections"),
    (
        "proximal:lr=0.1,momentum=ema,adapt=rmsprop",
        "Adam without bias correction",
    ),
    (
        "rmsprop_bc:lr=0.1,alpha=0.999",
        "RMSprop with bias correction",
    ),
    ("proximal:lr=0.1,adapt=rmsprop", "RMSprop without it"),
];

/// Steps of the bias-correction runs.
const BIAS_STEPS: usize = 50;

/// What the bias-correction stop measured.
pub struct Bias {
    /// (spec, description, path).
    pub runs: Vec<(String, String, Vec<[f64; 2]>)>,
}

impl Bias {
    /// The first step of run `i` per coordinate, divided by lr (0.1).
    pub fn first_step(&self, i: usize) -> [f64; 2] {
        let p = &self.runs[i].2;
        [(p[1][0] - p[0][0]) / 0.1, (p[1][1] - p[0][1]) / 0.1]
    }
    /// The longest of the first ten steps of run `i`.
    pub fn longest_early_step(&self, i: usize) -> f64 {
        let p = &self.runs[i].2;
        p.windows(2)
            .take(10)
            .map(|w| (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]))
            .fold(0.0, f64::max)
    }
    /// f at the end of run `i`.
    pub fn final_loss(&self, i: usize) -> f64 {
        let p = &self.runs[i].2;
        (quadratic().f)(p[p.len() - 1])
    }
}

/// Measures the bias-correction stop.
pub fn bias() -> Result<Bias, Failure> {
    let f = quadratic();
    let mut runs = Vec::new();
    for (spec, what) in BIAS_RULES {
        let run = descend(spec, f, BIAS_STEPS, 0.0, 0, None)?;
        runs.push((spec.to_string(), what.to_string(), run.path));
    }
    Ok(Bias { runs })
}

fn bias_stop() -> Result<(String, String), Failure> {
    let m = bias()?;
    let mut t = String::from("Bias correction\n");
    t += "claim (seed 001, «Adam» → «Мотивация для bias correction»; «Собираем все идеи \
         воедино»): the moving averages start at 0 and are biased by the factor 1 − βᵗ; \
         dividing by it \"is meant to reduce the too-large steps at the start\", it \
         \"stabilises the start\", and RMSprop usually gains from Adam's correction.\n";
    let _ = writeln!(
        t,
        "run: {BIAS_STEPS} steps on 0.1·x1² + 2·x2² from (−5, −2), lr 0.1, β₁ = 0.9, \
         β₂ = 0.999:"
    );
    for (i, (spec, what, _)) in m.runs.iter().enumerate() {
        let [a, b] = m.first_step(i);
        let _ = writeln!(
            t,
            "  {what:<30} first step/lr = ({a:+.4}, {b:+.4}), longest of the first 10 \
             steps {:.3}, f after {BIAS_STEPS} steps {:.3e}   [{spec}]",
            m.longest_early_step(i),
            m.final_loss(i)
        );
    }
    let unit = |i: usize| m.first_step(i).iter().all(|v| (v.abs() - 1.0).abs() < 1e-6);
    let larger = m.longest_early_step(1) > m.longest_early_step(0)
        && m.longest_early_step(3) > m.longest_early_step(2);
    let [u, _] = m.first_step(1);
    let [r, _] = m.first_step(3);
    t += &verdict(
        unit(0) && unit(2) && larger,
        &format!(
            "with both corrections the first step is exactly lr·sign(g) (1 within 1e-6); \
             without them it is (1 − β₁)/√(1 − β₂) = {:.3}·lr for Adam and 1/√(1 − β₂) = \
             {:.2}·lr for RMSprop, and their early steps are longer. After {BIAS_STEPS} \
             steps the corrected runs end at f = {:.2e} (Adam) and {:.2e} (RMSprop), the \
             uncorrected at {:.2e} and {:.2e}{}",
            u.abs(),
            r.abs(),
            m.final_loss(0),
            m.final_loss(2),
            m.final_loss(1),
            m.final_loss(3),
            if m.final_loss(1) < m.final_loss(0) && m.final_loss(3) < m.final_loss(2) {
                ": on this smooth quadratic the long first steps do no harm and even end \
                 lower. What the correction buys is a first step of exactly lr, not speed."
            } else {
                "."
            }
        ),
    );
    let f = quadratic();
    let curves: Vec<(String, Vec<[f64; 2]>)> = m
        .runs
        .iter()
        .map(|(_, what, p)| (what.clone(), p.clone()))
        .collect();
    let levels_label = f.levels_label();
    let surface = Surface {
        f: &f.f,
        levels: f.levels,
        levels_label: &levels_label,
        view: f.view,
        start: f.start,
        minimum: f.minimum.map(|(x, _)| x),
    };
    let svg = plot::trajectories_svg(
        &format!("Bias correction: {BIAS_STEPS} steps on 0.1·x1² + 2·x2², lr 0.1, β₂ = 0.999"),
        &surface,
        &series(&curves),
        true,
    )?;
    Ok((t, svg))
}

// ---------------------------------------------------------------------------------
// 3. AMSGrad.

/// Reddi et al.'s online problem (the article's «AMSgrad» section cites the paper):
/// f_t(x) = 1010·x when t mod 101 = 1, else −10·x, on x ∈ [−1, 1]. The sum over a
/// period is +10·x: the best x is −1.
fn reddi_gradient(t: usize) -> f64 {
    if t % 101 == 1 { 1010.0 } else { -10.0 }
}

/// Steps of the AMSGrad runs (PERIODS periods).
const AMSGRAD_STEPS: usize = 101 * AMSGRAD_PERIODS;
const AMSGRAD_PERIODS: usize = 300;
/// β₂ of every AMSGrad run (the rules' spec says it too).
const AMSGRAD_BETA2: f64 = 0.999;

/// The learning rate of the AMSGrad runs.
const AMSGRAD_LR: f64 = 0.1;
/// The adapt choices: Adam's rate without momentum (so η_t = |Δθ|/|g|), then the four
/// AMSGrads.
const AMSGRAD_ADAPTS: [&str; 5] = [
    "adam",
    "amsgrad_post",
    "amsgrad_pre",
    "amsgrad_raw",
    "amsgrad_inplace",
];

fn amsgrad_spec(adapt: &str) -> String {
    format!("proximal:lr={AMSGRAD_LR},beta2={AMSGRAD_BETA2},adapt={adapt}")
}

/// One AMSGrad run.
pub struct AmsRun {
    /// The spec.
    pub spec: String,
    /// [period, mean x over the period].
    pub path: Vec<[f64; 2]>,
    /// Steps at which η_t > η_{t−1} (relative increase above 1e-9).
    pub increases: usize,
    /// The largest η_t/η_{t−1}.
    pub largest_increase: f64,
    /// Steps at which η_t/√(1 − β₂ᵗ) rose: the rate without the bias factor, α/√v̂.
    pub raw_increases: usize,
    /// Mean x over the last period.
    pub final_x: f64,
}

/// Measures the AMSGrad stop.
pub fn amsgrad() -> Result<Vec<AmsRun>, Failure> {
    let mut runs = Vec::new();
    for adapt in AMSGRAD_ADAPTS {
        let spec = amsgrad_spec(adapt);
        let mut stepper = Stepper::new(&spec, 1)?;
        let mut x = [0.0];
        let mut path = Vec::with_capacity(AMSGRAD_PERIODS);
        let mut period_sum = 0.0;
        let (mut previous, mut previous_raw) = (f64::NAN, f64::NAN);
        let (mut increases, mut raw_increases, mut largest) = (0, 0, 1.0f64);
        for t in 1..=AMSGRAD_STEPS {
            let g = [reddi_gradient(t)];
            let before = x[0];
            stepper.step(&mut x, &g)?;
            // The rate before the projection onto [−1, 1].
            let rate = (x[0] - before).abs() / g[0].abs();
            let raw = rate / (1.0 - AMSGRAD_BETA2.powi(t as i32)).sqrt();
            if t > 1 {
                increases += usize::from(rate > previous * (1.0 + 1e-9));
                raw_increases += usize::from(raw > previous_raw * (1.0 + 1e-9));
                largest = largest.max(rate / previous);
            }
            (previous, previous_raw) = (rate, raw);
            x[0] = x[0].clamp(-1.0, 1.0);
            period_sum += x[0];
            if t % 101 == 0 {
                path.push([(t / 101) as f64, period_sum / 101.0]);
                period_sum = 0.0;
            }
        }
        let final_x = path[path.len() - 1][1];
        runs.push(AmsRun {
            spec,
            path,
            increases,
            largest_increase: largest,
            raw_increases,
            final_x,
        });
    }
    Ok(runs)
}

/// torch's `Adam(amsgrad=True)` (β₁ = 0: no momentum) against `amsgrad_post` on the
/// same problem: the largest |x_torch − x_post| over every step, and torch's first step
/// divided by lr (1 with bias correction, 1/√(1 − β₂) ≈ 31.6 without).
pub fn torch_amsgrad() -> Result<(f64, f64), Failure> {
    let torch_spec = format!("adam:lr={AMSGRAD_LR},beta1=0,beta2={AMSGRAD_BETA2},amsgrad");
    let mut torch = Stepper::new(&torch_spec, 1)?;
    let mut post = Stepper::new(&amsgrad_spec("amsgrad_post"), 1)?;
    let (mut a, mut b) = ([0.0], [0.0]);
    let (mut gap, mut first) = (0.0f64, f64::NAN);
    for t in 1..=AMSGRAD_STEPS {
        let g = [reddi_gradient(t)];
        torch.step(&mut a, &g)?;
        post.step(&mut b, &g)?;
        if t == 1 {
            first = a[0].abs() / AMSGRAD_LR;
        }
        a[0] = a[0].clamp(-1.0, 1.0);
        b[0] = b[0].clamp(-1.0, 1.0);
        gap = gap.max((a[0] - b[0]).abs());
    }
    Ok((gap, first))
}

fn amsgrad_stop() -> Result<(String, String), Failure> {
    let m = amsgrad()?;
    let (torch_gap, torch_first) = torch_amsgrad()?;
    let mut t = String::from("AMSGrad\n");
    t += "claim (seed 001, «Как сломать адаптивные методы», «AMSgrad», «Реализация без \
          дополнительной памяти», «Добавление bias correction»): Adam's and RMSprop's rate \
          α/√v_t grows whenever v_t falls, which breaks convergence even on convex problems \
          (Reddi et al. 2018: for any hyperparameters there is a convex problem where Adam \
          does not converge); AMSGrad's max v̂ = max(v̂, v) keeps it from growing. \
          Pre-correction keeps the max intact (the correct form), post-correction is what \
          helps in experiments, and the max kept in v itself needs no extra memory and \
          \"works just as well\". And: standard implementations (PyTorch named) drop bias \
          correction when AMSGrad is on.\n";
    let _ = writeln!(
        t,
        "run: Reddi et al.'s online problem f_t(x) = 1010·x (t mod 101 = 1), else −10·x, \
         x ∈ [−1, 1] (best x = −1), {AMSGRAD_STEPS} steps from 0, lr {AMSGRAD_LR}, \
         β₂ = {AMSGRAD_BETA2}, no momentum; η_t = |Δx|/|g| before the projection, and \
         η_t/√(1 − β₂ᵗ) = α/√v̂ without the bias factor:"
    );
    for r in &m {
        let _ = writeln!(
            t,
            "  {:<16} η rose at {:>5} steps (at most ×{:.4}), α/√v̂ at {:>5}; mean x over \
             the last period {:+.4}   [{}]",
            r.spec.rsplit('=').next().unwrap_or(""),
            r.increases,
            r.largest_increase,
            r.raw_increases,
            r.final_x,
            r.spec
        );
    }
    let adam = &m[0];
    let amsgrads = &m[1..];
    let never = m[2].increases == 0 && m[3].increases == 0;
    let max_holds = amsgrads.iter().all(|r| r.raw_increases == 0);
    let closer = amsgrads.iter().all(|r| r.final_x < adam.final_x);
    t += &verdict(
        adam.raw_increases > 0 && never && max_holds && closer,
        &format!(
            "Adam's α/√v rose at {} of {AMSGRAD_STEPS} steps; no AMSGrad's α/√v̂ ever rose. \
             Pre-correction and the raw max never let η rise at all; post-correction and \
             the in-place max let it rise by the bias factor √((1 − β₂ᵗ)/(1 − β₂ᵗ⁻¹)) alone \
             (at most ×{:.4}, at t = 2): the seed's point that only pre-correction keeps the \
             max intact. Over the last period Adam's mean x is {:+.3}, the AMSGrads' \
             {:+.3} (post), {:+.3} (pre), {:+.3} (raw), {:+.3} (in place, no extra \
             buffer){}",
            adam.raw_increases,
            m[1].largest_increase.max(m[4].largest_increase),
            adam.final_x,
            m[1].final_x,
            m[2].final_x,
            m[3].final_x,
            m[4].final_x,
            if closer {
                ": every AMSGrad is nearer the optimum −1."
            } else {
                ": NOT every AMSGrad is nearer the optimum −1 than Adam."
            }
        ),
    );
    let _ = writeln!(
        t,
        "torch: Adam(amsgrad=True) with β₁ = 0 moves its first step by {torch_first:.6}·lr \
         and stays within {torch_gap:.1e} of amsgrad_post over all {AMSGRAD_STEPS} steps: \
         torch keeps bias correction with AMSGrad (post-correction), {}",
        if (torch_first - 1.0).abs() < 1e-6 {
            "so the claim that it drops it does NOT hold for torch."
        } else {
            "yet its first step is not lr: check the correction."
        }
    );
    let curves: Vec<(String, Vec<[f64; 2]>)> = m
        .iter()
        .map(|r| {
            let adapt = r.spec.rsplit('=').next().unwrap_or("");
            (format!("adapt={adapt}"), r.path.clone())
        })
        .collect();
    let svg = plot::lines_svg(
        &format!(
            "Reddi et al.'s problem, lr {AMSGRAD_LR}, β₂ = {AMSGRAD_BETA2}: mean x per \
             period (best x = −1)"
        ),
        "period (101 steps)",
        "mean x",
        &series(&curves),
    )?;
    Ok((t, svg))
}

// ---------------------------------------------------------------------------------
// 4. Proximal L1, greedy and lazy.

/// The sparse regression: rows, features, true non-zero weights, noise σ.
const L1_ROWS: usize = 200;
const L1_FEATURES: usize = 40;
const L1_SUPPORT: usize = 5;
const L1_NOISE: f64 = 0.5;
/// Passes over the rows (one row per step, in a seeded random order).
const L1_EPOCHS: usize = 10;
/// λ of the per-row objective ½(x·w − y)² + λ‖w‖₁.
const L1_LAMBDA: f64 = 0.1;

/// A synthetic sparse linear regression: X ~ N(0, 1), the first `L1_SUPPORT` weights
/// ±1…±2, the rest 0, y = X·w + N(0, σ²).
pub struct Regression {
    /// Rows.
    pub x: Vec<Vec<f64>>,
    /// Targets.
    pub y: Vec<f64>,
    /// The true weights.
    pub w: Vec<f64>,
}

/// The sparse regression of the L1 stop (seed 7 of the noise stream).
pub fn regression() -> Regression {
    let mut rng = Rng::new(7, Stream::Noise);
    let w: Vec<f64> = (0..L1_FEATURES)
        .map(|j| {
            if j < L1_SUPPORT {
                let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
                sign * (1.0 + j as f64 / 4.0)
            } else {
                0.0
            }
        })
        .collect();
    let x: Vec<Vec<f64>> = (0..L1_ROWS)
        .map(|_| (0..L1_FEATURES).map(|_| rng.normal()).collect())
        .collect();
    let y = x
        .iter()
        .map(|row| row.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() + L1_NOISE * rng.normal())
        .collect();
    Regression { x, y, w }
}

/// One L1 run.
pub struct L1Run {
    /// What it is.
    pub label: String,
    /// The spec (plus the subgradient, for that run).
    pub spec: String,
    /// Exact zeros among the weights at the end.
    pub zeros: usize,
    /// True non-zero weights that ended non-zero.
    pub kept: usize,
    /// Mean squared error over the rows at the end.
    pub mse: f64,
    /// Mean count of exact zeros over the steps of the last pass.
    pub mean_zeros_last_pass: f64,
    /// [step, exact zeros], every 5th step.
    pub zeros_path: Vec<[f64; 2]>,
}

/// The runs: (label, spec, whether λ·sign(w) is added to the gradient).
fn l1_rules() -> [(&'static str, String, bool); 6] {
    let lam = L1_LAMBDA;
    let total = L1_LAMBDA * (L1_ROWS * L1_EPOCHS) as f64;
    [
        ("no L1", "proximal:lr=0.5,adapt=adagrad".into(), false),
        (
            "L1 as a subgradient λ·sign(w)",
            "proximal:lr=0.5,adapt=adagrad".into(),
            true,
        ),
        (
            "greedy proximal L1",
            format!("proximal:lr=0.5,adapt=adagrad,l1={lam}"),
            false,
        ),
        (
            "lazy FTRL, incremental L1",
            format!("proximal:lr=0.5,adapt=adagrad,representation=lazy,l1={lam}"),
            false,
        ),
        (
            "lazy FTRL, fixed L1",
            format!("proximal:lr=0.5,adapt=adagrad,representation=lazy,l1_kind=fixed,l1={total}"),
            false,
        ),
        ("Keras Ftrl", format!("ftrl:lr=0.5,l1={total}"), false),
    ]
}

/// Measures the L1 stop.
pub fn l1() -> Result<Vec<L1Run>, Failure> {
    let data = regression();
    let mut runs = Vec::new();
    for (label, spec, subgradient) in l1_rules() {
        let mut stepper = Stepper::new(&spec, L1_FEATURES)?;
        let mut w = vec![0.0; L1_FEATURES];
        let mut g = vec![0.0; L1_FEATURES];
        let mut order: Vec<usize> = (0..L1_ROWS).collect();
        let mut rng = Rng::new(0, Stream::Batches);
        let mut zeros_path = Vec::new();
        let (mut step, mut last_pass) = (0usize, 0usize);
        for _ in 0..L1_EPOCHS {
            rng.shuffle(&mut order);
            for &i in &order {
                let row = &data.x[i];
                let residual = row.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() - data.y[i];
                for ((gj, xj), wj) in g.iter_mut().zip(row).zip(&w) {
                    *gj = residual * xj;
                    // sign(w), 0 at 0 (f64::signum(0.0) is 1).
                    if subgradient {
                        *gj += L1_LAMBDA * wj.signum() * f64::from(u8::from(*wj != 0.0));
                    }
                }
                stepper.step(&mut w, &g)?;
                step += 1;
                let zeros = w.iter().filter(|v| **v == 0.0).count();
                if step > L1_ROWS * (L1_EPOCHS - 1) {
                    last_pass += zeros;
                }
                if step % 5 == 0 {
                    zeros_path.push([step as f64, zeros as f64]);
                }
            }
        }
        let mse = data
            .x
            .iter()
            .zip(&data.y)
            .map(|(row, y)| {
                let r = row.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() - y;
                r * r
            })
            .sum::<f64>()
            / L1_ROWS as f64;
        let spec = if subgradient {
            format!("{spec} + {L1_LAMBDA}·sign(w) in g")
        } else {
            spec
        };
        runs.push(L1Run {
            label: label.to_string(),
            spec,
            zeros: w.iter().filter(|v| **v == 0.0).count(),
            kept: w
                .iter()
                .zip(&data.w)
                .filter(|(v, truth)| **v != 0.0 && **truth != 0.0)
                .count(),
            mse,
            mean_zeros_last_pass: last_pass as f64 / L1_ROWS as f64,
            zeros_path,
        });
    }
    Ok(runs)
}

fn l1_stop() -> Result<(String, String), Failure> {
    let m = l1()?;
    let truly_zero = L1_FEATURES - L1_SUPPORT;
    let mut t = String::from("Proximal L1, greedy and lazy (FTRL)\n");
    t += "claim (seed 001, «Собираем все идеи воедино»): proximal methods are a must-have for \
         L1, \"without proximality they do not work at all\"; FTRL-Proximal's lazy \
         representation is a must-have for L1; of its L1 schedules, Fixed is the best for \
         selecting sparse features.\n";
    let _ = writeln!(
        t,
        "run: a sparse linear regression ({L1_ROWS} rows, {L1_FEATURES} N(0, 1) features, \
         {L1_SUPPORT} true non-zero weights, noise σ = {L1_NOISE}); one row per step, \
         {L1_EPOCHS} passes; AdaGrad rate lr 0.5; λ = {L1_LAMBDA} per row (incremental), \
         λ·{} = {} for the fixed schedules (the same total at the end):",
        L1_ROWS * L1_EPOCHS,
        L1_LAMBDA * (L1_ROWS * L1_EPOCHS) as f64
    );
    for r in &m {
        let _ = writeln!(
            t,
            "  {:<30} exact zeros {:>2}/{L1_FEATURES} ({truly_zero} truly 0; {:>4.1} on \
             average over the last pass), true weights kept {}/{L1_SUPPORT}, MSE {:.4}   [{}]",
            r.label, r.zeros, r.mean_zeros_last_pass, r.kept, r.mse, r.spec
        );
    }
    let lazy_sparser = m[3].zeros.min(m[4].zeros) > m[2].zeros;
    let fixed = match m[4].zeros.cmp(&m[3].zeros) {
        std::cmp::Ordering::Greater => {
            "Fixed L1 selects more zeros than Incremental, as claimed.".to_string()
        }
        std::cmp::Ordering::Equal => format!(
            "Fixed and Incremental L1 end with the same zeros; Fixed shrinks the kept \
             weights less (MSE {:.4} against {:.4}).",
            m[4].mse, m[3].mse
        ),
        std::cmp::Ordering::Less => {
            "Fixed L1 selects FEWER zeros than Incremental here.".to_string()
        }
    };
    t += &verdict(
        m[0].zeros == 0 && m[1].zeros == 0 && lazy_sparser && m[4].zeros >= m[3].zeros,
        &format!(
            "without a proximal step no weight is ever exactly 0 ({} and {} zeros: the \
             subgradient makes them flip sign around 0); greedy proximal L1 ends with only {} \
             exact zeros ({:.1} on average over the last pass: its threshold lr·λ/D per step \
             is small against one row's gradient, so weights leave 0 again at the next row), \
             lazy FTRL with {} (incremental) and {} (fixed), Keras's Ftrl with {}, keeping \
             {} of the {L1_SUPPORT} true weights. {fixed}",
            m[0].zeros,
            m[1].zeros,
            m[2].zeros,
            m[2].mean_zeros_last_pass,
            m[3].zeros,
            m[4].zeros,
            m[5].zeros,
            m[4].kept
        ),
    );
    let curves: Vec<(String, Vec<[f64; 2]>)> = m
        .iter()
        .map(|r| (r.label.clone(), r.zeros_path.clone()))
        .collect();
    let svg = plot::lines_svg(
        &format!("Exact zeros among {L1_FEATURES} weights ({truly_zero} truly 0)"),
        "step",
        "weights exactly 0",
        &series(&curves),
    )?;
    Ok((t, svg))
}

// ---------------------------------------------------------------------------------
// 5. Momentum kinds.

/// The momentum kinds at γ = 0.5 (seed 004's), each a function of the learning rate η:
/// EMA runs at η/(1 − γ), the same step once its average has filled.
const MOMENTUM_KINDS: [(&str, &str); 4] = [
    ("gradient descent", "proximal:lr={lr}"),
    (
        "heavy ball",
        "proximal:lr={lr},momentum=heavy_ball,beta1=0.5",
    ),
    ("Nesterov", "proximal:lr={lr},momentum=nesterov,beta1=0.5"),
    ("EMA", "proximal:lr={2lr},momentum=ema,beta1=0.5"),
];
/// The rates tried full-batch; each kind keeps its fastest.
const MOMENTUM_LRS: [f64; 9] = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45];
/// The rate of the noisy runs, the same for every kind.
const MOMENTUM_NOISY_LR: f64 = 0.1;
const MOMENTUM_STEPS: usize = 200;
const MOMENTUM_NOISE: f64 = 1.0;
const MOMENTUM_SEEDS: u64 = 8;

fn momentum_spec(template: &str, lr: f64) -> String {
    template
        .replace("{2lr}", &(2.0 * lr).to_string())
        .replace("{lr}", &lr.to_string())
}

/// One momentum kind.
pub struct MomentumRun {
    /// What it is.
    pub label: String,
    /// The spec of its fastest full-batch run.
    pub spec: String,
    /// Full batch at its fastest η: the step from which f ≤ 1e-6 to the end.
    pub reached: Option<usize>,
    /// Full batch at seed 004's η = 0.4: the same, `None` if never (or diverged).
    pub reached_at_04: Option<usize>,
    /// Full batch at its fastest η: [t, f].
    pub losses: Vec<[f64; 2]>,
    /// With N(0, 1) gradient noise at η = 0.1: mean f over the last half, over the seeds.
    pub noisy_floor: f64,
}

/// Measures the momentum stop.
pub fn momentum() -> Result<Vec<MomentumRun>, Failure> {
    let f = quadratic();
    let mut runs = Vec::new();
    for (label, template) in MOMENTUM_KINDS {
        let mut best: Option<(String, Option<usize>, Vec<[f64; 2]>)> = None;
        let mut reached_at_04 = None;
        for lr in MOMENTUM_LRS {
            let spec = momentum_spec(template, lr);
            let run = descend(&spec, f, MOMENTUM_STEPS, 0.0, 0, None)?;
            let measured = compare::measure(f, &run.path, MOMENTUM_STEPS as u64, 1e-6);
            if lr == 0.4 {
                reached_at_04 = measured.reached;
            }
            let better = match (&best, measured.reached) {
                (None, _) => true,
                (Some((_, None, _)), Some(_)) => true,
                (Some((_, Some(b), _)), Some(r)) => r < *b,
                _ => false,
            };
            if better {
                best = Some((spec, measured.reached, measured.losses));
            }
        }
        let (spec, reached, losses) = best.expect("at least one rate");
        let noisy_spec = momentum_spec(template, MOMENTUM_NOISY_LR);
        let mut floor = 0.0;
        for seed in 0..MOMENTUM_SEEDS {
            let noisy = descend(&noisy_spec, f, MOMENTUM_STEPS, MOMENTUM_NOISE, seed, None)?;
            let half = &noisy.path[MOMENTUM_STEPS / 2..];
            floor += half.iter().map(|x| (f.f)(*x)).sum::<f64>() / half.len() as f64;
        }
        runs.push(MomentumRun {
            label: label.to_string(),
            spec,
            reached,
            reached_at_04,
            losses,
            noisy_floor: floor / MOMENTUM_SEEDS as f64,
        });
    }
    Ok(runs)
}

fn momentum_stop() -> Result<(String, String), Failure> {
    let m = momentum()?;
    let mut t = String::from("Momentum: heavy ball, Nesterov, EMA\n");
    t += "claim (seed 001, «Momentum», «Nesterov Momentum», «Собираем все идеи воедино»): \
          heavy-ball momentum accelerates optimization (proven for convex problems); \
          Nesterov's is \"much more powerful\" for full-batch gradient descent on convex \
          problems, but applied \"head-on\" to stochastic gradients it usually brings no \
          gain; the EMA form m = γm + (1 − γ)g is the same idea at another scale.\n";
    let lrs: Vec<String> = MOMENTUM_LRS.iter().map(|v| v.to_string()).collect();
    let _ = writeln!(
        t,
        "run: 0.1·x1² + 2·x2² from (−5, −2) (seed 004's problem, γ = 0.5), {MOMENTUM_STEPS} \
         steps. Full batch: each kind at its fastest η of {} (EMA at 2η); then at \
         η = {MOMENTUM_NOISY_LR} with N(0, {MOMENTUM_NOISE}²) noise on every gradient \
         coordinate ({MOMENTUM_SEEDS} seeds):",
        lrs.join(", ")
    );
    let steps = |r: Option<usize>| r.map_or("never".to_string(), |s| s.to_string());
    for r in &m {
        let _ = writeln!(
            t,
            "  {:<17} full batch: f ≤ 1e-6 from step {:>5} (at η = 0.4: {:>5}); noisy: mean f \
             over the last half {:.4}   [{}]",
            r.label,
            steps(r.reached),
            steps(r.reached_at_04),
            r.noisy_floor,
            r.spec
        );
    }
    let at = |i: usize| m[i].reached.unwrap_or(usize::MAX);
    let accelerates = at(1) < at(0);
    let nesterov_faster = at(2) < at(1);
    let noisy_gain = m[2].noisy_floor < 0.9 * m[1].noisy_floor;
    t += &verdict(
        accelerates && nesterov_faster && !noisy_gain,
        &format!(
            "full batch, each at its best η, heavy ball reaches f ≤ 1e-6 at step {} against \
             gradient descent's {}, Nesterov at {} and EMA at {}{}. At seed 004's η = 0.4 \
             Nesterov {} (its stable range at γ = 0.5 ends at ηL = 2(1 + γ)/(1 + 2γ) = 1.5, \
             L = 4). Under noise Nesterov's floor is {:.4} against heavy ball's {:.4}: {}",
            steps(m[1].reached),
            steps(m[0].reached),
            steps(m[2].reached),
            steps(m[3].reached),
            if nesterov_faster {
                ""
            } else {
                ": Nesterov is NOT faster than heavy ball here (on a quadratic, heavy ball \
                 with tuned η and γ is already optimal, Polyak 1964; Nesterov's guarantee \
                 covers every smooth convex function, where heavy ball has none)"
            },
            if m[2].reached_at_04.is_none() {
                "never gets there"
            } else {
                "converges"
            },
            m[2].noisy_floor,
            m[1].noisy_floor,
            if noisy_gain {
                "Nesterov gains under noise here, more than the claim allows."
            } else if nesterov_faster {
                "its full-batch lead does not carry over to noisy gradients."
            } else {
                "no gain under noise either, as claimed for stochastic gradients."
            }
        ),
    );
    let curves: Vec<(String, Vec<[f64; 2]>)> = m
        .iter()
        .map(|r| (r.spec.replace("proximal:", ""), r.losses.clone()))
        .collect();
    let svg = plot::loss_svg(
        "Momentum kinds on 0.1·x1² + 2·x2², γ = 0.5, each at its fastest η (full batch)",
        &series(&curves),
        true,
    )?;
    Ok((t, svg))
}

// ---------------------------------------------------------------------------------
// 6. Adan vs Adam vs Nesterov SGD.

/// The rules, each tried at every rate of [`ADAN_LRS`].
const ADAN_RULES: [(&str, &str); 3] = [
    ("Adan", "adan"),
    ("Adam", "adam"),
    ("Nesterov SGD", "sgd:momentum=0.9,nesterov"),
];
const ADAN_LRS: [f64; 6] = [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3];
const ADAN_EPOCHS: u64 = 10;

/// One rule of the Adan stop, at its best rate.
pub struct AdanRun {
    /// What it is.
    pub label: String,
    /// The spec of the best run.
    pub spec: String,
    /// Mean validation loss over the last three epochs (one epoch's is noisy), at the
    /// best rate.
    pub val_loss: f32,
    /// Mean validation accuracy over the same epochs.
    pub val_accuracy: f32,
    /// [epoch, validation loss] of the best run.
    pub curve: Vec<[f64; 2]>,
}

/// Measures the Adan stop: each rule at each rate, the best mean validation loss over
/// the last three epochs.
pub fn adan() -> Result<Vec<AdanRun>, Failure> {
    let rows = data::read_builtin(Task::Digits)?;
    let split = data::split(Task::Digits, &rows, 0.2, 0);
    let model = Model {
        inputs: 64,
        hidden: Some((32, Activation::Relu)),
        outputs: 10,
        head: Head::Softmax,
    };
    let mut runs = Vec::new();
    for (label, base) in ADAN_RULES {
        let mut best: Option<AdanRun> = None;
        for lr in ADAN_LRS {
            let spec = if base.contains(':') {
                format!("{base},lr={lr}")
            } else {
                format!("{base}:lr={lr}")
            };
            let run = train::Run {
                model,
                data: &split,
                rule: rule(&spec)?,
                lookahead: None,
                schedule: None,
                clip: None,
                batch_size: 32,
                epochs: ADAN_EPOCHS,
                seed: 0,
            };
            let history = run.fit(|| {}, |_| Ok(()))?;
            let tail = &history.epochs[history.epochs.len().saturating_sub(3)..];
            let val_loss = tail.iter().map(|e| e.val_loss).sum::<f32>() / tail.len() as f32;
            let val_accuracy = tail.iter().map(|e| e.val_metric).sum::<f32>() / tail.len() as f32;
            if history.diverged.is_some() || !val_loss.is_finite() {
                continue;
            }
            if best.as_ref().is_none_or(|b| val_loss < b.val_loss) {
                best = Some(AdanRun {
                    label: label.to_string(),
                    spec,
                    val_loss,
                    val_accuracy,
                    curve: history
                        .epochs
                        .iter()
                        .map(|e| [e.epoch as f64, f64::from(e.val_loss)])
                        .collect(),
                });
            }
        }
        runs.push(best.ok_or_else(|| Failure::usage(format!("{label}: every rate diverged")))?);
    }
    Ok(runs)
}

fn adan_stop() -> Result<(String, String), Failure> {
    let m = adan()?;
    let mut t = String::from("Adan vs Adam vs Nesterov SGD\n");
    t += "claim (seed 001, «Nesterov Momentum», «Adan»): Nesterov momentum applied head-on to \
         stochastic gradients rarely helps; Adan (2022) found the right way to use it in \
         deep learning, \"showed excellent results and set new state-of-the-art results on \
         a wide range of tasks\".\n";
    let lrs: Vec<String> = ADAN_LRS.iter().map(|v| v.to_string()).collect();
    let _ = writeln!(
        t,
        "run: an MLP (64-32-10, ReLU) on the shipped 8×8 digits, batch 32, {ADAN_EPOCHS} \
         epochs, seed 0; each rule at lr {}, its best rate by the mean validation loss of \
         the last 3 epochs:",
        lrs.join(", ")
    );
    for r in &m {
        let _ = writeln!(
            t,
            "  {:<13} validation loss {:.4}, accuracy {:.4} (epochs {}–{})   [{}]",
            r.label,
            r.val_loss,
            r.val_accuracy,
            ADAN_EPOCHS - 2,
            ADAN_EPOCHS,
            r.spec
        );
    }
    let adan_best = m[0].val_loss <= m[1].val_loss.min(m[2].val_loss);
    t += &verdict(
        adan_best,
        &format!(
            "Adan's best validation loss is {:.4}, Adam's {:.4}, Nesterov SGD's {:.4} \
             (ranked: {}): {}",
            m[0].val_loss,
            m[1].val_loss,
            m[2].val_loss,
            {
                let mut ranked: Vec<&AdanRun> = m.iter().collect();
                ranked.sort_by(|a, b| a.val_loss.total_cmp(&b.val_loss));
                ranked
                    .iter()
                    .map(|r| r.label.as_str())
                    .collect::<Vec<_>>()
                    .join(" < ")
            },
            if adan_best {
                "Adan is the best of the three on this small network."
            } else {
                "on this small network Adan is NOT the best of the three; one small data set \
                 cannot test a claim about a wide range of large tasks."
            }
        ),
    );
    let curves: Vec<(String, Vec<[f64; 2]>)> = m
        .iter()
        .map(|r| (r.spec.clone(), r.curve.clone()))
        .collect();
    let svg = plot::log_lines_svg(
        "Digits MLP: validation loss at each rule's best lr",
        "epoch",
        "validation cross-entropy  (log scale)",
        &series(&curves),
    )?;
    Ok((t, svg))
}

// ---------------------------------------------------------------------------------
// 7. Learning-rate decay and warm restarts.

/// (label, rule spec, schedule spec).
const DECAY_RULES: [(&str, &str, Option<&str>); 5] = [
    ("Adam, constant lr", "adam:lr=0.1", None),
    ("Adam + cosine decay", "adam:lr=0.1", Some("cosine")),
    (
        "Adam + cosine warm restarts",
        "adam:lr=0.1",
        Some("cosine_warm_restarts:t_0=500"),
    ),
    ("AdaGrad", "adagrad:lr=1", None),
    ("Online RMSprop", "online_rmsprop:lr=1", None),
];
const DECAY_STEPS: usize = 2000;
const DECAY_NOISE: f64 = 1.0;
const DECAY_SEEDS: u64 = 8;

/// One run of the decay stop.
pub struct DecayRun {
    /// What it is.
    pub label: String,
    /// Mean f over the last 10 % of steps, over the seeds.
    pub floor: f64,
    /// [t, f] of seed 0.
    pub losses: Vec<[f64; 2]>,
    /// [t, lr] of seed 0.
    pub lrs: Vec<[f64; 2]>,
}

/// Measures the decay stop.
pub fn decay() -> Result<Vec<DecayRun>, Failure> {
    let f = quadratic();
    let mut runs = Vec::new();
    for (label, spec, schedule) in DECAY_RULES {
        let mut floor = 0.0;
        let mut shown = None;
        for seed in 0..DECAY_SEEDS {
            let run = descend(spec, f, DECAY_STEPS, DECAY_NOISE, seed, schedule)?;
            let tail = &run.path[DECAY_STEPS - DECAY_STEPS / 10..];
            floor += tail.iter().map(|x| (f.f)(*x)).sum::<f64>() / tail.len() as f64;
            if seed == 0 {
                shown = Some(run);
            }
        }
        let run = shown.expect("at least one seed");
        runs.push(DecayRun {
            label: label.to_string(),
            floor: floor / DECAY_SEEDS as f64,
            // Every 4th step drawn: the picture stays small, the floor uses every step.
            losses: run
                .path
                .iter()
                .enumerate()
                .step_by(4)
                .map(|(t, x)| [t as f64, (f.f)(*x)])
                .collect(),
            lrs: run
                .lrs
                .iter()
                .enumerate()
                .step_by(4)
                .map(|(t, lr)| [t as f64, *lr])
                .collect(),
        });
    }
    Ok(runs)
}

fn decay_stop() -> Result<(String, String), Failure> {
    let m = decay()?;
    let mut t = String::from("Learning-rate decay and warm restarts\n");
    t += "claim (seed 001, «Learning Rate Scheduling», «Learning rate scheduling vs AdaGrad»): \
         RMSprop's and Adam's rate is O(1), so they keep oscillating around the minimum; \
         decaying the rate shrinks the region they jump around in. AdaGrad has the decay \
         built in (O(1/√t)), so where a 1/√t schedule works, plain AdaGrad may do as well. \
         Warm restarts (a sudden rise of the rate) go with decay and \"help somewhere\".\n";
    let _ = writeln!(
        t,
        "run: 0.1·x1² + 2·x2² from (−5, −2), {DECAY_STEPS} steps, N(0, {DECAY_NOISE}²) noise \
         on every gradient coordinate; mean f over the last 10 % of steps, {DECAY_SEEDS} \
         seeds:"
    );
    for (r, (_, spec, schedule)) in m.iter().zip(DECAY_RULES) {
        let schedule = schedule.map_or(String::new(), |s| format!(", schedule {s}"));
        let _ = writeln!(t, "  {:<28} {:.5}   [{spec}{schedule}]", r.label, r.floor);
    }
    let decay_helps = m[1].floor < 0.5 * m[0].floor;
    let adagrad_as_good = m[3].floor <= 2.0 * m[1].floor;
    let restarts = if m[2].floor < m[1].floor {
        "warm restarts end lower than a single cosine decay"
    } else {
        "warm restarts end higher than a single cosine decay (they restart the noise)"
    };
    t += &verdict(
        decay_helps,
        &format!(
            "cosine decay lowers Adam's noise floor from {:.5} to {:.5} (×{:.1}); {restarts} \
             ({:.5}); AdaGrad, with its built-in decay, ends at {:.5}{}, and Online RMSprop \
             at {:.5}.",
            m[0].floor,
            m[1].floor,
            m[0].floor / m[1].floor,
            m[2].floor,
            m[3].floor,
            if adagrad_as_good {
                ", within ×2 of the decayed Adam"
            } else {
                ", below constant-rate Adam but well above the decayed one"
            },
            m[4].floor
        ),
    );
    let losses: Vec<(String, Vec<[f64; 2]>)> = m
        .iter()
        .map(|r| (r.label.clone(), r.losses.clone()))
        .collect();
    let lrs: Vec<(String, Vec<[f64; 2]>)> =
        m.iter().map(|r| (r.label.clone(), r.lrs.clone())).collect();
    let svg = plot::loss_and_lr_svg(
        "Decay under gradient noise on 0.1·x1² + 2·x2² (seed 0)",
        &series(&losses),
        true,
        &series(&lrs),
    )?;
    Ok((t, svg))
}

#[cfg(test)]
mod tests {
    //! Each stop's measured numbers, as the README quotes them: a change to a rule that
    //! moves one fails here, and the README's paragraph is updated with it.
    use super::*;

    #[test]
    fn adaptive_rates_even_out_the_first_step_and_decay_as_claimed() {
        let m = adaptive().unwrap();
        let (_, d1, d2) = &m.first[0];
        assert!(
            (d1 - 0.1).abs() < 1e-12 && (d2 - 0.8).abs() < 1e-12,
            "sgd {d1} {d2}"
        );
        for (spec, a, b) in &m.first[1..] {
            assert!((a / b - 1.0).abs() < 1e-6, "{spec}: {a} vs {b}");
        }
        // AdaGrad's and Adam's first step is lr; torch RMSprop's lr/√(1 − α) = 10·lr.
        assert!((m.first[1].1 - 0.1).abs() < 1e-9);
        assert!((m.first[2].1 - 1.0).abs() < 1e-7);
        assert!((m.first[3].1 - 0.1).abs() < 1e-9);
        let p: Vec<f64> = m.exponents.iter().map(|e| e.1).collect();
        assert!((p[0] + 0.5).abs() < 0.05, "adagrad {p:?}");
        assert!((p[3] + 0.5).abs() < 0.05, "online rmsprop {p:?}");
        assert!(
            p[1].abs() < 0.05 && p[2].abs() < 0.05,
            "rmsprop, adam {p:?}"
        );
    }

    #[test]
    fn bias_correction_makes_the_first_step_lr_times_the_sign() {
        let m = bias().unwrap();
        // ∇f(−5, −2) = (−1, −8): every first step is positive.
        for i in [0, 2] {
            for v in m.first_step(i) {
                assert!((v - 1.0).abs() < 1e-6, "{}: {v}", m.runs[i].0);
            }
        }
        let adam = 0.1 / 0.001f64.sqrt();
        let rmsprop = 1.0 / 0.001f64.sqrt();
        for v in m.first_step(1) {
            assert!((v - adam).abs() < 1e-6, "uncorrected Adam {v}");
        }
        for v in m.first_step(3) {
            assert!((v - rmsprop).abs() < 1e-5, "uncorrected RMSprop {v}");
        }
        assert!(m.longest_early_step(1) > 5.0 * m.longest_early_step(0));
        assert!(m.longest_early_step(3) > 30.0 * m.longest_early_step(2));
        // As measured: on this quadratic the uncorrected runs end lower.
        assert!(m.final_loss(1) < m.final_loss(0) && m.final_loss(3) < m.final_loss(2));
    }

    #[test]
    fn amsgrad_never_lets_its_rate_grow_and_adam_does() {
        let m = amsgrad().unwrap();
        let adam = &m[0];
        assert!(
            adam.raw_increases > AMSGRAD_STEPS * 9 / 10,
            "{}",
            adam.raw_increases
        );
        for r in &m[1..] {
            assert_eq!(r.raw_increases, 0, "{}", r.spec);
            assert!(r.final_x < adam.final_x, "{}: {}", r.spec, r.final_x);
        }
        // Pre-correction and the raw max: η itself never rises.
        assert_eq!(m[2].increases, 0);
        assert_eq!(m[3].increases, 0);
        // Post-correction and in place: only by the bias factor, largest at t = 2.
        let factor = (1.0 + AMSGRAD_BETA2).sqrt();
        for r in [&m[1], &m[4]] {
            assert!(r.increases > 0);
            assert!(
                (r.largest_increase - factor).abs() < 1e-6,
                "{}",
                r.largest_increase
            );
        }
        assert!(adam.final_x > 0.5, "{}", adam.final_x);
        // torch's AMSGrad is post-correction: bias-corrected, the same path.
        let (gap, first) = torch_amsgrad().unwrap();
        assert!((first - 1.0).abs() < 1e-6, "{first}");
        assert_eq!(gap, 0.0);
        assert!(m[1].final_x < -0.5 && m[3].final_x < -0.5);
    }

    #[test]
    fn lazy_ftrl_finds_the_exact_zeros_and_greedy_l1_barely_any() {
        let m = l1().unwrap();
        let truly_zero = L1_FEATURES - L1_SUPPORT;
        assert_eq!(m[0].zeros, 0, "no L1");
        assert_eq!(m[1].zeros, 0, "subgradient");
        assert_eq!(m[1].mean_zeros_last_pass, 0.0);
        assert!(
            m[2].zeros < 10 && m[2].mean_zeros_last_pass < 10.0,
            "greedy"
        );
        for r in &m[3..] {
            assert_eq!(r.zeros, truly_zero, "{}", r.label);
            assert_eq!(r.kept, L1_SUPPORT, "{}", r.label);
            assert_eq!(r.mean_zeros_last_pass, truly_zero as f64, "{}", r.label);
        }
        // Keras's Ftrl is the lazy fixed-L1 AdaGrad (its accumulator starts at 0.1).
        assert!(
            (m[4].mse - m[5].mse).abs() < 1e-3,
            "{} {}",
            m[4].mse,
            m[5].mse
        );
        assert!(m[4].mse < m[3].mse);
    }

    #[test]
    fn momentum_kinds_as_measured() {
        let m = momentum().unwrap();
        let at = |i: usize| m[i].reached.unwrap();
        assert!(at(1) * 2 < at(0), "heavy ball {} vs gd {}", at(1), at(0));
        // EMA at 2η is heavy ball with a first step half as long: close, not equal paths.
        assert!(at(3).abs_diff(at(1)) <= 3, "{} {}", at(3), at(1));
        // As measured: with γ fixed at 0.5 Nesterov is slower than heavy ball, and at
        // η = 0.4 (ηL = 1.6 > 1.5) it diverges.
        assert!(at(2) > at(1));
        assert_eq!(m[2].reached_at_04, None);
        assert!(m[1].reached_at_04.is_some());
        assert!(m[2].noisy_floor >= 0.9 * m[1].noisy_floor);
    }

    #[test]
    fn adan_adam_and_nesterov_on_the_digits_as_measured() {
        let m = adan().unwrap();
        for r in &m {
            assert!(
                r.val_loss < 0.15 && r.val_accuracy > 0.95,
                "{}: {}",
                r.spec,
                r.val_loss
            );
        }
        // As measured: Adan beats Adam, Nesterov SGD beats both on this small network.
        assert!(
            m[0].val_loss < m[1].val_loss,
            "{} {}",
            m[0].val_loss,
            m[1].val_loss
        );
        assert!(
            m[2].val_loss < m[0].val_loss,
            "{} {}",
            m[2].val_loss,
            m[0].val_loss
        );
    }

    #[test]
    fn decay_lowers_adams_noise_floor() {
        let m = decay().unwrap();
        assert!(
            m[1].floor * 10.0 < m[0].floor,
            "{} {}",
            m[1].floor,
            m[0].floor
        );
        assert!(m[1].floor < m[2].floor && m[2].floor < m[0].floor);
        assert!(m[3].floor < m[0].floor && m[4].floor < m[0].floor);
    }

    #[test]
    fn an_unknown_concept_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let Err(Failure::Usage(message)) = run(&out, Some("nesterov")) else {
            panic!("accepted");
        };
        assert!(message.contains("unknown concept 'nesterov'"), "{message}");
        assert!(message.contains(&names()), "{message}");
        assert!(!out.exists());
    }
}
