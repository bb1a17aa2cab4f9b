//! `gradstep`: watch optimizer update rules at work.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use config::pick;

mod compare;
mod config;
mod data;
mod demo;
mod explain;
mod expr;
mod functions;
mod gallery;
mod input;
mod model;
mod output;
mod plot;
mod progress;
mod rng;
mod rules;
mod schedule;
mod sweep;
mod tour;
mod train;

/// Watch optimizer update rules at work.
#[derive(Parser)]
#[command(
    name = "gradstep",
    version,
    about,
    after_help = "Exit status: 0 on success, 2 for a usage error (a bad flag, rule, \
                  hyperparameter, schedule or config file content), 1 when a file cannot \
                  be read or written (a data file that is not a data set included)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The source article's experiment (Dive into Deep Learning's momentum section): gradient descent and momentum on
    /// f(x1, x2) = 0.1·x1² + 2·x2² from (−5, −2), 20 steps each; prints the final points
    /// and draws the four trajectories over the contour lines of f into DIR/demo.svg.
    Demo(DemoArgs),
    /// Show the learning-rate schedules side by side, as torch steps them: prints the
    /// rate of each at a few epochs and draws DIR/schedules.svg.
    Schedules(SchedulesArgs),
    /// Run several update rules on a 2-D test function: prints a table (final loss,
    /// steps to reach the tolerance) and draws DIR/compare-trajectories.svg (paths over the
    /// contour lines of f) and DIR/compare-loss.svg (f − f* against step, log scale).
    #[command(after_long_help = compare_help())]
    Compare(CompareArgs),
    /// Train a model on a real data set shipped with gradstep (8×8 handwritten digits:
    /// softmax regression or an MLP; diabetes: linear regression or an MLP) with any
    /// rule, schedule, clipping, batch size, epochs and seed; prints train and
    /// validation loss and accuracy (R² for diabetes) per epoch and writes DIR/train-log.csv,
    /// DIR/train-log.json and DIR/train-loss.svg. The same seed gives the same numbers.
    #[command(after_long_help = rules_help())]
    Train(train::TrainArgs),
    /// Explain an update rule in plain words: its equations, each field with torch's
    /// default, where torch, Keras and optax differ, and the idea behind it. Without a
    /// RULE: every rule in one line.
    Explain(ExplainArgs),
    /// Sweep a grid of rules × learning rates (× one more hyperparameter) on a test
    /// function or a training task: prints the final loss of every run and the best
    /// settings, and writes DIR/sweep-results.csv, DIR/sweep-results.json and DIR/sweep-heatmap.svg.
    #[command(after_long_help = sweep_help())]
    Sweep(sweep::SweepArgs),
    /// A walk through the seed article's ideas, one stop per concept (adaptive rates,
    /// bias correction, AMSGrad, proximal L1 and lazy FTRL, momentum kinds, Adan, decay):
    /// each states the article's claim, runs the rules on a test problem, prints what
    /// gradstep measured and whether it agrees, and draws DIR/tour-CONCEPT.svg.
    #[command(after_long_help = tour::concepts_help() + EXIT_STATUS)]
    Tour(TourArgs),
}

#[derive(Args)]
struct TourArgs {
    /// Only this stop: adaptive, bias-correction, amsgrad, l1, momentum, adan, decay.
    #[arg(long, value_name = "NAME")]
    concept: Option<String>,
    /// Directory for the tour-*.svg pictures (created if missing).
    #[arg(long, value_name = "DIR", default_value = "gradstep-out")]
    out: PathBuf,
}

#[derive(Args)]
struct DemoArgs {
    /// Directory for demo.svg (created if missing).
    #[arg(long, value_name = "DIR", default_value = "gradstep-out")]
    out: PathBuf,
}

#[derive(Args)]
struct ExplainArgs {
    /// The rule's name (sgd, adam, ...).
    #[arg(value_name = "RULE")]
    rule: Option<String>,
}

#[derive(Args)]
struct SchedulesArgs {
    /// Epochs to show.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100,
        allow_negative_numbers = true
    )]
    epochs: u64,
    /// The base (or peak) learning rate, > 0 and at most 1e300.
    #[arg(
        long,
        value_name = "LR",
        default_value_t = 0.1,
        allow_negative_numbers = true
    )]
    lr: f64,
    /// Directory for schedules.svg (created if missing).
    #[arg(long, value_name = "DIR", default_value = "gradstep-out")]
    out: PathBuf,
}

