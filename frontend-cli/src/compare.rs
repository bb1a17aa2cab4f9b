//! `gradstep compare`: several rules on one test function; a table, the trajectories
//! over the contour lines, and the loss against step.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::Failure;
use crate::functions::{self, Function, num};
use crate::output::{check_writable, write_files};
use crate::plot::{self, Series, Surface};
use crate::rng::{Rng, Stream};
use crate::rules::{self, Spec};
use crate::schedule;

/// The rules compared when neither the flags nor a config file name any.
pub const DEFAULT_RULES: [&str; 3] = ["sgd:lr=0.001", "sgd:lr=0.001,momentum=0.9", "adam:lr=0.1"];

/// Most steps a run may take (the paths are kept in memory for the pictures).
pub const MAX_STEPS: u64 = 1_000_000;

/// Most rules compared: as many as the pictures tell apart by colour and dash.
pub const MAX_RULES: usize = 27;

/// Most steps kept in memory over all the rules (rules × steps): each keeps its path,
/// loss and learning rate, 48 bytes a step, so at most about 240 MB.
pub const MAX_KEPT: u64 = 5_000_000;

/// Everything `compare` needs, after flags, config file and defaults are merged.
pub struct Settings {
    /// Rule specs, in the order given.
    pub rules: Vec<Spec>,
    /// Test function name.
    pub function: String,
    /// Steps per rule.
    pub steps: u64,
    /// Tolerance on f − f*.
    pub tol: f64,
    /// Learning-rate schedule spec, applied to every rule.
    pub schedule: Option<Spec>,
    /// Whether to write the animation too.
    pub animate: bool,
    /// Where every run starts, instead of the function's start.
    pub start: Option<[f64; 2]>,
    /// σ of the Gaussian noise added to each gradient coordinate (0: none).
    pub noise: f64,
    /// Seed of the noise.
    pub seed: u64,
    /// Output directory.
    pub out: PathBuf,
}

/// The files `compare` writes into its output directory (the animation with
/// `--animate`).
const TRAJECTORIES: &str = "compare-trajectories.svg";
/// The loss (and learning-rate) picture.
const LOSS: &str = "compare-loss.svg";
/// The animation.
const ANIMATION: &str = "compare-animation.html";

struct Outcome {
    label: String,
    path: Vec<[f64; 2]>,
    /// `[t, lr]`: the learning rate of each step.
    lrs: Vec<[f64; 2]>,
    /// f(x_t) − f* (or f(x_t) for the saddle), for each iterate.
    losses: Vec<[f64; 2]>,
    reached: Option<usize>,
    diverged: bool,
}

/// The function called `name`, after checking the number of steps and the tolerance.
pub fn check_function(name: &str, steps: u64, tol: f64) -> Result<&'static Function, Failure> {
    let function = match functions::by_name(name) {
        Some(f) => f,
        // A bare word is a misspelt name; anything else is an expression.
        None if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.contains("x1")
            && !name.contains("x2")
            && name != "x"
            && name != "y" =>
        {
            return Err(Failure::usage(format!(
                "unknown function '{name}' (functions: {}; or an expression in x1 and x2 \
                 such as \"x1^2 + 10*x2^2\")",
                functions::names()
            )));
        }
        None => functions::typed(name).map_err(|e| Failure::usage(format!("function: {e}")))?,
    };
    if !(1..=MAX_STEPS).contains(&steps) {
        return Err(Failure::usage(format!(
            "steps = {steps} must be between 1 and {MAX_STEPS}"
        )));
    }
    if !(tol.is_finite() && tol > 0.0) {
        return Err(Failure::usage(format!(
            "tol = {tol} must be a positive number"
        )));
    }
    Ok(function)
}

/// Checks that `function` and its gradient are finite at `start`: a run from there
/// would diverge at step 0 whatever the rule.
pub fn check_start(function: &Function, start: [f64; 2]) -> Result<(), Failure> {
    let value = (function.f)(start);
    let [g1, g2] = (function.grad)(start);
    if value.is_finite() && g1.is_finite() && g2.is_finite() {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "function: not finite at the start (x1, x2) = ({}, {}): f = {}, ∇f = ({}, {})",
        num(start[0]),
        num(start[1]),
        num(value),
        num(g1),
        num(g2)
    )))
}

/// What a run on a test function achieved.
pub struct Measured {
    /// `[t, f(x_t) − f*]` (or f(x_t) for the saddle), for each iterate.
    pub losses: Vec<[f64; 2]>,
    /// The first step from which every iterate meets the tolerance (the run converged
    /// there and stayed); `None` if the last one does not.
    pub reached: Option<usize>,
    /// Whether the run stopped early at a non-finite iterate or ended non-finite.
    pub diverged: bool,
}

