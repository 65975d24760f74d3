//! Per-experiment mean ± std over seeds, computed with polars.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::record::ResultRecord;
use crate::error::{Error, Result};
use crate::suite::schema::{MetricSpec, Which};

/// Mean, sample standard deviation and count of one metric over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for a single seed.
    pub std: f64,
    /// Number of seeds.
    pub n: usize,
    /// The per-seed values, by ascending seed.
    pub values: Vec<f64>,
}

/// One experiment aggregated over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentSummary {
    /// Experiment id.
    pub experiment: String,
    /// Config hash shared by all its records.
    pub config_hash: String,
    /// Dataset fingerprint shared by all its records.
    pub dataset_fingerprint: String,
    /// Seeds aggregated.
    pub seeds: Vec<u64>,
    /// Metric name → statistics.
    pub metrics: BTreeMap<String, Stat>,
}

fn polars_err(e: PolarsError) -> Error {
    Error::Other(format!("aggregation failed: {e}"))
}

/// Aggregates `records` per experiment for the suite's `metrics`.
pub fn aggregate(
    records: &[ResultRecord],
    metrics: &[MetricSpec],
) -> Result<Vec<ExperimentSummary>> {
    if records.is_empty() {
        return Ok(vec![]);
    }
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
    for m in metrics {
        let vals: Vec<Option<f64>> = records
            .iter()
            .map(|r| r.metric(&m.name, m.from == Which::Best))
            .collect();
        columns.push(Column::new(m.name.as_str().into(), vals));
    }
    let df = DataFrame::new(records.len(), columns).map_err(polars_err)?;
    let mut aggs = vec![col("seed").count().alias("n")];
    for m in metrics {
        aggs.push(
            col(m.name.as_str())
                .mean()
                .alias(format!("{}__mean", m.name)),
        );
        aggs.push(
            col(m.name.as_str())
                .std(1)
                .alias(format!("{}__std", m.name)),
        );
    }
    let out = df
        .lazy()
        .group_by([col("experiment")])
        .agg(aggs)
        .sort(["experiment"], Default::default())
        .collect()
        .map_err(polars_err)?;
    let ids = out
        .column("experiment")
        .map_err(polars_err)?
        .str()
        .map_err(polars_err)?
        .clone();
    let mut summaries = Vec::new();
    for (row, id) in ids.iter().enumerate() {
        let id = id.unwrap_or_default().to_string();
        let mut recs: Vec<&ResultRecord> = records.iter().filter(|r| r.experiment == id).collect();
        recs.sort_by_key(|r| r.seed);
        let mut stats = BTreeMap::new();
        for m in metrics {
            let get = |suffix: &str| -> Result<Option<f64>> {
                let c = out
                    .column(&format!("{}__{suffix}", m.name))
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
        }
        let hashes: std::collections::BTreeSet<&str> =
            recs.iter().map(|r| r.config_hash.as_str()).collect();
        if hashes.len() > 1 {
            return Err(Error::Other(format!(
                "experiment `{id}` has records of {} different configs; rerun with --force",
                hashes.len()
            )));
        }
        summaries.push(ExperimentSummary {
            experiment: id,
            config_hash: recs[0].config_hash.clone(),
            dataset_fingerprint: recs[0].dataset.fingerprint.clone(),
            seeds: recs.iter().map(|r| r.seed).collect(),
            metrics: stats,
        });
    }
    Ok(summaries)
}
