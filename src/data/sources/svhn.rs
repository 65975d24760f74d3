//! SVHN cropped digits ("format 2"): MATLAB v5 files holding `X` as uint8 [32,32,3,N] in
//! column-major order and `y` as double [N,1] with label 10 meaning digit 0.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::files::manifest::{
    self, ExpectedFile, KnownHash, Layout, Manifest, check_records, thousands,
};
use crate::data::{
    DataShape, DatasetProvenance, DatasetSource, DatasetStatus, ImageDataset, LoadOptions,
    Preprocessing, Split,
};
use crate::error::{Error, Result};

// md5: torchvision `datasets/svhn.py` `split_list`; sha256 and sizes: TFDS
// `url_checksums/svhn_cropped.txt`; record counts: the dataset page and datasets.md §2.
const TV: &str = "torchvision svhn.py";
const TFDS: &str = "TFDS url_checksums/svhn_cropped.txt";

static SVHN_FILES: [ExpectedFile; 3] = [
    ExpectedFile {
        path: "train_32x32.mat",
        bytes: Some(182_040_794),
        records: Some(73_257),
        md5: Some(KnownHash {
            value: "e26dedcc434d2e4c54c9b2d4a06d8373",
            source: TV,
        }),
        sha256: Some(KnownHash {
            value: "435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8",
            source: TFDS,
        }),
        ..ExpectedFile::BLANK
    },
    ExpectedFile {
        path: "test_32x32.mat",
        bytes: Some(64_275_384),
        records: Some(26_032),
        md5: Some(KnownHash {
            value: "eb5a983be6a315427106f1b164d9cef3",
            source: TV,
        }),
        sha256: Some(KnownHash {
            value: "cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b",
            source: TFDS,
        }),
        ..ExpectedFile::BLANK
    },
    ExpectedFile {
        path: "extra_32x32.mat",
        bytes: Some(1_329_278_602),
        records: Some(531_131),
        md5: Some(KnownHash {
            value: "a93ce644f1a588dc4d68dda5feec44a7",
            source: TV,
        }),
        sha256: Some(KnownHash {
            value: "a133a4beb38a00fcdda90c9489e0c04f900b660ce8a316a5e854838379a71eb3",
            source: TFDS,
        }),
        optional: true,
        ..ExpectedFile::BLANK
    },
];

/// Manifest of SVHN cropped digits.
pub static SVHN_MANIFEST: Manifest = Manifest {
    dataset: "svhn",
    title: "SVHN cropped digits (format 2)",
    subdirs: &["svhn", ""],
    layouts: &[Layout {
        id: "mat",
        label: "the .mat files as downloaded (extra only if requested)",
        files: &SVHN_FILES,
    }],
    published: "http://ufldl.stanford.edu/housenumbers/ (\"Format 2: Cropped Digits\"; non-commercial use only)",
};

/// A training split of SVHN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SvhnSplit {
    /// `train_32x32.mat` (73,257 images).
    Train,
    /// `extra_32x32.mat` (531,131 easier images; the reference code does not use it).
    Extra,
}

fn default_splits() -> Vec<SvhnSplit> {
    vec![SvhnSplit::Train]
}

/// SVHN options from the suite's `params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SvhnParams {
    /// Splits concatenated into the training set (default `["train"]`, as the reference).
    #[serde(default = "default_splits")]
    pub splits: Vec<SvhnSplit>,
    /// Keep at most this many training images per class (the reference uses 7325).
    #[serde(default)]
    pub cap_per_class: Option<usize>,
    /// Seed of the ChaCha8 generator that picks which images survive the cap.
    #[serde(default)]
    pub split_seed: u64,
}

impl Default for SvhnParams {
    fn default() -> Self {
        SvhnParams {
            splits: default_splits(),
            cap_per_class: None,
            split_seed: 0,
        }
    }
}

fn mat_err(file: &str, what: String) -> Error {
    Error::Data(format!("svhn: {file}: {what}"))
}

/// Decodes an SVHN `.mat` file: `X` uint8 [32,32,3,N] column-major becomes CHW row-major
/// images, `y` (1..10, 10 = digit 0) becomes labels 0..9.
pub fn read_svhn_mat(file: &str, bytes: &[u8]) -> Result<Split> {
    check_header(file, bytes)?;
    check_elements(file, bytes)?;
    let mat = matfile::MatFile::parse(bytes).map_err(|e| {
        mat_err(
            file,
            format!("cannot be parsed as a MATLAB v5 MAT-file ({e}); it is corrupt or truncated"),
        )
    })?;
    let array = |name: &str| {
        mat.find_by_name(name).ok_or_else(|| {
            let found: Vec<String> = mat
                .arrays()
                .iter()
                .map(|a| format!("{} {:?}", a.name(), a.size()))
                .collect();
            let found = if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            };
            mat_err(
                file,
                format!(
                    "has no numeric array `{name}` (found: {found}); expected X uint8 [32,32,3,N] and y [N,1]"
                ),
            )
        })
    };
    let (x, y) = (array("X")?, array("y")?);
    let (n, xs) = images_of(file, x)?;
    let labels = labels_of(file, y, n)?;
    Ok(Split {
        images: to_chw(xs, n),
        labels,
    })
}

