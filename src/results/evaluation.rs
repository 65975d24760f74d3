//! One stored evaluation of a trained model: `<artifact>/evals/<evaluation hash>.json`.

use serde::{Deserialize, Serialize};

use super::record::CodeVersion;
use crate::error::{Error, Result};
use crate::eval::{EvalOutput, EvaluationSpec};
use crate::files::write_atomic;

/// Version of the evaluation record format.
pub(crate) const EVALUATION_VERSION: u32 = 1;

/// What an evaluation produced, and of what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EvaluationRecord {
    /// Format version.
    pub(crate) evaluation_version: u32,
    /// This evaluation's hash.
    pub(crate) evaluation_hash: String,
    /// The trained model's training hash.
    pub(crate) training_hash: String,
    /// The trained model's seed.
    pub(crate) seed: u64,
    /// What ran.
    pub(crate) spec: EvaluationSpec,
    /// Images per forward pass.
    pub(crate) eval_batch_size: usize,
    /// Named metrics and arrays.
    pub(crate) output: EvalOutput,
    /// Code that evaluated.
    pub(crate) code: CodeVersion,
    /// Device.
    pub(crate) device: String,
    /// Wall-clock seconds.
    pub(crate) wall_seconds: f64,
    /// When it finished (RFC 3339).
    pub(crate) finished_at: String,
}

/// Reads a stored evaluation if it exists and is what `hash` names.
pub(crate) fn read(path: &std::path::Path, hash: &str) -> Option<EvaluationRecord> {
    let b = std::fs::read(path).ok()?;
    let r: EvaluationRecord = serde_json::from_slice(&b).ok()?;
    (r.evaluation_hash == hash).then_some(r)
}

/// Writes an evaluation atomically.
pub(crate) fn write(path: &std::path::Path, r: &EvaluationRecord) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(r).map_err(|e| Error::Other(e.to_string()))?;
    write_atomic(path, &bytes)
}
