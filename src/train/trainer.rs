//! The epoch loop: seeded shuffles, augmentation and mixing plans, optimisation steps and exact
//! resume. What is scored after an epoch ([`EpochEvaluation`]) and when a checkpoint is written
//! ([`CheckpointPolicy`]) are seams the caller fills; the best epoch is chosen by
//! [`super::best_epoch`].

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Tensor;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::best_epoch::last_and_best;
use super::checkpoint::{self, Checkpoint};
use super::checkpoint_policy::{CheckpointPolicy, EveryEpochsOrMinutes};
use super::epoch_evaluation::{EpochEvaluation, EpochScores, TestSplitEvaluation};
use super::{Optimizer, OptimizerConfig, StepSchedule};
use crate::data::batch::fill_batch;
use crate::data::{ImageDataset, Preprocessing};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::regularizer::{BatchInfo, Regularizer};
use crate::rng;
use crate::scoring::EvalMetrics;
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
    /// Where a long dataset load (before the first step) reports how far it has come.
    fn load_progress(&self) -> Option<crate::data::LoadProgress> {
        None
    }
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

/// Trains `model` on `data`, scoring the test split as `cfg.eval_every` says and checkpointing
/// as `cfg.checkpoint_every`/`checkpoint_minutes` say; see the module docs for determinism.
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
    let mut evaluation = TestSplitEvaluation::new(
        &data.test,
        validation,
        data.shape(),
        pre,
        cfg.eval_every,
        cfg.eval_batch_size,
    );
    let mut policy = EveryEpochsOrMinutes::new(cfg.checkpoint_every, cfg.checkpoint_minutes);
    let trainer = Trainer {
        model,
        data,
        preprocessing: pre,
        regularizer: reg,
        config: cfg,
        seed,
    };
    let checkpoints = ckpt.map(|spec| Checkpointing {
        spec,
        policy: &mut policy,
    });
    trainer.run(&mut evaluation, checkpoints, observer)
}

/// Where checkpoints go and when they are written.
pub struct Checkpointing<'a> {
    /// Directory and training identity.
    pub spec: &'a CheckpointSpec,
    /// When to write one.
    pub policy: &'a mut dyn CheckpointPolicy,
}

/// One training run: the model, its data and regularizer, and the optimisation settings.
pub struct Trainer<'a> {
    /// The model to train (its parameters were drawn from `seed`).
    pub model: &'a Model,
    /// Training data (the trainer reads only the training split).
    pub data: &'a ImageDataset,
    /// Normalisation and augmentation of training batches.
    pub preprocessing: &'a Preprocessing,
    /// What each minibatch's treatment is.
    pub regularizer: &'a dyn Regularizer,
    /// Epochs, batch size, loss, optimizer and schedule.
    pub config: &'a TrainConfig,
    /// Seed of every stream the run draws from.
    pub seed: u64,
}

/// The run's state between epochs: what a checkpoint restores.
struct Progress {
    opt: Optimizer,
    records: Vec<EpochRecord>,
    start: usize,
    resumed_from: Option<usize>,
    notes: Vec<String>,
}

/// How an epoch's optimisation ended.
enum EpochEnd {
    /// Mean training loss over the epoch's examples.
    Loss(f64),
    /// A non-finite loss at this step.
    Diverged(usize, f64),
}

