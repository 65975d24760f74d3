//! `estimate`: what a profile will cost, measured at its real shapes on this device.
//!
//! Cells that train with the same shape (dataset geometry and size, model block, regularizer
//! block, optimizer, batch size) share one measurement: a model built at that shape trains a
//! few steps on generated images of the real size, held in memory at the real count, then
//! scores one evaluation batch and writes a checkpoint. The projection per cell is arithmetic
//! on those measurements and the cell's schedule. Nothing here is a guess: a number is either
//! timed or counted, and each says which.

use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::data::{DataShape, ImageDataset, Split};
use crate::error::{Error, Result};
use crate::experiment::{self, ExperimentConfig, Plan};
use crate::suite::check::{Checker, Facts};
use crate::suite::{Cell, resolve};
use crate::train::epoch_evaluation::TestSplitEvaluation;
use crate::train::trainer::{CheckpointSpec, Checkpointing, EpochRecord, Observer, Trainer};

/// Cells that train with one shape, measured once.
pub(crate) struct ShapeGroup {
    /// What the shape is, for people (see [`label`]).
    pub(crate) label: String,
    /// The config of the group's first cell (the shape's fields are equal across the group).
    config: ExperimentConfig,
    /// Its resolved components.
    plan: Plan,
    /// The dataset as its cells load it.
    data: DataShape,
    /// The group's cells: (suite, profile, cell).
    cells: Vec<(String, String, Cell)>,
    /// The cell whose config, plan and data the group measures: (suite file, profile,
    /// experiment), so that a child process can rebuild just that one (see [`experiment_group`]).
    pub(crate) measured: (String, String, String),
}

/// How cells are grouped into shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grouping {
    /// Everything that changes a step's cost: one measurement per group, for projections.
    Timing,
    /// What decides whether a step fits and runs at all: the input's geometry (channels and
    /// size) and the model's layers (not their initialisation or dropout rate; the class count
    /// sizes only the last layer, so the group runs its largest). The
    /// real-shape check runs each once, with the group's most demanding cell (see [`demand`]):
    /// a regularizer changes no tensor's size, and every mixing layer is checked against the
    /// model when the suite is validated.
    Check,
}

/// What one shape measured on this device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Measurement {
    /// Mean seconds of a training step (the first step excluded).
    pub(crate) step_seconds: f64,
    /// Timed steps (after the excluded first one).
    pub(crate) steps_timed: usize,
    /// Seconds to score one evaluation batch (eval mode, `eval_batch_size` images).
    pub(crate) eval_batch_seconds: f64,
    /// Peak resident memory of the measuring process (bytes; Linux `VmHWM`), None elsewhere.
    pub(crate) peak_rss_bytes: Option<u64>,
    /// Peak GPU memory of the measuring process (bytes; see `experiment::device_memory`), None
    /// on the CPU.
    #[serde(default)]
    pub(crate) peak_device_bytes: Option<u64>,
    /// Peak bytes of live tensors on the GPU (the memory pool's used high-water mark).
    #[serde(default)]
    pub(crate) device_tensors_peak_bytes: Option<u64>,
    /// Size of the model file (parameters and buffers as safetensors).
    pub(crate) model_bytes: u64,
    /// Size of one checkpoint (model, optimizer state and the epoch log).
    pub(crate) checkpoint_bytes: u64,
    /// The device, as provenance names it.
    pub(crate) device: String,
}

/// One cell's projection.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CellEstimate {
    /// Suite id.
    pub(crate) suite: String,
    /// Profile.
    pub(crate) profile: String,
    /// Experiment id.
    pub(crate) experiment: String,
    /// Seeds of this experiment in the profile (models trained once per training hash).
    pub(crate) seeds: usize,
    /// The training shape (index into the estimate's shapes).
    pub(crate) shape: usize,
    /// Epochs.
    pub(crate) epochs: usize,
    /// Optimisation steps per epoch (a final batch of one is dropped, as the trainer does).
    pub(crate) steps_per_epoch: usize,
    /// Epochs at which the test split (and validation split) is scored.
    pub(crate) evaluated_epochs: usize,
    /// Evaluation batches per scoring (test plus validation split).
    pub(crate) eval_batches: usize,
    /// Images held in memory by the dataset (training, validation and test), in bytes: counted.
    pub(crate) data_bytes: u64,
    /// Projected hours to train one seed on this device (steps and per-epoch scoring only).
    pub(crate) hours_per_seed: f64,
    /// Projected hours for every seed of this experiment not already trained by another row.
    pub(crate) hours: f64,
}

