//! Per-dataset manifests: expected files, sizes, record counts and canonical checksums, plus
//! the shared logic that finds the files, verifies them and explains what is missing.

use std::io::Read;
use std::path::{Path, PathBuf};

use md5::{Digest as _, Md5};

use crate::data::files::hash::{combine, sha256_hex};
use crate::data::{DatasetStatus, LoadOptions, Presence, SourceFile};
use crate::error::{Error, Result};

/// A published checksum and where it was published.
#[derive(Debug, Clone, Copy)]
pub struct KnownHash {
    /// Lower-case hex digest.
    pub value: &'static str,
    /// Who published it (shown in errors so a user can judge the value).
    pub source: &'static str,
}

/// The official gzip download of a file whose manifest hashes refer to the decompressed bytes.
#[derive(Debug, Clone, Copy)]
pub struct GzDownload {
    /// Size of the official `.gz` in bytes.
    pub bytes: u64,
    /// md5 of the official `.gz`.
    pub md5: KnownHash,
    /// sha256 of the official `.gz`.
    pub sha256: KnownHash,
}

/// One file a dataset layout needs.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedFile {
    /// Canonical path relative to the search root; also the name recorded in provenance.
    pub path: &'static str,
    /// Other accepted paths relative to the root (alternative spellings, `.gz` copies).
    pub alt_paths: &'static [&'static str],
    /// Expected size in bytes (of the decompressed content when `gz` is set).
    pub bytes: Option<u64>,
    /// Canonical md5.
    pub md5: Option<KnownHash>,
    /// Canonical sha256.
    pub sha256: Option<KnownHash>,
    /// Number of records (images) the file holds.
    pub records: Option<u64>,
    /// The layout is complete without it (e.g. SVHN `extra`).
    pub optional: bool,
    /// Set when the file may be gzip-compressed; hashes and size then describe the decompressed
    /// bytes, because re-gzipped copies differ byte-wise from the official `.gz`.
    pub gz: Option<GzDownload>,
}

impl ExpectedFile {
    /// A blank entry to build table rows from with struct-update syntax.
    pub const BLANK: ExpectedFile = ExpectedFile {
        path: "",
        alt_paths: &[],
        bytes: None,
        md5: None,
        sha256: None,
        records: None,
        optional: false,
        gz: None,
    };

    /// True when at least one canonical checksum is known.
    pub fn has_checksum(&self) -> bool {
        self.md5.is_some() || self.sha256.is_some()
    }

    fn describe(&self) -> String {
        let mut s = self.path.to_string();
        if !self.alt_paths.is_empty() {
            s.push_str(&format!(" (or {})", self.alt_paths.join(", ")));
        }
        if self.optional {
            s.push_str(" [optional]");
        }
        let mut facts = Vec::new();
        if let Some(b) = self.bytes {
            facts.push(format!(
                "{} bytes{}",
                thousands(b),
                if self.gz.is_some() {
                    " uncompressed"
                } else {
                    ""
                }
            ));
        }
        if let Some(r) = self.records {
            facts.push(format!("{} records", thousands(r)));
        }
        if let Some(h) = self.md5 {
            facts.push(format!("md5 {} ({})", h.value, h.source));
        }
        if let Some(h) = self.sha256 {
            facts.push(format!("sha256 {} ({})", h.value, h.source));
        }
        if let Some(g) = self.gz {
            facts.push(format!(
                "official .gz: {} bytes, md5 {} ({}), sha256 {} ({})",
                thousands(g.bytes),
                g.md5.value,
                g.md5.source,
                g.sha256.value,
                g.sha256.source
            ));
        }
        if !facts.is_empty() {
            s.push_str("\n        ");
            s.push_str(&facts.join("\n        "));
        }
        s
    }
}

/// One accepted arrangement of a dataset's files under a search root.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Short identifier the reader dispatches on (`archive`, `extracted`, ...).
    pub id: &'static str,
    /// Human description for help text.
    pub label: &'static str,
    /// Files this layout needs.
    pub files: &'static [ExpectedFile],
}

