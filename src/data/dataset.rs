//! In-memory image datasets: u8 pixels in CHW order plus integer labels.

use serde::{Deserialize, Serialize};

/// One split (train or test) of an image dataset, pixels kept as u8 to save memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// N × C × H × W bytes, image-major then channel-major (CHW per image).
    pub images: Vec<u8>,
    /// One class index per image, each `< num_classes`.
    pub labels: Vec<u32>,
}

impl Split {
    /// Number of images in this split.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// One hashed input file (or generator description) that a dataset was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceFile {
    /// File name relative to the dataset directory (or a generator label).
    pub name: String,
    /// Size in bytes of what was hashed.
    pub bytes: u64,
    /// Lower-case hex sha256 of the file's bytes.
    pub sha256: String,
    /// Whether the hash matched the canonical value recorded in the manifest.
    pub verified: bool,
}

/// Where a dataset came from; travels with every result record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetProvenance {
    /// Registry name of the dataset (`cifar10`, `synthetic`, `digits`, ...).
    pub name: String,
    /// sha256 over the source files' sha256 values in a fixed order (or the generator parameters).
    pub fingerprint: String,
    /// The hashed inputs, in the order the fingerprint was computed.
    pub files: Vec<SourceFile>,
    /// Free-form facts a reader of the result needs (split seed, subset sizes, caps, warnings).
    pub notes: Vec<String>,
}

/// A labelled image dataset held in memory.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    /// Channels per image.
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Number of classes; labels are `0..num_classes`.
    pub num_classes: usize,
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
    /// Provenance recorded with results.
    pub provenance: DatasetProvenance,
    /// Latent factors of the training images and their renderer, for generated sets that
    /// have them (factor-space mixing); None for image files.
    pub latent: Option<std::sync::Arc<dyn super::LatentFactors>>,
}

impl ImageDataset {
    /// Bytes per image (C × H × W).
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Geometry of its images.
    pub fn shape(&self) -> super::batch::ImageShape {
        super::batch::ImageShape {
            c: self.channels,
            h: self.height,
            w: self.width,
        }
    }
}
