//! `gc`: stored models and records that an older numerics version made. They are never reused
//! (their hashes differ from the current code's), so they only take space and confuse a reader
//! of the results folder.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::numerics::NUMERICS_VERSION;
use crate::results::artifact::TrainedModel;
use crate::results::layout::Layout;
use crate::results::record::ResultRecord;

/// One stale entry of a results folder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StaleEntry {
    /// The model folder (`models/<hash>/s<seed>`) or record file.
    pub(crate) path: PathBuf,
    /// `model` or `record`.
    pub(crate) kind: &'static str,
    /// The numerics version that made it (0: before versioning).
    pub(crate) numerics_version: u32,
}

fn read_dir(p: &Path) -> Result<Vec<PathBuf>> {
    match std::fs::read_dir(p) {
        Ok(rd) => {
            let mut v = Vec::new();
            for e in rd {
                v.push(e.map_err(|e| Error::io(p, e))?.path());
            }
            v.sort();
            Ok(v)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(Error::io(p, e)),
    }
}

/// Every model folder and record under `layout.results` made under a numerics version other
/// than the current one. Folders without a readable `model.json` (a run in progress, a
/// corrupt save) and files that are not records are left alone.
pub(crate) fn find_stale(layout: &Layout) -> Result<Vec<StaleEntry>> {
    let mut out = Vec::new();
    let models = layout.results.join("models");
    for hash_dir in read_dir(&models)? {
        for seed_dir in read_dir(&hash_dir)? {
            let meta = seed_dir.join("model.json");
            let Ok(bytes) = std::fs::read(&meta) else {
                continue;
            };
            if let Ok(m) = serde_json::from_slice::<TrainedModel>(&bytes)
                && m.code.numerics_version != NUMERICS_VERSION
            {
                out.push(StaleEntry {
                    path: seed_dir,
                    kind: "model",
                    numerics_version: m.code.numerics_version,
                });
            }
        }
    }
    for top in read_dir(&layout.results)? {
        let name = top.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "models" || name == "locks" || !top.is_dir() {
            continue;
        }
        for profile in read_dir(&top)? {
            for file in read_dir(&profile)? {
                if file.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let Ok(bytes) = std::fs::read(&file) else {
                    continue;
                };
                if let Ok(r) = serde_json::from_slice::<ResultRecord>(&bytes)
                    && r.code.numerics_version != NUMERICS_VERSION
                {
                    out.push(StaleEntry {
                        path: file,
                        kind: "record",
                        numerics_version: r.code.numerics_version,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Deletes `entries` (model folders with their evaluations and checkpoints, record files).
pub(crate) fn remove(entries: &[StaleEntry]) -> Result<()> {
    for e in entries {
        let r = if e.path.is_dir() {
            std::fs::remove_dir_all(&e.path)
        } else {
            std::fs::remove_file(&e.path)
        };
        match r {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::io(&e.path, err)),
        }
        // An emptied `models/<hash>/` folder goes too.
        if e.kind == "model"
            && let Some(parent) = e.path.parent()
        {
            let _ = std::fs::remove_dir(parent);
        }
    }
    Ok(())
}
