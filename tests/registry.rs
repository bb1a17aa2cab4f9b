//! Completeness of the rule registry (`gradstep::for_each_rule!`, `RuleId::ALL`): every
//! registered rule has its torch fixture in both element types, its tolerance rows, a
//! CLI name and a benchmark entry; the test suites expand from the registry instead of
//! listing rules; and no source file outside the few listed below names a rule.
//!
//! What does not need a test here because it does not compile without it: a property-test
//! subject (`kernels/tests/subjects`), a checkpoint round trip (`kernels/tests/checkpoint.rs`)
//! and a torch replay (`tests/torch_trajectories.rs`) for every row, since those files
//! expand from `for_each_rule!` and need a per-rule impl. The C test cases are checked by
//! the C ABI's own tests (`frontend-ffi/tests`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gradstep::rules::{AnyRule, RuleId, Value};
use gradstep_tests::{bench, fixtures, tolerance};

/// The repository's root (this package's manifest directory).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_rule_has_a_torch_fixture_in_f32_and_f64() {
    let mut missing = Vec::new();
    for &id in RuleId::ALL {
        let name = id.name();
        let path = fixtures::dir_for(id).join(format!("{name}.json"));
        if !path.is_file() {
            missing.push(format!("{name}: no {}", path.display()));
            continue;
        }
        let fixture = fixtures::load_for(id);
        assert_eq!(fixture.rule, name, "{}", path.display());
        for dtype in ["f32", "f64"] {
            let cases = fixture.cases.iter().filter(|c| c.dtype == dtype).count();
            if cases == 0 {
                missing.push(format!("{name}: no {dtype} case in {}", path.display()));
            }
        }
        // The recording's constructor arguments are the registry's fields, by the same
        // names, with the same defaults.
        let recorded: BTreeSet<&str> = fixture.defaults.keys().map(String::as_str).collect();
        let registered: BTreeSet<&str> = id.fields().iter().map(|f| f.name).collect();
        assert_eq!(
            recorded, registered,
            "{name}: fixture defaults vs registry fields"
        );
        let rule = id.default_rule();
        for (field, value) in &fixture.defaults {
            let torch = match value {
                serde_json::Value::Bool(b) => Value::Flag(*b),
                // A choice: its value's name.
                serde_json::Value::String(s) => {
                    assert_eq!(
                        rule.get(field).map(|v| v.to_string()),
                        Some(s.clone()),
                        "{name}.{field}: default"
                    );
                    continue;
                }
                other => Value::Number(other.as_f64().expect("a number or a flag")),
            };
            assert_eq!(rule.get(field), Some(torch), "{name}.{field}: default");
        }
    }
    assert!(
        missing.is_empty(),
        "missing fixtures:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_rule_has_tolerance_rows() {
    let missing: Vec<String> = RuleId::ALL
        .iter()
        .flat_map(|id| ["f32", "f64"].map(|dtype| (id.name(), dtype)))
        .filter(|&(name, dtype)| tolerance::row(name, dtype).is_none())
        .map(|(name, dtype)| format!("{name} {dtype}"))
        .collect();
    assert!(
        missing.is_empty(),
        "no row in tests/support/tolerance.rs for: {}",
        missing.join(", ")
    );
    // Per-step recordings are of torch's kernels: rules whose reference is another
    // package are replayed by trajectory (tests/torch_trajectories.rs) only.
    let missing: Vec<String> = RuleId::ALL
        .iter()
        .filter(|id| id.torch_name().is_some())
        .flat_map(|id| ["f32", "f64"].map(|dtype| (id.name(), dtype)))
        .flat_map(|(name, dtype)| tolerance::PER_STEP_KERNELS.map(|k| (name, dtype, k)))
        .filter(|&(name, dtype, k)| tolerance::per_step_row(name, dtype, k).is_none())
        .map(|(name, dtype, k)| format!("{name} {dtype} {k}"))
        .collect();
    assert!(
        missing.is_empty(),
        "no per-step row in tests/support/tolerance.rs for: {}",
        missing.join(", ")
    );
    assert_eq!(tolerance::per_step_row("no_such_rule", "f32", "simd"), None);
    assert_eq!(
        tolerance::per_step_row("sgd", "f32", "no_such_kernels"),
        None
    );
    // The table refuses what it does not know, so the check above can fail.
    assert_eq!(tolerance::row("no_such_rule", "f32"), None);
    assert_eq!(tolerance::row("sgd", "f16"), None);
}

