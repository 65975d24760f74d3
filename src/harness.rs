//! Runs a suite profile's cells: skips cells whose record already exists with the same config
//! hash, resumes interrupted ones from their checkpoint, writes one record per cell.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;

use crate::data::LoadOptions;
use crate::error::Result;
use crate::experiment::run;
use crate::results::record::{self, CellMetrics, CodeVersion, ResultRecord, RunEnvironment};
use crate::suite::{Cell, LoadedSuite};
use crate::train::Observer;
use crate::train::trainer::CheckpointSpec;

/// What happened to one cell.
#[derive(Debug, Clone)]
pub enum CellOutcome {
    /// A record with the same config hash existed; nothing ran.
    Skipped(PathBuf),
    /// The cell ran (possibly resuming) and its record was written.
    Ran(PathBuf, Box<ResultRecord>),
}

/// Options of a suite run.
pub struct HarnessOptions<'a> {
    /// Root of the results tree.
    pub results_dir: &'a Path,
    /// Data loading options.
    pub load: LoadOptions,
    /// Rerun cells that already have a record.
    pub force: bool,
    /// Device to train on.
    pub device: Device,
}

fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        other => format!("{:?}", other.location()),
    }
}

/// Runs (or skips) one cell; `observer` receives its progress.
pub fn run_cell(
    ls: &LoadedSuite,
    profile: &str,
    cell: &Cell,
    opts: &HarnessOptions,
    observer: &mut dyn Observer,
) -> Result<CellOutcome> {
    let suite = &ls.suite.id;
    let path = record::record_path(
        opts.results_dir,
        suite,
        profile,
        &cell.experiment,
        cell.seed,
    );
    if !opts.force
        && let Ok(existing) = record::read(&path)
        && existing.config_hash == cell.config_hash
    {
        return Ok(CellOutcome::Skipped(path));
    }
    let ckpt_dir = opts
        .results_dir
        .join(suite)
        .join(profile)
        .join(".checkpoints")
        .join(format!(
            "{}-s{}-{}",
            cell.experiment,
            cell.seed,
            &cell.config_hash[..12]
        ));
    if opts.force && ckpt_dir.exists() {
        std::fs::remove_dir_all(&ckpt_dir).map_err(|e| crate::Error::io(&ckpt_dir, e))?;
    }
    let spec = CheckpointSpec {
        dir: ckpt_dir.clone(),
        config_hash: cell.config_hash.clone(),
    };
    let started = chrono::Utc::now();
    let t0 = Instant::now();
    let out = run(
        &cell.config,
        cell.seed,
        &opts.load,
        Some(&spec),
        &opts.device,
        observer,
    )?;
    let rec = ResultRecord {
        record_version: record::RECORD_VERSION,
        suite: suite.clone(),
        experiment: cell.experiment.clone(),
        profile: profile.to_string(),
        seed: cell.seed,
        config_hash: cell.config_hash.clone(),
        config: cell.config.clone(),
        dataset: out.dataset,
        code: CodeVersion::current(),
        environment: RunEnvironment {
            device: device_name(&opts.device),
            threads: candle_core::utils::get_num_threads(),
            started_at: started.to_rfc3339(),
            finished_at: chrono::Utc::now().to_rfc3339(),
            wall_seconds: t0.elapsed().as_secs_f64(),
        },
        trainable_params: out.trainable_params,
        metrics: CellMetrics {
            final_epoch: out.outcome.final_metrics,
            best_epoch: out.outcome.best_metrics,
            best_epoch_index: out.outcome.best_epoch,
        },
        curves: out.outcome.epochs,
        resumed_from: out.outcome.resumed_from,
    };
    record::write(&path, &rec)?;
    // The record supersedes the checkpoint.
    let _ = std::fs::remove_dir_all(&ckpt_dir);
    Ok(CellOutcome::Ran(path, Box::new(rec)))
}

/// Records of the given cells that exist on disk with matching config hashes.
pub fn collect_records(
    results_dir: &Path,
    ls: &LoadedSuite,
    profile: &str,
    cells: &[Cell],
) -> Result<Vec<ResultRecord>> {
    let mut out = Vec::new();
    for c in cells {
        let p = record::record_path(results_dir, &ls.suite.id, profile, &c.experiment, c.seed);
        if let Ok(r) = record::read(&p)
            && r.config_hash == c.config_hash
        {
            out.push(r);
        }
    }
    Ok(out)
}
