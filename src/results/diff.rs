//! Comparing aggregated results with a baseline: tolerance first, then a Welch t-test.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::aggregate::{ExperimentSummary, Stat};
use crate::suite::schema::{Better, MetricSpec};

/// Outcome of comparing one metric of one experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    /// Bit-identical to the baseline: every seed's value has the same bits (=).
    Identical,
    /// Within tolerance (✓).
    Ok,
    /// Worse than the baseline beyond tolerance, and significant when testable (✗).
    Regression,
    /// Better than the baseline beyond tolerance (▲).
    Better,
    /// Different config or dataset: never compared (≠).
    NotComparable,
    /// No baseline for this experiment (–).
    NoBaseline,
    /// A seed of this run diverged (NaN/Inf): no number to compare, and a failure (⚠).
    Diverged,
}

impl Status {
    /// The symbol used in reports.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Status::Identical => "=",
            Status::Ok => "✓",
            Status::Regression => "✗",
            Status::Better => "▲",
            Status::NotComparable => "≠",
            Status::NoBaseline => "–",
            Status::Diverged => "⚠",
        }
    }
}

/// One compared metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MetricDiff {
    /// Metric name.
    pub(crate) metric: String,
    /// This run.
    pub(crate) current: Option<Stat>,
    /// The baseline.
    pub(crate) baseline: Option<Stat>,
    /// current − baseline means.
    pub(crate) delta: Option<f64>,
    /// One-sided Welch p-value that the current run is worse (both sides n ≥ 3).
    pub(crate) p_value: Option<f64>,
    /// Verdict.
    pub(crate) status: Status,
    /// Why, in words.
    pub(crate) reason: String,
}

/// Compares one experiment's metrics.
pub(crate) fn compare(
    current: &ExperimentSummary,
    baseline: Option<&ExperimentSummary>,
    metrics: &[MetricSpec],
    significance: f64,
) -> Vec<MetricDiff> {
    metrics
        .iter()
        .map(|m| compare_metric(current, baseline, m, significance))
        .collect()
}

/// Divergence outranks every other verdict: a diverged seed fails even without a baseline.
fn compare_metric(
    current: &ExperimentSummary,
    baseline: Option<&ExperimentSummary>,
    m: &MetricSpec,
    significance: f64,
) -> MetricDiff {
    let cur = current.metrics.get(&m.name).cloned();
    if !current.diverged.is_empty() {
        return MetricDiff {
            metric: m.name.clone(),
            current: cur,
            baseline: baseline.and_then(|b| b.metrics.get(&m.name).cloned()),
            delta: None,
            p_value: None,
            status: Status::Diverged,
            reason: divergence_reason(current),
        };
    }
    let Some(base) = baseline else {
        return MetricDiff {
            metric: m.name.clone(),
            current: cur,
            baseline: None,
            delta: None,
            p_value: None,
            status: Status::NoBaseline,
            reason: "no baseline for this experiment".into(),
        };
    };
    let bstat = base.metrics.get(&m.name).cloned();
    let mut d = MetricDiff {
        metric: m.name.clone(),
        current: cur.clone(),
        baseline: bstat.clone(),
        delta: None,
        p_value: None,
        status: Status::NotComparable,
        reason: String::new(),
    };
    if let Some(reason) = mismatch(current, base, &m.name) {
        d.reason = reason;
        return d;
    }
    let (Some(c), Some(b)) = (cur, bstat) else {
        if d.baseline.is_none() {
            // A metric added since the baseline was blessed (a new ε): nothing to
            // compare yet, which is not a mismatch.
            d.status = Status::NoBaseline;
            d.reason = "no baseline for this metric; bless one to compare it".into();
        } else {
            d.reason = "the baseline has this metric but this run does not".into();
        }
        return d;
    };
    judge(&mut d, &c, &b, m, significance);
    d
}

