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
            let one_minus_p = p.affine(-1.0, 1.0)?;
            let log_1mp = one_minus_p.clamp(MIN_PROB as f32, 1f32)?.log()?;
            let one_minus_t = targets.affine(-1.0, 1.0)?;
            let ll = ((targets * log_p)? + (one_minus_t * log_1mp)?)?;
            let value = ll.mean_all()?.neg()?.detach();
            // The gradient is PyTorch's `BCELoss` backward, (p − t) / max(p(1 − p), 1e-12) per
            // element over N·C, not autograd's through the clamps: where p rounds to 1, the
            // clamped log's backward divides by e^−100 (infinite in f32) and then multiplies
            // by the clamp's zero mask, which is NaN. s − s.detach() adds exactly 0 to the
            // value and carries that gradient.
            let n = p.elem_count() as f64;
            let denom = (&p * &one_minus_p)?.clamp(1e-12f32, f32::INFINITY)?;
            let g = ((&p - targets)? / denom)?.affine(1.0 / n, 0.0)?.detach();
            let s = (g * &p)?.sum_all()?;
            value + (&s - s.detach())?
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

    /// A softmax that rounds to exactly 1 for a wrong class: the value is clamped as PyTorch
    /// does and the gradient stays finite (autograd through the clamp gave NaN here), equal to
    /// PyTorch's (p − t) / max(p(1 − p), 1e-12) / (N·C) chained through the softmax.
    #[test]
    fn saturated_softmax_has_finite_pytorch_gradient() {
        let dev = Device::Cpu;
        let z = candle_core::Var::new(&[[0f32, 120.0]], &dev).unwrap();
        let t = Tensor::new(&[[1.0f32, 0.0]], &dev).unwrap();
        let l = loss(LossKind::BceSoftmax, z.as_tensor(), &t).unwrap();
        assert!((l.to_scalar::<f32>().unwrap() - 100.0).abs() < 0.05);
        let g: Vec<Vec<f32>> = l
            .backward()
            .unwrap()
            .get(z.as_tensor())
            .unwrap()
            .to_vec2()
            .unwrap();
        assert!(g[0].iter().all(|v| v.is_finite()), "{g:?}");
        // p = [e^-120, 1] (1 − p rounds to 0): dL/dp = [(p0 − 1)/1e-12, (1 − 0)/1e-12] / 2,
        // and through the softmax dL/dz1 = p1·(dL/dp1 − Σ p·dL/dp) ≈ 0.5e12 · (1 − 1) + ...
        // the two terms nearly cancel; what matters is that it is a number, pointing z1 down.
        assert!(g[0][1] >= 0.0, "{g:?}");
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
