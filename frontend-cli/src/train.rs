//! `gradstep train`: fit a model to a real data set with any rule, schedule, clipping,
//! batch size, epochs and seed; per-epoch lines, `train-log.csv`, `train-log.json` and `train-loss.svg`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use gradstep::ClipNorm;
use serde::Serialize;

use crate::Failure;
use crate::config::{Config, pick};
use crate::data::{self, Split, Task};
use crate::model::{Activation, Head, Model, Scratch};
use crate::output::{check_writable, write_files};
use crate::plot::{self, Series};
use crate::progress::Progress;
use crate::rules::{self, Spec};
use crate::schedule;
use gradstep::rules::AnyRule;

/// Most epochs a run may take.
pub const MAX_EPOCHS: u64 = 100_000;
/// Most hidden units.
pub const MAX_HIDDEN: usize = 4096;

/// Most work a `train` run, or all the runs of a `sweep --task`, may take: epochs ×
/// parameters × (rows + batches per epoch), each row passing forward and back (and
/// evaluated) and each batch stepping every parameter once an epoch. About 1.5 ns per
/// unit on a laptop core: 2e11 is about 5 minutes.
pub const MAX_WORK: f64 = 2e11;

/// Checks that `runs` runs of `epochs` epochs of `model` on `data` in batches of
/// `batch_size` stay within [`MAX_WORK`].
pub fn check_work(
    runs: usize,
    model: &Model,
    data: &Split,
    batch_size: usize,
    epochs: u64,
) -> Result<(), Failure> {
    let params: usize = model.sizes().iter().sum();
    let rows = data.train.len() + data.val.len();
    let batches = data.train.len().div_ceil(batch_size.max(1));
    let work = runs as f64 * epochs as f64 * params as f64 * (rows + batches) as f64;
    if work <= MAX_WORK {
        return Ok(());
    }
    let (runs_text, fewer_runs) = if runs == 1 {
        (String::new(), "")
    } else {
        (format!("{runs} runs × "), "fewer runs, ")
    };
    Err(Failure::usage(format!(
        "{runs_text}{epochs} epochs × {params} parameters × ({rows} rows + {batches} batches) \
         = {work:.1e} units of work: at most {MAX_WORK:e} (about 5 minutes; {fewer_runs}fewer \
         epochs, a smaller model or larger batches)"
    )))
}

/// The settings of a training run that `train` and `sweep --task` share.
#[derive(Args, Debug)]
pub struct TaskArgs {
    /// Model: `softmax` (softmax regression) or `mlp` for digits; `linear` (linear
    /// regression) or `mlp` for diabetes.
    ///
    /// [default: softmax for digits, linear for diabetes]
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// Hidden units of the MLP.
    #[arg(long, value_name = "N", default_value_t = 32)]
    hidden: usize,
    /// The MLP's activation: relu or tanh.
    #[arg(long, value_name = "NAME", default_value = "relu")]
    activation: String,
    /// The data file (CSV as in data/README.md; a regular file of at most 16 MiB).
    ///
    /// [default: the built-in copy of the repository's data/digits.csv or
    /// data/diabetes.csv, embedded in the program]
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Fraction of the rows held out for validation (chosen at random from --seed).
    #[arg(
        long,
        value_name = "F",
        default_value_t = 0.2,
        allow_negative_numbers = true
    )]
    val_fraction: f64,
    /// Rows per mini-batch (the last batch of an epoch may be smaller).
    #[arg(long, value_name = "N", default_value_t = 32)]
    batch_size: usize,
    /// Passes over the training rows (at most 100000; and at most 2e11 units of work,
    /// about 5 minutes: epochs × parameters × (rows plus batches per epoch), summed
    /// over the runs of a sweep).
    #[arg(long, value_name = "N", default_value_t = 20)]
    epochs: u64,
    /// Seed of the split, the weight initialization and the batch order; the same
    /// seed gives the same numbers.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Clip the gradients' global 2-norm to MAX before each step (torch's
    /// clip_grad_norm_).
    #[arg(long, value_name = "MAX", allow_negative_numbers = true)]
    clip_norm: Option<f64>,
}

