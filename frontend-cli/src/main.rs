//! `gradstep`: watch optimizer update rules at work.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gradstep::{Rule, Sgd, StepCount};

/// Watch optimizer update rules at work.
#[derive(Parser)]
#[command(name = "gradstep", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The seed articles' experiment: gradient descent and momentum on
    /// f(x1, x2) = 0.1·x1² + 2·x2² from (−5, −2), 20 steps each.
    Demo,
}

/// ∇f for f(x1, x2) = 0.1·x1² + 2·x2².
fn gradient(x: &[f64; 2]) -> [f64; 2] {
    [0.2 * x[0], 4.0 * x[1]]
}

/// Runs `steps` steps of `sgd` from `start`, returning the final point.
fn descend(sgd: &Sgd, start: [f64; 2], steps: usize) -> Result<[f64; 2], gradstep::Error> {
    let mut x = start;
    let mut buffer = [0.0; 2];
    let mut scalars = StepCount::default();
    for _ in 0..steps {
        let g = gradient(&x);
        let mut state: [&mut [f64]; 1] = [&mut buffer];
        let slots = sgd.state_slots();
        sgd.step(&mut scalars, &mut x, &g, &mut state[..slots])?;
    }
    Ok(x)
}

fn demo() -> Result<(), gradstep::Error> {
    // torch's SGD momentum (b ← μb + g, θ ← θ − ηb, first b = g) is the seed's
    // v ← γv + η∇f, θ ← θ − v with v = ηb.
    let runs = [
        (
            "gradient descent, eta = 0.4",
            Sgd {
                lr: 0.4,
                ..Sgd::default()
            },
        ),
        (
            "gradient descent, eta = 0.6",
            Sgd {
                lr: 0.6,
                ..Sgd::default()
            },
        ),
        (
            "momentum, eta = 0.4, gamma = 0.5",
            Sgd {
                lr: 0.4,
                momentum: 0.5,
                ..Sgd::default()
            },
        ),
        (
            "momentum, eta = 0.6, gamma = 0.5",
            Sgd {
                lr: 0.6,
                momentum: 0.5,
                ..Sgd::default()
            },
        ),
    ];
    println!("f(x1, x2) = 0.1*x1^2 + 2*x2^2 from (-5, -2), 20 steps");
    for (name, sgd) in runs {
        let [x1, x2] = descend(&sgd, [-5.0, -2.0], 20)?;
        println!("{name:<34} epoch 20, x1 {x1:.6}, x2 {x2:.6}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gradstep: {e}");
            ExitCode::FAILURE
        }
    }
}
