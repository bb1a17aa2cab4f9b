//! `gradstep sweep`: a grid over rules × learning rates (× one more hyperparameter) on a
//! test function or a training task; a results table, the best settings, a heatmap.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use serde::Serialize;

use crate::Failure;
use crate::compare::{self, measure};
use crate::config::{Config, Numbers, pick};
use crate::data::Task;
use crate::functions::{Function, num};
use crate::output::{check_writable, write_files};
use crate::plot::{self, Heatmap, short};
use crate::progress::Progress;
use crate::rules::{self, Spec};
use crate::schedule;
use crate::train::{self, TASK_KEYS, TaskArgs, TaskSettings};
use gradstep::rules::AnyRule;

/// The rules swept when neither the flags nor a config file name any.
pub const DEFAULT_RULES: &str = "sgd,adam,rmsprop,adagrad";
/// The learning rates swept when neither the flags nor a config file give any.
pub const DEFAULT_LRS: &str = "1e-4..1:9";
/// Most runs a sweep may make.
pub const MAX_RUNS: usize = 10_000;
/// Most steps a sweep on a test function may take in all (runs × steps, a step on
/// your own expression counting as one per 10 of its operations): about 5 minutes.
pub const MAX_TOTAL_STEPS: f64 = 5e8;

/// `gradstep sweep`'s flags.
#[derive(Args)]
pub struct SweepArgs {
    /// Rules by name, comma-separated, with torch's defaults for every field but lr.
    ///
    /// [default: sgd,adam,rmsprop,adagrad]
    #[arg(long, value_name = "LIST")]
    rules: Option<String>,
    /// A rule with some fields fixed, NAME[:FIELD=VALUE,...] as in `compare` (e.g.
    /// `sgd:momentum=0.9`); repeat for several; added after --rules. lr is swept and
    /// may not be given.
    #[arg(long = "rule", value_name = "SPEC")]
    rule_specs: Vec<String>,
    /// Learning rates: a comma-separated list (`1e-3,1e-2,0.1`) or N values evenly
    /// spaced on a log scale from FROM to TO (`FROM..TO:N`). A sweep makes at most
    /// 10000 runs (rules × grid values × learning rates).
    #[arg(
        long,
        value_name = "LRS",
        default_value = DEFAULT_LRS,
        allow_negative_numbers = true
    )]
    lrs: String,
    /// One more hyperparameter to sweep, FIELD=V1,V2,... (e.g. `momentum=0,0.9` or
    /// `weight_decay=0,1e-4`); every rule must have the field.
    #[arg(long, value_name = "FIELD=VALUES")]
    grid: Option<String>,
    /// Sweep on this test function (as in `compare`, also your own expression in x1
    /// and x2 of at most 1000 characters) ...
    #[arg(
        long,
        value_name = "NAME",
        default_value = "rosenbrock",
        conflicts_with = "task",
        allow_hyphen_values = true
    )]
    function: String,
    /// ... or on this training task (digits or diabetes, as in `train`); the table
    /// then holds the final validation loss.
    #[arg(long, value_name = "NAME")]
    task: Option<String>,
    /// Steps per run on a test function (at most 1000000; runs × steps at most 5e8,
    /// about 5 minutes, a step on your own expression counting as one per 10 of its
    /// operations).
    #[arg(long, value_name = "N", default_value_t = 500)]
    steps: u64,
    /// Tolerance on a test function: the table counts the steps until f − f* ≤ TOL.
    #[arg(
        long,
        value_name = "TOL",
        default_value = "1e-6",
        allow_negative_numbers = true
    )]
    tol: f64,
    /// A learning-rate schedule for every run, NAME[:FIELD=VALUE,...]: stepped per
    /// step on a test function, per epoch on a task.
    #[arg(long, value_name = "SPEC")]
    schedule: Option<String>,
    #[command(flatten)]
    task_args: TaskArgs,
    /// A TOML file with any of the settings above (rules as a list of names, [[rule]]
    /// tables, lrs as a list or a "FROM..TO:N" string, grid, function or task, steps,
    /// tol, [schedule], the task settings, out). Flags given on the command line win. A
    /// regular file of at most 1 MiB.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for sweep-results.csv, sweep-results.json and sweep-heatmap.svg (created if missing).
    #[arg(long, value_name = "DIR", default_value = "gradstep-out")]
    out: PathBuf,
}