/// Refuses files that are not MATLAB v5 MAT-files, naming what they are instead.
fn check_header(file: &str, bytes: &[u8]) -> Result<()> {
    if bytes.len() < 128 {
        return Err(mat_err(
            file,
            format!(
                "{} bytes, too short for a MAT-file header (128 bytes)",
                bytes.len()
            ),
        ));
    }
    let text = String::from_utf8_lossy(&bytes[..116]);
    if text.starts_with("MATLAB 7.3") {
        return Err(mat_err(
            file,
            "is a MATLAB v7.3 (HDF5) file; expected a MATLAB v5 MAT-file as distributed by the SVHN page (re-save with `save -v7`)".into(),
        ));
    }
    if !text.starts_with("MATLAB 5.0 MAT-file") {
        return Err(mat_err(
            file,
            "is not a MATLAB v5 MAT-file (its header does not start with \"MATLAB 5.0 MAT-file\")"
                .into(),
        ));
    }
    Ok(())
}

/// The image count and the raw uint8 pixels of `X` [32,32,3,N].
fn images_of<'a>(file: &str, x: &'a matfile::Array) -> Result<(usize, &'a [u8])> {
    let dims = x.size();
    if dims.len() != 4 || dims[0] != 32 || dims[1] != 32 || dims[2] != 3 {
        return Err(mat_err(
            file,
            format!(
                "X has dimensions {dims:?}, expected [32, 32, 3, N] (32x32 RGB images, column-major)"
            ),
        ));
    }
    let matfile::NumericData::UInt8 { real: xs, .. } = x.data() else {
        return Err(mat_err(
            file,
            format!("X has class {}, expected uint8", class_name(x.data())),
        ));
    };
    Ok((dims[3], xs))
}

/// Labels 0..9 from `y` [N,1] (1..10, 10 = digit 0), one per image.
fn labels_of(file: &str, y: &matfile::Array, n: usize) -> Result<Vec<u32>> {
    let ydims = y.size();
    if !(ydims.len() == 2 && ydims.iter().product::<usize>() == n && ydims.contains(&1)) {
        return Err(mat_err(
            file,
            format!("y has dimensions {ydims:?}, expected [{n}, 1] to match X's {n} images"),
        ));
    }
    let yv: Vec<f64> = match y.data() {
        matfile::NumericData::Double { real, .. } => real.clone(),
        matfile::NumericData::Single { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        matfile::NumericData::UInt8 { real, .. } => real.iter().map(|&v| f64::from(v)).collect(),
        other => {
            return Err(mat_err(
                file,
                format!("y has class {}, expected double", class_name(other)),
            ));
        }
    };
    yv.iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() == 0.0 && (1.0..=10.0).contains(&v) {
                // SVHN stores digit 0 as label 10; torchvision maps it back to 0.
                Ok(v as u32 % 10)
            } else {
                Err(mat_err(
                    file,
                    format!("y[{i}] is {v}; SVHN labels must be integers 1..10 (10 = digit 0)"),
                ))
            }
        })
        .collect()
}

/// `n` images from MATLAB's column-major [32,32,3,N] into CHW row-major.
fn to_chw(xs: &[u8], n: usize) -> Vec<u8> {
    const IMG: usize = 3 * 32 * 32;
    let mut images = vec![0u8; n * IMG];
    // X(h,w,c,n) sits at h + 32w + 1024c + 3072n; CHW row-major wants c*1024 + h*32 + w.
    images
        .par_chunks_mut(IMG)
        .zip(xs.par_chunks(IMG))
        .for_each(|(dst, src)| {
            for c in 0..3 {
                let plane = &src[c * 1024..(c + 1) * 1024];
                let dplane = &mut dst[c * 1024..(c + 1) * 1024];
                for w in 0..32 {
                    let col = &plane[w * 32..(w + 1) * 32];
                    for (h, &v) in col.iter().enumerate() {
                        dplane[h * 32 + w] = v;
                    }
                }
            }
        });
    images
}

/// Walks the top-level data elements: matfile silently drops an element cut short, so a
/// truncated file would otherwise read as "no array X".
fn check_elements(file: &str, bytes: &[u8]) -> Result<()> {
    let little = &bytes[126..128] == b"IM";
    let word = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut at = 128usize;
    while at < bytes.len() {
        if at + 8 > bytes.len() {
            return Err(mat_err(
                file,
                format!(
                    "ends inside a data element tag at byte {at}; the file is corrupt or truncated"
                ),
            ));
        }
        let (ty, n) = (word(at), word(at + 4) as usize);
        // miCOMPRESSED (15) elements are not padded; miMATRIX (14) ones are, to 8 bytes.
        let padded = if ty == 15 { n } else { n.div_ceil(8) * 8 };
        let end = at + 8 + padded;
        if end > bytes.len() + (padded - n) {
            return Err(mat_err(
                file,
                format!(
                    "data element at byte {at} declares {n} bytes but the file ends after {}; the file is corrupt or truncated",
                    bytes.len() - at - 8
                ),
            ));
        }
        at = end;
    }
    Ok(())
}

