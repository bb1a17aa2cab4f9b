//! The demo reproduces the seed article's numbers to 6 decimals.

use assert_cmd::Command;

#[test]
fn demo_prints_the_seed_numbers() {
    let out = Command::cargo_bin("gradstep")
        .unwrap()
        .arg("demo")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    for line in [
        "gradient descent, eta = 0.4        epoch 20, x1 -0.943467, x2 -0.000073",
        "gradient descent, eta = 0.6        epoch 20, x1 -0.387814, x2 -1673.365109",
        "momentum, eta = 0.4, gamma = 0.5   epoch 20, x1 -0.062843, x2 0.001202",
        "momentum, eta = 0.6, gamma = 0.5   epoch 20, x1 0.007188, x2 0.002553",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

#[test]
fn unknown_subcommand_is_refused() {
    Command::cargo_bin("gradstep")
        .unwrap()
        .arg("frobnicate")
        .assert()
        .failure()
        .code(2);
}
