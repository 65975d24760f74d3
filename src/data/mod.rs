//! Datasets: in-memory image sets, the synthetic generator, real readers and batching.

pub mod batch;
pub mod dataset;
pub mod hash;
pub mod registry;
pub mod source;
pub mod subset;
pub mod synthetic;

pub use batch::Preprocessing;
pub use dataset::{DatasetProvenance, ImageDataset, SourceFile, Split};
pub use source::{DatasetSource, DatasetStatus, LoadOptions, Presence};
