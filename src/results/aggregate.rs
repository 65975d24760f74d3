//! Per-experiment mean ± sample std over seeds; diverged seeds are listed, never averaged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::record::{CellDivergence, ResultRecord};
use crate::error::{Error, Result};
use crate::suite::schema::{MetricSpec, Which};

/// Mean, sample standard deviation and count of one metric over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stat {
    /// Mean over seeds.
    pub(crate) mean: f64,
    /// Sample standard deviation (n − 1); 0 for a single seed.
    pub(crate) std: f64,
    /// Number of seeds.
    pub(crate) n: usize,
    /// The per-seed values, by ascending seed.
    pub(crate) values: Vec<f64>,
}

impl Stat {
    /// Mean (sum in seed order, then divided), sample std (two-pass, n − 1; 0 for one value)
    /// and count of `values`: a fixed order of operations, so the bits never depend on a library.
    pub(crate) fn from_values(values: &[f64]) -> Stat {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n.max(1) as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt()
        } else {
            0.0
        };
        Stat {
            mean,
            std,
            n,
            values: values.to_vec(),
        }
    }
}

/// One experiment aggregated over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExperimentSummary {
    /// Experiment id.
    pub(crate) experiment: String,
    /// Training hash shared by all its records.
    pub(crate) training_hash: String,
    /// Dataset fingerprint shared by all its records.
    pub(crate) dataset_fingerprint: String,
    /// Seeds aggregated (diverged ones included, see `diverged`).
    pub(crate) seeds: Vec<u64>,
    /// Metric key → statistics over the seeds that did not diverge.
    pub(crate) metrics: BTreeMap<String, Stat>,
    /// Metric key → hash of the evaluation that produced it (the same for every seed).
    #[serde(default)]
    pub(crate) metric_sources: BTreeMap<String, String>,
    /// Seeds whose training or evaluation diverged, and how.
    #[serde(default)]
    pub(crate) diverged: Vec<(u64, CellDivergence)>,
}

/// Aggregates `records` per experiment for `metrics` (concrete keys), sorted by experiment id.
///
/// Records of one experiment must share a training hash and a dataset fingerprint.
pub(crate) fn aggregate(
    records: &[ResultRecord],
    metrics: &[MetricSpec],
) -> Result<Vec<ExperimentSummary>> {
    let ids: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r.experiment.as_str()).collect();
    let mut summaries = Vec::new();
    for id in ids {
        let recs = experiment_records(records, id)?;
        let (stats, sources) = metric_stats(&recs, metrics);
        summaries.push(ExperimentSummary {
            experiment: id.to_string(),
            training_hash: recs[0].training_hash.clone(),
            dataset_fingerprint: recs[0].dataset.fingerprint.clone(),
            seeds: recs.iter().map(|r| r.seed).collect(),
            metrics: stats,
            metric_sources: sources,
            diverged: recs
                .iter()
                .filter_map(|r| r.diverged.clone().map(|d| (r.seed, d)))
                .collect(),
        });
    }
    Ok(summaries)
}

