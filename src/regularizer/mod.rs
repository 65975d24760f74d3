//! Regularizers that mix examples: one trait, one file each, chosen by name in the suite.
//!
//! A regularizer draws one `MixPlan` per minibatch (mix point k, λ, partner permutation); the
//! trainer applies it to the hidden state at k and to the one-hot targets.

pub mod factor_mixup;
pub mod input_mixup;
pub mod manifold_mixup;
pub mod mix;
pub mod none;
pub mod registry;

use rand_chacha::ChaCha8Rng;

pub use mix::{MixPlan, mix_hidden, soft_targets};

use crate::error::Result;

/// A training-time regularizer acting through mixing plans.
pub trait Regularizer: Send + Sync {
    /// Registry name.
    fn name(&self) -> &'static str;
    /// Checks the configuration against a model with `num_mix_points` mix points.
    fn validate(&self, num_mix_points: usize) -> Result<()>;
    /// Draws this minibatch's plan (None = train on the clean batch).
    fn plan(&self, batch: usize, rng: &mut ChaCha8Rng) -> Option<MixPlan>;
    /// Whether its plans mix latent factors (the dataset must provide them).
    fn needs_factors(&self) -> bool {
        false
    }
}