impl Trainer<'_> {
    /// Trains every remaining epoch, scoring with `evaluation` and checkpointing as
    /// `checkpoints` says (resuming from the newest valid checkpoint there).
    pub fn run(
        &self,
        evaluation: &mut dyn EpochEvaluation,
        mut checkpoints: Option<Checkpointing<'_>>,
        observer: &mut dyn Observer,
    ) -> Result<TrainOutcome> {
        self.validate()?;
        let cfg = self.config;
        let mut p = self.resume(checkpoints.as_ref().map(|c| c.spec))?;
        let mut buf = vec![0f32; cfg.batch_size * self.data.shape().len()];
        for epoch in p.start..cfg.epochs {
            let t0 = Instant::now();
            let lr = cfg.schedule.lr(cfg.optimizer.lr(), epoch);
            let train_loss = match self.train_epoch(epoch, lr, &mut p.opt, &mut buf, observer)? {
                EpochEnd::Loss(l) => l,
                EpochEnd::Diverged(step, lv) => {
                    // The model is unusable from here on: stop this cell, keep the log.
                    let d = Divergence {
                        epoch,
                        step: Some(step),
                        reason: format!("training loss is {lv}"),
                    };
                    return Ok(diverged(p, d));
                }
            };
            let scores = evaluation.evaluate(self.model, epoch, cfg.epochs)?;
            let rec = EpochRecord {
                epoch,
                lr,
                train_loss,
                test: scores.map(|s: EpochScores| s.test),
                validation: scores.and_then(|s| s.validation),
                seconds: t0.elapsed().as_secs_f64(),
            };
            observer.on_epoch(&rec);
            p.records.push(rec);
            if let Some(s) = scores
                && !s.test.is_finite()
            {
                let reason = format!(
                    "{} of {} test outputs are NaN or infinite",
                    s.test.non_finite, s.test.n
                );
                let d = Divergence {
                    epoch,
                    step: None,
                    reason,
                };
                return Ok(diverged(p, d));
            }
            if let Some(c) = checkpoints.as_mut()
                && c.policy.due(epoch, epoch + 1 == cfg.epochs)
            {
                self.save_checkpoint(c.spec, epoch, &p)?;
            }
        }
        summarise(p)
    }

    /// Refuses settings no epoch could run with, before anything trains.
    fn validate(&self) -> Result<()> {
        let (cfg, data, reg) = (self.config, self.data, self.regularizer);
        if cfg.epochs == 0 || cfg.batch_size < 2 {
            return Err(Error::Config(format!(
                "epochs must be >= 1 and batch_size >= 2 (BatchNorm needs 2 examples), got epochs={} batch_size={}",
                cfg.epochs, cfg.batch_size
            )));
        }
        reg.validate(self.model.num_mix_points())?;
        if reg.needs_factors() && data.latent.is_none() {
            return Err(Error::Config(format!(
                "regularizer `{}` mixes latent factors, but dataset `{}` has none (use a generated set such as `glyphs`)",
                reg.name(),
                data.provenance.name
            )));
        }
        cfg.schedule.validate().map_err(Error::Config)?;
        cfg.optimizer.validate().map_err(Error::Config)?;
        Ok(())
    }

    /// A fresh start, or the state of the newest valid checkpoint under `spec`.
    fn resume(&self, spec: Option<&CheckpointSpec>) -> Result<Progress> {
        let mut p = Progress {
            opt: Optimizer::new(&self.config.optimizer),
            records: Vec::new(),
            start: 0,
            resumed_from: None,
            notes: Vec::new(),
        };
        let Some(spec) = spec else { return Ok(p) };
        let dev = self.model.store.device();
        let r = checkpoint::resume(&spec.dir, &spec.training_hash, self.seed, dev);
        p.notes = r.notes;
        if let Some(state) = r.state {
            self.model.store.load(&state.model)?;
            p.opt.set_state(&state.optimizer)?;
            p.start = state.epoch + 1;
            p.records = state.records;
            p.resumed_from = Some(state.epoch);
        }
        Ok(p)
    }

    /// One epoch of optimisation steps over a seeded shuffle of the training split.
    fn train_epoch(
        &self,
        epoch: usize,
        lr: f64,
        opt: &mut Optimizer,
        buf: &mut [f32],
        observer: &mut dyn Observer,
    ) -> Result<EpochEnd> {
        let (cfg, data, seed) = (self.config, self.data, self.seed);
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        order.shuffle(&mut rng::stream(seed, "shuffle", epoch as u64));
        let mut aug = rng::stream(seed, "augment", epoch as u64);
        let mut mix = rng::stream(seed, "mix", epoch as u64);
        self.model
            .store
            .set_noise(Some(rng::stream(seed, "dropout", epoch as u64)));
        // A final batch of one cannot be batch-normalised (PyTorch raises); it is dropped.
        let batches: Vec<&[usize]> = order
            .chunks(cfg.batch_size)
            .filter(|b| b.len() >= 2)
            .collect();
        let params = self.model.store.params();
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        for (step, idx) in batches.iter().enumerate() {
            let l = self.batch_loss(idx, buf, &mut aug, &mut mix)?;
            let lv = l.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            if !lv.is_finite() {
                return Ok(EpochEnd::Diverged(step, lv));
            }
            let grads = l.backward()?;
            opt.step(&params, &grads, lr)?;
            loss_sum += lv * idx.len() as f64;
            seen += idx.len();
            observer.on_step(epoch, step, batches.len(), lv);
        }
        Ok(EpochEnd::Loss(loss_sum / seen.max(1) as f64))
    }

    /// The loss of one minibatch under the regularizer's treatment (forward pass only).
    fn batch_loss(
        &self,
        idx: &[usize],
        buf: &mut [f32],
        aug: &mut rand_chacha::ChaCha8Rng,
        mix: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<Tensor> {
        let (data, pre) = (self.data, self.preprocessing);
        let shape = data.shape();
        let dev = self.model.store.device();
        let dims = (idx.len(), shape.c, shape.h, shape.w);
        let out = &mut buf[..idx.len() * shape.len()];
        fill_batch(&data.train, shape, idx, pre, Some(&mut *aug), out);
        let x = Tensor::from_slice(out, dims, dev)?;
        let labels: Vec<u32> = idx.iter().map(|&i| data.train.labels[i]).collect();
        let info = BatchInfo {
            indices: idx,
            labels: &labels,
            classes: data.num_classes,
            shape,
            latent: data.latent.as_deref(),
        };
        let t = self.regularizer.treat(&info, mix)?;
        let targets = Tensor::from_slice(&t.targets, (idx.len(), data.num_classes), dev)?;
        let x = match &t.raw_images {
            Some(raw) => {
                let all: Vec<usize> = (0..idx.len()).collect();
                fill_batch(raw, shape, &all, pre, Some(aug), out);
                Tensor::from_slice(out, dims, dev)?
            }
            None => x,
        };
        let logits = match &t.transform {
            Some(f) => self
                .model
                .forward_with(&x, true, Some((t.point, f.as_ref())))?,
            None => self.model.forward(&x, true)?,
        };
        let l = loss(self.config.loss, &logits, &targets)?;
        Ok(match &t.loss_term {
            Some(term) => (l + term(&logits, &targets)?)?,
            None => l,
        })
    }

    fn save_checkpoint(&self, spec: &CheckpointSpec, epoch: usize, p: &Progress) -> Result<()> {
        let meta = Checkpoint {
            epoch,
            seed: self.seed,
            training_hash: spec.training_hash.clone(),
            records: p.records.clone(),
        };
        checkpoint::save(&spec.dir, &meta, self.model, &p.opt)
    }
}

fn diverged(p: Progress, d: Divergence) -> TrainOutcome {
    TrainOutcome {
        epochs: p.records,
        final_metrics: None,
        best_metrics: None,
        best_epoch: None,
        resumed_from: p.resumed_from,
        divergence: Some(d),
        notes: p.notes,
    }
}

fn summarise(p: Progress) -> Result<TrainOutcome> {
    let (last, best) =
        last_and_best(&p.records).ok_or_else(|| Error::Other("no epoch was evaluated".into()))?;
    Ok(TrainOutcome {
        epochs: p.records,
        final_metrics: Some(last.test),
        best_metrics: Some(best.test),
        best_epoch: Some(best.epoch),
        resumed_from: p.resumed_from,
        divergence: None,
        notes: p.notes,
    })
}
