//! No regularizer: train on clean minibatches ("No Mixup" in the paper).

use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{BatchInfo, Regularizer, Treatment};
use crate::error::Result;

/// `none` takes no parameters.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {}

/// The identity regularizer.
pub struct NoMixup;

/// Builds `none` (it takes no parameters).
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Regularizer>> {
    let _: Params = crate::params::parse("regularizer `none`", p)?;
    Ok(Box::new(NoMixup))
}

impl Regularizer for NoMixup {
    fn name(&self) -> &str {
        "none"
    }

    fn treat(&self, batch: &BatchInfo<'_>, _rng: &mut ChaCha8Rng) -> Result<Treatment> {
        Ok(Treatment::clean(batch))
    }
}
