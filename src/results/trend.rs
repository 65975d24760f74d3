//! Step detection over a result history, in the spirit of asv's: find the commit where a
//! metric moved beyond its tolerance *and stayed* (a one-night blip is not a step). A change of
//! training hash or dataset fingerprint starts a new series; values are never compared across
//! series.

use serde::Serialize;

use crate::suite::schema::Better;

/// One run's value of one experiment's metric.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    /// Commit of the run.
    pub(crate) commit: String,
    /// Date of the run.
    pub(crate) date: String,
    /// The value (mean over seeds).
    pub(crate) value: f64,
    /// Training hash and dataset fingerprint: a new key starts a new series.
    pub(crate) series: String,
}

/// Which way a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Direction {
    /// Worse by more than the tolerance.
    Regression,
    /// Better by more than the tolerance.
    Improvement,
}

/// A lasting move of a metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Step {
    /// Worse or better.
    pub(crate) direction: Direction,
    /// Index of the first run at the new level.
    pub(crate) index: usize,
    /// Commit of that run (the first bad one, for a regression).
    pub(crate) first_commit: String,
    /// Commit of the run before it (the last good one).
    pub(crate) last_commit: String,
    /// The level before (mean of the accepted runs of the series so far).
    pub(crate) before: f64,
    /// The first value at the new level.
    pub(crate) after: f64,
}

