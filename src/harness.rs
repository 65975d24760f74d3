//! Runs a suite profile's cells as train → trained-model artifact → evaluations → record.
//!
//! A cell's model is looked up by (training hash, seed) in `<results>/models/`: a valid artifact
//! is reused (by any suite or row that trains the same model), a missing or corrupt one is
//! trained (resuming from its checkpoints), unless training is disabled. Then each evaluation
//! missing for that model runs and is stored under its own hash, and the cell's record (the
//! join of artifact and evaluations) is written to `<results>/<suite>/<profile>/`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;

use crate::data::LoadOptions;
use crate::error::{Error, Result};
use crate::eval::{EvalContext, EvaluationSpec};
use crate::experiment::{Prepared, device_name, prepare, train_prepared};
use crate::results::artifact::{self, ArtifactPaths, ArtifactState, TrainedModel};
use crate::results::evaluation::{self, EVALUATION_VERSION, EvaluationRecord};
use crate::results::layout::Layout;
use crate::results::lock::{self, CellLock, Claim};
use crate::results::record::{
    self, CellDivergence, CodeVersion, EvaluationRef, RECORD_VERSION, ResultRecord, RunEnvironment,
};
use crate::suite::resolve::training_config;
use crate::suite::{Cell, LoadedSuite};
use crate::train::Observer;
use crate::train::trainer::CheckpointSpec;

/// How a cell got its trained model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Training {
    /// Trained now (possibly resuming from a checkpoint).
    Trained,
    /// A valid artifact existed and was reused.
    Reused,
    /// No valid artifact, and training was disabled: the reason.
    NotTrained(String),
    /// Another process holds the cell's lock (who): skipped.
    Busy(String),
}

/// Passes progress on and keeps the cell's lock fresh while training.
struct Heartbeat<'a> {
    inner: &'a mut dyn Observer,
    lock: &'a mut CellLock,
}

impl Observer for Heartbeat<'_> {
    fn on_step(&mut self, epoch: usize, step: usize, steps: usize, loss: f64) {
        self.lock.heartbeat();
        self.inner.on_step(epoch, step, steps, loss);
    }

    fn on_epoch(&mut self, record: &crate::train::EpochRecord) {
        self.lock.heartbeat();
        self.inner.on_epoch(record);
    }

    fn load_progress(&self) -> Option<crate::data::LoadProgress> {
        self.inner.load_progress()
    }
}

/// What happened to one cell.
#[derive(Debug, Clone)]
pub(crate) struct CellOutcome {
    /// How the model was obtained.
    pub(crate) training: Training,
    /// Evaluations run now.
    pub(crate) evaluated: usize,
    /// Evaluations found stored.
    pub(crate) reused_evaluations: usize,
    /// Things the user should know (a corrupt artifact retrained, a checkpoint skipped).
    pub(crate) notes: Vec<String>,
    /// The record written (None when not trained).
    pub(crate) record: Option<(PathBuf, Box<ResultRecord>)>,
}

/// Options of a suite run.
pub(crate) struct HarnessOptions<'a> {
    /// Where results live.
    pub(crate) layout: &'a Layout,
    /// Data loading options.
    pub(crate) load: LoadOptions,
    /// Retrain and re-evaluate even when stored results exist.
    pub(crate) force: bool,
    /// Never train: evaluate stored models only.
    pub(crate) no_train: bool,
    /// Device to train on.
    pub(crate) device: Device,
    /// A cell lock not refreshed for this long is stale and taken over.
    pub(crate) lease: std::time::Duration,
}

fn environment(
    dev: &Device,
    started: chrono::DateTime<chrono::Utc>,
    t0: Instant,
) -> RunEnvironment {
    RunEnvironment {
        device: device_name(dev),
        threads: candle_core::utils::get_num_threads(),
        started_at: started.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        wall_seconds: t0.elapsed().as_secs_f64(),
    }
}

