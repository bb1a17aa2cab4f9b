//! `gradstep sweep`: the grid on a test function and on a task, the results table, the
//! heatmap, config files and every kind of bad input.

mod common;

use std::path::{Path, PathBuf};

use common::{Svg, assert_refused, gradstep, listing, stdout};
use serde_json::Value;

fn sweep(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, String) {
    common::run_ok("sweep", dir, name, args)
}

/// sweep-results.csv as rows of fields (no field here holds a quoted comma but the rule).
fn csv(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("sweep-results.csv")).unwrap();
    text.lines()
        .map(|line| {
            let mut fields = Vec::new();
            let mut rest = line;
            while !rest.is_empty() || fields.is_empty() {
                if let Some(quoted) = rest.strip_prefix('"') {
                    let end = quoted.find('"').unwrap();
                    fields.push(quoted[..end].to_string());
                    rest = quoted[end + 1..].strip_prefix(',').unwrap_or("");
                } else {
                    let (field, tail) = rest.split_once(',').unwrap_or((rest, ""));
                    fields.push(field.to_string());
                    if tail.is_empty() && rest.ends_with(',') {
                        fields.push(String::new());
                    }
                    rest = tail;
                }
            }
            fields
        })
        .collect()
}

/// The texts inside the heatmap's outlines (closed paths of stroke width 3), sorted.
fn outlined_values(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let number = |n: roxmltree::Node<'_, '_>, a: &str| -> f64 {
        n.attribute(a).unwrap_or("0").parse().unwrap()
    };
    let boxes: Vec<[f64; 4]> = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("3"))
        .map(|n| {
            let points: Vec<(f64, f64)> = n
                .attribute("points")
                .unwrap()
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            let xs = points.iter().map(|p| p.0);
            let ys = points.iter().map(|p| p.1);
            [
                xs.clone().fold(f64::INFINITY, f64::min),
                ys.clone().fold(f64::INFINITY, f64::min),
                xs.fold(f64::NEG_INFINITY, f64::max),
                ys.fold(f64::NEG_INFINITY, f64::max),
            ]
        })
        .collect();
    let mut inside: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter(|n| {
            let (x, y) = (number(*n, "x"), number(*n, "y"));
            boxes
                .iter()
                .any(|b| (b[0]..=b[2]).contains(&x) && (b[1]..=b[3]).contains(&y))
        })
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect();
    inside.sort();
    inside
}

#[test]
fn a_sweep_on_rosenbrock_tables_every_grid_point_and_draws_the_heatmap() {
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = sweep(
        dir.path(),
        "rosenbrock",
        &[
            "--function",
            "rosenbrock",
            "--steps",
            "300",
            "--rules",
            "sgd,adam",
            "--rule",
            "sgd:momentum=0.9",
            "--lrs",
            "1e-3,1e-2,0.1",
        ],
    );
    assert!(
        text.starts_with("sweep: rosenbrock, 300 steps; 3 rules × 3 learning rates = 9 runs"),
        "{text}"
    );
    // Measured: plain SGD and momentum diverge at lr ≥ 0.01, Adam does not; momentum
    // at lr = 0.001 is best (f − f* = 0.0119), Adam's best is lr = 0.1 (0.192).
    // The best cell of each row is starred.
    assert!(
        text.contains("\nsgd                    3.10*         -          -\n"),
        "{text}"
    );
    assert!(
        text.contains("\nadam                   4.26       3.83      0.192*\n"),
        "{text}"
    );
    // Best at an end of the range: a hint to widen it on that side.
    assert!(
        text.contains(
            "hint: adam's best lr 1e-1 is the largest swept: widen the range (--lrs) above it"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "hint: sgd's best lr 1e-3 is the smallest swept: widen the range (--lrs) below it"
        ),
        "{text}"
    );
    assert!(
        text.contains("  adam(lr=0.1): final f − f* 0.192\n"),
        "{text}"
    );
    assert!(
        text.contains("best overall: sgd(lr=0.001, momentum=0.9): final f − f* 0.0119\n"),
        "{text}"
    );

    assert_eq!(
        listing(&out),
        [
            "sweep-heatmap.svg",
            "sweep-results.csv",
            "sweep-results.json"
        ]
    );
    let rows = csv(&out);
    assert_eq!(
        rows[0],
        ["rule", "lr", "final_loss", "steps_to_tol", "diverged"]
    );
    assert_eq!(rows.len(), 1 + 9, "one row per grid point");
    let points: Vec<(&str, &str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[4].as_str()))
        .collect();
    assert_eq!(
        points,
        [
            ("sgd", "0.001", "false"),
            ("sgd", "0.01", "true"),
            ("sgd", "0.1", "true"),
            ("adam", "0.001", "false"),
            ("adam", "0.01", "false"),
            ("adam", "0.1", "false"),
            ("sgd(momentum=0.9)", "0.001", "false"),
            ("sgd(momentum=0.9)", "0.01", "true"),
            ("sgd(momentum=0.9)", "0.1", "true"),
        ]
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep-results.json")).unwrap())
            .unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 9);
    assert_eq!(json["runs"][1]["loss"], Value::Null, "diverged: no loss");

    // The outlined cells hold the best value of each row.
    assert_eq!(
        outlined_values(&out.join("sweep-heatmap.svg")),
        ["0.0119", "0.192", "3.10"]
    );
    let svg = Svg::read(&out.join("sweep-heatmap.svg"));
    for label in [
        "sweep: rosenbrock, 300 steps — final f − f*",
        "sgd",
        "adam",
        "sgd(momentum=0.9)",
        "1e-3",
        "1e-2",
        "1e-1",
        "learning rate",
        "rule",
        "final f − f*  (log scale)",
        "diverged",
        "0.0119",
        "0.192",
    ] {
        assert!(svg.has_label(label), "{label:?} in {:?}", svg.texts);
    }
}

