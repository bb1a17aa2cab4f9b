//! `gradstep schedules`: the learning-rate schedules side by side, as torch steps them,
//! each built from the `--schedule` spec that `compare`, `train` and `sweep` take.

use std::fmt::Write as _;
use std::path::Path;

use gradstep::rules::AnyRule;

use crate::Failure;
use crate::functions::num;
use crate::output::write_files;
use crate::plot::{self, Series, short};
use crate::rules::Spec;
use crate::schedule;

/// The gallery over `epochs` epochs: (torch's name, the spec a user would type).
fn specs(epochs: u64) -> Vec<(&'static str, String)> {
    let step = (epochs / 4).max(1);
    let restart = (epochs / 7).max(1);
    // A period of a quarter of the run: the triangles are visible at any length.
    let half_cycle = (epochs / 8).max(1);
    vec![
        ("StepLR", format!("step:step_size={step},gamma=0.5")),
        ("CosineAnnealingLR", "cosine".to_string()),
        (
            "CosineAnnealingWarmRestarts",
            format!("cosine_warm_restarts:t_0={restart},t_mult=2"),
        ),
        ("CyclicLR", format!("cyclic:step_size_up={half_cycle}")),
        ("OneCycleLR", "onecycle".to_string()),
        ("warmup + cosine decay", "warmup_cosine".to_string()),
    ]
}

/// One schedule of the gallery, traced.
struct Trace {
    /// The schedule's name (the table's column).
    name: String,
    /// The spec, for the legend (the table names torch's class too).
    label: String,
    /// torch's name.
    torch: &'static str,
    /// The spec as typed.
    spec: String,
    /// `[epoch, lr]` for epochs 0..=epochs.
    points: Vec<[f64; 2]>,
}

/// The largest base rate of the gallery: its schedules scale the base rate by factors
/// of up to a few, and a rate near f64::MAX would overflow to inf.
pub const MAX_LR: f64 = 1e300;

/// The learning rate of every schedule at epochs 0..=epochs, from base rate `lr`.
fn traces(epochs: u64, lr: f64) -> Result<Vec<Trace>, Failure> {
    let usage = |e: String| Failure::usage(e);
    let mut traces = Vec::new();
    for (torch, text) in specs(epochs) {
        let spec = Spec::parse("schedule", &text).map_err(usage)?;
        let s = schedule::from_spec(&spec, epochs).map_err(usage)?;
        // Any rule with a momentum field: OneCycleLR cycles it (torch's default).
        let mut rule = AnyRule::parse("sgd")
            .map_err(|e| usage(e.to_string()))?
            .checked()
            .map_err(|e| usage(e.to_string()))?;
        rule.set_lr(lr);
        let mut running = s
            .start(&mut rule)
            .map_err(|e| usage(format!("schedule '{text}': {e}")))?;
        let mut points = vec![[0.0, running.lr()]];
        for t in 1..=epochs {
            running
                .step(&mut rule, f64::NAN)
                .map_err(|e| usage(format!("schedule '{text}': {e}")))?;
            points.push([t as f64, running.lr()]);
        }
        traces.push(Trace {
            name: spec.name.clone(),
            label: text.clone(),
            torch,
            spec: text.clone(),
            points,
        });
    }
    Ok(traces)
}

/// Prints the gallery's rates as a table (a row every 5% of the run, fine enough not to
/// alias CyclicLR's period) and draws DIR/schedules.svg.
pub fn run(epochs: u64, lr: f64, out: &Path) -> Result<(), Failure> {
    if epochs == 0 || epochs > 100_000 {
        return Err(Failure::usage(format!(
            "--epochs {epochs}: must be in 1..=100000"
        )));
    }
    if !(lr.is_finite() && lr > 0.0) {
        return Err(Failure::usage(format!(
            "--lr {}: must be finite and > 0",
            num(lr)
        )));
    }
    if lr > MAX_LR {
        return Err(Failure::usage(format!(
            "--lr {}: must be at most {} (the schedules' rates would overflow)",
            num(lr),
            num(MAX_LR)
        )));
    }
    let traces = traces(epochs, lr)?;
    let svg = svg_of(&traces, epochs, lr)?;
    let mut text = table(&traces, epochs, lr);
    for path in write_files(out, &[("schedules.svg", &svg)])? {
        let _ = writeln!(text, "wrote {}", path.display());
    }
    crate::print(&text)
}

/// The table: what each column is, then the learning rate of each schedule at every
/// 20th of the run.
fn table(traces: &[Trace], epochs: u64, lr: f64) -> String {
    let mut text = format!(
        "learning rate at the start of each epoch, base lr {}, {epochs} epochs \
         (columns: the --schedule names of compare, train and sweep):\n",
        num(lr)
    );
    for t in traces {
        let _ = writeln!(text, "  {:<22} {}: --schedule {}", t.name, t.torch, t.spec);
    }
    let widths: Vec<usize> = traces.iter().map(|t| t.name.len().max(8)).collect();
    let _ = write!(text, "{:>6}", "epoch");
    for (t, w) in traces.iter().zip(&widths) {
        let _ = write!(text, "  {:>w$}", t.name);
    }
    text.push('\n');
    let stride = (epochs / 20).max(1);
    let mut rows: Vec<u64> = (0..=epochs).step_by(stride as usize).collect();
    if rows.last() != Some(&epochs) {
        rows.push(epochs);
    }
    for e in rows {
        let _ = write!(text, "{e:>6}");
        for (t, w) in traces.iter().zip(&widths) {
            let _ = write!(text, "  {:>w$}", short(t.points[e as usize][1]));
        }
        text.push('\n');
    }
    text
}

/// The gallery's picture.
fn svg_of(traces: &[Trace], epochs: u64, lr: f64) -> Result<String, Failure> {
    let series: Vec<Series<'_>> = traces
        .iter()
        .enumerate()
        .map(|(i, t)| Series {
            label: &t.label,
            points: &t.points,
            colour: plot::colour(i),
        })
        .collect();
    plot::lines_svg(
        &format!(
            "learning-rate schedules as torch steps them, base lr {}, {epochs} epochs",
            num(lr)
        ),
        "epoch",
        "learning rate",
        &series,
    )
}
