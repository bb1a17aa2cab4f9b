//! `gradstep schedules`: the learning-rate schedules side by side, as torch steps them.

use std::path::Path;

use gradstep::schedules::{
    AnyScheduler, CosineAnnealingLr, CosineAnnealingWarmRestarts, CyclicLr, Group, LinearLr,
    OneCycleLr, Scheduler, SequentialLr, StepLr,
};

use crate::Failure;
use crate::output::write_files;
use crate::plot::{self, Series};

/// The gallery over `epochs` epochs from base rate `lr`: (label, schedule).
/// A labelled schedule of the gallery.
type Entry = (String, Box<dyn Scheduler>);

fn gallery(epochs: u64, lr: f64) -> Result<Vec<Entry>, Failure> {
    let usage = |e: gradstep::Error| Failure::usage(e.to_string());
    let mut cyclic = CyclicLr::new(lr / 10.0, lr);
    cyclic.step_size_up = (epochs / 8).max(1);
    cyclic.cycle_momentum = false;
    let step = (epochs / 4).max(1);
    let restart = (epochs / 7).max(1);
    let warm = (epochs / 10).max(1);
    let warmup = SequentialLr::<AnyScheduler, 2>::new(
        [
            LinearLr {
                start_factor: 0.01,
                total_iters: warm,
                ..LinearLr::default()
            }
            .into(),
            CosineAnnealingLr::new(epochs.saturating_sub(warm).max(1), 0.0).into(),
        ],
        &[warm],
    )
    .map_err(usage)?;
    let entries: Vec<Entry> = vec![
        (
            format!("StepLR(step_size={step}, gamma=0.5)"),
            boxed(AnyScheduler::from(StepLr::new(step, 0.5))),
        ),
        (
            format!("CosineAnnealingLR(T_max={epochs})"),
            boxed(AnyScheduler::from(CosineAnnealingLr::new(
                epochs.max(1),
                0.0,
            ))),
        ),
        (
            format!("CosineAnnealingWarmRestarts(T_0={restart}, T_mult=2)"),
            boxed(AnyScheduler::from(CosineAnnealingWarmRestarts::new(
                restart, 2, 0.0,
            ))),
        ),
        (
            format!(
                "CyclicLR(triangular, {}..{}, step_size_up={})",
                lr / 10.0,
                lr,
                cyclic.step_size_up
            ),
            boxed(AnyScheduler::from(cyclic)),
        ),
        (
            format!("OneCycleLR(max_lr={lr}, total_steps={})", epochs + 1),
            boxed(AnyScheduler::from(OneCycleLr::new(lr, epochs + 1))),
        ),
        (
            format!("SequentialLR(LinearLR warmup {warm}, CosineAnnealingLR)"),
            Box::new(warmup) as Box<dyn Scheduler>,
        ),
    ];
    Ok(entries)
}

fn boxed(s: AnyScheduler) -> Box<dyn Scheduler> {
    Box::new(s)
}

/// The learning rate at epochs 0..=epochs.
fn trace(s: &mut dyn Scheduler, epochs: u64, lr: f64) -> Result<Vec<[f64; 2]>, Failure> {
    let mut group = Group::new(lr);
    s.start(&mut group)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let mut points = vec![[0.0, group.lr]];
    for t in 1..=epochs {
        s.step(&mut group)
            .map_err(|e| Failure::usage(e.to_string()))?;
        points.push([t as f64, group.lr]);
    }
    Ok(points)
}

/// Prints the gallery's rates at a few epochs and draws DIR/schedules.svg.
pub fn run(epochs: u64, lr: f64, out: &Path) -> Result<(), Failure> {
    if epochs == 0 || epochs > 100_000 {
        return Err(Failure::usage(format!(
            "--epochs {epochs}: must be in 1..=100000"
        )));
    }
    if !(lr.is_finite() && lr > 0.0) {
        return Err(Failure::usage(format!("--lr {lr}: must be finite and > 0")));
    }
    let svg = svg(epochs, lr, |label, points| {
        let at = |f: f64| points[((epochs as f64 * f) as usize).min(points.len() - 1)][1];
        println!(
            "{label:<52} {:>10.4e} {:>10.4e} {:>10.4e} {:>10.4e} {:>10.4e}",
            at(0.0),
            at(0.25),
            at(0.5),
            at(0.75),
            at(1.0)
        );
    })?;
    for path in write_files(out, &[("schedules.svg", &svg)])? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The gallery's picture; `each` sees every schedule's label and trace first.
pub fn svg(
    epochs: u64,
    lr: f64,
    mut each: impl FnMut(&str, &[[f64; 2]]),
) -> Result<String, Failure> {
    let mut traces = Vec::new();
    for (label, mut entry) in gallery(epochs, lr)? {
        let points = trace(entry.as_mut(), epochs, lr)?;
        each(&label, &points);
        traces.push((label, points));
    }
    let series: Vec<Series<'_>> = traces
        .iter()
        .enumerate()
        .map(|(i, (label, points))| Series {
            label,
            points,
            colour: plot::colour(i),
        })
        .collect();
    plot::lines_svg(
        &format!("learning-rate schedules as torch steps them, base lr {lr}, {epochs} epochs"),
        "epoch",
        "learning rate",
        &series,
    )
}
