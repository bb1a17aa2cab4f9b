//! Inputs of a hostile-user test: values at the ends of f64 that the pictures must
//! still draw, expressions and grids sized to exhaust the stack, the memory or the
//! time, functions undefined at their start, and text that would garble the terminal.
//! Each is either done or refused with one line before any work starts.

mod common;

use std::path::Path;

use common::{Svg, assert_refused, gradstep, refused_in, run_ok, stdout};

/// Runs `gradstep SUBCOMMAND ARGS --out DIR/NAME`, which must succeed, and reads the
/// picture `svg` it wrote.
fn drawn(subcommand: &str, dir: &Path, name: &str, args: &[&str], svg: &str) -> Svg {
    let (out, _) = run_ok(subcommand, dir, name, args);
    Svg::read(&out.join(svg))
}

#[test]
fn a_flat_curve_at_a_huge_value_is_drawn() {
    let dir = tempfile::tempdir().unwrap();
    // A learning rate of 1e16 throughout: ±0.5 around it rounds back to 1e16.
    let svg = drawn(
        "train",
        dir.path(),
        "train",
        &["--rule", "sgd:lr=1e16", "--epochs", "1"],
        "train-loss.svg",
    );
    for label in ["9.60e15", "9.80e15", "1.00e16", "1.02e16", "1.04e16"] {
        assert!(svg.has_label(label), "{label} in {:?}", svg.texts);
    }
    for (name, rule, schedule, tick) in [
        ("step", "sgd:lr=1e16", "step:step_size=5", "1.00e16"),
        ("big", "adam:lr=1e200", "cosine", "1.00e200"),
        // The axis ends overflow to ±inf unless clamped to ±f64::MAX.
        (
            "max",
            "adam:lr=1.7976931348623157e308",
            "cosine",
            "1.78e308",
        ),
    ] {
        let svg = drawn(
            "compare",
            dir.path(),
            name,
            &["--rule", rule, "--schedule", schedule, "--steps", "50"],
            "compare-loss.svg",
        );
        assert!(svg.has_label(tick), "{rule}: {tick} in {:?}", svg.texts);
    }
}

#[test]
fn subnormal_learning_rates_are_drawn() {
    let dir = tempfile::tempdir().unwrap();
    for lr in ["5e-324", "1e-323"] {
        let (out, text) = run_ok("schedules", dir.path(), lr, &["--lr", lr]);
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            format!(
                "learning rate at the start of each epoch, base lr {lr}, 100 epochs (columns: \
                 the --schedule names of compare, train and sweep):"
            )
        );
        let svg = Svg::read(&out.join("schedules.svg"));
        assert!(
            svg.has_label(&format!(
                "learning-rate schedules as torch steps them, base lr {lr}, 100 epochs"
            )),
            "{:?}",
            svg.texts
        );
        assert!(svg.polylines.iter().filter(|(_, n)| *n >= 90).count() >= 6);
    }
    let svg = drawn(
        "compare",
        dir.path(),
        "compare",
        &[
            "--rule",
            "sgd:lr=5e-324",
            "--schedule",
            "cosine",
            "--steps",
            "50",
        ],
        "compare-loss.svg",
    );
    assert!(svg.has_label("sgd(lr=5e-324)"), "{:?}", svg.texts);
}

#[test]
fn a_gallery_rate_that_would_overflow_is_refused_as_too_large() {
    let dir = tempfile::tempdir().unwrap();
    refused_in(
        "schedules",
        dir.path(),
        &["--lr", "1e308"],
        2,
        "--lr 1e308: must be at most 1e300 (the schedules' rates would overflow)",
    );
    // The limit itself is drawn.
    let (_, text) = run_ok("schedules", dir.path(), "edge", &["--lr", "1e300"]);
    assert!(text.contains("base lr 1e300, 100 epochs"), "{text}");
}

/// `text` repeated `n` times.
fn times(text: &str, n: usize) -> String {
    text.repeat(n)
}

