//! Compiles the C11 and C++17 test programs against `include/gradstep.h` and
//! `libgradstep.a` with `-Wall -Wextra -Wpedantic -Werror` under AddressSanitizer and
//! UndefinedBehaviorSanitizer, runs every error path, and checks their trajectories
//! against the trajectories recorded from PyTorch.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use gradstep_tests::fixtures::{self, Case};
use gradstep_tests::tolerance::tolerance;
use kernels::rules::RuleId;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds `libgradstep.a` (release) and returns its directory.
fn library() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This test binary lives in <target>/<profile>/deps/.
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).unwrap().to_path_buf();
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "gradstep-ffi", "--target-dir"])
            .arg(&target)
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building libgradstep.a failed");
        let dir = target.join("release");
        assert!(
            dir.join("libgradstep.a").exists(),
            "no libgradstep.a in {dir:?}"
        );
        dir
    })
}

/// Compiles one test program with warnings as errors and both sanitizers.
fn compile(compiler: &str, std: &str, source: &str, name: &str) -> PathBuf {
    compile_with(compiler, std, source, name, "address,undefined")
}

/// Compiles one test program with warnings as errors and the sanitizers named.
fn compile_with(compiler: &str, std: &str, source: &str, name: &str, sanitize: &str) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let output = Command::new(compiler)
        .arg(format!("-std={std}"))
        .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-g", "-O1"])
        .arg(format!("-fsanitize={sanitize}"))
        .arg("-fno-sanitize-recover=all")
        .arg("-I")
        .arg(repo().join("include"))
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(source))
        .arg(library().join("libgradstep.a"))
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("running {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} {source} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// The header compiles, links and works as C89, C99, C11, C++17 and C++20 with
/// warnings as errors, `-Wundef` included (tests/c/header.c, written in C89).
#[test]
fn header_is_valid_c89_c99_c11_cpp17_cpp20() {
    for (compiler, std) in [
        ("cc", "c89"),
        ("cc", "c99"),
        ("cc", "c11"),
        ("c++", "c++17"),
        ("c++", "c++20"),
    ] {
        let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("header_{std}"));
        let mut cmd = Command::new(compiler);
        cmd.arg(format!("-std={std}"))
            .args([
                "-Wall",
                "-Wextra",
                "-Wpedantic",
                "-Wundef",
                "-Werror",
                "-fsanitize=address,undefined",
            ])
            .arg("-I")
            .arg(repo().join("include"));
        if compiler == "c++" {
            cmd.args(["-x", "c++"]);
        }
        let output = cmd
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/c/header.c"))
            .args(["-x", "none"])
            .arg(library().join("libgradstep.a"))
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&exe)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{compiler} -std={std}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let out = Command::new(&exe).output().unwrap();
        assert!(
            out.status.success(),
            "{std}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "header: ok\n",
            "{std}"
        );
    }
}

/// The C++ wrapper (include/gradstep.hpp) as C++17 and C++20, with exceptions and
/// without, under ASan/UBSan with leak detection (tests/cpp/wrapper.cpp).
#[test]
fn cpp_wrapper_in_each_of_its_builds() {
    for std in ["c++17", "c++20"] {
        for exceptions in ["-fexceptions", "-fno-exceptions"] {
            let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("wrapper_{std}{exceptions}"));
            let output = Command::new("c++")
                .arg(format!("-std={std}"))
                .arg(exceptions)
                .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-g", "-O1"])
                .args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
                .arg("-I")
                .arg(repo().join("include"))
                .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cpp/wrapper.cpp"))
                .arg(library().join("libgradstep.a"))
                .args(["-lpthread", "-ldl", "-lm", "-o"])
                .arg(&exe)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "c++ -std={std} {exceptions}:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            run_quiet(
                &exe,
                &[("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")],
                "wrapper: ok\n",
            );
        }
    }
}