/// The config file keys [`TaskArgs`] reads.
pub const TASK_KEYS: &[&str] = &[
    "task",
    "model",
    "hidden",
    "activation",
    "data",
    "val_fraction",
    "batch_size",
    "epochs",
    "seed",
    "clip_norm",
];

/// The command-line ids of [`TaskArgs`]' flags and their spelling, in the order of
/// the config file's keys in `sweep`'s check.
pub const TASK_FLAGS: &[(&str, &str)] = &[
    ("model", "--model"),
    ("hidden", "--hidden"),
    ("activation", "--activation"),
    ("data", "--data"),
    ("val_fraction", "--val-fraction"),
    ("batch_size", "--batch-size"),
    ("epochs", "--epochs"),
    ("seed", "--seed"),
    ("clip_norm", "--clip-norm"),
];

/// A training run's settings after flags, config file and defaults are merged; the
/// values are checked by [`TaskSettings::check`].
#[derive(Clone, Debug)]
pub struct TaskSettings {
    /// The task.
    pub task: Task,
    /// Model name as given, or `None` for the task's default.
    pub model: Option<String>,
    /// Hidden units.
    pub hidden: usize,
    /// Activation name.
    pub activation: String,
    /// The data file; `None` for the built-in data set.
    pub data: Option<PathBuf>,
    /// Validation fraction.
    pub val_fraction: f64,
    /// Rows per batch.
    pub batch_size: usize,
    /// Epochs.
    pub epochs: u64,
    /// Seed.
    pub seed: u64,
    /// Global 2-norm clip.
    pub clip_norm: Option<f64>,
}

impl TaskArgs {
    /// Merges the flags with `config` (flags given on the command line win) for `task`.
    pub fn settings(self, matches: &ArgMatches, config: &Config, task: Task) -> TaskSettings {
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let c = config;
        TaskSettings {
            task,
            model: self.model.or_else(|| c.model.clone()),
            hidden: pick(given("hidden"), self.hidden, c.hidden),
            activation: pick(given("activation"), self.activation, c.activation.clone()),
            data: self.data.or_else(|| c.data.clone()),
            val_fraction: pick(given("val_fraction"), self.val_fraction, c.val_fraction),
            batch_size: pick(given("batch_size"), self.batch_size, c.batch_size),
            epochs: pick(given("epochs"), self.epochs, c.epochs),
            seed: pick(given("seed"), self.seed, c.seed),
            clip_norm: self.clip_norm.or(c.clip_norm),
        }
    }
}

impl TaskSettings {
    /// Checks every value and builds the model; usage failures name the flag.
    pub fn check(&self) -> Result<(Model, Option<ClipNorm>), Failure> {
        let usage = |m: String| Err(Failure::usage(m));
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return usage(format!(
                "epochs = {} must be between 1 and {MAX_EPOCHS}",
                self.epochs
            ));
        }
        if self.batch_size == 0 {
            return usage("batch-size = 0 must be at least 1".into());
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            return usage(format!(
                "val-fraction = {} must be between 0 and 1 (exclusive)",
                self.val_fraction
            ));
        }
        let clip = match self.clip_norm {
            Some(max) => {
                let clip = ClipNorm::new(max);
                clip.validate()
                    .map_err(|e| Failure::usage(format!("clip-norm: {e}")))?;
                Some(clip)
            }
            None => None,
        };
        let activation = Activation::parse(&self.activation).map_err(Failure::usage)?;
        let (inputs, outputs, head) = match self.task {
            Task::Digits => (64, 10, Head::Softmax),
            Task::Diabetes => (10, 1, Head::Regression),
        };
        let single = match self.task {
            Task::Digits => "softmax",
            Task::Diabetes => "linear",
        };
        let hidden = match self.model.as_deref().unwrap_or(single) {
            "mlp" => {
                if !(1..=MAX_HIDDEN).contains(&self.hidden) {
                    return usage(format!(
                        "hidden = {} must be between 1 and {MAX_HIDDEN}",
                        self.hidden
                    ));
                }
                Some((self.hidden, activation))
            }
            name if name == single => None,
            name => {
                return usage(format!(
                    "unknown model '{name}' for {} (models: {single}, mlp)",
                    self.task.name()
                ));
            }
        };
        let model = Model {
            inputs,
            hidden,
            outputs,
            head,
        };
        Ok((model, clip))
    }

    /// The data file's path, or the built-in data set's name.
    pub fn data_name(&self) -> String {
        self.data.as_ref().map_or_else(
            || self.task.builtin_name().to_string(),
            |p| p.display().to_string(),
        )
    }

    /// Reads the data file and splits it.
    pub fn load(&self) -> Result<Split, Failure> {
        let rows = match &self.data {
            Some(path) => data::read(self.task, path)?,
            None => data::read_builtin(self.task)?,
        };
        Ok(data::split(self.task, &rows, self.val_fraction, self.seed))
    }
}

