//! Tiny-ImageNet-200 from `tiny-imagenet-200.zip` or its extracted tree, decoded once into a
//! cached u8 array keyed by the source hash.
//!
//! Classes are numbered by **sorted** wnid, as torchvision's `ImageFolder` (which the reference
//! code uses) numbers its class folders; samples are ordered by (class, file name) like
//! `ImageFolder`. The test split is the official `val/` split, labelled by
//! `val/val_annotations.txt`. Greyscale JPEGs become RGB by channel replication, as PIL's
//! `convert('RGB')` does. JPEG decoders differ by a few grey levels (datasets.md §3), so hashes
//! are taken of the compressed bytes, never of decoded pixels.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::files::hash::{combine, sha256_hex};
use crate::data::files::manifest::{
    self, ExpectedFile, KnownHash, Layout, Located, Manifest, check_records, digest, read_file,
    verify,
};
use crate::data::{
    DataShape, DatasetProvenance, DatasetSource, DatasetStatus, ImageDataset, LoadOptions,
    LoadProgress, Preprocessing, Presence, SourceFile, Split,
};
use crate::error::{Error, Result};

const DS: &str = "tiny_imagenet";
/// Side of every Tiny-ImageNet image.
pub const SIDE: usize = 64;
const IMG: usize = 3 * SIDE * SIDE;

// Zip md5 and size: no torchvision/TFDS entry exists; >= 8 third-party loaders and download
// logs agree on these (datasets.md §3). No sha256 is published.
static TINY_ZIP: [ExpectedFile; 1] = [ExpectedFile {
    path: "tiny-imagenet-200.zip",
    bytes: Some(248_100_043),
    md5: Some(KnownHash {
        value: "90528d7ca1a48142e341f4ef8d21d0de",
        source: "third-party: >= 8 loaders and download logs agree",
    }),
    ..ExpectedFile::BLANK
}];
// The extracted tree has no published checksums; its fingerprint is a digest of every file read.
static TINY_TREE: [ExpectedFile; 2] = [
    ExpectedFile {
        path: "tiny-imagenet-200/wnids.txt",
        records: Some(200),
        ..ExpectedFile::BLANK
    },
    ExpectedFile {
        path: "tiny-imagenet-200/val/val_annotations.txt",
        records: Some(10_000),
        ..ExpectedFile::BLANK
    },
];
static TINY_FLAT: [ExpectedFile; 2] = [
    ExpectedFile {
        path: "wnids.txt",
        records: Some(200),
        ..ExpectedFile::BLANK
    },
    ExpectedFile {
        path: "val/val_annotations.txt",
        records: Some(10_000),
        ..ExpectedFile::BLANK
    },
];

/// Manifest of Tiny-ImageNet-200.
pub static TINY_IMAGENET_MANIFEST: Manifest = Manifest {
    dataset: DS,
    title: "Tiny-ImageNet-200",
    subdirs: &["tiny_imagenet", ""],
    layouts: &[
        Layout {
            id: "zip",
            label: "the zip as downloaded",
            files: &TINY_ZIP,
        },
        Layout {
            id: "tree",
            label: "the extracted zip (plus train/<wnid>/images/*.JPEG and val/images/*.JPEG)",
            files: &TINY_TREE,
        },
        Layout {
            id: "tree",
            label: "the contents of tiny-imagenet-200/ directly in the folder",
            files: &TINY_FLAT,
        },
    ],
    published: "http://cs231n.stanford.edu/tiny-imagenet-200.zip (CS231n; ImageNet terms: non-commercial research and education)",
};

/// Expected training images (500 per class).
const TRAIN_RECORDS: u64 = 100_000;
/// Expected validation images (50 per class).
const VAL_RECORDS: u64 = 10_000;

fn default_true() -> bool {
    true
}

/// Tiny-ImageNet options from the suite's `params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TinyImagenetParams {
    /// Read and write the decoded-array cache under `<data_dir>/.mixbench-cache/` (default true).
    #[serde(default = "default_true")]
    pub cache: bool,
}

impl Default for TinyImagenetParams {
    fn default() -> Self {
        TinyImagenetParams { cache: true }
    }
}

/// Zip bytes shared between the per-thread archive handles (cloning copies only the `Arc`).
#[derive(Clone)]
struct Shared(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Where each file of the source lives.
enum Source {
    /// A zip held in memory; relative path → entry index.
    Zip {
        archive: zip::ZipArchive<Cursor<Shared>>,
        path: PathBuf,
        entries: BTreeMap<String, usize>,
    },
    /// An extracted tree; relative path → file path.
    Dir { entries: BTreeMap<String, PathBuf> },
}

fn is_jpeg(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".jpeg") || lower.ends_with(".jpg")
}

