//! The committed `include/gradstep.h` must be exactly what cbindgen generates from the
//! current source; `GRADSTEP_BLESS=1` rewrites it instead of comparing.

use std::path::PathBuf;

fn generate() -> String {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let mut config =
        cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml")).expect("cbindgen.toml");
    // The version macros come from Cargo's version, so they cannot disagree with it.
    config.after_includes = Some(format!(
        "\n#define GRADSTEP_VERSION_MAJOR {}\n#define GRADSTEP_VERSION_MINOR {}\n\
         #define GRADSTEP_VERSION_PATCH {}\n#define GRADSTEP_VERSION_STRING \"{}\"",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    ));
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn committed_header_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../include/gradstep.h");
    let header = generate();
    if std::env::var_os("GRADSTEP_BLESS").is_some() {
        std::fs::write(&path, &header).expect("writing include/gradstep.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == header,
        "include/gradstep.h is stale; regenerate it with \
         `GRADSTEP_BLESS=1 cargo test -p gradstep-ffi --test header`"
    );
}