fn class_name(d: &matfile::NumericData) -> &'static str {
    use matfile::NumericData as N;
    match d {
        N::Int8 { .. } => "int8",
        N::UInt8 { .. } => "uint8",
        N::Int16 { .. } => "int16",
        N::UInt16 { .. } => "uint16",
        N::Int32 { .. } => "int32",
        N::UInt32 { .. } => "uint32",
        N::Int64 { .. } => "int64",
        N::UInt64 { .. } => "uint64",
        N::Single { .. } => "single",
        N::Double { .. } => "double",
    }
}

/// Registry entry for SVHN.
pub struct SvhnSource;

fn read_split(
    m: &'static Manifest,
    found: &manifest::Found,
    file: &str,
    opts: &LoadOptions,
    notes: &mut Vec<String>,
    files: &mut Vec<crate::data::SourceFile>,
) -> Result<Split> {
    let exp = m.layouts[0]
        .files
        .iter()
        .find(|f| f.path == file)
        .ok_or_else(|| Error::Other(format!("svhn manifest lacks {file}")))?;
    let path = found.path_of(file).ok_or_else(|| {
        Error::Data(format!(
            "svhn: {} is missing but the suite's `splits` asks for it. Expected {} ({} bytes, md5 {}); official distribution: {}",
            found.root.join(file).display(),
            file,
            thousands(exp.bytes.unwrap_or(0)),
            exp.md5.map_or("?", |h| h.value),
            m.published
        ))
    })?;
    let (bytes, sf) = manifest::read_verified(m, exp, path, opts, notes)?;
    files.push(sf);
    let split = read_svhn_mat(&display(path), &bytes)?;
    check_records(
        "svhn",
        file,
        exp.records,
        split.len(),
        opts.allow_unverified,
        notes,
    )?;
    Ok(split)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

impl DatasetSource for SvhnSource {
    fn name(&self) -> &'static str {
        "svhn"
    }

    fn shape(&self, params: &serde_json::Value) -> Result<DataShape> {
        let p: SvhnParams = manifest::parse_params("svhn", params)?;
        let mut n: usize = p
            .splits
            .iter()
            .map(|s| match s {
                SvhnSplit::Train => 73_257,
                SvhnSplit::Extra => 531_131,
            })
            .sum();
        if let Some(cap) = p.cap_per_class {
            n = n.min(cap * 10);
        }
        Ok(DataShape::new(3, 32, 32, 10, n).with_test_size(26_032))
    }

    fn load(&self, params: &serde_json::Value, opts: &LoadOptions) -> Result<ImageDataset> {
        let p: SvhnParams = manifest::parse_params("svhn", params)?;
        if p.splits.is_empty() {
            return Err(Error::Config(
                "dataset `svhn` params: `splits` is empty; use [\"train\"], [\"extra\"] or both"
                    .into(),
            ));
        }
        let m = &SVHN_MANIFEST;
        let found = m.find(&opts.data_dir)?;
        let mut notes = vec![format!("read from {}", found.root.display())];
        let mut files = Vec::new();
        let mut train = Split {
            images: Vec::new(),
            labels: Vec::new(),
        };
        let mut used = Vec::new();
        for s in &p.splits {
            let file = match s {
                SvhnSplit::Train => "train_32x32.mat",
                SvhnSplit::Extra => "extra_32x32.mat",
            };
            if used.contains(&file) {
                continue;
            }
            used.push(file);
            let part = read_split(m, &found, file, opts, &mut notes, &mut files)?;
            train.images.extend_from_slice(&part.images);
            train.labels.extend_from_slice(&part.labels);
        }
        notes.push(format!("training splits: {}", used.join(" + ")));
        let test = read_split(m, &found, "test_32x32.mat", opts, &mut notes, &mut files)?;
        if let Some(cap) = p.cap_per_class {
            let before = train.len();
            let mut rng = ChaCha8Rng::seed_from_u64(p.split_seed);
            train = crate::data::subset::cap_per_class(&train, 3 * 32 * 32, cap, &mut rng);
            notes.push(format!(
                "training set capped at {cap} images per class (ChaCha8 split_seed {}): {} of {} kept",
                p.split_seed,
                train.len(),
                before
            ));
        }
        Ok(ImageDataset {
            latent: None,
            channels: 3,
            height: 32,
            width: 32,
            num_classes: 10,
            train,
            test,
            provenance: DatasetProvenance {
                name: "svhn".into(),
                fingerprint: manifest::fingerprint(&files),
                files,
                notes,
            },
        })
    }

    fn status(&self, opts: &LoadOptions, verify: bool) -> DatasetStatus {
        SVHN_MANIFEST.status(opts, verify)
    }

    fn default_preprocessing(&self) -> Preprocessing {
        // Reference `load_data_subset`: RandomCrop(32, padding=2), no flip (digits are not
        // mirror-symmetric), Normalize((0.5,)*3, (0.5,)*3).
        Preprocessing {
            crop_padding: 2,
            hflip: false,
            ..Preprocessing::centered(3)
        }
    }
}
