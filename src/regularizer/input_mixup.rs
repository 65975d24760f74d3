//! Input mixup (Zhang et al., 2018): manifold mixup restricted to the input, S = {0}.

use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::mix::{sample_per_example_plan, sample_plan};
use super::{BatchInfo, Regularizer, Treatment};
use crate::error::Result;

/// Parameters of `input_mixup`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// λ ~ Beta(α, α); α >= 0 (0 means λ = 1).
    pub alpha: f64,
    /// One λ per example (as the reference's synthetic task) instead of one per minibatch.
    #[serde(default)]
    pub per_example: bool,
}

/// Mixes raw inputs with λ ~ Beta(α, α).
pub struct InputMixup {
    alpha: f64,
    per_example: bool,
}

/// Builds `input_mixup {alpha}`.
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Regularizer>> {
    let p: Params = crate::params::parse("regularizer `input_mixup`", p)?;
    super::manifold_mixup::check_alpha("input_mixup", p.alpha)?;
    Ok(Box::new(InputMixup {
        alpha: p.alpha,
        per_example: p.per_example,
    }))
}

impl Regularizer for InputMixup {
    fn name(&self) -> &str {
        "input_mixup"
    }

    fn treat(&self, batch: &BatchInfo<'_>, rng: &mut ChaCha8Rng) -> Result<Treatment> {
        let plan = if self.per_example {
            sample_per_example_plan(self.alpha, batch.examples(), rng)
        } else {
            // Same draw order as manifold mixup (λ, layer, permutation), so S = {0} agrees exactly.
            sample_plan(self.alpha, &[0], false, batch.examples(), rng)
        };
        Ok(Treatment::mixing(batch, plan))
    }
}
