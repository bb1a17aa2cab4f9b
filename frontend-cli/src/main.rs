//! `gradstep`: watch optimizer update rules at work.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod demo;
mod output;
mod plot;

/// Watch optimizer update rules at work.
#[derive(Parser)]
#[command(
    name = "gradstep",
    version,
    about,
    after_help = "Exit status: 0 on success, 2 for a usage error (a bad flag, rule, \
                  hyperparameter, schedule or config file content), 1 when a file cannot \
                  be read or written."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The seed articles' experiment: gradient descent and momentum on
    /// f(x1, x2) = 0.1·x1² + 2·x2² from (−5, −2), 20 steps each; prints the final points
    /// and draws the four trajectories over the contour lines of f into DIR/demo.svg.
    Demo(DemoArgs),
}

#[derive(Args)]
struct DemoArgs {
    /// Directory for demo.svg (created if missing).
    #[arg(long, value_name = "DIR", default_value = "gradstep-out")]
    out: PathBuf,
}

/// Why a command failed; the exit status tells the two kinds apart.
#[derive(Debug)]
pub enum Failure {
    /// What was asked for is invalid (exit status 2, as clap's usage errors).
    Usage(String),
    /// A file could not be read or written (exit status 1).
    Io(String),
}

impl Failure {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::Usage(message.into())
    }
    /// A file error.
    pub fn io(message: impl Into<String>) -> Self {
        Failure::Io(message.into())
    }
}

/// Writes `text` to standard output; a closed pipe is not worth a panic.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::io(format!("cannot write to standard output: {e}"))),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args.out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let (message, code) = match failure {
                Failure::Usage(m) => (m, 2),
                Failure::Io(m) => (m, 1),
            };
            // One line: the message itself must not span several.
            let message = message.replace('\n', " ");
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}
