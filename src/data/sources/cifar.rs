//! CIFAR-10 and CIFAR-100, binary version, from the `.tar.gz` as downloaded or extracted.
//!
//! A CIFAR-10 record is 1 label byte + 3,072 pixel bytes (R, G, B planes, each 32×32
//! row-major), which is already the CHW order `Split` stores. A CIFAR-100 record has a coarse
//! then a fine label byte before the pixels. The reference code reads the python pickles; the
//! binary files hold the same bytes in the same order (research note datasets.md §1.2), so the
//! harness sees what the reference sees.

use std::io::Read;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::files::manifest::{
    self, ExpectedFile, KnownHash, Layout, Manifest, check_records, thousands,
};
use crate::data::{
    DataShape, DatasetProvenance, DatasetSource, DatasetStatus, ImageDataset, LoadOptions,
    Preprocessing, SourceFile, Split,
};
use crate::error::{Error, Result};

/// Pixel bytes per CIFAR image (3 × 32 × 32).
pub const IMAGE_BYTES: usize = 3 * 32 * 32;

/// How labels sit at the start of each record.
#[derive(Debug, Clone, Copy)]
pub struct RecordFormat {
    /// Exclusive upper bound of each label byte, in record order (CIFAR-100: coarse, fine).
    pub label_limits: &'static [u32],
    /// Which label byte becomes the class.
    pub use_label: usize,
}

impl RecordFormat {
    /// CIFAR-10: one label byte 0..9.
    pub const CIFAR10: RecordFormat = RecordFormat {
        label_limits: &[10],
        use_label: 0,
    };
    /// CIFAR-100 with the fine (100-class) label, as the paper uses.
    pub const CIFAR100_FINE: RecordFormat = RecordFormat {
        label_limits: &[20, 100],
        use_label: 1,
    };
    /// CIFAR-100 with the coarse (20-superclass) label.
    pub const CIFAR100_COARSE: RecordFormat = RecordFormat {
        label_limits: &[20, 100],
        use_label: 0,
    };

    /// Bytes per record.
    pub fn record_len(&self) -> usize {
        self.label_limits.len() + IMAGE_BYTES
    }
}

/// Appends the records of one binary CIFAR file to `out`, checking length and label ranges.
pub fn parse_records(
    dataset: &str,
    file: &str,
    bytes: &[u8],
    fmt: RecordFormat,
    out: &mut Split,
) -> Result<()> {
    let rec = fmt.record_len();
    let nl = fmt.label_limits.len();
    if bytes.is_empty() || !bytes.len().is_multiple_of(rec) {
        return Err(Error::Data(format!(
            "{dataset}: {file} is {} bytes, not a whole number of {}-byte records ({nl} label byte{} + {} pixel bytes); the file is truncated or is not the binary version",
            thousands(bytes.len() as u64),
            thousands(rec as u64),
            if nl == 1 { "" } else { "s" },
            thousands(IMAGE_BYTES as u64)
        )));
    }
    let n = bytes.len() / rec;
    out.images.reserve(n * IMAGE_BYTES);
    out.labels.reserve(n);
    for (i, r) in bytes.chunks_exact(rec).enumerate() {
        for (k, &limit) in fmt.label_limits.iter().enumerate() {
            if u32::from(r[k]) >= limit {
                let which = match (nl, k) {
                    (1, _) => "label",
                    (_, 0) => "coarse label",
                    _ => "fine label",
                };
                return Err(Error::Data(format!(
                    "{dataset}: {file} record {i} has {which} {}; labels must be 0..{}",
                    r[k],
                    limit - 1
                )));
            }
        }
        out.labels.push(u32::from(r[fmt.use_label]));
        out.images.extend_from_slice(&r[nl..]);
    }
    Ok(())
}