/// What is swept on.
pub enum Target {
    /// A test function: steps and tolerance.
    Function {
        /// Function name.
        name: String,
        /// Steps per run.
        steps: u64,
        /// Tolerance on f − f*.
        tol: f64,
    },
    /// A training task.
    Task(TaskSettings),
}

/// Everything `sweep` needs, after flags, config file and defaults are merged.
pub struct Settings {
    /// The rules, without lr.
    pub rules: Vec<Spec>,
    /// Learning rates.
    pub lrs: Vec<f64>,
    /// One more field and its values.
    pub grid: Option<(String, Vec<String>)>,
    /// Function or task.
    pub target: Target,
    /// Schedule for every run.
    pub schedule: Option<Spec>,
    /// Output directory.
    pub out: PathBuf,
}

/// The config file keys of `sweep`.
fn keys() -> Vec<&'static str> {
    let mut keys = TASK_KEYS.to_vec();
    keys.extend([
        "rules", "rule", "lrs", "grid", "function", "steps", "tol", "schedule", "out",
    ]);
    keys
}

/// Merges flags, config file and defaults: a flag given on the command line wins, then
/// the config file, then the flag's default.
pub fn settings(args: SweepArgs, matches: &ArgMatches) -> Result<Settings, Failure> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let (config, path) = match &args.config {
        Some(path) => (Config::read(path, "sweep", &keys())?, path.clone()),
        None => (Config::default(), PathBuf::new()),
    };

    let mut rules = Vec::new();
    if args.rules.is_some() || !args.rule_specs.is_empty() {
        for name in args.rules.iter().flat_map(|r| r.split(',')) {
            rules.push(Spec::parse("rule", name.trim()).map_err(Failure::usage)?);
        }
        for spec in &args.rule_specs {
            rules.push(Spec::parse("rule", spec).map_err(Failure::usage)?);
        }
    } else if config.rules.is_some() || config.rule.is_some() {
        for name in config.rules.iter().flatten() {
            rules.push(Spec::parse("rule", name).map_err(Failure::usage)?);
        }
        rules.extend(config.rules(&path)?);
    } else {
        for name in DEFAULT_RULES.split(',') {
            rules.push(Spec::parse("rule", name).map_err(Failure::usage)?);
        }
    }

    let lrs = match (&config.lrs, given("lrs")) {
        (Some(Numbers::List(list)), false) => list.clone(),
        (Some(Numbers::Text(text)), false) => parse_lrs(text)?,
        _ => parse_lrs(&args.lrs)?,
    };
    let grid = match args.grid.or(config.grid.clone()) {
        Some(text) => Some(parse_grid(&text)?),
        None => None,
    };

    // The target: a task if --task (or the file's task, unless --function) says so.
    let task = match (&args.task, given("function")) {
        (Some(task), _) => Some(task.clone()),
        (None, false) => config.task.clone(),
        (None, true) => None,
    };
    if task.is_some() && config.function.is_some() && config.task.is_some() {
        return Err(Failure::usage(format!(
            "config {}: give either function or task",
            path.display()
        )));
    }
    let target = match task {
        Some(name) => {
            for (id, flag, in_file) in [
                ("steps", "--steps", config.steps.is_some()),
                ("tol", "--tol", config.tol.is_some()),
            ] {
                if given(id) || in_file {
                    return Err(Failure::usage(format!(
                        "{flag} applies to sweeps on a --function, not a --task"
                    )));
                }
            }
            let task = Task::parse(&name).map_err(Failure::usage)?;
            Target::Task(args.task_args.settings(matches, &config, task))
        }
        None => {
            let c = &config;
            let in_file = [
                c.model.is_some(),
                c.hidden.is_some(),
                c.activation.is_some(),
                c.data.is_some(),
                c.val_fraction.is_some(),
                c.batch_size.is_some(),
                c.epochs.is_some(),
                c.seed.is_some(),
                c.clip_norm.is_some(),
            ];
            for ((id, flag), in_file) in train::TASK_FLAGS.iter().zip(in_file) {
                if given(id) || in_file {
                    return Err(Failure::usage(format!(
                        "{flag} applies to sweeps on a --task, not a --function"
                    )));
                }
            }
            Target::Function {
                name: pick(given("function"), args.function, config.function.clone()),
                steps: pick(given("steps"), args.steps, config.steps),
                tol: pick(given("tol"), args.tol, config.tol),
            }
        }
    };
    let schedule = match &args.schedule {
        Some(s) => Some(Spec::parse("schedule", s).map_err(Failure::usage)?),
        None => config.schedule(&path)?,
    };
    Ok(Settings {
        rules,
        lrs,
        grid,
        target,
        schedule,
        out: pick(given("out"), args.out, config.out.clone()),
    })
}