/// What the C++ wrapper compiles, as C++17 and C++20: a temporary container where the
/// optimizer keeps the pointer (`add_params`' grads, or a view) does not compile (before
/// session 23 C++20's `std::span<const T>` took one, and the optimizer read freed
/// memory); named containers, views of them, `load(opt.save())` and a const result's
/// value do; C++14 stops at a clear `#error`.
#[test]
fn cpp_wrapper_compiles_what_is_safe_and_refuses_what_is_not() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let setup = "std::vector<float> p(4, 1.0f), g(4, 0.5f); \
                 gradstep::optimizer<float> opt(gradstep::rule::parse(\"sgd:lr=0.1\"));";
    let cases = [
        (
            "view_named",
            "gradstep::view<const float> v = g; (void)v;",
            true,
        ),
        (
            "view_temporary",
            "gradstep::view<const float> v = std::vector<float>{1.0f}; (void)v;",
            false,
        ),
        ("add_named", "opt.add_params(0, p, g);", true),
        (
            "add_const_named",
            "const std::vector<float> c(4); opt.add_params(0, p, c);",
            true,
        ),
        (
            "add_temporary_grads",
            "opt.add_params(0, p, std::vector<float>(4, 0.5f));",
            false,
        ),
        (
            "add_temporary_params",
            "opt.add_params(0, std::vector<float>(4), g);",
            false,
        ),
        (
            "add_view_of_named",
            "opt.add_params(0, p, gradstep::view<const float>(g.data(), 4));",
            true,
        ),
        (
            "load_temporary",
            "opt.add_params(0, p, g); opt.load(opt.save());",
            true,
        ),
        (
            "const_result",
            "const gradstep::result<int> r(1); if (r.value() != 1) return 1;",
            true,
        ),
    ];
    for std in ["c++17", "c++20"] {
        for (name, body, compiles) in cases {
            let source = dir.join(format!("{name}_{std}.cpp"));
            std::fs::write(
                &source,
                format!(
                    "#include \"gradstep.hpp\"\n#include <vector>\n\
                     int main() {{ {setup} {body} return 0; }}\n"
                ),
            )
            .unwrap();
            let out = Command::new("c++")
                .arg(format!("-std={std}"))
                .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only"])
                .arg("-I")
                .arg(repo().join("include"))
                .arg(&source)
                .output()
                .unwrap();
            // C++17's own view refuses a temporary; C++20's is std::span, which takes one.
            let compiles = compiles || name == "view_temporary" && std == "c++20";
            assert_eq!(
                out.status.success(),
                compiles,
                "{name} ({std}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let source = dir.join("cpp14.cpp");
    std::fs::write(
        &source,
        "#include \"gradstep.hpp\"\nint main() { return 0; }\n",
    )
    .unwrap();
    let out = Command::new("c++")
        .args(["-std=c++14", "-fsyntax-only", "-I"])
        .arg(repo().join("include"))
        .arg(&source)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("needs C++17"),
        "{stderr}"
    );
}

/// A translation unit built with exceptions and one without, linked into one program:
/// each mode's wrapper has its own symbols (before session 23 `rule::parse` was one
/// weak symbol returning `rule` in one and `result<rule>` in the other, and the program
/// crashed in whichever the linker kept). Both orders, under ASan/UBSan.
#[test]
fn cpp_wrapper_modes_link_together() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let with = dir.join("mode_exceptions.cpp");
    std::fs::write(
        &with,
        "#include \"gradstep.hpp\"\n\
         double with_exceptions() { return gradstep::rule::parse(\"adam:lr=0.5\").c.params.adam.lr; }\n\
         double without_exceptions();\n\
         int main() { return with_exceptions() == 0.5 && without_exceptions() == 0.25 ? 0 : 1; }\n",
    )
    .unwrap();
    let without = dir.join("mode_results.cpp");
    std::fs::write(
        &without,
        "#define GRADSTEP_NO_EXCEPTIONS 1\n#include \"gradstep.hpp\"\n\
         double without_exceptions() {\n\
           gradstep::result<gradstep::rule> r = gradstep::rule::parse(\"adam:lr=0.25\");\n\
           return r ? r.value().c.params.adam.lr : -1.0;\n}\n",
    )
    .unwrap();
    for (first, second) in [(&with, &without), (&without, &with)] {
        let exe = dir.join("modes");
        let output = Command::new("c++")
            .args(["-std=c++17", "-O0", "-Wall", "-Wextra", "-Werror"])
            .args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
            .arg("-I")
            .arg(repo().join("include"))
            .args([first, second])
            .arg(library().join("libgradstep.a"))
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&exe)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let out = Command::new(&exe).output().unwrap();
        assert!(
            out.status.success(),
            "{first:?} first: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn c_program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| compile("cc", "c11", "tests/c/rules.c", "rules_c"))
}

fn cpp_program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| compile("c++", "c++17", "tests/cpp/rules.cpp", "rules_cpp"))
}