/// Everything known about where a dataset comes from and what its files look like.
#[derive(Debug, Clone, Copy)]
pub struct Manifest {
    /// Registry name.
    pub dataset: &'static str,
    /// Human title.
    pub title: &'static str,
    /// Folders under the data directory searched in order ("" = the data directory itself).
    pub subdirs: &'static [&'static str],
    /// Accepted layouts, most preferred first.
    pub layouts: &'static [Layout],
    /// Where the official distribution is published.
    pub published: &'static str,
}

/// The folder prefix `earlier`'s paths add to `later`'s, when they are otherwise the same.
fn strip_prefix_of(earlier: &Layout, later: &Layout) -> Option<String> {
    if earlier.files.len() != later.files.len() || later.files.is_empty() {
        return None;
    }
    let first = earlier.files[0].path.strip_suffix(later.files[0].path)?;
    if first.is_empty() || !first.ends_with('/') {
        return None;
    }
    earlier
        .files
        .iter()
        .zip(later.files)
        .all(|(e, l)| e.path.strip_suffix(l.path) == Some(first))
        .then(|| first.to_string())
}

/// A complete layout found on disk.
#[derive(Debug, Clone)]
pub struct Found {
    /// The search root it was found under.
    pub root: PathBuf,
    /// Which layout matched.
    pub layout: &'static Layout,
    /// Path of each file of `layout.files`, `None` for an absent optional file.
    pub paths: Vec<Option<PathBuf>>,
}

impl Found {
    /// Path of the layout file whose canonical path is `path`, if present.
    pub fn path_of(&self, path: &str) -> Option<&Path> {
        self.layout
            .files
            .iter()
            .position(|f| f.path == path)
            .and_then(|i| self.paths[i].as_deref())
    }
}

/// Result of searching for a dataset.
#[derive(Debug, Clone)]
pub enum Located {
    /// A complete layout.
    Found(Found),
    /// Some but not all required files of a layout exist.
    Partial {
        /// Root searched.
        root: PathBuf,
        /// Layout partly present.
        layout: &'static Layout,
        /// Required files that are absent (canonical paths under `root`).
        missing: Vec<PathBuf>,
    },
    /// Nothing found.
    Missing,
}

fn first_existing(root: &Path, f: &ExpectedFile) -> Option<PathBuf> {
    std::iter::once(f.path)
        .chain(f.alt_paths.iter().copied())
        .map(|p| root.join(p))
        .find(|p| p.is_file())
}

impl Manifest {
    /// Folders searched under `data_dir`, in order.
    pub fn roots(&self, data_dir: &Path) -> Vec<PathBuf> {
        crate::data::files::location::search_roots(data_dir, self.subdirs)
    }

    /// Searches every root for every layout; a complete layout anywhere beats a partial one.
    pub fn locate(&'static self, data_dir: &Path) -> Located {
        let mut partial = None;
        for root in self.roots(data_dir) {
            for layout in self.layouts {
                let paths: Vec<Option<PathBuf>> = layout
                    .files
                    .iter()
                    .map(|f| first_existing(&root, f))
                    .collect();
                let missing: Vec<PathBuf> = layout
                    .files
                    .iter()
                    .zip(&paths)
                    .filter(|(f, p)| !f.optional && p.is_none())
                    .map(|(f, _)| root.join(f.path))
                    .collect();
                if missing.is_empty() {
                    return Located::Found(Found {
                        root,
                        layout,
                        paths,
                    });
                }
                let any_required = layout
                    .files
                    .iter()
                    .zip(&paths)
                    .any(|(f, p)| !f.optional && p.is_some());
                if any_required && partial.is_none() {
                    partial = Some(Located::Partial {
                        root: root.clone(),
                        layout,
                        missing,
                    });
                }
            }
        }
        partial.unwrap_or(Located::Missing)
    }

