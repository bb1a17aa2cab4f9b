//! The committed `include/gradstep.h` must be exactly what this test generates from
//! the current source; `GRADSTEP_BLESS=1` rewrites it instead of comparing.
//!
//! cbindgen writes the declarations (types, constants, functions and their doc
//! comments, Doxygen style); this file arranges them for a C reader: grouped into
//! sections by the source module that declares them, in the order a user meets them,
//! with rustdoc's link syntax turned into code spans, and with what only the rule
//! registry knows (each rule's state slices, the typed default getters) generated
//! from it, so that a new rule needs no edit here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};

use kernels::rules::{AnyRule, RuleId, Value};

/// The header's sections, in order: title and what a reader should know first.
const SECTIONS: &[(&str, &str)] = &[
    (
        "Status, errors, version, element types",
        "Every function that can fail returns a gradstep_status; GRADSTEP_OK is 0, and a\n \
         * refusal writes nothing the caller passed. gradstep_last_error() gives the\n \
         * refusal's message with its numbers.",
    ),
    (
        "Rules: kinds, hyperparameters, defaults",
        "A gradstep_rule is a kind (GRADSTEP_RULE_*) and a union of per-rule\n \
         * hyperparameter structs. Fill one with gradstep_rule_default() (torch's\n \
         * defaults) or gradstep_rule_parse(\"adam:lr=3e-4,amsgrad\"), then change fields.",
    ),
    (
        "Stepping over caller-owned buffers",
        "One step of a rule over params, grads and a flat state buffer the caller owns:\n \
         * the rule's state slices (see each rule's struct for their order), each n\n \
         * elements long, one after another. Any memory works; gradstep_buffer_new_f32()\n \
         * gives memory placed for speed (page-aligned, huge pages from 2 MiB).",
    ),
    (
        "Checkpoints of caller-owned state",
        "A rule, its scalar state, its state buffer and optionally the params, in a\n \
         * versioned, checksummed byte format (the Rust crate's and the CLI's).",
    ),
    (
        "The optimizer handle",
        "An optimizer that owns its state: register tensors (params and grads the caller\n \
         * keeps), then step them all at once; groups, learning rates, attached schedules\n \
         * and checkpoints of the whole optimizer.",
    ),
    (
        "Learning-rate schedules",
        "torch.optim.lr_scheduler's schedules as data (gradstep_schedule_config) and as\n \
         * handles that drive group learning rates.",
    ),
    (
        "Clipping, loss scaling, gradient accumulation",
        "torch's clip_grad_norm_ / clip_grad_value_, a non-finite check, GradScaler's\n \
         * dynamic loss scaling, and gradient accumulation over micro-batches.",
    ),
];

/// Items of rules.rs that belong to "Stepping", and of any module that belong to the
/// first section.
const STEPPING: &[&str] = &[
    "gradstep_scalars",
    "gradstep_rule_state_len",
    "gradstep_rule_step_f32",
    "gradstep_rule_step_f64",
    "gradstep_rule_step_scratch_f32",
    "gradstep_rule_step_scratch_f64",
];
const BASICS: &[&str] = &["gradstep_element", "gradstep_element_type"];

/// The section of an item, from the module that declares it.
fn section(name: &str, module: &str) -> usize {
    if BASICS.contains(&name) {
        return 0;
    }
    match module {
        "lib" | "status" => 0,
        "rules" if STEPPING.contains(&name) => 2,
        "buffers" => 2,
        "rules" => 1,
        "checkpoint" => 3,
        "optimizer" => 4,
        "schedules" => 5,
        "training" => 6,
        _ => panic!(
            "{name} is declared in src/{module}.rs, which has no section in \
             frontend-ffi/tests/header.rs: add it to `section`"
        ),
    }
}

/// Which source module declares each public item (by a plain scan of the sources).
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let words: Vec<&str> = line
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            if words.first() != Some(&"pub") {
                continue;
            }
            let kinds = ["fn", "struct", "union", "enum", "type", "const"];
            if let Some(k) = words.iter().position(|w| kinds.contains(w))
                && let Some(name) = words.get(k + 1)
            {
                out.insert((*name).to_owned(), module.clone());
            }
        }
    }
    out
}

