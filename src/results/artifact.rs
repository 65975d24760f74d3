//! Trained-model artifacts: final weights and buffers (safetensors, PyTorch `state_dict`
//! names) plus a JSON of provenance, stored once per (training hash, seed) under
//! `<results>/models/<training_hash>/s<seed>/` and shared by every suite and row that trains
//! the same model. Evaluations of it live beside it in `evals/<evaluation hash>.json`.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::record::{CodeVersion, RunEnvironment};
use crate::data::DatasetProvenance;
use crate::data::files::hash::sha256_hex;
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::model::Model;
use crate::scoring::EvalMetrics;
use crate::train::{Divergence, EpochRecord};

/// Version of the artifact format.
pub(crate) const ARTIFACT_VERSION: u32 = 1;

/// Where one trained model's files live (made by `results::layout::Layout::model`).
#[derive(Debug, Clone)]
pub(crate) struct ArtifactPaths {
    /// `<results>/models/<training_hash>/s<seed>`.
    pub(crate) dir: PathBuf,
}

impl ArtifactPaths {
    /// The weights file.
    pub(crate) fn weights(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// The provenance file (written last: its presence marks a complete artifact).
    pub(crate) fn meta(&self) -> PathBuf {
        self.dir.join("model.json")
    }

    /// Checkpoints of the training run.
    pub(crate) fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    /// The stored result of one evaluation.
    pub(crate) fn evaluation(&self, evaluation_hash: &str) -> PathBuf {
        self.dir
            .join("evals")
            .join(format!("{evaluation_hash}.json"))
    }
}

/// The weights file as recorded at save time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WeightsFile {
    /// Size in bytes.
    pub(crate) bytes: u64,
    /// sha256 of the file.
    pub(crate) sha256: String,
}

/// Provenance of a trained model (`model.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrainedModel {
    /// Format version.
    pub(crate) artifact_version: u32,
    /// Hash of `training_config`.
    pub(crate) training_hash: String,
    /// Training seed.
    pub(crate) seed: u64,
    /// The weight-determining settings.
    pub(crate) training_config: Value,
    /// Dataset provenance.
    pub(crate) dataset: DatasetProvenance,
    /// Code that trained it.
    pub(crate) code: CodeVersion,
    /// Device, threads, timing.
    pub(crate) environment: RunEnvironment,
    /// Trainable parameter count.
    pub(crate) trainable_params: usize,
    /// Per-epoch log (its test metrics follow the `eval_every` of the run that trained it).
    pub(crate) curves: Vec<EpochRecord>,
    /// Test metrics of the last scored epoch, from the log (the name older artifacts used is
    /// still read).
    #[serde(alias = "final_clean")]
    pub(crate) final_test: Option<EvalMetrics>,
    /// Test metrics at the best scored epoch.
    #[serde(alias = "best_clean")]
    pub(crate) best_test: Option<EvalMetrics>,
    /// The best logged epoch.
    pub(crate) best_epoch: Option<usize>,
    /// Epoch a checkpoint resumed from.
    pub(crate) resumed_from: Option<usize>,
    /// Set when training diverged; there are then no weights.
    pub(crate) divergence: Option<Divergence>,
    /// The weights file (None when diverged).
    pub(crate) weights: Option<WeightsFile>,
}

/// What is on disk for one (training hash, seed).
#[derive(Debug)]
pub(crate) enum ArtifactState {
    /// Nothing was trained yet.
    Missing,
    /// A complete artifact whose weights hash matches.
    Valid(Box<TrainedModel>),
    /// Something is there but cannot be trusted; why, in words.
    Corrupt(String),
}

