//! Top-1 error %, top-5 accuracy % and mean cross-entropy (the paper's "Test NLL").
//!
//! Ranking follows PyTorch's `argmax`/`topk` on CPU: NaN counts as larger than every number,
//! and among equal scores the lower class index ranks first. Any non-finite logit makes the
//! batch's example count as `non_finite`; callers treat such an evaluation as diverged, never
//! as a score.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::data::batch::{ImageShape, fill_batch};
use crate::data::{Preprocessing, Split};
use crate::error::Result;
use crate::model::Model;

/// Metrics on one split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Top-1 error in percent.
    pub error_pct: f64,
    /// Top-5 accuracy in percent (equals 100 when there are ≤ 5 classes).
    pub top5_pct: f64,
    /// Mean negative log-likelihood of the true class.
    pub nll: f64,
    /// Number of examples evaluated.
    pub n: usize,
    /// Examples whose logits held a NaN or an infinity (the evaluation is then not a score).
    #[serde(default)]
    pub non_finite: usize,
}

impl EvalMetrics {
    /// True when every logit was finite.
    pub fn is_finite(&self) -> bool {
        self.non_finite == 0 && self.nll.is_finite()
    }
}

/// `a` ranks above `b` (PyTorch order: NaN is the largest value).
fn above(a: f64, b: f64) -> bool {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => false,
        (true, false) => true,
        (false, true) => false,
        (false, false) => a > b,
    }
}

/// Rank of class `y` in `row` (0 = predicted): classes scoring higher, plus equal-scoring
/// classes with a lower index.
pub fn rank_of(row: &[f64], y: usize) -> usize {
    let t = row[y];
    row.iter()
        .enumerate()
        .filter(|&(j, &v)| above(v, t) || (j < y && (v == t || (v.is_nan() && t.is_nan()))))
        .count()
}

/// Accumulates metrics over batches of logits.
#[derive(Debug, Clone, Default)]
pub struct Scorer {
    wrong: usize,
    top5: usize,
    nll: f64,
    n: usize,
    non_finite: usize,
}

impl Scorer {
    /// Adds one example's logits and its true class.
    pub fn add(&mut self, logits: &[f64], y: usize) {
        self.n += 1;
        if logits.iter().any(|v| !v.is_finite()) {
            self.non_finite += 1;
        }
        let r = rank_of(logits, y);
        if r > 0 {
            self.wrong += 1;
        }
        if r < 5 {
            self.top5 += 1;
        }
        // log-softmax in f64 with the max subtracted.
        let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + logits.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        self.nll += lse - logits[y];
    }

    /// Adds a batch of logits `[N, C]`.
    pub fn add_batch(&mut self, logits: &Tensor, labels: &[u32]) -> Result<()> {
        let rows: Vec<Vec<f64>> = logits.to_dtype(candle_core::DType::F64)?.to_vec2()?;
        for (row, &y) in rows.iter().zip(labels) {
            self.add(row, y as usize);
        }
        Ok(())
    }

    /// The metrics so far.
    pub fn finish(&self) -> EvalMetrics {
        let nf = self.n.max(1) as f64;
        EvalMetrics {
            error_pct: 100.0 * self.wrong as f64 / nf,
            top5_pct: 100.0 * self.top5 as f64 / nf,
            nll: if self.non_finite > 0 {
                f64::NAN
            } else {
                self.nll / nf
            },
            n: self.n,
            non_finite: self.non_finite,
        }
    }
}

/// Calls `f` with each batch of `split` in order, normalised without augmentation, as a tensor
/// on the model's device and in its dtype, with the batch's labels.
pub fn for_each_batch(
    model: &Model,
    split: &Split,
    shape: ImageShape,
    pre: &Preprocessing,
    batch: usize,
    mut f: impl FnMut(&Tensor, &[u32]) -> Result<()>,
) -> Result<()> {
    let dev = model.store.device().clone();
    let batch = batch.max(1);
    let mut buf = vec![0f32; batch * shape.len()];
    let idx: Vec<usize> = (0..split.len()).collect();
    for chunk in idx.chunks(batch) {
        let out = &mut buf[..chunk.len() * shape.len()];
        fill_batch::<rand_chacha::ChaCha8Rng>(split, shape, chunk, pre, None, out);
        let x = Tensor::from_slice(out, (chunk.len(), shape.c, shape.h, shape.w), &dev)?
            .to_dtype(model.store.dtype())?;
        let labels: Vec<u32> = chunk.iter().map(|&i| split.labels[i]).collect();
        f(&x, &labels)?;
    }
    Ok(())
}

