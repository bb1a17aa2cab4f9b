//! The progress bar of `train` and `sweep`: on stderr, and only when stderr is a
//! terminal, so that piped output, logs and tests stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::Failure;

/// A progress bar, or nothing when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar counting to `len` units of `unit` (e.g. "batches", "runs").
    pub fn new(len: u64, unit: &str) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let template = format!(
                "{{msg:>12}} [{{bar:36}}] {{pos}}/{{len}} {unit}, {{elapsed}}, eta {{eta}}"
            );
            let style = ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            ProgressBar::new(len).with_style(style)
        } else {
            ProgressBar::hidden()
        };
        Progress { bar }
    }

    /// Says what is being done (left of the bar).
    pub fn message(&self, text: String) {
        self.bar.set_message(text);
    }

    /// One more unit done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Prints `text` on standard output without tearing the bar.
    pub fn print(&self, text: &str) -> Result<(), Failure> {
        self.bar.suspend(|| crate::print(text))
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An error part-way leaves no stale bar above the error message.
        self.bar.finish_and_clear();
    }
}
