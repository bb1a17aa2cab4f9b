//! The clipping and loss-scaling fixtures written by
//! `tests/fixtures/torch/record_clip.py` (`clip.json`, `loss_scale.json`).
//!
//! Non-finite numbers are stored as the strings `"NaN"`, `"Infinity"` and
//! `"-Infinity"`; [`F`] reads either form.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A float that may be stored as a JSON number or as a non-finite string.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct F(pub f64);

impl<'de> Deserialize<'de> for F {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(x) => Ok(F(x)),
            Raw::Str(s) => match s.as_str() {
                "NaN" => Ok(F(f64::NAN)),
                "Infinity" => Ok(F(f64::INFINITY)),
                "-Infinity" => Ok(F(f64::NEG_INFINITY)),
                other => Err(serde::de::Error::custom(format!("not a float: {other}"))),
            },
        }
    }
}

/// Plain `f64`s from a list of [`F`].
pub fn floats(xs: &[F]) -> Vec<f64> {
    xs.iter().map(|x| x.0).collect()
}

/// A norm order: a number, or `"inf"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct P(pub f64);

impl<'de> Deserialize<'de> for P {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(x) => Ok(P(x)),
            Raw::Str(s) if s == "inf" => Ok(P(f64::INFINITY)),
            Raw::Str(s) => Err(serde::de::Error::custom(format!("not a norm type: {s}"))),
        }
    }
}

/// `clip.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipFixture {
    /// The script that wrote the file.
    pub generator: String,
    /// `torch.__version__` at recording time.
    pub torch_version: String,
    /// Which elements of each clipped tensor are stored.
    pub sample: Sample,
    /// `clip_grad_norm_`'s defaults (`norm_type`, `error_if_nonfinite`).
    pub defaults: BTreeMap<String, serde_json::Value>,
    /// The two base vectors (`"f32"`, `"f64"`) gradients are cut from.
    pub bases: BTreeMap<String, Vec<F>>,
    /// `clip_grad_norm_` cases.
    pub norm_cases: Vec<NormCase>,
    /// `clip_grad_value_` cases.
    pub value_cases: Vec<ValueCase>,
}

/// The sampling rule of [`Clipped::samples`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Tensors up to this length are stored whole.
    pub all_up_to: usize,
    /// Otherwise every `stride`-th element from 0 ...
    pub stride: usize,
    /// ... and the last `tail` elements.
    pub tail: usize,
}

impl Sample {
    /// The stored indices of a tensor of length `n`, ascending.
    pub fn indices(&self, n: usize) -> Vec<usize> {
        if n <= self.all_up_to {
            return (0..n).collect();
        }
        let mut v: Vec<usize> = (0..n).step_by(self.stride).collect();
        v.extend(n.saturating_sub(self.tail)..n);
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// How a case's gradients are made from a base vector.
#[derive(Debug, Deserialize)]
pub struct Inputs {
    /// `"f32"` or `"f64"`: the element type and the base vector used.
    pub dtype: String,
    /// Lengths of the consecutive slices cut from the start of the base.
    pub lengths: Vec<usize>,
    /// Every slice is the base times `2^scale_exp` (exact).
    pub scale_exp: i32,
    /// `[slice, index, value]` overwrites applied afterwards.
    pub specials: Vec<(usize, usize, F)>,
}

impl Inputs {
    /// The gradient slices, as `f64` values exactly representable in the case's dtype.
    pub fn grads(&self, bases: &BTreeMap<String, Vec<F>>) -> Vec<Vec<f64>> {
        let base = &bases[&self.dtype];
        let scale = 2f64.powi(self.scale_exp);
        let mut off = 0;
        let mut out: Vec<Vec<f64>> = Vec::new();
        for &n in &self.lengths {
            out.push(base[off..off + n].iter().map(|x| x.0 * scale).collect());
            off += n;
        }
        for &(s, i, v) in &self.specials {
            out[s][i] = v.0;
        }
        out
    }
}

/// One `clip_grad_norm_` case.
#[derive(Debug, Deserialize)]
pub struct NormCase {
    /// Unique, descriptive name.
    pub name: String,
    /// The inputs.
    #[serde(flatten)]
    pub inputs: Inputs,
    /// `norm_type` (∞ for `"inf"`).
    pub norm_type: P,
    /// `max_norm`.
    pub max_norm: f64,
    /// `clip_grad_norm_` called on each tensor alone.
    pub per_slice: bool,
    /// `error_if_nonfinite`.
    pub error_if_nonfinite: bool,
    /// Whether torch raised (the gradients recorded are then the unchanged ones).
    pub error: bool,
    /// `get_total_norm` of the unclipped gradients.
    pub total_norm: F,
    /// `vector_norm` of each unclipped tensor.
    pub slice_norms: Vec<F>,
    /// The clamped coefficient(s): one for global cases, one per tensor otherwise.
    pub coefs: Vec<F>,
    /// The gradients after clipping.
    pub clipped: Vec<Clipped>,
}

/// One `clip_grad_value_` case.
#[derive(Debug, Deserialize)]
pub struct ValueCase {
    /// Unique, descriptive name.
    pub name: String,
    /// The inputs.
    #[serde(flatten)]
    pub inputs: Inputs,
    /// `clip_value`.
    pub clip_value: f64,
    /// The gradients after clipping.
    pub clipped: Vec<Clipped>,
}

/// A clipped tensor as stored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clipped {
    /// The elements at [`Sample::indices`].
    pub samples: Vec<F>,
    /// Exact sum of all elements (NaN/∞ if any is non-finite).
    pub sum: F,
    /// Exact sum of the absolute values.
    pub abs_sum: F,
}

/// `loss_scale.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalerFixture {
    /// The script that wrote the file.
    pub generator: String,
    /// `torch.__version__` at recording time.
    pub torch_version: String,
    /// `torch.amp.GradScaler`'s constructor defaults.
    pub defaults: ScalerConfig,
    /// The recorded sequences.
    pub cases: Vec<ScalerCase>,
}

/// A `GradScaler` configuration.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalerConfig {
    /// `init_scale`.
    pub init_scale: f64,
    /// `growth_factor`.
    pub growth_factor: f64,
    /// `backoff_factor`.
    pub backoff_factor: f64,
    /// `growth_interval`.
    pub growth_interval: u32,
}

/// One `GradScaler` sequence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalerCase {
    /// Unique, descriptive name.
    pub name: String,
    /// Gradient dtype, `"f32"` or `"f64"`.
    pub dtype: String,
    /// The configuration.
    pub config: ScalerConfig,
    /// The scale before the first step.
    pub scale0: f64,
    /// One entry per `unscale_` / `step` / `update` iteration.
    pub steps: Vec<ScalerStep>,
}

/// One iteration of a `GradScaler` sequence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalerStep {
    /// The scaled gradients (two tensors).
    pub grads: Vec<Vec<F>>,
    /// Whether `unscale_` found a non-finite gradient.
    pub found_inf: bool,
    /// The inverse scale `unscale_` multiplied by.
    pub inv_scale: f64,
    /// The gradients after `unscale_`.
    pub unscaled: Vec<Vec<F>>,
    /// The scale after `update`.
    pub scale: f64,
    /// The growth tracker after `update`.
    pub growth_tracker: u32,
}

/// Loads `tests/fixtures/torch/<name>` and parses it.
pub fn load<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = crate::fixtures::dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}
