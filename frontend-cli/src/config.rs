//! `--config FILE`: the settings of `compare`, `train` and `sweep` in TOML, with the
//! flags' names (`batch_size` for `--batch-size`). One file format for all three; each
//! subcommand refuses the keys that are not its own.
//!
//! ```toml
//! function = "rosenbrock"
//! steps = 2000
//! tol = 1e-6
//! out = "compare-out"
//!
//! [[rule]]
//! name = "sgd"
//! lr = 0.001
//! momentum = 0.9
//!
//! [[rule]]
//! name = "adam"
//! lr = 0.05
//!
//! [schedule]
//! name = "cosine"
//! t_max = 2000
//! ```
//!
//! `train` takes one `[rule]` table; `sweep` takes `rules = ["sgd", "adam"]` and/or
//! `[[rule]]` tables, `lrs = [1e-3, 1e-2]` or `lrs = "1e-4..1:9"`, and
//! `grid = "momentum=0,0.9"`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Failure;
use crate::input::{CONFIG_LIMIT, read_limited};
use crate::rules::Spec;

/// The file's contents; every key is optional and a flag given on the command line wins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Test function name.
    pub function: Option<String>,
    /// Steps per rule.
    pub steps: Option<u64>,
    /// Tolerance on f − f*.
    pub tol: Option<f64>,
    /// Output directory, relative to the config file's directory.
    pub out: Option<PathBuf>,
    /// `[rule]` or `[[rule]]` tables: `name` and hyperparameter fields.
    pub rule: Option<Tables>,
    /// A `[schedule]` table: `name` and fields.
    pub schedule: Option<toml::Table>,
    /// `train`/`sweep`: task name.
    pub task: Option<String>,
    /// `train`/`sweep`: model name.
    pub model: Option<String>,
    /// `train`/`sweep`: hidden units of the MLP.
    pub hidden: Option<usize>,
    /// `train`/`sweep`: the MLP's activation.
    pub activation: Option<String>,
    /// `train`/`sweep`: the data file, relative to the config file's directory.
    pub data: Option<PathBuf>,
    /// `train`/`sweep`: fraction of rows held out for validation.
    pub val_fraction: Option<f64>,
    /// `train`/`sweep`: rows per mini-batch.
    pub batch_size: Option<usize>,
    /// `train`/`sweep`: passes over the training rows.
    pub epochs: Option<u64>,
    /// `train`/`sweep`: the seed of the split, initialization and batch order.
    pub seed: Option<u64>,
    /// `train`/`sweep`: the global gradient 2-norm clip.
    pub clip_norm: Option<f64>,
    /// `sweep`: rule names.
    pub rules: Option<Vec<String>>,
    /// `sweep`: learning rates, a list or a `FROM..TO:N` range.
    pub lrs: Option<Numbers>,
    /// `sweep`: `FIELD=V1,V2,...`.
    pub grid: Option<String>,
}

/// One `[rule]` table or several `[[rule]]` tables.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Tables {
    /// `[rule]`.
    One(toml::Table),
    /// `[[rule]]`, repeated.
    Many(Vec<toml::Table>),
}

/// A list of numbers, or text to parse as one (`"1e-4..1:9"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Numbers {
    /// `[1e-3, 1e-2]`.
    List(Vec<f64>),
    /// `"1e-4..1:9"`.
    Text(String),
}

impl Config {
    /// Reads and parses `path` for `command`, which takes the keys `allowed`. A file
    /// that cannot be read (or is not a regular file, or is larger than
    /// [`CONFIG_LIMIT`]) is a file failure (exit 1); one that is not a valid config is a
    /// usage failure (exit 2).
    pub fn read(path: &Path, command: &str, allowed: &[&str]) -> Result<Config, Failure> {
        let cannot = |e: &dyn std::fmt::Display| {
            Failure::io(format!("cannot read config {}: {e}", path.display()))
        };
        let bytes = read_limited(path, CONFIG_LIMIT).map_err(|e| cannot(&e))?;
        let text = String::from_utf8(bytes).map_err(|_| cannot(&"not UTF-8 text"))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            let place = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!(", line {line}, column {column}")
                })
                .unwrap_or_default();
            let message = e.message().trim().replace('\n', " ");
            Failure::usage(format!("config {}{place}: {message}", path.display()))
        })?;
        // The file parsed as a Config, so it parses as a table.
        let table: toml::Table = toml::from_str(&text).unwrap_or_default();
        if let Some(key) = table.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(Failure::usage(format!(
                "config {}: `{key}` is not a setting of {command} (settings: {})",
                path.display(),
                allowed.join(", ")
            )));
        }
        // A relative path is relative to the file, as a path in a file usually is.
        if let Some(dir) = path.parent() {
            for p in [&mut config.out, &mut config.data].into_iter().flatten() {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        Ok(config)
    }

    /// The `[rule]`/`[[rule]]` tables as specs.
    pub fn rules(&self, path: &Path) -> Result<Vec<Spec>, Failure> {
        let tables = match &self.rule {
            None => return Ok(Vec::new()),
            Some(Tables::One(table)) => std::slice::from_ref(table),
            Some(Tables::Many(tables)) => &tables[..],
        };
        tables
            .iter()
            .enumerate()
            .map(|(i, table)| {
                table_spec("rule", table).map_err(|e| {
                    Failure::usage(format!("config {}: rule {}: {e}", path.display(), i + 1))
                })
            })
            .collect()
    }

    /// The `[schedule]` table as a spec.
    pub fn schedule(&self, path: &Path) -> Result<Option<Spec>, Failure> {
        self.schedule
            .as_ref()
            .map(|table| {
                table_spec("schedule", table).map_err(|e| {
                    Failure::usage(format!("config {}: schedule: {e}", path.display()))
                })
            })
            .transpose()
    }
}

fn table_spec(kind: &'static str, table: &toml::Table) -> Result<Spec, String> {
    let name = match table.get("name") {
        Some(toml::Value::String(name)) => name.to_ascii_lowercase(),
        Some(_) => return Err("name must be a string".into()),
        None => return Err(format!("a {kind} table needs a name")),
    };
    let mut fields = Vec::new();
    for (key, value) in table.iter().filter(|(k, _)| *k != "name") {
        let text = match value {
            toml::Value::Float(v) => v.to_string(),
            toml::Value::Integer(v) => v.to_string(),
            toml::Value::Boolean(v) => v.to_string(),
            toml::Value::String(v) => v.clone(),
            _ => return Err(format!("{key} must be a number, a boolean or a string")),
        };
        fields.push((key.clone(), text));
    }
    Spec::new(kind, name, fields)
}

/// A flag given on the command line, else the config file's value, else the flag's
/// default.
pub fn pick<T>(on_command_line: bool, flag: T, file: Option<T>) -> T {
    match file {
        Some(value) if !on_command_line => value,
        _ => flag,
    }
}
