//! `gradstep demo`: the seed article's numbers to 6 decimals, and its picture.

mod common;

use common::{Svg, assert_refused, gradstep, listing, stdout};

#[test]
fn demo_prints_the_seed_numbers_and_draws_them() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("pictures");
    let out = gradstep()
        .args(["demo", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = stdout(&out);
    for line in [
        "gradient descent, eta = 0.4        after 20 steps: x1 -0.943467, x2 -0.000073",
        "gradient descent, eta = 0.6        after 20 steps: x1 -0.387814, x2 -1673.365109",
        "momentum, eta = 0.4, gamma = 0.5   after 20 steps: x1 -0.062843, x2 0.001202",
        "momentum, eta = 0.6, gamma = 0.5   after 20 steps: x1 0.007188, x2 0.002553",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // In words: the article's "epoch" is a step, η = 0.6 diverged (the x2 factor
    // 1 − 0.6·4 = −1.4), momentum fixed it, and where the numbers come from.
    for words in [
        "the article prints \"epoch 20\": each of its epochs is one step",
        "eta = 0.6 DIVERGED: each step multiplies x2 by 1 - 0.6*4 = -1.4",
        "stable only for eta < 2/4 = 0.5",
        "momentum (gamma = 0.5) fixes it",
        "With eta = 0.6 it converges (x1 0.007, x2 0.003)",
        "it ends 15x closer in x1 (-0.063)",
        "Source: 【从零开始学习深度学习】39. 梯度下降优化之动量法介绍及其Pytorch实现",
        "Dive into Deep Learning",
    ] {
        assert!(out.contains(words), "missing {words:?} in:\n{out}");
    }
    assert_eq!(listing(&out_dir), ["demo.svg"], "no temporary file left");
    assert!(
        out.contains("demo.svg"),
        "says where the picture is:\n{out}"
    );

    let svg = Svg::read(&out_dir.join("demo.svg"));
    assert!(svg.has_label("Gradient descent and momentum on f(x1, x2)"));
    assert!(svg.has_label("x1") && svg.has_label("x2"), "axis labels");
    // The four runs in the legend, each drawn in its colour (the start and 20 steps,
    // in one line; the diverging run until it leaves the picture).
    for (label, colour, points) in [
        ("gradient descent, η = 0.4", "#1f77b4", 21),
        ("gradient descent, η = 0.6 (leaves the plot", "#ff7f0e", 3),
        ("momentum, η = 0.4, γ = 0.5", "#2ca02c", 21),
        ("momentum, η = 0.6, γ = 0.5", "#d62728", 21),
    ] {
        assert!(svg.has_label(label), "legend {label:?} in {:?}", svg.texts);
        assert_eq!(svg.longest(colour), points, "{label}");
    }
    assert!(svg.has_label("start (-5, -2)") && svg.has_label("minimum (0, 0)"));
    let contours = svg.polylines.iter().filter(|(c, _)| c == "#9aa8b8").count();
    assert!(contours >= 7, "contour lines: {contours}");
}

#[test]
fn unwritable_output_directory_is_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let out = gradstep()
        .args(["demo", "--out"])
        .arg(file.join("pictures"))
        .output()
        .unwrap();
    assert_refused(&out, 1, "cannot create output directory");
    assert_eq!(listing(dir.path()), ["a-file"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
}

#[test]
fn unknown_subcommand_is_refused() {
    gradstep().arg("frobnicate").assert().failure().code(2);
}
