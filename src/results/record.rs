//! One result record per cell (experiment × seed), with everything needed to trust it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::DatasetProvenance;
use crate::error::{Error, Result};
use crate::eval::EvalMetrics;
use crate::experiment::ExperimentConfig;
use crate::train::EpochRecord;

/// Version of the record format.
pub const RECORD_VERSION: u32 = 1;

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
}

impl CodeVersion {
    /// The running binary's version.
    pub fn current() -> Self {
        CodeVersion {
            crate_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("MIXBENCH_GIT_COMMIT").into(),
            git_dirty: env!("MIXBENCH_GIT_DIRTY").into(),
            candle_version: env!("MIXBENCH_CANDLE_VERSION").into(),
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

/// Metrics of a cell: final epoch and best epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellMetrics {
    /// After the last epoch.
    pub final_epoch: EvalMetrics,
    /// At the epoch with the lowest test error.
    pub best_epoch: EvalMetrics,
    /// Which epoch was best.
    pub best_epoch_index: usize,
}

/// The record written to `results/<suite>/<profile>/<experiment>-s<seed>.json`.
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
    /// sha256 of the resolved config.
    pub config_hash: String,
    /// The resolved config itself.
    pub config: ExperimentConfig,
    /// Dataset name, fingerprint and files.
    pub dataset: DatasetProvenance,
    /// Code version.
    pub code: CodeVersion,
    /// Device, threads and timing.
    pub environment: RunEnvironment,
    /// Trainable parameters of the model.
    pub trainable_params: usize,
    /// Final and best metrics.
    pub metrics: CellMetrics,
    /// Per-epoch curves.
    pub curves: Vec<EpochRecord>,
    /// Epoch a checkpoint resumed from, if any.
    pub resumed_from: Option<usize>,
}

impl ResultRecord {
    /// Value of a suite metric (`test_error`, `test_nll`, `top1_acc`, `top5_acc`).
    pub fn metric(&self, name: &str, best: bool) -> Option<f64> {
        let m = if best {
            &self.metrics.best_epoch
        } else {
            &self.metrics.final_epoch
        };
        match name {
            "test_error" => Some(m.error_pct),
            "test_nll" => Some(m.nll),
            "top1_acc" => Some(100.0 - m.error_pct),
            "top5_acc" => Some(m.top5_pct),
            _ => None,
        }
    }
}

/// Path of a cell's record.
pub fn record_path(
    results: &Path,
    suite: &str,
    profile: &str,
    experiment: &str,
    seed: u64,
) -> PathBuf {
    results
        .join(suite)
        .join(profile)
        .join(format!("{experiment}-s{seed}.json"))
}

/// Reads a record.
pub fn read(path: &Path) -> Result<ResultRecord> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::Other(format!(
            "{}: not a mixbench result record ({e})",
            path.display()
        ))
    })
}

/// Writes a record atomically.
pub fn write(path: &Path, rec: &ResultRecord) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(rec).map_err(|e| Error::Other(e.to_string()))?;
    super::atomic::write_atomic(path, &bytes)
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
