//! `gradstep compare`: the table, the pictures, config files and every kind of bad
//! input.

mod common;

use std::path::Path;

use common::{Svg, assert_refused, gradstep, listing, stdout};
use gradstep::rules::{RuleId, Value};

/// The table's rows: (rule label, final loss column, steps column).
fn rows(out: &str) -> Vec<(String, String, String)> {
    let mut lines = out.lines().skip_while(|l| !l.starts_with("rule "));
    lines.next();
    lines
        .take_while(|l| !l.starts_with("wrote ") && !l.starts_with("(steps to tol"))
        .map(|l| {
            let cols: Vec<&str> = l
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            (
                cols[0].to_string(),
                cols[1].to_string(),
                cols[2].to_string(),
            )
        })
        .collect()
}

fn loss(row: &(String, String, String)) -> f64 {
    row.1
        .parse()
        .unwrap_or_else(|_| panic!("final loss of {row:?}"))
}

#[test]
fn adam_and_momentum_beat_gradient_descent_on_rosenbrock() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradstep()
        .args([
            "compare",
            "--function",
            "rosenbrock",
            "--steps",
            "1000",
            "--tol",
            "1e-3",
        ])
        .args(["--rule", "sgd:lr=0.001"])
        .args(["--rule", "sgd:lr=0.001,momentum=0.9"])
        .args(["--rule", "adam:lr=0.1"])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let rows = rows(&text);
    let labels: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        labels,
        [
            "sgd(lr=0.001)",
            "sgd(lr=0.001, momentum=0.9)",
            "adam(lr=0.1)"
        ],
        "{text}"
    );
    let (gd, momentum, adam) = (loss(&rows[0]), loss(&rows[1]), loss(&rows[2]));
    // Measured: 0.4535, 2.505e-5, 1.243e-5. Plain GD is still crawling along the
    // valley; momentum and Adam are within 1e-4 of the minimum, 4 decades lower.
    assert!(gd > 0.1, "{text}");
    assert!(momentum < 1e-4 && momentum < gd / 1e3, "{text}");
    assert!(adam < 1e-4 && adam < gd / 1e3, "{text}");
    // Steps to f − f* ≤ 1e-3 (measured: -, 568, 715).
    assert_eq!(rows[0].2, "-", "{text}");
    for row in &rows[1..] {
        let steps: u32 = row.2.parse().unwrap_or_else(|_| panic!("{text}"));
        assert!((300..1000).contains(&steps), "{text}");
    }

    assert_eq!(
        listing(dir.path()),
        ["compare-loss.svg", "compare-trajectories.svg"]
    );
    let colours = ["#1f77b4", "#ff7f0e", "#2ca02c"];
    let trajectories = Svg::read(&dir.path().join("compare-trajectories.svg"));
    let loss_svg = Svg::read(&dir.path().join("compare-loss.svg"));
    for (svg, min_points) in [(&trajectories, 50), (&loss_svg, 1001)] {
        for (label, colour) in labels.iter().zip(colours) {
            assert!(svg.has_label(label), "legend {label:?} in {:?}", svg.texts);
            assert!(
                svg.longest(colour) >= min_points,
                "{label}: {}",
                svg.longest(colour)
            );
        }
        assert!(svg.has_label("x1") || svg.has_label("step"), "axis labels");
    }
    assert!(trajectories.has_label("rosenbrock: f(x1, x2)"));
    assert!(trajectories.has_label("minimum (1, 1)") && trajectories.has_label("start (-1.2, 1)"));
    assert!(loss_svg.has_label("f(x) − f*  (log scale)"));
}