/// The name an item of cbindgen's output declares.
fn declared(block: &str) -> Option<String> {
    let code: Vec<&str> = block
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("/*") || t.starts_with("*") || t.starts_with("//"))
        })
        .collect();
    let first = code.first()?;
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let after = |s: &str, key: &str| s.find(key).map(|i| ident(s[i + key.len()..].trim_start()));
    if let Some(rest) = first.strip_prefix("#define ") {
        return Some(ident(rest));
    }
    if first.starts_with("enum ") {
        return after(first, "enum ");
    }
    if first.starts_with("typedef") {
        if let Some(name) = after(first, "(*") {
            return Some(name);
        }
        if first.ends_with('{') {
            return after(first, "struct ").or_else(|| after(first, "union "));
        }
        let body = first.trim_end_matches(';');
        return body.rsplit(' ').next().map(ident);
    }
    // A function: the identifier right before the first parenthesis.
    let open = first.find('(')?;
    first[..open].rsplit([' ', '*']).next().map(ident)
}

/// rustdoc's syntax as a C reader should see it: `[`x`]` links become code spans,
/// headings become Doxygen paragraphs, and cbindgen's `//` after `#endif` a C89
/// comment.
fn for_c(block: &str) -> String {
    let mut out = String::new();
    for line in block.lines() {
        let mut l = line.replace("[`", "`").replace("`]", "`");
        if let Some(i) = l.find("* # ") {
            l = format!("{}* @par {}", &l[..i], &l[i + 4..]);
        }
        if let Some(i) = l.find("#endif //") {
            l = format!("{}#endif /* {} */", &l[..i], l[i + 9..].trim());
        }
        out.push_str(&l);
        out.push('\n');
    }
    // C89 and C++98 refuse a comma after an enum's last value.
    out.replace(",\n};", "\n};")
}

/// Each rule's state slices, in order, from the registry: the default rule's, what a
/// flag or a non-zero value of a field that defaults to 0 changes, and what all of
/// those do together when more than one does.
fn state_order(id: RuleId) -> String {
    let base = id.default_rule();
    let list = |r: &AnyRule| {
        if r.slot_names().is_empty() {
            "none".to_owned()
        } else {
            r.slot_names().join(", ")
        }
    };
    let mut text = list(&base);
    let (mut all, mut changed) = (base, Vec::new());
    for field in id.fields() {
        let (value, what) = match base.get(field.name) {
            Some(Value::Flag(b)) => (
                Value::Flag(!b),
                format!("{} = {}", field.name, u8::from(!b)),
            ),
            Some(Value::Number(0.0)) => (Value::Number(0.5), format!("{} != 0", field.name)),
            _ => continue,
        };
        let mut one = base;
        one.set(field.name, value).unwrap();
        if one.slot_names() != base.slot_names() {
            write!(text, "; with {what}: {}", list(&one)).unwrap();
            all.set(field.name, value).unwrap();
            changed.push(what);
        }
    }
    if changed.len() > 1 {
        write!(text, "; with {}: {}", changed.join(" and "), list(&all)).unwrap();
    }
    text
}

/// Adds the state order to the doc comment of each rule's struct.
fn with_state_order(block: &str, name: &str) -> String {
    let Some(id) = RuleId::ALL
        .iter()
        .find(|id| name == format!("gradstep_{}", id.name()))
    else {
        return block.to_owned();
    };
    let line = format!(
        " *\n * State slices, in this order, each n elements (gradstep_rule_state_len):\n \
         * {}.\n */",
        state_order(*id)
    );
    block.replacen("\n */", &format!("\n{line}"), 1)
}

/// The typed `gradstep_R_default()`s, one per registry row, as static inline functions
/// over `gradstep_rule_default` (so they cost no exported symbol): a new rule gets its
/// own without anyone writing it, and it only compiles if the rule has its
/// `GRADSTEP_RULE_*` constant, its struct and its union member.
fn typed_defaults() -> String {
    let mut out = String::from(
        "/**\n * torch's defaults for each rule's hyperparameter struct: the member of\n \
         * gradstep_rule_default()'s result for its kind (generated from the rule registry).\n \
         */\n",
    );
    for id in RuleId::ALL {
        let name = id.name();
        let upper = name.to_uppercase();
        writeln!(
            out,
            "GRADSTEP_INLINE gradstep_{name} gradstep_{name}_default(void) {{\n    \
             gradstep_rule r;\n    \
             memset(&r, 0, sizeof r);\n    \
             (void)gradstep_rule_default(GRADSTEP_RULE_{upper}, &r);\n    \
             return r.params.{name};\n}}"
        )
        .unwrap();
    }
    out
}