/// `1e-3,1e-2,0.1` or `FROM..TO:N`.
fn parse_lrs(text: &str) -> Result<Vec<f64>, Failure> {
    let bad = |why: &str| Failure::usage(format!("lrs '{text}': {why}"));
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| bad(&format!("'{}' is not a number", s.trim())))
    };
    if !text.contains(':') && text.contains("..") {
        return Err(bad(
            "a range needs the number of values: FROM..TO:N, e.g. 1e-4..1:9 \
             (N values evenly spaced on a log scale)",
        ));
    }
    if let Some((range, n)) = text.split_once(':') {
        let (from, to) = range
            .split_once("..")
            .ok_or_else(|| bad("a range is FROM..TO:N"))?;
        let (from, to) = (number(from)?, number(to)?);
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| bad("N must be a whole number"))?;
        if !(from > 0.0 && to > 0.0 && from.is_finite() && to.is_finite()) {
            return Err(bad("a log range needs FROM and TO > 0"));
        }
        if !(1..=1000).contains(&n) {
            return Err(bad("N must be between 1 and 1000"));
        }
        let ratio = (to / from).log10();
        Ok((0..n)
            .map(|i| {
                let t = if n == 1 {
                    0.0
                } else {
                    i as f64 / (n - 1) as f64
                };
                // 12 significant digits: 1e-3, not 0.0010000000000000002.
                let v = from * 10f64.powf(ratio * t);
                format!("{v:.11e}").parse().unwrap_or(v)
            })
            .collect())
    } else {
        let lrs = text.split(',').map(number).collect::<Result<Vec<_>, _>>()?;
        if lrs.is_empty() {
            return Err(bad("no learning rates"));
        }
        Ok(lrs)
    }
}

/// `FIELD=V1,V2,...`.
fn parse_grid(text: &str) -> Result<(String, Vec<String>), Failure> {
    let bad = || Failure::usage(format!("grid '{text}': expected FIELD=V1,V2,..."));
    let (field, values) = text.split_once('=').ok_or_else(bad)?;
    let field = field.trim();
    let values: Vec<String> = values
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    if field.is_empty() || values.is_empty() {
        return Err(bad());
    }
    if field == "lr" {
        return Err(Failure::usage("grid: lr is swept by --lrs"));
    }
    Ok((field.to_string(), values))
}

/// The files a sweep writes into its output directory.
const FILES: [&str; 3] = [
    "sweep-results.csv",
    "sweep-results.json",
    "sweep-heatmap.svg",
];