/// A profile's estimate: the shapes measured and every cell projected.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Estimate {
    /// Each shape's label and measurement (or why it failed).
    pub(crate) shapes: Vec<(String, std::result::Result<Measurement, String>)>,
    /// One row per experiment whose shape was measured.
    pub(crate) cells: Vec<CellEstimate>,
    /// Sum of `hours` over the rows.
    pub(crate) total_hours: f64,
}

/// The training shapes of `suite` (an id, a file or `all`) under each of `profiles`, in suite
/// order, grouped as `grouping` says. `all` takes, per profile, the suites that define it.
pub(crate) fn shapes(
    suites_dir: &Path,
    suite: &str,
    profiles: &[String],
    grouping: Grouping,
) -> Result<Vec<ShapeGroup>> {
    let mut groups: Vec<(String, ShapeGroup)> = Vec::new();
    let mut checker = Checker::default();
    for profile in profiles {
        for ls in super::reproduce::select_suites(suites_dir, suite, profile)? {
            for cell in resolve(&ls, profile, None)? {
                let cfg = &cell.config;
                let facts = check(&mut checker, cfg, &cell.plan)?;
                let key = group_key(cfg, &facts.data, grouping)?;
                let label = label(cfg, &facts.data);
                let (config, plan) = (cfg.clone(), cell.plan.clone());
                let measured = (
                    ls.path.display().to_string(),
                    profile.clone(),
                    cell.experiment.clone(),
                );
                let member = (ls.suite.id.clone(), profile.clone(), cell);
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, g)) => {
                        if demand(&config, &facts.data) > demand(&g.config, &g.data) {
                            (g.label, g.config, g.plan, g.data, g.measured) =
                                (label, config, plan, facts.data, measured);
                        }
                        g.cells.push(member)
                    }
                    None => groups.push((
                        key,
                        ShapeGroup {
                            label,
                            config,
                            plan,
                            data: facts.data,
                            cells: vec![member],
                            measured,
                        },
                    )),
                }
            }
        }
    }
    Ok(groups.into_iter().map(|(_, g)| g).collect())
}

/// What building `cfg` showed (data shape, parameters), a failure as a config error.
fn check(checker: &mut Checker, cfg: &ExperimentConfig, plan: &Plan) -> Result<Facts> {
    checker
        .check(cfg, plan)
        .map_err(|(_, path, msg)| Error::Config(format!("{path}: {msg}")))
}

/// The group of one experiment alone (its first seed), as [`shapes`] builds it for the group's
/// measured cell: what a measuring child process needs, without resolving and building every
/// other cell of every suite again (for `all` three profiles that took 15 s per child).
pub(crate) fn experiment_group(
    suites_dir: &Path,
    suite_file: &str,
    profile: &str,
    experiment: &str,
) -> Result<ShapeGroup> {
    let ls = crate::suite::load(suites_dir, suite_file)?;
    let spec = ls
        .suite
        .experiments
        .iter()
        .find(|e| e.id == experiment && e.quoted.is_none())
        .ok_or_else(|| {
            Error::Config(format!(
                "{}: no experiment `{experiment}` to measure",
                ls.path.display()
            ))
        })?;
    let r = crate::suite::resolve::resolve_experiment(&ls, spec, profile)?;
    let facts = check(&mut Checker::default(), &r.config, &r.plan)?;
    Ok(ShapeGroup {
        label: label(&r.config, &facts.data),
        config: r.config,
        plan: r.plan,
        data: facts.data,
        cells: Vec::new(),
        measured: (suite_file.into(), profile.into(), experiment.into()),
    })
}