/// The CLI has no rule list of its own: it chooses rules with `AnyRule::named`/`parse`
/// and lists them from `RuleId::ALL` (its own test runs every registered rule by name,
/// `frontend-cli/tests/compare.rs`), and [`no_source_file_names_a_rule_outside_its_places`]
/// finds no rule named in `frontend-cli/src`.
#[test]
fn every_rule_is_chosen_by_its_name_and_parses_back() {
    for &id in RuleId::ALL {
        let rule = AnyRule::named(id.name()).unwrap();
        assert_eq!(rule.id(), id);
        assert_eq!(AnyRule::named(id.reference_class()).unwrap().id(), id);
        let text = rule.to_string();
        assert_eq!(AnyRule::parse(&text), Ok(rule), "{text}");
    }
    let help = read("frontend-cli/src/rules.rs");
    assert!(
        help.contains("for &id in RuleId::ALL"),
        "the CLI's --help lists the rules from the registry"
    );
}

#[test]
fn every_rule_has_a_benchmark_entry() {
    let entries = bench::entries();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (name, _) in &entries {
        *names.entry(name.clone()).or_default() += 1;
    }
    assert!(
        names.values().all(|&n| n == 1),
        "entry names repeat: {names:?}"
    );
    for &id in RuleId::ALL {
        let entry = entries.iter().find(|(name, _)| name == id.name());
        let (_, rule) = entry.unwrap_or_else(|| panic!("{id}: no benchmark entry"));
        assert_eq!(
            *rule,
            id.default_rule(),
            "{id}: benchmarked with torch's defaults"
        );
    }
    assert_eq!(entries.len(), RuleId::ALL.len() + bench::VARIANTS.len());
    // The benchmark runs the entries, and dispatches every registered rule.
    let source = read("benches/rules.rs");
    for used in [
        "gradstep_tests::bench::entries()",
        "gradstep::for_each_rule!(bench_any)",
    ] {
        assert!(
            source.contains(used),
            "benches/rules.rs does not use {used}"
        );
    }
}

/// The test suites expand from the registry (a hand list would let a new rule go
/// untested without a compile error).
#[test]
fn the_test_suites_expand_from_the_registry() {
    for (file, callback) in [
        (
            "kernels/tests/props.rs",
            "gradstep::for_each_rule!(rule_props)",
        ),
        (
            "kernels/tests/checkpoint.rs",
            "gradstep::for_each_rule!(checkpoint_props)",
        ),
        (
            "kernels/tests/checkpoint.rs",
            "gradstep::for_each_rule!(any_of)",
        ),
        (
            "tests/torch_trajectories.rs",
            "gradstep::for_each_rule!(replay_tests)",
        ),
    ] {
        assert!(
            read(file).contains(callback),
            "{file} does not use {callback}"
        );
    }
}

// ---- Where rules are named. ----

/// The source trees walked: every crate's sources and build scripts, the benchmarks and
/// the firmware. Not walked: tests, fixtures, docs and Markdown, examples, and the
/// generated `include/gradstep.h`.
const ROOTS: &[&str] = &[
    "kernels/src",
    "kernels/build.rs",
    "frontend-ffi/src",
    "frontend-ffi/build.rs",
    "frontend-cli/src",
    "optim/src",
    "benches",
    "firmware/src",
    "firmware/build.rs",
    "firmware/flash-store/src",
];

/// The kernel files that name every rule by construction, besides each rule's own file
/// in `kernels/src/rules/` (the file that defines its struct).
const STRUCTURE: &[(&str, &str)] = &[
    (
        "kernels/src/rules/registry.rs",
        "the registry: one row per rule",
    ),
    (
        "kernels/src/lib.rs",
        "re-exports each rule type at the crate root",
    ),
    (
        "kernels/src/rules/mod.rs",
        "declares each rule file as a module (`pub mod adam;`)",
    ),
];