/// Collects the files the reader needs (top-level text files, train/ and val/), skipping test/.
fn walk(root: &Path, rel: &str, out: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    let dir = root.join(rel);
    let rd = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(&dir, e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let ft = ent.file_type().map_err(|e| Error::io(ent.path(), e))?;
        if ft.is_dir() {
            if rel.is_empty() && name != "train" && name != "val" {
                continue;
            }
            walk(root, &r, out)?;
        } else {
            out.insert(r, ent.path());
        }
    }
    Ok(())
}

impl Source {
    fn open(
        found: &manifest::Found,
        opts: &LoadOptions,
        notes: &mut Vec<String>,
    ) -> Result<(Source, SourceFile)> {
        let m = &TINY_IMAGENET_MANIFEST;
        if found.layout.id == "zip" {
            let exp = &found.layout.files[0];
            let path = found.paths[0]
                .clone()
                .unwrap_or_else(|| found.root.join(exp.path));
            let raw = read_file(&path)?;
            let d = digest(&raw, true);
            let verified = verify(
                DS,
                m.published,
                exp,
                &path,
                &d,
                opts.allow_unverified,
                notes,
            )?;
            let archive = zip::ZipArchive::new(Cursor::new(Shared(std::sync::Arc::new(raw)))).map_err(|e| {
                Error::Data(format!(
                    "{DS}: {} is not a valid zip archive ({e}); expected tiny-imagenet-200.zip exactly as downloaded",
                    path.display()
                ))
            })?;
            // The folder holding wnids.txt is the dataset root inside the zip.
            let names: Vec<String> = archive
                .file_names_raw()
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect();
            let prefix = names
                .iter()
                .filter_map(|n| n.strip_suffix("wnids.txt"))
                .filter(|p| p.is_empty() || p.ends_with('/'))
                .min_by_key(|p| p.len())
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::Data(format!(
                        "{DS}: zip {} has no wnids.txt; expected tiny-imagenet-200/wnids.txt, train/, val/ inside",
                        path.display()
                    ))
                })?;
            let entries = names
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.strip_prefix(&prefix).map(|r| (r.to_string(), i)))
                .filter(|(r, _)| !r.is_empty() && !r.ends_with('/'))
                .collect();
            notes.push(format!("read from zip {}", path.display()));
            let sf = SourceFile {
                name: exp.path.into(),
                bytes: d.bytes,
                sha256: d.sha256,
                verified,
            };
            Ok((
                Source::Zip {
                    archive,
                    path,
                    entries,
                },
                sf,
            ))
        } else {
            let wn = found.paths[0].clone().unwrap_or_default();
            let root = wn.parent().map(Path::to_path_buf).unwrap_or_default();
            let mut entries = BTreeMap::new();
            walk(&root, "", &mut entries)?;
            notes.push(format!("read extracted tree {}", root.display()));
            // Placeholder; the tree digest is filled in once the files have been read.
            let sf = SourceFile {
                name: "tiny-imagenet-200/".into(),
                bytes: 0,
                sha256: String::new(),
                verified: false,
            };
            Ok((Source::Dir { entries }, sf))
        }
    }

    fn names(&self) -> Vec<&str> {
        match self {
            Source::Zip { entries, .. } => entries.keys().map(String::as_str).collect(),
            Source::Dir { entries } => entries.keys().map(String::as_str).collect(),
        }
    }

    fn has(&self, rel: &str) -> bool {
        match self {
            Source::Zip { entries, .. } => entries.contains_key(rel),
            Source::Dir { entries } => entries.contains_key(rel),
        }
    }

    fn where_(&self) -> String {
        match self {
            Source::Zip { path, .. } => format!("zip {}", path.display()),
            Source::Dir { .. } => "extracted tree".into(),
        }
    }

    /// Reads the files at `rels`, in parallel, in order.
    fn read_many(&self, rels: &[String]) -> Result<Vec<Vec<u8>>> {
        match self {
            Source::Zip { archive, path, entries } => rels
                .par_chunks(512)
                .map_init(
                    || archive.clone(),
                    |ar, chunk| {
                        chunk
                            .iter()
                            .map(|r| {
                                let bad = |e: String| {
                                    Error::Data(format!(
                                        "{DS}: zip {} entry {r} cannot be read ({e}); the zip is corrupt",
                                        path.display()
                                    ))
                                };
                                let idx = *entries
                                    .get(r)
                                    .ok_or_else(|| bad("no such entry".into()))?;
                                let mut f = ar.by_index(idx).map_err(|e| bad(e.to_string()))?;
                                let mut buf = Vec::with_capacity(f.size() as usize);
                                f.read_to_end(&mut buf).map_err(|e| bad(e.to_string()))?;
                                Ok(buf)
                            })
                            .collect::<Result<Vec<_>>>()
                    },
                )
                .collect::<Result<Vec<Vec<Vec<u8>>>>>()
                .map(|v| v.into_iter().flatten().collect()),
            Source::Dir { entries } => rels
                .par_iter()
                .map(|r| {
                    let p = entries.get(r).ok_or_else(|| {
                        Error::Data(format!("{DS}: extracted tree has no file {r}"))
                    })?;
                    read_file(p)
                })
                .collect(),
        }
    }
}

