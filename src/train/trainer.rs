//! The epoch loop: seeded shuffles, augmentation and mixing plans, SGD steps, per-epoch
//! evaluation, periodic checkpoints and exact resume.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Tensor;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, Checkpoint};
use super::{Optimizer, OptimizerConfig, StepSchedule};
use crate::data::batch::{ImageShape, fill_batch};
use crate::data::{ImageDataset, Preprocessing};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::regularizer::{BatchInfo, Regularizer};
use crate::rng;
use crate::scoring::{EvalMetrics, evaluate};
use crate::scoring::{LossKind, loss};

/// Everything about the optimisation that is not the model, data or regularizer.
///
/// Built in code (tests) or from an `ExperimentConfig`, which owns the file format and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Number of epochs.
    pub epochs: usize,
    /// Minibatch size (the reference: 100).
    pub batch_size: usize,
    /// Training loss.
    pub loss: LossKind,
    /// Optimizer.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule.
    pub schedule: StepSchedule,
    /// Evaluate on the test split every this many epochs (the last epoch always).
    pub eval_every: usize,
    /// Images per evaluation batch.
    pub eval_batch_size: usize,
    /// Write a checkpoint every this many epochs (0 = by time only).
    pub checkpoint_every: usize,
    /// Also write one at an epoch's end once this many minutes passed since the last (0 = never).
    pub checkpoint_minutes: f64,
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch index, from 0.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Mean training loss over the epoch's examples.
    pub train_loss: f64,
    /// Test metrics when evaluated this epoch.
    pub test: Option<EvalMetrics>,
    /// Validation metrics when a validation split is held out.
    #[serde(default)]
    pub validation: Option<EvalMetrics>,
    /// Wall-clock seconds for the epoch (training + evaluation).
    pub seconds: f64,
}

/// Where and why training stopped without a usable model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// Epoch (from 0).
    pub epoch: usize,
    /// Optimisation step within the epoch; None when found at evaluation.
    pub step: Option<usize>,
    /// What was not finite.
    pub reason: String,
}

/// The result of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOutcome {
    /// One record per epoch.
    pub epochs: Vec<EpochRecord>,
    /// Metrics after the last epoch (None when training diverged).
    pub final_metrics: Option<EvalMetrics>,
    /// Metrics of the epoch with the lowest test error (the first one on ties).
    pub best_metrics: Option<EvalMetrics>,
    /// Epoch of `best_metrics`.
    pub best_epoch: Option<usize>,
    /// Epoch a checkpoint resumed from (None = trained from scratch).
    pub resumed_from: Option<usize>,
    /// Set when a loss or a test output was NaN or infinite: the run stopped there.
    pub divergence: Option<Divergence>,
    /// Checkpoints skipped on resume and why.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Receives progress; the CLI draws a progress bar, tests ignore it.
pub trait Observer {
    /// After each optimisation step.
    fn on_step(&mut self, _epoch: usize, _step: usize, _steps: usize, _loss: f64) {}
    /// After each epoch.
    fn on_epoch(&mut self, _record: &EpochRecord) {}
}

/// An observer that ignores everything.
pub struct SilentObserver;
impl Observer for SilentObserver {}

/// Where and under which identity to checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointSpec {
    /// Directory holding this run's checkpoints.
    pub dir: PathBuf,
    /// The run's training hash; a checkpoint for another training config is never resumed.
    pub training_hash: String,
}

/// Trains `model` on `data` and evaluates it; see the module docs for determinism.
#[allow(clippy::too_many_arguments)]
pub fn train(
    model: &Model,
    data: &ImageDataset,
    pre: &Preprocessing,
    reg: &dyn Regularizer,
    cfg: &TrainConfig,
    seed: u64,
    ckpt: Option<&CheckpointSpec>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    train_with_validation(model, data, None, pre, reg, cfg, seed, ckpt, observer)
}