/// Which rules a listed place may name.
#[derive(Clone, Copy, Debug)]
enum Names {
    /// Every rule: adding a rule means editing this place too.
    Every,
    /// These rules only (by their registry names): the place uses them, it does not
    /// enumerate rules.
    Only(&'static [&'static str]),
}

/// The other places that name rules, and why they must. Keep it short: anything that
/// enumerates rules should expand from `for_each_rule!` or iterate `RuleId::ALL`.
const ALLOWED: &[(&str, Names, &str)] = &[
    (
        "frontend-ffi/src/rules.rs",
        Names::Every,
        "the C-visible hyperparameter structs, their `_default()`s and the rule union's \
         members: cbindgen cannot see macro output, so they are written out",
    ),
    (
        "kernels/src/checkpoint.rs",
        Names::Only(&["nadam", "asgd"]),
        "the checkpoint codecs of the two scalar-state kinds beyond the step counter \
         (NAdamScalars, AsgdScalars)",
    ),
    (
        "firmware/src/bin/bench.rs",
        Names::Every,
        "the Cortex-M bench's per-rule configurations (its own no_std workspace)",
    ),
    (
        "firmware/src/train.rs",
        Names::Only(&["sgd", "adam"]),
        "the firmware example trains with SGD with momentum and with Adam",
    ),
    (
        "benches/c/adam.c",
        Names::Only(&["adam"]),
        "the plain C loop the speed targets compare against is f32 Adam's",
    ),
    (
        "frontend-cli/src/tour.rs",
        Names::Only(&["sgd", "adam", "adagrad", "adan"]),
        "the tour runs the rules the seed's claims name (Adam vs AdaGrad, Adan vs Adam vs \
         Nesterov SGD) against each other",
    ),
    (
        "benches/speed.rs",
        Names::Only(&["adam"]),
        "measures every rule from RuleId::ALL, and f32 Adam against the plain C loop",
    ),
];