/// Measures the `path` of a run of `steps` steps on `function`.
pub fn measure(function: &Function, path: &[[f64; 2]], steps: u64, tol: f64) -> Measured {
    let target = function.target(tol);
    let offset = function.minimum.map_or(0.0, |(_, value)| value);
    let losses: Vec<[f64; 2]> = path
        .iter()
        .enumerate()
        .map(|(t, x)| [t as f64, (function.f)(*x) - offset])
        .collect();
    let diverged = path.len() as u64 <= steps || losses.last().is_some_and(|l| !l[1].is_finite());
    // Touching the tolerance once is not convergence: an oscillating run (RMSprop on
    // Beale) dips below it and climbs out again. Counted from the end: the step after
    // the last iterate that misses it.
    let reached = if diverged {
        None
    } else {
        match losses.iter().rposition(|l| !target.reached(l[1] + offset)) {
            None => Some(0),
            Some(k) if k + 1 < losses.len() => Some(k + 1),
            Some(_) => None,
        }
    };
    Measured {
        losses,
        reached,
        diverged,
    }
}

/// Runs every rule, writes the two pictures into `settings.out`, then prints the table.
pub fn run(settings: &Settings) -> Result<(), Failure> {
    let function = check_function(&settings.function, settings.steps, settings.tol)?;
    // Everything is checked before anything runs.
    let n_rules = settings.rules.len();
    if n_rules > MAX_RULES {
        return Err(Failure::usage(format!(
            "{n_rules} rules: compare draws at most {MAX_RULES} (as many as its pictures \
             tell apart)"
        )));
    }
    let kept = n_rules as u64 * settings.steps;
    if kept > MAX_KEPT {
        return Err(Failure::usage(format!(
            "{n_rules} rules × {} steps = {kept} steps to keep: compare keeps at most \
             {MAX_KEPT} (fewer rules or --steps)",
            settings.steps
        )));
    }
    let rules = settings
        .rules
        .iter()
        .map(rules::from_spec_wrapped)
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::usage)?;
    let schedule = settings
        .schedule
        .as_ref()
        .map(|s| schedule::from_spec(s, settings.steps))
        .transpose()
        .map_err(Failure::usage)?;
    if let Some(s) = &schedule {
        for (rule, _) in &rules {
            s.check_rule(rule, false).map_err(Failure::usage)?;
        }
    }

    let start = settings.start.unwrap_or(function.start);
    if !(start[0].is_finite()
        && start[1].is_finite()
        && start[0].abs() <= 1e6
        && start[1].abs() <= 1e6)
    {
        return Err(Failure::usage(format!(
            "start = ({}, {}): both coordinates must be finite numbers of magnitude at most 1e6",
            start[0], start[1]
        )));
    }
    check_start(function, start)?;
    if !(settings.noise.is_finite() && settings.noise >= 0.0) {
        return Err(Failure::usage(format!(
            "noise = {}: must be a finite number ≥ 0",
            settings.noise
        )));
    }

    let mut names = vec![TRAJECTORIES, LOSS];
    if settings.animate {
        names.push(ANIMATION);
    }
    check_writable(&settings.out, &names)?;

    let mut outcomes = Vec::with_capacity(rules.len());
    for (spec, (rule, lookahead)) in settings.rules.iter().zip(&rules) {
        // Every rule sees the same noise sequence: the comparison stays fair.
        let mut rng = Rng::new(settings.seed, Stream::Noise);
        let sigma = settings.noise;
        let grad = |x: [f64; 2]| {
            let g = (function.grad)(x);
            if sigma == 0.0 {
                g
            } else {
                [g[0] + sigma * rng.normal(), g[1] + sigma * rng.normal()]
            }
        };
        let run = rules::descend_wrapped(
            *rule,
            *lookahead,
            start,
            grad,
            settings.steps as usize,
            schedule.as_ref(),
        )
        .map_err(|e| Failure::usage(format!("rule '{}': {e}", spec.name)))?;
        let measured = measure(function, &run.path, settings.steps, settings.tol);
        outcomes.push(Outcome {
            label: spec.label(),
            lrs: run
                .lrs
                .iter()
                .enumerate()
                .map(|(t, &lr)| [t as f64, lr])
                .collect(),
            path: run.path,
            losses: measured.losses,
            reached: measured.reached,
            diverged: measured.diverged,
        });
    }

    let mut title = format!("{}: f(x1, x2) = {}", function.name, function.formula);
    if settings.noise > 0.0 {
        title += &format!(", gradient noise σ = {}", num(settings.noise));
    }
    let series = |data: fn(&Outcome) -> &[[f64; 2]]| -> Vec<Series<'_>> {
        outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| Series {
                label: &o.label,
                points: data(o),
                colour: plot::colour(i),
            })
            .collect()
    };
    let levels_label = function.levels_label();
    let surface = Surface {
        f: &function.f,
        levels: function.levels,
        levels_label: &levels_label,
        view: view_with(function.view, start),
        start,
        minimum: function.minimum.map(|(x, _)| x),
    };
    let trajectories = plot::trajectories_svg(
        &format!("{title}, {} steps", settings.steps),
        &surface,
        &series(|o| &o.path),
        settings.steps <= 60,
    )?;
    let log = function.minimum.is_some();
    let loss_title = if log {
        format!("{}: f(x) − f* against step", function.name)
    } else {
        format!("{}: f(x) against step", function.name)
    };
    let loss = if schedule.is_some() {
        plot::loss_and_lr_svg(
            &format!("{loss_title}; schedule {}", schedule_label(settings)),
            &series(|o| &o.losses),
            log,
            &series(|o| &o.lrs),
        )?
    } else {
        plot::loss_svg(&loss_title, &series(|o| &o.losses), log)?
    };
    let animation = if settings.animate {
        Some(plot::animation_html(
            &format!("{title}, {} steps", settings.steps),
            &surface,
            &series(|o| &o.path),
        )?)
    } else {
        None
    };
    let mut files = vec![(TRAJECTORIES, trajectories.as_str()), (LOSS, loss.as_str())];
    if let Some(html) = &animation {
        files.push((ANIMATION, html));
    }
    let written = write_files(&settings.out, &files)?;

    crate::print(&table(function, settings, &outcomes, &written))
}

