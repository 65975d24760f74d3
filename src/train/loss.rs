//! Training losses against soft (possibly mixed) targets.

use candle_core::{Result, Tensor};
use candle_nn::ops::log_softmax;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which loss trains the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// The reference code's loss: `nn.BCELoss` of softmax(logits) against the soft targets,
    /// mean over batch × classes, logs clamped at −100 as PyTorch does.
    #[default]
    BceSoftmax,
    /// −Σ t·log softmax(logits), mean over the batch.
    SoftCrossEntropy,
}

/// e^−100 rounded to f32: clamping a probability here clamps its log at −100 like PyTorch's BCE.
const MIN_PROB: f64 = 3.720_076e-44;

/// Computes `kind` for `logits` [N, C] against `targets` [N, C].
pub fn loss(kind: LossKind, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let targets = &targets.to_dtype(logits.dtype())?;
    let logp = log_softmax(logits, 1)?;
    match kind {
        LossKind::SoftCrossEntropy => (targets * &logp)?.sum(1)?.mean(0)?.neg(),
        LossKind::BceSoftmax => {
            let p = logp.exp()?;
            let log_p = logp.clamp(-100f32, f32::INFINITY)?;
            let log_1mp = p.affine(-1.0, 1.0)?.clamp(MIN_PROB as f32, 1f32)?.log()?;
            let one_minus_t = targets.affine(-1.0, 1.0)?;
            let ll = ((targets * log_p)? + (one_minus_t * log_1mp)?)?;
            ll.mean_all()?.neg()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn values_match_hand_computation() {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[1f32, 2.0, 0.5]], &dev).unwrap();
        let t = Tensor::new(&[[0.2f32, 0.8, 0.0]], &dev).unwrap();
        let z: Vec<f64> = vec![1.0, 2.0, 0.5];
        let s: f64 = z.iter().map(|v| v.exp()).sum();
        let p: Vec<f64> = z.iter().map(|v| v.exp() / s).collect();
        let tt = [0.2, 0.8, 0.0];
        let ce: f64 = -(0..3).map(|i| tt[i] * p[i].ln()).sum::<f64>();
        let bce: f64 = -(0..3)
            .map(|i| tt[i] * p[i].ln() + (1.0 - tt[i]) * (1.0 - p[i]).ln())
            .sum::<f64>()
            / 3.0;
        let got_ce = loss(LossKind::SoftCrossEntropy, &logits, &t)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let got_bce = loss(LossKind::BceSoftmax, &logits, &t)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((got_ce as f64 - ce).abs() < 1e-6, "{got_ce} vs {ce}");
        assert!((got_bce as f64 - bce).abs() < 1e-6, "{got_bce} vs {bce}");
    }

    #[test]
    fn saturated_softmax_stays_finite() {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[200f32, -200.0]], &dev).unwrap();
        let t = Tensor::new(&[[0.0f32, 1.0]], &dev).unwrap();
        let l = loss(LossKind::BceSoftmax, &logits, &t)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // Both terms clamp near −100 (e^−100 is an f32 subnormal, so log gives −99.99).
        assert!((l - 100.0).abs() < 0.05, "{l}");
    }
}
