//! `compare --animate`: a self-contained page whose frames advance, checked in headless
//! Chromium (Debian's `chromium`, which scripts/test.sh installs). Without a browser
//! the test says so and passes, unless GRADSTEP_REQUIRE_CHROMIUM is set (as the test
//! command sets it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::run_ok;

/// The browser: $GRADSTEP_CHROMIUM, or /usr/bin/chromium.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("GRADSTEP_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    path.exists().then_some(path)
}

/// The page's DOM after `ms` milliseconds of virtual time (timers run, no waiting).
fn dom_after(browser: &Path, page: &Path, ms: u32) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={ms}"))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The frame number and the step counter's text in a dumped DOM.
fn frame_of(dom: &str) -> (usize, String) {
    let frame = dom
        .split("data-frame=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("no data-frame in the DOM"));
    let counter = dom
        .split("id=\"counter\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();
    (frame, counter)
}

#[test]
fn the_animation_is_self_contained_and_its_frames_advance() {
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = run_ok(
        "compare",
        dir.path(),
        "a",
        &[
            "--function",
            "beale",
            "--rule",
            "adam:lr=0.1",
            "--rule",
            "rmsprop:lr=0.01",
            "--animate",
        ],
    );
    assert!(text.contains("compare-animation.html"), "{text}");
    let page = out.join("compare-animation.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Nothing to fetch: the only URL is the SVG namespace's name.
    let urls: Vec<&str> = html
        .match_indices("http")
        .map(|(i, _)| &html[i..(i + 30).min(html.len())])
        .filter(|u| !u.starts_with("http://www.w3.org/2000/svg"))
        .collect();
    assert!(urls.is_empty(), "{urls:?}");
    assert!(
        !html.contains(" src=") && !html.contains("<link"),
        "external resources"
    );
    // One path per run, 241 frames (every 5th of 1000 steps, and the last).
    assert_eq!(html.matches("\"colour\":").count(), 2);

    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("GRADSTEP_REQUIRE_CHROMIUM").is_none(),
            "no chromium at /usr/bin/chromium or $GRADSTEP_CHROMIUM"
        );
        eprintln!("skipped the browser check: no chromium (apt-get install chromium)");
        return;
    };
    let (early, early_text) = frame_of(&dom_after(&browser, &page, 300));
    let (late, late_text) = frame_of(&dom_after(&browser, &page, 3000));
    // 50 ms a frame: about frame 6, then about frame 60 (how much of the budget the
    // page's loading takes varies), each frame 5 steps on.
    assert!(early >= 1, "{early}");
    assert!(late >= early + 20, "{early} then {late}");
    assert_eq!(early_text, format!("step {} of 1000", early * 5));
    assert_eq!(late_text, format!("step {} of 1000", late * 5));
}