/// One row of the heatmap: a rule with its fixed fields and the grid's value.
struct Row {
    /// The rule as given (without the grid's field), for the tables.
    rule: String,
    /// The rule with the grid's field, for the heatmap and the report.
    label: String,
    /// The spec without lr.
    spec: Spec,
    /// The grid field's value.
    value: Option<String>,
    /// The checked rule at each learning rate.
    rules: Vec<AnyRule>,
}

/// One grid point's result.
#[derive(Clone, Copy, Serialize)]
struct Point {
    /// Final f − f* (function) or validation loss (task); NaN if diverged.
    loss: f64,
    /// Function: the first step with f − f* ≤ tol.
    steps_to_tol: Option<usize>,
    /// Task: final training loss.
    train_loss: Option<f32>,
    /// Task: final validation accuracy or R².
    val_metric: Option<f32>,
    diverged: bool,
}

/// A checked target, ready to run.
enum Ready<'a> {
    Function {
        function: &'static Function,
        steps: u64,
        tol: f64,
        schedule: Option<schedule::Schedule>,
    },
    Task {
        settings: &'a TaskSettings,
        model: crate::model::Model,
        clip: Option<gradstep::ClipNorm>,
        data: crate::data::Split,
        schedule: Option<schedule::Schedule>,
    },
}

impl Ready<'_> {
    fn run(&self, rule: AnyRule) -> Result<Point, Failure> {
        match self {
            Ready::Function {
                function,
                steps,
                tol,
                schedule,
            } => {
                let run = rules::run(
                    &rule,
                    function,
                    function.start,
                    *steps as usize,
                    schedule.as_ref(),
                )
                .map_err(|e| Failure::usage(format!("rule: {e}")))?;
                let m = measure(function, &run.path, *steps, *tol);
                let last = m.losses.last().map_or(f64::NAN, |l| l[1]);
                Ok(Point {
                    loss: if m.diverged { f64::NAN } else { last },
                    steps_to_tol: m.reached,
                    train_loss: None,
                    val_metric: None,
                    diverged: m.diverged,
                })
            }
            Ready::Task {
                settings,
                model,
                clip,
                data,
                schedule,
            } => {
                let run = train::Run {
                    model: *model,
                    data,
                    rule,
                    lookahead: None,
                    schedule: schedule.clone(),
                    clip: *clip,
                    batch_size: settings.batch_size,
                    epochs: settings.epochs,
                    seed: settings.seed,
                };
                let history = run.fit(|| {}, |_| Ok(()))?;
                let last = history.epochs[history.epochs.len() - 1];
                let diverged = history.diverged.is_some() || !last.val_loss.is_finite();
                Ok(Point {
                    loss: if diverged {
                        f64::NAN
                    } else {
                        f64::from(last.val_loss)
                    },
                    steps_to_tol: None,
                    train_loss: Some(last.train_loss),
                    val_metric: Some(last.val_metric),
                    diverged,
                })
            }
        }
    }

    /// The loss before any step (the same for every rule): the top of the heatmap's
    /// colour scale is 4 decades above it.
    fn start_loss(&self) -> f64 {
        match self {
            Ready::Function { function, .. } => {
                let offset = function.minimum.map_or(0.0, |(_, v)| v);
                ((function.f)(function.start) - offset).abs()
            }
            Ready::Task {
                settings,
                model,
                data,
                ..
            } => {
                let params = model.init(settings.seed);
                f64::from(train::evaluate(model, data, 0, 0.0, &params).val_loss)
            }
        }
    }
}

