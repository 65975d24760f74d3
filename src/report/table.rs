//! The table in the paper's shape behind every report format, and its CSV/Parquet export via
//! polars.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::results::MetricDiff;
use crate::results::outcome::{OutcomeRow, SuiteOutcome};
use crate::results::record::BEST_SUFFIX;
use crate::suite::schema::{Layout, MetricSpec};

/// The table in the paper's shape, as sections of labelled rows of cells.
pub(crate) fn grid(outcome: &SuiteOutcome) -> Vec<Section> {
    let mut groups: Vec<Option<String>> = Vec::new();
    for row in &outcome.rows {
        if !groups.contains(&row.group) {
            groups.push(row.group.clone());
        }
    }
    let cell = |row: &OutcomeRow, m: &MetricSpec| -> GridCell {
        let base = m.name.strip_suffix(BEST_SUFFIX).unwrap_or(&m.name);
        let paper = row.paper.get(base);
        let diff = row.diffs.iter().find(|d| d.metric == m.name).cloned();
        let delta_paper = match (paper.and_then(|p| p.mean), &diff) {
            (Some(p), Some(d)) => d.current.as_ref().map(|c| c.mean - p),
            _ => None,
        };
        GridCell {
            paper: paper.map(|p| p.raw.clone()),
            diff,
            delta_paper,
        }
    };
    let method = |row: &OutcomeRow| match (&row.quoted, &row.row) {
        (Some(q), _) => format!("{} (quoted: {q})", row.method),
        (None, Some(r)) => r.clone(),
        (None, None) => row.method.clone(),
    };
    if outcome.layout == Layout::Grid {
        return grid_sections(outcome, &groups, &cell);
    }
    groups
        .into_iter()
        .map(|g| {
            let rows: Vec<&OutcomeRow> = outcome.rows.iter().filter(|r| r.group == g).collect();
            match outcome.layout {
                Layout::ExperimentsAsRows | Layout::Grid => Section {
                    title: g,
                    labels: vec!["Architecture".into(), "Method".into()],
                    columns: outcome.metrics.iter().map(metric_header).collect(),
                    rows: rows
                        .iter()
                        .map(|r| GridRow {
                            labels: vec![r.architecture.clone(), method(r)],
                            cells: outcome.metrics.iter().map(|m| cell(r, m)).collect(),
                        })
                        .collect(),
                },
                Layout::MetricsAsRows => Section {
                    title: g,
                    labels: vec!["Evaluation".into()],
                    columns: rows
                        .iter()
                        .map(|r| format!("{} ({})", method(r), r.architecture))
                        .collect(),
                    rows: outcome
                        .metrics
                        .iter()
                        .map(|m| GridRow {
                            labels: vec![metric_header(m)],
                            cells: rows.iter().map(|r| cell(r, m)).collect(),
                        })
                        .collect(),
                },
            }
        })
        .collect()
}

/// One section per (group, metric): rows by `row`, columns by `column` (else `method`).
fn grid_sections(
    outcome: &SuiteOutcome,
    groups: &[Option<String>],
    cell: &dyn Fn(&OutcomeRow, &MetricSpec) -> GridCell,
) -> Vec<Section> {
    let mut out = Vec::new();
    for g in groups {
        let rows: Vec<&OutcomeRow> = outcome.rows.iter().filter(|r| &r.group == g).collect();
        let col_of = |r: &OutcomeRow| r.column.clone().unwrap_or_else(|| r.method.clone());
        let row_of = |r: &OutcomeRow| r.row.clone().unwrap_or_else(|| r.experiment.clone());
        let mut columns: Vec<String> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        for r in &rows {
            if !columns.contains(&col_of(r)) {
                columns.push(col_of(r));
            }
            if !labels.contains(&row_of(r)) {
                labels.push(row_of(r));
            }
        }
        for m in &outcome.metrics {
            let title = match g {
                Some(g) => format!("{g}: {}", metric_header(m)),
                None => metric_header(m),
            };
            out.push(Section {
                title: Some(title),
                labels: vec![outcome.grid_rows.clone().unwrap_or_default()],
                columns: columns.clone(),
                rows: labels
                    .iter()
                    .map(|l| GridRow {
                        labels: vec![l.clone()],
                        cells: columns
                            .iter()
                            .map(|c| {
                                rows.iter()
                                    .find(|r| &row_of(r) == l && &col_of(r) == c)
                                    .map(|r| cell(r, m))
                                    .unwrap_or(GridCell {
                                        paper: None,
                                        diff: None,
                                        delta_paper: None,
                                    })
                            })
                            .collect(),
                    })
                    .collect(),
            });
        }
    }
    out
}

fn metric_header(m: &MetricSpec) -> String {
    if m.unit.is_empty() {
        m.display().to_string()
    } else {
        format!("{} ({})", m.display(), m.unit)
    }
}