/// The parsed index of a Tiny-ImageNet source: which files to decode with which label.
struct Index {
    wnids: Vec<String>,
    train: Vec<(String, u32)>,
    val: Vec<(String, u32)>,
    /// Raw bytes of the text files, in `text_names` order (for the tree digest).
    texts: Vec<(String, Vec<u8>)>,
}

fn build_index(src: &Source) -> Result<Index> {
    let where_ = src.where_();
    let texts = src.read_many(&["wnids.txt".into(), "val/val_annotations.txt".into()])?;
    let wn_text = String::from_utf8_lossy(&texts[0]).into_owned();
    let listed: BTreeSet<String> = wn_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    // ImageFolder's classes: the sorted folder names under train/.
    let mut train_by_class: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in src.names() {
        let parts: Vec<&str> = n.split('/').collect();
        if parts.len() == 4 && parts[0] == "train" && parts[2] == "images" && is_jpeg(parts[3]) {
            train_by_class
                .entry(parts[1].to_string())
                .or_default()
                .push(n.to_string());
        }
    }
    let folders: BTreeSet<String> = train_by_class.keys().cloned().collect();
    if folders.is_empty() {
        return Err(Error::Data(format!(
            "{DS}: {where_} has no training images; expected train/<wnid>/images/<wnid>_<i>.JPEG"
        )));
    }
    if folders != listed {
        let only_dirs: Vec<&String> = folders.difference(&listed).take(5).collect();
        let only_list: Vec<&String> = listed.difference(&folders).take(5).collect();
        return Err(Error::Data(format!(
            "{DS}: {where_}: wnids.txt lists {} classes but train/ has image folders for {}; only in train/: {only_dirs:?}, only in wnids.txt: {only_list:?}",
            listed.len(),
            folders.len()
        )));
    }
    let wnids: Vec<String> = folders.into_iter().collect();
    let label_of: BTreeMap<&str, u32> = wnids
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i as u32))
        .collect();
    let mut train = Vec::new();
    for (w, mut files) in train_by_class {
        files.sort();
        let l = label_of[w.as_str()];
        train.extend(files.into_iter().map(|f| (f, l)));
    }
    let ann = String::from_utf8_lossy(&texts[1]).into_owned();
    let mut val = Vec::new();
    for (i, line) in ann.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(file), Some(wnid)) = (cols.next(), cols.next()) else {
            return Err(Error::Data(format!(
                "{DS}: {where_}: val/val_annotations.txt line {} is `{line}`; expected `<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>`",
                i + 1
            )));
        };
        let l = *label_of.get(wnid.trim()).ok_or_else(|| {
            Error::Data(format!(
                "{DS}: {where_}: val/val_annotations.txt line {} labels {file} with wnid `{wnid}`, which is not a training class (label out of range)",
                i + 1
            ))
        })?;
        let rel = format!("val/images/{}", file.trim());
        if !src.has(&rel) {
            return Err(Error::Data(format!(
                "{DS}: {where_}: val/val_annotations.txt line {} names {rel}, which is missing",
                i + 1
            )));
        }
        val.push((l, rel));
    }
    // ImageFolder on the reorganised val/images/<wnid>/ orders by class, then file name.
    val.sort();
    let val = val.into_iter().map(|(l, r)| (r, l)).collect();
    let texts = vec![
        ("wnids.txt".to_string(), texts[0].clone()),
        ("val/val_annotations.txt".to_string(), texts[1].clone()),
    ];
    Ok(Index {
        wnids,
        train,
        val,
        texts,
    })
}

