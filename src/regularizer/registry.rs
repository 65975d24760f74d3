//! Every regularizer by name: adding one is a new file plus one entry in `BUILTIN` (or, from
//! another crate, `App::regularizer`).

use serde_json::{Map, Value};

use super::Regularizer;
use crate::error::Result;
use crate::registry::{Entry, Registry};

/// Builds a regularizer from its parameters (the suite's `regularizer` block without `name`).
pub type BuildFn = fn(&Map<String, Value>) -> Result<Box<dyn Regularizer>>;

/// One registered regularizer.
pub type RegularizerEntry = Entry<BuildFn>;

/// The built-in regularizers.
pub static BUILTIN: &[RegularizerEntry] = &[
    Entry::typed::<super::none::Params>(
        "none",
        "no mixing (the paper's \"No Mixup\")",
        super::none::build,
    ),
    Entry::typed::<super::input_mixup::Params>(
        "input_mixup",
        "mixup of inputs; params: alpha, per_example (one λ per example, as the reference's synthetic task)",
        super::input_mixup::build,
    ),
    Entry::typed::<super::factor_mixup::Params>(
        "factor_mixup",
        "ground-truth factor mixup (Table 8): mix the latent factors, render the image; params: alpha (λ_i ~ Beta(α, α) per example; 1 = U(0, 1))",
        super::factor_mixup::build,
    ),
    Entry::typed::<super::manifold_mixup::Params>(
        "manifold_mixup",
        "mixup at a layer drawn from `layers`; params: alpha, layers, block_gradient",
        super::manifold_mixup::build,
    ),
    Entry::typed::<super::cutmix::Params>(
        "cutmix",
        "CutMix (Yun et al., 2019): paste a partner's box, mix labels by its area; params: alpha, prob (chance a minibatch is cut-mixed, default 1)",
        super::cutmix::build,
    ),
    Entry::typed::<super::cutout::Params>(
        "cutout",
        "Cutout (DeVries & Taylor, 2017) as the reference's: zero a length×length patch; params: length, holes (default 1), per_example (default false: one mask per minibatch, as the reference)",
        super::cutout::build,
    ),
];

/// Every regularizer: the built-in ones and those a downstream crate registered.
pub static REGISTRY: Registry<BuildFn> = Registry::new("regularizer", BUILTIN);

/// Builds the regularizer named `name`.
pub fn build(name: &str, params: &Map<String, Value>) -> Result<Box<dyn Regularizer>> {
    (REGISTRY.get(name)?.build)(params)
}

/// Names of all registered regularizers.
pub fn names() -> Vec<&'static str> {
    REGISTRY.names()
}