/// The fields two cells of one group share.
fn group_key(cfg: &ExperimentConfig, d: &DataShape, grouping: Grouping) -> Result<String> {
    Ok(match grouping {
        Grouping::Timing => serde_json::json!([
            cfg.dataset,
            cfg.model,
            cfg.regularizer,
            cfg.optimizer,
            cfg.loss,
            cfg.batch_size,
            cfg.eval_batch_size,
            cfg.preprocessing,
        ]),
        Grouping::Check => {
            let name = ExperimentConfig::block_name(&cfg.dataset, "name", "dataset")?;
            // Generated sets with latent factors load through their own generator.
            let latent = crate::data::registry::get(name)?
                .has_latent_factors()
                .then_some(name);
            let mut model = cfg.model.clone();
            model.remove("bn_init");
            model.remove("dropout");
            serde_json::json!([[d.channels, d.height, d.width, latent], model])
        }
    }
    .to_string())
}

/// How much a cell asks of a shape, compared lexicographically: batch size, evaluation batch
/// size, classes, training images held, and whether it mixes hidden states (the longest step).
fn demand(cfg: &ExperimentConfig, d: &DataShape) -> (usize, usize, usize, usize, bool) {
    let hidden = cfg
        .regularizer
        .get("layers")
        .and_then(|l| l.as_array())
        .is_some_and(|l| l.iter().any(|k| k.as_u64().is_some_and(|k| k > 0)));
    (
        cfg.batch_size,
        cfg.eval_batch_size,
        d.classes,
        d.train_size,
        hidden,
    )
}

impl ShapeGroup {
    /// How many cells (suite, profile, experiment, seed) train with this shape.
    pub(crate) fn cell_count(&self) -> usize {
        self.cells.len()
    }
}

/// `preactresnet18 {width: 1} · cifar10 3×32×32, 10 classes, 50000 train images · batch 100 ·
/// manifold_mixup {alpha: 2.0}`.
fn label(cfg: &ExperimentConfig, d: &DataShape) -> String {
    use super::show::block;
    format!(
        "{} · {} {}×{}×{}, {} classes, {} train images · batch {} · {}",
        block(&cfg.model, "arch"),
        block(&cfg.dataset, "name"),
        d.channels,
        d.height,
        d.width,
        d.classes,
        d.train_size,
        cfg.batch_size,
        block(&cfg.regularizer, "name"),
    )
}

/// Records when each step and the epoch ended.
struct Clock {
    steps: Vec<Instant>,
    epoch_end: Option<Instant>,
}

impl Observer for Clock {
    fn on_step(&mut self, _epoch: usize, _step: usize, _steps: usize, _loss: f64) {
        self.steps.push(Instant::now());
    }
    fn on_epoch(&mut self, _record: &EpochRecord) {
        self.epoch_end = Some(Instant::now());
    }
}

/// A checkpoint after every epoch (the one epoch of a measurement).
struct Always;

impl crate::train::checkpoint_policy::CheckpointPolicy for Always {
    fn due(&mut self, _epoch: usize, _last: bool) -> bool {
        true
    }
}

/// `count` generated images of `d`'s geometry: bytes from a seeded stream, labels cycling
/// through the classes (the values do not change the cost of a step).
fn generated_split(d: &DataShape, count: usize, stream: &str) -> Split {
    let mut images = vec![0u8; count * d.channels * d.height * d.width];
    crate::rng::stream(0, stream, 0).fill_bytes(&mut images);
    let labels = (0..count).map(|i| (i % d.classes) as u32).collect();
    Split { images, labels }
}