#[test]
fn a_grid_over_momentum_and_a_log_range_of_learning_rates() {
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = sweep(
        dir.path(),
        "grid",
        &[
            "--function",
            "quadratic",
            "--steps",
            "100",
            "--rules",
            "sgd",
            "--rule",
            "sgd:nesterov",
            "--grid",
            "momentum=0.5,0.9",
            "--lrs",
            "1e-4..1e-1:4",
        ],
    );
    assert!(
        text.contains("2 rules × 2 momentum values × 4 learning rates = 16 runs"),
        "{text}"
    );
    let rows = csv(&out);
    assert_eq!(
        rows[0],
        [
            "rule",
            "lr",
            "momentum",
            "final_loss",
            "steps_to_tol",
            "diverged"
        ]
    );
    assert_eq!(rows.len(), 1 + 16);
    let lrs: Vec<&str> = rows[1..5].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(lrs, ["0.0001", "0.001", "0.01", "0.1"], "exact decades");
    assert_eq!(rows[16][0], "sgd(nesterov=true)");
    assert_eq!(rows[16][2], "0.9");
    // Measured: Nesterov momentum 0.9 at lr 0.1 reaches 8.1e-6 in 100 steps.
    assert!(
        text.contains("best overall: sgd(lr=0.1, nesterov=true, momentum=0.9)"),
        "{text}"
    );
    let svg = Svg::read(&out.join("sweep-heatmap.svg"));
    for label in [
        "sgd(momentum=0.5)",
        "sgd(momentum=0.9)",
        "sgd(nesterov=true, momentum=0.5)",
        "sgd(nesterov=true, momentum=0.9)",
    ] {
        assert!(svg.has_label(label), "{label:?} in {:?}", svg.texts);
    }
}

#[test]
fn a_sweep_on_the_digits_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--task", "digits", "--epochs", "3", "--rules", "sgd,adam", "--lrs", "0.01,0.1",
    ];
    let (a, text) = sweep(dir.path(), "a", &args);
    assert!(
        text.starts_with(
            "sweep: digits: softmax regression (64 → 10), batch 32, 3 epochs, seed 0; \
             2 rules × 2 learning rates = 4 runs"
        ),
        "{text}"
    );
    // Measured: Adam at lr 0.1 reaches validation loss 0.137, accuracy 0.961 in 3 epochs.
    assert!(
        text.contains(
            "best overall: adam(lr=0.1): final validation loss 0.137, validation accuracy 0.96"
        ),
        "{text}"
    );
    let rows = csv(&a);
    assert_eq!(
        rows[0],
        [
            "rule",
            "lr",
            "train_loss",
            "val_loss",
            "val_accuracy",
            "diverged"
        ]
    );
    assert_eq!(rows.len(), 5);
    let (b, _) = sweep(dir.path(), "b", &args);
    for file in [
        "sweep-results.csv",
        "sweep-results.json",
        "sweep-heatmap.svg",
    ] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file}"
        );
    }
    let svg = Svg::read(&a.join("sweep-heatmap.svg"));
    assert!(svg.has_label("final validation loss  (log scale)"));
}