/// Checks every grid point, runs them with a progress bar, writes the table and the
/// heatmap, and prints the best settings.
pub fn run(settings: &Settings) -> Result<(), Failure> {
    // Every grid point is checked before anything runs; their number first, by
    // arithmetic, before any is built.
    let (n_rules, n_values, n_lrs) = (
        settings.rules.len(),
        settings.grid.as_ref().map_or(1, |g| g.1.len()),
        settings.lrs.len(),
    );
    let runs = n_rules as u128 * n_values as u128 * n_lrs as u128;
    if runs > MAX_RUNS as u128 {
        return Err(Failure::usage(format!(
            "{runs} runs ({n_rules} rules × {n_values} grid values × {n_lrs} learning rates): \
             a sweep may make at most {MAX_RUNS}"
        )));
    }
    let runs = runs as usize;
    let rows = rows(settings)?;
    let ready = match &settings.target {
        Target::Function { name, steps, tol } => {
            let function = compare::check_function(name, *steps, *tol)?;
            check_steps(runs, *steps, function)?;
            compare::check_start(function, function.start)?;
            let schedule = settings
                .schedule
                .as_ref()
                .map(|s| schedule::from_spec(s, *steps))
                .transpose()
                .map_err(Failure::usage)?;
            Ready::Function {
                function,
                steps: *steps,
                tol: *tol,
                schedule,
            }
        }
        Target::Task(t) => {
            let (model, clip) = t.check()?;
            let schedule = settings
                .schedule
                .as_ref()
                .map(|s| schedule::from_spec(s, t.epochs))
                .transpose()
                .map_err(Failure::usage)?;
            let data = t.load()?;
            train::check_work(runs, &model, &data, t.batch_size, t.epochs)?;
            Ready::Task {
                settings: t,
                model,
                clip,
                data,
                schedule,
            }
        }
    };
    let (schedule, metric) = match &ready {
        Ready::Function { schedule, .. } => (schedule.as_ref(), false),
        Ready::Task { schedule, .. } => (schedule.as_ref(), true),
    };
    if let Some(s) = schedule {
        for row in &rows {
            if let Some(rule) = row.rules.first() {
                s.check_rule(rule, metric).map_err(Failure::usage)?;
            }
        }
    }
    check_writable(&settings.out, &FILES)?;

    let started = Instant::now();
    let progress = Progress::new(runs as u64, "runs");
    let mut results: Vec<Vec<Point>> = Vec::with_capacity(rows.len());
    let start_loss = ready.start_loss();
    for row in &rows {
        let mut points = Vec::with_capacity(row.rules.len());
        for (rule, lr) in row.rules.iter().zip(&settings.lrs) {
            progress.message(format!("{} lr={}", row.spec.name, num(*lr)));
            points.push(ready.run(*rule)?);
            progress.inc();
        }
        results.push(points);
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();

    let what = describe(&ready);
    let files = files(settings, &rows, &results, &what, start_loss)?;
    let [csv, json, svg] = FILES;
    let written = write_files(
        &settings.out,
        &[(csv, &files[0]), (json, &files[1]), (svg, &files[2])],
    )?;
    let mut text = report(settings, &rows, &results, &what, seconds);
    for path in written {
        let _ = writeln!(text, "wrote {}", path.display());
    }
    crate::print(&text)
}

/// Checks that `runs` runs of `steps` steps on `function` stay within
/// [`MAX_TOTAL_STEPS`].
fn check_steps(runs: usize, steps: u64, function: &Function) -> Result<(), Failure> {
    let weight = function.step_weight();
    let total = runs as f64 * steps as f64 * weight as f64;
    if total <= MAX_TOTAL_STEPS {
        return Ok(());
    }
    let weight_text = if function.name == crate::functions::TYPED_NAME {
        format!(
            " × {weight} (your function's {} operations / 10)",
            function.operations()
        )
    } else {
        String::new()
    };
    Err(Failure::usage(format!(
        "{runs} runs × {steps} steps{weight_text} = {total:.1e} steps: a sweep on a function \
         takes at most {MAX_TOTAL_STEPS:e} (about 5 minutes; fewer runs or --steps)"
    )))
}

/// What the sweep is on, and what its loss column means.
struct What {
    /// `rosenbrock, 500 steps` or `digits: softmax regression (64 → 10), 20 epochs`.
    target: String,
    /// `final f − f*` or `final validation loss`.
    loss: &'static str,
    /// `accuracy` or `r2` for a task.
    metric: Option<&'static str>,
}

fn describe(ready: &Ready<'_>) -> What {
    match ready {
        Ready::Function {
            function, steps, ..
        } => What {
            target: format!("{}, {steps} steps", function.name),
            loss: if function.minimum.is_some() {
                "final f − f*"
            } else {
                "final f"
            },
            metric: None,
        },
        Ready::Task {
            settings: t, model, ..
        } => {
            let mut target = format!(
                "{}: {}, batch {}, {} epochs, seed {}",
                t.task.name(),
                model.describe(),
                t.batch_size,
                t.epochs,
                t.seed
            );
            if let Some(c) = t.clip_norm {
                let _ = write!(target, ", clip-norm {c}");
            }
            What {
                target,
                loss: match t.task {
                    Task::Digits => "final validation loss",
                    Task::Diabetes => "final validation MSE",
                },
                metric: Some(t.task.metric()),
            }
        }
    }
}

/// Every row of the grid, each rule checked at every learning rate.
fn rows(settings: &Settings) -> Result<Vec<Row>, Failure> {
    let values: Vec<Option<&String>> = match &settings.grid {
        Some((_, values)) => values.iter().map(Some).collect(),
        None => vec![None],
    };
    let mut rows = Vec::new();
    for spec in &settings.rules {
        for swept in ["lr"]
            .into_iter()
            .chain(settings.grid.as_ref().map(|g| g.0.as_str()))
        {
            if spec.fields.iter().any(|(f, _)| f == swept) {
                let by = if swept == "lr" { "--lrs" } else { "--grid" };
                return Err(Failure::usage(format!(
                    "rule '{}': {swept} is swept by {by}; leave it out of the rule",
                    spec.name
                )));
            }
        }
        if spec.lookahead.is_some() {
            return Err(Failure::usage(format!(
                "rule 'lookahead({})': lookahead(...) is taken by compare and train only",
                spec.name
            )));
        }
        for value in &values {
            let mut fields = spec.fields.clone();
            if let (Some((field, _)), Some(value)) = (&settings.grid, value) {
                fields.push((field.clone(), (*value).clone()));
            }
            let base = Spec::new("rule", spec.name.clone(), fields).map_err(Failure::usage)?;
            let mut rules = Vec::with_capacity(settings.lrs.len());
            for lr in &settings.lrs {
                let mut with_lr = base.clone();
                with_lr.fields.insert(0, ("lr".to_string(), lr.to_string()));
                rules.push(rules::from_spec(&with_lr).map_err(Failure::usage)?);
            }
            rows.push(Row {
                rule: spec.label(),
                label: base.label(),
                spec: base,
                value: value.cloned(),
                rules,
            });
        }
    }
    Ok(rows)
}

/// A learning rate as a short label: `1e-4`, `3.2e-4`, `5e-2`, `1`.
fn lr_label(lr: f64) -> String {
    let text = format!("{lr:.1e}").replace(".0e", "e");
    text.strip_suffix("e0").map_or(text.clone(), str::to_string)
}

/// The best (lowest finite loss) point of a row: (column, point).
fn best(points: &[Point]) -> Option<(usize, &Point)> {
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.loss.is_finite())
        .min_by(|a, b| a.1.loss.total_cmp(&b.1.loss))
}