#[test]
fn no_source_file_names_a_rule_outside_its_places() {
    let rules: Vec<(RuleId, String)> = RuleId::ALL.iter().map(|&id| (id, type_name(id))).collect();
    // Each rule's own file: the one in kernels/src/rules that defines its struct.
    let rule_files = source_files(&root().join("kernels/src/rules"));
    let own_file = |ty: &str| -> String {
        let defined = rule_files.iter().find(|path| {
            let text = std::fs::read_to_string(root().join(path)).unwrap();
            text.contains(&format!("pub struct {ty} {{"))
        });
        defined
            .unwrap_or_else(|| panic!("no file in kernels/src/rules defines struct {ty}"))
            .clone()
    };

    // file → the rules it names.
    let mut found: BTreeMap<String, BTreeSet<RuleId>> = BTreeMap::new();
    let mut walked = 0;
    for r in ROOTS {
        for file in source_files(&root().join(r)) {
            walked += 1;
            let text = std::fs::read_to_string(root().join(&file)).unwrap();
            let named = names_in(&without_test_modules(&code_only(&text)), &rules);
            if !named.is_empty() {
                found.insert(file, named);
            }
        }
    }
    assert!(
        walked > 50,
        "walked only {walked} files: are the roots right?"
    );

    let mut failures = Vec::new();
    println!("places naming each rule (own file + structure + allowed):");
    for (id, ty) in &rules {
        let own = own_file(ty);
        let places: Vec<&String> = found
            .iter()
            .filter(|(_, named)| named.contains(id))
            .map(|(file, _)| file)
            .collect();
        println!("  {:<9} {} places: {places:?}", id.name(), places.len());
        for file in &places {
            let structural = STRUCTURE.iter().any(|(path, _)| path == file);
            let allowed = ALLOWED.iter().any(|(path, names, _)| {
                path == file
                    && match names {
                        Names::Every => true,
                        Names::Only(list) => list.contains(&id.name()),
                    }
            });
            if !(**file == own || structural || allowed) {
                failures.push(format!("{file} names rule {id} ({ty})"));
            }
        }
        // The scan sees what it must: a rule is named at least in its file and its row.
        for must in [own.as_str(), "kernels/src/rules/registry.rs"] {
            assert!(
                places.iter().any(|p| *p == must),
                "{id} ({ty}) not found in {must}: the scan is broken"
            );
        }
    }
    // A listed place that names no rule any more is a stale entry.
    for (path, names, why) in ALLOWED {
        let named = found.get(*path).cloned().unwrap_or_default();
        let stale = match names {
            Names::Every => named.len() != rules.len(),
            Names::Only(list) => list.iter().any(|n| !named.iter().any(|id| id.name() == *n)),
        };
        if stale {
            failures.push(format!(
                "{path} is listed ({names:?}: {why}) but names {:?}: update the list",
                named.iter().map(|id| id.name()).collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "rules named outside their places (expand from gradstep::for_each_rule! or iterate \
         RuleId::ALL instead, or list the place in ALLOWED with the reason):\n{}",
        failures.join("\n")
    );
}

/// The rule's type name (`Adam`, `RmsProp`), from its default's `Debug`.
fn type_name(id: RuleId) -> String {
    let debug = format!("{:?}", id.default_rule());
    // `AnyRule::Debug` is derived: `Adam(Adam { lr: ... })`.
    debug.split('(').next().expect("derived Debug").to_string()
}

/// The `.rs`, `.c`, `.h` and `.cpp` files under `path` (or `path` itself), relative to
/// the root, sorted. A missing path is no file.
fn source_files(path: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for entry in std::fs::read_dir(&p).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if p.is_file()
            && matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("rs" | "c" | "h" | "cpp")
            )
        {
            let relative = p.strip_prefix(root()).unwrap();
            files.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    files.sort();
    files
}

/// The rules that `code` names as identifiers: a token equal to the rule's type, or
/// starting with it and going on in upper case (`NAdamScalars`, unless a longer rule
/// type is the prefix: `AdamW`), or with a `_`-separated part equal to the rule's name
/// in any case (`adam`, `gradstep_adam_step_f32`, `GRADSTEP_RULE_ADAM`), or with a run of
/// such parts equal to a name that has underscores (`gradstep_sc_adagrad`).
fn names_in(code: &str, rules: &[(RuleId, String)]) -> BTreeSet<RuleId> {
    let mut named = BTreeSet::new();
    let tokens = code
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty());
    for token in tokens {
        let parts: Vec<String> = token
            .split('_')
            .filter(|p| !p.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        // The longest rule type that prefixes the token, if it is followed by an upper
        // case letter or nothing.
        let typed = rules
            .iter()
            .filter(|(_, ty)| {
                token
                    .strip_prefix(ty.as_str())
                    .is_some_and(|rest| rest.chars().next().is_none_or(|c| c.is_ascii_uppercase()))
            })
            .max_by_key(|(_, ty)| ty.len());
        if let Some((id, _)) = typed {
            named.insert(*id);
        }
        for (id, _) in rules {
            // A name with underscores (`sc_adagrad`) is a run of consecutive parts.
            let name: Vec<&str> = id.name().split('_').collect();
            if parts
                .windows(name.len())
                .any(|w| w.iter().zip(&name).all(|(a, b)| a == b))
            {
                named.insert(*id);
            }
        }
    }
    named
}

/// `text` with comments, string literals and character literals blanked (Rust and C
/// syntax; lifetimes are kept as code). Line structure is kept.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, skipped: &[char]| {
        out.extend(skipped.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let starts = |s: &str| rest.iter().take(s.len()).copied().eq(s.chars());
        let end = if starts("//") {
            // To the end of the line.
            i + rest.iter().position(|&c| c == '\n').unwrap_or(rest.len())
        } else if starts("/*") {
            // Nested, as Rust's.
            let (mut depth, mut j) = (0usize, i);
            while j < chars.len() {
                if chars[j..].starts_with(&['/', '*']) {
                    depth += 1;
                    j += 2;
                } else if chars[j..].starts_with(&['*', '/']) {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            j
        } else if let Some(len) = raw_string_len(rest).filter(|_| i == 0 || !ident(chars[i - 1])) {
            i + len
        } else if rest[0] == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            j + 1
        } else if rest[0] == '\'' && rest.get(1) == Some(&'\\') {
            // An escaped character literal: '\n', '\'', '\u{..}'.
            i + 2
                + rest[2..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map_or(rest.len() - 2, |k| k + 1)
        } else if rest[0] == '\'' && rest.get(2) == Some(&'\'') {
            i + 3
        } else {
            out.push(rest[0]);
            i += 1;
            continue;
        };
        let end = end.min(chars.len());
        blank(&mut out, &chars[i..end]);
        i = end;
    }
    out
}

/// `code` (comments and literals already blanked) without its `#[cfg(test)] mod … { … }`
/// blocks: unit tests may name whatever rules they test.
fn without_test_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let after = &from["#[cfg(test)]".len()..];
        let item = after.trim_start();
        let is_mod = item
            .strip_prefix("mod ")
            .and_then(|m| {
                m.trim_start()
                    .split_once(|c: char| !(c.is_alphanumeric() || c == '_'))
            })
            .is_some_and(|(_, tail)| tail.trim_start().starts_with('{'));
        if !is_mod {
            out.push_str(&from[.."#[cfg(test)]".len()]);
            rest = after;
            continue;
        }
        // Skip to the brace that closes the module.
        let open = after.find('{').expect("a module body");
        let mut depth = 0usize;
        let mut end = after.len();
        for (k, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let skipped = &from[..("#[cfg(test)]".len() + end)];
        out.extend(skipped.chars().filter(|&c| c == '\n'));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The length of a raw string literal (`r"…"`, `r#"…"#`, `br"…"`) at the start of
/// `rest`, if one starts there.
fn raw_string_len(rest: &[char]) -> Option<usize> {
    let mut k = usize::from(rest.first() == Some(&'b'));
    if rest.get(k) != Some(&'r') {
        return None;
    }
    k += 1;
    let hashes = rest[k..].iter().take_while(|&&c| c == '#').count();
    k += hashes;
    if rest.get(k) != Some(&'"') {
        return None;
    }
    k += 1;
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let at = rest[k..]
        .windows(close.len())
        .position(|w| w == close.as_slice())?;
    Some(k + at + close.len())
}

#[test]
fn the_scan_reads_code_not_comments_or_strings() {
    let rules: Vec<(RuleId, String)> = RuleId::ALL.iter().map(|&id| (id, type_name(id))).collect();
    let names = |code: &str| -> Vec<&'static str> {
        names_in(&code_only(code), &rules)
            .into_iter()
            .map(|id| id.name())
            .collect()
    };
    let names_of = |code: &str| -> Vec<&'static str> {
        names_in(&without_test_modules(&code_only(code)), &rules)
            .into_iter()
            .map(|id| id.name())
            .collect()
    };
    assert_eq!(type_name(RuleId::RmsProp), "RmsProp");
    assert_eq!(names("let r = Adam::default();"), ["adam"]);
    assert_eq!(names("AdamW { lr }"), ["adamw"]);
    assert_eq!(names("use gradstep::NAdamScalars;"), ["nadam"]);
    assert_eq!(names("fn gradstep_adamax_step_f32() {}"), ["adamax"]);
    assert_eq!(names("GRADSTEP_RULE_RMSPROP = 9,"), ["rmsprop"]);
    assert_eq!(names("let sgd = 1; let asgd_eta = 2;"), ["sgd", "asgd"]);
    // Not names: other words that contain a name, comments, strings, char literals.
    assert!(names("let adamant = Adamax2; fn lr<'a>(x: &'a u8) {}").is_empty());
    assert!(names("// Adam\n/* Sgd /* nested */ Rprop */ /// Asgd\n").is_empty());
    assert!(
        names(r###"let s = "adam"; let r = r#"Sgd "x" "#; let c = '"'; let d = '\'';"###)
            .is_empty()
    );
    assert_eq!(names("let c = '\"'; Rprop"), ["rprop"]);
    assert_eq!(names("x(\"a\\\"\", Adagrad)"), ["adagrad"]);
    // Unit test modules are tests; other cfg(test) items are not skipped.
    let code = "#[cfg(test)]\nmod tests {\n    fn f() { Sgd {}; }\n}\nfn g() -> Rprop {}\n";
    assert_eq!(names_of(code), ["rprop"]);
    assert_eq!(names_of("#[cfg(test)]\nuse gradstep::Asgd;\n"), ["asgd"]);
}