/// One line of the log: the state after `epoch` epochs (0 = before training).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Epoch {
    /// Epochs done.
    pub epoch: u64,
    /// The learning rate of this epoch's steps (for epoch 0: of the first epoch).
    pub lr: f64,
    /// Training loss (cross-entropy, or MSE in the target's units) over all training rows.
    pub train_loss: f32,
    /// Training accuracy (or R²).
    pub train_metric: f32,
    /// Validation loss.
    pub val_loss: f32,
    /// Validation accuracy (or R²).
    pub val_metric: f32,
}

/// Everything one training run needs.
pub struct Run<'a> {
    /// The model.
    pub model: Model,
    /// The data.
    pub data: &'a Split,
    /// The rule.
    pub rule: AnyRule,
    /// Lookahead options wrapping the rule, if any.
    pub lookahead: Option<gradstep::lookahead::Lookahead<()>>,
    /// The schedule, stepped once per epoch.
    pub schedule: Option<schedule::Schedule>,
    /// Gradient clipping.
    pub clip: Option<ClipNorm>,
    /// Rows per batch.
    pub batch_size: usize,
    /// Epochs.
    pub epochs: u64,
    /// Seed of the initialization and the batch order.
    pub seed: u64,
}

/// What a run did: one [`Epoch`] per epoch from 0, and the epoch at which the training
/// loss stopped being finite, if it did (the run stops there).
pub struct History {
    /// The log.
    pub epochs: Vec<Epoch>,
    /// First epoch with a non-finite training loss.
    pub diverged: Option<u64>,
}

impl Run<'_> {
    /// Batches per epoch.
    pub fn batches(&self) -> u64 {
        self.data.train.len().div_ceil(self.batch_size) as u64
    }

    /// Trains, calling `on_batch` after each step and `on_epoch` after each epoch
    /// (and once for epoch 0).
    pub fn fit(
        &self,
        mut on_batch: impl FnMut(),
        mut on_epoch: impl FnMut(&Epoch) -> Result<(), Failure>,
    ) -> Result<History, Failure> {
        let rule_error = |e: gradstep::Error| Failure::usage(format!("rule: {e}"));
        let model = &self.model;
        let mut params = model.init(self.seed);
        let sizes = model.sizes();
        let mut grads: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
        let mut optimizer = rules::Optimizer::wrapped(self.rule, self.lookahead, &sizes);
        let mut schedule = self
            .schedule
            .as_ref()
            .map(|s| s.start(&mut optimizer.rule))
            .transpose()
            .map_err(rule_error)?;
        let mut order: Vec<usize> = (0..self.data.train.len()).collect();
        let mut rng = crate::rng::Rng::new(self.seed, crate::rng::Stream::Batches);
        let mut scratch = Scratch::default();
        let mut history = History {
            epochs: Vec::with_capacity(self.epochs as usize + 1),
            diverged: None,
        };
        let record = |epoch, lr, params: &[Vec<f32>]| evaluate(model, self.data, epoch, lr, params);
        let first = record(0, optimizer.rule.lr(), &params);
        on_epoch(&first)?;
        history.epochs.push(first);
        for epoch in 1..=self.epochs {
            rng.shuffle(&mut order);
            let lr = optimizer.rule.lr();
            for batch in order.chunks(self.batch_size) {
                model.loss_and_gradient(&params, &self.data.train, batch, &mut grads, &mut scratch);
                if let Some(clip) = &self.clip {
                    let mut slices: Vec<&mut [f32]> =
                        grads.iter_mut().map(|g| &mut g[..]).collect();
                    clip.clip(&mut slices).map_err(rule_error)?;
                }
                optimizer.step(&mut params, &grads).map_err(rule_error)?;
                on_batch();
            }
            let line = record(epoch, lr, &params);
            on_epoch(&line)?;
            history.epochs.push(line);
            if !line.train_loss.is_finite() {
                history.diverged = Some(epoch);
                break;
            }
            // Not after the last epoch: OneCycleLR's total_steps = epochs.
            if epoch < self.epochs
                && let Some(s) = &mut schedule
            {
                s.step(&mut optimizer.rule, f64::from(line.val_loss))
                    .map_err(rule_error)?;
            }
        }
        Ok(history)
    }
}

