//! Progress bar for training (indicatif draws nothing when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

use crate::train::{EpochRecord, Observer};

/// Shows steps of the current epoch and the last epoch's test error.
pub struct BarObserver {
    bar: ProgressBar,
    label: String,
    epochs: usize,
}

impl BarObserver {
    /// A bar for one cell.
    pub fn new(label: String, epochs: usize) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.clone());
        BarObserver { bar, label, epochs }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for BarObserver {
    fn on_step(&mut self, epoch: usize, step: usize, steps: usize, loss: f64) {
        self.bar.set_length(steps as u64);
        self.bar.set_position(step as u64 + 1);
        self.bar.set_prefix(format!(
            "{} epoch {}/{}",
            self.label,
            epoch + 1,
            self.epochs
        ));
        self.bar.set_message(format!("loss {loss:.4}"));
    }

    fn on_epoch(&mut self, r: &EpochRecord) {
        if let Some(t) = r.test {
            self.bar
                .set_message(format!("test error {:.2}% nll {:.3}", t.error_pct, t.nll));
        }
    }
}

/// Progress of an `ops` call on the terminal: a bar per cell, notes on stderr.
pub struct TerminalProgress;

impl crate::ops::Progress for TerminalProgress {
    fn cell(
        &mut self,
        label: &str,
        epochs: usize,
        f: &mut dyn FnMut(&mut dyn Observer) -> crate::Result<crate::harness::CellOutcome>,
    ) -> crate::Result<crate::harness::CellOutcome> {
        let mut bar = BarObserver::new(label.to_string(), epochs);
        let out = f(&mut bar);
        bar.finish();
        out
    }

    fn note(&mut self, message: &str) {
        eprintln!("{message}");
    }
}
