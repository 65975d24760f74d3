//! mixbench: a reproducibility harness for Manifold Mixup (Verma et al., ICML 2019).
//!
//! Data flows one way: suite → experiments → data + model + regularizer → train → eval →
//! result records → diff → report. See ARCHITECTURE.md.

#![warn(unreachable_pub)]

pub mod app;
pub mod cli;
pub mod data;
pub mod error;
pub mod eval;
pub mod experiment;
pub(crate) mod files;
pub(crate) mod harness;
pub mod kernels;
pub mod memory;
pub mod model;
pub mod numerics;
pub(crate) mod ops;
pub mod params;
pub mod registry;
pub mod regularizer;
pub(crate) mod report;
pub(crate) mod results;
pub mod rng;
pub mod scoring;
pub mod suite;
pub mod threads;
pub mod train;

pub use app::App;
pub use error::{Error, Result};
