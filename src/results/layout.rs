//! The one place that knows where mixbench's files live, under three roots:
//!
//! ```text
//! <results>/models/<training hash>/s<seed>/{model.safetensors, model.json, evals/, checkpoints/}
//! <results>/<suite>/<profile>/<experiment>-s<seed>.json      (records)
//! <results>/locks/<training hash>-s<seed>.lock                (a process working on the cell)
//! <baselines>/<suite>.<profile>.json
//! <reports>/<stem>.{md,html,csv,parquet,json}
//! ```
//!
//! Every name that comes from a suite is checked to be a safe id before it becomes a path
//! component, so nothing is ever written outside the roots.

use std::path::{Path, PathBuf};

use super::artifact::ArtifactPaths;
use crate::error::{Error, Result};
use crate::suite::load::is_safe_id;

/// The three roots.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Trained models, evaluations, checkpoints and records.
    pub(crate) results: PathBuf,
    /// Blessed baselines.
    pub(crate) baselines: PathBuf,
    /// Reports.
    pub(crate) reports: PathBuf,
}

fn safe<'a>(what: &str, s: &'a str) -> Result<&'a str> {
    if is_safe_id(s) {
        Ok(s)
    } else {
        Err(Error::Config(format!(
            "{what} `{s}` cannot name a file: use 1-100 characters of [A-Za-z0-9_.-], not starting with `.`"
        )))
    }
}

fn hex(what: &str, s: &str) -> Result<()> {
    if !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Error::Other(format!("{what} `{s}` is not a hex digest")))
    }
}

impl Layout {
    /// A layout over the given roots.
    pub(crate) fn new(results: &Path, baselines: &Path, reports: &Path) -> Self {
        Layout {
            results: results.to_path_buf(),
            baselines: baselines.to_path_buf(),
            reports: reports.to_path_buf(),
        }
    }

    /// The folder of the model trained with `training_hash` and `seed`.
    pub(crate) fn model(&self, training_hash: &str, seed: u64) -> Result<ArtifactPaths> {
        hex("training hash", training_hash)?;
        Ok(ArtifactPaths {
            dir: self
                .results
                .join("models")
                .join(training_hash)
                .join(format!("s{seed}")),
        })
    }

    /// The lock file of the cell training `training_hash` with `seed`.
    pub(crate) fn lock(&self, training_hash: &str, seed: u64) -> Result<PathBuf> {
        hex("training hash", training_hash)?;
        Ok(self
            .results
            .join("locks")
            .join(format!("{training_hash}-s{seed}.lock")))
    }

    /// The folder of a suite profile's records.
    pub(crate) fn records(&self, suite: &str, profile: &str) -> Result<PathBuf> {
        Ok(self
            .results
            .join(safe("suite id", suite)?)
            .join(safe("profile", profile)?))
    }

    /// One cell's record.
    pub(crate) fn record(
        &self,
        suite: &str,
        profile: &str,
        experiment: &str,
        seed: u64,
    ) -> Result<PathBuf> {
        Ok(self.records(suite, profile)?.join(format!(
            "{}-s{seed}.json",
            safe("experiment id", experiment)?
        )))
    }

    /// A suite profile's baseline.
    pub(crate) fn baseline(&self, suite: &str, profile: &str) -> Result<PathBuf> {
        Ok(self.baselines.join(format!(
            "{}.{}.json",
            safe("suite id", suite)?,
            safe("profile", profile)?
        )))
    }

    /// A report file `<stem>.<ext>` (`stem` is `<suite>-<profile>` or a comparison's).
    pub(crate) fn report(&self, stem: &str, ext: &str) -> Result<PathBuf> {
        Ok(self.reports.join(format!(
            "{}.{}",
            safe("report name", stem)?,
            safe("extension", ext)?
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_their_roots_and_hostile_names_are_refused() {
        let l = Layout::new(Path::new("r"), Path::new("b"), Path::new("o"));
        assert_eq!(
            l.record("table1", "smoke", "c10-none", 3).unwrap(),
            Path::new("r/table1/smoke/c10-none-s3.json")
        );
        assert_eq!(
            l.baseline("table1", "smoke").unwrap(),
            Path::new("b/table1.smoke.json")
        );
        assert_eq!(
            l.model("ab12", 0).unwrap().dir,
            Path::new("r/models/ab12/s0")
        );
        assert_eq!(
            l.report("table1-smoke", "md").unwrap(),
            Path::new("o/table1-smoke.md")
        );
        let long = "x".repeat(101);
        for bad in ["../x", "/abs", "a/b", "", ".hidden", "..", long.as_str()] {
            assert!(l.record("t", "smoke", bad, 0).is_err(), "{bad}");
            assert!(l.record(bad, "smoke", "e", 0).is_err(), "{bad}");
            assert!(l.baseline("t", bad).is_err(), "{bad}");
            assert!(l.report(bad, "md").is_err(), "{bad}");
        }
        assert!(l.model("../../etc", 0).is_err());
    }
}