/// Reads the named members of a `.tar.gz` held in memory, in the order of `wanted`.
/// Member names match with or without a leading `./`.
pub fn read_tar_gz_members(
    dataset: &str,
    archive: &Path,
    bytes: &[u8],
    wanted: &[&str],
) -> Result<Vec<Vec<u8>>> {
    let bad = |e: std::io::Error| {
        Error::Data(format!(
            "{dataset}: {} is not a readable .tar.gz archive ({e}); expected the archive exactly as downloaded",
            archive.display()
        ))
    };
    let mut found: Vec<Option<Vec<u8>>> = vec![None; wanted.len()];
    let mut seen = Vec::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = name.trim_start_matches("./").to_string();
        if let Some(i) = wanted.iter().position(|w| *w == name) {
            let mut buf = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut buf).map_err(bad)?;
            found[i] = Some(buf);
        } else if seen.len() < 12 {
            seen.push(name);
        }
    }
    wanted
        .iter()
        .zip(found)
        .map(|(w, f)| {
            f.ok_or_else(|| {
                Error::Data(format!(
                    "{dataset}: archive {} has no member `{w}` (other members: {}); expected the official binary-version archive",
                    archive.display(),
                    if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
                ))
            })
        })
        .collect()
}

/// What distinguishes the two CIFARs.
struct CifarSpec {
    manifest: &'static Manifest,
    /// Folder inside the archive.
    folder: &'static str,
    /// Training files, in reading order.
    train: &'static [&'static str],
    /// Test file.
    test: &'static str,
}

fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn load_cifar(
    spec: &CifarSpec,
    fmt: RecordFormat,
    num_classes: usize,
    opts: &LoadOptions,
    mut notes: Vec<String>,
) -> Result<ImageDataset> {
    let m = spec.manifest;
    let found = m.find(&opts.data_dir)?;
    let mut files: Vec<SourceFile> = Vec::new();
    // (base name, bytes) of every record file, read from the archive or from disk.
    let mut members: Vec<(&'static str, Vec<u8>)> = Vec::new();
    // Expected record counts come from the extracted layout, whose rows describe each .bin.
    let extracted = m
        .layouts
        .iter()
        .find(|l| l.id == "extracted")
        .map(|l| l.files)
        .unwrap_or(&[]);
    if found.layout.id == "archive" {
        let exp = &found.layout.files[0];
        let path = found.paths[0].as_deref().unwrap_or(Path::new(exp.path));
        // The archive itself is never gunzipped here (its manifest entry has no `gz`).
        let (raw, sf) = manifest::read_verified(m, exp, path, opts, &mut notes)?;
        files.push(sf);
        notes.push(format!("read from archive {}", path.display()));
        let names: Vec<String> = spec
            .train
            .iter()
            .chain(std::iter::once(&spec.test))
            .map(|b| format!("{}/{}", spec.folder, b))
            .collect();
        let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
        let data = read_tar_gz_members(m.dataset, path, &raw, &wanted)?;
        drop(raw);
        for (b, bytes) in spec
            .train
            .iter()
            .chain(std::iter::once(&spec.test))
            .zip(data)
        {
            members.push((b, bytes));
        }
    } else {
        notes.push(format!(
            "read extracted files from {}",
            found.root.display()
        ));
        for (exp, p) in found.layout.files.iter().zip(&found.paths) {
            let Some(p) = p else { continue };
            let (bytes, sf) = manifest::read_verified(m, exp, p, opts, &mut notes)?;
            files.push(sf);
            let b = spec
                .train
                .iter()
                .chain(std::iter::once(&spec.test))
                .find(|b| **b == base_name(exp.path))
                .copied()
                .unwrap_or(spec.test);
            members.push((b, bytes));
        }
    }
    let mut train = Split {
        images: Vec::new(),
        labels: Vec::new(),
    };
    let mut test = train.clone();
    for (b, bytes) in &members {
        let out = if *b == spec.test {
            &mut test
        } else {
            &mut train
        };
        let before = out.len();
        parse_records(m.dataset, b, bytes, fmt, out)?;
        let want = extracted
            .iter()
            .find(|e| base_name(e.path) == *b)
            .and_then(|e| e.records);
        check_records(
            m.dataset,
            b,
            want,
            out.len() - before,
            opts.allow_unverified,
            &mut notes,
        )?;
    }
    Ok(ImageDataset {
        latent: None,
        channels: 3,
        height: 32,
        width: 32,
        num_classes,
        train,
        test,
        provenance: DatasetProvenance {
            name: m.dataset.into(),
            fingerprint: manifest::fingerprint(&files),
            files,
            notes,
        },
    })
}

// --- CIFAR-10 manifest -------------------------------------------------------------------
// Archive md5: the Toronto CIFAR page (https://www.cs.toronto.edu/~kriz/cifar.html).
// Archive sha256 and size: TFDS `url_checksums/cifar10.txt`.
// Per-.bin md5: third-party, the same six values in rai-project/dldataset `vision/cifar10.go`
// and two independent CMake `fetch_cifar10` scripts (research note datasets.md §1.1).
// No sha256 of the extracted .bin files is published anywhere we found.

const C10_BIN_SRC: &str = "third-party: rai-project/dldataset and 2 CMake scripts agree";

macro_rules! c10_bins {
    ($prefix:literal) => {
        [
            c10_bin!(
                $prefix,
                "data_batch_1.bin",
                "5dd7e06a14cb22eb9f671a540d1b7c25"
            ),
            c10_bin!(
                $prefix,
                "data_batch_2.bin",
                "5ea93a67294ea407fff1d09f752e9692"
            ),
            c10_bin!(
                $prefix,
                "data_batch_3.bin",
                "942cd6a4bcdd0dd3c604fbe906cb4421"
            ),
            c10_bin!(
                $prefix,
                "data_batch_4.bin",
                "ae636b3ba5c66a11e91e8cb52e771fcb"
            ),
            c10_bin!(
                $prefix,
                "data_batch_5.bin",
                "53f37980c15c3d472c316c40844f3f0d"
            ),
            c10_bin!(
                $prefix,
                "test_batch.bin",
                "803d5f7f4d78ea53de84dbe85f74fb6d"
            ),
        ]
    };
}
macro_rules! c10_bin {
    ($prefix:literal, $name:literal, $md5:literal) => {
        ExpectedFile {
            path: concat!($prefix, $name),
            bytes: Some(30_730_000),
            records: Some(10_000),
            md5: Some(KnownHash {
                value: $md5,
                source: C10_BIN_SRC,
            }),
            ..ExpectedFile::BLANK
        }
    };
}

static C10_ARCHIVE: [ExpectedFile; 1] = [ExpectedFile {
    path: "cifar-10-binary.tar.gz",
    bytes: Some(170_052_171),
    records: Some(60_000),
    md5: Some(KnownHash {
        value: "c32a1d4ab5d03f1284b67883e8d87530",
        source: "Toronto CIFAR page",
    }),
    sha256: Some(KnownHash {
        value: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
        source: "TFDS url_checksums/cifar10.txt",
    }),
    ..ExpectedFile::BLANK
}];
static C10_EXTRACTED: [ExpectedFile; 6] = c10_bins!("cifar-10-batches-bin/");
static C10_FLAT: [ExpectedFile; 6] = c10_bins!("");

/// Manifest of CIFAR-10 (binary version).
pub static CIFAR10_MANIFEST: Manifest = Manifest {
    dataset: "cifar10",
    title: "CIFAR-10, binary version",
    subdirs: &["cifar10", ""],
    layouts: &[
        Layout {
            id: "archive",
            label: "the archive as downloaded",
            files: &C10_ARCHIVE,
        },
        Layout {
            id: "extracted",
            label: "the extracted archive",
            files: &C10_EXTRACTED,
        },
        Layout {
            id: "flat",
            label: "the .bin files directly in the folder",
            files: &C10_FLAT,
        },
    ],
    published: "https://www.cs.toronto.edu/~kriz/cifar.html (\"CIFAR-10 binary version (suitable for C programs)\")",
};

static CIFAR10_SPEC: CifarSpec = CifarSpec {
    manifest: &CIFAR10_MANIFEST,
    folder: "cifar-10-batches-bin",
    train: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test: "test_batch.bin",
};

// --- CIFAR-100 manifest ------------------------------------------------------------------
// Archive md5: the Toronto CIFAR page; archive sha256 and size: TFDS `url_checksums/cifar100.txt`.
// Per-.bin md5: a single third-party source (rai-project/dldataset `vision/cifar100.go`),
// unconfirmed, so errors name that source and `allow_unverified` is the way out if it is wrong.

const C100_BIN_SRC: &str = "third-party, single source (rai-project/dldataset), unconfirmed";

macro_rules! c100_bins {
    ($prefix:literal) => {
        [
            ExpectedFile {
                path: concat!($prefix, "train.bin"),
                bytes: Some(153_700_000),
                records: Some(50_000),
                md5: Some(KnownHash {
                    value: "6172c7755cfe09b2fe270c85cebc1b15",
                    source: C100_BIN_SRC,
                }),
                ..ExpectedFile::BLANK
            },
            ExpectedFile {
                path: concat!($prefix, "test.bin"),
                bytes: Some(30_740_000),
                records: Some(10_000),
                md5: Some(KnownHash {
                    value: "4499cfba6c016c1be1438163640a0898",
                    source: C100_BIN_SRC,
                }),
                ..ExpectedFile::BLANK
            },
        ]
    };
}

static C100_ARCHIVE: [ExpectedFile; 1] = [ExpectedFile {
    path: "cifar-100-binary.tar.gz",
    bytes: Some(168_513_733),
    records: Some(60_000),
    md5: Some(KnownHash {
        value: "03b5dce01913d631647c71ecec9e9cb8",
        source: "Toronto CIFAR page",
    }),
    sha256: Some(KnownHash {
        value: "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
        source: "TFDS url_checksums/cifar100.txt",
    }),
    ..ExpectedFile::BLANK
}];
static C100_EXTRACTED: [ExpectedFile; 2] = c100_bins!("cifar-100-binary/");
static C100_FLAT: [ExpectedFile; 2] = c100_bins!("");

/// Manifest of CIFAR-100 (binary version).
pub static CIFAR100_MANIFEST: Manifest = Manifest {
    dataset: "cifar100",
    title: "CIFAR-100, binary version",
    subdirs: &["cifar100", ""],
    layouts: &[
        Layout {
            id: "archive",
            label: "the archive as downloaded",
            files: &C100_ARCHIVE,
        },
        Layout {
            id: "extracted",
            label: "the extracted archive",
            files: &C100_EXTRACTED,
        },
        Layout {
            id: "flat",
            label: "the .bin files directly in the folder",
            files: &C100_FLAT,
        },
    ],
    published: "https://www.cs.toronto.edu/~kriz/cifar.html (\"CIFAR-100 binary version (suitable for C programs)\")",
};

static CIFAR100_SPEC: CifarSpec = CifarSpec {
    manifest: &CIFAR100_MANIFEST,
    folder: "cifar-100-binary",
    train: &["train.bin"],
    test: "test.bin",
};

/// CIFAR-10 takes no parameters; the struct exists so unknown keys are rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cifar10Params {}

/// Which CIFAR-100 label becomes the class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Cifar100Label {
    /// The 100 fine classes (the paper's setting).
    #[default]
    Fine,
    /// The 20 coarse superclasses.
    Coarse,
}