/// [`train`] that also scores a held-out `validation` split whenever it scores the test split
/// and picks the best epoch by validation error (as the pre-refactor reference reported test
/// accuracy at the best validation epoch).
#[allow(clippy::too_many_arguments)]
pub fn train_with_validation(
    model: &Model,
    data: &ImageDataset,
    validation: Option<&crate::data::Split>,
    pre: &Preprocessing,
    reg: &dyn Regularizer,
    cfg: &TrainConfig,
    seed: u64,
    ckpt: Option<&CheckpointSpec>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    if cfg.epochs == 0 || cfg.batch_size < 2 {
        return Err(Error::Config(format!(
            "epochs must be >= 1 and batch_size >= 2 (BatchNorm needs 2 examples), got epochs={} batch_size={}",
            cfg.epochs, cfg.batch_size
        )));
    }
    reg.validate(model.num_mix_points())?;
    if reg.needs_factors() && data.latent.is_none() {
        return Err(Error::Config(format!(
            "regularizer `{}` mixes latent factors, but dataset `{}` has none (use a generated set such as `glyphs`)",
            reg.name(),
            data.provenance.name
        )));
    }
    cfg.schedule.validate().map_err(Error::Config)?;
    cfg.optimizer.validate().map_err(Error::Config)?;
    let shape = ImageShape {
        c: data.channels,
        h: data.height,
        w: data.width,
    };
    let dev = model.store.device().clone();
    let params = model.store.params();
    let mut opt = Optimizer::new(&cfg.optimizer);
    let mut records: Vec<EpochRecord> = Vec::new();
    let mut start = 0;
    let mut resumed_from = None;
    let mut notes = Vec::new();
    if let Some(spec) = ckpt {
        let r = checkpoint::resume(&spec.dir, &spec.training_hash, seed, &dev);
        notes = r.notes;
        if let Some(state) = r.state {
            apply_checkpoint(model, &mut opt, &state)?;
            start = state.epoch + 1;
            records = state.records.clone();
            resumed_from = Some(state.epoch);
        }
    }
    let n = data.train.len();
    let mut last_checkpoint = Instant::now();
    let mut buf = vec![0f32; cfg.batch_size * shape.len()];
    for epoch in start..cfg.epochs {
        let t0 = Instant::now();
        let lr = cfg.schedule.lr(cfg.optimizer.lr(), epoch);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng::stream(seed, "shuffle", epoch as u64));
        let mut aug = rng::stream(seed, "augment", epoch as u64);
        let mut mix = rng::stream(seed, "mix", epoch as u64);
        model
            .store
            .set_noise(Some(rng::stream(seed, "dropout", epoch as u64)));
        // A final batch of one cannot be batch-normalised (PyTorch raises); it is dropped.
        let batches: Vec<&[usize]> = order
            .chunks(cfg.batch_size)
            .filter(|b| b.len() >= 2)
            .collect();
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        for (step, idx) in batches.iter().enumerate() {
            let out = &mut buf[..idx.len() * shape.len()];
            fill_batch(&data.train, shape, idx, pre, Some(&mut aug), out);
            let x = Tensor::from_slice(out, (idx.len(), shape.c, shape.h, shape.w), &dev)?;
            let labels: Vec<u32> = idx.iter().map(|&i| data.train.labels[i]).collect();
            let info = BatchInfo {
                indices: idx,
                labels: &labels,
                classes: data.num_classes,
                shape,
                latent: data.latent.as_ref(),
            };
            let t = reg.treat(&info, &mut mix)?;
            let targets = Tensor::from_slice(&t.targets, (idx.len(), data.num_classes), &dev)?;
            let x = match &t.raw_images {
                Some(raw) => {
                    let all: Vec<usize> = (0..idx.len()).collect();
                    fill_batch(raw, shape, &all, pre, Some(&mut aug), out);
                    Tensor::from_slice(out, (idx.len(), shape.c, shape.h, shape.w), &dev)?
                }
                None => x,
            };
            let logits = match &t.transform {
                Some(f) => model.forward_with(&x, true, Some((t.point, f.as_ref())))?,
                None => model.forward(&x, true)?,
            };
            let l = loss(cfg.loss, &logits, &targets)?;
            let l = match &t.loss_term {
                Some(term) => (l + term(&logits, &targets)?)?,
                None => l,
            };
            let lv = l.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            if !lv.is_finite() {
                // The model is unusable from here on: stop this cell, keep the log.
                return Ok(diverged(
                    records,
                    resumed_from,
                    notes,
                    Divergence {
                        epoch,
                        step: Some(step),
                        reason: format!("training loss is {lv}"),
                    },
                ));
            }
            let grads = l.backward()?;
            opt.step(&params, &grads, lr)?;
            loss_sum += lv * idx.len() as f64;
            seen += idx.len();
            observer.on_step(epoch, step, batches.len(), lv);
        }
        let last = epoch + 1 == cfg.epochs;
        let test = if last || (epoch + 1) % cfg.eval_every.max(1) == 0 {
            Some(evaluate(
                model,
                &data.test,
                shape,
                pre,
                cfg.eval_batch_size.max(1),
            )?)
        } else {
            None
        };
        let val = match (validation, test.is_some()) {
            (Some(v), true) => Some(evaluate(model, v, shape, pre, cfg.eval_batch_size.max(1))?),
            _ => None,
        };
        let rec = EpochRecord {
            epoch,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            test,
            validation: val,
            seconds: t0.elapsed().as_secs_f64(),
        };
        observer.on_epoch(&rec);
        records.push(rec);
        if let Some(m) = test
            && !m.is_finite()
        {
            return Ok(diverged(
                records,
                resumed_from,
                notes,
                Divergence {
                    epoch,
                    step: None,
                    reason: format!(
                        "{} of {} test outputs are NaN or infinite",
                        m.non_finite, m.n
                    ),
                },
            ));
        }
        let by_epoch =
            cfg.checkpoint_every > 0 && ((epoch + 1) % cfg.checkpoint_every == 0 || last);
        // Wall time decides only *whether* an epoch-end checkpoint is written, never what is
        // computed, so results stay bit-identical.
        let by_time = cfg.checkpoint_minutes > 0.0
            && !last
            && last_checkpoint.elapsed().as_secs_f64() >= cfg.checkpoint_minutes * 60.0;
        if let Some(spec) = ckpt
            && (by_epoch || by_time)
        {
            last_checkpoint = Instant::now();
            checkpoint::save(
                &spec.dir,
                &Checkpoint {
                    epoch,
                    seed,
                    training_hash: spec.training_hash.clone(),
                    records: records.clone(),
                },
                model,
                &opt,
            )?;
        }
    }
    summarise(records, resumed_from, notes)
}

