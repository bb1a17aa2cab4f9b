//! `gradstep demo`: the seed articles' experiment, gradient descent against momentum on
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
/// points (the seed's numbers) and where the picture went.
pub fn run(out: &Path) -> Result<(), Failure> {
    // torch's SGD momentum (b ← μb + g, θ ← θ − ηb, first b = g) is the seed's
    // v ← γv + η∇f, θ ← θ − v with v = ηb.
    let runs = [
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

    let mut text = String::from("f(x1, x2) = 0.1*x1^2 + 2*x2^2 from (-5, -2), 20 steps\n");
    for ((name, _, _, _), path) in runs.iter().zip(&paths) {
        let [x1, x2] = path[path.len() - 1];
        text += &format!("{name:<34} epoch 20, x1 {x1:.6}, x2 {x2:.6}\n");
    }
    for path in written {
        text += &format!("wrote {}\n", path.display());
    }
    crate::print(&text)
}