/// One sub-table of the report.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    /// Sub-table title (the experiments' group).
    pub(crate) title: Option<String>,
    /// Headers of the label columns.
    pub(crate) labels: Vec<String>,
    /// Headers of the column groups (each: paper | baseline | this run | Δ | status).
    pub(crate) columns: Vec<String>,
    /// Rows.
    pub(crate) rows: Vec<GridRow>,
}

/// One row of a section.
#[derive(Debug, Clone)]
pub(crate) struct GridRow {
    /// Values of the label columns.
    pub(crate) labels: Vec<String>,
    /// One cell per column group.
    pub(crate) cells: Vec<GridCell>,
}

/// One compared value.
#[derive(Debug, Clone)]
pub(crate) struct GridCell {
    /// The paper's printed value.
    pub(crate) paper: Option<String>,
    /// The comparison (None: not run).
    pub(crate) diff: Option<MetricDiff>,
    /// This run's mean minus the paper's printed mean.
    pub(crate) delta_paper: Option<f64>,
}

/// The long-format comparison table (one line per experiment × metric) as CSV and Parquet bytes.
pub(crate) fn tables(report: &SuiteOutcome) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut df = frame(report)?;
    let err = |e: PolarsError| Error::Other(format!("report table: {e}"));
    let mut csv = Vec::new();
    CsvWriter::new(&mut csv).finish(&mut df).map_err(err)?;
    let mut parquet = Vec::new();
    ParquetWriter::new(&mut parquet)
        .finish(&mut df)
        .map_err(err)?;
    Ok((csv, parquet))
}

fn frame(report: &SuiteOutcome) -> Result<DataFrame> {
    let mut cols: BTreeMap<&str, Vec<Option<String>>> = BTreeMap::new();
    let mut nums: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
    let mut ns: Vec<Option<u32>> = Vec::new();
    for row in &report.rows {
        for m in &report.metrics {
            let d = row.diffs.iter().find(|d| d.metric == m.name);
            let p = row
                .paper
                .get(m.name.strip_suffix(BEST_SUFFIX).unwrap_or(&m.name));
            let push_s = |cols: &mut BTreeMap<&str, Vec<Option<String>>>, k, v: Option<String>| {
                cols.entry(k).or_default().push(v)
            };
            push_s(&mut cols, "experiment", Some(row.experiment.clone()));
            push_s(&mut cols, "group", row.group.clone());
            push_s(&mut cols, "architecture", Some(row.architecture.clone()));
            push_s(&mut cols, "method", Some(row.method.clone()));
            push_s(&mut cols, "metric", Some(m.name.clone()));
            push_s(&mut cols, "paper", p.map(|p| p.raw.clone()));
            push_s(
                &mut cols,
                "status",
                d.map(|d| format!("{:?}", d.status).to_lowercase()),
            );
            push_s(&mut cols, "training_hash", row.training_hash.clone());
            let mut push_n = |k, v: Option<f64>| nums.entry(k).or_default().push(v);
            push_n("paper_mean", p.and_then(|p| p.mean));
            push_n("paper_std", p.and_then(|p| p.std));
            push_n("mean", d.and_then(|d| d.current.as_ref().map(|s| s.mean)));
            push_n("std", d.and_then(|d| d.current.as_ref().map(|s| s.std)));
            push_n(
                "baseline_mean",
                d.and_then(|d| d.baseline.as_ref().map(|s| s.mean)),
            );
            push_n(
                "baseline_std",
                d.and_then(|d| d.baseline.as_ref().map(|s| s.std)),
            );
            push_n("delta", d.and_then(|d| d.delta));
            push_n(
                "delta_paper",
                p.and_then(|p| p.mean)
                    .zip(d.and_then(|d| d.current.as_ref().map(|s| s.mean)))
                    .map(|(p, c)| c - p),
            );
            push_n("p_value", d.and_then(|d| d.p_value));
            ns.push(d.and_then(|d| d.current.as_ref().map(|s| s.n as u32)));
        }
    }
    let order = [
        "experiment",
        "group",
        "architecture",
        "method",
        "metric",
        "paper",
    ];
    let mut columns: Vec<Column> = order
        .iter()
        .map(|k| Column::new((*k).into(), cols[k].clone()))
        .collect();
    for k in ["paper_mean", "paper_std", "mean", "std"] {
        columns.push(Column::new(k.into(), nums[k].clone()));
    }
    columns.push(Column::new("n".into(), ns));
    for k in [
        "baseline_mean",
        "baseline_std",
        "delta",
        "delta_paper",
        "p_value",
    ] {
        columns.push(Column::new(k.into(), nums[k].clone()));
    }
    columns.push(Column::new("status".into(), cols["status"].clone()));
    columns.push(Column::new(
        "training_hash".into(),
        cols["training_hash"].clone(),
    ));
    DataFrame::new(report.rows.len() * report.metrics.len(), columns)
        .map_err(|e| Error::Other(format!("report table: {e}")))
}
