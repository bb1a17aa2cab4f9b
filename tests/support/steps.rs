//! The per-step recordings of `torch.optim` (`tests/fixtures/torch/steps.{json,bin}`, written
//! by `tests/fixtures/torch/record_steps.py`, whose docstring describes the grid and the
//! format): torch's full state at sampled steps, recorded with three sets of CPU kernels,
//! and the gradient generator the recording used, which the tests reproduce bit for bit.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The index, `steps.json`, and the values, `steps.bin`.
pub struct StepFixture {
    /// The index.
    pub index: Index,
    blob: Vec<u8>,
}

/// `steps.json`.
#[derive(Debug, Deserialize)]
pub struct Index {
    /// The script that wrote the files.
    pub generator: String,
    /// `torch.__version__` at recording time.
    pub torch_version: String,
    /// `numpy.__version__` at recording time.
    pub numpy_version: String,
    /// Kernel set name (`simd`, `scalar`, `scalar_crsqrt`) → the ATen CPU capability it ran.
    pub kernels: BTreeMap<String, String>,
    /// The length of `steps.bin`.
    pub blob_len: usize,
    /// The recorded runs.
    pub cases: Vec<StepCase>,
}

/// How a case's gradients (and initial params) are generated: see [`values`].
#[derive(Clone, Debug, Deserialize)]
pub struct GradSpec {
    /// `uniform`, `mixed` or `drift`.
    pub kind: String,
    /// The scale of `uniform` and `drift` gradients.
    pub scale: f64,
    /// The case's seed.
    pub seed: u64,
}

/// One recorded run.
#[derive(Clone, Debug, Deserialize)]
pub struct StepCase {
    /// Unique, descriptive name (rule, label, dtype).
    pub name: String,
    /// The registry's rule name.
    pub rule: String,
    /// `"f32"` or `"f64"`.
    pub dtype: String,
    /// Every hyperparameter of the rule, under gradstep's field names.
    pub hyper: BTreeMap<String, serde_json::Value>,
    /// Length of the params.
    pub n: usize,
    /// Steps in the run.
    pub steps: u64,
    /// The gradient generator's parameters.
    pub grads: GradSpec,
    /// CRC-32 (zlib's) of every gradient of the run in its dtype, little endian.
    pub grads_crc32: u32,
    /// torch's state tensor names, in the order stored.
    pub slots: Vec<String>,
    /// torch's 0-dim state names, in the order stored.
    pub scalars: Vec<String>,
    /// The steps whose state is stored (0: the initial params only), ascending.
    pub recorded: Vec<u64>,
    /// Kernel set → offset of the case's values in `steps.bin`.
    pub offsets: BTreeMap<String, usize>,
}

/// torch's state after one step (or the initial params, at step 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The step the state is after.
    pub step: u64,
    /// The params (f32 values widened exactly).
    pub params: Vec<f64>,
    /// Each state tensor, in [`StepCase::slots`] order (none at step 0).
    pub slots: Vec<Vec<f64>>,
    /// Each 0-dim state value, in [`StepCase::scalars`] order (none at step 0).
    pub scalars: Vec<f64>,
}

impl StepFixture {
    /// Loads both files from `tests/fixtures/torch/`.
    pub fn load() -> StepFixture {
        let dir = crate::fixtures::dir();
        let text = std::fs::read_to_string(dir.join("steps.json")).expect("reading steps.json");
        let index: Index = serde_json::from_str(&text).expect("parsing steps.json");
        let blob = std::fs::read(dir.join("steps.bin")).expect("reading steps.bin");
        assert_eq!(blob.len(), index.blob_len, "steps.bin length");
        StepFixture { index, blob }
    }

