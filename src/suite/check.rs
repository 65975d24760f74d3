//! Checks a resolved config against what it will build, without loading data or training:
//! the dataset's shape from its parameters, the model built for that shape (parameter counts,
//! mix points; a bad layer list or a zero width fails here), and the resolved regularizer
//! against the model's mix points. Failures keep the field path of a parameter error. `resolve` runs it for every cell, so a suite that cannot train trains
//! nothing.

use std::collections::BTreeMap;

use candle_core::Device;

use crate::data::{self, DataShape};
use crate::experiment::ExperimentConfig;
use crate::experiment::Plan;
use crate::model::{InputSpec, Model};

/// The config block a check failed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// `dataset`.
    Dataset,
    /// `model`.
    Model,
    /// `regularizer`.
    Regularizer,
}

/// What building a config showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Facts {
    /// The dataset as loaded (training size after a per-class cap).
    pub data: DataShape,
    /// The model's trainable parameters.
    pub trainable_params: usize,
}

impl Facts {
    /// Relative training cost: epochs × training images × parameters (for balancing shards).
    pub fn cost(&self, epochs: usize) -> f64 {
        epochs as f64 * self.data.train_size as f64 * self.trainable_params as f64
    }
}

/// A failed check: the block at fault, the field path inside it (empty: the block as a whole)
/// and the message.
pub type Failure = (Block, String, String);

/// Memoised checks: rows that share dataset, model and regularizer are built once.
#[derive(Default)]
pub struct Checker {
    seen: BTreeMap<String, std::result::Result<Facts, Failure>>,
}

impl Checker {
    /// Checks `cfg` with its resolved `plan`; on failure, where and what.
    pub fn check(
        &mut self,
        cfg: &ExperimentConfig,
        plan: &Plan,
    ) -> std::result::Result<Facts, Failure> {
        let key = serde_json::json!([cfg.dataset, cfg.model, cfg.regularizer]).to_string();
        self.seen
            .entry(key)
            .or_insert_with(|| check(cfg, plan))
            .clone()
    }
}

/// A component's error as a failure of `block`: a parameter error keeps its field.
fn failure(block: Block, prefix: &str, e: crate::Error) -> Failure {
    let (path, msg) = match e {
        crate::Error::Param { path, message } => (path, message),
        other => (String::new(), other.to_string()),
    };
    // candle appends a backtrace when RUST_BACKTRACE is set: keep the message line only.
    let first = msg.lines().next().unwrap_or_default();
    let msg = first.strip_prefix("tensor error: ").unwrap_or(first);
    (block, path, format!("{prefix}{msg}"))
}

fn check(cfg: &ExperimentConfig, plan: &Plan) -> std::result::Result<Facts, Failure> {
    let d = |e| failure(Block::Dataset, "", e);
    let name = ExperimentConfig::block_name(&cfg.dataset, "name", "dataset").map_err(d)?;
    let source = data::registry::get(name).map_err(d)?;
    let mut shape = source
        .shape(&serde_json::Value::Object(cfg.dataset_source_params()))
        .map_err(d)?;
    if let Some(kept) = cfg.kept_classes(shape.classes).map_err(d)? {
        // The split sizes after filtering are known only once the files are read: assume
        // balanced classes (the sizes feed estimates, not training).
        shape.train_size = shape.train_size * kept.len() / shape.classes;
        shape.test_size = shape.test_size * kept.len() / shape.classes;
        shape.classes = kept.len();
    }
    if let Some(k) = cfg.dataset.get("train_per_class").and_then(|v| v.as_u64()) {
        shape.train_size = shape.train_size.min(k as usize * shape.classes);
    }
    if let Some(k) = cfg.dataset.get("test_per_class").and_then(|v| v.as_u64()) {
        shape.test_size = shape.test_size.min(k as usize * shape.classes);
    }
    let m = |e| failure(Block::Model, "model: ", e);
    let arch = ExperimentConfig::block_name(&cfg.model, "arch", "model").map_err(m)?;
    let model = Model::build(
        arch,
        &ExperimentConfig::block_params(&cfg.model, &["arch"]),
        InputSpec {
            channels: shape.channels,
            height: shape.height,
            width: shape.width,
            classes: shape.classes,
        },
        0,
        &Device::Cpu,
    )
    .map_err(m)?;
    plan.regularizer
        .validate(model.num_mix_points())
        .map_err(|e| failure(Block::Regularizer, "", e))?;
    Ok(Facts {
        data: shape,
        trainable_params: model.store.num_trainable(),
    })
}

/// The error for a failed check of experiment `id` under `profile`, at the file position of
/// the failing field (inside the block whose value came from `origins`, from `Resolved`).
pub fn located_error(
    ls: &super::LoadedSuite,
    origins: &[Vec<super::locate::Seg>; 3],
    (block, path, msg): Failure,
    id: &str,
    profile: &str,
) -> crate::Error {
    let i = match block {
        Block::Dataset => 0,
        Block::Model => 1,
        Block::Regularizer => 2,
    };
    let at = [origins[i].clone(), super::locate::parse_path(&path)].concat();
    ls.error_at(
        &at,
        &format!("{msg} (experiment `{id}`, profile `{profile}`)"),
    )
}