/// Trains the cell's model and stores the artifact.
fn train_artifact(
    cell: &Cell,
    paths: &ArtifactPaths,
    prepared: &Prepared,
    opts: &HarnessOptions,
    observer: &mut dyn Observer,
    notes: &mut Vec<String>,
) -> Result<TrainedModel> {
    let spec = CheckpointSpec {
        dir: paths.checkpoints(),
        training_hash: cell.training_hash.clone(),
    };
    let started = chrono::Utc::now();
    let t0 = Instant::now();
    let out = train_prepared(
        prepared,
        &cell.config,
        &cell.plan,
        cell.seed,
        Some(&spec),
        observer,
    )?;
    notes.extend(out.notes.iter().cloned());
    let meta = TrainedModel {
        artifact_version: artifact::ARTIFACT_VERSION,
        training_hash: cell.training_hash.clone(),
        seed: cell.seed,
        training_config: training_config(&cell.config),
        dataset: prepared.data.provenance.clone(),
        code: CodeVersion::current(),
        environment: environment(&opts.device, started, t0),
        trainable_params: prepared.model.store.num_trainable(),
        curves: out.epochs,
        final_test: out.final_metrics,
        best_test: out.best_metrics,
        best_epoch: out.best_epoch,
        resumed_from: out.resumed_from,
        divergence: out.divergence.clone(),
        weights: None,
    };
    let model = out.divergence.is_none().then_some(&prepared.model);
    let meta = artifact::save(paths, meta, model)?;
    // The artifact supersedes the checkpoints.
    let _ = std::fs::remove_dir_all(paths.checkpoints());
    Ok(meta)
}

/// Runs (or reuses) one cell's training and evaluations; `observer` sees training progress.
pub(crate) fn run_cell(
    ls: &LoadedSuite,
    profile: &str,
    cell: &Cell,
    opts: &HarnessOptions,
    observer: &mut dyn Observer,
) -> Result<CellOutcome> {
    let paths = opts.layout.model(&cell.training_hash, cell.seed)?;
    // Both paths are made before anything trains, so a bad name fails first.
    let path = opts
        .layout
        .record(&ls.suite.id, profile, &cell.experiment, cell.seed)?;
    let mut notes = Vec::new();
    let lock_path = opts.layout.lock(&cell.training_hash, cell.seed)?;
    let mut lock = match lock::claim(&lock_path, opts.lease)? {
        Claim::Held(l, note) => {
            notes.extend(note);
            l
        }
        Claim::Busy(who) => return Ok(CellOutcome::without_record(Training::Busy(who), notes)),
    };
    if opts.force && !opts.no_train && paths.dir.exists() {
        std::fs::remove_dir_all(&paths.dir).map_err(|e| Error::io(&paths.dir, e))?;
    }
    let mut beat = Heartbeat {
        inner: observer,
        lock: &mut lock,
    };
    let (meta, training, mut prepared) =
        match obtain_model(cell, &paths, opts, &mut beat, &mut notes)? {
            Obtained::Model(meta, training, prepared) => (meta, training, prepared),
            Obtained::NotTrained(why) => {
                return Ok(CellOutcome::without_record(
                    Training::NotTrained(why),
                    notes,
                ));
            }
        };
    let mut rec = record_of(ls, profile, cell, &meta);
    let (mut evaluated, mut reused) = (0, 0);
    if rec.diverged.is_none() {
        for spec in &cell.evaluations {
            let hash = cell.evaluation_hash(spec);
            let stored = if opts.force && !opts.no_train {
                None
            } else {
                evaluation::read(&paths.evaluation(&hash), &hash)
            };
            let er = match stored {
                Some(r) => {
                    reused += 1;
                    r
                }
                None => {
                    evaluated += 1;
                    let p = match prepared.take() {
                        Some(p) => p,
                        None => prepare_trained(cell, &paths, &meta, opts, beat.load_progress())?,
                    };
                    let r = run_evaluation(cell, spec, &hash, &p, opts)?;
                    evaluation::write(&paths.evaluation(&hash), &r)?;
                    prepared = Some(p);
                    r
                }
            };
            join_evaluation(&mut rec, spec, &hash, &er);
        }
    }
    record::write(&path, &rec)?;
    Ok(CellOutcome {
        training,
        evaluated,
        reused_evaluations: reused,
        notes,
        record: Some((path, Box::new(rec))),
    })
}