/// The log line of `params` after `epoch` epochs at learning rate `lr`: loss and
/// accuracy (or R²) over all training and all validation rows.
pub fn evaluate(model: &Model, data: &Split, epoch: u64, lr: f64, params: &[Vec<f32>]) -> Epoch {
    let train = model.evaluate(params, &data.train);
    let val = model.evaluate(params, &data.val);
    // MSE in the target's units: the model fits the standardized target.
    let units = data.target_scale * data.target_scale;
    Epoch {
        epoch,
        lr,
        train_loss: train.loss * units,
        train_metric: train.metric,
        val_loss: val.loss * units,
        val_metric: val.metric,
    }
}

/// `gradstep train`'s flags.
#[derive(Args)]
pub struct TrainArgs {
    /// Task: digits (classify 8×8 handwritten digits) or diabetes (regress disease
    /// progression on 10 variables).
    #[arg(long, value_name = "NAME", default_value = "digits")]
    task: String,
    /// The rule and its hyperparameters, NAME[:FIELD=VALUE,...], as in `compare`
    /// (e.g. `sgd:lr=0.1,momentum=0.9`); unset fields keep torch's defaults (listed
    /// below with --help). The default's lr is 10× torch's 0.001: 20 epochs then reach
    /// about 0.97 validation accuracy on digits.
    #[arg(long, value_name = "SPEC", default_value = "adam:lr=0.01")]
    rule: String,
    /// A learning-rate schedule, NAME[:FIELD=VALUE,...], as in `compare`; stepped once
    /// per epoch (torch's usual `scheduler.step()` after each epoch), so `cosine`'s
    /// t_max defaults to --epochs.
    #[arg(long, value_name = "SPEC")]
    schedule: Option<String>,
    #[command(flatten)]
    task_args: TaskArgs,
    /// A TOML file with any of the settings above (task, model, hidden, activation,
    /// data, val_fraction, batch_size, epochs, seed, clip_norm, out; data and out
    /// relative to the file), a [rule] table (name = "adam", lr = 0.01, ...) and a
    /// [schedule] table. Flags given on the command line win over the file. A regular
    /// file of at most 1 MiB.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for train-log.csv, train-log.json and train-loss.svg (created if missing).
    #[arg(long, value_name = "DIR", default_value = "gradstep-out")]
    out: PathBuf,
}

/// Everything `train` needs, after flags, config file and defaults are merged.
pub struct Settings {
    /// The run's task settings.
    pub task: TaskSettings,
    /// The rule spec.
    pub rule: Spec,
    /// The schedule spec.
    pub schedule: Option<Spec>,
    /// Output directory.
    pub out: PathBuf,
}