/// The printed report: the grid as a table, the best learning rate per row, the best
/// overall.
fn report(
    settings: &Settings,
    rows: &[Row],
    results: &[Vec<Point>],
    what: &What,
    seconds: f64,
) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut text = format!(
        "sweep: {}; {} × ",
        what.target,
        count(settings.rules.len(), "rule")
    );
    if let Some((field, values)) = &settings.grid {
        let _ = write!(
            text,
            "{} × ",
            count(values.len(), &format!("{field} value"))
        );
    }
    let _ = write!(
        text,
        "{} = {}",
        count(settings.lrs.len(), "learning rate"),
        count(rows.len() * settings.lrs.len(), "run")
    );
    if let Some(s) = &settings.schedule {
        let _ = write!(text, "; schedule {}", s.label());
    }
    let _ = writeln!(
        text,
        " ({seconds:.1} s)\n{} (- = diverged, * = the best lr of the row):",
        what.loss
    );
    let width = rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = write!(text, "{:<width$}", "rule");
    let mut line = String::new();
    for lr in &settings.lrs {
        let _ = write!(line, "  {:>8} ", lr_label(*lr));
    }
    let _ = writeln!(text, "{}", line.trim_end());
    for (row, points) in rows.iter().zip(results) {
        let mut line = format!("{:<width$}", row.label);
        let best_column = best(points).map(|(c, _)| c);
        for (c, p) in points.iter().enumerate() {
            let cell = if p.loss.is_finite() {
                short(p.loss)
            } else {
                "-".to_string()
            };
            let mark = if Some(c) == best_column { "*" } else { " " };
            let _ = write!(line, "  {cell:>8}{mark}");
        }
        let _ = writeln!(text, "{}", line.trim_end());
    }
    let describe = |row: &Row, lr: f64, p: &Point| {
        let mut s = format!("{}: {} {}", with_lr(row, lr), what.loss, short(p.loss));
        if let (Some(metric), Some(m)) = (what.metric, p.val_metric) {
            let _ = write!(s, ", validation {metric} {m:.4}");
        }
        if let Some(t) = p.steps_to_tol {
            let _ = write!(s, ", {t} steps to tol");
        }
        s
    };
    text += "best learning rate per rule:\n";
    let mut overall: Option<(&Row, f64, &Point)> = None;
    for (row, points) in rows.iter().zip(results) {
        match best(points) {
            Some((c, p)) => {
                let lr = settings.lrs[c];
                let _ = writeln!(text, "  {}", describe(row, lr, p));
                if overall.is_none_or(|o| p.loss < o.2.loss) {
                    overall = Some((row, lr, p));
                }
            }
            None => {
                let _ = writeln!(text, "  {}: diverged at every learning rate", row.label);
            }
        }
    }
    match overall {
        Some((row, lr, p)) => {
            let _ = writeln!(text, "best overall: {}", describe(row, lr, p));
        }
        None => text += "best overall: none, every run diverged\n",
    }
    text += &edge_hints(settings, rows, results);
    text
}

