//! Ground-truth factor mixup (Table 8, App. A): an idealised Manifold Mixup that interpolates
//! the true latent factors of two training examples and renders the result, with the targets
//! mixed by the same λ. As the reference (`synth_data_exp.py`), λ is drawn per example.

use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::mix::sample_per_example_plan;
use super::{BatchInfo, MixPlan, Regularizer, Treatment, soft_target_values};
use crate::data::{LatentFactors, Split};
use crate::error::{Error, Result};

/// Parameters of `factor_mixup`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// λ_i ~ Beta(α, α) per example; 1 = U(0, 1).
    #[serde(default = "one")]
    pub alpha: f64,
}

fn one() -> f64 {
    1.0
}

/// Mixes factors with λ_i ~ Beta(α, α) per example.
pub struct FactorMixup {
    alpha: f64,
}

/// Builds `factor_mixup {alpha}`.
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Regularizer>> {
    let p: Params = crate::params::parse("regularizer `factor_mixup`", p)?;
    super::manifold_mixup::check_alpha("factor_mixup", p.alpha)?;
    Ok(Box::new(FactorMixup { alpha: p.alpha }))
}

impl Regularizer for FactorMixup {
    fn name(&self) -> &str {
        "factor_mixup"
    }

    fn treat(&self, batch: &BatchInfo<'_>, rng: &mut ChaCha8Rng) -> Result<Treatment> {
        let plan = sample_per_example_plan(self.alpha, batch.examples(), rng);
        let latent = batch.latent.ok_or_else(|| {
            Error::Config("regularizer `factor_mixup` needs a dataset with latent factors".into())
        })?;
        Ok(Treatment {
            raw_images: Some(render_mixed(
                latent,
                batch.indices,
                &plan,
                batch.shape.len(),
            )),
            targets: soft_target_values(batch.labels, batch.classes, Some(&plan)),
            mix: Some(plan),
            point: 0,
            transform: None,
            loss_term: None,
        })
    }

    fn needs_factors(&self) -> bool {
        true
    }
}

/// The batch's images re-rendered from λ_i·f(idx[i]) + (1 − λ_i)·f(idx[perm[i]]).
pub fn render_mixed(
    latent: &dyn LatentFactors,
    idx: &[usize],
    plan: &MixPlan,
    image_len: usize,
) -> Split {
    let mut images = vec![0u8; idx.len() * image_len];
    for (i, img) in images.chunks_mut(image_len).enumerate() {
        let (a, b) = (idx[i], idx[plan.perm[i] as usize]);
        latent.render_mix(a, b, plan.lambda_of(i) as f64, img);
    }
    Split {
        images,
        labels: vec![0; idx.len()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generated::glyphs::{self, Factors, Latent};
    use std::sync::Arc;

    /// Factor mixup renders the mixed factors: example 0 becomes the truncated midpoint of its
    /// factors and its partner's, example 1 (λ = 1) renders its own factors.
    #[test]
    fn factor_mixup_renders_the_mixed_factors() {
        let a: Factors = [100.0, 30.0, -10.0, 4.0, 80.0, 200.0, 20.0, 60.0];
        let b: Factors = [51.0, 21.0, 3.0, -7.0, 5.0, 200.0, 31.0, -65.0];
        let latent = Latent {
            train: Arc::new(vec![a, b]),
            size: 16,
        };
        let plan = MixPlan {
            layer: 0,
            lambda: f32::NAN,
            perm: vec![1, 0],
            block_gradient: false,
            lambdas: Some(vec![0.5, 1.0]),
        };
        let split = render_mixed(&latent, &[0, 1], &plan, 256);
        let mut want = vec![0u8; 256];
        glyphs::render(&glyphs::mix(&a, &b, 0.5), 16, &mut want);
        assert_eq!(&split.images[..256], &want[..]);
        glyphs::render(&b, 16, &mut want);
        assert_eq!(&split.images[256..], &want[..]);
        let mut plain_a = vec![0u8; 256];
        glyphs::render(&a, 16, &mut plain_a);
        assert_ne!(&split.images[..256], &plain_a[..]);
    }
}
