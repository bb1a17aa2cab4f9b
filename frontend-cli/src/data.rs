//! The data sets `train` and `sweep` learn from (`data/README.md` gives their origin
//! and license): reading the CSV files, the seeded train/validation split, and the
//! scaling of features and targets.
//!
//! What a data file may hold, checked line by line as it is read:
//! - at most [`DATA_LIMIT`] bytes of UTF-8 text, from a regular file;
//! - digits: a header and rows of 65 columns, a label that is a whole number 0–9 and 64
//!   pixels that are whole numbers 0–16 (the intensities of `data/README.md`);
//! - diabetes: a header and rows of 11 columns, every value a finite number of magnitude
//!   at most [`DIABETES_BOUND`] (10⁹), so that standardizing in f32 and reporting the
//!   loss in the target's units (MSE × σ², σ ≤ 10⁹) stay finite;
//! - at least 2 rows.

use std::path::Path;

use crate::Failure;
use crate::input::{DATA_LIMIT, read_limited};
use crate::rng::{Rng, Stream};

/// A learning task: which data set, and what is predicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// The 8×8 handwritten digits: classify 64 pixel intensities into 10 classes.
    Digits,
    /// Diabetes progression: regress one target on 10 baseline variables.
    Diabetes,
}

/// The task names, for messages and `--help`.
pub const TASKS: &str = "digits, diabetes";

impl Task {
    /// The task called `name`.
    pub fn parse(name: &str) -> Result<Task, String> {
        match name {
            "digits" => Ok(Task::Digits),
            "diabetes" => Ok(Task::Diabetes),
            _ => Err(format!("unknown task '{name}' (tasks: {TASKS})")),
        }
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Task::Digits => "digits",
            Task::Diabetes => "diabetes",
        }
    }

    /// The data set shipped inside the program (the repository's `data/` files, embedded
    /// at build time): the program works from anywhere, installed or moved.
    pub fn builtin(self) -> &'static [u8] {
        match self {
            Task::Digits => include_bytes!("../../data/digits.csv"),
            Task::Diabetes => include_bytes!("../../data/diabetes.csv"),
        }
    }

    /// How the built-in data set is named in logs: `built-in data/digits.csv`.
    pub fn builtin_name(self) -> &'static str {
        match self {
            Task::Digits => "built-in data/digits.csv",
            Task::Diabetes => "built-in data/diabetes.csv",
        }
    }

    /// Columns per row and what they are, for messages.
    fn layout(self) -> (usize, &'static str) {
        match self {
            Task::Digits => (65, "label and 64 pixels"),
            Task::Diabetes => (11, "10 variables and the target"),
        }
    }

    /// Name of the quality measure next to the loss: accuracy or R².
    pub fn metric(self) -> &'static str {
        match self {
            Task::Digits => "accuracy",
            Task::Diabetes => "r2",
        }
    }

    /// Name of the loss.
    pub fn loss(self) -> &'static str {
        match self {
            Task::Digits => "cross-entropy",
            Task::Diabetes => "mse",
        }
    }
}

/// Rows of features and a target, ready for a model.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// Features per row.
    pub width: usize,
    /// `len × width` features, row-major.
    pub x: Vec<f32>,
    /// The class index (as f32) or the scaled target of each row.
    pub y: Vec<f32>,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// The features of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.width..(i + 1) * self.width]
    }

    fn select(&self, indices: &[usize]) -> Rows {
        let mut rows = Rows {
            width: self.width,
            x: Vec::with_capacity(indices.len() * self.width),
            y: Vec::with_capacity(indices.len()),
        };
        for &i in indices {
            rows.x.extend_from_slice(self.row(i));
            rows.y.push(self.y[i]);
        }
        rows
    }
}

/// A data set split into training and validation rows and scaled.
#[derive(Clone, Debug)]
pub struct Split {
    /// Training rows.
    pub train: Rows,
    /// Validation rows.
    pub val: Rows,
    /// For regression: the training target's standard deviation. The model fits the
    /// standardized target; losses are reported in the target's own units (MSE × σ²).
    pub target_scale: f32,
}

/// The largest magnitude of a diabetes value (see the module's documentation).
pub const DIABETES_BOUND: f32 = 1e9;

/// Reads `path` as the data of `task`. A file that cannot be read, or whose contents
/// are not such a data set (see the module's documentation), is a file failure naming
/// the line (exit status 1).
pub fn read(task: Task, path: &Path) -> Result<Rows, Failure> {
    let bytes = read_limited(path, DATA_LIMIT)
        .map_err(|e| Failure::io(format!("cannot read data {}: {e}", path.display())))?;
    parse(task, bytes, &path.display().to_string())
}

/// Reads the built-in data set of `task`.
pub fn read_builtin(task: Task) -> Result<Rows, Failure> {
    parse(task, task.builtin().to_vec(), task.builtin_name())
}

