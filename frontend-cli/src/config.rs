//! `gradstep compare --config FILE`: the same settings as the flags, in TOML.
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

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Failure;
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
    /// `[[rule]]` tables: `name` and hyperparameter fields.
    #[serde(default)]
    pub rule: Vec<toml::Table>,
    /// A `[schedule]` table: `name` and fields.
    pub schedule: Option<toml::Table>,
}

impl Config {
    /// Reads and parses `path`. A file that cannot be read is a file failure (exit 1);
    /// one that is not a valid config is a usage failure (exit 2).
    pub fn read(path: &Path) -> Result<Config, Failure> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::io(format!("cannot read config {}: {e}", path.display())))?;
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
        // A relative `out` is relative to the file, as a path in a file usually is.
        if let (Some(out), Some(dir)) = (&config.out, path.parent())
            && out.is_relative()
        {
            config.out = Some(dir.join(out));
        }
        Ok(config)
    }

    /// The `[[rule]]` tables as specs.
    pub fn rules(&self, path: &Path) -> Result<Vec<Spec>, Failure> {
        self.rule
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
