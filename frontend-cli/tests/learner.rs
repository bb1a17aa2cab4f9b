//! What a learner following the README meets: every subcommand's files side by side,
//! clap's hints, Rprop's full-batch note, `explain`.

mod common;

use common::{gradstep, listing, run_ok, stdout};

/// Following the README into one directory: no subcommand overwrites another's files.
#[test]
fn every_subcommand_writes_its_own_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gradstep-out");
    for args in [
        &["demo"][..],
        &["schedules"],
        &["compare", "--steps", "50"],
        &["train", "--epochs", "2"],
        &["sweep", "--steps", "50", "--lrs", "0.01,0.1"],
    ] {
        let o = gradstep()
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
    }
    assert_eq!(
        listing(&out),
        [
            "compare-loss.svg",
            "compare-trajectories.svg",
            "demo.svg",
            "schedules.svg",
            "sweep-heatmap.svg",
            "sweep-results.csv",
            "sweep-results.json",
            "train-log.csv",
            "train-log.json",
            "train-loss.svg",
        ]
    );
}

#[test]
fn clap_hints_survive_on_the_one_error_line() {
    let out = gradstep()
        .args(["compare", "--rul", "sgd"])
        .output()
        .unwrap();
    common::assert_refused(
        &out,
        2,
        "unexpected argument '--rul' found (a similar argument exists: '--rule'; see --help)",
    );
}

#[test]
fn rprop_on_mini_batches_says_it_is_a_full_batch_method() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = run_ok(
        "train",
        dir.path(),
        "a",
        &["--rule", "rprop", "--epochs", "1"],
    );
    assert!(
        text.contains(
            "note: rprop is a full-batch method: it steps by the sign of the gradient, which \
             changes from one mini-batch to the next; use --batch-size 1438 for full batch"
        ),
        "{text}"
    );
    let (_, text) = run_ok(
        "train",
        dir.path(),
        "b",
        &["--rule", "rprop", "--epochs", "1", "--batch-size", "1438"],
    );
    assert!(!text.contains("full-batch"), "{text}");
    let (_, text) = run_ok("train", dir.path(), "c", &["--epochs", "1"]);
    assert!(!text.contains("full-batch"), "adam: {text}");
}

#[test]
fn explain_gives_equations_fields_differences_and_the_idea() {
    let out = gradstep().args(["explain", "adagrad"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for part in [
        "adagrad (torch.optim.Adagrad)",
        "s ← s + g²",
        // Every field, with torch's default from the registry and what it does.
        "lr                        = 0.01",
        "initial_accumulator_value = 0       the starting value of s (torch 0; Keras and optax 0.1)",
        "eps                       = 1e-10",
        "maximize                  = false   climb instead of descend",
        "Where frameworks differ:",
        "The idea:",
    ] {
        assert!(text.contains(part), "missing {part:?} in\n{text}");
    }
    // Without a rule: one line per registered rule.
    let out = gradstep().arg("explain").output().unwrap();
    let list = stdout(&out);
    for name in ["sgd", "adam", "rmsprop", "rprop", "asgd"] {
        assert!(list.contains(&format!("\n  {name} ")), "{list}");
    }
    assert!(!list.contains("not explained yet"), "{list}");
    let out = gradstep().args(["explain", "adamm"]).output().unwrap();
    common::assert_refused(&out, 2, "unknown rule 'adamm'");
}

/// Twelve rules on Beale (the case): the legend sits beside the plot, not over
/// the minimum or the ends of the paths; every picture's legend is clear of its data;
/// the twelve paths differ in colour or line style.
#[test]
fn legends_never_cover_data_and_twelve_series_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let rules = [
        "sgd:lr=0.001",
        "sgd:lr=0.001,momentum=0.9",
        "adam:lr=0.1",
        "adamw:lr=0.1",
        "adamax:lr=0.1",
        "nadam:lr=0.1",
        "radam:lr=0.1",
        "adagrad:lr=0.5",
        "adadelta",
        "rmsprop:lr=0.01",
        "rprop",
        "asgd:lr=0.01",
    ];
    let mut compare = gradstep();
    compare
        .args(["compare", "--function", "beale", "--out"])
        .arg(&out);
    for r in rules {
        compare.args(["--rule", r]);
    }
    assert!(compare.output().unwrap().status.success());
    for args in [
        &["demo"][..],
        &["schedules"],
        &["train", "--epochs", "3", "--schedule", "cosine"],
    ] {
        let o = gradstep()
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
    }
    for (file, legends) in [
        ("compare-trajectories.svg", 1),
        ("compare-loss.svg", 1),
        ("demo.svg", 1),
        ("schedules.svg", 1),
        // loss, accuracy and learning rate: a legend beside each panel.
        ("train-loss.svg", 3),
    ] {
        assert_eq!(
            common::assert_legend_clear_of_data(&out.join(file)),
            legends,
            "{file}"
        );
    }
    // train's picture: a learning-rate panel, and the schedule in the title.
    let train = common::Svg::read(&out.join("train-loss.svg"));
    assert!(train.has_label("learning rate"), "{:?}", train.texts);
    assert!(
        train.has_label("lr, schedule cosine (per epoch)"),
        "{:?}",
        train.texts
    );
    assert!(
        train
            .texts
            .iter()
            .any(|t| t.ends_with("seed 0, schedule cosine")),
        "{:?}",
        train.texts
    );
    // The twelve paths: (colour, dash) pairs all different, and the first nine colours
    // all different.
    let text = std::fs::read_to_string(out.join("compare-trajectories.svg")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let mut styles: Vec<(String, String)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("2"))
        .map(|n| {
            (
                n.attribute("stroke").unwrap().to_string(),
                n.attribute("stroke-dasharray")
                    .unwrap_or("solid")
                    .to_string(),
            )
        })
        .collect();
    styles.sort();
    styles.dedup();
    assert_eq!(styles.len(), 12, "{styles:?}");
    let dashed = styles.iter().filter(|s| s.1 != "solid").count();
    assert_eq!(dashed, 3, "{styles:?}");
}

/// The program carries its data sets: a copy of the binary in an empty directory, far
/// from the source checkout, trains on both tasks.
#[test]
fn a_moved_binary_trains_on_its_built_in_data() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let moved = bin.join("gradstep");
    std::fs::copy(assert_cmd::cargo::cargo_bin("gradstep"), &moved).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    for (task, rows) in [("digits", "1438 training"), ("diabetes", "354 training")] {
        let run = || {
            std::process::Command::new(&moved)
                .args(["train", "--task", task, "--epochs", "2"])
                .current_dir(&work)
                .env_clear()
                .output()
        };
        // The copy was written by this process: a test thread forking meanwhile holds a
        // write descriptor to it until its own exec, and exec of a file open for writing
        // fails with ETXTBSY (Linux). Retry until those children have exec'd.
        let mut out = run();
        for _ in 0..50 {
            match &out {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    out = run();
                }
                _ => break,
            }
        }
        let out = out.unwrap();
        assert!(out.status.success(), "{task}: {out:?}");
        let text = stdout(&out);
        assert!(
            text.contains(&format!("{rows} and"))
                && text.contains(&format!("from built-in data/{task}.csv")),
            "{text}"
        );
        assert!(work.join("gradstep-out/train-log.csv").exists());
    }
}