/// Seeds of different configs or datasets would average unlike runs, so they are refused.
fn experiment_records<'a>(records: &'a [ResultRecord], id: &str) -> Result<Vec<&'a ResultRecord>> {
    let mut recs: Vec<&ResultRecord> = records.iter().filter(|r| r.experiment == id).collect();
    recs.sort_by_key(|r| r.seed);
    for w in recs.windows(2) {
        if w[0].seed == w[1].seed {
            return Err(Error::Other(format!(
                "experiment `{id}` has two records for seed {}",
                w[0].seed
            )));
        }
    }
    for (what, distinct) in [
        (
            "training configs",
            recs.iter()
                .map(|r| r.training_hash.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
        ),
        (
            "datasets",
            recs.iter()
                .map(|r| r.dataset.fingerprint.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
        ),
    ] {
        if distinct > 1 {
            return Err(Error::Other(format!(
                "experiment `{id}` has records of {distinct} different {what}; rerun it with --force"
            )));
        }
    }
    Ok(recs)
}

/// A metric no seed reported (all diverged, or not computed) gets no entry rather than a NaN.
fn metric_stats(
    recs: &[&ResultRecord],
    metrics: &[MetricSpec],
) -> (BTreeMap<String, Stat>, BTreeMap<String, String>) {
    let mut stats = BTreeMap::new();
    let mut sources = BTreeMap::new();
    for m in metrics {
        let values: Vec<f64> = recs
            .iter()
            .filter_map(|r| r.metric(&m.name, m.from == Which::Best))
            .collect();
        if !values.is_empty() {
            stats.insert(m.name.clone(), Stat::from_values(&values));
        }
        if let Some(h) = recs.iter().find_map(|r| r.metric_sources.get(&m.name)) {
            sources.insert(m.name.clone(), h.clone());
        }
    }
    (stats, sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::record::{CodeVersion, RunEnvironment};
    use crate::suite::schema::Better;

    fn rec(exp: &str, seed: u64, hash: &str, final_err: f64, best_err: f64) -> ResultRecord {
        ResultRecord {
            record_version: 2,
            suite: "s".into(),
            experiment: exp.into(),
            profile: "p".into(),
            seed,
            training_hash: hash.into(),
            config: serde_json::from_value(serde_json::json!({
                "dataset": {"name": "synthetic"}, "model": {"arch": "mlp"},
                "regularizer": {"name": "none"}, "optimizer": {"lr": 0.1},
                "epochs": 1, "batch_size": 2
            }))
            .unwrap(),
            dataset: crate::data::DatasetProvenance {
                name: "synthetic".into(),
                fingerprint: "fp".into(),
                files: vec![],
                notes: vec![],
            },
            code: CodeVersion::current(),
            environment: RunEnvironment {
                device: "cpu".into(),
                threads: 1,
                started_at: String::new(),
                finished_at: String::new(),
                wall_seconds: 0.0,
            },
            trainable_params: 0,
            metrics: [("clean.test_error".to_string(), final_err)].into(),
            best_metrics: [("clean.test_error".to_string(), best_err)].into(),
            best_epoch_index: Some(0),
            metric_sources: [("clean.test_error".to_string(), "e".to_string())].into(),
            arrays: Default::default(),
            evaluations: vec![],
            diverged: None,
            curves: vec![],
            resumed_from: None,
        }
    }

    fn spec(from: Which) -> Vec<MetricSpec> {
        vec![MetricSpec {
            name: "clean.test_error".into(),
            label: None,
            unit: "%".into(),
            better: Better::Lower,
            tolerance: 0.1,
            from,
        }]
    }

    #[test]
    fn mean_and_sample_std_over_seeds() {
        // 4, 5, 9: mean 6, sample variance ((4)+(1)+(9))/2 = 7.
        let r = vec![
            rec("a", 2, "h", 9.0, 1.0),
            rec("a", 0, "h", 4.0, 2.0),
            rec("a", 1, "h", 5.0, 3.0),
            rec("b", 0, "g", 3.0, 3.0),
        ];
        let s = aggregate(&r, &spec(Which::Final)).unwrap();
        let a = &s[0].metrics["clean.test_error"];
        assert_eq!((a.mean, a.n), (6.0, 3));
        assert!((a.std - 7f64.sqrt()).abs() < 1e-12, "{}", a.std);
        assert_eq!(a.values, vec![4.0, 5.0, 9.0], "sorted by seed");
        // One seed: std 0, not NaN.
        let b = &s[1].metrics["clean.test_error"];
        assert_eq!((b.mean, b.std, b.n), (3.0, 0.0, 1));
        // Best-epoch selection takes the other map.
        let s = aggregate(&r, &spec(Which::Best)).unwrap();
        assert_eq!(s[0].metrics["clean.test_error"].mean, 2.0);
        assert_eq!(s[0].metric_sources["clean.test_error"], "e");
    }

    #[test]
    fn std_is_two_pass_and_exact_far_from_zero() {
        // The one-pass formula (Σx² − n·mean²)/(n − 1) loses every digit here; two passes give 1.
        let s = Stat::from_values(&[1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0]);
        assert_eq!((s.mean, s.std, s.n), (1e9 + 2.0, 1.0, 3));
        // The mean adds in seed order: (0.1 + 0.2) + 0.3, then divides.
        let s = Stat::from_values(&[0.1, 0.2, 0.3]);
        assert_eq!(s.mean.to_bits(), (((0.1f64 + 0.2) + 0.3) / 3.0).to_bits());
        assert_eq!(Stat::from_values(&[]).n, 0);
    }

    #[test]
    fn mixed_configs_duplicate_seeds_and_diverged_seeds() {
        let r = vec![rec("a", 0, "h", 4.0, 4.0), rec("a", 1, "other", 5.0, 5.0)];
        let e = aggregate(&r, &spec(Which::Final)).unwrap_err().to_string();
        assert!(e.contains("2 different training configs"), "{e}");
        let r = vec![rec("a", 0, "h", 4.0, 4.0), rec("a", 0, "h", 5.0, 5.0)];
        let e = aggregate(&r, &spec(Which::Final)).unwrap_err().to_string();
        assert!(e.contains("two records for seed 0"), "{e}");
        let mut bad = rec("a", 1, "h", 0.0, 0.0);
        bad.diverged = Some(CellDivergence {
            stage: "training".into(),
            epoch: Some(3),
            step: Some(7),
            reason: "training loss is NaN".into(),
        });
        let s = aggregate(&[rec("a", 0, "h", 4.0, 4.0), bad], &spec(Which::Final)).unwrap();
        // The diverged seed's 0% error is never averaged in.
        assert_eq!(s[0].metrics["clean.test_error"].values, vec![4.0]);
        assert_eq!(s[0].diverged.len(), 1);
        assert_eq!(s[0].diverged[0].0, 1);
    }

    #[test]
    fn seeds_of_different_datasets_are_never_averaged() {
        // Same experiment and training hash, but seed 1 saw another dataset (fingerprint).
        let mut other = rec("a", 1, "h", 5.0, 5.0);
        other.dataset.fingerprint = "fp-other".into();
        let r = vec![
            rec("a", 0, "h", 4.0, 4.0),
            other,
            rec("b", 0, "g", 3.0, 3.0),
        ];
        let e = aggregate(&r, &spec(Which::Final)).unwrap_err().to_string();
        assert!(
            e.contains("experiment `a` has records of 2 different datasets"),
            "{e}"
        );
        // The same fingerprint in another experiment is no conflict.
        let mut b = rec("b", 0, "g", 3.0, 3.0);
        b.dataset.fingerprint = "fp-other".into();
        let s = aggregate(&[rec("a", 0, "h", 4.0, 4.0), b], &spec(Which::Final)).unwrap();
        assert_eq!(s[1].dataset_fingerprint, "fp-other");
    }
}
