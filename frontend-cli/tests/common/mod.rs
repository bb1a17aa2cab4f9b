//! Helpers shared by the CLI tests.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The `gradstep` binary, with a clean environment for backtraces.
pub fn gradstep() -> Command {
    let mut cmd = Command::cargo_bin("gradstep").unwrap();
    cmd.env_remove("RUST_BACKTRACE");
    cmd
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Asserts a refused command: exit `code`, exactly one line on stderr, `error: ...`
/// containing `message`, no panic, nothing on stdout.
pub fn assert_refused(out: &Output, code: i32, message: &str) {
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "panic: {err}"
    );
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    assert!(
        err.contains(message),
        "{err:?} does not mention {message:?}"
    );
    assert!(out.stdout.is_empty(), "stdout: {}", stdout(out));
}

/// Runs `gradstep SUBCOMMAND ARGS --out DIR/NAME`, which must succeed quietly (no
/// progress bar off a terminal); returns the output directory and standard output.
pub fn run_ok(subcommand: &str, dir: &Path, name: &str, args: &[&str]) -> (PathBuf, String) {
    let out_dir = dir.join(name);
    let out = gradstep()
        .arg(subcommand)
        .args(args)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "no progress bar off a terminal: {out:?}"
    );
    (out_dir, stdout(&out))
}

/// Runs `gradstep SUBCOMMAND ARGS --out DIR/out` in `dir`; asserts the refusal (see
/// [`assert_refused`]) and that no output directory was made.
pub fn refused_in(subcommand: &str, dir: &Path, args: &[&str], code: i32, message: &str) {
    let out_dir = dir.join("out");
    let out = gradstep()
        .arg(subcommand)
        .args(args)
        .arg("--out")
        .arg(&out_dir)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_refused(&out, code, message);
    assert!(!out_dir.exists(), "{args:?} left {out_dir:?}");
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What an SVG shows: its text labels, and its polylines as (stroke colour, points).
pub struct Svg {
    pub texts: Vec<String>,
    pub polylines: Vec<(String, usize)>,
}

impl Svg {
    /// Parses the file as XML (failing the test if it is not) and collects what it shows.
    pub fn read(path: &Path) -> Svg {
        let text = std::fs::read_to_string(path).unwrap();
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let mut texts = Vec::new();
        let mut polylines = Vec::new();
        for node in doc.descendants() {
            match node.tag_name().name() {
                "text" => texts.push(node.text().unwrap_or("").trim().to_string()),
                "polyline" => polylines.push((
                    node.attribute("stroke").unwrap_or("").to_ascii_lowercase(),
                    node.attribute("points")
                        .unwrap_or("")
                        .split_whitespace()
                        .count(),
                )),
                _ => {}
            }
        }
        Svg { texts, polylines }
    }

    /// Whether some text element starts with `label`.
    pub fn has_label(&self, label: &str) -> bool {
        self.texts.iter().any(|t| t.starts_with(label))
    }

    /// The most points of any polyline drawn in `colour` (`#rrggbb`).
    pub fn longest(&self, colour: &str) -> usize {
        self.polylines
            .iter()
            .filter(|(c, _)| c == colour)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
    }
}

/// Checks that the picture's legend (the framed box filled `#FBFBFB`) covers no data:
/// every polyline is either wholly inside a legend box (a legend sample) or has no
/// point in any; every circle (iterates, start) lies outside. Returns the number of
/// legend boxes.
pub fn assert_legend_clear_of_data(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let f = |n: roxmltree::Node<'_, '_>, a: &str| -> f64 {
        n.attribute(a).unwrap_or("0").parse().unwrap()
    };
    let boxes: Vec<[f64; 4]> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("#FBFBFB"))
        .map(|n| {
            let (x, y) = (f(n, "x"), f(n, "y"));
            [x, y, x + f(n, "width"), y + f(n, "height")]
        })
        .collect();
    assert!(!boxes.is_empty(), "{}: no legend", path.display());
    let inside = |(x, y): (f64, f64)| {
        boxes
            .iter()
            .any(|b| (b[0]..=b[2]).contains(&x) && (b[1]..=b[3]).contains(&y))
    };
    for n in doc.descendants() {
        if n.has_tag_name("polyline") {
            let points: Vec<(f64, f64)> = n
                .attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            let n_in = points.iter().filter(|p| inside(**p)).count();
            assert!(
                n_in == 0 || n_in == points.len(),
                "{}: a line of {} points runs into the legend",
                path.display(),
                points.len()
            );
        } else if n.has_tag_name("circle") {
            let c = (f(n, "cx"), f(n, "cy"));
            // Legend marks are small circles inside a box at its left edge.
            let is_mark = boxes
                .iter()
                .any(|b| (b[0]..=b[0] + 40.0).contains(&c.0) && (b[1]..=b[3]).contains(&c.1));
            assert!(
                is_mark || !inside(c),
                "{}: a point under the legend",
                path.display()
            );
        }
    }
    boxes.len()
}