fn table(
    function: &Function,
    settings: &Settings,
    outcomes: &[Outcome],
    written: &[PathBuf],
) -> String {
    let target = function.target(settings.tol);
    let mut text = String::new();
    let [sx, sy] = settings.start.unwrap_or(function.start);
    let _ = write!(
        text,
        "{}: f(x1, x2) = {}, from ({}, {}), ",
        function.name,
        function.formula,
        num(sx),
        num(sy)
    );
    let _ = match function.minimum {
        Some(([mx, my], value)) => writeln!(
            text,
            "minimum f({}, {}) = {}; {} steps, tol {}",
            num(mx),
            num(my),
            num(value),
            settings.steps,
            num(settings.tol)
        ),
        None if function.name == functions::TYPED_NAME => writeln!(
            text,
            "minimum unknown (loss is f itself); {} steps",
            settings.steps
        ),
        None => writeln!(
            text,
            "no minimum (loss is f itself); {} steps",
            settings.steps
        ),
    };
    if let Some(s) = &settings.schedule {
        let _ = writeln!(text, "schedule: {}", s.label());
    }
    if settings.noise > 0.0 {
        let _ = writeln!(
            text,
            "gradient noise: N(0, {}²) added to each coordinate of every gradient (seed {}), \
             as a mini-batch gradient scatters around the full one",
            num(settings.noise),
            settings.seed
        );
    }
    let width = outcomes
        .iter()
        .map(|o| o.label.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let loss_heading = if function.minimum.is_some() {
        "final f − f*"
    } else {
        "final f"
    };
    let _ = writeln!(
        text,
        "{:<width$}  {:<22}  {:<16}  final (x1, x2)",
        "rule",
        loss_heading,
        target.heading()
    );
    for o in outcomes {
        let final_loss = o.losses.last().map_or(f64::NAN, |l| l[1]);
        let loss = if o.diverged {
            format!("diverged at step {}", o.path.len() - 1)
        } else {
            format!("{final_loss:.6e}")
        };
        let reached = o.reached.map_or_else(|| "-".to_string(), |t| t.to_string());
        let [x1, x2] = o.path[o.path.len() - 1].map(coordinate);
        let _ = writeln!(
            text,
            "{:<width$}  {loss:<22}  {reached:<16}  ({x1}, {x2})",
            o.label
        );
    }
    if function.minimum.is_some() {
        let _ = writeln!(
            text,
            "(steps to tol: the step from which f − f* stays ≤ tol to the end; - if the last \
             step is not within tol)"
        );
    }
    for path in written {
        let _ = writeln!(text, "wrote {}", path.display());
    }
    text
}

/// A coordinate in the table: 6 decimals, or 6 significant digits once it is huge.
fn coordinate(v: f64) -> String {
    if v.abs() < 1e6 {
        format!("{v:.6}")
    } else {
        format!("{v:.6e}")
    }
}

/// The schedule as given, for titles.
fn schedule_label(settings: &Settings) -> String {
    settings
        .schedule
        .as_ref()
        .map_or_else(String::new, Spec::label)
}

/// `view` widened to show `start` with a margin, if it lies outside.
fn view_with(view: crate::plot::View, start: [f64; 2]) -> crate::plot::View {
    let widen = |(lo, hi): (f64, f64), v: f64| {
        let pad = 0.08 * (hi - lo).max(v - hi).max(lo - v);
        if v < lo {
            (v - pad, hi)
        } else if v > hi {
            (lo, v + pad)
        } else {
            (lo, hi)
        }
    };
    crate::plot::View {
        x: widen(view.x, start[0]),
        y: widen(view.y, start[1]),
    }
}
