//! Datasets: in-memory image sets (`dataset`, `latent`), their trait and registry (`source`,
//! `registry`), real readers (`sources/`), generators (`generated/`), files on disk (`files/`),
//! and what training does with them (`batch`, `subset`).

pub mod batch;
pub mod dataset;
pub mod files;
pub mod generated;
pub mod latent;
pub mod registry;
pub mod source;
pub mod sources;
pub mod subset;

pub use batch::Preprocessing;
pub use dataset::{DatasetProvenance, ImageDataset, SourceFile, Split};
pub use files::location::resolve_data_dir;
pub use latent::LatentFactors;
pub use source::{DataShape, DatasetSource, DatasetStatus, LoadOptions, LoadProgress, Presence};
