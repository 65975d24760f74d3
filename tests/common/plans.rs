//! The mixing plan a regularizer draws, for tests of the sampling.

use mixbench::data::batch::ImageShape;
use mixbench::regularizer::{BatchInfo, MixPlan, Regularizer};
use rand_chacha::ChaCha8Rng;

/// The mixing plan `reg` draws for a batch of `batch` 32×32 RGB images of 10 classes.
pub fn draw_plan(reg: &dyn Regularizer, batch: usize, rng: &mut ChaCha8Rng) -> Option<MixPlan> {
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let indices: Vec<usize> = (0..batch).collect();
    let info = BatchInfo {
        indices: &indices,
        labels: &labels,
        classes: 10,
        shape: ImageShape { c: 3, h: 32, w: 32 },
        latent: None,
    };
    reg.treat(&info, rng).unwrap().mix
}
