//! Manifold mixup (Verma et al., 2019): mix hidden states at a layer drawn uniformly from S.
//! With `block_gradient: true`, no gradient reaches the layers before the mix point (§5.1).

use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::mix::sample_plan;
use super::{BatchInfo, Regularizer, Treatment};
use crate::error::{Error, Result};

/// Parameters of `manifold_mixup`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// λ ~ Beta(α, α); α >= 0 (0 means λ = 1).
    pub alpha: f64,
    /// The eligible mix points S (0 = input); default [0, 1, 2].
    #[serde(default = "default_layers")]
    pub layers: Vec<usize>,
    /// No gradient reaches the layers before the mix point (§5.1).
    #[serde(default)]
    pub block_gradient: bool,
}

/// The reference code's eligible set for PreActResNets and WRN: input, after stage 1, after stage 2.
fn default_layers() -> Vec<usize> {
    vec![0, 1, 2]
}

/// Mixes at a layer k ∈ S with λ ~ Beta(α, α).
pub struct ManifoldMixup {
    alpha: f64,
    layers: Vec<usize>,
    block_gradient: bool,
}

/// Rejects α that is negative or not a number (α = 0 means λ = 1, as the reference allows).
pub fn check_alpha(name: &str, alpha: f64) -> Result<()> {
    if !alpha.is_finite() || alpha < 0.0 {
        return Err(Error::param(
            "alpha",
            format!(
                "regularizer `{name}`: alpha must be a number >= 0 (λ ~ Beta(α, α)), got {alpha}"
            ),
        ));
    }
    Ok(())
}

/// Builds `manifold_mixup {alpha, layers, block_gradient}`.
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Regularizer>> {
    let p: Params = crate::params::parse("regularizer `manifold_mixup`", p)?;
    check_alpha("manifold_mixup", p.alpha)?;
    if p.layers.is_empty() {
        return Err(Error::param(
            "layers",
            "regularizer `manifold_mixup`: layers must name at least one mix point (use `none` for no mixing)",
        ));
    }
    Ok(Box::new(ManifoldMixup {
        alpha: p.alpha,
        layers: p.layers,
        block_gradient: p.block_gradient,
    }))
}

impl Regularizer for ManifoldMixup {
    fn name(&self) -> &str {
        "manifold_mixup"
    }

    fn validate(&self, num_mix_points: usize) -> Result<()> {
        if let Some((i, &bad)) = self
            .layers
            .iter()
            .enumerate()
            .find(|(_, k)| **k >= num_mix_points)
        {
            return Err(Error::param(
                format!("layers[{i}]"),
                format!(
                    "regularizer `manifold_mixup`: layer {bad} is not a mix point of this model (valid: 0..={})",
                    num_mix_points - 1
                ),
            ));
        }
        Ok(())
    }

    fn treat(&self, batch: &BatchInfo<'_>, rng: &mut ChaCha8Rng) -> Result<Treatment> {
        let plan = sample_plan(
            self.alpha,
            &self.layers,
            self.block_gradient,
            batch.examples(),
            rng,
        );
        Ok(Treatment::mixing(batch, plan))
    }
}
