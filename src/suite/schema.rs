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
    /// Metric name: `test_error`, `test_nll`, `top1_acc` or `top5_acc`.
    pub name: String,
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
