//! `history`: a suite profile's metrics over the runs in a history folder, and the steps in
//! them (the commit where a metric moved beyond its tolerance and stayed).

use std::path::Path;

use crate::error::{Error, Result};
use crate::results::history::{HistoryEntry, read_all};
use crate::results::trend::{Point, Step, detect};
use crate::suite::LoadedSuite;
use crate::suite::schema::expand_metrics;

/// Runs needed at the new level before a move counts as a step (1 more than a blip).
pub(crate) const PERSIST: usize = 2;

/// One experiment's metric over the runs.
pub(crate) struct MetricHistory {
    /// Experiment id.
    pub(crate) experiment: String,
    /// Metric key.
    pub(crate) metric: String,
    /// Value per run (None where the run lacks it).
    pub(crate) values: Vec<Option<f64>>,
    /// Steps found.
    pub(crate) steps: Vec<Step>,
}

/// The history of a suite profile.
pub(crate) struct HistoryView {
    /// The runs, oldest first.
    pub(crate) runs: Vec<HistoryEntry>,
    /// Per experiment and metric.
    pub(crate) rows: Vec<MetricHistory>,
}

impl HistoryView {
    /// Regressions found anywhere.
    pub(crate) fn regressions(&self) -> usize {
        self.rows
            .iter()
            .flat_map(|r| &r.steps)
            .filter(|s| s.direction == crate::results::trend::Direction::Regression)
            .count()
    }
}

/// Reads the history of `ls` under `profile` from `dir` and finds its steps.
pub(crate) fn history(ls: &LoadedSuite, profile: &str, dir: &Path) -> Result<HistoryView> {
    let runs = read_all(dir, &ls.suite.id, profile)?;
    if runs.is_empty() {
        return Err(Error::Config(format!(
            "no history for suite `{}` profile `{profile}` in {}; run `mixbench reproduce {} --profile {profile} --history {}` to start one",
            ls.suite.id,
            dir.display(),
            ls.suite.id,
            dir.display()
        )));
    }
    let mut keys: Vec<String> = Vec::new();
    for r in &runs {
        for e in r.experiments.values() {
            for k in e.metrics.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    let metrics = expand_metrics(&ls.suite.metrics_for(profile), &keys);
    let mut rows = Vec::new();
    for e in &ls.suite.experiments {
        for m in &metrics {
            let mut values = Vec::new();
            let mut points = Vec::new();
            for r in &runs {
                let x = r.experiments.get(&e.id);
                let v = x.and_then(|x| x.metrics.get(&m.name)).map(|s| s.mean);
                values.push(v);
                if let (Some(x), Some(v)) = (x, v) {
                    points.push(Point {
                        commit: r.commit.clone(),
                        date: r.date.clone(),
                        value: v,
                        series: format!("{}/{}", x.training_hash, x.dataset_fingerprint),
                    });
                }
            }
            if values.iter().all(Option::is_none) {
                continue;
            }
            rows.push(MetricHistory {
                experiment: e.id.clone(),
                metric: m.name.clone(),
                steps: detect(&points, m.tolerance, m.better, PERSIST),
                values,
            });
        }
    }
    Ok(HistoryView { runs, rows })
}
