//! The `DatasetSource` trait every dataset implements, and the registry of them by name.

use std::path::PathBuf;

use serde::Serialize;

use super::{ImageDataset, Preprocessing};
use crate::error::Result;

/// Options that apply to every dataset load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Directory searched for dataset files (`--data-dir`, else `MIXBENCH_DATA`, else `./data`).
    pub data_dir: PathBuf,
    /// Turn a checksum mismatch into a warning recorded in provenance instead of an error.
    pub allow_unverified: bool,
    /// Told how far a long load has come (decoding a full-size dataset takes tens of seconds).
    pub progress: Option<LoadProgress>,
}

impl LoadOptions {
    /// The same options, reporting progress to `progress`.
    pub fn with_progress(&self, progress: Option<LoadProgress>) -> LoadOptions {
        LoadOptions {
            progress,
            ..self.clone()
        }
    }
}

/// A callback taking `(stage, done, total)`.
pub type LoadProgressFn = dyn Fn(&str, u64, u64) + Send + Sync;

/// Receives `(stage, done, total)` as a long load advances; called from any thread.
#[derive(Clone)]
pub struct LoadProgress(pub std::sync::Arc<LoadProgressFn>);

impl LoadProgress {
    /// Reports `done` of `total` units of `stage`.
    pub fn report(&self, stage: &str, done: u64, total: u64) {
        (self.0)(stage, done, total)
    }
}

impl std::fmt::Debug for LoadProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoadProgress")
    }
}

/// Presence of a dataset on disk, as `mixbench data status` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Presence {
    /// All expected files found (and verified when hashing was requested).
    Present,
    /// Built into the binary or generated; nothing to download.
    Embedded,
    /// No files found; the string explains where it looked and how to get them.
    Missing(String),
    /// Files found but wrong size, format or checksum; the string says which.
    Corrupt(String),
}

/// One line of `mixbench data status`.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetStatus {
    /// Registry name.
    pub name: String,
    /// Where the files were found (or the first place looked).
    pub path: Option<PathBuf>,
    /// Present, embedded, missing or corrupt.
    pub presence: Presence,
    /// Fingerprint when known (after hashing).
    pub fingerprint: Option<String>,
    /// Extra facts: the layout found, warnings allowed by `allow_unverified`, unverifiable files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The geometry and size of a dataset as loaded with some parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Classes.
    pub classes: usize,
    /// Training images (before any per-class cap).
    pub train_size: usize,
    /// Test images (before any per-class cap); 0 where a source does not say.
    pub test_size: usize,
}

impl DataShape {
    /// A shape from its five numbers.
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        classes: usize,
        train_size: usize,
    ) -> Self {
        DataShape {
            channels,
            height,
            width,
            classes,
            train_size,
            test_size: 0,
        }
    }

    /// The same shape with `test_size` test images.
    pub fn with_test_size(self, test_size: usize) -> Self {
        DataShape { test_size, ..self }
    }
}

/// A dataset that can be loaded by name from a suite.
pub trait DatasetSource: Send + Sync {
    /// Registry name used in suites (`cifar10`, `svhn`, ...).
    fn name(&self) -> &'static str;
    /// What a load with `params` gives, without reading or generating anything: image geometry,
    /// classes and training-set size (checks before training; cost estimates for shards).
    fn shape(&self, params: &serde_json::Value) -> Result<DataShape>;
    /// Loads the dataset; `params` are the dataset-specific keys of the suite's `dataset` block.
    fn load(&self, params: &serde_json::Value, opts: &LoadOptions) -> Result<ImageDataset>;
    /// Reports presence; with `verify`, re-hashes every file against the manifest.
    fn status(&self, opts: &LoadOptions, verify: bool) -> DatasetStatus;
    /// The reference code's preprocessing for this dataset (normalisation, crop, flip).
    fn default_preprocessing(&self) -> Preprocessing;
    /// Whether the loaded set carries latent factors and a renderer (factor mixup).
    fn has_latent_factors(&self) -> bool {
        false
    }
}