/// Parses the contents of a data file called `name` (for messages).
fn parse(task: Task, bytes: Vec<u8>, name: &str) -> Result<Rows, Failure> {
    let bad = |line: usize, what: String| Failure::io(format!("data {name}, line {line}: {what}"));
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        bad(line, "not UTF-8 text".into())
    })?;
    let (columns, layout) = task.layout();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, header)) if header.split(',').count() == columns => {}
        Some((_, header)) => {
            return Err(bad(
                1,
                format!(
                    "the header has {} columns, a {} file has {columns} ({layout})",
                    header.split(',').count(),
                    task.name()
                ),
            ));
        }
        None => return Err(bad(1, "the file is empty".into())),
    }
    let mut rows = Rows {
        width: columns - 1,
        ..Rows::default()
    };
    for (number, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != columns {
            return Err(bad(
                number,
                format!("{} columns, expected {columns} ({layout})", cells.len()),
            ));
        }
        let mut values = Vec::with_capacity(columns);
        for (k, cell) in cells.iter().enumerate() {
            match cell.trim().parse::<f32>() {
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    return Err(bad(
                        number,
                        format!("column {}: '{}' is not a finite number", k + 1, cell.trim()),
                    ));
                }
            }
        }
        match task {
            Task::Digits => {
                let label = values[0];
                if !(label.fract() == 0.0 && (0.0..=9.0).contains(&label)) {
                    return Err(bad(number, format!("label {label} is not a digit 0–9")));
                }
                if let Some(k) = values[1..]
                    .iter()
                    .position(|v| !(v.fract() == 0.0 && (0.0..=16.0).contains(v)))
                {
                    return Err(bad(
                        number,
                        format!(
                            "column {}: pixel {} is not an intensity 0–16",
                            k + 2,
                            cells[k + 1].trim()
                        ),
                    ));
                }
                rows.y.push(label);
                // Intensities 0–16 scaled to 0–1.
                rows.x.extend(values[1..].iter().map(|v| v / 16.0));
            }
            Task::Diabetes => {
                if let Some(k) = values.iter().position(|v| v.abs() > DIABETES_BOUND) {
                    return Err(bad(
                        number,
                        format!("column {}: {} is outside −1e9..1e9", k + 1, cells[k].trim()),
                    ));
                }
                rows.y.push(values[columns - 1]);
                rows.x.extend_from_slice(&values[..columns - 1]);
            }
        }
    }
    if rows.len() < 2 {
        return Err(Failure::io(format!(
            "data {name}: {} rows, at least 2 are needed (one to train on, one to validate)",
            rows.len()
        )));
    }
    Ok(rows)
}

/// Splits `rows` at random (from `seed`) into `1 − val_fraction` training and
/// `val_fraction` validation rows (rounded, at least one of each), and for regression
/// standardizes every feature and the target with the training rows' mean and standard
/// deviation (digits are already scaled to 0–1 by [`read`]).
pub fn split(task: Task, rows: &Rows, val_fraction: f64, seed: u64) -> Split {
    let n = rows.len();
    let val = ((n as f64 * val_fraction).round() as usize).clamp(1, n - 1);
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed, Stream::Split).shuffle(&mut order);
    let (val_rows, train_rows) = order.split_at(val);
    let mut split = Split {
        train: rows.select(train_rows),
        val: rows.select(val_rows),
        target_scale: 1.0,
    };
    if task == Task::Diabetes {
        for k in 0..rows.width {
            let (mean, std) = mean_std(split.train.x.iter().skip(k).step_by(rows.width));
            for part in [&mut split.train, &mut split.val] {
                for v in part.x.iter_mut().skip(k).step_by(rows.width) {
                    *v = (*v - mean) / std;
                }
            }
        }
        let (mean, std) = mean_std(split.train.y.iter());
        for part in [&mut split.train, &mut split.val] {
            for v in &mut part.y {
                *v = (*v - mean) / std;
            }
        }
        split.target_scale = std;
    }
    split
}

/// Mean and standard deviation (population; 1 for a constant column, which then stays
/// constant instead of becoming NaN), accumulated in f64.
fn mean_std<'a>(values: impl Iterator<Item = &'a f32> + Clone) -> (f32, f32) {
    let (n, sum) = values
        .clone()
        .fold((0usize, 0.0f64), |(n, s), &v| (n + 1, s + f64::from(v)));
    let mean = sum / n as f64;
    let var = values.map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n as f64;
    let std = if var > 0.0 { var.sqrt() } else { 1.0 };
    (mean as f32, std as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_files_read() {
        let digits = read_builtin(Task::Digits).unwrap();
        assert_eq!((digits.len(), digits.width), (1797, 64));
        assert!(digits.x.iter().all(|v| (0.0..=1.0).contains(v)));
        let diabetes = read_builtin(Task::Diabetes).unwrap();
        assert_eq!((diabetes.len(), diabetes.width), (442, 10));
    }

    #[test]
    fn the_split_is_seeded_and_standardizes_regression() {
        let rows = read_builtin(Task::Diabetes).unwrap();
        let a = split(Task::Diabetes, &rows, 0.2, 1);
        assert_eq!((a.train.len(), a.val.len()), (354, 88));
        assert_eq!(a.val.y, split(Task::Diabetes, &rows, 0.2, 1).val.y);
        assert_ne!(a.val.y, split(Task::Diabetes, &rows, 0.2, 2).val.y);
        let (mean, std) = mean_std(a.train.x.iter().step_by(10));
        assert!(
            mean.abs() < 1e-5 && (std - 1.0).abs() < 1e-5,
            "{mean} {std}"
        );
        assert!(a.target_scale > 70.0 && a.target_scale < 85.0);
    }
}