/// CIFAR-100 options from the suite's `params`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cifar100Params {
    /// `fine` (100 classes, default) or `coarse` (20 superclasses).
    #[serde(default)]
    pub label: Cifar100Label,
}

/// Registry entry for CIFAR-10.
pub struct Cifar10Source;

impl DatasetSource for Cifar10Source {
    fn name(&self) -> &'static str {
        "cifar10"
    }

    fn shape(&self, params: &serde_json::Value) -> Result<DataShape> {
        let _: Cifar10Params = manifest::parse_params("cifar10", params)?;
        Ok(DataShape::new(3, 32, 32, 10, 50_000).with_test_size(10_000))
    }

    fn load(&self, params: &serde_json::Value, opts: &LoadOptions) -> Result<ImageDataset> {
        let _: Cifar10Params = manifest::parse_params("cifar10", params)?;
        load_cifar(&CIFAR10_SPEC, RecordFormat::CIFAR10, 10, opts, vec![])
    }

    fn status(&self, opts: &LoadOptions, verify: bool) -> DatasetStatus {
        CIFAR10_MANIFEST.status(opts, verify)
    }

    fn default_preprocessing(&self) -> Preprocessing {
        // Reference `load_data_subset`: RandomCrop(32, padding=2) + RandomHorizontalFlip.
        Preprocessing {
            mean: vec![125.3 / 255.0, 123.0 / 255.0, 113.9 / 255.0],
            std: vec![63.0 / 255.0, 62.1 / 255.0, 66.7 / 255.0],
            crop_padding: 2,
            hflip: true,
        }
    }
}