fn apply_checkpoint(model: &Model, opt: &mut Optimizer, state: &checkpoint::Loaded) -> Result<()> {
    model.store.load(&state.model)?;
    opt.set_state(&state.optimizer)?;
    Ok(())
}

fn diverged(
    records: Vec<EpochRecord>,
    resumed_from: Option<usize>,
    notes: Vec<String>,
    d: Divergence,
) -> TrainOutcome {
    TrainOutcome {
        epochs: records,
        final_metrics: None,
        best_metrics: None,
        best_epoch: None,
        resumed_from,
        divergence: Some(d),
        notes,
    }
}

fn summarise(
    records: Vec<EpochRecord>,
    resumed_from: Option<usize>,
    notes: Vec<String>,
) -> Result<TrainOutcome> {
    // (epoch, test metrics, the error that ranks epochs: validation's when held out).
    let evaluated: Vec<(usize, EvalMetrics, f64)> = records
        .iter()
        .filter_map(|r| {
            r.test.map(|m| {
                let rank = r.validation.map_or(m.error_pct, |v| v.error_pct);
                (r.epoch, m, rank)
            })
        })
        .collect();
    let (_, final_metrics, _) = *evaluated
        .last()
        .ok_or_else(|| Error::Other("no epoch was evaluated".into()))?;
    // The first epoch with the lowest ranking error.
    let (best_epoch, best_metrics, _) = evaluated
        .iter()
        .copied()
        .fold(None::<(usize, EvalMetrics, f64)>, |acc, x| match acc {
            Some(b) if b.2 <= x.2 => acc,
            _ => Some(x),
        })
        .expect("non-empty");
    Ok(TrainOutcome {
        epochs: records,
        final_metrics: Some(final_metrics),
        best_metrics: Some(best_metrics),
        best_epoch: Some(best_epoch),
        resumed_from,
        divergence: None,
        notes,
    })
}
