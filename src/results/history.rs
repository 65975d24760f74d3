//! A result history across runs: one small JSON file per `reproduce --history <dir>` run,
//! `<dir>/<suite>/<profile>/<date>-<commit>.json`, holding each experiment's aggregated metrics
//! with the training hash and dataset fingerprint they came from. `mixbench history` and the
//! HTML report's trend charts read it; `results::trend` finds the commit where a metric moved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::aggregate::ExperimentSummary;
use super::record::CodeVersion;
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::suite::load::is_safe_id;

/// Version of the history entry format.
pub(crate) const HISTORY_VERSION: u32 = 1;

/// One metric of one experiment in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HistoryStat {
    /// Mean over seeds.
    pub(crate) mean: f64,
    /// Sample standard deviation over seeds.
    pub(crate) std: f64,
    /// Seeds.
    pub(crate) n: usize,
}

/// One experiment in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HistoryExperiment {
    /// Training hash (a change starts a new series).
    pub(crate) training_hash: String,
    /// Dataset fingerprint (a change starts a new series).
    pub(crate) dataset_fingerprint: String,
    /// Metric key → statistics.
    pub(crate) metrics: BTreeMap<String, HistoryStat>,
}

/// One run of a suite profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HistoryEntry {
    /// Format version.
    pub(crate) history_version: u32,
    /// Suite id.
    pub(crate) suite: String,
    /// Profile.
    pub(crate) profile: String,
    /// Git commit of the code that ran.
    pub(crate) commit: String,
    /// Whether the working tree had uncommitted changes (`true`, `false` or `unknown`).
    pub(crate) dirty: String,
    /// When the run finished (RFC 3339, UTC).
    pub(crate) date: String,
    /// Device.
    pub(crate) device: String,
    /// Per experiment.
    pub(crate) experiments: BTreeMap<String, HistoryExperiment>,
}

impl HistoryEntry {
    /// An entry for `summaries` of one run.
    pub(crate) fn new(
        suite: &str,
        profile: &str,
        code: &CodeVersion,
        device: &str,
        summaries: &[ExperimentSummary],
    ) -> Self {
        HistoryEntry {
            history_version: HISTORY_VERSION,
            suite: suite.into(),
            profile: profile.into(),
            commit: code.git_commit.clone(),
            dirty: code.git_dirty.clone(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            device: device.into(),
            experiments: summaries
                .iter()
                .map(|s| {
                    (
                        s.experiment.clone(),
                        HistoryExperiment {
                            training_hash: s.training_hash.clone(),
                            dataset_fingerprint: s.dataset_fingerprint.clone(),
                            metrics: s
                                .metrics
                                .iter()
                                .map(|(k, v)| {
                                    (
                                        k.clone(),
                                        HistoryStat {
                                            mean: v.mean,
                                            std: v.std,
                                            n: v.n,
                                        },
                                    )
                                })
                                .collect(),
                        },
                    )
                })
                .collect(),
        }
    }
}

fn folder(dir: &Path, suite: &str, profile: &str) -> Result<PathBuf> {
    for (what, id) in [("suite id", suite), ("profile", profile)] {
        if !is_safe_id(id) {
            return Err(Error::Config(format!(
                "{what} `{id}` cannot name a history folder"
            )));
        }
    }
    Ok(dir.join(suite).join(profile))
}

/// Stores `e` as a new file; returns its path.
pub(crate) fn append(dir: &Path, e: &HistoryEntry) -> Result<PathBuf> {
    let stamp: String = e
        .date
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let commit: String = e
        .commit
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    let path = folder(dir, &e.suite, &e.profile)?.join(format!("{stamp}-{commit}.json"));
    let bytes = serde_json::to_vec_pretty(e).map_err(|x| Error::Other(x.to_string()))?;
    write_atomic(&path, &bytes)?;
    Ok(path)
}

/// Every entry of a suite profile, oldest first (by date, then file name).
pub(crate) fn read_all(dir: &Path, suite: &str, profile: &str) -> Result<Vec<HistoryEntry>> {
    let f = folder(dir, suite, profile)?;
    let Ok(rd) = std::fs::read_dir(&f) else {
        return Ok(vec![]);
    };
    let mut paths: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        let e: HistoryEntry = serde_json::from_slice(&bytes).map_err(|x| {
            Error::Other(format!(
                "{}: not a mixbench history entry ({x})",
                p.display()
            ))
        })?;
        out.push(e);
    }
    out.sort_by(|a, b| a.date.cmp(&b.date));
    Ok(out)
}