#[derive(Args)]
struct CompareArgs {
    /// A rule and its hyperparameters, NAME[:FIELD=VALUE,...], e.g.
    /// `--rule sgd:lr=0.01,momentum=0.9`; repeat for several. Fields are the kernel
    /// structs' (torch's names; Adam's betas are beta1, beta2); a bare FIELD means
    /// FIELD=true; the rest keep torch's defaults (listed below with --help). At most
    /// 27 rules.
    ///
    /// [default: sgd:lr=0.001 sgd:lr=0.001,momentum=0.9 adam:lr=0.1]
    #[arg(long = "rule", value_name = "SPEC")]
    rules: Vec<String>,
    /// Test function: quadratic, rosenbrock, beale, saddle, rastrigin, or your own
    /// expression in x1 and x2, e.g. "x1^2 + 10*x2^2" or "sin(x1) + (x2 - 1)^2"
    /// (+ - * / ^, sin cos tan exp ln sqrt abs tanh, pi, e; at most 1000 characters and
    /// parentheses 50 deep; it may start with a minus: `--function "-x1^2 - x2^2"`; the
    /// gradient is exact, by forward-mode dual numbers; shown on [−3, 3]², from (1, 1)
    /// unless --start, where f and its gradient must be finite).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "rosenbrock",
        allow_hyphen_values = true
    )]
    function: String,
    /// Steps per rule (at most 1000000, and rules × steps at most 5000000: every step
    /// of every rule is kept for the pictures).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    steps: u64,
    /// Tolerance: the table counts the steps until f − f* ≤ TOL (for the saddle, which
    /// has no minimum: until f ≤ −1).
    #[arg(
        long,
        value_name = "TOL",
        default_value = "1e-6",
        allow_negative_numbers = true
    )]
    tol: f64,
    /// A learning-rate schedule applied to every rule, NAME[:FIELD=VALUE,...], e.g.
    /// `--schedule cosine:t_max=500` or `--schedule step:step_size=100,gamma=0.5`.
    #[arg(long, value_name = "SPEC")]
    schedule: Option<String>,
    /// A TOML file with any of: function, steps, tol, out (relative to the file),
    /// [[rule]] tables (name = "sgd", lr = 0.01, ...) and a [schedule] table (name = ...,
    /// fields). Flags given on the command line win over the file. A regular file of at
    /// most 1 MiB.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Start every run at X1,X2 instead of the function's start point (e.g.
    /// `--start=-1,2`).
    #[arg(long, value_name = "X1,X2", allow_hyphen_values = true, value_parser = parse_point)]
    start: Option<[f64; 2]>,
    /// Add Gaussian noise of standard deviation SIGMA to each gradient coordinate, as a
    /// mini-batch gradient scatters around the full one (every rule gets the same
    /// noise, from --seed).
    #[arg(
        long,
        value_name = "SIGMA",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    noise: f64,
    /// Seed of the gradient noise.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Also write DIR/compare-animation.html: the runs moving along their paths, step
    /// by step (a self-contained page; open it in a browser).
    #[arg(long)]
    animate: bool,
    /// Directory for compare-trajectories.svg and compare-loss.svg (created if missing).
    #[arg(long, value_name = "DIR", default_value = "gradstep-out")]
    out: PathBuf,
}

/// The lists `gradstep train --help` ends with: every rule with its fields and defaults,
/// the schedules, the exit statuses.
fn rules_help() -> String {
    rules_and_schedules("EPOCHS = --epochs") + EXIT_STATUS
}

/// Every rule with its fields and defaults, and the schedules; `length` says what the
/// schedules' `STEPS`/`EPOCHS` default stands for.
fn rules_and_schedules(length: &str) -> String {
    let mut text = String::from("Rules, with their fields and defaults (torch's):\n");
    text += &rules::defaults_help();
    let unit = length.split(' ').next().unwrap_or("STEPS");
    text += &format!("\nSchedules (fields and defaults; - = required, {length}):\n");
    for (name, torch, fields) in schedule::SCHEDULES {
        text += &format!("  {name:<21} {torch}: {}\n", fields.replace("STEPS", unit));
    }
    let (name, torch, fields) = schedule::PLATEAU;
    text += &format!("  {name:<21} {torch}: {fields}\n");
    text += "  (LR = the rule's lr; list fields separate their values with /)\n";
    text
}

/// The closing paragraph of every subcommand's long help.
const EXIT_STATUS: &str = "\nExit status: 0 on success, 2 for a usage error (a bad flag, rule, field, \
                           value, schedule or config file content), 1 when a file cannot be read \
                           or written (a data file that is not a data set included; --config \
                           and --data read regular files of at most 1 MiB and 16 MiB). No output \
                           file is left half-written, and a failed run leaves the files of an \
                           earlier run in --out as they were.";

/// The lists `gradstep sweep --help` ends with: rules, schedules, functions.
fn sweep_help() -> String {
    rules_and_schedules("STEPS = --steps, or EPOCHS = --epochs on a task")
        + &functions_help()
        + EXIT_STATUS
}

/// The lists `gradstep compare --help` ends with: every rule with its fields and
/// defaults, the schedules, the functions.
fn compare_help() -> String {
    rules_and_schedules("STEPS = --steps") + &functions_help() + EXIT_STATUS
}

/// The test functions with their start points and minima.
fn functions_help() -> String {
    let mut text = String::from("\nFunctions (start point, minimum):\n");
    for f in &functions::FUNCTIONS {
        let [sx, sy] = f.start;
        let minimum = match f.minimum {
            Some(([x, y], v)) => format!("f({x}, {y}) = {v}"),
            None => "none".to_string(),
        };
        text += &format!(
            "  {:<10} f = {}, from ({sx}, {sy}), minimum {minimum}\n",
            f.name, f.formula
        );
    }
    text
}

