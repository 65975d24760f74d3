//! Checks a resolved config against what it will build, without loading data or training:
//! the dataset's shape from its parameters, the model built for that shape (parameter counts,
//! mix points; a bad layer list or a zero width fails here), and the regularizer against the
//! model's mix points. `resolve` runs it for every cell, so a suite that cannot train trains
//! nothing.

use std::collections::BTreeMap;

use candle_core::Device;

use crate::data::{self, DataShape};
use crate::experiment::ExperimentConfig;
use crate::model::{InputSpec, Model};
use crate::regularizer;

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

/// Memoised checks: rows that share dataset, model and regularizer are built once.
#[derive(Default)]
pub struct Checker {
    seen: BTreeMap<String, std::result::Result<Facts, (Block, String)>>,
}

impl Checker {
    /// Checks `cfg`; on failure, the block at fault and the message.
    pub fn check(&mut self, cfg: &ExperimentConfig) -> std::result::Result<Facts, (Block, String)> {
        let key = serde_json::json!([cfg.dataset, cfg.model, cfg.regularizer]).to_string();
        self.seen.entry(key).or_insert_with(|| check(cfg)).clone()
    }
}

fn check(cfg: &ExperimentConfig) -> std::result::Result<Facts, (Block, String)> {
    let d = |e: crate::Error| (Block::Dataset, e.to_string());
    let name = ExperimentConfig::block_name(&cfg.dataset, "name", "dataset").map_err(d)?;
    let source = data::registry::get(name).map_err(d)?;
    let mut shape = source
        .shape(&serde_json::Value::Object(cfg.dataset_source_params()))
        .map_err(d)?;
    if let Some(k) = cfg.dataset.get("train_per_class").and_then(|v| v.as_u64()) {
        shape.train_size = shape.train_size.min(k as usize * shape.classes);
    }
    // candle appends a backtrace when RUST_BACKTRACE is set: keep the message line only.
    let m = |e: crate::Error| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        let msg = first.strip_prefix("tensor error: ").unwrap_or(first);
        (Block::Model, format!("model: {msg}"))
    };
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
    let r = |e: crate::Error| (Block::Regularizer, e.to_string());
    let reg_name =
        ExperimentConfig::block_name(&cfg.regularizer, "name", "regularizer").map_err(r)?;
    let reg = regularizer::registry::build(
        reg_name,
        &ExperimentConfig::block_params(&cfg.regularizer, &["name"]),
    )
    .map_err(r)?;
    reg.validate(model.num_mix_points()).map_err(r)?;
    Ok(Facts {
        data: shape,
        trainable_params: model.store.num_trainable(),
    })
}

/// The error for a failed check of experiment `id` under `profile`, at the file position the
/// failing block's value came from (`origins` from `Resolved`).
pub fn located_error(
    ls: &super::LoadedSuite,
    origins: &[Vec<super::locate::Seg>; 3],
    (block, msg): (Block, String),
    id: &str,
    profile: &str,
) -> crate::Error {
    let i = match block {
        Block::Dataset => 0,
        Block::Model => 1,
        Block::Regularizer => 2,
    };
    ls.error_at(
        &origins[i],
        &format!("{msg} (experiment `{id}`, profile `{profile}`)"),
    )
}
