//! The comparison table behind every report format, and its CSV/Parquet export via polars.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::experiment::device::is_bit_exact;
use crate::results::baseline::Baseline;
use crate::results::diff::require_identical;
use crate::results::record::BEST_SUFFIX;
use crate::results::record::{CodeVersion, ResultRecord};
use crate::results::{MetricDiff, Status, aggregate, compare};
use crate::suite::LoadedSuite;
use crate::suite::paper::{PaperValue, parse};
use crate::suite::schema::{Layout, MetricSpec, Which, expand_metrics};
use crate::train::EpochRecord;

/// One row: an experiment (or a quoted row) with its paper values and verdicts.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    /// Experiment id.
    pub experiment: String,
    /// Sub-table.
    pub group: Option<String>,
    /// Architecture as printed.
    pub architecture: String,
    /// Method as printed.
    pub method: String,
    /// Source of a quoted row (not run).
    pub quoted: Option<String>,
    /// Row label in the grid layout.
    pub row: Option<String>,
    /// Column label in the grid layout.
    pub column: Option<String>,
    /// The paper's values by metric.
    pub paper: BTreeMap<String, PaperValue>,
    /// One entry per suite metric (empty for quoted rows or rows with no results).
    pub diffs: Vec<MetricDiff>,
    /// Training hash of the run.
    pub training_hash: Option<String>,
}

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Suite id.
    pub suite: String,
    /// Suite title.
    pub title: String,
    /// arXiv id and version.
    pub arxiv: String,
    /// Table number.
    pub table: String,
    /// The paper's caption.
    pub caption: String,
    /// Profile name.
    pub profile: String,
    /// Profile description.
    pub profile_description: String,
    /// Compared metrics (concrete keys; `*` patterns expanded).
    pub metrics: Vec<MetricSpec>,
    /// Table layout.
    pub layout: Layout,
    /// Header of the grid layout's row labels.
    pub grid_rows: Option<String>,
    /// Table rows in suite order.
    pub rows: Vec<ReportRow>,
    /// Suite notes.
    pub notes: Vec<String>,
    /// Code versions seen in the records.
    pub code: Vec<CodeVersion>,
    /// Devices seen in the records.
    pub devices: Vec<String>,
    /// Sum of wall-clock seconds over records.
    pub wall_seconds: f64,
    /// Dataset name → fingerprints.
    pub datasets: BTreeMap<String, Vec<String>>,
    /// Baseline provenance, if any.
    pub baseline: Option<(String, CodeVersion)>,
    /// Device the baseline was blessed on.
    pub baseline_device: Option<String>,
    /// Earlier runs of this suite profile (oldest first, this run last), when a history is kept.
    pub history: Vec<crate::results::history::HistoryEntry>,
    /// Learning curves: (experiment, seed, epochs).
    pub curves: Vec<(String, u64, Vec<EpochRecord>)>,
    /// Named arrays of the evaluations (spectra): (experiment, seed, `<eval id>.<name>` → values).
    pub arrays: Vec<(String, u64, BTreeMap<String, Vec<f64>>)>,
}

impl Report {
    /// Number of metric regressions.
    pub fn regressions(&self) -> usize {
        self.count(Status::Regression)
    }