/// The group's dataset at its real shape: the whole training split generated at its real count
/// (`train`), and a dataset for the trainer holding its first `take` images and one evaluation
/// batch as the test split. Sets with latent factors (factor mixup) come from their own
/// generator, which is cheap.
fn real_shape_data(g: &ShapeGroup, take: usize) -> Result<(Split, ImageDataset)> {
    let cfg = &g.config;
    let d = &g.data;
    let name = ExperimentConfig::block_name(&cfg.dataset, "name", "dataset")?;
    let source = crate::data::registry::get(name)?;
    if source.has_latent_factors() {
        // Generated sets read no files: the folder is never looked at.
        let opts = crate::data::source::LoadOptions {
            data_dir: std::env::temp_dir(),
            allow_unverified: false,
            progress: None,
        };
        let (mut ds, _) = experiment::run::load_dataset(cfg, &opts)?;
        let len = ds.image_len();
        let train = ds.train.clone();
        ds.train.labels.truncate(take);
        ds.train.images.truncate(take * len);
        ds.test.labels.truncate(cfg.eval_batch_size);
        ds.test.images.truncate(cfg.eval_batch_size * len);
        return Ok((train, ds));
    }
    let train = generated_split(d, d.train_size.max(take), "estimate/train");
    let len = d.channels * d.height * d.width;
    let ds = ImageDataset {
        channels: d.channels,
        height: d.height,
        width: d.width,
        num_classes: d.classes,
        train: Split {
            images: train.images[..take * len].to_vec(),
            labels: train.labels[..take].to_vec(),
        },
        test: generated_split(d, cfg.eval_batch_size, "estimate/test"),
        provenance: crate::data::DatasetProvenance {
            name: format!("{name} (generated at its real shape)"),
            fingerprint: String::new(),
            files: Vec::new(),
            notes: Vec::new(),
        },
        latent: None,
    };
    Ok((train, ds))
}

/// The preprocessing `cfg` trains with.
fn preprocessing(cfg: &ExperimentConfig) -> Result<crate::data::Preprocessing> {
    match &cfg.preprocessing {
        Some(p) => Ok(p.clone()),
        None => {
            let name = ExperimentConfig::block_name(&cfg.dataset, "name", "dataset")?;
            Ok(crate::data::registry::get(name)?.default_preprocessing())
        }
    }
}

/// Writes the model's parameters and buffers as the artifact's safetensors file; its size.
fn model_file_bytes(model: &crate::model::Model, path: &Path) -> Result<u64> {
    let tensors: std::collections::HashMap<String, candle_core::Tensor> = model
        .store
        .params()
        .into_iter()
        .chain(model.store.buffers())
        .map(|(name, v)| (name, v.as_tensor().clone()))
        .collect();
    candle_core::safetensors::save(&tensors, path)?;
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| Error::io(path, e))
}

fn dir_bytes(dir: &Path) -> u64 {
    walkdir(dir).unwrap_or(0)
}