/// A hint for each row whose best learning rate is the smallest or the largest swept:
/// the best may lie outside the range.
fn edge_hints(settings: &Settings, rows: &[Row], results: &[Vec<Point>]) -> String {
    let lrs = &settings.lrs;
    let mut text = String::new();
    if lrs.len() < 2 {
        return text;
    }
    let (lowest, highest) = lrs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    for (row, points) in rows.iter().zip(results) {
        let Some((c, _)) = best(points) else { continue };
        let lr = lrs[c];
        let side = if lr == lowest {
            "smallest"
        } else if lr == highest {
            "largest"
        } else {
            continue;
        };
        let direction = if side == "smallest" { "below" } else { "above" };
        let _ = writeln!(
            text,
            "hint: {}'s best lr {} is the {side} swept: widen the range (--lrs) {direction} \
             it, the best may lie outside",
            row.label,
            lr_label(lr)
        );
    }
    text
}

/// `adam(lr=0.01, momentum=0.9)`, the learning rate in 3 significant digits.
fn with_lr(row: &Row, lr: f64) -> String {
    let mut spec = row.spec.clone();
    let lr = format!("{lr:.2e}").parse::<f64>().unwrap_or(lr);
    spec.fields.insert(0, ("lr".to_string(), num(lr)));
    spec.label()
}