/// Names every diverged seed and where, since a diverged run has no number to explain itself.
fn divergence_reason(current: &ExperimentSummary) -> String {
    let seeds: Vec<String> = current
        .diverged
        .iter()
        .map(|(s, d)| {
            let at = match (d.epoch, d.step) {
                (Some(e), Some(k)) => format!(" at epoch {e} step {k}"),
                (Some(e), None) => format!(" at epoch {e}"),
                _ => String::new(),
            };
            format!("seed {s} diverged in {}{at}: {}", d.stage, d.reason)
        })
        .collect();
    seeds.join("; ")
}

/// Numbers from a different config, evaluation or dataset are not comparable, however close.
fn mismatch(current: &ExperimentSummary, base: &ExperimentSummary, metric: &str) -> Option<String> {
    if base.training_hash != current.training_hash {
        return Some(format!(
            "training config differs (baseline {} vs {})",
            short(&base.training_hash),
            short(&current.training_hash)
        ));
    }
    if let (Some(a), Some(b)) = (
        base.metric_sources.get(metric),
        current.metric_sources.get(metric),
    ) && a != b
    {
        return Some(format!(
            "evaluation differs (baseline {} vs {})",
            short(a),
            short(b)
        ));
    }
    if base.dataset_fingerprint != current.dataset_fingerprint {
        return Some(format!(
            "dataset differs (baseline {} vs {})",
            short(&base.dataset_fingerprint),
            short(&current.dataset_fingerprint)
        ));
    }
    None
}

