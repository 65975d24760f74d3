//! One experiment cell's ingredients: load its data, build its model and regularizer, and train
//! it with the trainer's seams filled from the config.

use candle_core::Device;

use super::ExperimentConfig;
use super::Plan;
use crate::data::{self, ImageDataset, LoadOptions};
use crate::error::{Error, Result};
use crate::model::{InputSpec, Model};
use crate::rng;
use crate::train::trainer::CheckpointSpec;
use crate::train::{Observer, TrainOutcome};

/// Loads the dataset block of `cfg`, applying class-balanced subsets.
pub fn load_dataset(
    cfg: &ExperimentConfig,
    opts: &LoadOptions,
) -> Result<(ImageDataset, data::Preprocessing)> {
    let name = ExperimentConfig::block_name(&cfg.dataset, "name", "dataset")?;
    let source = data::registry::get(name)?;
    let params = cfg.dataset_source_params();
    let mut ds = source.load(&serde_json::Value::Object(params), opts)?;
    let get = |k: &str| -> Result<Option<u64>> {
        match cfg.dataset.get(k) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                Error::Config(format!(
                    "dataset.{k}: expected a non-negative integer, got {v}"
                ))
            }),
        }
    };
    if ds.latent.is_some()
        && let Some(k) = cfg.subset_key()
    {
        return Err(Error::Config(format!(
            "dataset.{k}: dataset `{name}` generates its images with latent factors for factor mixup; set its sizes with `train_size` and `test_size` instead of subsetting"
        )));
    }
    let subset_seed = get("subset_seed")?.unwrap_or(0);
    let len = ds.image_len();
    if let Some(kept) = cfg.kept_classes(ds.num_classes)? {
        ds.train = data::subset::keep_classes(&ds.train, len, &kept);
        ds.test = data::subset::keep_classes(&ds.test, len, &kept);
        ds.num_classes = kept.len();
        ds.provenance.notes.push(format!(
            "classes {kept:?} kept, relabelled 0..{}: {} train and {} test images",
            kept.len(),
            ds.train.len(),
            ds.test.len()
        ));
    }
    if let Some(k) = get("train_per_class")? {
        let mut r = rng::stream(subset_seed, "subset/train", 0);
        ds.train = data::subset::cap_per_class(&ds.train, len, k as usize, &mut r);
        ds.provenance.notes.push(format!(
            "train capped at {k} per class (subset_seed {subset_seed}): {} images",
            ds.train.len()
        ));
    }
    if let Some(k) = get("test_per_class")? {
        let mut r = rng::stream(subset_seed, "subset/test", 0);
        ds.test = data::subset::cap_per_class(&ds.test, len, k as usize, &mut r);
        ds.provenance.notes.push(format!(
            "test capped at {k} per class (subset_seed {subset_seed}): {} images",
            ds.test.len()
        ));
    }
    let pre = cfg
        .preprocessing
        .clone()
        .unwrap_or_else(|| source.default_preprocessing());
    if pre.mean.len() != ds.channels || pre.std.len() != ds.channels {
        return Err(Error::Config(format!(
            "preprocessing: mean and std need {} values (one per channel of `{name}`), got {} and {}",
            ds.channels,
            pre.mean.len(),
            pre.std.len()
        )));
    }
    Ok((ds, pre))
}

/// Builds the model of `cfg` for `ds`, with parameters drawn from `seed`.
pub fn build_model(
    cfg: &ExperimentConfig,
    ds: &ImageDataset,
    seed: u64,
    device: &Device,
) -> Result<Model> {
    let arch = ExperimentConfig::block_name(&cfg.model, "arch", "model")?;
    let params = ExperimentConfig::block_params(&cfg.model, &["arch"]);
    Model::build(
        arch,
        &params,
        InputSpec {
            channels: ds.channels,
            height: ds.height,
            width: ds.width,
            classes: ds.num_classes,
        },
        seed,
        device,
    )
}

/// Data, preprocessing and a freshly initialised model for one cell.
pub struct Prepared {
    /// The dataset (subsets applied).
    pub data: ImageDataset,
    /// Normalisation and augmentation.
    pub preprocessing: data::Preprocessing,
    /// The model, parameters drawn from the seed.
    pub model: Model,
    /// Images held out of the training split for model selection (`validation_per_class`).
    pub validation: Option<data::Split>,
}

/// Loads the data of `cfg` and builds its model from `seed`.
pub fn prepare(
    cfg: &ExperimentConfig,
    seed: u64,
    opts: &LoadOptions,
    device: &Device,
) -> Result<Prepared> {
    let (mut data, preprocessing) = load_dataset(cfg, opts)?;
    let mut validation = None;
    if let Some(v) = cfg.dataset.get("validation_per_class") {
        let k = v.as_u64().filter(|k| *k > 0).ok_or_else(|| {
            Error::Config(format!(
                "dataset.validation_per_class: expected an integer >= 1, got {v}"
            ))
        })? as usize;
        let subset_seed = cfg
            .dataset
            .get("subset_seed")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let mut r = rng::stream(subset_seed, "subset/validation", 0);
        let (rest, held) =
            data::subset::hold_out_per_class(&data.train, data.image_len(), k, &mut r);
        data.provenance.notes.push(format!(
            "validation: {} training images held out ({k} per class, subset_seed {subset_seed}); {} left for training",
            held.len(),
            rest.len()
        ));
        data.train = rest;
        validation = Some(held);
    }
    let model = build_model(cfg, &data, seed, device)?;
    Ok(Prepared {
        data,
        preprocessing,
        model,
        validation,
    })
}

/// Trains a prepared cell with the regularizer its plan built at resolution: the test split (and
/// the validation split, when held out) scored as `eval_every` says, checkpoints as
/// `checkpoint_every` / `checkpoint_minutes` say.
pub fn train_prepared(
    p: &Prepared,
    cfg: &ExperimentConfig,
    plan: &Plan,
    seed: u64,
    checkpoint: Option<&CheckpointSpec>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    crate::train::trainer::train_with_validation(
        &p.model,
        &p.data,
        p.validation.as_ref(),
        &p.preprocessing,
        plan.regularizer.as_ref(),
        &cfg.train_config(),
        seed,
        checkpoint,
        observer,
    )
}