/// Decodes one JPEG into 64×64 CHW RGB (greyscale replicated to three channels).
pub fn decode_jpeg(name: &str, bytes: &[u8], out: &mut [u8]) -> Result<()> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
        .map_err(|e| Error::Data(format!("{DS}: {name} is not a decodable JPEG ({e})")))?
        .to_rgb8();
    if img.width() as usize != SIDE || img.height() as usize != SIDE {
        return Err(Error::Data(format!(
            "{DS}: {name} is {}x{}, expected {SIDE}x{SIDE}",
            img.width(),
            img.height()
        )));
    }
    let plane = SIDE * SIDE;
    for (i, px) in img.pixels().enumerate() {
        out[i] = px[0];
        out[plane + i] = px[1];
        out[2 * plane + i] = px[2];
    }
    Ok(())
}

/// Decodes `files` in parallel into a split, reporting images done as `stage`.
fn decode_split(
    src: &Source,
    files: &[(String, u32)],
    stage: &str,
    progress: Option<&LoadProgress>,
) -> Result<Split> {
    let rels: Vec<String> = files.iter().map(|(r, _)| r.clone()).collect();
    let mut images = vec![0u8; files.len() * IMG];
    let total = files.len() as u64;
    // Bounded chunks keep the compressed bytes of only a few thousand images in memory.
    const CHUNK: usize = 4096;
    for (ci, chunk) in rels.chunks(CHUNK).enumerate() {
        let base = ci * CHUNK;
        if let Some(p) = progress {
            p.report(stage, base as u64, total);
        }
        let raw = src.read_many(chunk)?;
        images[base * IMG..(base + chunk.len()) * IMG]
            .par_chunks_mut(IMG)
            .zip(raw.par_iter().zip(chunk.par_iter()))
            .try_for_each(|(out, (bytes, rel))| decode_jpeg(rel, bytes, out))?;
    }
    if let Some(p) = progress {
        p.report(stage, total, total);
    }
    let labels = files.iter().map(|(_, l)| *l).collect();
    Ok(Split { images, labels })
}

// ---------------------------------------------------------------------------------------
// Decoded-array cache

const CACHE_MAGIC: &[u8; 8] = b"MXBTINY\0";
const CACHE_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 * 5 + 8 * 2 + 64;

/// Path of the cache file for a source whose fingerprint is `key`.
pub fn cache_path(data_dir: &Path, key: &str) -> PathBuf {
    data_dir
        .join(".mixbench-cache")
        .join(format!("tiny_imagenet-v{CACHE_VERSION}-{key}.u8"))
}

fn header(key: &str, classes: usize, n_train: usize, n_test: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(CACHE_MAGIC);
    for v in [CACHE_VERSION, 3, SIDE as u32, SIDE as u32, classes as u32] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&(n_train as u64).to_le_bytes());
    h.extend_from_slice(&(n_test as u64).to_le_bytes());
    let mut k = [b' '; 64];
    for (d, s) in k.iter_mut().zip(key.bytes()) {
        *d = s;
    }
    h.extend_from_slice(&k);
    h
}

/// Writes the decoded dataset atomically (temporary file in the same folder, then rename).
fn write_cache(path: &Path, key: &str, classes: usize, train: &Split, test: &Split) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file());
        let io = |e| Error::io(path, e);
        w.write_all(&header(key, classes, train.len(), test.len()))
            .map_err(io)?;
        for s in [train, test] {
            w.write_all(&s.images).map_err(io)?;
            let labels: Vec<u8> = s.labels.iter().flat_map(|l| l.to_le_bytes()).collect();
            w.write_all(&labels).map_err(io)?;
        }
        w.flush().map_err(io)?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Reads a cache file, validating header, key, dims, length and labels.
