//! No regularizer: train on clean minibatches ("No Mixup" in the paper).

use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{BatchInfo, Regularizer, Treatment};
use crate::error::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

/// The identity regularizer.
pub struct NoMixup;

/// Builds `none` (it takes no parameters).
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Regularizer>> {
    let _: Params = serde_json::from_value(Value::Object(p.clone()))
        .map_err(|e| Error::Config(format!("regularizer `none`: {e}")))?;
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
