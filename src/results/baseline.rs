//! Stored baselines: `baselines/<suite>.<profile>.json`, written only by `reproduce --bless`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::aggregate::ExperimentSummary;
use super::record::CodeVersion;
use crate::error::{Error, Result};

/// A blessed set of aggregated results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Baseline {
    /// Suite id.
    pub(crate) suite: String,
    /// Profile.
    pub(crate) profile: String,
    /// When it was blessed (RFC 3339).
    pub(crate) blessed_at: String,
    /// Code that produced it.
    pub(crate) code: CodeVersion,
    /// Device it ran on.
    pub(crate) device: String,
    /// Per experiment.
    pub(crate) experiments: BTreeMap<String, ExperimentSummary>,
}

/// Reads a baseline if one exists.
pub(crate) fn read(p: &Path) -> Result<Option<Baseline>> {
    match std::fs::read(p) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            Error::Other(format!(
                "{}: not a mixbench baseline ({e}); re-bless it",
                p.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(p, e)),
    }
}

/// Writes a baseline atomically.
pub(crate) fn write(p: &Path, b: &Baseline) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(b).map_err(|e| Error::Other(e.to_string()))?;
    crate::files::write_atomic(p, &bytes)
}
