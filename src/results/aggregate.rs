//! Per-experiment mean ± sample std over seeds, computed with polars; diverged seeds are
//! listed, never averaged.

use std::collections::BTreeMap;

use polars::prelude::*;
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
    /// Mean, sample std (n − 1; 0 for one value) and count of `values` (tests build
    /// expected aggregates with it; `aggregate` computes the same with polars).
    #[cfg(test)]
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

fn polars_err(e: PolarsError) -> Error {
    Error::Other(format!("aggregation failed: {e}"))
}

/// Aggregates `records` per experiment for `metrics` (concrete keys).
///
/// Records of one experiment must share a training hash and a dataset fingerprint.
pub(crate) fn aggregate(
    records: &[ResultRecord],
    metrics: &[MetricSpec],
) -> Result<Vec<ExperimentSummary>> {
    if records.is_empty() {
        return Ok(vec![]);
    }
    let df = metric_frame(records, metrics)?;
    let out = grouped_stats(df, metrics.len())?;
    let ids = out
        .column("experiment")
        .map_err(polars_err)?
        .str()
        .map_err(polars_err)?
        .clone();
    let mut summaries = Vec::new();
    for (row, id) in ids.iter().enumerate() {
        let id = id.unwrap_or_default().to_string();
        let recs = experiment_records(records, &id)?;
        let (stats, sources) = metric_stats(&out, row, &recs, metrics)?;
        summaries.push(ExperimentSummary {
            experiment: id,
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

/// One naming scheme shared by the frame and the grouped stats, which look columns up by it.
fn col_name(i: usize) -> String {
    format!("m{i}")
}

/// One row per record so polars can group by experiment.
fn metric_frame(records: &[ResultRecord], metrics: &[MetricSpec]) -> Result<DataFrame> {
    let mut columns: Vec<Column> = vec![
        Column::new(
            "experiment".into(),
            records
                .iter()
                .map(|r| r.experiment.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "seed".into(),
            records.iter().map(|r| r.seed).collect::<Vec<_>>(),
        ),
    ];
    for (i, m) in metrics.iter().enumerate() {
        let vals: Vec<Option<f64>> = records
            .iter()
            .map(|r| r.metric(&m.name, m.from == Which::Best))
            .collect();
        columns.push(Column::new(col_name(i).into(), vals));
    }
    DataFrame::new(records.len(), columns).map_err(polars_err)
}

/// Sorted by experiment so summaries come out in a stable order.
fn grouped_stats(df: DataFrame, n_metrics: usize) -> Result<DataFrame> {
    let mut aggs = vec![col("seed").count().alias("n")];
    for i in 0..n_metrics {
        let c = col_name(i);
        aggs.push(col(c.as_str()).mean().alias(format!("{c}__mean")));
        aggs.push(col(c.as_str()).std(1).alias(format!("{c}__std")));
    }
    df.lazy()
        .group_by([col("experiment")])
        .agg(aggs)
        .sort(["experiment"], Default::default())
        .collect()
        .map_err(polars_err)
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

/// Mean and std come from polars; the per-seed values are kept so reports can show each seed.
fn metric_stats(
    out: &DataFrame,
    row: usize,
    recs: &[&ResultRecord],
    metrics: &[MetricSpec],
) -> Result<(BTreeMap<String, Stat>, BTreeMap<String, String>)> {
    let mut stats = BTreeMap::new();
    let mut sources = BTreeMap::new();
    for (i, m) in metrics.iter().enumerate() {
        let get = |suffix: &str| -> Result<Option<f64>> {
            let c = out
                .column(&format!("{}__{suffix}", col_name(i)))
                .map_err(polars_err)?;
            Ok(c.f64().map_err(polars_err)?.get(row))
        };
        let values: Vec<f64> = recs
            .iter()
            .filter_map(|r| r.metric(&m.name, m.from == Which::Best))
            .collect();
        if let Some(mean) = get("mean")? {
            stats.insert(
                m.name.clone(),
                Stat {
                    mean,
                    std: get("std")?.unwrap_or(0.0),
                    n: values.len(),
                    values,
                },
            );
        }
        if let Some(h) = recs.iter().find_map(|r| r.metric_sources.get(&m.name)) {
            sources.insert(m.name.clone(), h.clone());
        }
    }
    Ok((stats, sources))
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
