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
pub const BEST_SUFFIX: &str = "@best";

/// Version of the record format.
pub const RECORD_VERSION: u32 = 2;

/// The code that produced a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeVersion {
    /// mixbench crate version.
    pub crate_version: String,
    /// git commit the binary was built from.
    pub git_commit: String,
    /// Whether tracked files had uncommitted changes at build time.
    pub git_dirty: String,
    /// candle-core version.
    pub candle_version: String,
    /// [`crate::numerics::NUMERICS_VERSION`] of the code (0: written before versioning).
    #[serde(default)]
    pub numerics_version: u32,
}

impl CodeVersion {
    /// The running binary's version.
    pub fn current() -> Self {
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
pub struct RunEnvironment {
    /// `cpu` or `cuda:<n>`.
    pub device: String,
    /// Worker threads candle used.
    pub threads: usize,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// End time, RFC 3339.
    pub finished_at: String,
    /// Wall-clock seconds of this invocation (a resumed run counts only its own part).
    pub wall_seconds: f64,
}

/// Why a cell has no numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellDivergence {
    /// `training` or the id of the evaluation whose outputs were not finite.
    pub stage: String,
    /// Epoch (training only).
    pub epoch: Option<usize>,
    /// Step within the epoch (training loss only).
    pub step: Option<usize>,
    /// What was not finite.
    pub reason: String,
}

/// One evaluation a record's metrics came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRef {
    /// Its id (the metric key prefix).
    pub id: String,
    /// Its hash (training hash + seed + evaluator spec + batch size).
    pub hash: String,
    /// Wall-clock seconds it took.
    pub wall_seconds: f64,
}

/// The record written to `results/<suite>/<profile>/<experiment>-s<seed>.json`: the join of a
/// trained-model artifact and its evaluations for one suite row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// Record format version.
    pub record_version: u32,
    /// Suite id.
    pub suite: String,
    /// Experiment id.
    pub experiment: String,
    /// Profile.
    pub profile: String,
    /// Seed.
    pub seed: u64,
    /// sha256 of the weight-determining part of the config.
    pub training_hash: String,
    /// The resolved config itself.
    pub config: ExperimentConfig,
    /// Dataset name, fingerprint and files.
    pub dataset: DatasetProvenance,
    /// Code that trained the model.
    pub code: CodeVersion,
    /// Device, threads and timing of the training.
    pub environment: RunEnvironment,
    /// Trainable parameters of the model.
    pub trainable_params: usize,
    /// Final values by metric key (`clean.test_error`, `fgsm_0.03.accuracy`, ...).
    pub metrics: BTreeMap<String, f64>,
    /// Clean metrics at the epoch with the lowest test error, by the same keys.
    pub best_metrics: BTreeMap<String, f64>,
    /// Which epoch was best.
    pub best_epoch_index: Option<usize>,
    /// Metric key → hash of the evaluation that produced it.
    pub metric_sources: BTreeMap<String, String>,
    /// Named arrays from evaluations (`<id>.<name>`).
    #[serde(default)]
    pub arrays: BTreeMap<String, Vec<f64>>,
    /// The evaluations joined into this record.
    pub evaluations: Vec<EvaluationRef>,
    /// Set when training or an evaluation produced NaN/Inf: the cell has no valid numbers.
    pub diverged: Option<CellDivergence>,
    /// Per-epoch curves.
    pub curves: Vec<EpochRecord>,
    /// Epoch a checkpoint resumed from, if any.
    pub resumed_from: Option<usize>,
}

impl ResultRecord {
    /// Value of a metric key, final or best epoch; None for a diverged cell.
    pub fn metric(&self, name: &str, best: bool) -> Option<f64> {
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
pub fn metric_keys<'a>(records: impl IntoIterator<Item = &'a ResultRecord>) -> Vec<String> {
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
pub fn read(path: &Path) -> Result<ResultRecord> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::Other(format!(
            "{}: not a mixbench result record of version {RECORD_VERSION} ({e}); rerun the suite to rebuild it",
            path.display()
        ))
    })
}

/// Writes a record atomically.
pub fn write(path: &Path, rec: &ResultRecord) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(rec).map_err(|e| Error::Other(e.to_string()))?;
    crate::files::write_atomic(path, &bytes)
}

/// All records in a directory (non-recursive), sorted by experiment then seed.
pub fn read_dir(dir: &Path) -> Result<Vec<ResultRecord>> {
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