/// Bit identity is checked before tolerance so a reproduced run reads as exact, not merely close.
fn judge(d: &mut MetricDiff, c: &Stat, b: &Stat, m: &MetricSpec, significance: f64) {
    let delta = c.mean - b.mean;
    d.delta = Some(delta);
    if c.mean.to_bits() == b.mean.to_bits()
        && c.std.to_bits() == b.std.to_bits()
        && c.values.len() == b.values.len()
        && c.values
            .iter()
            .zip(&b.values)
            .all(|(x, y)| x.to_bits() == y.to_bits())
    {
        d.status = Status::Identical;
        d.reason = format!("identical bits ({} seed(s))", c.values.len());
        return;
    }
    let worse = match m.better {
        Better::Lower => delta,
        Better::Higher => -delta,
    };
    if worse > m.tolerance {
        if c.n >= 3 && b.n >= 3 {
            let p = welch_p_worse(c, b, m.better);
            d.p_value = Some(p);
            if p < significance {
                d.status = Status::Regression;
                d.reason = format!(
                    "worse by {worse:.4} > tolerance {}, Welch p = {p:.3e}",
                    m.tolerance
                );
            } else {
                d.status = Status::Ok;
                d.reason = format!(
                    "worse by {worse:.4} > tolerance {}, but not significant (p = {p:.3e})",
                    m.tolerance
                );
            }
        } else {
            d.status = Status::Regression;
            d.reason = format!("worse by {worse:.4} > tolerance {}", m.tolerance);
        }
    } else if -worse > m.tolerance {
        d.status = Status::Better;
        d.reason = format!("better by {:.4} > tolerance {}", -worse, m.tolerance);
    } else {
        d.status = Status::Ok;
        d.reason = format!("within tolerance {} (Δ = {delta:+.4})", m.tolerance);
    }
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

/// Holds a CPU run to its CPU baseline exactly: both bit-exact and under one training hash (so
/// one numerics version), any compared value that is not bit-identical is a regression, however
/// small, since only a code change can move it. Tolerances stay for GPU runs.
pub(crate) fn require_identical(d: &mut MetricDiff) {
    if matches!(d.status, Status::Ok | Status::Better | Status::Regression) {
        d.reason = format!(
            "bits differ from a CPU baseline of the same numerics version (Δ = {:+e}; {}): a CPU run reproduces its CPU baseline exactly on any x86-64 machine, so the code changed the numbers; if that is intended, bump the numerics version (src/numerics.rs) and re-bless",
            d.delta.unwrap_or(f64::NAN),
            d.reason
        );
        d.status = Status::Regression;
    }
}

/// One-sided Welch t-test p-value for "current is worse than baseline".
pub(crate) fn welch_p_worse(c: &Stat, b: &Stat, better: Better) -> f64 {
    let (n1, n2) = (c.n as f64, b.n as f64);
    let (v1, v2) = (c.std.powi(2) / n1, b.std.powi(2) / n2);
    let diff = match better {
        Better::Lower => c.mean - b.mean,
        Better::Higher => b.mean - c.mean,
    };
    let se = (v1 + v2).sqrt();
    if se == 0.0 {
        return if diff > 0.0 { 0.0 } else { 1.0 };
    }
    let t = diff / se;
    let df = (v1 + v2).powi(2) / (v1.powi(2) / (n1 - 1.0) + v2.powi(2) / (n2 - 1.0));
    match StudentsT::new(0.0, 1.0, df) {
        Ok(dist) => 1.0 - dist.cdf(t),
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(values: &[f64]) -> Stat {
        Stat::from_values(values)
    }

    #[test]
    fn cpu_runs_must_match_a_cpu_baseline_bit_for_bit() {
        let spec = vec![MetricSpec {
            name: "clean.test_error".into(),
            label: None,
            unit: String::new(),
            better: Better::Lower,
            tolerance: 0.5,
            from: Default::default(),
        }];
        let summary = |v: f64| ExperimentSummary {
            experiment: "e".into(),
            training_hash: "h".into(),
            dataset_fingerprint: "f".into(),
            seeds: vec![0],
            metrics: [("clean.test_error".to_string(), stat(&[v]))].into(),
            metric_sources: Default::default(),
            diverged: vec![],
        };
        // Within tolerance, but one ulp away: a regression on CPU.
        let near = 5.0f64;
        let next = f64::from_bits(near.to_bits() + 1);
        let mut d = compare(&summary(next), Some(&summary(near)), &spec, 0.05).remove(0);
        assert_eq!(d.status, Status::Ok);
        require_identical(&mut d);
        assert_eq!(d.status, Status::Regression);
        assert!(
            d.reason.contains("bump the numerics version"),
            "{}",
            d.reason
        );
        // Identical bits stay identical.
        let mut d = compare(&summary(near), Some(&summary(near)), &spec, 0.05).remove(0);
        assert_eq!(d.status, Status::Identical);
        require_identical(&mut d);
        assert_eq!(d.status, Status::Identical);
    }

    #[test]
    fn welch_matches_scipy() {
        // scipy.stats.ttest_ind([5.1,5.3,5.2,5.4],[4.8,4.9,5.0,4.7], equal_var=False,
        // alternative='greater') → t = 4.3818, df = 6, one-sided p = 0.002329 (by numerical integration of the t density).
        let p = welch_p_worse(
            &stat(&[5.1, 5.3, 5.2, 5.4]),
            &stat(&[4.8, 4.9, 5.0, 4.7]),
            Better::Lower,
        );
        assert!((p - 0.002329).abs() < 2e-5, "{p}");
    }

    #[test]
    fn welch_unequal_n_and_variances_matches_scipy() {
        // scipy.stats.ttest_ind([5.9,6.4,6.1,7.2,6.0], [5.0,5.1,4.9], equal_var=False,
        // alternative='greater') (scipy 1.15.3): t = 5.446676813318378, df = 4.4635,
        // p = 0.0019998658982548225. The pooled-variance test gives p = 0.002943684189401181,
        // so this case tells Welch from Student.
        let cur = stat(&[5.9, 6.4, 6.1, 7.2, 6.0]);
        let base = stat(&[5.0, 5.1, 4.9]);
        let p = welch_p_worse(&cur, &base, Better::Lower);
        assert!((p - 0.0019998658982548225).abs() < 1e-9, "{p}");
        // Higher-is-better mirror (accuracy = 100 − error): the same p, in the right direction.
        let m = |v: &[f64]| stat(&v.iter().map(|x| 100.0 - x).collect::<Vec<_>>());
        let p = welch_p_worse(
            &m(&[5.9, 6.4, 6.1, 7.2, 6.0]),
            &m(&[5.0, 5.1, 4.9]),
            Better::Higher,
        );
        assert!((p - 0.001999865898254913).abs() < 1e-9, "{p}");
        // Better, not worse: p near 1.
        assert!(welch_p_worse(&base, &cur, Better::Lower) > 0.99);
    }

    #[test]
    fn higher_is_better_and_exact_tolerance() {
        let spec = |better, tol| {
            vec![MetricSpec {
                name: "clean.test_error".into(),
                label: None,
                unit: "%".into(),
                better,
                tolerance: tol,
                from: crate::suite::schema::Which::Final,
            }]
        };
        let st = |cur: &[f64], base: &[f64], better, tol| {
            compare(
                &summary("h", "f", cur),
                Some(&summary("h", "f", base)),
                &spec(better, tol),
                0.05,
            )[0]
            .status
        };
        // Accuracy dropping by more than the tolerance is a regression; rising is better.
        assert_eq!(
            st(&[90.0], &[91.0], Better::Higher, 0.5),
            Status::Regression
        );
        assert_eq!(st(&[92.0], &[91.0], Better::Higher, 0.5), Status::Better);
        assert_eq!(st(&[92.0], &[91.0], Better::Lower, 0.5), Status::Regression);
        // Worse by exactly the tolerance is not a regression (the rule is "worse than").
        assert_eq!(st(&[5.5], &[5.0], Better::Lower, 0.5), Status::Ok);
        assert_eq!(st(&[4.5], &[5.0], Better::Higher, 0.5), Status::Ok);
        assert_eq!(
            st(&[5.5000001], &[5.0], Better::Lower, 0.5),
            Status::Regression
        );
    }

    fn summary(hash: &str, fp: &str, values: &[f64]) -> ExperimentSummary {
        let mut metrics = std::collections::BTreeMap::new();
        metrics.insert("clean.test_error".to_string(), stat(values));
        ExperimentSummary {
            experiment: "e".into(),
            training_hash: hash.into(),
            dataset_fingerprint: fp.into(),
            seeds: (0..values.len() as u64).collect(),
            metrics,
            metric_sources: Default::default(),
            diverged: vec![],
        }
    }

    fn spec() -> Vec<MetricSpec> {
        vec![MetricSpec {
            name: "clean.test_error".into(),
            label: None,
            unit: "%".into(),
            better: Better::Lower,
            tolerance: 0.5,
            from: crate::suite::schema::Which::Final,
        }]
    }

    #[test]
    fn every_status() {
        let base = summary("h", "f", &[5.0, 5.1, 4.9]);
        let st = |cur: &ExperimentSummary, b: Option<&ExperimentSummary>| {
            compare(cur, b, &spec(), 0.05)[0].status
        };
        assert_eq!(
            st(&summary("h", "f", &[5.2, 5.3, 5.1]), Some(&base)),
            Status::Ok
        );
        assert_eq!(
            st(&summary("h", "f", &[6.0, 6.1, 5.9]), Some(&base)),
            Status::Regression
        );
        assert_eq!(
            st(&summary("h", "f", &[4.0, 4.1, 3.9]), Some(&base)),
            Status::Better
        );
        assert_eq!(
            st(&summary("other", "f", &[5.0]), Some(&base)),
            Status::NotComparable
        );
        assert_eq!(
            st(&summary("h", "other", &[5.0]), Some(&base)),
            Status::NotComparable
        );
        assert_eq!(st(&summary("h", "f", &[5.0]), None), Status::NoBaseline);
        // Beyond tolerance but noisy: the t-test does not agree, so no regression.
        assert_eq!(
            st(&summary("h", "f", &[3.0, 9.0, 5.0]), Some(&base)),
            Status::Ok
        );
        // Single seeds cannot be tested: tolerance alone decides.
        assert_eq!(
            st(&summary("h", "f", &[5.6]), Some(&summary("h", "f", &[5.0]))),
            Status::Regression
        );
    }

    #[test]
    fn bit_identity_needs_every_seed_and_the_std_not_only_the_mean() {
        let st = |cur: &[f64], base: &[f64]| {
            compare(
                &summary("h", "f", cur),
                Some(&summary("h", "f", base)),
                &spec(),
                0.05,
            )[0]
            .clone()
        };
        let d = st(&[5.0, 5.25, 5.5], &[5.0, 5.25, 5.5]);
        assert_eq!(
            (d.status, d.reason.as_str()),
            (Status::Identical, "identical bits (3 seed(s))")
        );
        // Same mean, other spread: close, not identical.
        assert_eq!(
            st(&[5.0, 5.25, 5.5], &[4.75, 5.25, 5.75]).status,
            Status::Ok
        );
        // Same mean and std, the seeds' values swapped: not identical either.
        assert_eq!(st(&[5.0, 5.25, 5.5], &[5.5, 5.25, 5.0]).status, Status::Ok);
        // The same mean from fewer seeds.
        let d = st(&[5.25, 5.25], &[5.25, 5.25, 5.25]);
        assert_eq!(d.status, Status::Ok, "{}", d.reason);
    }

    #[test]
    fn better_by_exactly_the_tolerance_is_within_it() {
        let st = |cur: f64| {
            compare(
                &summary("h", "f", &[cur]),
                Some(&summary("h", "f", &[5.0])),
                &spec(),
                0.05,
            )[0]
            .status
        };
        assert_eq!(st(4.5), Status::Ok);
        assert_eq!(st(4.4999999), Status::Better);
    }

    #[test]
    fn the_t_test_needs_three_seeds_on_both_sides() {
        // Worse beyond tolerance, three noisy seeds against one: no t-test, so tolerance decides.
        let d = compare(
            &summary("h", "f", &[3.0, 9.0, 6.0]),
            Some(&summary("h", "f", &[5.0])),
            &spec(),
            0.05,
        )
        .remove(0);
        assert_eq!((d.status, d.p_value), (Status::Regression, None));
        let d = compare(
            &summary("h", "f", &[6.0]),
            Some(&summary("h", "f", &[3.0, 9.0, 3.0])),
            &spec(),
            0.05,
        )
        .remove(0);
        assert_eq!((d.status, d.p_value), (Status::Regression, None));
    }

    /// Significant means p < α: a p-value equal to α is not a regression.
    #[test]
    fn a_p_value_equal_to_the_significance_level_is_not_significant() {
        let (cur, base) = ([6.0, 6.5, 5.9], [5.0, 5.1, 4.9]);
        let p = welch_p_worse(&stat(&cur), &stat(&base), Better::Lower);
        assert!(p > 0.0 && p < 0.5, "{p}");
        let st = |alpha: f64| {
            compare(
                &summary("h", "f", &cur),
                Some(&summary("h", "f", &base)),
                &spec(),
                alpha,
            )[0]
            .status
        };
        assert_eq!(st(p), Status::Ok);
        assert_eq!(st(f64::from_bits(p.to_bits() + 1)), Status::Regression);
    }

    #[test]
    fn welch_without_spread_is_certain() {
        // Zero variance on both sides: p is 0 when worse and 1 when not.
        let (a, b) = (stat(&[6.0, 6.0, 6.0]), stat(&[5.0, 5.0, 5.0]));
        assert_eq!(welch_p_worse(&a, &b, Better::Lower), 0.0);
        assert_eq!(welch_p_worse(&b, &a, Better::Lower), 1.0);
        assert_eq!(welch_p_worse(&b, &b, Better::Lower), 1.0);
        let d = compare(
            &summary("h", "f", &[6.0, 6.0, 6.0]),
            Some(&summary("h", "f", &[5.0, 5.0, 5.0])),
            &spec(),
            0.05,
        )
        .remove(0);
        assert_eq!((d.status, d.p_value), (Status::Regression, Some(0.0)));
        assert_eq!(d.delta, Some(1.0));
    }

    #[test]
    fn a_different_evaluation_is_not_comparable_and_missing_metrics_are_told_apart() {
        let mut cur = summary("h", "f", &[5.0]);
        let mut base = summary("h", "f", &[5.0]);
        cur.metric_sources
            .insert("clean.test_error".into(), "aaaaaaaaaaaaaaaa".into());
        base.metric_sources
            .insert("clean.test_error".into(), "bbbbbbbbbbbbbbbb".into());
        let d = compare(&cur, Some(&base), &spec(), 0.05).remove(0);
        assert_eq!(d.status, Status::NotComparable);
        assert_eq!(
            d.reason,
            "evaluation differs (baseline bbbbbbbbbbbb vs aaaaaaaaaaaa)"
        );
        base.metric_sources = cur.metric_sources.clone();
        assert_eq!(
            compare(&cur, Some(&base), &spec(), 0.05)[0].status,
            Status::Identical
        );
        let d = compare(&summary("h", "f2", &[5.0]), Some(&base), &spec(), 0.05).remove(0);
        assert_eq!(d.reason, "dataset differs (baseline f vs f2)");
        let d = compare(&summary("h2", "f", &[5.0]), Some(&base), &spec(), 0.05).remove(0);
        assert_eq!(d.reason, "training config differs (baseline h vs h2)");
        // A metric new since the baseline has no baseline yet; one gone from this run is ≠.
        let mut newer = base.clone();
        newer.metrics.clear();
        let d = compare(&cur, Some(&newer), &spec(), 0.05).remove(0);
        assert_eq!(d.status, Status::NoBaseline);
        assert!(
            d.reason.contains("no baseline for this metric"),
            "{}",
            d.reason
        );
        let d = compare(&newer, Some(&base), &spec(), 0.05).remove(0);
        assert_eq!(d.status, Status::NotComparable);
        assert_eq!(
            d.reason,
            "the baseline has this metric but this run does not"
        );
    }

    #[test]
    fn a_diverged_seed_fails_even_without_a_baseline_and_says_where() {
        let mut cur = summary("h", "f", &[5.0]);
        cur.diverged = vec![
            (
                1,
                crate::results::record::CellDivergence {
                    stage: "training".into(),
                    epoch: Some(3),
                    step: Some(7),
                    reason: "loss NaN".into(),
                },
            ),
            (
                2,
                crate::results::record::CellDivergence {
                    stage: "fgsm".into(),
                    epoch: Some(4),
                    step: None,
                    reason: "output inf".into(),
                },
            ),
        ];
        for base in [None, Some(&summary("h", "f", &[5.0]))] {
            let d = compare(&cur, base, &spec(), 0.05).remove(0);
            assert_eq!(d.status, Status::Diverged);
            assert_eq!(
                d.reason,
                "seed 1 diverged in training at epoch 3 step 7: loss NaN; seed 2 diverged in fgsm at epoch 4: output inf"
            );
            assert_eq!(d.baseline.is_some(), base.is_some());
        }
    }

    #[test]
    fn every_status_has_its_own_symbol() {
        let all = [
            Status::Identical,
            Status::Ok,
            Status::Regression,
            Status::Better,
            Status::NotComparable,
            Status::NoBaseline,
            Status::Diverged,
        ];
        let symbols: Vec<&str> = all.iter().map(|s| s.symbol()).collect();
        assert_eq!(symbols, ["=", "✓", "✗", "▲", "≠", "–", "⚠"]);
    }
}