fn generate() -> String {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let mut config =
        cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml")).expect("cbindgen.toml");
    // The frame (guard, includes, extern "C") is written below, around the sections.
    config.header = None;
    config.include_guard = None;
    config.sys_includes.clear();
    config.no_includes = true;
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed");
    let mut raw = Vec::new();
    bindings.write(&mut raw);
    // cbindgen tests `__STDC_VERSION__` unguarded, which C89 does not define: a warning
    // under `-Wundef`.
    let raw = String::from_utf8(raw).expect("header is UTF-8").replace(
        "__STDC_VERSION__ >= 202311L",
        "(defined(__STDC_VERSION__) && __STDC_VERSION__ >= 202311L)",
    );

    let modules = modules(&PathBuf::from(crate_dir).join("src"));
    let mut sections: Vec<Vec<String>> = vec![Vec::new(); SECTIONS.len()];
    for block in raw.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        if block.contains("extern \"C\"") {
            continue;
        }
        let name = declared(block).unwrap_or_else(|| panic!("no name in:\n{block}"));
        let module = modules
            .get(&name)
            .unwrap_or_else(|| panic!("{name} is in no source file"));
        let block = with_state_order(&for_c(block), &name);
        sections[section(&name, module)].push(block);
    }

    let mut out = String::from(
        "/*\n * gradstep.h: the C interface of gradstep, optimizer update rules for C and C++.\n \
         *\n * GENERATED by cbindgen from frontend-ffi/src (arranged by\n \
         * frontend-ffi/tests/header.rs): do not edit. Regenerate with\n \
         *   GRADSTEP_BLESS=1 cargo test -p gradstep-ffi --test header\n \
         *\n * Valid C89 (with <stdint.h>), C99, C11 and later, and C++11 and later. Sections:\n",
    );
    for (k, (title, _)) in SECTIONS.iter().enumerate() {
        writeln!(out, " *   {}. {title}", k + 1).unwrap();
    }
    write!(
        out,
        " */\n\n#ifndef GRADSTEP_H\n#define GRADSTEP_H\n\n\
         #include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n\
         #define GRADSTEP_VERSION_MAJOR {}\n#define GRADSTEP_VERSION_MINOR {}\n\
         #define GRADSTEP_VERSION_PATCH {}\n#define GRADSTEP_VERSION_STRING \"{}\"\n\n\
         /* static inline where the language has it. */\n\
         #if defined(__cplusplus) || (defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L)\n\
         #define GRADSTEP_INLINE static inline\n\
         #elif defined(__GNUC__)\n#define GRADSTEP_INLINE static __inline__\n\
         #else\n#define GRADSTEP_INLINE static\n#endif\n\n\
         #ifdef __cplusplus\nextern \"C\" {{\n#endif\n",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    )
    .unwrap();
    // Structs used (through pointers) before the section that defines them.
    let mut defined = BTreeSet::new();
    let mut early = BTreeSet::new();
    for blocks in &sections {
        for block in blocks {
            if let Some(name) = declared(block) {
                defined.insert(name);
            }
            for word in ["struct ", "union "] {
                for (i, _) in block.match_indices(word) {
                    let rest = &block[i + word.len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if name.starts_with("gradstep_") && !defined.contains(&name) {
                        early.insert(format!("{word}{name};"));
                    }
                }
            }
        }
    }
    if !early.is_empty() {
        out.push_str("\n/* Declared here, defined in their own section below. */\n");
        for decl in &early {
            writeln!(out, "{decl}").unwrap();
        }
    }
    for (k, ((title, intro), blocks)) in SECTIONS.iter().zip(&sections).enumerate() {
        write!(
            out,
            "\n/* {} */\n/*\n * {}. {title}\n *\n * {intro}\n */\n/* {} */\n",
            "=".repeat(84),
            k + 1,
            "=".repeat(84)
        )
        .unwrap();
        for block in blocks {
            write!(out, "\n{block}").unwrap();
        }
        if k == 1 {
            write!(out, "\n{}", typed_defaults()).unwrap();
        }
    }
    out.push_str("\n#ifdef __cplusplus\n} /* extern \"C\" */\n#endif\n\n#endif /* GRADSTEP_H */\n");
    out
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