/// Returns `Ok(None)` when there is no cache, `Err` text when it is invalid.
fn read_cache(
    path: &Path,
    key: &str,
) -> std::result::Result<Option<(usize, Split, Split)>, String> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut h = vec![0u8; HEADER_LEN];
    f.read_exact(&mut h).map_err(|e| format!("header: {e}"))?;
    if &h[..8] != CACHE_MAGIC {
        return Err("bad magic".into());
    }
    let u =
        |i: usize| u32::from_le_bytes([h[8 + 4 * i], h[9 + 4 * i], h[10 + 4 * i], h[11 + 4 * i]]);
    let (version, c, hh, ww, classes) = (u(0), u(1), u(2), u(3), u(4) as usize);
    if version != CACHE_VERSION || (c, hh, ww) != (3, SIDE as u32, SIDE as u32) {
        return Err(format!(
            "version {version}, dims {c}x{hh}x{ww}; expected version {CACHE_VERSION}, 3x64x64"
        ));
    }
    let q = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[at..at + 8]);
        u64::from_le_bytes(b) as usize
    };
    let (n_train, n_test) = (q(28), q(36));
    if h[44..108] != header(key, 0, 0, 0)[44..108] {
        return Err("source key differs".into());
    }
    let want = (HEADER_LEN + (n_train + n_test) * (IMG + 4)) as u64;
    if len != want {
        return Err(format!("{len} bytes, header implies {want}"));
    }
    let mut read_split = |n: usize| -> std::result::Result<Split, String> {
        let mut images = vec![0u8; n * IMG];
        f.read_exact(&mut images).map_err(|e| e.to_string())?;
        let mut lb = vec![0u8; n * 4];
        f.read_exact(&mut lb).map_err(|e| e.to_string())?;
        let labels: Vec<u32> = lb
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if labels.iter().any(|&l| l as usize >= classes) {
            return Err("label out of range".into());
        }
        Ok(Split { images, labels })
    };
    let train = read_split(n_train)?;
    let test = read_split(n_test)?;
    Ok(Some((classes, train, test)))
}

/// Fingerprint of an extracted tree: `combine` over sorted (relative path, sha256) of every
/// file read.
fn tree_digest(mut parts: Vec<(String, String)>) -> String {
    parts.sort();
    combine(&parts)
}

/// Hashes the source without decoding (for `data verify` and cache lookup of a tree).
fn source_fingerprint(
    src: &Source,
    sf: &SourceFile,
    idx: &Index,
    progress: Option<&LoadProgress>,
) -> Result<(String, u64)> {
    if let Source::Zip { .. } = src {
        return Ok((sf.sha256.clone(), sf.bytes));
    }
    let rels: Vec<String> = idx
        .train
        .iter()
        .chain(&idx.val)
        .map(|(r, _)| r.clone())
        .collect();
    let mut parts: Vec<(String, String)> = idx
        .texts
        .iter()
        .map(|(n, b)| (n.clone(), sha256_hex(b)))
        .collect();
    let mut total: u64 = idx.texts.iter().map(|(_, b)| b.len() as u64).sum();
    let files = rels.len() as u64;
    for (ci, chunk) in rels.chunks(4096).enumerate() {
        if let Some(p) = progress {
            p.report("hashing the extracted files", (ci * 4096) as u64, files);
        }
        let raw = src.read_many(chunk)?;
        total += raw.iter().map(|b| b.len() as u64).sum::<u64>();
        let hs: Vec<String> = raw.par_iter().map(|b| sha256_hex(b)).collect();
        parts.extend(chunk.iter().cloned().zip(hs));
    }
    if let Some(p) = progress {
        p.report("hashing the extracted files", files, files);
    }
    Ok((tree_digest(parts), total))
}

