//! Which logged epoch is "best": the first with the lowest validation error when a validation
//! split is held out (as the pre-refactor reference chose), else the lowest test error.

use super::EpochRecord;
use crate::scoring::EvalMetrics;

/// An evaluated epoch and its test metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chosen {
    /// Epoch index, from 0.
    pub epoch: usize,
    /// Its test metrics.
    pub test: EvalMetrics,
}

/// The last evaluated epoch and the best one; `None` when no epoch was evaluated.
pub fn last_and_best(records: &[EpochRecord]) -> Option<(Chosen, Chosen)> {
    let mut last = None;
    let mut best: Option<(Chosen, f64)> = None;
    for r in records {
        let Some(test) = r.test else { continue };
        let rank = r.validation.map_or(test.error_pct, |v| v.error_pct);
        let c = Chosen {
            epoch: r.epoch,
            test,
        };
        last = Some(c);
        // Ties keep the first epoch; an incomparable (NaN) rank never stays best.
        let keep = best.is_some_and(|(_, b)| b.partial_cmp(&rank).is_some_and(|o| o.is_le()));
        if !keep {
            best = Some((c, rank));
        }
    }
    Some((last?, best?.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(err: f64) -> EvalMetrics {
        EvalMetrics {
            error_pct: err,
            top5_pct: 100.0,
            nll: 1.0,
            n: 10,
            non_finite: 0,
        }
    }

    fn rec(epoch: usize, test: Option<f64>, val: Option<f64>) -> EpochRecord {
        EpochRecord {
            epoch,
            lr: 0.1,
            train_loss: 1.0,
            test: test.map(m),
            validation: val.map(m),
            seconds: 0.0,
        }
    }

    #[test]
    fn test_error_ranks_without_validation_and_ties_keep_the_first() {
        let r = [
            rec(0, Some(30.0), None),
            rec(1, None, None),
            rec(2, Some(20.0), None),
            rec(3, Some(20.0), None),
            rec(4, Some(25.0), None),
        ];
        let (last, best) = last_and_best(&r).unwrap();
        assert_eq!((last.epoch, best.epoch), (4, 2));
        assert_eq!(best.test.error_pct, 20.0);
    }

    #[test]
    fn validation_error_ranks_when_held_out() {
        let r = [
            rec(0, Some(10.0), Some(40.0)),
            rec(1, Some(30.0), Some(35.0)),
            rec(2, Some(5.0), Some(50.0)),
        ];
        let (last, best) = last_and_best(&r).unwrap();
        assert_eq!((last.epoch, best.epoch), (2, 1));
        assert_eq!(best.test.error_pct, 30.0);
        assert!(last_and_best(&[rec(0, None, None)]).is_none());
    }
}
