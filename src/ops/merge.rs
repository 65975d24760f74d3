//! `merge`: combine results folders (e.g. one per shard or machine) into one. Identical entries
//! are fine; two different results for the same model or cell are refused with both paths
//! named, before anything is copied. Checkpoints and locks are not merged.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::files::write_atomic;

/// What a merge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct MergeSummary {
    /// Files copied.
    pub(crate) copied: usize,
    /// Files already present with the same content (or identity).
    pub(crate) identical: usize,
}

/// The part of a stored JSON file that must agree between two copies of it: everything but
/// wall-clock fields, which differ between equal runs.
fn identity(path: &Path) -> Result<Value> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Other(format!(
            "{}: not a mixbench JSON file ({e})",
            path.display()
        ))
    })?;
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in [
                    "environment",
                    "wall_seconds",
                    "finished_at",
                    "started_at",
                    "seconds",
                    "code",
                    "notes",
                    "resumed_from",
                    "device",
                ] {
                    m.remove(k);
                }
                for x in m.values_mut() {
                    strip(x);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    Ok(v)
}

/// Files under `root` that a merge carries (relative paths): models (weights, provenance,
/// evaluations) and records, not checkpoints, locks or temporary files.
fn files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let e = e.map_err(|x| Error::io(&dir, x))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || name == "checkpoints" || name == "locks" {
                continue;
            }
            let ft = e.file_type().map_err(|x| Error::io(&p, x))?;
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                out.push(
                    p.strip_prefix(root)
                        .map_err(|x| Error::Other(x.to_string()))?
                        .to_path_buf(),
                );
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Merges `sources` into `into`.
pub(crate) fn merge(sources: &[PathBuf], into: &Path) -> Result<MergeSummary> {
    // Relative path → (source file, identity for JSON files or raw bytes' hash otherwise).
    let mut plan: BTreeMap<PathBuf, (PathBuf, Value)> = BTreeMap::new();
    let mut summary = MergeSummary::default();
    let key = |p: &Path| -> Result<Value> {
        if p.extension().is_some_and(|e| e == "json") {
            identity(p)
        } else {
            let bytes = fs::read(p).map_err(|e| Error::io(p, e))?;
            Ok(Value::String(crate::data::files::hash::sha256_hex(&bytes)))
        }
    };
    for src in sources {
        if !src.is_dir() {
            return Err(Error::Config(format!(
                "{}: not a results folder",
                src.display()
            )));
        }
        for rel in files(src)? {
            let path = src.join(&rel);
            let id = key(&path)?;
            match plan.get(&rel) {
                Some((other, oid)) if *oid != id => {
                    return Err(Error::Config(format!(
                        "{} and {} hold different results for the same {}; remove the wrong one (or rerun that cell with --force) before merging",
                        other.display(),
                        path.display(),
                        what(&rel)
                    )));
                }
                Some(_) => summary.identical += 1,
                None => {
                    plan.insert(rel, (path, id));
                }
            }
        }
    }
    // Against what the target already holds.
    let mut copies = Vec::new();
    for (rel, (path, id)) in &plan {
        let dest = into.join(rel);
        if dest.exists() {
            if key(&dest)? != *id {
                return Err(Error::Config(format!(
                    "{} and {} hold different results for the same {}; nothing was merged",
                    dest.display(),
                    path.display(),
                    what(rel)
                )));
            }
            summary.identical += 1;
        } else {
            copies.push((path.clone(), dest));
        }
    }
    // Weights before provenance, so a model folder is never complete before its weights are.
    copies.sort_by_key(|(_, d)| d.file_name().is_some_and(|n| n == "model.json"));
    for (from, to) in copies {
        let bytes = fs::read(&from).map_err(|e| Error::io(&from, e))?;
        write_atomic(&to, &bytes)?;
        summary.copied += 1;
    }
    Ok(summary)
}

fn what(rel: &Path) -> &'static str {
    let s = rel.to_string_lossy();
    if s.starts_with("models/") {
        if s.contains("/evals/") {
            "model evaluation"
        } else {
            "trained model (training hash and seed)"
        }
    } else {
        "cell record (suite, profile, experiment and seed)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, rel: &str, v: serde_json::Value) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, v.to_string()).unwrap();
    }

    #[test]
    fn a_record_that_conflicts_with_the_target_is_refused_and_nothing_is_copied() {
        let d = tempfile::tempdir().unwrap();
        let (src, into) = (d.path().join("src"), d.path().join("into"));
        let rec = |err: f64, secs: f64| {
            serde_json::json!({"experiment": "a", "seed": 0,
                "metrics": {"clean.test_error": err},
                "environment": {"wall_seconds": secs}})
        };
        // The same cell differs only in wall-clock fields: the same result.
        put(&src, "lk/smoke/a-s0.json", rec(12.5, 1.0));
        put(&into, "lk/smoke/a-s0.json", rec(12.5, 9.0));
        put(&src, "lk/smoke/b-s0.json", rec(30.0, 1.0));
        let s = merge(std::slice::from_ref(&src), &into).unwrap();
        assert_eq!(
            s,
            MergeSummary {
                copied: 1,
                identical: 1
            }
        );

        // Another value for the cell the target holds: refused, both named, nothing copied.
        put(&src, "lk/smoke/a-s0.json", rec(50.0, 1.0));
        put(&src, "lk/smoke/c-s0.json", rec(40.0, 1.0));
        let target = fs::read(into.join("lk/smoke/a-s0.json")).unwrap();
        let e = merge(std::slice::from_ref(&src), &into)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("into/lk/smoke/a-s0.json")
                && e.contains("src/lk/smoke/a-s0.json")
                && e.contains("different results for the same cell record")
                && e.contains("nothing was merged"),
            "{e}"
        );
        assert_eq!(fs::read(into.join("lk/smoke/a-s0.json")).unwrap(), target);
        assert!(!into.join("lk/smoke/c-s0.json").exists(), "nothing copied");
    }
}