/// Loads Tiny-ImageNet, from the cache when one matches the source hash.
pub fn load(params: &TinyImagenetParams, opts: &LoadOptions) -> Result<ImageDataset> {
    let m = &TINY_IMAGENET_MANIFEST;
    let found = m.find(&opts.data_dir)?;
    let mut notes = vec![
        "labels numbered by sorted wnid (torchvision ImageFolder order); test split = official val split".to_string(),
    ];
    let (src, mut sf) = Source::open(&found, opts, &mut notes)?;
    let idx = build_index(&src)?;
    let is_tree = matches!(src, Source::Dir { .. });
    if is_tree {
        notes.push(
            "no canonical checksum is published for the extracted tree; its fingerprint is sha256 over sorted `path:sha256` lines of wnids.txt, val/val_annotations.txt and every train/val JPEG".into(),
        );
    }
    check_records(
        DS,
        "wnids.txt",
        Some(200),
        idx.wnids.len(),
        opts.allow_unverified,
        &mut notes,
    )?;
    check_records(
        DS,
        "train/",
        Some(TRAIN_RECORDS),
        idx.train.len(),
        opts.allow_unverified,
        &mut notes,
    )?;
    check_records(
        DS,
        "val/",
        Some(VAL_RECORDS),
        idx.val.len(),
        opts.allow_unverified,
        &mut notes,
    )?;
    let classes = idx.wnids.len();
    // A tree's key needs every file hashed; a zip's key is the zip's sha256 computed above.
    let key = if is_tree {
        let (key, total) = source_fingerprint(&src, &sf, &idx, opts.progress.as_ref())?;
        sf.sha256 = key.clone();
        sf.bytes = total;
        key
    } else {
        sf.sha256.clone()
    };
    let cached = if params.cache {
        lookup_cache(&opts.data_dir, &key, classes, &mut notes)
    } else {
        None
    };
    let (train, test) = match cached {
        Some(pair) => pair,
        None => {
            let p = opts.progress.as_ref();
            let train = decode_split(&src, &idx.train, "decoding train JPEGs", p)?;
            let test = decode_split(&src, &idx.val, "decoding val JPEGs", p)?;
            if params.cache {
                let path = cache_path(&opts.data_dir, &key);
                match write_cache(&path, &key, classes, &train, &test) {
                    Ok(()) => notes.push(format!("decoded images cached at {}", path.display())),
                    // A read-only data directory must not stop training; the next run decodes again.
                    Err(e) => notes.push(format!("could not write the decoded-image cache: {e}")),
                }
            }
            (train, test)
        }
    };
    let files = vec![sf];
    Ok(ImageDataset {
        latent: None,
        channels: 3,
        height: SIDE,
        width: SIDE,
        num_classes: classes,
        train,
        test,
        provenance: DatasetProvenance {
            name: DS.into(),
            fingerprint: manifest::fingerprint(&files),
            files,
            notes,
        },
    })
}

fn lookup_cache(
    data_dir: &Path,
    key: &str,
    classes: usize,
    notes: &mut Vec<String>,
) -> Option<(Split, Split)> {
    let path = cache_path(data_dir, key);
    match read_cache(&path, key) {
        Ok(Some((c, tr, te))) if c == classes => {
            notes.push(format!(
                "decoded images loaded from cache {}",
                path.display()
            ));
            Some((tr, te))
        }
        Ok(Some((c, _, _))) => {
            notes.push(format!(
                "ignored cache {}: it has {c} classes, the source {classes}; decoding again",
                path.display()
            ));
            None
        }
        Ok(None) => None,
        Err(why) => {
            notes.push(format!(
                "ignored invalid cache {} ({why}); decoding again",
                path.display()
            ));
            None
        }
    }
}

/// Registry entry for Tiny-ImageNet-200.
pub struct TinyImagenetSource;

impl DatasetSource for TinyImagenetSource {
    fn name(&self) -> &'static str {
        DS
    }

    fn shape(&self, params: &serde_json::Value) -> Result<DataShape> {
        let _: TinyImagenetParams = manifest::parse_params(DS, params)?;
        Ok(DataShape::new(3, 64, 64, 200, 100_000).with_test_size(10_000))
    }

    fn load(&self, params: &serde_json::Value, opts: &LoadOptions) -> Result<ImageDataset> {
        let p: TinyImagenetParams = manifest::parse_params(DS, params)?;
        load(&p, opts)
    }

    fn status(&self, opts: &LoadOptions, verify: bool) -> DatasetStatus {
        let m = &TINY_IMAGENET_MANIFEST;
        let mut st = m.status(opts, false);
        if !verify || st.presence != Presence::Present {
            return st;
        }
        let Located::Found(found) = m.locate(&opts.data_dir) else {
            return st;
        };
        let mut notes = Vec::new();
        let r = Source::open(&found, opts, &mut notes).and_then(|(src, sf)| {
            let idx = build_index(&src)?;
            source_fingerprint(&src, &sf, &idx, opts.progress.as_ref()).map(|(k, bytes)| {
                SourceFile {
                    sha256: k,
                    bytes,
                    ..sf
                }
            })
        });
        st.notes.extend(notes);
        match r {
            Ok(sf) => st.fingerprint = Some(manifest::fingerprint(&[sf])),
            Err(e) => st.presence = Presence::Corrupt(e.to_string()),
        }
        st
    }

    fn default_preprocessing(&self) -> Preprocessing {
        // Reference: RandomCrop(64, padding=4) + RandomHorizontalFlip, Normalize(0.5, 0.5).
        Preprocessing {
            crop_padding: 4,
            hflip: true,
            ..Preprocessing::centered(3)
        }
    }
}