/// Runs a program on a recorded case, the rule given by name as text
/// (`"adam:lr=0.001,amsgrad=true,..."`); returns the params after each step.
fn run(exe: &Path, rule: &str, case: &Case) -> Vec<Vec<f64>> {
    let fields: Vec<String> = case
        .hyper
        .iter()
        .map(|(name, value)| match value {
            serde_json::Value::Bool(b) => format!("{name}={b}"),
            // A choice field: its value's name.
            serde_json::Value::String(s) => format!("{name}={s}"),
            // `{:?}` is Rust's shortest round-trip form, which the parser reads exactly.
            v => format!("{name}={:?}", v.as_f64().unwrap()),
        })
        .collect();
    let args = vec![format!("{rule}:{}", fields.join(",")), case.dtype.clone()];
    let mut input = format!("{} {}\n", case.params0.len(), case.grads.len());
    for x in case.params0.iter().chain(case.grads.iter().flatten()) {
        input.push_str(&format!("{x:e} "));
    }
    let mut child = Command::new(exe)
        .args(&args)
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        .env("UBSAN_OPTIONS", "print_stacktrace=1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{exe:?} {args:?} ({}): {}",
        case.name,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').map(|x| x.parse().unwrap()).collect())
        .collect()
}

fn check_rule(exe: &Path, rule: &str) -> usize {
    let fixture = fixtures::load_for(RuleId::from_name(rule).expect("a registered rule"));
    for case in &fixture.cases {
        let tol = tolerance(rule, &case.dtype);
        let got = run(exe, rule, case);
        assert_eq!(got.len(), case.params.len(), "{}: steps", case.name);
        for (t, (ours, torch)) in got.iter().zip(&case.params).enumerate() {
            for (i, (&o, &w)) in ours.iter().zip(torch).enumerate() {
                assert!(
                    tol.accepts(o, w),
                    "{rule} {} step {}: param {i} is {o:e}, torch {w:e}",
                    case.name,
                    t + 1
                );
            }
        }
    }
    fixture.cases.len()
}

/// Runs a test program in one of its self-checking modes.
fn self_check_with(exe: &Path, mode: &str, expected: &str) {
    let out = Command::new(exe)
        .arg(mode)
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

fn self_check(mode: &str, expected: &str) {
    self_check_with(c_program(), mode, expected);
}

#[test]
fn cpp_program_tours_the_api() {
    self_check_with(cpp_program(), "--tour", "tour: ok\n");
}

#[test]
fn c_program_refuses_every_bad_input() {
    self_check("--errors", "errors: ok\n");
}

#[test]
fn c_program_keeps_the_powers_cache_invisible() {
    self_check("--cache", "cache: ok\n");
}

/// `gradstep_buffer_new_*` and `gradstep_buffer_free` from C: placement, zeros, the same
/// bits as over `malloc`'s memory, refusals (tests/c/rules.c, `buffers`).
#[test]
fn c_program_steps_over_gradstep_buffers() {
    self_check("--buffers", "buffers: ok\n");
}

/// `gradstep_last_error` from C: the messages, the `snprintf` contract, emptied by a
/// success.
#[test]
fn c_program_reads_the_last_error() {
    self_check("--last-error", "last-error: ok\n");
}

#[test]
fn c_program_clips_scales_and_accumulates() {
    self_check("--training", "training: ok\n");
}

/// Lookahead through the C ABI (tests/c/lookahead.c): a composite from its spec,
/// stepped by a handle to values worked out by hand, the typed setter's refusals, a
/// checkpoint round trip.
#[test]
fn c_program_steps_lookahead() {
    let exe = compile("cc", "c11", "tests/c/lookahead.c", "lookahead_c");
    let out = Command::new(&exe).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "lookahead: ok\n");
}

#[test]
fn c_program_drives_optimizer_and_schedule_handles() {
    self_check("--handles", "handles: ok\n");
}

/// The schedule handles replay cases recorded from torch (1e-12 relative, as the
/// kernel crate's own replay).
#[test]
fn c_program_schedules_follow_torch() {
    #[derive(serde::Deserialize)]
    struct File {
        cases: Vec<Case>,
    }
    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        steps: usize,
        lr: Vec<f64>,
        momentum: Option<Vec<f64>>,
    }
    let text = std::fs::read_to_string(fixtures::dir().join("schedules.json")).unwrap();
    let file: File = serde_json::from_str(&text).unwrap();
    let tol = gradstep_tests::tolerance::schedule_tolerance();
    let names = [
        "step_3_05",
        "cosine_10_min",
        "cyclic_triangular",
        "one_cycle_three_phase",
        "sequential_warmup_cosine",
        "chained_constant_exponential",
        "plateau_patience2_cooldown3",
        "lambda_pow",
        "multiplicative_alternate",
        "warm_restarts_fractional",
    ];
    for name in names {
        let case = file.cases.iter().find(|c| c.name == name).unwrap();
        // OneCycleLR's last step differs from torch by design (see the kernel docs).
        let steps = if name.starts_with("one_cycle") {
            case.steps - 1
        } else {
            case.steps
        };
        let out = Command::new(c_program())
            .args(["--schedule", name, &steps.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<Vec<f64>> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split(' ').map(|x| x.parse().unwrap()).collect())
            .collect();
        assert!(lines.len() > 10, "{name}: {} lines", lines.len());
        for (t, line) in lines.iter().enumerate() {
            let ok = line[0] == case.lr[t] || tol.accepts(line[0], case.lr[t]);
            assert!(
                ok,
                "{name} epoch {t}: C {:e}, torch {:e}",
                line[0], case.lr[t]
            );
            if let Some(m) = &case.momentum {
                assert!(tol.accepts(line[1], m[t]), "{name} epoch {t}: momentum");
            }
        }
    }
}

#[test]
fn c_program_round_trips_checkpoints() {
    self_check("--checkpoints", "checkpoints: ok\n");
}

/// Every registered rule replays its torch recording through the C ABI, chosen by name.
#[test]
fn c_program_follows_the_torch_trajectories() {
    let mut cases = 0;
    for id in RuleId::ALL {
        cases += check_rule(c_program(), id.name());
    }
    assert!(cases > 10 * RuleId::ALL.len(), "only {cases} cases");
}

#[test]
fn cpp_program_follows_the_torch_trajectories() {
    let cases = check_rule(cpp_program(), "adam") + check_rule(cpp_program(), "sgd");
    assert!(cases > 20, "only {cases} cases");
}

/// The C program finds the rules by iterating the kinds, and runs every rule of the
/// registry (defaults by kind and by name, f32 and f64 steps, a checkpoint round trip):
/// a rule added to the registry is a C test case without any change to the program.
#[test]
fn c_program_runs_every_registered_rule() {
    let out = Command::new(c_program())
        .arg("--kinds")
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let ran: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ran "))
        .collect();
    let registered: Vec<&str> = RuleId::ALL.iter().map(|id| id.name()).collect();
    assert_eq!(ran, registered);
    assert!(stdout.ends_with("kinds: ok\n"), "{stdout}");
}

/// Runs a program that prints `expected` on stdout when every check passed, and must
/// print nothing else, on stdout or stderr (issue 12: the library never prints).
fn run_quiet(exe: &Path, env: &[(&str, &str)], expected: &str) {
    let mut cmd = Command::new(exe);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{exe:?} failed:\n{stdout}\n{stderr}");
    assert_eq!(stdout, expected, "{stderr}");
    // ASan notes an allocation it refused (the system allocator says nothing); anything
    // else on stderr is the library printing.
    let printed: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("WARNING: AddressSanitizer failed to allocate"))
        .filter(|l| !l.is_empty())
        .collect();
    assert!(printed.is_empty(), "printed on stderr:\n{stderr}");
}

