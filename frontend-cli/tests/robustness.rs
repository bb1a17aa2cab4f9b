//! What a failed run must not do (issue 12, finding 9): lose the files of an earlier run
//! in the same output directory, hang on or swallow a config or data "file" that is a
//! FIFO or a device, or train on data outside its documented ranges.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{assert_refused, gradstep, listing, run_ok};

/// Every file in `dir` with its bytes, sorted by name (directories as `None`).
fn snapshot(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    listing(dir)
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let bytes = if path.is_dir() {
                None
            } else {
                Some(std::fs::read(&path).unwrap())
            };
            (name, bytes)
        })
        .collect()
}

/// The names in a snapshot, for messages.
fn names(snapshot: &[(String, Option<Vec<u8>>)]) -> Vec<&str> {
    snapshot.iter().map(|(n, _)| n.as_str()).collect()
}

/// A complete earlier run in `prev`; then its `blocked` file is replaced by a
/// directory, so that writing that file of the next run fails. The next run must fail
/// with one line and exit 1, and leave every earlier file byte for byte as it was.
fn earlier_run_survives(subcommand: &str, first: &[&str], second: &[&str], blocked: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (prev, _) = run_ok(subcommand, dir.path(), "prev", first);
    std::fs::remove_file(prev.join(blocked)).unwrap();
    std::fs::create_dir(prev.join(blocked)).unwrap();
    std::fs::write(prev.join(blocked).join("keep"), "mine").unwrap();
    let before = snapshot(&prev);
    assert!(before.len() >= 2, "{before:?}");

    let out = gradstep()
        .arg(subcommand)
        .args(second)
        .arg("--out")
        .arg(&prev)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_refused(
        &out,
        1,
        &format!("cannot write {}", prev.join(blocked).display()),
    );
    let after = snapshot(&prev);
    assert!(
        after == before,
        "the earlier run changed: {:?} -> {:?}",
        names(&before),
        names(&after)
    );
    assert_eq!(
        std::fs::read_to_string(prev.join(blocked).join("keep")).unwrap(),
        "mine"
    );
}

#[test]
fn a_failed_train_keeps_the_earlier_run() {
    // The third file written (train-log.csv, train-log.json, train-loss.svg) cannot be replaced.
    earlier_run_survives(
        "train",
        &["--epochs", "1", "--seed", "1"],
        &["--epochs", "1", "--seed", "2"],
        "train-loss.svg",
    );
}

#[test]
fn a_failed_compare_keeps_the_earlier_run() {
    earlier_run_survives(
        "compare",
        &["--steps", "20", "--rule", "sgd"],
        &["--steps", "30", "--rule", "adam"],
        "compare-loss.svg",
    );
}

/// Runs `subcommand ARGS --out DIR/out` in `dir` with a time limit: a read that blocks
/// fails the test instead of hanging it.
fn refused_quickly(subcommand: &str, dir: &Path, args: &[&str], message: &str) {
    let out_dir = dir.join("out");
    let out = gradstep()
        .arg(subcommand)
        .args(args)
        .arg("--out")
        .arg(&out_dir)
        .current_dir(dir)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_refused(&out, 1, message);
    assert!(!out_dir.exists());
}

#[cfg(unix)]
#[test]
fn config_and_data_must_be_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::create_dir(dir.path().join("a-dir")).unwrap();
    for path in ["fifo", "/dev/zero", "a-dir"] {
        refused_quickly(
            "train",
            dir.path(),
            &["--data", path],
            &format!("cannot read data {path}: not a regular file"),
        );
        for subcommand in ["train", "compare", "sweep"] {
            refused_quickly(
                subcommand,
                dir.path(),
                &["--config", path],
                &format!("cannot read config {path}: not a regular file"),
            );
        }
    }
}

#[test]
fn config_and_data_are_read_up_to_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse files: one byte over each documented limit.
    let big = |name: &str, len: u64| {
        let file = std::fs::File::create(dir.path().join(name)).unwrap();
        file.set_len(len).unwrap();
    };
    big("big.toml", (1 << 20) + 1);
    big("big.csv", (16 << 20) + 1);
    refused_quickly(
        "train",
        dir.path(),
        &["--config", "big.toml"],
        "cannot read config big.toml: larger than 1048576 bytes",
    );
    refused_quickly(
        "train",
        dir.path(),
        &["--data", "big.csv"],
        "cannot read data big.csv: larger than 16777216 bytes",
    );
    // Exactly at the limit is read (and then refused for what it holds).
    big("limit.toml", 1 << 20);
    let out = gradstep()
        .args(["train", "--config", "limit.toml", "--out", "out"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("larger than"), "{err}");
}

#[test]
fn data_values_outside_their_documented_ranges_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let header: String = std::iter::once("label".to_string())
        .chain((0..64).map(|i| format!("p{i}")))
        .collect::<Vec<_>>()
        .join(",");
    let digits = |pixel: &str| {
        let row = |first: &str| {
            std::iter::once("1".to_string())
                .chain(std::iter::once(first.to_string()))
                .chain(std::iter::repeat_n("3".to_string(), 63))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!("{header}\n{}\n{}\n", row("0"), row(pixel))
    };
    for (pixel, what) in [
        ("17", "pixel 17 is not an intensity 0–16"),
        ("-1", "pixel -1 is not an intensity 0–16"),
        ("2.5", "pixel 2.5 is not an intensity 0–16"),
    ] {
        std::fs::write(dir.path().join("digits.csv"), digits(pixel)).unwrap();
        refused_quickly(
            "train",
            dir.path(),
            &["--data", "digits.csv"],
            &format!("data digits.csv, line 3: column 2: {what}"),
        );
    }
    let diabetes = |value: &str| {
        format!(
            "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target\n\
             59,2,32.1,101,157,93.2,38,4,4.8598,87,151\n\
             48,1,21.6,87,183,103.2,70,3,3.8918,69,{value}\n"
        )
    };
    for value in ["1e10", "-2e9"] {
        std::fs::write(dir.path().join("diabetes.csv"), diabetes(value)).unwrap();
        refused_quickly(
            "train",
            dir.path(),
            &["--task", "diabetes", "--data", "diabetes.csv"],
            &format!("data diabetes.csv, line 3: column 11: {value} is outside −1e9..1e9"),
        );
    }
    // At the bounds, the file is accepted.
    std::fs::write(dir.path().join("edge.csv"), diabetes("1e9")).unwrap();
    let (_, text) = run_ok(
        "train",
        dir.path(),
        "edge",
        &[
            "--task",
            "diabetes",
            "--data",
            dir.path().join("edge.csv").to_str().unwrap(),
            "--epochs",
            "1",
        ],
    );
    assert!(text.contains("wrote "), "{text}");
}