/// `X1,X2` as a point.
fn parse_point(text: &str) -> Result<[f64; 2], String> {
    let bad = || format!("'{text}' is not a point X1,X2 (e.g. -1,2)");
    let (a, b) = text.split_once(',').ok_or_else(bad)?;
    let a: f64 = a.trim().parse().map_err(|_| bad())?;
    let b: f64 = b.trim().parse().map_err(|_| bad())?;
    Ok([a, b])
}

/// The config file keys of `compare`.
const COMPARE_KEYS: &[&str] = &["function", "steps", "tol", "out", "rule", "schedule"];

/// Merges flags, config file and defaults: a flag given on the command line wins, then
/// the config file, then the flag's default.
fn compare_settings(args: CompareArgs, matches: &ArgMatches) -> Result<compare::Settings, Failure> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let (config, config_path) = match &args.config {
        Some(path) => (
            config::Config::read(path, "compare", COMPARE_KEYS)?,
            path.clone(),
        ),
        None => (config::Config::default(), PathBuf::new()),
    };
    let rules = if !args.rules.is_empty() {
        args.rules
            .iter()
            .map(|r| rules::Spec::parse("rule", r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::usage)?
    } else if config.rule.is_some() {
        let specs = config.rules(&config_path)?;
        for (i, spec) in specs.iter().enumerate() {
            rules::from_spec(spec).map_err(|e| {
                Failure::usage(format!(
                    "config {}: rule {}: {e}",
                    config_path.display(),
                    i + 1
                ))
            })?;
        }
        specs
    } else {
        compare::DEFAULT_RULES
            .iter()
            .map(|r| rules::Spec::parse("rule", r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::usage)?
    };
    let schedule = match &args.schedule {
        Some(s) => Some(rules::Spec::parse("schedule", s).map_err(Failure::usage)?),
        None => config.schedule(&config_path)?,
    };
    Ok(compare::Settings {
        rules,
        function: pick(given("function"), args.function, config.function),
        steps: pick(given("steps"), args.steps, config.steps),
        tol: pick(given("tol"), args.tol, config.tol),
        schedule,
        animate: args.animate,
        start: args.start,
        noise: args.noise,
        seed: args.seed,
        out: pick(given("out"), args.out, config.out),
    })
}

/// Why a command failed; the exit status tells the two kinds apart.
#[derive(Debug)]
pub enum Failure {
    /// What was asked for is invalid (exit status 2, as clap's usage errors).
    Usage(String),
    /// A file could not be read or written (exit status 1).
    Io(String),
}

impl Failure {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::Usage(message.into())
    }
    /// A file error.
    pub fn io(message: impl Into<String>) -> Self {
        Failure::Io(message.into())
    }
}

/// Writes `text` to standard output; a closed pipe is not worth a panic.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::io(format!("cannot write to standard output: {e}"))),
    }
}

/// `text` with its control characters (ESC, carriage return, ...) escaped as Rust
/// writes them (`\u{1b}`, `\r`); everything else as it is.
fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn main() -> ExitCode {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (m, cli)));
    let (matches, cli) = match parsed {
        Ok(parsed) => parsed,
        // --help, --version, and no subcommand at all: clap prints the help or version;
        // a help that cannot be written (a full disk) is a failure, a closed pipe not.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            return match e.print() {
                Err(io) if io.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("error: cannot write to standard output: {io}");
                    ExitCode::from(1)
                }
                _ => ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)),
            };
        }
        Err(e) => {
            // One line: clap's message ("error: ..."), then its tips ("a similar
            // argument exists: '--rule'") in parentheses; the usage lines are left out.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            let tips: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter_map(|l| l.strip_prefix("tip: "))
                .collect();
            let line = if tips.is_empty() {
                format!("{first} (see --help)")
            } else {
                format!("{first} ({}; see --help)", tips.join("; "))
            };
            eprintln!("{}", escape_controls(&line));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args.out),
        Command::Explain(args) => explain::run(args.rule.as_deref()),
        Command::Schedules(args) => gallery::run(args.epochs, args.lr, &args.out),
        Command::Tour(args) => tour::run(&args.out, args.concept.as_deref()),
        Command::Compare(args) => {
            let sub = matches
                .subcommand_matches("compare")
                .expect("clap matched the compare subcommand");
            compare_settings(args, sub).and_then(|s| compare::run(&s))
        }
        Command::Sweep(args) => {
            let sub = matches
                .subcommand_matches("sweep")
                .expect("clap matched the sweep subcommand");
            sweep::settings(args, sub).and_then(|s| sweep::run(&s))
        }
        Command::Train(args) => {
            let sub = matches
                .subcommand_matches("train")
                .expect("clap matched the train subcommand");
            train::settings(args, sub).and_then(|s| train::run(&s))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let (message, code) = match failure {
                Failure::Usage(m) => (m, 2),
                Failure::Io(m) => (m, 1),
            };
            // One line: the message itself must not span several, and a user's text
            // in it must not move the cursor or colour the terminal.
            let message = escape_controls(&message.replace('\n', " "));
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}