#[test]
fn long_or_deep_expressions_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let sum = vec!["x1"; 40_000].join("+");
    let product = times("x1*", 40_000) + "x2";
    let nested = times("(", 50_000) + "x1" + &times(")", 50_000);
    for (text, chars) in [(&sum, 119_999), (&product, 120_002), (&nested, 100_002)] {
        let message = format!("function: the expression is {chars} characters long (at most 1000)");
        refused_in("compare", dir.path(), &["--function", text], 2, &message);
        refused_in("sweep", dir.path(), &["--function", text], 2, &message);
        // The same from a config file.
        let config = dir.path().join("long.toml");
        std::fs::write(&config, format!("function = \"{text}\"\n")).unwrap();
        refused_in(
            "compare",
            dir.path(),
            &["--config", config.to_str().unwrap()],
            2,
            &message,
        );
    }
    // Short, but nested deeper than the limit.
    let deep = times("(", 51) + "x1" + &times(")", 51);
    refused_in(
        "compare",
        dir.path(),
        &["--function", &deep],
        2,
        "function: the expression nests parentheses 51 deep (at most 50)",
    );
    let calls = times("sin(", 51) + "x1" + &times(")", 51);
    refused_in(
        "compare",
        dir.path(),
        &["--function", &calls],
        2,
        "function: the expression nests parentheses 51 deep (at most 50)",
    );
}

#[test]
fn the_longest_and_deepest_accepted_expressions_run() {
    let dir = tempfile::tempdir().unwrap();
    // Each exactly 1000 characters (the limit), built to make the parse tree as deep as
    // that length allows: a left-deep sum and product, a right-deep power tower and
    // chain of unary minus, and parentheses 50 deep holding the rest.
    let inner = times("(", 50) + "x1" + &times(")", 50);
    let cases = [
        times("x+", 499) + "x2",
        times("x*", 499) + "x2",
        times("x^", 499) + "x2",
        times("-", 998) + "x2",
        format!("{inner} +{}x2", times("y-", (1000 - inner.len() - 4) / 2)),
        times("sin(", 50) + "x1" + &times(")", 50) + &times("+x", (1000 - 252) / 2),
    ];
    for (i, text) in cases.iter().enumerate() {
        assert_eq!(text.chars().count(), 1000, "{text}");
        let (out, table) = run_ok(
            "compare",
            dir.path(),
            &format!("run{i}"),
            &["--function", text, "--steps", "10", "--rule", "sgd:lr=1e-6"],
        );
        assert!(table.contains("your function: f(x1, x2) = "), "{table}");
        assert!(out.join("compare-trajectories.svg").is_file());
    }
}

/// Runs `gradstep ARGS --out DIR/out` in `dir` with its address space limited to
/// `megabytes` (`ulimit -v`), so that a run that builds gigabytes before refusing
/// fails to allocate instead of passing; asserts the one-line refusal.
#[cfg(unix)]
fn refused_in_little_memory(dir: &Path, args: &[&str], megabytes: u64, message: &str) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {}; exec \"$0\" \"$@\"",
            megabytes * 1024
        ))
        .arg(assert_cmd::cargo::cargo_bin("gradstep"))
        .args(args)
        .arg("--out")
        .arg(dir.join("out"))
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert_refused(&out, 2, message);
    assert!(!dir.join("out").exists());
}

#[cfg(unix)]
#[test]
fn a_sweep_too_large_is_refused_by_arithmetic_before_anything_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec!["0"; 30_000].join(",");
    refused_in_little_memory(
        dir.path(),
        &[
            "sweep",
            "--rules",
            "sgd",
            "--grid",
            &format!("momentum={zeros}"),
            "--lrs",
            "1e-4..1:1000",
        ],
        200,
        "30000000 runs (1 rules × 30000 grid values × 1000 learning rates): a sweep may make \
         at most 10000",
    );
    let names = vec!["sgd"; 20_000].join(",");
    refused_in_little_memory(
        dir.path(),
        &["sweep", "--rules", &names, "--lrs", "1e-4..1:1000"],
        200,
        "20000000 runs (20000 rules × 1 grid values × 1000 learning rates): a sweep may make \
         at most 10000",
    );
    let config = dir.path().join("grid.toml");
    let values = vec!["0"; 200_000].join(",");
    std::fs::write(&config, format!("grid = \"momentum={values}\"\n")).unwrap();
    refused_in_little_memory(
        dir.path(),
        &["sweep", "--config", "grid.toml", "--rules", "sgd,adam"],
        200,
        "3600000 runs (2 rules × 200000 grid values × 9 learning rates): a sweep may make at \
         most 10000",
    );
    // At the limit, the grid is accepted.
    let (_, text) = run_ok(
        "sweep",
        dir.path(),
        "edge",
        &[
            "--rules",
            "sgd",
            "--grid",
            &format!("momentum={}", ["0"; 10].join(",")),
            "--lrs",
            "1e-4..1:1000",
            "--steps",
            "1",
        ],
    );
    assert!(text.contains("wrote "), "{text}");
}