    /// Finds a complete layout or explains, as an error, what is missing and where to get it.
    pub fn find(&'static self, data_dir: &Path) -> Result<Found> {
        match self.locate(data_dir) {
            Located::Found(f) => Ok(f),
            Located::Partial {
                root,
                layout,
                missing,
            } => Err(Error::Data(self.partial_text(&root, layout, &missing))),
            Located::Missing => Err(Error::Data(self.missing_text(data_dir))),
        }
    }

    fn partial_text(&self, root: &Path, layout: &Layout, missing: &[PathBuf]) -> String {
        let list: Vec<String> = missing
            .iter()
            .map(|p| format!("  {}", p.display()))
            .collect();
        let expected: Vec<String> = layout
            .files
            .iter()
            .map(|f| format!("  {}", f.describe()))
            .collect();
        format!(
            "dataset `{}` ({}) is incomplete in {}: found part of the {}, but these files are missing:\n{}\nExpected files of that layout:\n{}\nOfficial distribution: {}",
            self.dataset,
            self.title,
            root.display(),
            layout.label,
            list.join("\n"),
            expected.join("\n"),
            self.published
        )
    }

    /// Help text for a dataset that is not on disk: every place looked, every accepted layout
    /// with file names, sizes and checksums, and where the official files are published.
    pub fn missing_text(&self, data_dir: &Path) -> String {
        let mut s = format!(
            "dataset `{}` ({}) was not found.\nLooked in:\n",
            self.dataset, self.title
        );
        for r in self.roots(data_dir) {
            s.push_str(&format!("  {}\n", r.display()));
        }
        s.push_str("for any of these layouts (paths relative to one of those folders):\n");
        for (i, l) in self.layouts.iter().enumerate() {
            // A layout that repeats an earlier one minus its folder prefix gets one line.
            let same_as = self.layouts[..i].iter().find_map(|e| strip_prefix_of(e, l));
            if let Some(prefix) = same_as {
                s.push_str(&format!(
                    "  - {}: the same files without the `{prefix}` folder\n",
                    l.label
                ));
                continue;
            }
            s.push_str(&format!("  - {}:\n", l.label));
            for f in l.files {
                s.push_str(&format!("      {}\n", f.describe()));
            }
        }
        s.push_str(&format!(
            "Official distribution: {}\nPut the files under {} (choose the data directory with --data-dir or MIXBENCH_DATA; default ./data).",
            self.published,
            data_dir.join(self.subdirs.first().copied().unwrap_or("")).display()
        ));
        s
    }

    /// Presence report; with `verify`, every file is re-hashed against the manifest.
    pub fn status(&'static self, opts: &LoadOptions, verify: bool) -> DatasetStatus {
        let found = match self.locate(&opts.data_dir) {
            Located::Found(f) => f,
            Located::Partial {
                root,
                layout,
                missing,
            } => {
                return DatasetStatus {
                    name: self.dataset.into(),
                    path: Some(root.clone()),
                    presence: Presence::Corrupt(self.partial_text(&root, layout, &missing)),
                    fingerprint: None,
                    notes: vec![],
                };
            }
            Located::Missing => {
                return DatasetStatus {
                    name: self.dataset.into(),
                    path: Some(self.roots(&opts.data_dir)[0].clone()),
                    presence: Presence::Missing(self.missing_text(&opts.data_dir)),
                    fingerprint: None,
                    notes: vec![],
                };
            }
        };
        let mut notes = vec![format!("layout: {}", found.layout.label)];
        let path = Some(found.root.clone());
        let result = if verify {
            self.verify_all(&found, opts, &mut notes).map(Some)
        } else {
            self.check_sizes(&found, opts, &mut notes).map(|_| None)
        };
        match result {
            Ok(fingerprint) => DatasetStatus {
                name: self.dataset.into(),
                path,
                presence: Presence::Present,
                fingerprint,
                notes,
            },
            Err(e) => DatasetStatus {
                name: self.dataset.into(),
                path,
                presence: Presence::Corrupt(e.to_string()),
                fingerprint: None,
                notes,
            },
        }
    }