/// Merges flags, config file and defaults: a flag given on the command line wins, then
/// the config file, then the flag's default.
pub fn settings(args: TrainArgs, matches: &ArgMatches) -> Result<Settings, Failure> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let mut keys = TASK_KEYS.to_vec();
    keys.extend(["out", "rule", "schedule"]);
    let (config, config_path) = match &args.config {
        Some(path) => (Config::read(path, "train", &keys)?, path.clone()),
        None => (Config::default(), PathBuf::new()),
    };
    let task_name = pick(given("task"), args.task, config.task.clone());
    let task = Task::parse(&task_name).map_err(Failure::usage)?;
    let file_rules = config.rules(&config_path)?;
    let rule = if given("rule") || file_rules.is_empty() {
        Spec::parse("rule", &args.rule).map_err(Failure::usage)?
    } else if let [rule] = &file_rules[..] {
        rules::from_spec_wrapped(rule)
            .map_err(|e| Failure::usage(format!("config {}: rule: {e}", config_path.display())))?;
        rule.clone()
    } else {
        return Err(Failure::usage(format!(
            "config {}: train takes one [rule] table, found {}",
            config_path.display(),
            file_rules.len()
        )));
    };
    let schedule = match &args.schedule {
        Some(s) => Some(Spec::parse("schedule", s).map_err(Failure::usage)?),
        None => config.schedule(&config_path)?,
    };
    Ok(Settings {
        task: args.task_args.settings(matches, &config, task),
        rule,
        schedule,
        out: pick(given("out"), args.out, config.out.clone()),
    })
}

/// The files a run writes into its output directory.
const FILES: [&str; 3] = ["train-log.csv", "train-log.json", "train-loss.svg"];

/// The rule (with its Lookahead options, if wrapped) and schedule of a run of
/// `epochs` epochs, checked.
pub fn rule_and_schedule(
    rule: &Spec,
    schedule: Option<&Spec>,
    epochs: u64,
) -> Result<RuleAndSchedule, Failure> {
    let (any, lookahead) = rules::from_spec_wrapped(rule).map_err(Failure::usage)?;
    let schedule = schedule
        .map(|s| schedule::from_spec(s, epochs))
        .transpose()
        .map_err(Failure::usage)?;
    if let Some(s) = &schedule {
        s.check_rule(&any, true).map_err(Failure::usage)?;
    }
    Ok((any, lookahead, schedule))
}

/// What [`rule_and_schedule`] gives.
pub type RuleAndSchedule = (
    AnyRule,
    Option<gradstep::lookahead::Lookahead<()>>,
    Option<schedule::Schedule>,
);

/// Checks everything, trains with a progress bar and a line per epoch, then writes
/// the log and the picture.
pub fn run(settings: &Settings) -> Result<(), Failure> {
    let t = &settings.task;
    // Everything is checked before anything runs or is printed.
    let (model, clip) = t.check()?;
    let (rule, lookahead, schedule) =
        rule_and_schedule(&settings.rule, settings.schedule.as_ref(), t.epochs)?;
    let data = t.load()?;
    check_work(1, &model, &data, t.batch_size, t.epochs)?;
    check_writable(&settings.out, &FILES)?;

    let run = Run {
        model,
        data: &data,
        rule,
        lookahead,
        schedule,
        clip,
        batch_size: t.batch_size,
        epochs: t.epochs,
        seed: t.seed,
    };
    let started = Instant::now();
    let progress = Progress::new(run.batches() * t.epochs, "batches");
    progress.print(&header(settings, &run))?;
    let task = t.task;
    let history = run.fit(
        || progress.inc(),
        |e| {
            progress.message(format!("epoch {}", e.epoch + 1));
            progress.print(&epoch_line(task, e))
        },
    )?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();

    let mut title = format!(
        "{}: {}, {}, batch {}, seed {}",
        task.name(),
        run.model.describe(),
        settings.rule.label(),
        t.batch_size,
        t.seed
    );
    if let Some(s) = &settings.schedule {
        let _ = write!(title, ", schedule {}", s.label());
    }
    if let Some(c) = t.clip_norm {
        let _ = write!(title, ", clip-norm {c}");
    }
    let files = log_files(settings, &run, &history, &title)?;
    let [csv, json, svg] = FILES;
    let written = write_files(
        &settings.out,
        &[(csv, &files[0]), (json, &files[1]), (svg, &files[2])],
    )?;
    let mut text = summary(task, &history, seconds);
    for path in written {
        let _ = writeln!(text, "wrote {}", path.display());
    }
    crate::print(&text)
}

