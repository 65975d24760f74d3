//! Gaussian noise on the input (Figure 2's "Gaussian noise" panel): each training example's
//! preprocessed input gets independent N(0, std²) noise per value, drawn fresh every minibatch;
//! targets stay one-hot.

use candle_core::Tensor;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{BatchInfo, Regularizer, Treatment};
use crate::error::{Error, Result};

/// Parameters of `gaussian_noise`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Standard deviation of the noise, in the preprocessed input's units (> 0).
    pub std: f64,
}

/// Adds N(0, std²) to every input value of a training minibatch.
pub struct GaussianNoise {
    std: f64,
}

/// Builds `gaussian_noise {std}`.
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Regularizer>> {
    let p: Params = crate::params::parse("regularizer `gaussian_noise`", p)?;
    if !(p.std.is_finite() && p.std > 0.0) {
        return Err(Error::param(
            "std",
            format!(
                "regularizer `gaussian_noise`: std must be a finite number > 0, got {}",
                p.std
            ),
        ));
    }
    Ok(Box::new(GaussianNoise { std: p.std }))
}

impl Regularizer for GaussianNoise {
    fn name(&self) -> &str {
        "gaussian_noise"
    }

    fn treat(&self, batch: &BatchInfo<'_>, rng: &mut ChaCha8Rng) -> Result<Treatment> {
        let shape = batch.shape;
        let n = batch.examples();
        let normal = Normal::new(0.0, self.std)
            .map_err(|e| Error::Other(format!("regularizer `gaussian_noise`: {e}")))?;
        // Drawn in f64 and rounded once to f32, in example-major order.
        let noise: Vec<f32> = (0..n * shape.len())
            .map(|_| normal.sample(rng) as f32)
            .collect();
        let mut t = Treatment::clean(batch);
        t.transform = Some(Box::new(move |x: &Tensor| {
            let e = Tensor::from_slice(&noise, (n, shape.c, shape.h, shape.w), x.device())?
                .to_dtype(x.dtype())?;
            x + e
        }));
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::ImageShape;
    use candle_core::Device;
    use rand::SeedableRng;

    #[test]
    fn adds_seeded_noise_of_the_given_std_to_the_input_only() {
        let r = GaussianNoise { std: 0.5 };
        let labels = vec![0u32; 400];
        let indices: Vec<usize> = (0..400).collect();
        let batch = BatchInfo {
            indices: &indices,
            labels: &labels,
            classes: 2,
            shape: ImageShape { c: 2, h: 1, w: 1 },
            latent: None,
        };
        let x = Tensor::ones((400, 2, 1, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
        let draw = |seed| {
            let t = r
                .treat(&batch, &mut ChaCha8Rng::seed_from_u64(seed))
                .unwrap();
            assert_eq!(t.point, 0);
            let y = (t.transform.unwrap())(&x).unwrap();
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        let a = draw(7);
        assert_eq!(a, draw(7), "same seed, same noise");
        // The input plus the stream's draws in example-major order (minus them has the same
        // distribution, so only the draws themselves tell the sign).
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let normal = Normal::new(0.0, 0.5).unwrap();
        let expect: Vec<f32> = (0..800)
            .map(|_| 1.0 + normal.sample(&mut rng) as f32)
            .collect();
        assert_eq!(a, expect);
        assert_ne!(a, draw(8));
        let e: Vec<f64> = a.iter().map(|&v| v as f64 - 1.0).collect();
        let mean = e.iter().sum::<f64>() / e.len() as f64;
        let sd = (e.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (e.len() - 1) as f64).sqrt();
        // 800 draws: the mean within 4 standard errors of 0, the std within 10% of 0.5.
        assert!(mean.abs() < 4.0 * 0.5 / (800f64).sqrt(), "{mean}");
        assert!((sd - 0.5).abs() < 0.05, "{sd}");
    }

    #[test]
    fn a_std_that_is_not_positive_is_refused() {
        for std in [0.0, -1.0] {
            let p: Map<String, Value> =
                serde_json::from_value(serde_json::json!({"std": std})).unwrap();
            assert!(build(&p).is_err());
        }
    }
}
