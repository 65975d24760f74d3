//! One result record per cell (experiment × seed), with everything needed to trust it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::DatasetProvenance;
use crate::error::{Error, Result};
use crate::experiment::ExperimentConfig;
use crate::train::EpochRecord;

/// Suffix naming a metric's best-epoch value (`clean.test_error@best`), which reports show next
/// to the final-epoch value because the paper does not say which it prints.
pub(crate) const BEST_SUFFIX: &str = "@best";

/// Version of the record format.
pub(crate) const RECORD_VERSION: u32 = 2;

/// The code that produced a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CodeVersion {
    /// mixbench crate version.
    pub(crate) crate_version: String,
    /// git commit the binary was built from.
    pub(crate) git_commit: String,
    /// Whether tracked files had uncommitted changes at build time.
    pub(crate) git_dirty: String,
    /// candle-core version.
    pub(crate) candle_version: String,
    /// [`crate::numerics::NUMERICS_VERSION`] of the code (0: written before versioning).
    #[serde(default)]
    pub(crate) numerics_version: u32,
}

impl CodeVersion {
    /// The running binary's version.
    pub(crate) fn current() -> Self {
        CodeVersion {
            crate_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("MIXBENCH_GIT_COMMIT").into(),
            git_dirty: env!("MIXBENCH_GIT_DIRTY").into(),
            candle_version: env!("MIXBENCH_CANDLE_VERSION").into(),
            numerics_version: crate::numerics::NUMERICS_VERSION,
        }
    }
}

/// Where and how a cell ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunEnvironment {
    /// `cpu` or `cuda:<n>`.
    pub(crate) device: String,
    /// Worker threads candle used.
    pub(crate) threads: usize,
    /// Start time, RFC 3339.
    pub(crate) started_at: String,
    /// End time, RFC 3339.
    pub(crate) finished_at: String,
    /// Wall-clock seconds of this invocation (a resumed run counts only its own part).
    pub(crate) wall_seconds: f64,
}

/// Why a cell has no numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CellDivergence {
    /// `training` or the id of the evaluation whose outputs were not finite.
    pub(crate) stage: String,
    /// Epoch (training only).
    pub(crate) epoch: Option<usize>,
    /// Step within the epoch (training loss only).
    pub(crate) step: Option<usize>,
    /// What was not finite.
    pub(crate) reason: String,
}

/// One evaluation a record's metrics came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EvaluationRef {
    /// Its id (the metric key prefix).
    pub(crate) id: String,
    /// Its hash (training hash + seed + evaluator spec + batch size).
    pub(crate) hash: String,
    /// Wall-clock seconds it took.
    pub(crate) wall_seconds: f64,
}

/// The record written to `results/<suite>/<profile>/<experiment>-s<seed>.json`: the join of a
/// trained-model artifact and its evaluations for one suite row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ResultRecord {
    /// Record format version.
    pub(crate) record_version: u32,
    /// Suite id.
    pub(crate) suite: String,
    /// Experiment id.
    pub(crate) experiment: String,
    /// Profile.
    pub(crate) profile: String,
    /// Seed.
    pub(crate) seed: u64,
    /// sha256 of the weight-determining part of the config.
    pub(crate) training_hash: String,
    /// The resolved config itself.
    pub(crate) config: ExperimentConfig,
    /// Dataset name, fingerprint and files.
    pub(crate) dataset: DatasetProvenance,
    /// Code that trained the model.
    pub(crate) code: CodeVersion,
    /// Device, threads and timing of the training.
    pub(crate) environment: RunEnvironment,
    /// Trainable parameters of the model.
    pub(crate) trainable_params: usize,
    /// Final values by metric key (`clean.test_error`, `fgsm_0.03.accuracy`, ...).
    pub(crate) metrics: BTreeMap<String, f64>,
    /// Clean metrics at the epoch with the lowest test error, by the same keys.
    pub(crate) best_metrics: BTreeMap<String, f64>,
    /// Which epoch was best.
    pub(crate) best_epoch_index: Option<usize>,
    /// Metric key → hash of the evaluation that produced it.
    pub(crate) metric_sources: BTreeMap<String, String>,
    /// Named arrays from evaluations (`<id>.<name>`).
    #[serde(default)]
    pub(crate) arrays: BTreeMap<String, Vec<f64>>,
    /// The evaluations joined into this record.
    pub(crate) evaluations: Vec<EvaluationRef>,
    /// Set when training or an evaluation produced NaN/Inf: the cell has no valid numbers.
    pub(crate) diverged: Option<CellDivergence>,
    /// Per-epoch curves.
    pub(crate) curves: Vec<EpochRecord>,
    /// Epoch a checkpoint resumed from, if any.
    pub(crate) resumed_from: Option<usize>,
}

impl ResultRecord {
    /// Value of a metric key, final or best epoch; None for a diverged cell.
    pub(crate) fn metric(&self, name: &str, best: bool) -> Option<f64> {
        if self.diverged.is_some() {
            return None;
        }
        if let Some(base) = name.strip_suffix(BEST_SUFFIX) {
            return self.best_metrics.get(base).copied();
        }
        if best {
            self.best_metrics.get(name).copied()
        } else {
            self.metrics.get(name).copied()
        }
    }
}

/// Every metric key of `records` (final and best-epoch maps), in first-seen order.
pub(crate) fn metric_keys<'a>(records: impl IntoIterator<Item = &'a ResultRecord>) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for r in records {
        for k in r.metrics.keys().chain(r.best_metrics.keys()) {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys
}

/// Reads a record.
pub(crate) fn read(path: &Path) -> Result<ResultRecord> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::Other(format!(
            "{}: not a mixbench result record of version {RECORD_VERSION} ({e}); rerun the suite to rebuild it",
            path.display()
        ))
    })
}

/// Writes a record atomically.
pub(crate) fn write(path: &Path, rec: &ResultRecord) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(rec).map_err(|e| Error::Other(e.to_string()))?;
    crate::files::write_atomic(path, &bytes)
}

/// All records in a directory (non-recursive), sorted by experiment then seed.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<ResultRecord>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            out.push(read(&p)?);
        }
    }
    out.sort_by(|a, b| (&a.experiment, a.seed).cmp(&(&b.experiment, b.seed)));
    Ok(out)
}