    /// Cheap check: sizes of the files that are stored uncompressed.
    fn check_sizes(
        &self,
        found: &Found,
        opts: &LoadOptions,
        notes: &mut Vec<String>,
    ) -> Result<()> {
        for (f, p) in found.layout.files.iter().zip(&found.paths) {
            let (Some(p), Some(want)) = (p, f.bytes) else {
                continue;
            };
            if is_gz_path(p) {
                continue;
            }
            let got = std::fs::metadata(p).map_err(|e| Error::io(p, e))?.len();
            if got != want {
                let msg = format!(
                    "{}: {} is {} bytes, expected {} bytes",
                    self.dataset,
                    p.display(),
                    thousands(got),
                    thousands(want)
                );
                if opts.allow_unverified {
                    notes.push(format!("WARNING (allowed by allow_unverified): {msg}"));
                } else {
                    return Err(Error::Data(msg));
                }
            }
        }
        Ok(())
    }

    /// Re-hashes every present file of `found` and returns the fingerprint.
    pub fn verify_all(
        &self,
        found: &Found,
        opts: &LoadOptions,
        notes: &mut Vec<String>,
    ) -> Result<String> {
        let mut files = Vec::new();
        for (f, p) in found.layout.files.iter().zip(&found.paths) {
            if let Some(p) = p {
                let (_, sf) = read_verified(self, f, p, opts, notes)?;
                files.push(sf);
            }
        }
        Ok(fingerprint(&files))
    }
}

/// Fingerprint of the files a dataset was read from: `combine` over (name, sha256) in order.
pub fn fingerprint(files: &[SourceFile]) -> String {
    let parts: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.name.clone(), f.sha256.clone()))
        .collect();
    combine(&parts)
}

/// Digests of a byte string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Length in bytes.
    pub bytes: u64,
    /// Lower-case hex sha256.
    pub sha256: String,
    /// Lower-case hex md5, when asked for.
    pub md5: Option<String>,
}

/// sha256 (and md5 when `with_md5`) of `bytes`, computed on two threads.
pub fn digest(bytes: &[u8], with_md5: bool) -> Digests {
    let (sha256, md5) = rayon::join(
        || sha256_hex(bytes),
        || with_md5.then(|| hex::encode(Md5::digest(bytes))),
    );
    Digests {
        bytes: bytes.len() as u64,
        sha256,
        md5,
    }
}

/// Compares `d` with the manifest entry. Returns whether the file matched a canonical
/// checksum; a mismatch is an error naming the file, expected and actual values, or with
/// `allow_unverified` a warning pushed onto `notes`.
pub fn verify(
    dataset: &str,
    published: &str,
    expected: &ExpectedFile,
    shown: &Path,
    d: &Digests,
    allow_unverified: bool,
    notes: &mut Vec<String>,
) -> Result<bool> {
    let mut problems = Vec::new();
    if let Some(h) = expected.sha256
        && h.value != d.sha256
    {
        problems.push(format!(
            "expected sha256 {} ({}), got sha256 {}",
            h.value, h.source, d.sha256
        ));
    }
    if let (Some(h), Some(got)) = (expected.md5, d.md5.as_deref())
        && h.value != got
    {
        problems.push(format!(
            "expected md5 {} ({}), got md5 {}",
            h.value, h.source, got
        ));
    }
    if let Some(b) = expected.bytes
        && b != d.bytes
    {
        problems.push(format!(
            "expected {} bytes{}, got {}",
            thousands(b),
            if expected.gz.is_some() {
                " (decompressed)"
            } else {
                ""
            },
            thousands(d.bytes)
        ));
    }
    if problems.is_empty() {
        if !expected.has_checksum() {
            notes.push(format!(
                "{}: no canonical checksum is published for {}; its sha256 {} is recorded but unverified",
                dataset, expected.path, d.sha256
            ));
            return Ok(false);
        }
        return Ok(true);
    }
    let msg = format!(
        "{dataset}: checksum mismatch for {}: {}. The file is corrupt, truncated, or not the official release; get it again from {published}, or pass --allow-unverified (suite option allow_unverified) to use it anyway with a warning in the provenance notes",
        shown.display(),
        problems.join("; ")
    );
    if allow_unverified {
        notes.push(format!("WARNING (allowed by allow_unverified): {msg}"));
        Ok(false)
    } else {
        Err(Error::Data(msg))
    }
}

