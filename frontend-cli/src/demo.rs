//! `gradstep demo`: the source article's experiment, gradient descent against momentum on
//! an ill-conditioned quadratic.

use std::path::Path;

use gradstep::rules::AnyRule;

use crate::Failure;
use crate::output::write_files;
use crate::plot::{self, Series, Surface, View};

/// f(x1, x2) = 0.1·x1² + 2·x2².
fn f(x: [f64; 2]) -> f64 {
    0.1 * x[0] * x[0] + 2.0 * x[1] * x[1]
}

/// ∇f for f(x1, x2) = 0.1·x1² + 2·x2².
fn gradient(x: &[f64; 2]) -> [f64; 2] {
    [0.2 * x[0], 4.0 * x[1]]
}

const START: [f64; 2] = [-5.0, -2.0];
const STEPS: usize = 20;

/// Runs the four configurations, writes `demo.svg` into `out`, then prints the final
/// points (the article's numbers) and where the picture went.
pub fn run(out: &Path) -> Result<(), Failure> {
    // torch's SGD momentum (b ← μb + g, θ ← θ − ηb, first b = g) is the article's
    // v ← γv + η∇f, θ ← θ − v with v = ηb.
    let runs: [(&str, &str, f64, f64); 4] = [
        (
            "gradient descent, eta = 0.4",
            "gradient descent, η = 0.4",
            0.4,
            0.0,
        ),
        (
            "gradient descent, eta = 0.6",
            "gradient descent, η = 0.6",
            0.6,
            0.0,
        ),
        (
            "momentum, eta = 0.4, gamma = 0.5",
            "momentum, η = 0.4, γ = 0.5",
            0.4,
            0.5,
        ),
        (
            "momentum, eta = 0.6, gamma = 0.5",
            "momentum, η = 0.6, γ = 0.5",
            0.6,
            0.5,
        ),
    ];
    let mut paths = Vec::with_capacity(runs.len());
    for (_, _, lr, momentum) in runs {
        // The rule by name, as a user would give it: the CLI names no rule type.
        let rule = AnyRule::parse(&format!("sgd:lr={lr},momentum={momentum}"))
            .map_err(|e| Failure::usage(e.to_string()))?;
        let run = crate::rules::descend(rule, START, |x| gradient(&x), STEPS, None)
            .map_err(|e| Failure::usage(e.to_string()))?;
        paths.push(run.path);
    }

    let series: Vec<Series<'_>> = runs
        .iter()
        .zip(&paths)
        .enumerate()
        .map(|(i, ((_, label, _, _), path))| Series {
            label,
            points: path,
            colour: plot::colour(i),
        })
        .collect();
    let levels = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
    let surface = Surface {
        f: &f,
        levels: &levels,
        levels_label: "f = 0.25, 0.5, 1, …, 16",
        view: View {
            x: (-5.5, 1.5),
            y: (-3.5, 3.5),
        },
        start: START,
        minimum: Some([0.0, 0.0]),
    };
    let svg = plot::trajectories_svg(
        "Gradient descent and momentum on f(x1, x2) = 0.1·x1² + 2·x2², 20 steps",
        &surface,
        &series,
        true,
    )?;
    let written = write_files(out, &[("demo.svg", &svg)])?;

    let mut text = String::from(
        "The source article's experiment: gradient descent and momentum on \
         f(x1, x2) = 0.1*x1^2 + 2*x2^2 from (-5, -2), 20 steps each (the article prints \
         \"epoch 20\": each of its epochs is one step on the whole function).\n",
    );
    for ((name, _, _, _), path) in runs.iter().zip(&paths) {
        let [x1, x2] = path[path.len() - 1];
        text += &format!("{name:<34} after 20 steps: x1 {x1:.6}, x2 {x2:.6}\n");
    }
    text += &explanation(&runs.map(|(_, _, lr, m)| (lr, m)), &paths);
    for path in written {
        text += &format!("wrote {}\n", path.display());
    }
    crate::print(&text)
}

/// The article: a blog post following the momentum section of Dive into Deep Learning
/// (its PyTorch port, `d2lzh_pytorch`), whose numbers the demo reproduces.
pub const SOURCE: &str = "【从零开始学习深度学习】39. 梯度下降优化之动量法介绍及其Pytorch实现 \
                          (a blog post after the momentum section of Zhang, Lipton, Li and \
                          Smola, Dive into Deep Learning, PyTorch port d2lzh_pytorch)";

/// What the four runs show, in words, with their own numbers.
fn explanation(runs: &[(f64, f64); 4], paths: &[Vec<[f64; 2]>]) -> String {
    let last = |i: usize| paths[i][paths[i].len() - 1];
    // Plain gradient descent multiplies each coordinate by 1 − η·(its curvature) per
    // step: 0.2 along x1, 4 along x2.
    let factor = |lr: f64, curvature: f64| 1.0 - lr * curvature;
    let (slow, fast) = (runs[0].0, runs[1].0);
    let mut text = String::from("What the numbers show:\n");
    text += &format!(
        "- eta = {slow}: each step multiplies x2 by 1 - {slow}*4 = {:.1}, which dies out, \
         but x1 only by 1 - {slow}*0.2 = {:.2}: after 20 steps x1 is still {:.3}. The \
         steep direction limits the step size, the flat one then crawls.\n",
        factor(slow, 4.0),
        factor(slow, 0.2),
        last(0)[0]
    );
    text += &format!(
        "- eta = {fast} DIVERGED: each step multiplies x2 by 1 - {fast}*4 = {:.1}; its size \
         exceeds 1, so x2 flips sign and grows ({:.0} after 20 steps). Gradient descent on \
         this f is stable only for eta < 2/4 = 0.5.\n",
        factor(fast, 4.0),
        last(1)[1]
    );
    text += &format!(
        "- momentum (gamma = {}) fixes it: the velocity averages successive gradients, so \
         the x2 components, which alternate in sign, cancel, and the x1 components, which \
         keep their sign, add up. With eta = {fast} it converges (x1 {:.3}, x2 {:.3}) where \
         gradient descent diverged; with eta = {slow} it ends {:.0}x closer in x1 ({:.3}).\n",
        runs[2].1,
        last(3)[0],
        last(3)[1],
        last(0)[0] / last(2)[0],
        last(2)[0]
    );
    text += &format!("Source: {SOURCE}.\n");
    text
}
