//! The YAML suite format: one file per paper table.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A suite: a paper table, its printed numbers, and how to rerun it under several profiles.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Identifier used on the command line (`table1`); must match the file name.
    pub id: String,
    /// Human title of the table.
    pub title: String,
    /// Which paper table this reproduces.
    pub paper: PaperRef,
    /// Metrics compared, in column order.
    pub metrics: Vec<MetricSpec>,
    /// Significance level of the Welch t-test that must agree before a regression is declared.
    #[serde(default = "default_significance")]
    pub significance: f64,
    /// Experiment config shared by every row (see `ExperimentConfig`).
    pub defaults: serde_json::Value,
    /// The table's rows.
    pub experiments: Vec<ExperimentSpec>,
    /// Named profiles (`paper`, `paper-code`, `smoke`, ...).
    pub profiles: BTreeMap<String, ProfileSpec>,
    /// Notes shown in the report (paper-vs-code differences, uncertainties).
    #[serde(default)]
    pub notes: Vec<String>,
    /// How the report lays the table out (the paper's shape).
    #[serde(default)]
    pub layout: Layout,
    /// Header of the row-label column in the `grid` layout (`α`, `S`).
    #[serde(default)]
    pub grid_rows: Option<String>,
    /// Figures of the paper the report draws from this suite's logs and evaluations.
    #[serde(default)]
    pub figures: Vec<FigureSpec>,
}

/// A figure of the paper, drawn in the report (HTML pictures, Markdown numbers).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FigureSpec {
    /// Title as the paper numbers it (`Figure 6: train-set BCE loss, CIFAR-10 PreActResNet18`).
    pub title: String,
    /// What is drawn.
    pub kind: FigureKind,
    /// Experiment ids drawn, in order (sweep rows by their full id); empty: every row.
    #[serde(default)]
    pub experiments: Vec<String>,
    /// `train_loss`: the order the paper states for the final training loss, highest first
    /// (experiment ids); the report says whether this run keeps it.
    #[serde(default)]
    pub order: Vec<String>,
    /// `embedding` / `decision`: the id of the `embedding` / `decision_grid` evaluation drawn.
    #[serde(default)]
    pub evaluation: Option<String>,
}

/// Kinds of figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FigureKind {
    /// Training loss by epoch, one curve per experiment (Figures 6 and 7).
    TrainLoss,
    /// Scatter plots of a 2-D representation, one panel per experiment, a colour per class
    /// (Figure 5).
    Embedding,
    /// A 2-D input plane's decision regions with the test points, and the plane at a 2-D
    /// bottleneck, one pair of panels per experiment (Figures 1 and 2; a `decision_grid`
    /// evaluation).
    Decision,
}

/// Report layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One row per experiment, metrics as column groups (Tables 1–3, 7).
    #[default]
    ExperimentsAsRows,
    /// One row per metric, experiments as column groups (Tables 4 and 9: rows are deformations).
    MetricsAsRows,
    /// One table per metric with rows by `row` and columns by `column` (Table 6: rows α,
    /// columns Input | Manifold; Table 5: rows S, columns CIFAR-10 | CIFAR-100).
    Grid,
}

fn default_significance() -> f64 {
    0.05
}

/// Citation of the table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaperRef {
    /// arXiv id with version, e.g. `1806.05236v7`.
    pub arxiv: String,
    /// Table number as printed (`1`, `2`, ...).
    pub table: String,
    /// The caption, verbatim.
    pub caption: String,
}

/// Whether lower or higher values are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Lower is better (error, NLL).
    Lower,
    /// Higher is better (accuracy).
    Higher,
}

/// Which epoch's value a metric takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    /// After the last epoch.
    #[default]
    Final,
    /// At the epoch with the lowest test error.
    Best,
}