    /// Experiments with a metric that has a baseline but could not be compared (≠).
    pub fn not_comparable(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.diffs.iter().any(|d| d.status == Status::NotComparable))
            .map(|r| r.experiment.clone())
            .collect()
    }

    /// Number of experiments with a diverged seed.
    pub fn diverged(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.diffs.iter().any(|d| d.status == Status::Diverged))
            .count()
    }

    fn count(&self, st: Status) -> usize {
        self.rows
            .iter()
            .flat_map(|r| &r.diffs)
            .filter(|d| d.status == st)
            .count()
    }

    /// The table in the paper's shape, as sections of labelled rows of cells.
    pub fn grid(&self) -> Vec<Section> {
        let mut groups: Vec<Option<String>> = Vec::new();
        for row in &self.rows {
            if !groups.contains(&row.group) {
                groups.push(row.group.clone());
            }
        }
        let cell = |row: &ReportRow, m: &MetricSpec| -> GridCell {
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
        let method = |row: &ReportRow| match (&row.quoted, &row.row) {
            (Some(q), _) => format!("{} (quoted: {q})", row.method),
            (None, Some(r)) => r.clone(),
            (None, None) => row.method.clone(),
        };
        if self.layout == Layout::Grid {
            return self.grid_sections(&groups, &cell);
        }
        groups
            .into_iter()
            .map(|g| {
                let rows: Vec<&ReportRow> = self.rows.iter().filter(|r| r.group == g).collect();
                match self.layout {
                    Layout::ExperimentsAsRows | Layout::Grid => Section {
                        title: g,
                        labels: vec!["Architecture".into(), "Method".into()],
                        columns: self.metrics.iter().map(metric_header).collect(),
                        rows: rows
                            .iter()
                            .map(|r| GridRow {
                                labels: vec![r.architecture.clone(), method(r)],
                                cells: self.metrics.iter().map(|m| cell(r, m)).collect(),
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
                        rows: self
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
}

impl Report {
    /// One section per (group, metric): rows by `row`, columns by `column` (else `method`).
    fn grid_sections(
        &self,
        groups: &[Option<String>],
        cell: &dyn Fn(&ReportRow, &MetricSpec) -> GridCell,
    ) -> Vec<Section> {
        let mut out = Vec::new();
        for g in groups {
            let rows: Vec<&ReportRow> = self.rows.iter().filter(|r| &r.group == g).collect();
            let col_of = |r: &ReportRow| r.column.clone().unwrap_or_else(|| r.method.clone());
            let row_of = |r: &ReportRow| r.row.clone().unwrap_or_else(|| r.experiment.clone());
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
            for m in &self.metrics {
                let title = match g {
                    Some(g) => format!("{g}: {}", metric_header(m)),
                    None => metric_header(m),
                };
                out.push(Section {
                    title: Some(title),
                    labels: vec![self.grid_rows.clone().unwrap_or_default()],
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
pub struct Section {
    /// Sub-table title (the experiments' group).
    pub title: Option<String>,
    /// Headers of the label columns.
    pub labels: Vec<String>,
    /// Headers of the column groups (each: paper | baseline | this run | Δ | status).
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<GridRow>,
}

/// One row of a section.
#[derive(Debug, Clone)]
pub struct GridRow {
    /// Values of the label columns.
    pub labels: Vec<String>,
    /// One cell per column group.
    pub cells: Vec<GridCell>,
}

/// One compared value.
#[derive(Debug, Clone)]
pub struct GridCell {
    /// The paper's printed value.
    pub paper: Option<String>,
    /// The comparison (None: not run).
    pub diff: Option<MetricDiff>,
    /// This run's mean minus the paper's printed mean.
    pub delta_paper: Option<f64>,
}

/// Builds the report of `records` (one suite/profile) against `baseline`.
pub fn build(
    ls: &LoadedSuite,
    profile: &str,
    records: &[ResultRecord],
    baseline: Option<&Baseline>,
) -> Result<Report> {
    let s = &ls.suite;
    // Metric keys in the order the records' evaluations produced them.
    let keys = crate::results::record::metric_keys(records);
    let mut metrics = expand_metrics(&s.metrics_for(profile), &keys);
    // The paper does not say whether it reports the final or the best epoch: every clean
    // metric read at the final epoch is shown with its best-epoch value next to it.
    let mut with_best = Vec::new();
    for m in metrics {
        let companion =
            (m.from == Which::Final && keys.contains(&m.name) && m.name.starts_with("clean."))
                .then(|| MetricSpec {
                    name: format!("{}{BEST_SUFFIX}", m.name),
                    label: Some(format!("{} (best epoch)", m.display())),
                    ..m.clone()
                });
        with_best.push(m);
        with_best.extend(companion);
    }
    metrics = with_best;
    let summaries = aggregate(records, &metrics)?;
    let exact = baseline.is_some_and(|b| is_bit_exact(&b.device))
        && records.iter().all(|r| is_bit_exact(&r.environment.device));
    let mut rows = Vec::new();
    for e in &s.experiments {
        let paper = e.paper.iter().map(|(k, v)| (k.clone(), parse(v))).collect();
        let summary = summaries.iter().find(|x| x.experiment == e.id);
        let mut diffs = match summary {
            Some(cur) => compare(
                cur,
                baseline.and_then(|b| b.experiments.get(&e.id)),
                &metrics,
                s.significance,
            ),
            None => vec![],
        };
        if exact {
            diffs.iter_mut().for_each(require_identical);
        }
        rows.push(ReportRow {
            experiment: e.id.clone(),
            group: e.group.clone(),
            architecture: e.architecture.clone(),
            method: e.method.clone(),
            quoted: e.quoted.clone(),
            row: e.row.clone(),
            column: e.column.clone(),
            paper,
            diffs,
            training_hash: summary.map(|x| x.training_hash.clone()),
        });
    }
    let mut code: Vec<CodeVersion> = Vec::new();
    let mut devices: Vec<String> = Vec::new();
    let mut datasets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records {
        if !code.contains(&r.code) {
            code.push(r.code.clone());
        }
        if !devices.contains(&r.environment.device) {
            devices.push(r.environment.device.clone());
        }
        let f = datasets.entry(r.dataset.name.clone()).or_default();
        if !f.contains(&r.dataset.fingerprint) {
            f.push(r.dataset.fingerprint.clone());
        }
    }
    Ok(Report {
        suite: s.id.clone(),
        title: s.title.clone(),
        arxiv: s.paper.arxiv.clone(),
        table: s.paper.table.clone(),
        caption: s.paper.caption.clone(),
        profile: profile.to_string(),
        profile_description: s
            .profiles
            .get(profile)
            .map(|p| p.description.clone())
            .unwrap_or_default(),
        metrics,
        layout: s.layout,
        grid_rows: s.grid_rows.clone(),
        rows,
        notes: s.notes.clone(),
        code,
        devices,
        wall_seconds: records.iter().map(|r| r.environment.wall_seconds).sum(),
        datasets,
        baseline: baseline.map(|b| (b.blessed_at.clone(), b.code.clone())),
        baseline_device: baseline.map(|b| b.device.clone()),
        history: Vec::new(),
        curves: records
            .iter()
            .map(|r| (r.experiment.clone(), r.seed, r.curves.clone()))
            .collect(),
        arrays: records
            .iter()
            .filter(|r| !r.arrays.is_empty())
            .map(|r| (r.experiment.clone(), r.seed, r.arrays.clone()))
            .collect(),
    })
}

/// Writes the long-format comparison table (one line per experiment × metric).
pub fn write_tables(report: &Report, csv: &Path, parquet: &Path) -> Result<()> {
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
    let mut df = DataFrame::new(report.rows.len() * report.metrics.len(), columns)
        .map_err(|e| Error::Other(format!("report table: {e}")))?;
    let write =
        |path: &Path, f: &mut dyn FnMut(&mut std::fs::File) -> PolarsResult<()>| -> Result<()> {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
            let mut file = tmp.reopen().map_err(|e| Error::io(path, e))?;
            f(&mut file).map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
            tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
            Ok(())
        };
    write(csv, &mut |f| CsvWriter::new(f).finish(&mut df))?;
    write(parquet, &mut |f| {
        ParquetWriter::new(f).finish(&mut df).map(|_| ())
    })?;
    Ok(())
}
