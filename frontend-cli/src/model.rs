//! The models `train` fits, with their gradients worked out by hand, in f32: softmax
//! regression and linear regression (one affine layer), and a multilayer perceptron
//! with one hidden layer (ReLU or tanh).
//!
//! Parameters are tensors as torch lays them out for `nn.Linear`: a weight matrix
//! `out × in` (row-major) and a bias per layer, each stepped by the optimizer with its
//! own state.

use crate::rng::{Rng, Stream};

/// The hidden layer's nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// max(0, z).
    Relu,
    /// tanh(z).
    Tanh,
}

impl Activation {
    /// The activation called `name`.
    pub fn parse(name: &str) -> Result<Activation, String> {
        match name {
            "relu" => Ok(Activation::Relu),
            "tanh" => Ok(Activation::Tanh),
            _ => Err(format!(
                "unknown activation '{name}' (activations: relu, tanh)"
            )),
        }
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        }
    }

    fn apply(self, z: f32) -> f32 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::Tanh => z.tanh(),
        }
    }

    /// The derivative at the pre-activation `z`, from the activation `a` = f(z).
    fn derivative(self, z: f32, a: f32) -> f32 {
        match self {
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => 1.0 - a * a,
        }
    }
}

/// What the output layer predicts, and the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// Class probabilities by softmax; mean cross-entropy loss (`nn.CrossEntropyLoss`).
    Softmax,
    /// One value; mean squared error (`nn.MSELoss`).
    Regression,
}

/// A model: an optional hidden layer, then an affine output layer and its head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Model {
    /// Input features.
    pub inputs: usize,
    /// Hidden units and activation; `None` for a single affine layer.
    pub hidden: Option<(usize, Activation)>,
    /// Outputs: the number of classes, or 1 for regression.
    pub outputs: usize,
    /// The head.
    pub head: Head,
}

/// Loss and quality over a set of rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss (cross-entropy, or MSE of the standardized target).
    pub loss: f32,
    /// Accuracy for classification; R² for regression.
    pub metric: f32,
}

/// Working memory for one row's forward and backward pass.
#[derive(Default)]
pub struct Scratch {
    z: Vec<f32>,
    a: Vec<f32>,
    out: Vec<f32>,
    delta: Vec<f32>,
    delta_hidden: Vec<f32>,
}

impl Model {
    /// `in → out`, or `in → hidden → out`, for messages and titles.
    pub fn describe(&self) -> String {
        let kind = match (self.hidden, self.head) {
            (None, Head::Softmax) => "softmax regression".to_string(),
            (None, Head::Regression) => "linear regression".to_string(),
            (Some((_, act)), _) => format!("MLP, {}", act.name()),
        };
        match self.hidden {
            None => format!("{kind} ({} → {})", self.inputs, self.outputs),
            Some((h, _)) => format!("{kind} ({} → {h} → {})", self.inputs, self.outputs),
        }
    }

    /// The lengths of the parameter tensors: weight and bias of each layer.
    pub fn sizes(&self) -> Vec<usize> {
        match self.hidden {
            None => vec![self.outputs * self.inputs, self.outputs],
            Some((h, _)) => vec![h * self.inputs, h, self.outputs * h, self.outputs],
        }
    }

    /// Parameters initialized as torch's `nn.Linear` does: every weight and bias
    /// uniform in ±1/√fan_in, from the seed's initialization stream.
    pub fn init(&self, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = Rng::new(seed, Stream::Init);
        let fan_ins = match self.hidden {
            None => vec![self.inputs, self.inputs],
            Some((h, _)) => vec![self.inputs, self.inputs, h, h],
        };
        self.sizes()
            .iter()
            .zip(fan_ins)
            .map(|(&n, fan_in)| {
                let bound = 1.0 / (fan_in as f32).sqrt();
                (0..n).map(|_| rng.uniform(bound)).collect()
            })
            .collect()
    }

