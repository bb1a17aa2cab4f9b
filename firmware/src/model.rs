//! Softmax regression over the digits: `logits = W·x + b`, `p = softmax(logits)`,
//! cross-entropy loss. Inputs are scaled to [0, 1]; everything is `f32`.

use crate::data::{FEATURES, INPUTS, LABELS, MAX_VALUE};

/// Number of classes (digits 0–9).
pub const CLASSES: usize = 10;

/// Number of parameters: `CLASSES` rows of `FEATURES` weights, then `CLASSES` biases.
pub const PARAMS: usize = CLASSES * (FEATURES + 1);

const SCALE: f32 = 1.0 / MAX_VALUE as f32;

/// Loss and accuracy over a set of images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eval {
    /// Mean cross-entropy.
    pub loss: f32,
    /// Images classified correctly.
    pub correct: u32,
    /// Images evaluated.
    pub total: u32,
}

impl Eval {
    /// Fraction classified correctly.
    pub fn accuracy(&self) -> f32 {
        self.correct as f32 / self.total.max(1) as f32
    }
}

/// The class probabilities for image `i` into `p`; returns the predicted class.
fn forward(params: &[f32], i: usize, p: &mut [f32; CLASSES]) -> usize {
    let (weights, biases) = params.split_at(CLASSES * FEATURES);
    let x = &INPUTS[i];
    let mut best = 0;
    for (c, pc) in p.iter_mut().enumerate() {
        let row = &weights[c * FEATURES..(c + 1) * FEATURES];
        let mut z = biases[c];
        for (w, &xi) in row.iter().zip(x) {
            z += w * (f32::from(xi) * SCALE);
        }
        *pc = z;
    }
    for c in 1..CLASSES {
        if p[c] > p[best] {
            best = c;
        }
    }
    let max = p[best];
    let mut sum = 0.0;
    for pc in p.iter_mut() {
        *pc = libm::expf(*pc - max);
        sum += *pc;
    }
    for pc in p.iter_mut() {
        *pc /= sum;
    }
    best
}

fn cross_entropy(p: &[f32; CLASSES], label: usize) -> f32 {
    -libm::logf(p[label].max(f32::MIN_POSITIVE))
}

/// Loss and accuracy of `params` over the images `range`.
pub fn evaluate(params: &[f32], range: core::ops::Range<usize>) -> Eval {
    let mut p = [0.0; CLASSES];
    let (mut loss, mut correct) = (0.0f32, 0);
    let total = range.len() as u32;
    for i in range {
        let label = usize::from(LABELS[i]);
        if forward(params, i, &mut p) == label {
            correct += 1;
        }
        loss += cross_entropy(&p, label);
    }
    Eval {
        loss: loss / total.max(1) as f32,
        correct,
        total,
    }
}

/// The mean gradient of the loss over `images` into `grads` (overwritten); returns the
/// mean loss.
pub fn gradient(
    params: &[f32],
    grads: &mut [f32],
    images: impl ExactSizeIterator<Item = usize>,
) -> f32 {
    grads.fill(0.0);
    let inv = 1.0 / images.len().max(1) as f32;
    let mut p = [0.0; CLASSES];
    let mut loss = 0.0;
    let (gw, gb) = grads.split_at_mut(CLASSES * FEATURES);
    for i in images {
        let label = usize::from(LABELS[i]);
        forward(params, i, &mut p);
        loss += cross_entropy(&p, label);
        let x = &INPUTS[i];
        for c in 0..CLASSES {
            let d = (p[c] - if c == label { 1.0 } else { 0.0 }) * inv;
            gb[c] += d;
            for (g, &xi) in gw[c * FEATURES..(c + 1) * FEATURES].iter_mut().zip(x) {
                *g += d * (f32::from(xi) * SCALE);
            }
        }
    }
    loss * inv
}