/// Registry entry for CIFAR-100.
pub struct Cifar100Source;

impl DatasetSource for Cifar100Source {
    fn name(&self) -> &'static str {
        "cifar100"
    }

    fn shape(&self, params: &serde_json::Value) -> Result<DataShape> {
        let p: Cifar100Params = manifest::parse_params("cifar100", params)?;
        let classes = match p.label {
            Cifar100Label::Fine => 100,
            Cifar100Label::Coarse => 20,
        };
        Ok(DataShape::new(3, 32, 32, classes, 50_000).with_test_size(10_000))
    }

    fn load(&self, params: &serde_json::Value, opts: &LoadOptions) -> Result<ImageDataset> {
        let p: Cifar100Params = manifest::parse_params("cifar100", params)?;
        let (fmt, classes, kind) = match p.label {
            Cifar100Label::Fine => (RecordFormat::CIFAR100_FINE, 100, "fine"),
            Cifar100Label::Coarse => (RecordFormat::CIFAR100_COARSE, 20, "coarse"),
        };
        let notes = vec![format!("label: {kind} ({classes} classes)")];
        load_cifar(&CIFAR100_SPEC, fmt, classes, opts, notes)
    }

    fn status(&self, opts: &LoadOptions, verify: bool) -> DatasetStatus {
        CIFAR100_MANIFEST.status(opts, verify)
    }

    fn default_preprocessing(&self) -> Preprocessing {
        // Reference `load_data_subset`: RandomCrop(32, padding=2) + RandomHorizontalFlip.
        Preprocessing {
            mean: vec![129.3 / 255.0, 124.1 / 255.0, 112.4 / 255.0],
            std: vec![68.2 / 255.0, 65.4 / 255.0, 70.4 / 255.0],
            crop_padding: 2,
            hflip: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(labels: &[u8], fill: u8) -> Vec<u8> {
        let mut r = labels.to_vec();
        r.extend((0..IMAGE_BYTES).map(|i| fill.wrapping_add(i as u8)));
        r
    }

    #[test]
    fn parses_cifar100_fine_and_coarse() {
        let mut bytes = record(&[3, 42], 0);
        bytes.extend(record(&[19, 99], 7));
        let mut fine = Split {
            images: vec![],
            labels: vec![],
        };
        let mut coarse = fine.clone();
        parse_records("c", "f", &bytes, RecordFormat::CIFAR100_FINE, &mut fine).unwrap();
        parse_records("c", "f", &bytes, RecordFormat::CIFAR100_COARSE, &mut coarse).unwrap();
        assert_eq!(fine.labels, vec![42, 99]);
        assert_eq!(coarse.labels, vec![3, 19]);
        assert_eq!(fine.images[IMAGE_BYTES], 7);
        assert_eq!(fine.images.len(), 2 * IMAGE_BYTES);
    }

    #[test]
    fn rejects_bad_coarse_label() {
        let bytes = record(&[20, 5], 0);
        let mut s = Split {
            images: vec![],
            labels: vec![],
        };
        let e = parse_records(
            "cifar100",
            "train.bin",
            &bytes,
            RecordFormat::CIFAR100_FINE,
            &mut s,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("record 0 has coarse label 20; labels must be 0..19"),
            "{e}"
        );
    }
}