#[cfg(unix)]
#[test]
fn compare_keeps_a_bounded_number_of_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["compare"];
    for _ in 0..28 {
        args.extend(["--rule", "adam"]);
    }
    refused_in_little_memory(
        dir.path(),
        &args,
        200,
        "28 rules: compare draws at most 27 (as many as its pictures tell apart)",
    );
    let mut args = vec!["compare", "--steps", "1000000"];
    for _ in 0..6 {
        args.extend(["--rule", "adam"]);
    }
    refused_in_little_memory(
        dir.path(),
        &args,
        200,
        "6 rules × 1000000 steps = 6000000 steps to keep: compare keeps at most 5000000 \
         (fewer rules or --steps)",
    );
    // 27 rules are drawn.
    let mut args = vec!["--steps", "10"];
    for _ in 0..27 {
        args.extend(["--rule", "sgd:lr=0.001"]);
    }
    let (_, text) = run_ok("compare", dir.path(), "many", &args);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("sgd(lr=0.001)"))
            .count(),
        27,
        "{text}"
    );
}

#[test]
fn the_total_work_of_a_run_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let big = ["--model", "mlp", "--hidden", "4096", "--batch-size", "1"];
    // 64·4096 + 4096 + 4096·10 + 10 = 307210 parameters; digits has 1438 training and
    // 359 validation rows; batches of 1.
    let mut args = big.to_vec();
    args.extend(["--epochs", "100000"]);
    refused_in(
        "train",
        dir.path(),
        &args,
        2,
        "100000 epochs × 307210 parameters × (1797 rows + 1438 batches) = 9.9e13 units of \
         work: at most 2e11 (about 5 minutes; fewer epochs, a smaller model or larger batches)",
    );
    let mut args = vec![
        "--task",
        "digits",
        "--rules",
        "sgd,adam",
        "--lrs",
        "1e-4..1:10",
    ];
    args.extend(big);
    args.extend(["--epochs", "20"]);
    refused_in(
        "sweep",
        dir.path(),
        &args,
        2,
        "20 runs × 20 epochs × 307210 parameters × (1797 rows + 1438 batches) = 4.0e11 units \
         of work",
    );
    refused_in(
        "sweep",
        dir.path(),
        &[
            "--steps",
            "1000000",
            "--rules",
            "sgd,adam",
            "--lrs",
            "1e-4..1:1000",
        ],
        2,
        "2000 runs × 1000000 steps = 2.0e9 steps: a sweep on a function takes at most 5e8 \
         (about 5 minutes; fewer runs or --steps)",
    );
    // Your own function's steps count by its length: "x+x+...+x2" of 1000 characters
    // is 999 operations.
    let long = times("x+", 499) + "x2";
    refused_in(
        "sweep",
        dir.path(),
        &[
            "--function",
            &long,
            "--steps",
            "1000000",
            "--rules",
            "sgd",
            "--lrs",
            "1e-9,2e-9,3e-9,4e-9,5e-9,6e-9",
        ],
        2,
        "6 runs × 1000000 steps × 99 (your function's 999 operations / 10) = 5.9e8 steps",
    );
}

#[test]
fn a_function_undefined_at_the_start_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (text, values) in [
        ("x1/0 + x2", "f = inf, ∇f = (NaN, NaN)"),
        ("1/0", "f = inf, ∇f = (NaN, NaN)"),
        ("sqrt(x1 - 5) + x2", "f = NaN, ∇f = (NaN, NaN)"),
        ("nan*x1", "f = NaN, ∇f = (NaN, NaN)"),
    ] {
        let message = format!("function: not finite at the start (x1, x2) = (1, 1): {values}");
        refused_in("compare", dir.path(), &["--function", text], 2, &message);
        refused_in("sweep", dir.path(), &["--function", text], 2, &message);
    }
    // Finite at a start given instead.
    refused_in(
        "compare",
        dir.path(),
        &["--function", "ln(x1) + x2^2", "--start=-1,2"],
        2,
        "function: not finite at the start (x1, x2) = (-1, 2): f = NaN, ∇f = (-1, 4)",
    );
    let (_, text) = run_ok(
        "compare",
        dir.path(),
        "fine",
        &["--function", "ln(x1) + x2^2", "--start=2,2", "--steps", "5"],
    );
    assert!(!text.contains("diverged"), "{text}");
}

