//! What happened with a suite run: the aggregate of its records (computed once), each row's
//! diff against the baseline, the paper's values beside them, the provenance, and the verdict
//! with its exit code. Reports render this; `reproduce` blesses and records history from it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::aggregate::{ExperimentSummary, aggregate};
use super::baseline::Baseline;
use super::diff::{MetricDiff, Status, compare, require_identical};
use super::history::HistoryEntry;
use super::record::{BEST_SUFFIX, CodeVersion, ResultRecord, metric_keys};
use crate::error::Result;
use crate::experiment::device::is_bit_exact;
use crate::suite::LoadedSuite;
use crate::suite::paper::{PaperValue, parse};
use crate::suite::schema::{Layout, MetricSpec, Which, expand_metrics};
use crate::train::EpochRecord;

/// Exit code: nothing regressed.
pub const EXIT_OK: i32 = 0;
/// Exit code: a metric regressed against the baseline.
pub const EXIT_REGRESSION: i32 = 1;
/// Exit code: usage, configuration or data error (or `--no-train` cells without a model).
pub const EXIT_ERROR: i32 = 2;
/// Exit code: a cell diverged (NaN/Inf loss or outputs); the other cells still ran.
pub const EXIT_DIVERGED: i32 = 3;
/// Exit code: a cell that has a baseline could not be compared with it (≠: training config,
/// evaluation or data differ), so the run checked less than it claims.
pub const EXIT_NOT_COMPARABLE: i32 = 4;
/// Exit code: some cells were being worked on by another process (per-cell locks), so the
/// results are incomplete; rerun or `report` when they finish.
pub const EXIT_INCOMPLETE: i32 = 5;

/// How a suite run ended, worst first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A cell had no trained model and training was disabled.
    Missing(Vec<String>),
    /// Cells were claimed by other processes and skipped (their results may come later).
    Incomplete(Vec<String>),
    /// Cells diverged (NaN/Inf); the others ran.
    Diverged(usize),
    /// Metrics regressed against the baseline.
    Regressed(usize),
    /// Experiments with a baseline could not be compared (≠).
    NotComparable(Vec<String>),
    /// A shard's cells ran; the report waits for every shard. `have` of the profile's `total`
    /// cells have a current result in this results folder.
    ShardDone {
        /// Cells of the whole profile with a result in this folder (this shard's and others').
        have: usize,
        /// Cells of the whole profile.
        total: usize,
    },
    /// Nothing regressed (or the run was blessed).
    Ok,
}

impl Ending {
    /// The process exit code of this ending (the worst suite's wins for `all`).
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Ending::Ok | Ending::ShardDone { .. } => EXIT_OK,
            Ending::Missing(_) => EXIT_ERROR,
            Ending::Incomplete(_) => EXIT_INCOMPLETE,
            Ending::Diverged(_) => EXIT_DIVERGED,
            Ending::Regressed(_) => EXIT_REGRESSION,
            Ending::NotComparable(_) => EXIT_NOT_COMPARABLE,
        }
    }
}

/// One row: an experiment (or a quoted row) with its paper values and verdicts.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OutcomeRow {
    /// Experiment id.
    pub(crate) experiment: String,
    /// Sub-table.
    pub(crate) group: Option<String>,
    /// Architecture as printed.
    pub(crate) architecture: String,
    /// Method as printed.
    pub(crate) method: String,
    /// Source of a quoted row (not run).
    pub(crate) quoted: Option<String>,
    /// Row label in the grid layout.
    pub(crate) row: Option<String>,
    /// Column label in the grid layout.
    pub(crate) column: Option<String>,
    /// The paper's values by metric.
    pub(crate) paper: BTreeMap<String, PaperValue>,
    /// One entry per suite metric (empty for quoted rows or rows with no results).
    pub(crate) diffs: Vec<MetricDiff>,
    /// Training hash of the run.
    pub(crate) training_hash: Option<String>,
}

/// Everything that happened with one suite profile's records, as every report shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SuiteOutcome {
    /// Suite id.
    pub(crate) suite: String,
    /// Suite title.
    pub(crate) title: String,
    /// arXiv id and version.
    pub(crate) arxiv: String,
    /// Table number.
    pub(crate) table: String,
    /// The paper's caption.
    pub(crate) caption: String,
    /// Profile name.
    pub(crate) profile: String,
    /// Profile description.
    pub(crate) profile_description: String,
    /// Compared metrics (concrete keys; `*` patterns expanded).
    pub(crate) metrics: Vec<MetricSpec>,
    /// Table layout.
    pub(crate) layout: Layout,
    /// Header of the grid layout's row labels.
    pub(crate) grid_rows: Option<String>,
    /// The records aggregated per experiment over `metrics` (what a baseline or history keeps).
    pub(crate) summaries: Vec<ExperimentSummary>,
    /// Table rows in suite order.
    pub(crate) rows: Vec<OutcomeRow>,
    /// Suite notes.
    pub(crate) notes: Vec<String>,
    /// Code versions seen in the records.
    pub(crate) code: Vec<CodeVersion>,
    /// Devices seen in the records.
    pub(crate) devices: Vec<String>,
    /// Sum of wall-clock seconds over records.
    pub(crate) wall_seconds: f64,
    /// Dataset name → fingerprints.
    pub(crate) datasets: BTreeMap<String, Vec<String>>,
    /// Baseline provenance, if any.
    pub(crate) baseline: Option<(String, CodeVersion)>,
    /// Device the baseline was blessed on.
    pub(crate) baseline_device: Option<String>,
    /// Earlier runs of this suite profile (oldest first, this run last), when a history is kept.
    pub(crate) history: Vec<HistoryEntry>,
    /// Learning curves: (experiment, seed, epochs).
    pub(crate) curves: Vec<(String, u64, Vec<EpochRecord>)>,
    /// Named arrays of the evaluations (spectra): (experiment, seed, `<eval id>.<name>` → values).
    pub(crate) arrays: Vec<(String, u64, BTreeMap<String, Vec<f64>>)>,
    /// The paper's figures drawn from these records.
    pub(crate) figures: Vec<crate::suite::schema::FigureSpec>,
}