/// True when the path names a gzip file.
pub fn is_gz_path(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Reads a whole file, naming it in any I/O error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Decompresses a gzip byte string, naming `path` in the error.
pub fn gunzip(dataset: &str, path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| {
            Error::Data(format!(
                "{dataset}: {} is not a valid gzip file ({e}); expected a .gz as distributed, or the uncompressed file without the .gz suffix",
                path.display()
            ))
        })?;
    Ok(out)
}

/// Reads one manifest file (decompressing a `.gz` where the manifest allows it), hashes the
/// content, verifies it and returns the content with its provenance entry.
pub fn read_verified(
    m: &Manifest,
    expected: &ExpectedFile,
    path: &Path,
    opts: &LoadOptions,
    notes: &mut Vec<String>,
) -> Result<(Vec<u8>, SourceFile)> {
    let raw = read_file(path)?;
    let content = if expected.gz.is_some() && is_gz_path(path) {
        gunzip(m.dataset, path, &raw)?
    } else {
        raw
    };
    let d = digest(&content, expected.md5.is_some());
    let verified = verify(
        m.dataset,
        m.published,
        expected,
        path,
        &d,
        opts.allow_unverified,
        notes,
    )?;
    let sf = SourceFile {
        name: expected.path.to_string(),
        bytes: d.bytes,
        sha256: d.sha256,
        verified,
    };
    Ok((content, sf))
}

/// Checks a record count against the manifest; a mismatch is an error unless
/// `allow_unverified`, in which case it becomes a provenance note.
pub fn check_records(
    dataset: &str,
    what: &str,
    expected: Option<u64>,
    actual: usize,
    allow_unverified: bool,
    notes: &mut Vec<String>,
) -> Result<()> {
    let Some(want) = expected else { return Ok(()) };
    if want == actual as u64 {
        return Ok(());
    }
    let msg = format!(
        "{dataset}: {what} holds {} records, the official file holds {}",
        thousands(actual as u64),
        thousands(want)
    );
    if allow_unverified {
        notes.push(format!("WARNING (allowed by allow_unverified): {msg}"));
        Ok(())
    } else {
        Err(Error::Data(msg))
    }
}

/// Parses a dataset's `params` JSON (null = no params) into its options struct.
pub fn parse_params<T: serde::de::DeserializeOwned>(
    dataset: &str,
    params: &serde_json::Value,
) -> Result<T> {
    crate::params::parse_value(&format!("dataset `{dataset}` params"), params)
}

/// Formats an integer with comma thousands separators.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(170052171), "170,052,171");
    }

    #[test]
    fn md5_and_sha256_of_abc() {
        let d = digest(b"abc", true);
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.md5.as_deref(), Some("900150983cd24fb0d6963f7d28e17f72"));
    }

    #[test]
    fn mismatch_names_file_and_both_hashes() {
        let e = ExpectedFile {
            path: "a.bin",
            md5: Some(KnownHash {
                value: "00000000000000000000000000000000",
                source: "test",
            }),
            ..ExpectedFile::BLANK
        };
        let d = digest(b"abc", true);
        let mut notes = vec![];
        let err = verify(
            "ds",
            "http://x",
            &e,
            Path::new("/d/a.bin"),
            &d,
            false,
            &mut notes,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/d/a.bin"), "{err}");
        assert!(err.contains("00000000000000000000000000000000"), "{err}");
        assert!(err.contains("900150983cd24fb0d6963f7d28e17f72"), "{err}");
        let ok = verify(
            "ds",
            "http://x",
            &e,
            Path::new("/d/a.bin"),
            &d,
            true,
            &mut notes,
        )
        .unwrap();
        assert!(!ok);
        assert!(notes[0].contains("WARNING"));
    }
}