/// Steps in `points` (oldest first): a value beyond `tolerance` from the current level that the
/// next `persist − 1` values confirm (all beyond it on the same side) is a step; a lone value
/// beyond it is a blip and is ignored. After a step the level restarts at the new values.
pub(crate) fn detect(
    points: &[Point],
    tolerance: f64,
    better: Better,
    persist: usize,
) -> Vec<Step> {
    let persist = persist.max(1);
    let mut steps = Vec::new();
    let mut i = 0;
    while i < points.len() {
        // One series: the run of points sharing a key.
        let start = i;
        while i < points.len() && points[i].series == points[start].series {
            i += 1;
        }
        let series = &points[start..i];
        let mut level: Vec<f64> = Vec::new();
        let mut j = 0;
        while j < series.len() {
            let v = series[j].value;
            if level.is_empty() {
                level.push(v);
                j += 1;
                continue;
            }
            let mean = level.iter().sum::<f64>() / level.len() as f64;
            // Positive = worse.
            let worse = |x: f64| match better {
                Better::Lower => x - mean,
                Better::Higher => mean - x,
            };
            let d = worse(v);
            if d.abs() <= tolerance {
                level.push(v);
                j += 1;
                continue;
            }
            let confirmed = j + persist <= series.len()
                && series[j..j + persist].iter().all(|p| {
                    worse(p.value).abs() > tolerance && worse(p.value).signum() == d.signum()
                });
            if confirmed {
                steps.push(Step {
                    direction: if d > 0.0 {
                        Direction::Regression
                    } else {
                        Direction::Improvement
                    },
                    index: start + j,
                    first_commit: series[j].commit.clone(),
                    last_commit: series[j - 1].commit.clone(),
                    before: mean,
                    after: v,
                });
                level = series[j..j + persist].iter().map(|p| p.value).collect();
                j += persist;
            } else {
                // A blip (or the last run, not yet confirmed): not part of the level.
                j += 1;
            }
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(values: &[(f64, &str)]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, &(v, s))| Point {
                commit: format!("c{i}"),
                date: format!("2026-11-{:02}", i + 1),
                value: v,
                series: s.into(),
            })
            .collect()
    }

    #[test]
    fn one_step_no_blip_and_no_comparison_across_a_config_change() {
        // Test error (lower is better), tolerance 0.3: a blip at c3, a lasting step at c6, then a
        // config change (new training hash) at c9 whose values are far off but not compared.
        let h = history(&[
            (5.0, "a"),
            (5.1, "a"),
            (4.9, "a"),
            (6.5, "a"),
            (5.0, "a"),
            (5.0, "a"),
            (6.0, "a"),
            (6.1, "a"),
            (6.0, "a"),
            (9.0, "b"),
            (9.1, "b"),
        ]);
        let steps = detect(&h, 0.3, Better::Lower, 2);
        assert_eq!(steps.len(), 1, "{steps:?}");
        let s = &steps[0];
        assert_eq!(s.direction, Direction::Regression);
        assert_eq!(
            (s.first_commit.as_str(), s.last_commit.as_str()),
            ("c6", "c5")
        );
        assert!((s.before - 5.0).abs() < 1e-12 && s.after == 6.0);
        // The same numbers as an accuracy (higher is better) are an improvement at c6.
        let up = detect(&h, 0.3, Better::Higher, 2);
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].direction, Direction::Improvement);
        assert_eq!(up[0].first_commit, "c6");
        // A last run beyond the tolerance is not yet a step; within tolerance nothing is.
        assert!(
            detect(
                &history(&[(5.0, "a"), (5.0, "a"), (7.0, "a")]),
                0.3,
                Better::Lower,
                2
            )
            .is_empty()
        );
        assert!(
            detect(
                &history(&[(5.0, "a"), (5.2, "a"), (4.8, "a")]),
                0.3,
                Better::Lower,
                2
            )
            .is_empty()
        );
    }

    #[test]
    fn a_step_confirmed_by_the_last_runs_counts_and_ties_with_the_tolerance_are_within() {
        // The confirming runs end the history: still a step (j + persist == len).
        let s = detect(
            &history(&[(5.0, "a"), (5.0, "a"), (6.0, "a"), (6.0, "a")]),
            0.5,
            Better::Lower,
            2,
        );
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!((s[0].index, s[0].after), (2, 6.0));
        // Exactly the tolerance away (0.25 is exact in binary) is within it: 5.25 joins the
        // level, so the step at 6.0 starts from 5.125. A confirming run exactly at the
        // tolerance does not confirm.
        let h = history(&[(5.0, "a"), (5.25, "a"), (6.0, "a"), (6.0, "a")]);
        let s = detect(&h, 0.25, Better::Lower, 2);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!((s[0].index, s[0].before), (2, 5.125));
        let h = history(&[(5.0, "a"), (6.0, "a"), (5.25, "a"), (5.0, "a")]);
        assert!(detect(&h, 0.25, Better::Lower, 2).is_empty());
    }

    #[test]
    fn confirmations_must_be_on_the_same_side_and_persist_zero_means_one() {
        // Beyond the tolerance on both sides in turn: two blips, no step.
        let h = history(&[(5.0, "a"), (6.0, "a"), (4.0, "a"), (5.0, "a")]);
        assert!(detect(&h, 0.5, Better::Lower, 2).is_empty());
        // persist 1: every move beyond the tolerance is a step at once; 0 is taken as 1.
        let h = history(&[(5.0, "a"), (6.0, "a"), (5.0, "a")]);
        for persist in [0, 1] {
            let s = detect(&h, 0.5, Better::Lower, persist);
            assert_eq!(s.len(), 2, "persist {persist}: {s:?}");
            assert_eq!(s[0].direction, Direction::Regression);
            assert_eq!(s[1].direction, Direction::Improvement);
            assert_eq!((s[1].index, s[1].before, s[1].after), (2, 6.0, 5.0));
        }
    }

    #[test]
    fn after_a_step_the_next_run_is_the_one_after_the_confirming_runs() {
        // persist 1: the step at 6.0 is confirmed by itself; the level restarts at [6.0], 6.2
        // joins it (mean 6.1) and 7.0 steps from there. Re-reading 6.0 after the step would
        // put it in the level twice (mean 6.067).
        let h = history(&[(5.0, "a"), (6.0, "a"), (6.2, "a"), (7.0, "a")]);
        let s = detect(&h, 0.5, Better::Lower, 1);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!((s[0].index, s[0].before, s[0].after), (1, 5.0, 6.0));
        assert_eq!(s[1].index, 3);
        assert!((s[1].before - 6.1).abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn the_level_restarts_at_the_confirming_runs_and_indices_count_from_the_history_start() {
        // Series "a" (3 runs), then "b": b's step is at history index 5, its level before is
        // the mean of b's first two runs, and the second step's level is the mean of the runs
        // that confirmed the first (8 and 10 -> 9).
        let h = history(&[
            (1.0, "a"),
            (1.0, "a"),
            (1.0, "a"),
            (2.0, "b"),
            (3.0, "b"),
            (8.0, "b"),
            (10.0, "b"),
            (20.0, "b"),
            (20.0, "b"),
        ]);
        let s = detect(&h, 1.5, Better::Lower, 2);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!((s[0].index, s[0].before, s[0].after), (5, 2.5, 8.0));
        assert_eq!(
            (s[0].first_commit.as_str(), s[0].last_commit.as_str()),
            ("c5", "c4")
        );
        assert_eq!((s[1].index, s[1].before, s[1].after), (7, 9.0, 20.0));
    }
}