/// The lines above the table: what is trained on what, and the table's heading.
fn header(settings: &Settings, run: &Run<'_>) -> String {
    let t = &settings.task;
    let mut text = format!(
        "{}: {}, {} training and {} validation rows from {}\n",
        t.task.name(),
        run.model.describe(),
        run.data.train.len(),
        run.data.val.len(),
        t.data_name()
    );
    let _ = write!(
        text,
        "rule {}, batch {}, {} epochs, seed {}",
        settings.rule.label(),
        t.batch_size,
        t.epochs,
        t.seed
    );
    if let Some(s) = &settings.schedule {
        let _ = write!(text, ", schedule {} (per epoch)", s.label());
    }
    if let Some(c) = t.clip_norm {
        let _ = write!(text, ", clip-norm {c}");
    }
    text.push('\n');
    let rows = run.data.train.len();
    if crate::explain::full_batch_only(&run.rule) && t.batch_size < rows {
        let _ = writeln!(
            text,
            "note: {} is a full-batch method: it steps by the sign of the gradient, which \
             changes from one mini-batch to the next; use --batch-size {rows} for full batch",
            run.rule.name()
        );
    }
    let (metric, loss) = columns(t.task);
    text + &row([
        "epoch".into(),
        "lr".into(),
        format!("train {loss}"),
        format!("train {metric}"),
        format!("val {loss}"),
        format!("val {metric}"),
    ])
}

/// A line of the per-epoch table.
fn row(cells: [String; 6]) -> String {
    let [epoch, lr, train_loss, train_metric, val_loss, val_metric] = cells;
    format!(
        "{epoch:>5}  {lr:<9}  {train_loss:<10}  {train_metric:<9}  {val_loss:<10}  {val_metric}\n"
    )
}

/// The short names of the loss and metric columns.
fn columns(task: Task) -> (&'static str, &'static str) {
    match task {
        Task::Digits => ("acc", "loss"),
        Task::Diabetes => ("R²", "MSE"),
    }
}

/// A loss for the table: cross-entropy to 4 decimals, MSE (thousands) to 1.
/// A diverging run's huge values in 4 significant digits.
fn loss_text(task: Task, v: f32) -> String {
    match task {
        _ if v.abs() >= 1e7 => format!("{v:.3e}"),
        Task::Digits => format!("{v:.4}"),
        Task::Diabetes => format!("{v:.1}"),
    }
}

