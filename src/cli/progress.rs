//! Progress bars for training, with ETAs (indicatif draws nothing when stderr is not a
//! terminal).

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::harness::{CellOutcome, Training};
use crate::train::{EpochRecord, Observer};

/// A duration as people read one: `0.4 s`, `42 s`, `7m05s`, `3h12m`, `2d04h`.
pub fn human_duration(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    if seconds < 9.95 {
        return format!("{seconds:.1} s");
    }
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..172_800 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Seconds left in a run of `epochs` epochs, now at the end of `step` (0-based) of `steps` in
/// `epoch` (0-based), given the finished epochs' mean duration (None before one finished) and
/// the seconds since the end of this epoch's first step; None while nothing is known (the
/// first step of the first epoch).
pub fn eta_seconds(
    epochs: usize,
    epoch: usize,
    step: usize,
    steps: usize,
    mean_epoch: Option<f64>,
    since_first_step: f64,
) -> Option<f64> {
    let per_step = (step > 0).then(|| since_first_step / step as f64);
    let rest_of_epoch = per_step.map(|p| p * steps.saturating_sub(step + 1) as f64);
    // Later epochs at the finished epochs' mean, which includes their evaluation (or at this
    // epoch's pace before one finished).
    let per_epoch = mean_epoch.or(per_step.map(|p| p * steps as f64))?;
    let later = per_epoch * epochs.saturating_sub(epoch + 1) as f64;
    let rest = rest_of_epoch
        .or(mean_epoch.map(|m| m * steps.saturating_sub(step + 1) as f64 / steps.max(1) as f64))?;
    Some(rest + later)
}

/// Shows steps of the current epoch, time per epoch, the cell's ETA and the last test error.
pub struct BarObserver {
    bar: ProgressBar,
    label: String,
    epochs: usize,
    epoch_started: Instant,
    epoch_seconds: Vec<f64>,
    last_test: String,
    /// Whether a step was seen (the bar replaces the loading spinner then).
    stepped: bool,
}

impl BarObserver {
    /// A bar for one cell.
    pub fn new(label: String, epochs: usize) -> Self {
        // Until the first step: a spinner with the elapsed time, not an empty `0/0` bar (loading
        // a full-size dataset takes tens of seconds).
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix} {spinner} {msg} ({elapsed})")
                .expect("valid template"),
        );
        bar.set_prefix(label.clone());
        bar.set_message("loading the data and building the model");
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        BarObserver {
            bar,
            label,
            epochs,
            epoch_started: Instant::now(),
            epoch_seconds: Vec::new(),
            last_test: String::new(),
            stepped: false,
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn mean_epoch(&self) -> Option<f64> {
        let n = self.epoch_seconds.len();
        (n > 0).then(|| self.epoch_seconds.iter().sum::<f64>() / n as f64)
    }
}

impl Observer for BarObserver {
    fn on_step(&mut self, epoch: usize, step: usize, steps: usize, loss: f64) {
        if step == 0 {
            self.epoch_started = Instant::now();
        }
        if !self.stepped {
            self.stepped = true;
            self.bar.disable_steady_tick();
            // A loading bar's count and stage must not show under the training bar's style.
            self.bar.set_length(steps as u64);
            self.bar.set_position(0);
            self.bar.set_message("");
            self.bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
        }
        self.bar.set_length(steps as u64);
        self.bar.set_position(step as u64 + 1);
        self.bar.set_prefix(format!(
            "{} epoch {}/{}",
            self.label,
            epoch + 1,
            self.epochs
        ));
        let since = self.epoch_started.elapsed().as_secs_f64();
        let mean = self.mean_epoch();
        let per_epoch = match mean {
            Some(m) => format!(" · {}/epoch", human_duration(m)),
            None => String::new(),
        };
        let eta = match eta_seconds(self.epochs, epoch, step, steps, mean, since) {
            Some(e) => format!(" · ETA {}", human_duration(e)),
            None => String::new(),
        };
        self.bar
            .set_message(format!("loss {loss:.4}{per_epoch}{eta}{}", self.last_test));
    }

    fn load_progress(&self) -> Option<crate::data::LoadProgress> {
        // A bar by units done (images decoded, files hashed) until the first step replaces it.
        let bar = self.bar.clone();
        let style = ProgressStyle::with_template("{prefix} {msg} [{bar:30}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> ");
        Some(crate::data::LoadProgress(std::sync::Arc::new(
            move |stage: &str, done: u64, total: u64| {
                // Length and position first: a style change redraws, and must not show 0/0.
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(stage.to_string());
                bar.set_style(style.clone());
            },
        )))
    }

    fn on_epoch(&mut self, r: &EpochRecord) {
        self.epoch_seconds.push(r.seconds);
        if let Some(t) = r.test {
            self.last_test = format!(" · test error {:.2}% nll {:.3}", t.error_pct, t.nll);
        }
    }
}

/// Progress of an `ops` call on the terminal: a bar per cell (its label followed by the
/// suite's ETA once a cell has trained), notes on stderr.
#[derive(Default)]
pub struct TerminalProgress {
    /// Cells of the current suite, and how many of them are done.
    total: usize,
    done: usize,
    /// Seconds of the cells that trained a model (reused ones take seconds).
    trained: Vec<f64>,
}

impl TerminalProgress {
    /// The suite's ETA: the cells left at the trained cells' mean (an upper bound when some
    /// of them will reuse stored models).
    fn suite_eta(&self) -> Option<String> {
        let n = self.trained.len();
        let left = self.total.saturating_sub(self.done);
        (n > 0 && left > 0).then(|| {
            let mean = self.trained.iter().sum::<f64>() / n as f64;
            format!(" (suite ETA ≤ {})", human_duration(mean * left as f64))
        })
    }
}

impl crate::ops::Progress for TerminalProgress {
    fn cell(
        &mut self,
        label: &str,
        epochs: usize,
        f: &mut dyn FnMut(&mut dyn Observer) -> crate::Result<CellOutcome>,
    ) -> crate::Result<CellOutcome> {
        let label = format!("{label}{}", self.suite_eta().unwrap_or_default());
        let mut bar = BarObserver::new(label, epochs);
        let t0 = Instant::now();
        let out = f(&mut bar);
        bar.finish();
        self.done += 1;
        if let Ok(o) = &out
            && matches!(o.training, Training::Trained)
        {
            self.trained.push(t0.elapsed().as_secs_f64());
        }
        out
    }

    fn note(&mut self, message: &str) {
        eprintln!("{message}");
    }

    fn suite(&mut self, total: usize) {
        *self = TerminalProgress {
            total,
            ..Default::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_duration(0.44), "0.4 s");
        assert_eq!(human_duration(9.96), "10 s");
        assert_eq!(human_duration(59.4), "59 s");
        assert_eq!(human_duration(425.0), "7m05s");
        assert_eq!(human_duration(3.0 * 3600.0 + 12.0 * 60.0 + 29.0), "3h12m");
        assert_eq!(human_duration(52.0 * 3600.0), "2d04h");
        assert_eq!(human_duration(-5.0), "0.0 s");
    }

    #[test]
    fn eta_is_the_rest_of_this_epoch_plus_the_epochs_left() {
        // 10 steps took 5 s since the first one ended: 0.5 s a step, 29 of 40 steps left in
        // this epoch (14.5 s); then 3 epochs at the finished epochs' mean of 30 s.
        assert_eq!(
            eta_seconds(5, 1, 10, 40, Some(30.0), 5.0),
            Some(14.5 + 3.0 * 30.0)
        );
        // Before any epoch finished, later epochs are projected at this epoch's pace (20 s).
        assert_eq!(
            eta_seconds(3, 0, 10, 40, None, 5.0),
            Some(14.5 + 2.0 * 20.0)
        );
        // At the first step of a later epoch, its rest is the mean's share.
        assert_eq!(eta_seconds(3, 1, 0, 40, Some(40.0), 0.0), Some(39.0 + 40.0));
        // Nothing known at the very first step; nothing left at the last one.
        assert_eq!(eta_seconds(3, 0, 0, 40, None, 0.0), None);
        assert_eq!(eta_seconds(3, 2, 39, 40, Some(30.0), 19.5), Some(0.0));
    }

    #[test]
    fn the_suite_eta_counts_the_cells_left_at_the_trained_cells_mean() {
        let mut p = TerminalProgress::default();
        crate::ops::Progress::suite(&mut p, 10);
        assert_eq!(p.suite_eta(), None);
        p.done = 4;
        p.trained = vec![60.0, 120.0];
        assert_eq!(p.suite_eta().as_deref(), Some(" (suite ETA ≤ 9m00s)"));
        p.done = 10;
        assert_eq!(p.suite_eta(), None);
    }
}
