//! `gradstep schedules`: the gallery of learning-rate schedules, and the picture of it
//! that the kernel crate's rustdoc shows (`kernels/docs/schedules.md`), which must be
//! what the command draws today (`GRADSTEP_BLESS=1` rewrites it).

mod common;

use base64::Engine;
use common::{Svg, assert_refused, gradstep, listing, refused_in, stdout};

#[test]
fn gallery_prints_the_rates_and_draws_every_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradstep()
        .args(["schedules", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    // StepLR(25, 0.5) from 0.1: 0.1, 0.05, 0.025, 0.0125, 0.00625 at 0, 25, 50, 75, 100.
    let step = text.lines().find(|l| l.starts_with("StepLR")).unwrap();
    let values: Vec<f64> = step
        .split_whitespace()
        .rev()
        .take(5)
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(values, [0.00625, 0.0125, 0.025, 0.05, 0.1]);
    // CosineAnnealingLR reaches exactly 0 at T_max; OneCycleLR ends at max_lr/25/1e4.
    assert!(
        text.lines()
            .any(|l| l.starts_with("CosineAnnealingLR") && l.ends_with(" 0.0000e0"))
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("OneCycleLR") && l.ends_with("4.0000e-7"))
    );
    assert_eq!(listing(dir.path()), ["schedules.svg"]);
    let svg = Svg::read(&dir.path().join("schedules.svg"));
    for label in [
        "StepLR(",
        "CosineAnnealingLR(",
        "CosineAnnealingWarmRestarts(",
        "CyclicLR(triangular",
        "OneCycleLR(",
        "SequentialLR(",
        "learning-rate schedules",
        "epoch",
        "learning rate",
    ] {
        assert!(svg.has_label(label), "no {label:?} in {:?}", svg.texts);
    }
    // Six curves of 101 points each (colours as in the plotting palette).
    assert!(svg.polylines.iter().filter(|(_, n)| *n >= 90).count() >= 6);
}

#[test]
fn bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    refused_in("schedules", dir.path(), &["--epochs", "0"], 2, "--epochs 0");
    refused_in("schedules", dir.path(), &["--lr=-1"], 2, "--lr -1");
    refused_in("schedules", dir.path(), &["--lr", "0"], 2, "--lr 0");
    let out = gradstep()
        .args(["schedules", "--lr", "x"])
        .output()
        .unwrap();
    assert_refused(&out, 2, "invalid value 'x'");
}

#[test]
fn the_kernel_docs_show_the_current_picture() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradstep()
        .args(["schedules", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let svg = std::fs::read(dir.path().join("schedules.svg")).unwrap();
    let doc = format!(
        "\n## The schedules, drawn\n\nAs `gradstep schedules` draws them (base lr 0.1, 100 epochs); \
         `frontend-cli/tests/schedules.rs` keeps this picture current.\n\n\
         <img alt=\"learning rate against epoch for six schedules\" width=\"720\" \
         src=\"data:image/svg+xml;base64,{}\">\n",
        base64::engine::general_purpose::STANDARD.encode(&svg)
    );
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernels/docs/schedules.md");
    if std::env::var_os("GRADSTEP_BLESS").is_some() {
        std::fs::write(&path, &doc).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == doc,
        "kernels/docs/schedules.md is stale; regenerate it with \
         `GRADSTEP_BLESS=1 cargo test -p gradstep-cli --test schedules`"
    );
}