fn walkdir(dir: &Path) -> std::io::Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        n += if m.is_dir() {
            walkdir(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(n)
}

/// Measures group `g`: `steps` timed training steps after one untimed, one evaluation batch,
/// one checkpoint and the model file, with the whole training split in memory. The checkpoint
/// and model file go under `scratch` (created if missing), which the caller removes.
pub(crate) fn measure(
    g: &ShapeGroup,
    steps: usize,
    device: &Device,
    scratch: &Path,
) -> Result<Measurement> {
    let cfg = &g.config;
    let steps = steps.max(1);
    // The trainer runs whole epochs: it gets the first steps + 1 batches, while the whole
    // training split stays in memory beside it, so the peak memory counts the real dataset.
    let take = ((steps + 1) * cfg.batch_size).min(g.data.train_size.max(cfg.batch_size));
    let (full_train, data) = real_shape_data(g, take)?;
    let model = experiment::run::build_model(cfg, &data, 0, device)?;
    let pre = preprocessing(cfg)?;
    let mut tc = cfg.train_config();
    (
        tc.epochs,
        tc.eval_every,
        tc.checkpoint_every,
        tc.checkpoint_minutes,
    ) = (1, 1, 1, 0.0);
    std::fs::create_dir_all(scratch).map_err(|e| Error::io(scratch, e))?;
    let spec = CheckpointSpec {
        dir: scratch.join("checkpoints"),
        training_hash: "estimate".into(),
    };
    let mut evaluation =
        TestSplitEvaluation::new(&data.test, None, data.shape(), &pre, 1, cfg.eval_batch_size);
    let trainer = Trainer {
        model: &model,
        data: &data,
        preprocessing: &pre,
        regularizer: g.plan.regularizer.as_ref(),
        config: &tc,
        seed: 0,
    };
    let mut clock = Clock {
        steps: Vec::new(),
        epoch_end: None,
    };
    let mut always = Always;
    let checkpoints = Checkpointing {
        spec: &spec,
        policy: &mut always,
    };
    let outcome = trainer.run(&mut evaluation, Some(checkpoints), &mut clock)?;
    if let Some(d) = outcome.divergence {
        return Err(Error::Other(format!(
            "the measurement run diverged ({}): no timing",
            d.reason
        )));
    }
    let (Some(first), Some(last), Some(end)) =
        (clock.steps.first(), clock.steps.last(), clock.epoch_end)
    else {
        return Err(Error::Other("the measurement run made no step".into()));
    };
    let timed = clock.steps.len() - 1;
    if timed == 0 {
        return Err(Error::Other(format!(
            "the training split holds one batch ({} images): nothing to time after the first step",
            data.train.len()
        )));
    }
    let model_bytes = model_file_bytes(&model, &scratch.join("model.safetensors"))?;
    let gpu = experiment::device_memory_peak(device);
    drop(full_train);
    Ok(Measurement {
        step_seconds: last.duration_since(*first).as_secs_f64() / timed as f64,
        steps_timed: timed,
        eval_batch_seconds: end.duration_since(*last).as_secs_f64(),
        peak_rss_bytes: crate::memory::peak_rss_bytes(),
        peak_device_bytes: gpu.map(|g| g.peak_bytes),
        device_tensors_peak_bytes: gpu.map(|g| g.tensors_peak_bytes),
        model_bytes,
        checkpoint_bytes: dir_bytes(&spec.dir),
        device: experiment::device_name(device),
    })
}

/// Optimisation steps in an epoch of `n` images at batch `b` (a last batch of one is dropped).
pub(crate) fn steps_per_epoch(n: usize, b: usize) -> usize {
    let b = b.max(1);
    n / b + usize::from(n % b >= 2)
}

/// Epochs (of `epochs`) after which the test split is scored: every `every`-th and the last.
pub(crate) fn evaluated_epochs(epochs: usize, every: usize) -> usize {
    let every = every.max(1);
    (0..epochs)
        .filter(|e| (e + 1) % every == 0 || e + 1 == epochs)
        .count()
}

/// Projects every cell of `groups` from the measurements (one per group, same order).
pub(crate) fn project(
    groups: &[ShapeGroup],
    measured: Vec<std::result::Result<Measurement, String>>,
) -> Estimate {
    let mut cells: Vec<CellEstimate> = Vec::new();
    let mut trained = std::collections::BTreeSet::new();
    for (i, (g, m)) in groups.iter().zip(&measured).enumerate() {
        let Ok(m) = m else { continue };
        for (suite, profile, c) in &g.cells {
            let new_model = trained.insert((c.training_hash.clone(), c.seed));
            if let Some(row) = cells.iter_mut().find(|r| {
                r.suite == *suite && r.profile == *profile && r.experiment == c.experiment
            }) {
                row.seeds += 1;
                row.hours += if new_model { row.hours_per_seed } else { 0.0 };
                continue;
            }
            let cfg = &c.config;
            let (train, held, test) = split_sizes(cfg, &g.data);
            let steps = steps_per_epoch(train, cfg.batch_size);
            let evaluated = evaluated_epochs(cfg.epochs, cfg.eval_every);
            let eval_batches = test.div_ceil(cfg.eval_batch_size.max(1))
                + held.div_ceil(cfg.eval_batch_size.max(1));
            let seconds = cfg.epochs as f64 * steps as f64 * m.step_seconds
                + evaluated as f64 * eval_batches as f64 * m.eval_batch_seconds;
            let hours_per_seed = seconds / 3600.0;
            let image = (g.data.channels * g.data.height * g.data.width) as u64;
            cells.push(CellEstimate {
                suite: suite.clone(),
                profile: profile.clone(),
                experiment: c.experiment.clone(),
                seeds: 1,
                shape: i,
                epochs: cfg.epochs,
                steps_per_epoch: steps,
                evaluated_epochs: evaluated,
                eval_batches,
                data_bytes: (train + held + test) as u64 * image,
                hours_per_seed,
                hours: if new_model { hours_per_seed } else { 0.0 },
            });
        }
    }
    let total_hours = cells.iter().map(|c| c.hours).sum();
    Estimate {
        shapes: groups
            .iter()
            .map(|g| g.label.clone())
            .zip(measured)
            .collect(),
        cells,
        total_hours,
    }
}

/// Training, held-out validation and test images of a cell (caps and holdout applied).
fn split_sizes(cfg: &ExperimentConfig, d: &DataShape) -> (usize, usize, usize) {
    let held = cfg
        .dataset
        .get("validation_per_class")
        .and_then(|v| v.as_u64())
        .map_or(0, |k| (k as usize * d.classes).min(d.train_size));
    (d.train_size - held, held, d.test_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_rebuilds_exactly_the_cell_its_group_measures() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites");
        let profiles = ["smoke".to_string(), "paper".to_string()];
        for grouping in [Grouping::Check, Grouping::Timing] {
            let groups = shapes(&dir, "table1", &profiles, grouping).unwrap();
            // Check groups pool cells with different regularizers and class counts: the
            // measured cell is the most demanding one, not the first.
            if grouping == Grouping::Check {
                assert!(
                    groups
                        .iter()
                        .any(|g| g.cells[0].2.experiment != g.measured.2)
                );
            }
            for g in &groups {
                let (suite, profile, experiment) = &g.measured;
                let child = experiment_group(&dir, suite, profile, experiment).unwrap();
                assert_eq!(child.config, g.config, "{}", g.label);
                assert_eq!(child.data, g.data, "{}", g.label);
                assert_eq!(child.label, g.label);
            }
        }
        let e = experiment_group(&dir, "table1", "paper", "no-such")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no experiment `no-such`"), "{e}");
    }

    #[test]
    fn an_epoch_drops_a_last_batch_of_one_as_the_trainer_does() {
        assert_eq!(steps_per_epoch(320, 20), 16);
        assert_eq!(steps_per_epoch(321, 20), 16);
        assert_eq!(steps_per_epoch(322, 20), 17);
        assert_eq!(steps_per_epoch(50_000, 100), 500);
        assert_eq!(steps_per_epoch(1, 100), 0);
        assert_eq!(steps_per_epoch(2, 100), 1);
    }

    #[test]
    fn scoring_happens_every_eval_every_epochs_and_after_the_last() {
        assert_eq!(evaluated_epochs(1200, 1), 1200);
        // Epochs 3, 6, 9 (1-based) and the last, 10.
        assert_eq!(evaluated_epochs(10, 3), 4);
        assert_eq!(evaluated_epochs(9, 3), 3);
        assert_eq!(evaluated_epochs(5, 0), 5);
        assert_eq!(evaluated_epochs(0, 1), 0);
    }

    #[test]
    fn generated_splits_have_the_real_size_and_every_class() {
        let d = DataShape::new(3, 4, 5, 7, 30).with_test_size(9);
        let s = generated_split(&d, 30, "t");
        assert_eq!((s.images.len(), s.labels.len()), (30 * 60, 30));
        assert_eq!(s.labels.iter().max(), Some(&6));
        // Seeded: the same bytes twice, and not all equal.
        assert_eq!(s.images, generated_split(&d, 30, "t").images);
        assert!(s.images.iter().any(|&b| b != s.images[0]));
    }
}
