//! mixbench: a reproducibility harness for Manifold Mixup (Verma et al., ICML 2019).
//!
//! Data flows one way: suite → experiments → data + model + regularizer → train → eval →
//! result records → diff → report. See ARCHITECTURE.md.

pub mod data;
pub mod error;

pub use error::{Error, Result};
