//! `gradstep tour`: its pictures in the README are what it draws today, its text states
//! each stop's claim, numbers and verdict, and a failed tour says so in one line and
//! leaves an earlier tour's pictures as they were. (The numbers themselves are asserted
//! by the unit tests in src/tour.rs.)

mod common;

use std::path::Path;

use common::{assert_refused, gradstep, listing, refused_in, run_ok};

/// The stops, in tour order, as `--concept` takes them.
const CONCEPTS: [&str; 7] = [
    "adaptive",
    "bias-correction",
    "amsgrad",
    "l1",
    "momentum",
    "adan",
    "decay",
];

/// The README's tour pictures (`frontend-cli/docs/pictures/tour-*.svg`) are what the
/// tour draws: regenerated here, compared with the committed copies
/// (`GRADSTEP_BLESS=1 cargo test -p gradstep-cli --release --test tour` rewrites them).
/// The same run checks the text: every stop numbered, with a claim, a verdict and its
/// picture.
#[test]
fn the_tour_runs_and_its_readme_pictures_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = run_ok("tour", dir.path(), "out", &[]);
    let names: Vec<String> = CONCEPTS.iter().map(|c| format!("tour-{c}.svg")).collect();
    assert_eq!(listing(&out), {
        let mut sorted = names.clone();
        sorted.sort();
        sorted
    });
    assert!(
        text.starts_with("A tour of the seed's ideas: 7 stops"),
        "{text}"
    );
    for (i, name) in names.iter().enumerate() {
        assert!(text.contains(&format!("\n{}. ", i + 1)), "stop {}", i + 1);
        assert!(text.contains(&format!("picture: {}", out.join(name).display())));
    }
    assert_eq!(text.matches("\nclaim (seed 00").count(), 7, "{text}");
    assert_eq!(
        text.matches("\nverdict: the measurement ").count(),
        7,
        "{text}"
    );
    // Where gradstep's numbers contradict the article, the tour says so.
    assert!(text.contains("DISAGREES"), "{text}");
    // Every legend beside its plot, never over the data (decay: loss and rate panels).
    for name in &names {
        let legends = if name == "tour-decay.svg" { 2 } else { 1 };
        assert_eq!(
            common::assert_legend_clear_of_data(&out.join(name)),
            legends,
            "{name}"
        );
    }

    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/pictures");
    let bless = std::env::var_os("GRADSTEP_BLESS").is_some();
    let mut stale = Vec::new();
    for name in &names {
        let fresh = std::fs::read(out.join(name)).unwrap();
        let target = docs.join(name);
        if bless {
            std::fs::write(&target, &fresh).unwrap();
        } else if std::fs::read(&target).ok().as_deref() != Some(&fresh[..]) {
            stale.push(name.as_str());
        }
    }
    assert!(
        stale.is_empty(),
        "frontend-cli/docs/pictures/{{{}}} are stale; regenerate them with \
         `GRADSTEP_BLESS=1 cargo test -p gradstep-cli --release --test tour`",
        stale.join(",")
    );
}

#[test]
fn one_concept_runs_one_stop_and_writes_one_picture() {
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = run_ok("tour", dir.path(), "out", &["--concept", "l1"]);
    assert_eq!(listing(&out), ["tour-l1.svg"]);
    assert!(text.contains("1 stop,"), "{text}");
    assert!(
        text.contains("\n1. Proximal L1, greedy and lazy (FTRL)\n"),
        "{text}"
    );
    assert!(text.contains("lazy FTRL, fixed L1"), "{text}");
    assert!(text.contains("exact zeros 35/40"), "{text}");
}

#[test]
fn an_unknown_concept_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    refused_in(
        "tour",
        dir.path(),
        &["--concept", "nesterov"],
        2,
        "unknown concept 'nesterov' (concepts: adaptive, bias-correction, amsgrad, l1, \
         momentum, adan, decay)",
    );
}

#[test]
fn an_unwritable_output_leaves_the_earlier_tour_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // --out names a regular file: nothing can be created under it.
    let file = dir.path().join("file");
    std::fs::write(&file, "mine").unwrap();
    let out = gradstep()
        .args(["tour", "--concept", "adaptive", "--out"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_refused(&out, 1, "cannot create output directory");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");

    // An earlier tour's picture, and a later picture's name taken by a directory: the
    // tour is refused before it runs, and the earlier picture stays as it was.
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::write(out_dir.join("tour-adaptive.svg"), "earlier").unwrap();
    std::fs::create_dir(out_dir.join("tour-decay.svg")).unwrap();
    let out = gradstep()
        .args(["tour", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_refused(&out, 1, "is not a regular file");
    assert_eq!(
        std::fs::read_to_string(out_dir.join("tour-adaptive.svg")).unwrap(),
        "earlier"
    );
    assert_eq!(listing(&out_dir), ["tour-adaptive.svg", "tour-decay.svg"]);
}

#[test]
fn help_lists_every_concept() {
    let out = gradstep().args(["tour", "--help"]).output().unwrap();
    assert!(out.status.success());
    let text = common::stdout(&out);
    for concept in CONCEPTS {
        assert!(
            text.contains(&format!("\n  {concept} ")),
            "{concept}: {text}"
        );
    }
    assert!(text.contains("Exit status:"), "{text}");
}
