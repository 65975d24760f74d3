//! Datasets: in-memory image sets, the synthetic generator, real readers and batching.

pub mod batch;
pub mod cifar;
pub mod dataset;
pub mod digits;
pub mod glyphs;
pub mod hash;
pub mod idx;
pub mod location;
pub mod manifest;
pub mod mnist;
pub mod registry;
pub mod source;
pub mod status;
pub mod subset;
pub mod svhn;
pub mod synthetic;
pub mod tiny_imagenet;

pub use batch::Preprocessing;
pub use dataset::{DatasetProvenance, ImageDataset, SourceFile, Split};
pub use location::resolve_data_dir;
pub use source::{DataShape, DatasetSource, DatasetStatus, LoadOptions, Presence};
