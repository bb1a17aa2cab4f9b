//! `gradstep schedules`: the gallery of learning-rate schedules, and the picture of it
//! that the kernel crate's rustdoc shows (`kernels/docs/schedules.md`), which must be
//! what the command draws today (`GRADSTEP_BLESS=1` rewrites it).

mod common;

use base64::Engine;
use common::{Svg, assert_refused, gradstep, listing, refused_in, stdout};

/// The table's rows below its header: (epoch, value per column), and the header.
fn table(text: &str) -> (Vec<String>, Vec<(u64, Vec<f64>)>) {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("epoch"));
    let header: Vec<String> = lines
        .next()
        .expect("a header row")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let rows = lines
        .take_while(|l| !l.starts_with("wrote"))
        .map(|l| {
            let mut cells = l.split_whitespace();
            let epoch = cells.next().unwrap().parse().unwrap();
            (epoch, cells.map(|c| c.parse().unwrap()).collect())
        })
        .collect();
    (header, rows)
}

#[test]
fn gallery_prints_a_labelled_table_and_draws_every_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradstep()
        .args(["schedules", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    // Every column is named, and each name says the spec that draws it.
    assert!(text.starts_with("learning rate at the start of each epoch, base lr 0.1, 100 epochs"));
    for line in [
        "  step                   StepLR: --schedule step:step_size=25,gamma=0.5",
        "  cyclic                 CyclicLR: --schedule cyclic:step_size_up=12",
        "  onecycle               OneCycleLR: --schedule onecycle",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let (header, rows) = table(&text);
    assert_eq!(
        header,
        [
            "epoch",
            "step",
            "cosine",
            "cosine_warm_restarts",
            "cyclic",
            "onecycle",
            "warmup_cosine"
        ]
    );
    // A row every 5 epochs, 0 to 100.
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..=100).step_by(5).collect::<Vec<_>>()
    );
    let column = |k: usize| -> Vec<f64> { rows.iter().map(|r| r.1[k]).collect() };
    // StepLR(25, 0.5) from 0.1 halves at 25, 50, 75, 100.
    let step = column(0);
    assert_eq!(
        [step[0], step[5], step[10], step[15], step[20]],
        [0.1, 0.05, 0.025, 0.0125, 0.00625]
    );
    // CosineAnnealingLR reaches exactly 0 at T_max; OneCycleLR ends at max_lr/25/1e4.
    assert_eq!(column(1)[20], 0.0);
    assert_eq!(column(4)[20], 4e-7);
    // CyclicLR's triangle (period 24) is visible: up to 0.085 at epoch 10, down again
    // by epoch 25; sampled every 25 epochs it would look like a steady rise.
    let cyclic = column(3);
    assert_eq!(&cyclic[..6], [0.01, 0.0475, 0.085, 0.0775, 0.04, 0.0175]);
    assert_eq!(listing(dir.path()), ["schedules.svg"]);
    let svg = Svg::read(&dir.path().join("schedules.svg"));
    for label in [
        "step:step_size=25,gamma=0.5",
        "cosine",
        "cosine_warm_restarts:t_0=14,t_mult=2",
        "cyclic:step_size_up=12",
        "onecycle",
        "warmup_cosine",
        "learning-rate schedules",
        "epoch",
        "learning rate",
    ] {
        assert!(svg.has_label(label), "no {label:?} in {:?}", svg.texts);
    }
    // Six curves of 101 points each (colours as in the plotting palette).
    assert!(svg.polylines.iter().filter(|(_, n)| *n >= 90).count() >= 6);
}

/// One spec per schedule name; the names must be exactly those `--help` lists.
const EVERY_SCHEDULE: &[&str] = &[
    "step:step_size=10",
    "multistep:milestones=10/20,gamma=0.5",
    "exponential:gamma=0.95",
    "cosine",
    "cosine_warm_restarts:t_0=10,t_mult=2",
    "linear",
    "constant",
    "polynomial:total_iters=30,power=2",
    "cyclic:step_size_up=5",
    "onecycle",
    "warmup_cosine:warmup_steps=5",
    "warmup_linear",
    "warmup_exponential:transition_steps=10,rate=0.5",
    "noam:d_model=4,warmup_steps=5",
    "piecewise:boundaries=10/20,scales=0.5/0.1",
    "plateau:patience=1",
];