    /// The output layer's outputs for one row, leaving the hidden pre-activations and
    /// activations in `s.z` and `s.a`.
    fn forward(&self, params: &[Vec<f32>], x: &[f32], s: &mut Scratch) {
        let (input, w, b) = match self.hidden {
            None => (x, &params[0], &params[1]),
            Some((h, act)) => {
                affine(&params[0], &params[1], x, h, &mut s.z);
                s.a.clear();
                s.a.extend(s.z.iter().map(|&z| act.apply(z)));
                (&s.a[..], &params[2], &params[3])
            }
        };
        affine(w, b, input, self.outputs, &mut s.out);
    }

    /// The loss of one row from `s.out`, and into `s.delta` its gradient with respect
    /// to the outputs.
    fn loss(&self, y: f32, s: &mut Scratch) -> f32 {
        s.delta.clear();
        match self.head {
            Head::Softmax => {
                // log-sum-exp shifted by the largest output: no overflow.
                let max = s.out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                s.delta.extend(s.out.iter().map(|&o| (o - max).exp()));
                let sum: f32 = s.delta.iter().sum();
                let label = y as usize;
                for p in &mut s.delta {
                    *p /= sum;
                }
                s.delta[label] -= 1.0;
                sum.ln() + max - s.out[label]
            }
            Head::Regression => {
                let diff = s.out[0] - y;
                s.delta.push(2.0 * diff);
                diff * diff
            }
        }
    }

    /// The mean loss over the rows `batch` of `(x, y)`, and its gradient into `grads`
    /// (one vector per tensor, overwritten).
    pub fn loss_and_gradient(
        &self,
        params: &[Vec<f32>],
        rows: &crate::data::Rows,
        batch: &[usize],
        grads: &mut [Vec<f32>],
        s: &mut Scratch,
    ) -> f32 {
        for g in grads.iter_mut() {
            g.fill(0.0);
        }
        let scale = 1.0 / batch.len() as f32;
        let mut total = 0.0f32;
        for &i in batch {
            let x = rows.row(i);
            self.forward(params, x, s);
            total += self.loss(rows.y[i], s);
            for d in &mut s.delta {
                *d *= scale;
            }
            match self.hidden {
                None => outer_add(grads, &s.delta, x),
                Some((h, act)) => {
                    let (first, second) = grads.split_at_mut(2);
                    outer_add(second, &s.delta, &s.a);
                    // Back through the output layer: W2ᵀ δ, then the activation.
                    s.delta_hidden.clear();
                    s.delta_hidden.resize(h, 0.0);
                    for (o, &d) in s.delta.iter().enumerate() {
                        let row = &params[2][o * h..(o + 1) * h];
                        for (dh, &w) in s.delta_hidden.iter_mut().zip(row) {
                            *dh += w * d;
                        }
                    }
                    for ((dh, &z), &a) in s.delta_hidden.iter_mut().zip(&s.z).zip(&s.a) {
                        *dh *= act.derivative(z, a);
                    }
                    outer_add(first, &s.delta_hidden, x);
                }
            }
        }
        total * scale
    }

    /// Mean loss and accuracy (or R²) over all `rows`.
    pub fn evaluate(&self, params: &[Vec<f32>], rows: &crate::data::Rows) -> Evaluation {
        let mut s = Scratch::default();
        let (mut loss, mut correct) = (0.0f64, 0usize);
        for i in 0..rows.len() {
            self.forward(params, rows.row(i), &mut s);
            loss += f64::from(self.loss(rows.y[i], &mut s));
            if self.head == Head::Softmax {
                // The first of equal outputs wins, as torch's argmax picks it.
                let predicted = s
                    .out
                    .iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (k, &o)| {
                        if o > best.1 { (k, o) } else { best }
                    })
                    .0;
                correct += usize::from(predicted == rows.y[i] as usize);
            }
        }
        let n = rows.len() as f64;
        let metric = match self.head {
            Head::Softmax => correct as f64 / n,
            Head::Regression => {
                // R² = 1 − SSE / SST, about the rows' own mean.
                let mean = rows.y.iter().map(|&y| f64::from(y)).sum::<f64>() / n;
                let sst: f64 = rows.y.iter().map(|&y| (f64::from(y) - mean).powi(2)).sum();
                1.0 - loss / sst
            }
        };
        Evaluation {
            loss: (loss / n) as f32,
            metric: metric as f32,
        }
    }
}