/// One compared metric.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// Metric key `<evaluation id>.<metric>`, e.g. `clean.test_error`, `fgsm_0.03.accuracy`;
    /// `*` matches any run of characters (`fgsm_*.accuracy`: one column per ε evaluated).
    pub name: String,
    /// Label shown in reports instead of the key (e.g. `Rotation U(−20°,20°)`).
    #[serde(default)]
    pub label: Option<String>,
    /// Unit shown in reports (`%` or empty).
    #[serde(default)]
    pub unit: String,
    /// Direction of improvement.
    pub better: Better,
    /// Largest worsening against the baseline, in the metric's units, that is not a regression.
    pub tolerance: f64,
    /// Final-epoch or best-epoch value (the paper does not say which it reports).
    #[serde(default)]
    pub from: Which,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Row identifier, unique in the suite.
    pub id: String,
    /// Sub-table or group label, e.g. `(a) CIFAR-10`.
    #[serde(default)]
    pub group: Option<String>,
    /// Architecture as printed in the paper.
    pub architecture: String,
    /// Method as printed in the paper.
    pub method: String,
    /// Deep-merged over `defaults`.
    #[serde(default)]
    pub overrides: serde_json::Value,
    /// Extra overrides per profile, merged after the profile's own.
    #[serde(default)]
    pub profile_overrides: BTreeMap<String, serde_json::Value>,
    /// The paper's printed values by metric name, verbatim (`"4.83 ± 0.066"`, `"NA"`).
    #[serde(default)]
    pub paper: BTreeMap<String, String>,
    /// Set for rows the paper quotes from other papers (†, ‡): shown, never run.
    #[serde(default)]
    pub quoted: Option<String>,
    /// Row label in the `grid` layout (sweeps set it from their labels).
    #[serde(default)]
    pub row: Option<String>,
    /// Column label in the `grid` layout (default: `method`).
    #[serde(default)]
    pub column: Option<String>,
    /// Expands this row into one row per value (see `SweepSpec`).
    #[serde(default)]
    pub sweep: Option<SweepSpec>,
    /// Index of the row in the file this one came from (set by sweep expansion).
    #[serde(skip)]
    #[schemars(skip)]
    pub source: Option<usize>,
}

/// One row per value: `values[i]` is written at `path` into the row's overrides.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Dotted path in the experiment config (`regularizer.alpha`, `regularizer`).
    pub path: String,
    /// The values, one generated row each.
    pub values: Vec<serde_json::Value>,
    /// Row labels: one per value, or a template where `{}` is the value (default `{}`).
    #[serde(default)]
    pub labels: Option<Labels>,
    /// Id suffixes, one per value (default: from the value, e.g. `0.5`, `0-1-2`).
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// The paper's printed values by metric, one per value (`"NA"` where none).
    #[serde(default)]
    pub paper: BTreeMap<String, Vec<String>>,
}

/// Sweep row labels.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Labels {
    /// `α = {}`: `{}` becomes the value.
    Template(String),
    /// One label per value.
    Each(Vec<String>),
}

/// A named way to run the suite.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// What this profile is for.
    pub description: String,
    /// Seeds run for every experiment.
    pub seeds: Vec<u64>,
    /// Deep-merged over every experiment's config.
    #[serde(default)]
    pub overrides: serde_json::Value,
    /// Per-metric tolerances replacing the suite's for this profile (e.g. looser for `smoke`).
    #[serde(default)]
    pub tolerances: BTreeMap<String, f64>,
}

impl MetricSpec {
    /// Whether `key` is this metric (or matches its `*` pattern).
    pub fn matches(&self, key: &str) -> bool {
        glob_match(&self.name, key)
    }

    /// The label shown in reports.
    pub fn display(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }
}

/// `*`-only glob matching.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The concrete metrics of `specs` among `keys` (in `keys` order for patterns); each keeps its
/// spec's settings, and a pattern's label is the key itself.
pub fn expand_metrics(specs: &[MetricSpec], keys: &[String]) -> Vec<MetricSpec> {
    let mut out: Vec<MetricSpec> = Vec::new();
    for m in specs {
        if m.name.contains('*') {
            for k in keys.iter().filter(|k| m.matches(k)) {
                if !out.iter().any(|x| &x.name == k) {
                    out.push(MetricSpec {
                        name: k.clone(),
                        label: None,
                        ..m.clone()
                    });
                }
            }
        } else if !out.iter().any(|x| x.name == m.name) {
            out.push(m.clone());
        }
    }
    out
}

impl Suite {
    /// The suite's metrics with `profile`'s tolerances applied.
    pub fn metrics_for(&self, profile: &str) -> Vec<MetricSpec> {
        let t = self.profiles.get(profile).map(|p| &p.tolerances);
        self.metrics
            .iter()
            .map(|m| MetricSpec {
                tolerance: t
                    .and_then(|t| t.get(&m.name))
                    .copied()
                    .unwrap_or(m.tolerance),
                ..m.clone()
            })
            .collect()
    }
}
