//! A new method beside a suite's blessed baselines (what `compare` found): per row, mean ± std
//! over seeds, Δ against each baseline method, a Welch test and a verdict (better / worse / no
//! significant difference).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::aggregate::{Stat, aggregate};
use super::baseline::Baseline;
use super::diff::welch_p_worse;
use super::record::{ResultRecord, metric_keys};
use crate::error::Result;
use crate::suite::schema::{Better, MetricSpec, expand_metrics};
use crate::suite::{Cell, LoadedSuite};

/// One baseline method of a row.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AgainstMethod {
    /// Its experiment id in the suite.
    pub(crate) experiment: String,
    /// Its method as printed.
    pub(crate) method: String,
    /// Per metric.
    pub(crate) metrics: Vec<MetricComparison>,
}

/// The new method on one group of rows.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ComparedRow {
    /// Experiment id of the new row (in the derived suite).
    pub(crate) experiment: String,
    /// The rows' group label (`(a) CIFAR-10`).
    pub(crate) group: Option<String>,
    /// The rows' architecture as printed.
    pub(crate) architecture: String,
    /// The new method's statistics per metric (seeds that diverged excluded).
    pub(crate) new: BTreeMap<String, Stat>,
    /// Seeds of the new method that diverged.
    pub(crate) diverged: Vec<u64>,
    /// The suite's methods of this group.
    pub(crate) against: Vec<AgainstMethod>,
}

/// The finished comparison.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Comparison {
    /// Suite id.
    pub(crate) suite: String,
    /// Suite title.
    pub(crate) title: String,
    /// Profile.
    pub(crate) profile: String,
    /// What the profile is for.
    pub(crate) profile_description: String,
    /// Id of the derived suite holding the new records (`<suite>-with-<label>`).
    pub(crate) derived_suite: String,
    /// Name shown for the new method.
    pub(crate) method: String,
    /// Its regularizer block.
    pub(crate) spec: Value,
    /// Significance level of the Welch tests.
    pub(crate) significance: f64,
    /// Compared metrics.
    pub(crate) metrics: Vec<MetricSpec>,
    /// The baseline file.
    pub(crate) baseline: String,
    /// When it was blessed.
    pub(crate) baseline_blessed_at: String,
    /// One per group of rows.
    pub(crate) rows: Vec<ComparedRow>,
    /// Models trained now (0 on a rerun).
    pub(crate) trained: usize,
}

/// Aggregates the new method's `records` once and sets each group beside its baseline rows.
///
/// `groups` pairs the suite's cells of a group (one per row) with the new method's cells for
/// it; a group without records gets no row. Returns the compared metrics and the rows.
pub(crate) fn compare_groups(
    ls: &LoadedSuite,
    profile: &str,
    groups: &[(Vec<&Cell>, Vec<Cell>)],
    records: &[ResultRecord],
    base: &Baseline,
) -> Result<(Vec<MetricSpec>, Vec<ComparedRow>)> {
    let s = &ls.suite;
    let metrics = expand_metrics(&s.metrics_for(profile), &metric_keys(records));
    let summaries = aggregate(records, &metrics)?;
    let spec_of = |id: &str| s.experiments.iter().find(|e| e.id == id);
    let mut rows = Vec::new();
    for (group, cells) in groups {
        let Some(summary) = summaries
            .iter()
            .find(|x| x.experiment == cells[0].experiment)
        else {
            continue;
        };
        let against = group
            .iter()
            .map(|c| {
                let b = base.experiments.get(&c.experiment);
                // A baseline blessed for another config or dataset is shown, never judged.
                let stale = b.is_some_and(|b| {
                    b.training_hash != c.training_hash
                        || b.dataset_fingerprint != summary.dataset_fingerprint
                });
                AgainstMethod {
                    experiment: c.experiment.clone(),
                    method: spec_of(&c.experiment)
                        .map(|e| e.method.clone())
                        .unwrap_or_default(),
                    metrics: metrics
                        .iter()
                        .map(|m| {
                            compare_metric(
                                m,
                                summary.metrics.get(&m.name),
                                b.and_then(|b| b.metrics.get(&m.name)),
                                stale,
                                s.significance,
                            )
                        })
                        .collect(),
                }
            })
            .collect();
        let first = spec_of(&group[0].experiment);
        rows.push(ComparedRow {
            experiment: cells[0].experiment.clone(),
            group: first.and_then(|e| e.group.clone()),
            architecture: first.map(|e| e.architecture.clone()).unwrap_or_default(),
            new: summary.metrics.clone(),
            diverged: summary.diverged.iter().map(|(s, _)| *s).collect(),
            against,
        });
    }
    Ok((metrics, rows))
}

/// The verdict of one metric of the new method against one baseline method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Verdict {
    /// Significantly better (two-sided Welch p < significance, mean on the better side).
    Better,
    /// Significantly worse (two-sided Welch p < significance, mean on the worse side).
    Worse,
    /// The two-sided Welch p is not below the significance.
    NoSignificantDifference,
    /// Fewer than two seeds on a side: no variance estimate, so no test.
    NotTested,
    /// The baseline was blessed for another training config or dataset than the suite has now.
    StaleBaseline,
    /// The new method diverged on some seed, or a value is missing.
    Missing,
}

impl Verdict {
    /// Short text for tables.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::NoSignificantDifference => "no significant difference",
            Verdict::NotTested => "not tested (n < 2)",
            Verdict::StaleBaseline => "≠ baseline is stale",
            Verdict::Missing => "–",
        }
    }
}

