//! The entries of the rule benchmarks (`benches/rules.rs`): one per registry row, with
//! torch's defaults, and a few variants that take another code path. Kept here, not in
//! the bench, so that the completeness test (`tests/registry.rs`) can check that every
//! registered rule is benchmarked.

use gradstep::rules::{AnyRule, RuleId};

/// Variants benchmarked besides each rule's defaults: `(entry name, rule spec)`.
pub const VARIANTS: &[(&str, &str)] = &[
    ("sgd_momentum", "sgd:lr=1e-2,momentum=0.9"),
    ("sgd_nesterov", "sgd:lr=1e-2,momentum=0.9,nesterov"),
    ("adam_amsgrad", "adam:amsgrad"),
    ("rmsprop_centered_momentum", "rmsprop:centered,momentum=0.9"),
];

/// Every benchmark entry: `(name, rule)`, each registered rule under its own name with
/// torch's defaults (in id order), then the [`VARIANTS`].
pub fn entries() -> Vec<(String, AnyRule)> {
    let defaults = RuleId::ALL
        .iter()
        .map(|id| (id.name().to_string(), id.default_rule()));
    let variants = VARIANTS.iter().map(|&(name, spec)| {
        let rule = AnyRule::parse(spec).unwrap_or_else(|e| panic!("benchmark variant {name}: {e}"));
        (name.to_string(), rule)
    });
    defaults.chain(variants).collect()
}