/// Evaluates `model` in eval mode on `split`, `batch` images at a time.
pub fn evaluate(
    model: &Model,
    split: &Split,
    shape: ImageShape,
    pre: &Preprocessing,
    batch: usize,
) -> Result<EvalMetrics> {
    let mut scorer = Scorer::default();
    for_each_batch(model, split, shape, pre, batch, |x, labels| {
        scorer.add_batch(&model.forward(x, false)?, labels)
    })?;
    Ok(scorer.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(rows: &[(Vec<f64>, usize)]) -> EvalMetrics {
        let mut s = Scorer::default();
        for (r, y) in rows {
            s.add(r, *y);
        }
        s.finish()
    }

    /// 10 classes; the true class (3) ranked 1st, 5th or 6th by construction.
    fn ranked(rank: usize) -> Vec<f64> {
        // Scores 9, 8, ..., 0 over classes in a fixed shuffled order; class 3 gets score 9 - rank.
        let mut row = vec![0.0; 10];
        let others: Vec<usize> = (0..10).filter(|&c| c != 3).collect();
        let mut scores: Vec<f64> = (0..10).rev().map(|v| v as f64).collect();
        let mine = scores.remove(rank);
        row[3] = mine;
        for (c, s) in others.iter().zip(scores) {
            row[*c] = s;
        }
        row
    }

    #[test]
    fn rank_first_fifth_sixth() {
        assert_eq!(rank_of(&ranked(0), 3), 0);
        assert_eq!(rank_of(&ranked(4), 3), 4);
        assert_eq!(rank_of(&ranked(5), 3), 5);
        let m = score(&[(ranked(0), 3), (ranked(4), 3), (ranked(5), 3)]);
        // Wrong: the 5th and 6th; top-5: the 1st and 5th.
        assert!((m.error_pct - 200.0 / 3.0).abs() < 1e-12, "{m:?}");
        assert!((m.top5_pct - 200.0 / 3.0).abs() < 1e-12, "{m:?}");
        assert_eq!(m.non_finite, 0);
    }

    #[test]
    fn ties_break_towards_the_lower_index_like_argmax() {
        // Classes 1 and 4 tie for the top score: argmax is 1.
        let row = vec![0.0, 2.0, 1.0, 0.5, 2.0];
        assert_eq!(rank_of(&row, 1), 0);
        assert_eq!(rank_of(&row, 4), 1);
        let m = score(&[(row.clone(), 4)]);
        assert_eq!(m.error_pct, 100.0);
        // All equal: only class 0 is "predicted"; class 6 of 10 ranks 6th, outside the top 5.
        let flat = vec![0.25; 10];
        assert_eq!(rank_of(&flat, 0), 0);
        let m = score(&[(flat.clone(), 6)]);
        assert_eq!((m.error_pct, m.top5_pct), (100.0, 0.0));
    }

    #[test]
    fn nan_logits_never_score_as_correct() {
        let mut row = ranked(0);
        row[7] = f64::NAN;
        // NaN outranks every number (torch.argmax returns the NaN's index).
        assert_eq!(rank_of(&row, 3), 1);
        let all_nan = vec![f64::NAN; 10];
        let m = score(&[(row, 3), (all_nan, 4)]);
        assert_eq!(m.error_pct, 100.0);
        assert_eq!(m.non_finite, 2);
        assert!(!m.is_finite());
        assert!(m.nll.is_nan());
    }

    #[test]
    fn a_lower_index_counts_only_when_it_ties() {
        // Class 2 scores highest; the lower-index classes 0 and 1 score less and do not rank
        // above it, and only the higher scores count for class 1.
        let row = vec![0.1, 0.5, 0.9, 0.7];
        assert_eq!(rank_of(&row, 2), 0);
        assert_eq!(rank_of(&row, 1), 2);
        assert_eq!(rank_of(&row, 3), 1);
        // A NaN true score is torch.argmax's pick over finite ones: nothing ranks above it,
        // and a finite lower-index class is no tie with it.
        assert_eq!(rank_of(&[1.0, f64::NAN], 1), 0);
        assert_eq!(rank_of(&[f64::NAN, f64::NAN], 1), 1);
    }

    #[test]
    fn an_infinite_logit_makes_the_nll_nan_even_when_its_term_is_finite() {
        // −∞ on the wrong class leaves the true class's term finite (log-sum-exp = 1 − 1 = 0),
        // but the example is not finite, so the mean NLL is not a score.
        let m = score(&[(vec![f64::NEG_INFINITY, 1.0], 1), (vec![0.0, 1.0], 1)]);
        assert_eq!(m.non_finite, 1);
        assert!(m.nll.is_nan(), "{m:?}");
        assert_eq!(m.error_pct, 0.0);
    }

    #[test]
    fn finite_needs_both_every_logit_and_the_nll_finite() {
        let m = |non_finite, nll| EvalMetrics {
            error_pct: 0.0,
            top5_pct: 100.0,
            nll,
            n: 4,
            non_finite,
        };
        assert!(m(0, 0.5).is_finite());
        assert!(!m(0, f64::INFINITY).is_finite());
        assert!(!m(1, 0.5).is_finite());
    }

    #[test]
    fn nll_equals_hand_computed_cross_entropy() {
        // logits (1, 2, 0.5), true class 0: -log(e / (e + e^2 + e^0.5)).
        let z = [1.0f64, 2.0, 0.5];
        let want0 = -(1f64.exp() / z.iter().map(|v| v.exp()).sum::<f64>()).ln();
        let want2 = -(0.5f64.exp() / z.iter().map(|v| v.exp()).sum::<f64>()).ln();
        let m = score(&[(z.to_vec(), 0), (z.to_vec(), 2)]);
        assert!((want0 - 1.464368784107945).abs() < 1e-12);
        assert!((m.nll - (want0 + want2) / 2.0).abs() < 1e-12, "{m:?}");
        assert_eq!(m.error_pct, 100.0);
    }
}