/// One metric of the new method against one baseline method.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MetricComparison {
    /// Metric key.
    pub(crate) metric: String,
    /// The baseline's statistics.
    pub(crate) baseline: Option<Stat>,
    /// New mean − baseline mean (negative is better for lower-is-better metrics).
    pub(crate) delta: Option<f64>,
    /// Two-sided Welch p-value (None when not tested).
    pub(crate) p_value: Option<f64>,
    /// The verdict.
    pub(crate) verdict: Verdict,
}

/// Compares `new` with `baseline` on one metric at significance `alpha`.
pub(crate) fn compare_metric(
    m: &MetricSpec,
    new: Option<&Stat>,
    baseline: Option<&Stat>,
    stale: bool,
    alpha: f64,
) -> MetricComparison {
    let (Some(c), Some(b)) = (new, baseline) else {
        return MetricComparison {
            metric: m.name.clone(),
            baseline: baseline.cloned(),
            delta: None,
            p_value: None,
            verdict: Verdict::Missing,
        };
    };
    let delta = Some(c.mean - b.mean);
    let (p_value, verdict) = if stale {
        (None, Verdict::StaleBaseline)
    } else if c.n < 2 || b.n < 2 {
        (None, Verdict::NotTested)
    } else {
        let worse = welch_p_worse(c, b, m.better);
        let flipped = match m.better {
            Better::Lower => Better::Higher,
            Better::Higher => Better::Lower,
        };
        let better = welch_p_worse(c, b, flipped);
        // The printed p is two-sided, so the decision is too: a one-sided p below α would be
        // a test at level 2α.
        let p = (2.0 * worse.min(better)).min(1.0);
        let v = if p >= alpha {
            Verdict::NoSignificantDifference
        } else if worse < better {
            Verdict::Worse
        } else {
            Verdict::Better
        };
        (Some(p), v)
    };
    MetricComparison {
        metric: m.name.clone(),
        baseline: Some(b.clone()),
        delta,
        p_value,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(values: &[f64]) -> Stat {
        Stat::from_values(values)
    }

    fn error_metric() -> MetricSpec {
        serde_json::from_value(serde_json::json!(
            {"name": "clean.test_error", "better": "lower", "tolerance": 0.3}
        ))
        .unwrap()
    }

    #[test]
    fn verdicts_follow_the_welch_test_in_both_directions() {
        let m = error_metric();
        let low = stat(&[4.8, 4.9, 5.0, 4.7]);
        let high = stat(&[5.1, 5.3, 5.2, 5.4]);
        // scipy.stats.ttest_ind(high, low, equal_var=False): t = 4.3818, df = 6, two-sided
        // p = 0.004658.
        let c = compare_metric(&m, Some(&low), Some(&high), false, 0.05);
        assert_eq!(c.verdict, Verdict::Better);
        assert!((c.p_value.unwrap() - 0.004658).abs() < 1e-4, "{c:?}");
        assert!((c.delta.unwrap() + 0.4).abs() < 1e-12);
        let w = compare_metric(&m, Some(&high), Some(&low), false, 0.05);
        assert_eq!(w.verdict, Verdict::Worse);
        assert!((w.p_value.unwrap() - 0.004658).abs() < 1e-4);
        // Overlapping samples: no significant difference.
        let a = stat(&[4.8, 5.2, 5.0]);
        let b = stat(&[4.9, 5.1, 5.05]);
        assert_eq!(
            compare_metric(&m, Some(&a), Some(&b), false, 0.05).verdict,
            Verdict::NoSignificantDifference
        );
        // Both boundaries of the two-sided test at α = 0.05, against scipy 1.16
        // `ttest_ind(a, [4.9, 5.0, 5.1], equal_var=False)`.
        let base = stat(&[4.9, 5.0, 5.1]);
        // two-sided p = 0.0911 (one-sided 0.0455 < α): not significant.
        let c = compare_metric(
            &m,
            Some(&stat(&[5.12, 5.32, 5.52])),
            Some(&base),
            false,
            0.05,
        );
        assert!(
            (c.p_value.unwrap() - 0.09106689587214482).abs() < 1e-6,
            "{c:?}"
        );
        assert_eq!(c.verdict, Verdict::NoSignificantDifference);
        // two-sided p = 0.0411 < α: worse (error is higher), and better in the mirror.
        let c = compare_metric(
            &m,
            Some(&stat(&[5.25, 5.45, 5.65])),
            Some(&base),
            false,
            0.05,
        );
        assert!(
            (c.p_value.unwrap() - 0.04114375452016359).abs() < 1e-6,
            "{c:?}"
        );
        assert_eq!(c.verdict, Verdict::Worse);
        let c = compare_metric(
            &m,
            Some(&base),
            Some(&stat(&[5.25, 5.45, 5.65])),
            false,
            0.05,
        );
        assert_eq!(c.verdict, Verdict::Better);
        // One seed: no test, and a stale baseline is never judged.
        let one = stat(&[4.0]);
        assert_eq!(
            compare_metric(&m, Some(&one), Some(&high), false, 0.05).verdict,
            Verdict::NotTested
        );
        assert_eq!(
            compare_metric(&m, Some(&low), Some(&high), true, 0.05).verdict,
            Verdict::StaleBaseline
        );
        assert_eq!(
            compare_metric(&m, None, Some(&high), false, 0.05).verdict,
            Verdict::Missing
        );
    }
}