impl CellOutcome {
    fn without_record(training: Training, notes: Vec<String>) -> Self {
        CellOutcome {
            training,
            evaluated: 0,
            reused_evaluations: 0,
            notes,
            record: None,
        }
    }
}

/// A cell's trained model: its stored metadata, how it was obtained and, when trained now, the
/// prepared data and model still in memory.
// One value per cell, moved once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Obtained {
    Model(TrainedModel, Training, Option<Prepared>),
    NotTrained(String),
}

/// Reuses the cell's valid artifact, or trains one (unless training is disabled).
fn obtain_model(
    cell: &Cell,
    paths: &ArtifactPaths,
    opts: &HarnessOptions,
    observer: &mut dyn Observer,
    notes: &mut Vec<String>,
) -> Result<Obtained> {
    let why = match artifact::inspect(paths, &cell.training_hash, cell.seed) {
        ArtifactState::Valid(m) => return Ok(Obtained::Model(*m, Training::Reused, None)),
        ArtifactState::Corrupt(why) => why,
        _ => "no trained model".to_string(),
    };
    if opts.no_train {
        return Ok(Obtained::NotTrained(why));
    }
    if paths.meta().exists() || paths.weights().exists() {
        notes.push(format!("{why}; retraining"));
        let _ = std::fs::remove_file(paths.meta());
        let _ = std::fs::remove_file(paths.weights());
    }
    let load = opts.load.with_progress(observer.load_progress());
    let p = prepare(&cell.config, cell.seed, &load, &opts.device)?;
    let meta = train_artifact(cell, paths, &p, opts, observer, notes)?;
    Ok(Obtained::Model(meta, Training::Trained, Some(p)))
}

/// The data and the stored weights of a model trained earlier, refusing data that differs
/// from what it was trained on.
fn prepare_trained(
    cell: &Cell,
    paths: &ArtifactPaths,
    meta: &TrainedModel,
    opts: &HarnessOptions,
    progress: Option<crate::data::LoadProgress>,
) -> Result<Prepared> {
    let p = prepare(
        &cell.config,
        cell.seed,
        &opts.load.with_progress(progress),
        &opts.device,
    )?;
    if p.data.provenance.fingerprint != meta.dataset.fingerprint {
        return Err(Error::Data(format!(
            "the data found now (fingerprint {}) is not the data {} was trained on ({}); restore that data or retrain with --force",
            p.data.provenance.fingerprint,
            paths.dir.display(),
            meta.dataset.fingerprint
        )));
    }
    artifact::load_weights(paths, &p.model)?;
    Ok(p)
}

/// Runs one evaluation of the prepared model.
fn run_evaluation(
    cell: &Cell,
    spec: &EvaluationSpec,
    hash: &str,
    p: &Prepared,
    opts: &HarnessOptions,
) -> Result<EvaluationRecord> {
    let t0 = Instant::now();
    let ctx = EvalContext {
        model: &p.model,
        data: &p.data,
        preprocessing: &p.preprocessing,
        seed: cell.seed,
        batch_size: cell.config.eval_batch_size,
    };
    let output = spec.build()?.evaluate(&ctx)?;
    Ok(EvaluationRecord {
        evaluation_version: EVALUATION_VERSION,
        evaluation_hash: hash.to_string(),
        training_hash: cell.training_hash.clone(),
        seed: cell.seed,
        spec: spec.clone(),
        eval_batch_size: cell.config.eval_batch_size,
        output,
        code: CodeVersion::current(),
        device: device_name(&opts.device),
        wall_seconds: t0.elapsed().as_secs_f64(),
        finished_at: chrono::Utc::now().to_rfc3339(),
    })
}