/// `out = W·x + b` for `W` of `rows × x.len()`.
fn affine(w: &[f32], b: &[f32], x: &[f32], rows: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend((0..rows).map(|r| {
        let row = &w[r * x.len()..(r + 1) * x.len()];
        b[r] + row.iter().zip(x).map(|(w, x)| w * x).sum::<f32>()
    }));
}

/// `gw += δ ⊗ x`, `gb += δ` for a layer's gradients `[gw, gb]`.
fn outer_add(layer: &mut [Vec<f32>], delta: &[f32], x: &[f32]) {
    let [gw, gb] = layer else {
        unreachable!("a layer has a weight and a bias")
    };
    for (r, &d) in delta.iter().enumerate() {
        gb[r] += d;
        for (g, &v) in gw[r * x.len()..(r + 1) * x.len()].iter_mut().zip(x) {
            *g += d * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Rows;

    /// Every model's gradient against central differences (in f64 arithmetic on the
    /// f32 loss, with a step large enough for f32).
    #[test]
    fn gradients_match_finite_differences() {
        let rows = Rows {
            width: 3,
            x: vec![0.5, -1.0, 0.25, 1.5, 0.3, -0.7, -0.2, 0.8, 1.1],
            y: vec![2.0, 0.0, 1.0],
        };
        let regression = Rows {
            y: vec![0.7, -1.2, 0.4],
            ..rows.clone()
        };
        let models = [
            (
                Model {
                    inputs: 3,
                    hidden: None,
                    outputs: 3,
                    head: Head::Softmax,
                },
                &rows,
            ),
            (
                Model {
                    inputs: 3,
                    hidden: None,
                    outputs: 1,
                    head: Head::Regression,
                },
                &regression,
            ),
            (
                Model {
                    inputs: 3,
                    hidden: Some((4, Activation::Tanh)),
                    outputs: 3,
                    head: Head::Softmax,
                },
                &rows,
            ),
            (
                Model {
                    inputs: 3,
                    hidden: Some((4, Activation::Relu)),
                    outputs: 1,
                    head: Head::Regression,
                },
                &regression,
            ),
        ];
        let batch = [0, 1, 2];
        for (model, data) in models {
            let params = model.init(3);
            let mut grads: Vec<Vec<f32>> = model.sizes().iter().map(|&n| vec![0.0; n]).collect();
            let mut s = Scratch::default();
            model.loss_and_gradient(&params, data, &batch, &mut grads, &mut s);
            for t in 0..params.len() {
                for k in 0..params[t].len() {
                    let h = 1e-2f32;
                    let mut p = params.clone();
                    p[t][k] += h;
                    let up = model.loss_and_gradient(&p, data, &batch, &mut grads.clone(), &mut s);
                    p[t][k] -= 2.0 * h;
                    let down =
                        model.loss_and_gradient(&p, data, &batch, &mut grads.clone(), &mut s);
                    let numeric = (up - down) / (2.0 * h);
                    assert!(
                        (numeric - grads[t][k]).abs() <= 2e-3 * (1.0 + grads[t][k].abs()),
                        "{model:?} tensor {t} [{k}]: {} vs {numeric}",
                        grads[t][k]
                    );
                }
            }
            let e = model.evaluate(&params, data);
            let mean = model.loss_and_gradient(&params, data, &batch, &mut grads, &mut s);
            assert!((e.loss - mean).abs() < 1e-6);
        }
    }
}