/// The JSON file's contents.
#[derive(Serialize)]
struct Results<'a> {
    target: &'a str,
    loss: &'static str,
    schedule: Option<String>,
    grid_field: Option<&'a str>,
    runs: Vec<Run<'a>>,
}

/// One run in sweep-results.json.
#[derive(Serialize)]
struct Run<'a> {
    rule: &'a str,
    lr: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(flatten)]
    point: Point,
}

/// sweep-results.csv, sweep-results.json and sweep-heatmap.svg.
fn files(
    settings: &Settings,
    rows: &[Row],
    results: &[Vec<Point>],
    what: &What,
    start_loss: f64,
) -> Result<[String; 3], Failure> {
    let field = settings.grid.as_ref().map(|g| g.0.as_str());
    let mut csv = String::from("rule,lr");
    if let Some(f) = field {
        let _ = write!(csv, ",{f}");
    }
    match what.metric {
        Some(metric) => {
            let _ = writeln!(csv, ",train_loss,val_loss,val_{metric},diverged");
        }
        None => csv += ",final_loss,steps_to_tol,diverged\n",
    }
    let mut runs = Vec::new();
    for (row, points) in rows.iter().zip(results) {
        for (lr, p) in settings.lrs.iter().zip(points) {
            // Debug: the shortest round-trip digits, in exponent form when tiny or huge.
            let _ = write!(csv, "{},{lr:?}", csv_field(&row.rule));
            if let Some(v) = &row.value {
                let _ = write!(csv, ",{}", csv_field(v));
            }
            let opt = |v: Option<String>| v.unwrap_or_default();
            // A task's losses are f32: written as such, not widened.
            let loss = match (p.loss.is_finite(), what.metric) {
                (false, _) => String::new(),
                (true, Some(_)) => format!("{:?}", p.loss as f32),
                (true, None) => format!("{:?}", p.loss),
            };
            match what.metric {
                Some(_) => {
                    let _ = writeln!(
                        csv,
                        ",{},{loss},{},{}",
                        opt(p.train_loss.map(|v| format!("{v:?}"))),
                        opt(p.val_metric.map(|v| format!("{v:?}"))),
                        p.diverged
                    );
                }
                None => {
                    let _ = writeln!(
                        csv,
                        ",{loss},{},{}",
                        opt(p.steps_to_tol.map(|v| v.to_string())),
                        p.diverged
                    );
                }
            }
            runs.push(Run {
                rule: &row.rule,
                lr: *lr,
                value: row.value.as_deref(),
                point: *p,
            });
        }
    }
    let results_json = Results {
        target: &what.target,
        loss: what.loss,
        schedule: settings.schedule.as_ref().map(Spec::label),
        grid_field: field,
        runs,
    };
    let mut json = serde_json::to_string_pretty(&results_json)
        .map_err(|e| Failure::io(format!("cannot write the results: {e}")))?;
    json.push('\n');

    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let columns: Vec<String> = settings.lrs.iter().map(|&lr| lr_label(lr)).collect();
    let values: Vec<Vec<f64>> = results
        .iter()
        .map(|points| points.iter().map(|p| p.loss).collect())
        .collect();
    let title = format!(
        "sweep: {} — {} (outlined: the best lr of each row)",
        what.target, what.loss
    );
    let best_cells: Vec<Option<usize>> = results
        .iter()
        .map(|points| best(points).map(|(c, _)| c))
        .collect();
    let svg = plot::heatmap_svg(&Heatmap {
        title: &title,
        rows: &labels,
        columns: &columns,
        values: &values,
        x_desc: "learning rate",
        y_desc: "rule",
        colour_desc: what.loss,
        best: &best_cells,
        cap: start_loss
            .is_finite()
            .then(|| start_loss.abs().max(f64::MIN_POSITIVE) * 1e4),
    })?;
    Ok([csv, json, svg])
}

/// A CSV field, quoted when it holds a comma or a quote (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
