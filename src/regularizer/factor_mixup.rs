//! Ground-truth factor mixup (Table 8, App. A): an idealised Manifold Mixup that interpolates
//! the true latent factors of two training examples and renders the result, with the targets
//! mixed by the same λ. As the reference (`synth_data_exp.py`), λ is drawn per example.

use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::mix::sample_per_example_plan;
use super::{MixPlan, Regularizer};
use crate::error::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "one")]
    alpha: f64,
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
    let p: Params = serde_json::from_value(Value::Object(p.clone()))
        .map_err(|e| Error::Config(format!("regularizer `factor_mixup`: {e}")))?;
    super::manifold_mixup::check_alpha("factor_mixup", p.alpha)?;
    Ok(Box::new(FactorMixup { alpha: p.alpha }))
}

impl Regularizer for FactorMixup {
    fn name(&self) -> &'static str {
        "factor_mixup"
    }

    fn validate(&self, _num_mix_points: usize) -> Result<()> {
        Ok(())
    }

    fn plan(&self, batch: usize, rng: &mut ChaCha8Rng) -> Option<MixPlan> {
        Some(sample_per_example_plan(self.alpha, true, batch, rng))
    }

    fn needs_factors(&self) -> bool {
        true
    }
}