/// The cell's record before any evaluation joins it: provenance, curves, best-epoch metrics
/// and a training divergence from the artifact.
fn record_of(ls: &LoadedSuite, profile: &str, cell: &Cell, meta: &TrainedModel) -> ResultRecord {
    let mut rec = ResultRecord {
        record_version: RECORD_VERSION,
        suite: ls.suite.id.clone(),
        experiment: cell.experiment.clone(),
        profile: profile.to_string(),
        seed: cell.seed,
        training_hash: cell.training_hash.clone(),
        config: cell.config.clone(),
        dataset: meta.dataset.clone(),
        code: meta.code.clone(),
        environment: meta.environment.clone(),
        trainable_params: meta.trainable_params,
        metrics: BTreeMap::new(),
        best_metrics: BTreeMap::new(),
        best_epoch_index: meta.best_epoch,
        metric_sources: BTreeMap::new(),
        arrays: BTreeMap::new(),
        evaluations: Vec::new(),
        diverged: meta.divergence.as_ref().map(|d| CellDivergence {
            stage: "training".into(),
            epoch: Some(d.epoch),
            step: d.step,
            reason: d.reason.clone(),
        }),
        curves: meta.curves.clone(),
        resumed_from: meta.resumed_from,
    };
    if let Some(best) = &meta.best_test {
        rec.best_metrics
            .extend(crate::eval::registry::epoch_logged_metrics(best));
    }
    rec
}

/// Adds an evaluation's metrics and arrays (keyed `<id>.<name>`) to the record; non-finite
/// outputs mark the cell diverged at that evaluation.
fn join_evaluation(
    rec: &mut ResultRecord,
    spec: &EvaluationSpec,
    hash: &str,
    er: &EvaluationRecord,
) {
    for (k, v) in &er.output.metrics {
        let key = format!("{}.{k}", spec.id);
        rec.metrics.insert(key.clone(), *v);
        rec.metric_sources.insert(key, hash.to_string());
    }
    for (k, v) in &er.output.arrays {
        rec.arrays.insert(format!("{}.{k}", spec.id), v.clone());
    }
    rec.evaluations.push(EvaluationRef {
        id: spec.id.clone(),
        hash: hash.to_string(),
        wall_seconds: er.wall_seconds,
    });
    if er.output.non_finite > 0 && rec.diverged.is_none() {
        rec.diverged = Some(CellDivergence {
            stage: spec.id.clone(),
            epoch: None,
            step: None,
            reason: format!(
                "{} of {} outputs are NaN or infinite",
                er.output.non_finite, er.output.n
            ),
        });
    }
}

/// Stored models of `cell` that an older numerics version made, with that version: each older
/// version's training hash names another folder, so they are never reused, only reported.
pub(crate) fn stale_models(layout: &Layout, cell: &Cell) -> Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    for v in 0..crate::numerics::NUMERICS_VERSION {
        let h = crate::suite::resolve::training_hash_under(&cell.config, v);
        let p = layout.model(&h, cell.seed)?;
        if p.meta().exists() || p.weights().exists() {
            out.push((v, p.dir));
        }
    }
    Ok(out)
}

/// Whether a stored record is the current one for `cell` (same model, same evaluations).
pub(crate) fn record_matches(r: &ResultRecord, cell: &Cell) -> bool {
    r.training_hash == cell.training_hash
        && (r.diverged.is_some()
            || (r.evaluations.len() == cell.evaluations.len()
                && r.evaluations
                    .iter()
                    .zip(&cell.evaluations)
                    .all(|(a, b)| a.hash == cell.evaluation_hash(b))))
}

/// Records of the given cells that exist on disk and match them.
pub(crate) fn collect_records(
    layout: &Layout,
    ls: &LoadedSuite,
    profile: &str,
    cells: &[Cell],
) -> Result<Vec<ResultRecord>> {
    let mut out = Vec::new();
    for c in cells {
        let p = layout.record(&ls.suite.id, profile, &c.experiment, c.seed)?;
        if let Ok(r) = record::read(&p)
            && record_matches(&r, c)
        {
            out.push(r);
        }
    }
    Ok(out)
}