/// Saves `model`'s weights and then `meta` (with the weights' hash filled in).
pub(crate) fn save(
    paths: &ArtifactPaths,
    mut meta: TrainedModel,
    model: Option<&Model>,
) -> Result<TrainedModel> {
    fs::create_dir_all(&paths.dir).map_err(|e| Error::io(&paths.dir, e))?;
    // A stale model.json must never describe new weights: remove it first.
    let _ = fs::remove_file(paths.meta());
    if let Some(model) = model {
        let mut tensors: HashMap<String, candle_core::Tensor> = HashMap::new();
        for (name, v) in model
            .store
            .params()
            .into_iter()
            .chain(model.store.buffers())
        {
            tensors.insert(name, v.as_tensor().clone());
        }
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-model-")
            .suffix(".safetensors")
            .tempfile_in(&paths.dir)
            .map_err(|e| Error::io(&paths.dir, e))?;
        candle_core::safetensors::save(&tensors, tmp.path())?;
        let bytes = fs::read(tmp.path()).map_err(|e| Error::io(tmp.path(), e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
        tmp.persist(paths.weights())
            .map_err(|e| Error::io(paths.weights(), e.error))?;
        meta.weights = Some(WeightsFile {
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        });
    } else {
        let _ = fs::remove_file(paths.weights());
        meta.weights = None;
    }
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| Error::Other(e.to_string()))?;
    write_atomic(&paths.meta(), &json)?;
    Ok(meta)
}

/// Checks what is stored for (training hash, seed), re-hashing the weights.
pub(crate) fn inspect(paths: &ArtifactPaths, training_hash: &str, seed: u64) -> ArtifactState {
    let meta_path = paths.meta();
    let bytes = match fs::read(&meta_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return if paths.weights().exists() {
                ArtifactState::Corrupt(format!(
                    "{} exists without {} (an interrupted save)",
                    paths.weights().display(),
                    meta_path.display()
                ))
            } else {
                ArtifactState::Missing
            };
        }
        Err(e) => return ArtifactState::Corrupt(format!("{}: {e}", meta_path.display())),
    };
    let meta: TrainedModel = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return ArtifactState::Corrupt(format!(
                "{}: not a trained-model record ({e})",
                meta_path.display()
            ));
        }
    };
    if meta.training_hash != training_hash || meta.seed != seed {
        return ArtifactState::Corrupt(format!(
            "{} describes training hash {} seed {}, but its folder is for {} seed {}",
            meta_path.display(),
            meta.training_hash,
            meta.seed,
            training_hash,
            seed
        ));
    }
    if let Some(w) = &meta.weights {
        let wp = paths.weights();
        match fs::read(&wp) {
            Err(e) => return ArtifactState::Corrupt(format!("{}: {e}", wp.display())),
            Ok(b) if b.len() as u64 != w.bytes => {
                return ArtifactState::Corrupt(format!(
                    "{} has {} bytes, {} were written (truncated or replaced)",
                    wp.display(),
                    b.len(),
                    w.bytes
                ));
            }
            Ok(b) if sha256_hex(&b) != w.sha256 => {
                return ArtifactState::Corrupt(format!(
                    "{}: sha256 differs from the one recorded at training time",
                    wp.display()
                ));
            }
            Ok(_) => {}
        }
    } else if meta.divergence.is_none() {
        return ArtifactState::Corrupt(format!(
            "{} records neither weights nor a divergence",
            meta_path.display()
        ));
    }
    ArtifactState::Valid(Box::new(meta))
}

/// Loads a valid artifact's weights into `model` (built for the same config).
pub(crate) fn load_weights(paths: &ArtifactPaths, model: &Model) -> Result<()> {
    let tensors = candle_core::safetensors::load(paths.weights(), model.store.device())?;
    model.store.load(&tensors.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(dir: &std::path::Path) -> ArtifactPaths {
        let model = Model::build(
            "mlp",
            serde_json::json!({"hidden": [4]}).as_object().unwrap(),
            crate::model::InputSpec {
                channels: 1,
                height: 2,
                width: 2,
                classes: 3,
            },
            0,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let meta = TrainedModel {
            artifact_version: ARTIFACT_VERSION,
            training_hash: "h".into(),
            seed: 0,
            training_config: serde_json::json!({}),
            dataset: DatasetProvenance {
                name: "synthetic".into(),
                fingerprint: "fp".into(),
                files: vec![],
                notes: vec![],
            },
            code: CodeVersion::current(),
            environment: RunEnvironment {
                device: "cpu".into(),
                threads: 1,
                started_at: String::new(),
                finished_at: String::new(),
                wall_seconds: 0.0,
            },
            trainable_params: 0,
            curves: vec![],
            final_test: None,
            best_test: None,
            best_epoch: None,
            resumed_from: None,
            divergence: None,
            weights: None,
        };
        let paths = ArtifactPaths {
            dir: dir.join("h/s0"),
        };
        save(&paths, meta, Some(&model)).unwrap();
        paths
    }

    #[test]
    fn a_flipped_byte_of_the_same_length_is_caught_by_the_sha256() {
        let d = tempfile::tempdir().unwrap();
        let paths = stored(d.path());
        assert!(matches!(inspect(&paths, "h", 0), ArtifactState::Valid(_)));
        let mut bytes = fs::read(paths.weights()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(paths.weights(), &bytes).unwrap();
        match inspect(&paths, "h", 0) {
            ArtifactState::Corrupt(why) => assert!(
                why.contains("model.safetensors")
                    && why.contains("sha256 differs from the one recorded at training time"),
                "{why}"
            ),
            other => panic!("a flipped byte must be corrupt, got {other:?}"),
        }
    }
}
