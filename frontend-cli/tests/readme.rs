//! The README's CLI pictures (`frontend-cli/docs/pictures/`) are what the commands draw
//! today: this test regenerates them and fails when the committed copies differ
//! (`GRADSTEP_BLESS=1 cargo test -p gradstep-cli --test readme` rewrites them).

mod common;

use std::path::Path;

use common::gradstep;

/// (command, file it writes, name in docs/pictures).
const PICTURES: &[(&[&str], &str, &str)] = &[
    (&["demo"], "demo.svg", "demo.svg"),
    (&["schedules"], "schedules.svg", "schedules.svg"),
    (
        &[
            "compare",
            "--function",
            "beale",
            "--rule",
            "sgd:lr=0.001,momentum=0.9",
            "--rule",
            "adam:lr=0.1",
            "--rule",
            "rmsprop:lr=0.01",
            "--rule",
            "adagrad:lr=0.5",
            "--rule",
            "rprop",
        ],
        "compare-trajectories.svg",
        "compare-beale.svg",
    ),
    (
        &[
            "train",
            "--model",
            "mlp",
            "--epochs",
            "15",
            "--schedule",
            "onecycle",
        ],
        "train-loss.svg",
        "train-digits.svg",
    ),
    (
        &[
            "sweep",
            "--rules",
            "sgd,adam,rmsprop,adagrad",
            "--rule",
            "sgd:momentum=0.9",
        ],
        "sweep-heatmap.svg",
        "sweep-rosenbrock.svg",
    ),
];

#[test]
fn the_readme_pictures_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/pictures");
    let bless = std::env::var_os("GRADSTEP_BLESS").is_some();
    let mut stale = Vec::new();
    for (args, written, name) in PICTURES {
        let out = dir.path().join(name);
        let o = gradstep()
            .args(*args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
        let fresh = std::fs::read(out.join(written)).unwrap();
        let target = docs.join(name);
        if bless {
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(&target, &fresh).unwrap();
        } else if std::fs::read(&target).ok().as_deref() != Some(&fresh[..]) {
            stale.push(*name);
        }
    }
    assert!(
        stale.is_empty(),
        "frontend-cli/docs/pictures/{{{}}} are stale; regenerate them with \
         `GRADSTEP_BLESS=1 cargo test -p gradstep-cli --release --test readme`",
        stale.join(",")
    );
}