/// Accuracy or R² to 4 decimals; a diverging regression's R² in 4 significant digits.
fn metric_text(v: f32) -> String {
    if v.abs() >= 1e4 {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

fn epoch_line(task: Task, e: &Epoch) -> String {
    let loss = |v| loss_text(task, v);
    row([
        e.epoch.to_string(),
        format!("{:.3e}", e.lr),
        loss(e.train_loss),
        metric_text(e.train_metric),
        loss(e.val_loss),
        metric_text(e.val_metric),
    ])
}

fn summary(task: Task, history: &History, seconds: f64) -> String {
    let last = history.epochs[history.epochs.len() - 1];
    let (metric, loss) = columns(task);
    let mut text = String::new();
    if let Some(epoch) = history.diverged {
        let _ = writeln!(
            text,
            "diverged: the training loss is not finite after epoch {epoch}"
        );
    }
    let best = history
        .epochs
        .iter()
        .filter(|e| e.val_metric.is_finite())
        .max_by(|a, b| a.val_metric.total_cmp(&b.val_metric));
    if let Some(best) = best {
        let _ = write!(
            text,
            "best val {metric} {:.4} at epoch {}; ",
            best.val_metric, best.epoch
        );
    }
    let _ = writeln!(
        text,
        "final val {loss} {}, val {metric} {} ({seconds:.2} s)",
        loss_text(task, last.val_loss),
        metric_text(last.val_metric)
    );
    text
}

/// The log as JSON.
#[derive(Serialize)]
struct Log<'a> {
    task: &'static str,
    model: String,
    data: String,
    train_rows: usize,
    val_rows: usize,
    rule: String,
    schedule: Option<String>,
    schedule_stepped: &'static str,
    clip_norm: Option<f64>,
    batch_size: usize,
    epochs: u64,
    seed: u64,
    loss: &'static str,
    metric: &'static str,
    diverged_at_epoch: Option<u64>,
    log: &'a [Epoch],
}

/// train-log.csv, train-log.json and train-loss.svg.
fn log_files(
    settings: &Settings,
    run: &Run<'_>,
    history: &History,
    title: &str,
) -> Result<[String; 3], Failure> {
    let task = settings.task.task;
    let metric = task.metric();
    let mut csv = format!("epoch,lr,train_loss,train_{metric},val_loss,val_{metric}\n");
    for e in &history.epochs {
        let _ = writeln!(
            csv,
            // Debug: the shortest round-trip digits, and 1e38 rather than 39 digits.
            "{},{:?},{:?},{:?},{:?},{:?}",
            e.epoch, e.lr, e.train_loss, e.train_metric, e.val_loss, e.val_metric
        );
    }
    let log = Log {
        task: task.name(),
        model: run.model.describe(),
        data: settings.task.data_name(),
        train_rows: run.data.train.len(),
        val_rows: run.data.val.len(),
        rule: settings.rule.label(),
        schedule: settings.schedule.as_ref().map(Spec::label),
        schedule_stepped: "per epoch",
        clip_norm: settings.task.clip_norm,
        batch_size: settings.task.batch_size,
        epochs: settings.task.epochs,
        seed: settings.task.seed,
        loss: task.loss(),
        metric,
        diverged_at_epoch: history.diverged,
        log: &history.epochs,
    };
    let mut json = serde_json::to_string_pretty(&log)
        .map_err(|e| Failure::io(format!("cannot write the log: {e}")))?;
    json.push('\n');

    let points = |f: fn(&Epoch) -> f32| -> Vec<[f64; 2]> {
        history
            .epochs
            .iter()
            .map(|e| [e.epoch as f64, f64::from(f(e))])
            .collect()
    };
    let (train_loss, val_loss) = (points(|e| e.train_loss), points(|e| e.val_loss));
    let (train_metric, val_metric) = (points(|e| e.train_metric), points(|e| e.val_metric));
    let (loss_name, metric_name, loss_desc, metric_desc) = match task {
        Task::Digits => (
            "loss",
            "accuracy",
            "cross-entropy loss  (log scale)",
            "accuracy",
        ),
        Task::Diabetes => ("MSE", "R²", "mean squared error  (log scale)", "R²"),
    };
    let labels = [
        format!("train {loss_name}"),
        format!("validation {loss_name}"),
        format!("train {metric_name}"),
        format!("validation {metric_name}"),
    ];
    let losses = [
        Series {
            label: &labels[0],
            points: &train_loss,
            colour: plot::colour(0),
        },
        Series {
            label: &labels[1],
            points: &val_loss,
            colour: plot::colour(1),
        },
    ];
    let metrics = [
        Series {
            label: &labels[2],
            points: &train_metric,
            colour: plot::colour(0),
        },
        Series {
            label: &labels[3],
            points: &val_metric,
            colour: plot::colour(1),
        },
    ];
    let lr_points = points(|e| e.lr as f32);
    let lr_label = match &settings.schedule {
        Some(s) => format!("lr, schedule {} (per epoch)", s.label()),
        None => "lr (no schedule)".to_string(),
    };
    let lrs = [Series {
        label: &lr_label,
        points: &lr_points,
        colour: plot::colour(2),
    }];
    let svg = plot::training_svg(title, &losses, loss_desc, &metrics, metric_desc, &lrs)?;
    Ok([csv, json, svg])
}
