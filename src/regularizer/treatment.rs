//! What a regularizer does to one minibatch, and what it may look at to decide.

use candle_core::Tensor;

use super::mix::{MixPlan, mix_hidden, soft_target_values};
use crate::data::LatentFactors;
use crate::data::Split;
use crate::data::batch::ImageShape;

/// A transform of the representation at a mix point (for point 0, the preprocessed input).
pub type Transform = Box<dyn Fn(&Tensor) -> candle_core::Result<Tensor> + Send + Sync>;

/// An extra loss term computed from (logits, targets); added to the suite's loss.
pub type LossTerm = Box<dyn Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor> + Send + Sync>;

/// The minibatch a regularizer treats.
pub struct BatchInfo<'a> {
    /// Indices of the examples in the training split.
    pub indices: &'a [usize],
    /// Their labels.
    pub labels: &'a [u32],
    /// Number of classes.
    pub classes: usize,
    /// Geometry of one image (bytes per raw image: `shape.len()`).
    pub shape: ImageShape,
    /// The training split's latent factors, when the dataset is generated from factors.
    pub latent: Option<&'a dyn LatentFactors>,
}

impl BatchInfo<'_> {
    /// Number of examples in the batch (not `len`: a batch is never empty, so no `is_empty`).
    pub fn examples(&self) -> usize {
        self.labels.len()
    }
}

/// One minibatch's treatment.
pub struct Treatment {
    /// The mixing decision, when the treatment mixes examples (kept for inspection and tests).
    pub mix: Option<MixPlan>,
    /// Raw images replacing the batch before preprocessing and augmentation.
    pub raw_images: Option<Split>,
    /// Mix point where `transform` applies (0 = input).
    pub point: usize,
    /// Applied to the representation at `point`; None leaves the forward pass unchanged.
    pub transform: Option<Transform>,
    /// Target distributions, `batch × classes`, row-major.
    pub targets: Vec<f32>,
    /// Added to the training loss.
    pub loss_term: Option<LossTerm>,
}

impl Treatment {
    /// The clean batch: one-hot targets, nothing transformed.
    pub fn clean(batch: &BatchInfo<'_>) -> Treatment {
        Treatment {
            mix: None,
            raw_images: None,
            point: 0,
            transform: None,
            targets: soft_target_values(batch.labels, batch.classes, None),
            loss_term: None,
        }
    }

    /// Mixup at the plan's mix point, with targets mixed by the same λ and permutation.
    pub fn mixing(batch: &BatchInfo<'_>, plan: MixPlan) -> Treatment {
        let targets = soft_target_values(batch.labels, batch.classes, Some(&plan));
        let p = plan.clone();
        Treatment {
            point: plan.layer,
            transform: Some(Box::new(move |h: &Tensor| mix_hidden(h, &p))),
            targets,
            mix: Some(plan),
            raw_images: None,
            loss_term: None,
        }
    }
}
