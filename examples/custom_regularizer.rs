//! A regularizer defined outside mixbench, registered at start-up, then mixbench's own command
//! line: `cargo run --release --example custom_regularizer -- compare table1 --with
//! '{name: confidence_penalty, beta: 0.1}' --profile smoke`.
//!
//! The confidence penalty (Pereyra et al., 2017, "Regularizing neural networks by penalizing
//! confident output distributions") adds β·Σ_c p_c log p_c — minus β times the entropy of the
//! softmax output — to the loss, averaged over the batch. It uses the seam's loss term; the
//! batch and the targets stay as they are.

use candle_core::Tensor;
use mixbench::registry::Entry;
use mixbench::regularizer::{BatchInfo, Regularizer, Treatment};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

/// Penalises low-entropy outputs with weight `beta`.
struct ConfidencePenalty {
    beta: f64,
}

impl Regularizer for ConfidencePenalty {
    fn name(&self) -> &str {
        "confidence_penalty"
    }

    fn treat(&self, batch: &BatchInfo<'_>, _rng: &mut ChaCha8Rng) -> mixbench::Result<Treatment> {
        let beta = self.beta;
        let mut t = Treatment::clean(batch);
        t.loss_term = Some(Box::new(move |logits: &Tensor, _targets: &Tensor| {
            let logp = candle_nn::ops::log_softmax(logits, 1)?;
            let neg_entropy = (logp.exp()? * &logp)?.sum(1)?.mean(0)?;
            neg_entropy * beta
        }));
        Ok(t)
    }
}

/// Parameters of `confidence_penalty`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Weight β >= 0 of the penalty (0 trains exactly as `none`).
    beta: f64,
}

/// `confidence_penalty {beta}`: parsed with `mixbench::params::parse`, so a suite's bad value
/// is reported at its line and column.
fn build(p: &Map<String, Value>) -> mixbench::Result<Box<dyn Regularizer>> {
    let p: Params = mixbench::params::parse("regularizer `confidence_penalty`", p)?;
    if !(p.beta.is_finite() && p.beta >= 0.0) {
        return Err(mixbench::Error::param(
            "beta",
            format!(
                "regularizer `confidence_penalty`: beta must be a number >= 0, got {}",
                p.beta
            ),
        ));
    }
    Ok(Box::new(ConfidencePenalty { beta: p.beta }))
}

fn main() {
    mixbench::App::new()
        .regularizer(Entry::typed::<Params>(
            "confidence_penalty",
            "confidence penalty (Pereyra et al., 2017): loss + β·Σ p log p; params: beta",
            build,
        ))
        .run()
}