#[cfg(unix)]
#[test]
fn compare_tries_the_output_directory_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    // Run first, the five paths of a million steps would not fit in 100 MB.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 102400; exec \"$0\" \"$@\"")
        .arg(assert_cmd::cargo::cargo_bin("gradstep"))
        .args(["compare", "--steps", "1000000", "--out", "/dev/null"])
        .args([
            "--rule", "adam", "--rule", "adam", "--rule", "adam", "--rule", "adam",
        ])
        .args(["--rule", "adam"])
        .current_dir(dir.path())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert_refused(&out, 1, "cannot create output directory /dev/null");
}

#[test]
fn a_schedule_shorter_than_the_run_is_refused_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let message = "schedule 'onecycle': total_steps = 3 ends before the run's 5 steps (or \
                   epochs): it must be at least 4, or left out to follow the run";
    let spec = "onecycle:total_steps=3";
    refused_in(
        "train",
        dir.path(),
        &["--schedule", spec, "--epochs", "5"],
        2,
        message,
    );
    refused_in(
        "compare",
        dir.path(),
        &[
            "--schedule",
            spec,
            "--steps",
            "5",
            "--rule",
            "sgd:momentum=0.9",
        ],
        2,
        message,
    );
    refused_in(
        "sweep",
        dir.path(),
        &[
            "--schedule",
            spec,
            "--steps",
            "5",
            "--rules",
            "sgd",
            "--grid",
            "momentum=0.9",
        ],
        2,
        message,
    );
    // One step short of the run's length is the shortest that covers it (the schedule
    // steps between the run's steps).
    let (_, text) = run_ok(
        "train",
        dir.path(),
        "edge",
        &["--schedule", "onecycle:total_steps=4", "--epochs", "5"],
    );
    assert!(text.contains("wrote "), "{text}");
}

#[test]
fn fields_and_functions_read_as_the_help_says() {
    let dir = tempfile::tempdir().unwrap();
    // The help lists `end_factor=none` as warmup_exponential's default: none is a value.
    let (_, text) = run_ok(
        "compare",
        dir.path(),
        "none",
        &[
            "--schedule",
            "warmup_exponential:transition_steps=1,rate=0.5,end_factor=none",
            "--steps",
            "5",
        ],
    );
    assert!(
        text.contains(
            "schedule: warmup_exponential(transition_steps=1, rate=0.5, end_factor=none)"
        ),
        "{text}"
    );
    // The value the user typed, not its nearest f64.
    refused_in(
        "compare",
        dir.path(),
        &["--schedule", "cosine:t_max=18446744073709551615"],
        2,
        "schedule 'cosine': invalid hyperparameter t_max = 18446744073709551615: must be < 2^62",
    );
    // A function may start with a minus sign.
    let (_, text) = run_ok(
        "compare",
        dir.path(),
        "minus",
        &["--function", "-x1^2-x2^2", "--steps", "5"],
    );
    assert!(
        text.starts_with("your function: f(x1, x2) = -x1^2-x2^2, from (1, 1)"),
        "{text}"
    );
}

#[test]
fn control_characters_are_escaped_in_error_lines() {
    let out = gradstep()
        .args(["explain", "x\u{1b}[31m\rY"])
        .output()
        .unwrap();
    assert_refused(&out, 2, "unknown rule 'x\\u{1b}[31m\\rY' (rules: sgd, ");
    let out = gradstep()
        .args(["compare", "--rule", "sg\u{7}d", "--out", "\u{1b}]0;x\u{7}"])
        .output()
        .unwrap();
    assert_refused(&out, 2, "'sg\\u{7}d'");
}

#[cfg(target_os = "linux")]
#[test]
fn help_that_cannot_be_written_is_a_failure() {
    for args in [&["--help"][..], &["compare", "--help"], &["--version"]] {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("gradstep"))
            .args(args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        assert_refused(&out, 1, "cannot write to standard output");
    }
    // Written, it succeeds.
    let out = gradstep().arg("--help").output().unwrap();
    assert!(
        out.status.success() && stdout(&out).contains("Usage: gradstep"),
        "{out:?}"
    );
}
