//! Top-1 error %, top-5 accuracy % and mean cross-entropy (the paper's "Test NLL").

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
}

/// Evaluates `model` in eval mode on `split`, `batch` images at a time.
pub fn evaluate(
    model: &Model,
    split: &Split,
    shape: ImageShape,
    pre: &Preprocessing,
    batch: usize,
) -> Result<EvalMetrics> {
    let dev = model.store.device().clone();
    let n = split.len();
    let (mut wrong, mut top5, mut nll) = (0usize, 0usize, 0f64);
    let mut buf = vec![0f32; batch * shape.len()];
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(batch) {
        let out = &mut buf[..chunk.len() * shape.len()];
        fill_batch::<rand_chacha::ChaCha8Rng>(split, shape, chunk, pre, None, out);
        let x = Tensor::from_slice(out, (chunk.len(), shape.c, shape.h, shape.w), &dev)?;
        let logits = model.forward(&x, false)?;
        let logp: Vec<Vec<f32>> = candle_nn::ops::log_softmax(&logits, 1)?.to_vec2()?;
        for (row, &i) in logp.iter().zip(chunk) {
            let y = split.labels[i] as usize;
            let target = row[y];
            nll -= target as f64;
            // Rank of the true class: how many classes score strictly higher.
            let above = row.iter().filter(|&&v| v > target).count();
            if above > 0 {
                wrong += 1;
            }
            if above < 5 {
                top5 += 1;
            }
        }
    }
    let nf = n.max(1) as f64;
    Ok(EvalMetrics {
        error_pct: 100.0 * wrong as f64 / nf,
        top5_pct: 100.0 * top5 as f64 / nf,
        nll: nll / nf,
        n,
    })
}
