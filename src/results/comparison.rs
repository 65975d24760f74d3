//! A new method beside a suite's blessed baselines: per row, mean ± std over seeds, Δ against
//! each baseline method, a Welch test and a verdict (better / worse / no significant difference).

use serde::Serialize;

use super::aggregate::Stat;
use super::diff::welch_p_worse;
use crate::suite::schema::{Better, MetricSpec};

/// The verdict of one metric of the new method against one baseline method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
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
    pub fn text(self) -> &'static str {
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
pub struct MetricComparison {
    /// Metric key.
    pub metric: String,
    /// The baseline's statistics.
    pub baseline: Option<Stat>,
    /// New mean − baseline mean (negative is better for lower-is-better metrics).
    pub delta: Option<f64>,
    /// Two-sided Welch p-value (None when not tested).
    pub p_value: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Compares `new` with `baseline` on one metric at significance `alpha`.
pub fn compare_metric(
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