#[test]
fn a_config_file_gives_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sweep.toml");
    std::fs::write(
        &config,
        r#"
function = "beale"
steps = 50
rules = ["adam", "rmsprop"]
lrs = [0.01, 0.1]
out = "from-config"

[[rule]]
name = "sgd"
momentum = 0.9
"#,
    )
    .unwrap();
    let out = gradstep()
        .args(["sweep", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("sweep: beale, 50 steps; 3 rules × 2 learning rates = 6 runs"),
        "{text}"
    );
    assert_eq!(csv(&dir.path().join("from-config")).len(), 7);

    // Flags win; a task in the file is swept with its settings.
    std::fs::write(
        &config,
        "task = \"diabetes\"\nepochs = 2\nlrs = \"0.01..0.1:2\"\nrules = [\"adam\"]\n",
    )
    .unwrap();
    let out = gradstep()
        .args(["sweep", "--lrs", "0.05", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("task"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("sweep: diabetes: linear regression (10 → 1), batch 32, 2 epochs"),
        "{text}"
    );
    assert!(text.contains("1 rule × 1 learning rate = 1 run"), "{text}");
    assert!(text.contains("final validation MSE"), "{text}");
}

#[test]
fn help_shows_the_defaults() {
    let out = gradstep().args(["sweep", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = stdout(&out);
    for text in [
        "[default: sgd,adam,rmsprop,adagrad]",
        "[default: 1e-4..1:9]",
        "[default: rosenbrock]",
        "[default: 500]",
        "[default: 1e-6]",
        "[default: 20]",
        "[default: gradstep-out]",
        "asgd      lr=0.01",
        "rastrigin",
        "Exit status",
    ] {
        assert!(help.contains(text), "{text:?} missing from:\n{help}");
    }
    let top = stdout(&gradstep().arg("--help").output().unwrap());
    for sub in ["demo", "compare", "train", "sweep"] {
        assert!(top.contains(&format!("  {sub}")), "{sub} in\n{top}");
    }
}

/// `refused_in` for `sweep`.
fn refused_in(dir: &Path, args: &[&str], code: i32, message: &str) {
    common::refused_in("sweep", dir, args, code, message);
}

#[test]
fn bad_input_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    refused_in(d, &["--rules", "sgd,adamm"], 2, "unknown rule 'adamm'");
    refused_in(
        d,
        &["--rules", "sgd", "--lrs", "-1"],
        2,
        "rule 'sgd': invalid hyperparameter lr = -1",
    );
    refused_in(
        d,
        &["--lrs", "fast"],
        2,
        "lrs 'fast': 'fast' is not a number",
    );
    refused_in(
        d,
        &["--lrs", "1e-4..1"],
        2,
        "lrs '1e-4..1': a range needs the number of values: FROM..TO:N, e.g. 1e-4..1:9",
    );
    refused_in(
        d,
        &["--lrs", "0..1:5"],
        2,
        "lrs '0..1:5': a log range needs FROM and TO > 0",
    );
    refused_in(
        d,
        &["--rule", "sgd:lr=0.1"],
        2,
        "rule 'sgd': lr is swept by --lrs; leave it out of the rule",
    );
    refused_in(
        d,
        &["--rules", "sgd,adam", "--grid", "momentum=0,0.9"],
        2,
        "rule 'adam': unknown field 'momentum'",
    );
    refused_in(
        d,
        &["--grid", "momentum"],
        2,
        "grid 'momentum': expected FIELD=V1,V2,...",
    );
    refused_in(
        d,
        &["--function", "himmelblau"],
        2,
        "unknown function 'himmelblau'",
    );
    refused_in(
        d,
        &["--epochs", "3"],
        2,
        "--epochs applies to sweeps on a --task, not a --function",
    );
    refused_in(
        d,
        &["--task", "digits", "--steps", "3"],
        2,
        "--steps applies to sweeps on a --function, not a --task",
    );
    refused_in(
        d,
        &["--task", "digits", "--data", "missing.csv"],
        1,
        "cannot read data missing.csv",
    );
    std::fs::write(d.join("bad.csv"), "label,p0\n1,2\n").unwrap();
    refused_in(
        d,
        &["--task", "digits", "--data", "bad.csv"],
        1,
        "data bad.csv, line 1: the header has 2 columns, a digits file has 65",
    );
    refused_in(
        d,
        &["--config", "missing.toml"],
        1,
        "cannot read config missing.toml",
    );
    std::fs::write(d.join("bad.toml"), "lrs = [0.1]\nhidden_units = 3\n").unwrap();
    refused_in(
        d,
        &["--config", "bad.toml"],
        2,
        "unknown field `hidden_units`",
    );
    std::fs::write(d.join("bad.toml"), "tol = 1e-3\nseed = 3\n").unwrap();
    refused_in(
        d,
        &["--config", "bad.toml", "--task", "digits"],
        2,
        "--tol applies to sweeps on a --function, not a --task",
    );
    std::fs::write(
        d.join("bad.toml"),
        "seed = 3
",
    )
    .unwrap();
    refused_in(
        d,
        &["--config", "bad.toml"],
        2,
        "--seed applies to sweeps on a --task, not a --function",
    );
    // clap's own usage errors: exit 2, no panic.
    let out = gradstep()
        .args(["sweep", "--task", "digits", "--function", "beale"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    assert_eq!(listing(d), ["bad.csv", "bad.toml"]);
}

#[test]
fn an_unwritable_output_directory_is_refused_before_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "keep me").unwrap();
    let out = gradstep()
        .args(["sweep", "--out"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_refused(&out, 1, "cannot create output directory");
    assert_eq!(listing(dir.path()), ["a-file"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}