#[test]
fn every_rule_of_the_kernel_crate_runs_by_name() {
    let dir = tempfile::tempdir().unwrap();
    // Options worth running through the CLI; every other registered rule runs with
    // its defaults, by its registry name.
    let options = [
        "sgd:lr=0.1,momentum=0.5,nesterov",
        "adam:lr=0.1,amsgrad=true",
        "adamw:lr=0.1,weight_decay=0.001",
        "adamax:lr=0.1",
        "nadam:lr=0.1,momentum_decay=0.004",
        "radam:lr=0.1,beta1=0.8",
        "adagrad:lr=0.5,initial_accumulator_value=0.1",
        "adadelta:lr=1,rho=0.9",
        "rmsprop:lr=0.01,centered,momentum=0.5",
        "rprop:lr=0.1,etaminus=0.4",
        "asgd:lr=0.05,t0=10",
    ];
    let rules: Vec<String> = RuleId::ALL
        .iter()
        .map(|id| {
            let prefix = format!("{}:", id.name());
            options
                .iter()
                .find(|o| o.starts_with(&prefix))
                .map_or(id.name().to_string(), |o| o.to_string())
        })
        .collect();
    let mut cmd = gradstep();
    cmd.args([
        "compare",
        "--function",
        "quadratic",
        "--steps",
        "100",
        "--out",
    ]);
    cmd.arg(dir.path());
    for r in &rules {
        cmd.args(["--rule", r]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let rows = rows(&text);
    assert_eq!(rows.len(), rules.len(), "{text}");
    for row in &rows {
        // Every rule gets somewhere from f = 10.5 in 100 steps.
        assert!(loss(row) < 10.5, "{text}");
    }
    let svg = Svg::read(&dir.path().join("compare-loss.svg"));
    assert!(
        svg.has_label("rmsprop(lr=0.01, centered=true, momentum=0.5)"),
        "{:?}",
        svg.texts
    );
}

#[test]
fn a_schedule_sets_the_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    let run = |schedule: Option<&str>| {
        let mut cmd = gradstep();
        cmd.args([
            "compare",
            "--function",
            "quadratic",
            "--steps",
            "30",
            "--rule",
            "sgd:lr=0.4",
        ]);
        if let Some(s) = schedule {
            cmd.args(["--schedule", s]);
        }
        let out = cmd.arg("--out").arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = stdout(&out);
        loss(&rows(&text)[0])
    };
    let constant = run(None);
    // Halving the rate every 5 steps slows gradient descent down on this quadratic.
    let stepped = run(Some("step:step_size=5,gamma=0.5"));
    let cosine = run(Some("cosine"));
    assert!(stepped > constant * 10.0, "{constant} {stepped}");
    assert!(
        cosine > constant && cosine < stepped,
        "{constant} {cosine} {stepped}"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_config_file_gives_the_same_settings_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "compare.toml",
        r#"
function = "beale"
steps = 200
tol = 1e-4
out = "from-config"

[[rule]]
name = "adam"
lr = 0.05

[[rule]]
name = "sgd"
lr = 0.001
momentum = 0.9

[schedule]
name = "exponential"
gamma = 0.999
"#,
    );
    let out = gradstep()
        .args(["compare", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("beale:") && text.contains("200 steps, tol 1e-4"),
        "{text}"
    );
    assert!(
        text.contains("schedule: exponential(gamma=0.999)"),
        "{text}"
    );
    let labels: Vec<String> = rows(&text).into_iter().map(|r| r.0).collect();
    assert_eq!(labels, ["adam(lr=0.05)", "sgd(lr=0.001, momentum=0.9)"]);
    // `out` is relative to the config file.
    assert_eq!(
        listing(&dir.path().join("from-config")),
        ["compare-loss.svg", "compare-trajectories.svg"]
    );

    let flags = dir.path().join("from-flags");
    let out = gradstep()
        .args(["compare", "--config"])
        .arg(&config)
        .args(["--steps", "20", "--rule", "rprop", "--out"])
        .arg(&flags)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("beale:") && text.contains("20 steps"),
        "{text}"
    );
    assert_eq!(
        rows(&text).len(),
        1,
        "--rule replaces the file's rules: {text}"
    );
    assert_eq!(
        listing(&flags),
        ["compare-loss.svg", "compare-trajectories.svg"]
    );
}

#[test]
fn help_shows_the_defaults_and_every_rule() {
    let out = gradstep().args(["compare", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = stdout(&out);
    for text in [
        "[default: rosenbrock]",
        "[default: 1000]",
        "[default: 1e-6]",
        "[default: gradstep-out]",
        "sgd       lr=0.001, momentum=0, dampening=0",
        "adam      lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8",
        "cosine_warm_restarts",
        "rastrigin",
        "Exit status",
    ] {
        assert!(help.contains(text), "{text:?} missing from:\n{help}");
    }
    // Every registered rule, with every field and its default.
    for &id in RuleId::ALL {
        let line = help
            .lines()
            .find(|l| l.starts_with(&format!("  {:<9} ", id.name())))
            .unwrap_or_else(|| panic!("{id} missing from:\n{help}"));
        let rule = id.default_rule();
        for field in id.fields() {
            let shown = line
                .split(", ")
                .map(|item| item.trim().rsplit(' ').next().unwrap())
                .find_map(|item| item.strip_prefix(&format!("{}=", field.name)))
                .unwrap_or_else(|| panic!("{id}: no {} in {line:?}", field.name));
            let value = match rule.get(field.name).unwrap() {
                Value::Number(x) => x,
                Value::Flag(b) => f64::from(u8::from(b)),
                Value::Choice(name) => {
                    assert_eq!(shown, name, "{id}.{} in {line:?}", field.name);
                    continue;
                }
            };
            let parsed = match shown {
                "true" => 1.0,
                "false" => 0.0,
                number => number.parse().unwrap(),
            };
            assert_eq!(parsed, value, "{id}.{} in {line:?}", field.name);
        }
    }
    let demo = stdout(&gradstep().args(["demo", "--help"]).output().unwrap());
    assert!(demo.contains("[default: gradstep-out]"), "{demo}");
}

/// Runs `compare` with `args` and `--out DIR/out`; asserts the refusal and that no
/// output was made.
fn refused(args: &[&str], code: i32, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    common::refused_in("compare", dir.path(), args, code, message);
}

/// clap's own parse errors are one line too, with the usage exit code.
#[test]
fn malformed_flags_are_one_line_usage_errors() {
    refused(&["--steps", "abc"], 2, "invalid value 'abc'");
    refused(
        &["--no-such-flag"],
        2,
        "unexpected argument '--no-such-flag'",
    );
    let out = gradstep().arg("frobnicate").output().unwrap();
    assert_refused(&out, 2, "unrecognized subcommand 'frobnicate'");
}

#[test]
fn bad_rules_and_values_are_usage_errors() {
    // Every registered rule, in id order.
    let names: Vec<&str> = RuleId::ALL.iter().map(|id| id.name()).collect();
    refused(
        &["--rule", "adamm:lr=0.1"],
        2,
        &format!("unknown rule 'adamm' (rules: {})", names.join(", ")),
    );
    assert!(names.starts_with(&["sgd", "adam", "adamw"]) && names.len() >= 11);
    refused(
        &["--rule", "sgd:lrr=0.1"],
        2,
        "rule 'sgd': unknown field 'lrr' (fields: lr, momentum, dampening, weight_decay, nesterov, maximize)",
    );
    refused(
        &["--rule", "sgd:lr=-1"],
        2,
        "rule 'sgd': invalid hyperparameter lr = -1",
    );
    refused(
        &["--rule", "adam:beta2=1"],
        2,
        "rule 'adam': invalid hyperparameter beta2 = 1",
    );
    refused(
        &["--rule", "sgd:lr=fast"],
        2,
        "rule 'sgd': lr = 'fast' is not a number",
    );
    refused(
        &["--rule", "sgd:nesterov=maybe"],
        2,
        "rule 'sgd': nesterov = 'maybe' is not true or false",
    );
    refused(
        &["--rule", "sgd:lr=0.1,lr=0.2"],
        2,
        "field 'lr' is given twice",
    );
    refused(
        &["--function", "himmelblau"],
        2,
        "unknown function 'himmelblau'",
    );
    refused(
        &["--steps", "0"],
        2,
        "steps = 0 must be between 1 and 1000000",
    );
    refused(&["--tol", "-1"], 2, "tol = -1 must be a positive number");
    refused(&["--tol", "0"], 2, "tol = 0 must be a positive number");
    refused(&["--schedule", "warmup"], 2, "unknown schedule 'warmup'");
    refused(
        &["--schedule", "step"],
        2,
        "schedule 'step' needs step_size",
    );
    refused(
        &["--schedule", "step:step_size=0"],
        2,
        "schedule 'step': invalid hyperparameter step_size = 0",
    );
    refused(
        &["--schedule", "cosine:t_max=10,gamma=2"],
        2,
        "schedule 'cosine': unknown field 'gamma' (fields: t_max, eta_min)",
    );
}

#[test]
fn bad_config_files_are_refused() {
    refused(
        &["--config", "missing.toml"],
        1,
        "cannot read config missing.toml",
    );
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("steps = \"many\"\n", "line 1, column 9"),
        (
            "[[rule]]\nname = \"sgd\"\nspeed = 3\n",
            "rule 1: rule 'sgd': unknown field 'speed'",
        ),
        ("colour = \"red\"\n", "unknown field `colour`"),
        ("[[rule]]\nlr = 0.1\n", "a rule table needs a name"),
        ("function = [\n", "line 1"),
    ];
    for (text, message) in cases {
        let config = write(dir.path(), "bad.toml", text);
        refused(&["--config", config.to_str().unwrap()], 2, message);
    }
}

#[test]
fn an_unwritable_output_directory_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a-file", "keep me");
    let out = gradstep()
        .args(["compare", "--steps", "10", "--out"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_refused(&out, 1, "cannot create output directory");
    assert_eq!(listing(dir.path()), ["a-file"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

/// "Steps to tol" is convergence, not the first touch: RMSprop at lr 0.01 on Beale dips
/// below f − f* = 1e-6 at step 642 and climbs out again (final 3.4e-5 after 1000 steps).
#[test]
fn steps_to_tol_counts_from_where_the_run_stays_within_tol() {
    let dir = tempfile::tempdir().unwrap();
    let row = |steps: &str| -> String {
        let (_, text) = common::run_ok(
            "compare",
            dir.path(),
            steps,
            &[
                "--function",
                "beale",
                "--steps",
                steps,
                "--rule",
                "rmsprop:lr=0.01",
            ],
        );
        assert!(text.contains("(steps to tol: the step from which f − f* stays ≤ tol"));
        text.lines()
            .find(|l| l.starts_with("rmsprop(lr=0.01)"))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // 1000 steps: not within tol at the end, so no step count.
    assert_eq!(
        row("1000"),
        "rmsprop(lr=0.01) 3.437650e-5 - (2.997153, 0.498092)"
    );
    // Stopped at 642, the first touch is also where it stays.
    assert!(row("642").contains(" 642 "), "{}", row("642"));
    assert!(row("641").contains(" - "), "{}", row("641"));
}

/// Your own start point, and gradient noise: seeded, the same for every rule, and
/// enough to keep SGD from settling within tol (why SGD is stochastic).
#[test]
fn a_start_point_and_gradient_noise_of_ones_own() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| -> String {
        let mut args = vec!["--function", "quadratic", "--rule", "sgd:lr=0.1"];
        args.extend_from_slice(extra);
        common::run_ok("compare", dir.path(), name, &args).1
    };
    let text = run("start", &["--start=-8,3"]);
    assert!(
        text.starts_with("quadratic: f(x1, x2) = 0.1·x1² + 2·x2², from (-8, 3),"),
        "{text}"
    );
    // From (−8, 3) plain SGD at lr 0.1 reaches 1e-6: x1 shrinks by 0.98 per step.
    let r = rows(&text);
    assert!(loss(&r[0]) < 1e-12, "{r:?}");
    let svg = Svg::read(&dir.path().join("start/compare-trajectories.svg"));
    assert!(svg.has_label("start (-8, 3)"), "{:?}", svg.texts);

    let quiet = rows(&run("quiet", &[]));
    let noisy = run("noisy", &["--noise", "0.5"]);
    assert!(
        noisy.contains("gradient noise: N(0, 0.5²) added to each coordinate"),
        "{noisy}"
    );
    let noisy = rows(&noisy);
    assert!(loss(&quiet[0]) < 1e-12, "{quiet:?}");
    // The noise keeps it hovering around the minimum, never within tol.
    assert!(loss(&noisy[0]) > 1e-5 && loss(&noisy[0]) < 0.1, "{noisy:?}");
    assert_eq!(noisy[0].2, "-");
    // Seeded: the same seed repeats it, another seed differs.
    assert_eq!(rows(&run("again", &["--noise", "0.5"])), noisy);
    assert_ne!(
        rows(&run("seed1", &["--noise", "0.5", "--seed", "1"])),
        noisy
    );

    common::refused_in(
        "compare",
        dir.path(),
        &["--start", "1"],
        2,
        "'1' is not a point X1,X2",
    );
    common::refused_in("compare", dir.path(), &["--noise", "-1"], 2, "noise = -1");
    common::refused_in(
        "compare",
        dir.path(),
        &["--start=1e9,0"],
        2,
        "magnitude at most 1e6",
    );
}

/// Your own function: parsed by evalexpr, differentiated by dual numbers. Typed
/// Rosenbrock gives the built-in one's numbers digit for digit.
#[test]
fn a_typed_function_runs_like_a_built_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let args = |f: &'static str| {
        vec![
            "--function",
            f,
            "--start=-1.2,1",
            "--rule",
            "adam:lr=0.1",
            "--steps",
            "300",
        ]
    };
    let (_, typed) = common::run_ok(
        "compare",
        dir.path(),
        "t",
        &args("(1 - x1)^2 + 100*(x2 - x1^2)^2"),
    );
    let (_, builtin) = common::run_ok("compare", dir.path(), "b", &args("rosenbrock"));
    assert!(typed.starts_with("your function: f(x1, x2) = (1 - x1)^2 + 100*(x2 - x1^2)^2, from (-1.2, 1), minimum unknown"), "{typed}");
    let (t, b) = (rows(&typed), rows(&builtin));
    // f itself vs f − f* with f* = 0: the same number; the final point the same.
    assert_eq!(t[0].1, b[0].1, "{typed}\n{builtin}");
    let last = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("adam"))
            .unwrap()
            .rsplit("  ")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(last(&typed), last(&builtin));
    let svg = Svg::read(&dir.path().join("t/compare-trajectories.svg"));
    assert!(
        svg.has_label("your function: f(x1, x2) = (1 - x1)^2"),
        "{:?}",
        svg.texts
    );

    common::refused_in(
        "compare",
        dir.path(),
        &["--function", "rosenbrok"],
        2,
        "unknown function 'rosenbrok' (functions: quadratic",
    );
    common::refused_in(
        "compare",
        dir.path(),
        &["--function", "x1 + z"],
        2,
        "function: \"x1 + z\": unknown variable 'z'",
    );
    common::refused_in(
        "compare",
        dir.path(),
        &["--function", "x1 +* 2"],
        2,
        "function: \"x1 +* 2\": an operator is missing an operand",
    );
}

/// `lookahead(RULE):k=..,alpha=..,momentum=..` wraps any rule: it runs next to the
/// plain rule (a different path: the syncs pull it back), is labelled as a composite,
/// and bad options or a bad inner rule are refused before anything runs. `gradstep
/// explain lookahead` describes it.
#[test]
fn lookahead_wraps_a_rule_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = gradstep()
        .args(["compare", "--function", "rosenbrock", "--steps", "300"])
        .args(["--rule", "sgd:lr=0.001,momentum=0.9"])
        .args([
            "--rule",
            "lookahead(sgd:lr=0.001,momentum=0.9):k=5,alpha=0.5,momentum=pullback",
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows = rows(&stdout(&out));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[1].0.starts_with("lookahead[k=5,α=0.5,pullback](sgd("),
        "{rows:?}"
    );
    let (plain, wrapped) = (loss(&rows[0]), loss(&rows[1]));
    assert!(
        plain.is_finite() && wrapped.is_finite() && plain != wrapped,
        "{rows:?}"
    );

    for (rule, message) in [
        ("lookahead(sgd):k=0", "invalid hyperparameter k"),
        ("lookahead(sgd):alpha=2", "invalid hyperparameter alpha"),
        ("lookahead(sgd):kk=1", "lookahead has no option 'kk'"),
        ("lookahead(sgdd)", "unknown rule 'sgdd'"),
        ("lookahead(sgd", "is not of the form lookahead("),
    ] {
        let out = gradstep()
            .args(["compare", "--rule", rule, "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_refused(&out, 2, message);
    }

    // Not (yet) swept: refused by name rather than swept without the wrapper.
    let out = gradstep()
        .args(["sweep", "--rule", "lookahead(adam)", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_refused(&out, 2, "lookahead(...) is taken by compare and train only");

    let out = gradstep().args(["explain", "lookahead"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for needle in [
        "pytorch_optimizer.Lookahead",
        "momentum",
        "pullback",
        "alpha",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
