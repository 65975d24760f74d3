//! Checkpoints: weights, BatchNorm statistics, optimizer state (momentum or Adam moments) and the epoch log, written
//! atomically. Random state needs no saving: every epoch's generators derive from (seed, epoch).
//!
//! Layout: `<dir>/epoch-<e>/state.safetensors` + `state.json`, and `<dir>/latest.json` naming the
//! newest complete one. Both files are fsynced in a temporary folder, the folder is renamed
//! into place and the parent fsynced, and only then is `latest.json` replaced (atomically,
//! fsynced); the previous checkpoint is kept, so after a crash or power loss at any point one
//! durable checkpoint remains. On resume a checkpoint that does not read back whole, or that
//! belongs to another training config or seed, is skipped for the previous one or a fresh
//! start, and the reason is reported.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{EpochRecord, Optimizer};
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::model::Model;

/// The JSON half of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Last completed epoch.
    pub epoch: usize,
    /// Training seed.
    pub seed: u64,
    /// Training hash of the run.
    pub training_hash: String,
    /// Epoch records so far.
    pub records: Vec<EpochRecord>,
}

/// A checkpoint read back.
pub struct Loaded {
    /// Last completed epoch.
    pub epoch: usize,
    /// Epoch records so far.
    pub records: Vec<EpochRecord>,
    /// Parameters and buffers by name.
    pub model: BTreeMap<String, Tensor>,
    /// Optimizer state as [`Optimizer::state`] names it.
    pub optimizer: BTreeMap<String, Tensor>,
}

#[derive(Serialize, Deserialize)]
struct Latest {
    epoch: usize,
    seed: u64,
    training_hash: String,
}

fn fsync(path: &Path) -> Result<()> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Writes a checkpoint for `meta.epoch` and points `latest.json` at it.
pub fn save(dir: &Path, meta: &Checkpoint, model: &Model, opt: &Optimizer) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (name, v) in model.store.params() {
        tensors.insert(format!("param/{name}"), v.as_tensor().clone());
    }
    for (name, v) in model.store.buffers() {
        tensors.insert(format!("buffer/{name}"), v.as_tensor().clone());
    }
    for (key, t) in opt.state()? {
        tensors.insert(key, t);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-epoch-")
        .tempdir_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    let st = tmp.path().join("state.safetensors");
    candle_core::safetensors::save(&tensors, &st)?;
    fsync(&st)?;
    let json = serde_json::to_vec_pretty(meta).map_err(|e| Error::Other(e.to_string()))?;
    let sj = tmp.path().join("state.json");
    fs::write(&sj, json).map_err(|e| Error::io(tmp.path(), e))?;
    fsync(&sj)?;
    fsync(tmp.path())?;
    let final_dir = dir.join(format!("epoch-{}", meta.epoch));
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir).map_err(|e| Error::io(&final_dir, e))?;
    }
    let tmp_path = tmp.keep();
    fs::rename(&tmp_path, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    fsync(dir)?;
    let latest = Latest {
        epoch: meta.epoch,
        seed: meta.seed,
        training_hash: meta.training_hash.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&latest).map_err(|e| Error::Other(e.to_string()))?;
    write_atomic(&dir.join("latest.json"), &bytes)?;
    // Keep the newest two durable checkpoints; older ones and leftover temporary folders go.
    let mut epochs = epoch_dirs(dir);
    epochs.sort();
    let keep: Vec<usize> = epochs.iter().rev().take(2).copied().collect();
    for e in epochs.iter().filter(|e| !keep.contains(e)) {
        let _ = fs::remove_dir_all(dir.join(format!("epoch-{e}")));
    }
    remove_temporaries(dir);
    Ok(())
}

fn epoch_dirs(dir: &Path) -> Vec<usize> {
    let Ok(entries) = fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("epoch-")
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

/// Removes `.tmp-epoch-*` folders left by a crash during `save` (never pointed to).
fn remove_temporaries(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-epoch-") {
                let _ = fs::remove_dir_all(e.path());
                n += 1;
            }
        }
    }
    n
}

/// What resuming found.
pub struct Resume {
    /// The checkpoint to continue from, if any usable one exists.
    pub state: Option<Loaded>,
    /// Checkpoints that were skipped and why (for the user to read).
    pub notes: Vec<String>,
}

/// Reads the newest usable checkpoint in `dir` for this training hash and seed.
///
/// Unusable ones (truncated, unreadable, another config or seed) are skipped with a note; the
/// previous checkpoint is tried next, then a fresh start.
pub fn resume(dir: &Path, training_hash: &str, seed: u64, dev: &Device) -> Resume {
    let mut notes = Vec::new();
    let n = remove_temporaries(dir);
    if n > 0 {
        notes.push(format!(
            "{}: removed {n} unfinished temporary checkpoint folder(s) left by an interrupted save",
            dir.display()
        ));
    }
    let mut epochs = epoch_dirs(dir);
    epochs.sort();
    // latest.json first, then the other epoch folders newest first.
    let latest: Option<usize> = fs::read(dir.join("latest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Latest>(&b).ok())
        .map(|l| l.epoch);
    let mut order: Vec<usize> = latest.into_iter().collect();
    order.extend(epochs.iter().rev().filter(|e| Some(**e) != latest));
    for e in order {
        match load_epoch(&dir.join(format!("epoch-{e}")), training_hash, seed, dev) {
            Ok(state) => {
                return Resume {
                    state: Some(state),
                    notes,
                };
            }
            Err(why) => notes.push(format!("checkpoint after epoch {e} skipped: {why}")),
        }
    }
    Resume { state: None, notes }
}

fn load_epoch(edir: &Path, training_hash: &str, seed: u64, dev: &Device) -> Result<Loaded> {
    let meta_path = edir.join("state.json");
    let meta: Checkpoint =
        serde_json::from_slice(&fs::read(&meta_path).map_err(|e| Error::io(&meta_path, e))?)
            .map_err(|e| Error::Other(format!("{}: {e}", meta_path.display())))?;
    if meta.training_hash != training_hash || meta.seed != seed {
        return Err(Error::Other(format!(
            "{} belongs to another run (training hash {} seed {}; this run: {} seed {})",
            edir.display(),
            &meta.training_hash[..meta.training_hash.len().min(12)],
            meta.seed,
            &training_hash[..training_hash.len().min(12)],
            seed
        )));
    }
    let st = edir.join("state.safetensors");
    let tensors = candle_core::safetensors::load(&st, dev)
        .map_err(|e| Error::Other(format!("{}: unreadable ({e})", st.display())))?;
    let (mut model, mut optimizer) = (BTreeMap::new(), BTreeMap::new());
    for (k, t) in tensors {
        if let Some(n) = k
            .strip_prefix("param/")
            .or_else(|| k.strip_prefix("buffer/"))
        {
            model.insert(n.to_string(), t);
        } else {
            optimizer.insert(k, t);
        }
    }
    Ok(Loaded {
        epoch: meta.epoch,
        records: meta.records,
        model,
        optimizer,
    })
}