    /// The stored snapshots of `case` recorded with kernel set `kernel`. Panics if the
    /// data does not end exactly where the next case's begins.
    pub fn snapshots(&self, case: &StepCase, kernel: &str) -> Vec<Snapshot> {
        let mut at = *case
            .offsets
            .get(kernel)
            .unwrap_or_else(|| panic!("{}: no {kernel} recording", case.name));
        let width = match case.dtype.as_str() {
            "f32" => 4,
            "f64" => 8,
            other => panic!("unknown dtype {other}"),
        };
        let mut read = |count: usize, width: usize| -> Vec<f64> {
            let bytes = &self.blob[at..at + count * width];
            at += count * width;
            bytes
                .chunks_exact(width)
                .map(|b| match width {
                    4 => f32::from_le_bytes(b.try_into().unwrap()) as f64,
                    _ => f64::from_le_bytes(b.try_into().unwrap()),
                })
                .collect()
        };
        let out: Vec<Snapshot> = case
            .recorded
            .iter()
            .map(|&step| {
                let params = read(case.n, width);
                let (slots, scalars) = if step == 0 {
                    (Vec::new(), Vec::new())
                } else {
                    let slots = case.slots.iter().map(|_| read(case.n, width)).collect();
                    (slots, read(case.scalars.len(), 8))
                };
                Snapshot {
                    step,
                    params,
                    slots,
                    scalars,
                }
            })
            .collect();
        let end = self
            .index
            .cases
            .iter()
            .flat_map(|c| c.offsets.values())
            .copied()
            .filter(|&o| o > case.offsets[kernel])
            .min()
            .unwrap_or(self.blob.len());
        assert_eq!(at, end, "{} ({kernel}): data length", case.name);
        out
    }
}

/// SplitMix64's finalizer (wrapping), as the recording script's `splitmix`.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash(seed: u64, stream: u64, step: u64, i: u64) -> u64 {
    let base = splitmix(splitmix(seed ^ (stream << 32)).wrapping_add(step));
    splitmix(base.wrapping_add(i))
}

/// An exact `f64` in [-1, 1) from the top 53 bits.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * 2f64.powi(-52) - 1.0
}

/// The recording's `values`: step `step`'s gradient (`step ≥ 1`) or the initial params
/// (`step` 0), in `f64`; cast to the case's dtype (round to nearest) before use.
pub fn values(spec: &GradSpec, step: u64, n: usize) -> Vec<f64> {
    const MAGNITUDES: [f64; 11] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4];
    (0..n as u64)
        .map(|i| {
            let u = unit(hash(spec.seed, 1, step, i));
            if step == 0 {
                return u;
            }
            let h2 = hash(spec.seed, 2, step, i);
            let g = match spec.kind.as_str() {
                "uniform" => u * spec.scale,
                "mixed" => u * MAGNITUDES[((h2 >> 8) % MAGNITUDES.len() as u64) as usize],
                "drift" => (unit(hash(spec.seed, 3, 0, i)) + 0.25 * u) * spec.scale,
                other => panic!("unknown gradient kind {other}"),
            };
            if h2.is_multiple_of(16) { 0.0 } else { g }
        })
        .collect()
}

/// zlib's CRC-32, continued from `crc` over `bytes`.
pub fn crc32(mut crc: u32, bytes: &[u8]) -> u32 {
    crc = !crc;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// An element type's view of its bits, for distances in ulps.
pub trait Bits: Copy {
    /// The value's position on the line of all values of its type, in ulps (±0 both at
    /// 0): the difference of two positions is their distance in ulps.
    fn position(self) -> i64;
    /// The spacing of the type at `|x|` (the smallest subnormal at 0).
    fn ulp(x: f64) -> f64;
}

impl Bits for f32 {
    fn position(self) -> i64 {
        let b = self.to_bits() as i32 as i64;
        if b < 0 { -(b & 0x7fff_ffff) } else { b }
    }
    fn ulp(x: f64) -> f64 {
        let x = (x.abs() as f32).max(f32::MIN_POSITIVE);
        let e = (x.to_bits() >> 23) as i32 - 127;
        2f64.powi(e - 23)
    }
}

impl Bits for f64 {
    fn position(self) -> i64 {
        let b = self.to_bits() as i64;
        if b < 0 {
            -(b & 0x7fff_ffff_ffff_ffff)
        } else {
            b
        }
    }
    fn ulp(x: f64) -> f64 {
        let x = x.abs().max(f64::MIN_POSITIVE);
        let e = (x.to_bits() >> 52) as i32 - 1023;
        2f64.powi(e - 52)
    }
}
