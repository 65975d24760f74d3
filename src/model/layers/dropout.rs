//! Dropout as `torch.nn.Dropout`: in training each unit is kept with probability 1 − p and
//! scaled by 1/(1 − p); in evaluation it is the identity. Masks come from the model's seeded
//! noise stream, never from candle's unseedable generator.

use candle_core::{Result, Tensor};
use rand::Rng;

use crate::model::store::NoiseSource;

/// One dropout layer.
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f64,
    noise: NoiseSource,
}

impl Dropout {
    /// Dropout with drop probability `p` ∈ [0, 1], drawing from `noise`.
    pub fn new(p: f64, noise: NoiseSource) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            candle_core::bail!("dropout probability must be in [0, 1], got {p}");
        }
        Ok(Dropout { p, noise })
    }

    /// Applies the layer; `train` selects a fresh random mask.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(x.clone());
        }
        if self.p == 1.0 {
            return x.zeros_like();
        }
        let mut guard = self.noise.lock().expect("noise source poisoned");
        let rng = guard.as_mut().ok_or_else(|| {
            candle_core::Error::Msg(
                "dropout in training mode needs the model's noise stream (ParamStore::set_noise)"
                    .into(),
            )
        })?;
        let scale = (1.0 / (1.0 - self.p)) as f32;
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                if rng.random::<f64>() >= self.p {
                    scale
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x * mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use std::sync::{Arc, Mutex};

    fn source(seed: u64) -> NoiseSource {
        Arc::new(Mutex::new(Some(crate::rng::stream(seed, "dropout", 0))))
    }

    /// Statistics of PyTorch's rule: about p of the units are zero, the rest are x/(1−p), so
    /// the mean is preserved; evaluation is the identity; a seed gives the same mask.
    #[test]
    fn drops_p_scales_the_rest_and_is_seeded() {
        let x = Tensor::ones((200, 500), candle_core::DType::F32, &Device::Cpu).unwrap();
        let d = Dropout::new(0.3, source(7)).unwrap();
        let y: Vec<f32> = d
            .forward(&x, true)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let zeros = y.iter().filter(|v| **v == 0.0).count() as f64 / y.len() as f64;
        // 100 000 Bernoulli(0.3) draws: standard deviation 0.0014.
        assert!((zeros - 0.3).abs() < 0.006, "dropped fraction {zeros}");
        let kept = 1.0f32 / 0.7;
        assert!(y.iter().all(|v| *v == 0.0 || (*v - kept).abs() < 1e-6));
        let mean = y.iter().map(|v| *v as f64).sum::<f64>() / y.len() as f64;
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        let again: Vec<f32> = Dropout::new(0.3, source(7))
            .unwrap()
            .forward(&x, true)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(y, again);
        let other: Vec<f32> = Dropout::new(0.3, source(8))
            .unwrap()
            .forward(&x, true)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_ne!(y, other);
        let eval = d.forward(&x, false).unwrap();
        assert_eq!(
            eval.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1f32; 100_000]
        );
    }

    #[test]
    fn training_without_a_stream_and_bad_p_are_errors() {
        let x = Tensor::ones(4, candle_core::DType::F32, &Device::Cpu).unwrap();
        let d = Dropout::new(0.5, Arc::new(Mutex::new(None))).unwrap();
        assert!(
            d.forward(&x, true)
                .unwrap_err()
                .to_string()
                .contains("noise")
        );
        assert!(Dropout::new(1.5, source(1)).is_err());
    }
}
