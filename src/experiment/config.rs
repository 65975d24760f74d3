//! The fully resolved configuration of one experiment; `training_hash` covers the part that
//! changes the trained weights, evaluation hashes the rest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::data::Preprocessing;
use crate::scoring::LossKind;
use crate::train::{OptimizerConfig, StepSchedule, TrainConfig};

/// Everything that determines an experiment's numbers, except the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// `{name: <dataset>, train_per_class?, test_per_class?, subset_seed?, ...dataset params}`.
    pub dataset: Map<String, Value>,
    /// `{arch: <model>, width?, ...model params}`.
    pub model: Map<String, Value>,
    /// `{name: <regularizer>, ...regularizer params}`.
    pub regularizer: Map<String, Value>,
    /// Training loss.
    #[serde(default)]
    pub loss: LossKind,
    /// Optimizer: SGD unless `name: adam`.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule.
    #[serde(default)]
    pub schedule: StepSchedule,
    /// Number of epochs.
    pub epochs: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Normalisation and augmentation; defaults to the reference code's for the dataset.
    #[serde(default)]
    pub preprocessing: Option<Preprocessing>,
    /// Evaluate every this many epochs (the last epoch always).
    #[serde(default = "one")]
    pub eval_every: usize,
    /// Images per evaluation batch.
    #[serde(default = "eval_batch")]
    pub eval_batch_size: usize,
    /// Checkpoint every this many epochs (0 = by time only).
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Also checkpoint at the end of an epoch when this many minutes have passed since the last
    /// checkpoint (0 = never), so a killed long run loses at most about this much.
    #[serde(default = "ten")]
    pub checkpoint_minutes: f64,
    /// Extra evaluations after training (FGSM, singular values, ...).
    #[serde(default)]
    pub evaluations: Vec<Map<String, Value>>,
}

fn one() -> usize {
    1
}
fn ten() -> f64 {
    10.0
}
fn eval_batch() -> usize {
    500
}

impl ExperimentConfig {
    /// The training part of the config.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            loss: self.loss,
            optimizer: self.optimizer.clone(),
            schedule: self.schedule.clone(),
            eval_every: self.eval_every,
            eval_batch_size: self.eval_batch_size,
            checkpoint_every: self.checkpoint_every,
            checkpoint_minutes: self.checkpoint_minutes,
        }
    }

    /// `name` (or `arch`) field of a block, or an error naming the block.
    pub fn block_name<'a>(
        block: &'a Map<String, Value>,
        key: &str,
        what: &str,
    ) -> crate::Result<&'a str> {
        block.get(key).and_then(Value::as_str).ok_or_else(|| {
            crate::Error::Config(format!(
                "{what}: missing field `{key}` (a string naming the {what})"
            ))
        })
    }

    /// The first per-class subset key the dataset block sets, if any (generated sets with
    /// latent factors refuse them).
    pub fn subset_key(&self) -> Option<&'static str> {
        [
            "keep_classes",
            "train_per_class",
            "test_per_class",
            "validation_per_class",
        ]
        .into_iter()
        .find(|k| self.dataset.contains_key(*k))
    }

    /// Keys of the `dataset` block that every dataset understands (name, per-class subsets),
    /// as opposed to the source's own parameters.
    pub const DATASET_KEYS: &'static [&'static str] = &[
        "name",
        "keep_classes",
        "train_per_class",
        "test_per_class",
        "validation_per_class",
        "subset_seed",
    ];

    /// The dataset source's own parameters (the `dataset` block without `DATASET_KEYS`).
    pub fn dataset_source_params(&self) -> Map<String, Value> {
        Self::block_params(&self.dataset, Self::DATASET_KEYS)
    }

    /// `dataset.keep_classes` checked against a source of `classes` classes: a non-empty list of
    /// distinct labels below `classes`; None when the block does not set it.
    pub fn kept_classes(&self, classes: usize) -> crate::Result<Option<Vec<u32>>> {
        let Some(v) = self.dataset.get("keep_classes") else {
            return Ok(None);
        };
        let bad = |message: String| crate::Error::Param {
            path: "keep_classes".into(),
            message: format!("dataset.keep_classes: {message}"),
        };
        let list = v.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
            bad(format!(
                "expected a non-empty list of class labels (integers 0..{classes}), got {v}"
            ))
        })?;
        let mut kept: Vec<u32> = Vec::with_capacity(list.len());
        for x in list {
            match x.as_u64() {
                Some(c) if (c as usize) < classes && !kept.contains(&(c as u32)) => {
                    kept.push(c as u32)
                }
                Some(c) if (c as usize) < classes => {
                    return Err(bad(format!("class {c} is listed twice")));
                }
                _ => {
                    return Err(bad(format!(
                        "{x} is not a class label of this dataset (integers 0..{classes})"
                    )));
                }
            }
        }
        Ok(Some(kept))
    }

    /// A block without its naming key and the given generic keys.
    pub fn block_params(block: &Map<String, Value>, drop: &[&str]) -> Map<String, Value> {
        block
            .iter()
            .filter(|(k, _)| !drop.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