/// Every finding of issue 12 the C ABI can show, as a hostile C caller would try it
/// (tests/c/abuse.c): each call returns a status, refusals write nothing, nothing
/// crashes, aborts or prints, under ASan and UBSan. ASan's allocator is told to return
/// NULL for impossible sizes as the system allocator does (it aborts by default).
#[test]
fn c_abuse_program_gets_a_status_for_everything() {
    let exe = compile("cc", "c11", "tests/c/abuse.c", "abuse_c");
    let asan = "detect_leaks=1:abort_on_error=1:allocator_may_return_null=1";
    run_quiet(&exe, &[("ASAN_OPTIONS", asan)], "abuse ok\n");
}

/// Two threads on one handle, on two handles, and a free racing steps
/// (tests/c/stress.c), under ASan/UBSan.
#[test]
fn c_stress_program_two_threads_under_asan() {
    let exe = compile("cc", "c11", "tests/c/stress.c", "stress_c_asan");
    run_quiet(
        &exe,
        &[("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")],
        "stress ok\n",
    );
}

/// The same under ThreadSanitizer, linked against the ordinary `libgradstep.a`.
#[test]
fn c_stress_program_two_threads_under_tsan() {
    let exe = compile_with("cc", "c11", "tests/c/stress.c", "stress_c_tsan", "thread");
    run_quiet(&exe, &[("TSAN_OPTIONS", "halt_on_error=1")], "stress ok\n");
}
