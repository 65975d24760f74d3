//! Every regularizer by name: adding one is a new file plus one line in `ENTRIES`.

use serde_json::{Map, Value};

use super::Regularizer;
use crate::error::{Error, Result};

/// Builds a regularizer from its parameters (the suite's `regularizer` block without `name`).
pub type BuildFn = fn(&Map<String, Value>) -> Result<Box<dyn Regularizer>>;

/// One registered regularizer.
pub struct RegularizerEntry {
    /// Name used in suites.
    pub name: &'static str,
    /// One-line description with its parameters.
    pub description: &'static str,
    /// Constructor.
    pub build: BuildFn,
}

/// The registry.
pub const ENTRIES: &[RegularizerEntry] = &[
    RegularizerEntry {
        name: "none",
        description: "no mixing (the paper's \"No Mixup\")",
        build: super::none::build,
    },
    RegularizerEntry {
        name: "input_mixup",
        description: "mixup of inputs; params: alpha, per_example (one λ per example, as the reference's synthetic task)",
        build: super::input_mixup::build,
    },
    RegularizerEntry {
        name: "factor_mixup",
        description: "ground-truth factor mixup (Table 8): mix the latent factors, render the image; params: alpha (λ_i ~ Beta(α, α) per example; 1 = U(0, 1))",
        build: super::factor_mixup::build,
    },
    RegularizerEntry {
        name: "manifold_mixup",
        description: "mixup at a layer drawn from `layers`; params: alpha, layers, block_gradient",
        build: super::manifold_mixup::build,
    },
    RegularizerEntry {
        name: "cutmix",
        description: "CutMix (Yun et al., 2019): paste a partner's box, mix labels by its area; params: alpha, prob (chance a minibatch is cut-mixed, default 1)",
        build: super::cutmix::build,
    },
    RegularizerEntry {
        name: "cutout",
        description: "Cutout (DeVries & Taylor, 2017) as the reference's: zero a length×length patch; params: length, holes (default 1), per_example (default false: one mask per minibatch, as the reference)",
        build: super::cutout::build,
    },
];

/// Builds the regularizer named `name`.
pub fn build(name: &str, params: &Map<String, Value>) -> Result<Box<dyn Regularizer>> {
    let e = ENTRIES.iter().find(|e| e.name == name).ok_or_else(|| {
        Error::Config(format!(
            "unknown regularizer `{name}`; expected one of: {}",
            names().join(", ")
        ))
    })?;
    (e.build)(params)
}

/// Names of all registered regularizers.
pub fn names() -> Vec<&'static str> {
    ENTRIES.iter().map(|e| e.name).collect()
}
