//! The committed `include/gradstep.h` must be exactly what cbindgen generates from the
//! current source; `GRADSTEP_BLESS=1` rewrites it instead of comparing.

use std::fmt::Write;
use std::path::PathBuf;

use kernels::rules::RuleId;

/// The typed `gradstep_R_default()`s, one per registry row, as static inline functions
/// over `gradstep_rule_default` (so they cost no exported symbol): a new rule gets its
/// own without anyone writing it, and it only compiles if the rule has its
/// `GRADSTEP_RULE_*` constant, its struct and its union member.
fn typed_defaults() -> String {
    // cbindgen writes the trailer after the include guard: it has its own.
    let mut out = String::from(
        "\n#ifndef GRADSTEP_TYPED_DEFAULTS\n#define GRADSTEP_TYPED_DEFAULTS\n\n\
         /* torch's defaults for each rule's hyperparameter struct (generated from the\n \
         * rule registry; each is gradstep_rule_default's member for its kind). */\n",
    );
    for id in RuleId::ALL {
        let name = id.name();
        let upper = name.to_uppercase();
        writeln!(
            out,
            "static inline gradstep_{name} gradstep_{name}_default(void) {{\n    \
             gradstep_rule r;\n    \
             memset(&r, 0, sizeof r);\n    \
             (void)gradstep_rule_default(GRADSTEP_RULE_{upper}, &r);\n    \
             return r.params.{name};\n}}"
        )
        .unwrap();
    }
    out.push_str("\n#endif /* GRADSTEP_TYPED_DEFAULTS */");
    out
}

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
    config.trailer = Some(typed_defaults());
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

/// Every registry row has its kind constant in the header, equal to its id.
#[test]
fn header_has_every_rule_kind() {
    let header = generate();
    for &id in RuleId::ALL {
        let define = format!(
            "#define GRADSTEP_RULE_{} {}\n",
            id.name().to_uppercase(),
            id as u16
        );
        assert!(
            header.contains(&define),
            "the header lacks `{}`",
            define.trim()
        );
        assert!(header.contains(&format!("gradstep_{} {};", id.name(), id.name())));
    }
}