impl SuiteOutcome {
    /// Aggregates `records` (one suite/profile) once and compares them with `baseline`.
    pub(crate) fn build(
        ls: &LoadedSuite,
        profile: &str,
        records: &[ResultRecord],
        baseline: Option<&Baseline>,
    ) -> Result<SuiteOutcome> {
        let s = &ls.suite;
        let metrics = reported_metrics(ls, profile, records);
        let summaries = aggregate(records, &metrics)?;
        let rows = rows(ls, records, baseline, &metrics, &summaries);
        let (code, devices, datasets) = provenance(records);
        Ok(SuiteOutcome {
            suite: s.id.clone(),
            title: s.title.clone(),
            arxiv: s.paper.arxiv.clone(),
            table: s.paper.table.clone(),
            caption: s.paper.caption.clone(),
            profile: profile.to_string(),
            profile_description: s
                .profiles
                .get(profile)
                .map(|p| p.description.clone())
                .unwrap_or_default(),
            metrics,
            layout: s.layout,
            grid_rows: s.grid_rows.clone(),
            figures: s.figures.clone(),
            summaries,
            rows,
            notes: s.notes.clone(),
            code,
            devices,
            wall_seconds: records.iter().map(|r| r.environment.wall_seconds).sum(),
            datasets,
            baseline: baseline.map(|b| (b.blessed_at.clone(), b.code.clone())),
            baseline_device: baseline.map(|b| b.device.clone()),
            history: Vec::new(),
            curves: records
                .iter()
                .map(|r| (r.experiment.clone(), r.seed, r.curves.clone()))
                .collect(),
            arrays: records
                .iter()
                .filter(|r| !r.arrays.is_empty())
                .map(|r| (r.experiment.clone(), r.seed, r.arrays.clone()))
                .collect(),
        })
    }

    /// Number of metric regressions.
    pub(crate) fn regressions(&self) -> usize {
        self.count(Status::Regression)
    }

    /// Experiments with a metric that has a baseline but could not be compared (≠).
    pub(crate) fn not_comparable(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.diffs.iter().any(|d| d.status == Status::NotComparable))
            .map(|r| r.experiment.clone())
            .collect()
    }

    /// Number of experiments with a diverged seed.
    pub(crate) fn diverged(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.diffs.iter().any(|d| d.status == Status::Diverged))
            .count()
    }

    /// The verdict of the compared values: diverged, regressed, not comparable, or fine.
    pub(crate) fn verdict(&self) -> Ending {
        if self.diverged() > 0 {
            Ending::Diverged(self.diverged())
        } else if self.regressions() > 0 {
            Ending::Regressed(self.regressions())
        } else if !self.not_comparable().is_empty() {
            Ending::NotComparable(self.not_comparable())
        } else {
            Ending::Ok
        }
    }

    fn count(&self, st: Status) -> usize {
        self.rows
            .iter()
            .flat_map(|r| &r.diffs)
            .filter(|d| d.status == st)
            .count()
    }
}

/// The profile's metrics in the order the records' evaluations produced them.
///
/// The paper does not say whether it reports the final or the best epoch: every clean metric
/// read at the final epoch is followed by its best-epoch value.
fn reported_metrics(ls: &LoadedSuite, profile: &str, records: &[ResultRecord]) -> Vec<MetricSpec> {
    let keys = metric_keys(records);
    let mut with_best = Vec::new();
    for m in expand_metrics(&ls.suite.metrics_for(profile), &keys) {
        let companion = (m.from == Which::Final
            && keys.contains(&m.name)
            && crate::eval::registry::is_epoch_logged(&m.name))
        .then(|| MetricSpec {
            name: format!("{}{BEST_SUFFIX}", m.name),
            label: Some(format!("{} (best epoch)", m.display())),
            ..m.clone()
        });
        with_best.push(m);
        with_best.extend(companion);
    }
    with_best
}