/// The schedule names in `gradstep SUBCOMMAND --help`.
fn listed(subcommand: &str) -> Vec<String> {
    let out = gradstep().args([subcommand, "--help"]).output().unwrap();
    stdout(&out)
        .lines()
        .skip_while(|l| !l.starts_with("Schedules"))
        .skip(1)
        .take_while(|l| l.starts_with("  ") && !l.starts_with("  ("))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn every_schedule_name_works_in_compare_train_and_sweep() {
    let names: Vec<&str> = EVERY_SCHEDULE
        .iter()
        .map(|s| s.split(':').next().unwrap())
        .collect();
    for sub in ["compare", "train", "sweep"] {
        assert_eq!(listed(sub), names, "{sub} --help");
    }
    let dir = tempfile::tempdir().unwrap();
    for spec in EVERY_SCHEDULE {
        let plateau = spec.starts_with("plateau");
        // Test functions have no validation loss: plateau is refused there, by name.
        let compare = gradstep()
            .args([
                "compare",
                "--steps",
                "40",
                "--rule",
                "sgd:lr=0.001,momentum=0.9",
            ])
            .args(["--schedule", spec, "--out"])
            .arg(dir.path().join("c"))
            .output()
            .unwrap();
        if plateau {
            assert_refused(&compare, 2, "works on `train` and `sweep --task`");
        } else {
            assert!(compare.status.success(), "compare {spec}: {compare:?}");
            assert!(stdout(&compare).contains("schedule: "), "{spec}");
        }
        let train = gradstep()
            .args([
                "train",
                "--epochs",
                "30",
                "--rule",
                "sgd:lr=0.1,momentum=0.9",
            ])
            .args(["--schedule", spec, "--out"])
            .arg(dir.path().join("t"))
            .output()
            .unwrap();
        assert!(train.status.success(), "train {spec}: {train:?}");
        let log: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("t/train-log.json")).unwrap(),
        )
        .unwrap();
        let lrs: Vec<f64> = log["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["lr"].as_f64().unwrap())
            .collect();
        // Every schedule moves the lr within 30 epochs (plateau: once the validation
        // loss stops improving for more than 1 epoch, which a lr of 0.1 soon does).
        assert!(
            lrs.iter().any(|&lr| lr != lrs[0]),
            "train {spec}: lr constant {lrs:?}"
        );
        let sweep = gradstep()
            .args([
                "sweep", "--task", "diabetes", "--epochs", "3", "--rules", "adam",
            ])
            .args(["--lrs", "0.01", "--schedule", spec, "--out"])
            .arg(dir.path().join("s"))
            .output()
            .unwrap();
        assert!(sweep.status.success(), "sweep {spec}: {sweep:?}");
    }
}

#[test]
fn schedules_that_cycle_momentum_need_a_rule_with_one() {
    let dir = tempfile::tempdir().unwrap();
    refused_in(
        "compare",
        dir.path(),
        &["--rule", "adagrad", "--schedule", "onecycle"],
        2,
        "schedule 'onecycle' cycles the momentum (cycle_momentum=true, torch's default) and \
         rule 'adagrad' has none: add cycle_momentum=false",
    );
    let (_, text) = common::run_ok(
        "compare",
        dir.path(),
        "ok",
        &[
            "--rule",
            "adagrad:lr=0.5",
            "--schedule",
            "onecycle:cycle_momentum=false",
        ],
    );
    assert!(
        text.contains("schedule: onecycle(cycle_momentum=false)"),
        "{text}"
    );
    refused_in(
        "compare",
        dir.path(),
        &["--schedule", "multistep:milestones=20/x"],
        2,
        "schedule 'multistep': milestones = 'x' is not a whole number",
    );
    refused_in(
        "compare",
        dir.path(),
        &["--schedule", "cyclic:mode=square"],
        2,
        "schedule 'cyclic': mode = 'square' is not one of triangular, triangular2, exp_range",
    );
}

#[test]
fn bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    refused_in("schedules", dir.path(), &["--epochs", "0"], 2, "--epochs 0");
    refused_in("schedules", dir.path(), &["--lr=-1"], 2, "--lr -1");
    // A negative number after a space is the value, not an unknown flag.
    refused_in(
        "schedules",
        dir.path(),
        &["--lr", "-1"],
        2,
        "--lr -1: must be finite and > 0",
    );
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
         <img alt=\"learning rate against epoch for six schedules\" \
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
