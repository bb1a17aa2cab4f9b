//! The PyTorch trajectory fixtures, as written by `tests/fixtures/torch/record.py`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// One fixture file: every recorded case of one rule.
#[derive(Debug, Deserialize)]
pub struct RuleFixture {
    /// The script that wrote the file.
    pub generator: String,
    /// `torch.__version__` at recording time (empty for a reference without torch).
    #[serde(default)]
    pub torch_version: String,
    /// For a reference outside torch.optim, its package and version
    /// (`"pytorch_optimizer 4.1.0"`, `"optax 0.2.8, jax 0.10.2"`); empty for torch's.
    #[serde(default)]
    pub reference_version: String,
    /// The same, as a map from package to version (`{"keras": "3.15.1", ...}`).
    #[serde(default)]
    pub reference_versions: BTreeMap<String, String>,
    /// The rule's name (file stem).
    pub rule: String,
    /// torch's constructor defaults, under gradstep's field names.
    pub defaults: BTreeMap<String, serde_json::Value>,
    /// The recorded runs.
    pub cases: Vec<Case>,
}

/// One recorded run: a configuration, its gradients and the params after each step.
#[derive(Clone, Debug, Deserialize)]
pub struct Case {
    /// Unique, descriptive name.
    pub name: String,
    /// `"f32"` or `"f64"`.
    pub dtype: String,
    /// Every hyperparameter of the rule, under gradstep's field names.
    pub hyper: BTreeMap<String, serde_json::Value>,
    /// Params before the first step.
    pub params0: Vec<f64>,
    /// The gradient fed at each step.
    pub grads: Vec<Vec<f64>>,
    /// The params after each step.
    pub params: Vec<Vec<f64>>,
    /// The state tensors after the last step, under torch's names.
    pub state: BTreeMap<String, Vec<f64>>,
    /// The scalar state after the last step (`step`, `mu_product`, `eta`, `mu`).
    pub scalars: BTreeMap<String, f64>,
}

/// Directory of the recorded fixtures.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch")
}

/// Directory of a rule's recorded fixtures: `tests/fixtures/<package>/`, the package of
/// its reference implementation ([`RuleId::reference_package`](gradstep::rules::RuleId::reference_package)).
pub fn dir_for(id: gradstep::rules::RuleId) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(id.reference_package())
}

/// Loads a rule's fixture, `tests/fixtures/<package>/<rule>.json`.
pub fn load_for(id: gradstep::rules::RuleId) -> RuleFixture {
    let path = dir_for(id).join(format!("{}.json", id.name()));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Loads `tests/fixtures/torch/<rule>.json`.
pub fn load(rule: &str) -> RuleFixture {
    let path = dir().join(format!("{rule}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Typed access to a hyperparameter map that insists every key is used exactly once,
/// so that a field the Rust side forgets to map cannot pass unnoticed.
pub struct Hyper<'a> {
    map: &'a BTreeMap<String, serde_json::Value>,
    used: std::cell::RefCell<Vec<String>>,
}

impl<'a> Hyper<'a> {
    /// Wraps a `hyper` or `defaults` map.
    pub fn new(map: &'a BTreeMap<String, serde_json::Value>) -> Self {
        Hyper {
            map,
            used: Default::default(),
        }
    }

    fn get(&self, name: &str) -> &serde_json::Value {
        self.used.borrow_mut().push(name.to_owned());
        self.map
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no hyperparameter {name}"))
    }

    /// A numeric hyperparameter.
    pub fn f(&self, name: &str) -> f64 {
        self.get(name)
            .as_f64()
            .unwrap_or_else(|| panic!("{name} is not a number"))
    }

    /// A boolean hyperparameter.
    pub fn b(&self, name: &str) -> bool {
        self.get(name)
            .as_bool()
            .unwrap_or_else(|| panic!("{name} is not a boolean"))
    }

    /// A choice hyperparameter (its value's name).
    pub fn s(&self, name: &str) -> &'a str {
        self.used.borrow_mut().push(name.to_owned());
        self.map
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no hyperparameter {name}"))
            .as_str()
            .unwrap_or_else(|| panic!("{name} is not a string"))
    }

    /// Panics unless every key of the map was read.
    pub fn finish(self) {
        let used = self.used.into_inner();
        let unused: Vec<_> = self.map.keys().filter(|k| !used.contains(k)).collect();
        assert!(
            unused.is_empty(),
            "fixture hyperparameters not mapped: {unused:?}"
        );
    }
}