/// One row per suite experiment, its summary diffed against the baseline's; a CPU run against
/// a CPU baseline must be identical.
fn rows(
    ls: &LoadedSuite,
    records: &[ResultRecord],
    baseline: Option<&Baseline>,
    metrics: &[MetricSpec],
    summaries: &[ExperimentSummary],
) -> Vec<OutcomeRow> {
    let s = &ls.suite;
    let exact = baseline.is_some_and(|b| is_bit_exact(&b.device))
        && records.iter().all(|r| is_bit_exact(&r.environment.device));
    s.experiments
        .iter()
        .map(|e| {
            let summary = summaries.iter().find(|x| x.experiment == e.id);
            let mut diffs = match summary {
                Some(cur) => compare(
                    cur,
                    baseline.and_then(|b| b.experiments.get(&e.id)),
                    metrics,
                    s.significance,
                ),
                None => vec![],
            };
            if exact {
                diffs.iter_mut().for_each(require_identical);
            }
            OutcomeRow {
                experiment: e.id.clone(),
                group: e.group.clone(),
                architecture: e.architecture.clone(),
                method: e.method.clone(),
                quoted: e.quoted.clone(),
                row: e.row.clone(),
                column: e.column.clone(),
                paper: e.paper.iter().map(|(k, v)| (k.clone(), parse(v))).collect(),
                diffs,
                training_hash: summary.map(|x| x.training_hash.clone()),
            }
        })
        .collect()
}

type Provenance = (Vec<CodeVersion>, Vec<String>, BTreeMap<String, Vec<String>>);

/// Code versions, devices and dataset fingerprints seen in the records, in first-seen order.
fn provenance(records: &[ResultRecord]) -> Provenance {
    let mut code: Vec<CodeVersion> = Vec::new();
    let mut devices: Vec<String> = Vec::new();
    let mut datasets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records {
        if !code.contains(&r.code) {
            code.push(r.code.clone());
        }
        if !devices.contains(&r.environment.device) {
            devices.push(r.environment.device.clone());
        }
        let f = datasets.entry(r.dataset.name.clone()).or_default();
        if !f.contains(&r.dataset.fingerprint) {
            f.push(r.dataset.fingerprint.clone());
        }
    }
    (code, devices, datasets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(status: Status) -> MetricDiff {
        MetricDiff {
            metric: "clean.test_error".into(),
            current: None,
            baseline: None,
            delta: None,
            p_value: None,
            status,
            reason: String::new(),
        }
    }

    fn row(experiment: &str, statuses: &[Status]) -> OutcomeRow {
        OutcomeRow {
            experiment: experiment.into(),
            group: None,
            architecture: "PreActResNet18".into(),
            method: "No Mixup".into(),
            quoted: None,
            row: None,
            column: None,
            paper: BTreeMap::new(),
            diffs: statuses.iter().copied().map(diff).collect(),
            training_hash: None,
        }
    }

    fn outcome(rows: Vec<OutcomeRow>) -> SuiteOutcome {
        SuiteOutcome {
            suite: "table1".into(),
            title: String::new(),
            arxiv: String::new(),
            table: String::new(),
            caption: String::new(),
            profile: "smoke".into(),
            profile_description: String::new(),
            metrics: vec![],
            layout: Layout::ExperimentsAsRows,
            grid_rows: None,
            figures: vec![],
            summaries: vec![],
            rows,
            notes: vec![],
            code: vec![],
            devices: vec![],
            wall_seconds: 0.0,
            datasets: BTreeMap::new(),
            baseline: None,
            baseline_device: None,
            history: vec![],
            curves: vec![],
            arrays: vec![],
        }
    }

    #[test]
    fn the_worst_status_decides_the_verdict_and_its_exit_code() {
        use Status::*;
        let fine = outcome(vec![row("a", &[Identical, Ok, Better, NoBaseline])]);
        assert_eq!(fine.verdict(), Ending::Ok);
        assert_eq!(fine.verdict().exit_code(), EXIT_OK);

        let not_comparable = outcome(vec![row("a", &[Ok]), row("b", &[NotComparable, Ok])]);
        assert_eq!(
            not_comparable.verdict(),
            Ending::NotComparable(vec!["b".into()])
        );
        assert_eq!(not_comparable.verdict().exit_code(), EXIT_NOT_COMPARABLE);

        // A regression outranks ≠, and each regressed metric counts.
        let regressed = outcome(vec![
            row("a", &[Regression, Regression]),
            row("b", &[NotComparable]),
        ]);
        assert_eq!(regressed.verdict(), Ending::Regressed(2));
        assert_eq!(regressed.verdict().exit_code(), EXIT_REGRESSION);

        // Divergence outranks everything and counts experiments, not metrics.
        let diverged = outcome(vec![
            row("a", &[Diverged, Diverged]),
            row("b", &[Regression]),
        ]);
        assert_eq!(diverged.verdict(), Ending::Diverged(1));
        assert_eq!(diverged.verdict().exit_code(), EXIT_DIVERGED);

        assert_eq!(Ending::Missing(vec![]).exit_code(), EXIT_ERROR);
        assert_eq!(Ending::Incomplete(vec![]).exit_code(), EXIT_INCOMPLETE);
        assert_eq!(Ending::ShardDone { have: 1, total: 2 }.exit_code(), EXIT_OK);
    }
}
