//! Training-time regularizers: one trait, one file each, chosen by name in the suite.
//!
//! Every minibatch a regularizer draws a [`Treatment`]: raw images that replace the batch before
//! preprocessing (factor mixup), a transform of the representation at one mix point (mixing,
//! masks, boxes), the targets that go with it, and an optional extra loss term. The trainer
//! applies whatever the treatment holds and hard-codes no method.

pub mod cutmix;
pub mod cutout;
pub mod factor_mixup;
pub mod gaussian_noise;
pub mod input_mixup;
pub mod manifold_mixup;
pub mod mix;
pub mod none;
pub mod registry;
pub mod treatment;

use rand_chacha::ChaCha8Rng;

pub use mix::{MixPlan, mix_hidden, soft_target_values, soft_targets};
pub use treatment::{BatchInfo, LossTerm, Transform, Treatment};

use crate::error::Result;

/// A training-time regularizer acting through per-minibatch treatments.
pub trait Regularizer: Send + Sync {
    /// Registry name.
    fn name(&self) -> &str;
    /// Checks the configuration against a model with `num_mix_points` mix points (a
    /// regularizer that does not pick a mix point has nothing to check).
    fn validate(&self, _num_mix_points: usize) -> Result<()> {
        Ok(())
    }
    /// Draws this minibatch's treatment from `rng` (the epoch's "mix" stream).
    fn treat(&self, batch: &BatchInfo<'_>, rng: &mut ChaCha8Rng) -> Result<Treatment>;
    /// Whether its treatments need the dataset's latent factors.
    fn needs_factors(&self) -> bool {
        false
    }
}
