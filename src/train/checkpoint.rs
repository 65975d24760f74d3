//! Checkpoints: weights, BatchNorm statistics, momentum buffers and the epoch log, written
//! atomically. Random state needs no saving: every epoch's generators derive from (seed, epoch).
//!
//! Layout: `<dir>/epoch-<e>/state.safetensors` + `state.json`, and `<dir>/latest.json` naming the
//! newest complete one. The epoch folder is renamed into place before `latest.json` is replaced,
//! so a crash at any point leaves the previous checkpoint usable.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{EpochRecord, Sgd};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::results::atomic::write_atomic;

/// The JSON half of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Last completed epoch.
    pub epoch: usize,
    /// Training seed.
    pub seed: u64,
    /// Config hash of the run.
    pub config_hash: String,
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
    /// Momentum buffers by parameter name.
    pub momentum: BTreeMap<String, Tensor>,
}

#[derive(Serialize, Deserialize)]
struct Latest {
    epoch: usize,
    seed: u64,
    config_hash: String,
}

/// Writes a checkpoint for `meta.epoch` and points `latest.json` at it.
pub fn save(dir: &Path, meta: &Checkpoint, model: &Model, opt: &Sgd) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (name, v) in model.store.params() {
        tensors.insert(format!("param/{name}"), v.as_tensor().clone());
    }
    for (name, v) in model.store.buffers() {
        tensors.insert(format!("buffer/{name}"), v.as_tensor().clone());
    }
    for (name, t) in opt.buffers() {
        tensors.insert(format!("momentum/{name}"), t.clone());
    }
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-epoch-")
        .tempdir_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    candle_core::safetensors::save(&tensors, tmp.path().join("state.safetensors"))?;
    let json = serde_json::to_vec_pretty(meta).map_err(|e| Error::Other(e.to_string()))?;
    fs::write(tmp.path().join("state.json"), json).map_err(|e| Error::io(tmp.path(), e))?;
    let final_dir = dir.join(format!("epoch-{}", meta.epoch));
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir).map_err(|e| Error::io(&final_dir, e))?;
    }
    let tmp_path = tmp.keep();
    fs::rename(&tmp_path, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    let latest = Latest {
        epoch: meta.epoch,
        seed: meta.seed,
        config_hash: meta.config_hash.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&latest).map_err(|e| Error::Other(e.to_string()))?;
    write_atomic(&dir.join("latest.json"), &bytes)?;
    // Older checkpoints are superseded; failing to delete them loses nothing.
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("epoch-") && e.path() != final_dir {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

/// Reads the newest checkpoint in `dir` if it belongs to this config and seed.
pub fn load_latest(
    dir: &Path,
    config_hash: &str,
    seed: u64,
    dev: &Device,
) -> Result<Option<Loaded>> {
    let latest_path = dir.join("latest.json");
    let Ok(bytes) = fs::read(&latest_path) else {
        return Ok(None);
    };
    let latest: Latest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Other(format!(
            "{}: unreadable checkpoint pointer ({e}); delete the folder to start over",
            latest_path.display()
        ))
    })?;
    if latest.config_hash != config_hash || latest.seed != seed {
        return Err(Error::Other(format!(
            "{} holds a checkpoint of another run (config {} seed {}, this run: config {} seed {}); delete it or use --force",
            dir.display(),
            latest.config_hash,
            latest.seed,
            config_hash,
            seed
        )));
    }
    let edir = dir.join(format!("epoch-{}", latest.epoch));
    let meta_path = edir.join("state.json");
    let meta: Checkpoint =
        serde_json::from_slice(&fs::read(&meta_path).map_err(|e| Error::io(&meta_path, e))?)
            .map_err(|e| Error::Other(format!("{}: {e}", meta_path.display())))?;
    let tensors = candle_core::safetensors::load(edir.join("state.safetensors"), dev)?;
    let (mut model, mut momentum) = (BTreeMap::new(), BTreeMap::new());
    for (k, t) in tensors {
        if let Some(n) = k
            .strip_prefix("param/")
            .or_else(|| k.strip_prefix("buffer/"))
        {
            model.insert(n.to_string(), t);
        } else if let Some(n) = k.strip_prefix("momentum/") {
            momentum.insert(n.to_string(), t);
        }
    }
    Ok(Some(Loaded {
        epoch: meta.epoch,
        records: meta.records,
        model,
        momentum,
    }))
}
