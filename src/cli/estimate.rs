//! `mixbench estimate <suite|all> [--profile P[,P...]] [--device D] [--steps N]
//! [--format md|json|csv] [--check]`.
//!
//! Each training shape is measured in its own process (this binary, with `--measure-experiment`: it rebuilds that one cell only), so
//! its peak memory is its own and a shape that runs out of memory fails alone.

use std::process::Command as Process;

use clap::{Args, ValueEnum};

use super::{Cli, EXIT_ERROR, EXIT_OK};
use crate::experiment::DeviceSpec;
use crate::ops::estimate::{
    Estimate, Grouping, Measurement, ShapeGroup, experiment_group, measure, project, shapes,
};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Markdown tables.
    Md,
    /// One JSON document.
    Json,
    /// One CSV row per cell.
    Csv,
}

/// Arguments of `estimate`.
#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// Suite id, suite file, or `all` (every suite defining the profile).
    pub suite: String,
    /// Profiles to estimate, comma-separated (`all` takes, per profile, the suites defining it).
    #[arg(long, default_value = "paper", value_delimiter = ',')]
    pub profile: Vec<String>,
    /// Device to measure on: cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Training steps timed per shape (one more runs first, untimed).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: Format,
    /// Real-shape check: every shape runs once (one step after an untimed first step, one
    /// evaluation batch, a checkpoint), shapes that differ only in a regularizer's alpha, the
    /// optimizer, loss or augmentation counted as one; prints pass or fail per shape, no
    /// projection. Exits 2 when a shape fails.
    #[arg(long)]
    pub check: bool,
    /// Print the shapes (and how many cells each stands for) without measuring anything.
    #[arg(long)]
    pub list: bool,
    /// Measure only this experiment's shape (SUITE is then its suite file and --profile one
    /// profile) and print the measurement as JSON: what each child process runs.
    #[arg(long, hide = true)]
    pub measure_experiment: Option<String>,
    /// Where a measuring child writes its checkpoint and model file: a folder inside the
    /// parent's temporary one, which the parent removes even when the child is killed (out of
    /// memory, the very failure `--check` looks for). A child run by hand without it gets its
    /// own temporary folder.
    #[arg(long, hide = true)]
    pub scratch_dir: Option<std::path::PathBuf>,
}

/// Measures every shape (one child process each), prints the projection (or, with `--check`,
/// the check); exits with `EXIT_ERROR` when a shape could not be measured.
pub fn run(cli: &Cli, a: &EstimateArgs) -> anyhow::Result<i32> {
    if a.steps == 0 {
        anyhow::bail!("--steps must be >= 1 (the first step is never timed), got 0");
    }
    let grouping = if a.check {
        Grouping::Check
    } else {
        Grouping::Timing
    };
    let steps = if a.check { 1 } else { a.steps };
    if let Some(e) = &a.measure_experiment {
        let [profile] = a.profile.as_slice() else {
            anyhow::bail!("--measure-experiment needs exactly one --profile");
        };
        let g = experiment_group(&cli.suites_dir, &a.suite, profile, e)?;
        let device = DeviceSpec::parse(&a.device)?.open()?;
        let own;
        let scratch = match &a.scratch_dir {
            Some(dir) => dir.as_path(),
            None => {
                own = scratch_folder()?;
                own.path()
            }
        };
        let m = measure(&g, steps, &device, scratch)?;
        println!("{}", serde_json::to_string(&m)?);
        return Ok(EXIT_OK);
    }
    let groups = shapes(&cli.suites_dir, &a.suite, &a.profile, grouping)?;
    if a.list {
        for (i, g) in groups.iter().enumerate() {
            println!("{i}\t{} cells\t{}", g.cell_count(), g.label);
        }
        return Ok(EXIT_OK);
    }
    let measured = measure_in_children(cli, a, &groups)?;
    let ok = measured.iter().all(|m| m.is_ok());
    if a.check {
        print_check(a, &groups, &measured, a.format)?;
    } else {
        let est = project(&groups, measured);
        match a.format {
            Format::Md => print_markdown(a, &est),
            Format::Json => println!("{}", serde_json::to_string_pretty(&est)?),
            Format::Csv => print_csv(&est),
        }
    }
    Ok(if ok { EXIT_OK } else { EXIT_ERROR })
}

/// One measurement per group, each by this binary in its own process.
fn measure_in_children(
    cli: &Cli,
    a: &EstimateArgs,
    groups: &[ShapeGroup],
) -> anyhow::Result<Vec<Result<Measurement, String>>> {
    let exe = std::env::current_exe()?;
    let scratch = scratch_folder()?;
    let mut measured = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        eprintln!("measuring shape {}/{}: {}", i + 1, groups.len(), g.label);
        let started = std::time::Instant::now();
        let (suite_file, profile, experiment) = &g.measured;
        let out = Process::new(&exe)
            .arg("--suites-dir")
            .arg(&cli.suites_dir)
            .args([
                "estimate",
                suite_file,
                "--profile",
                profile,
                "--device",
                &a.device,
                "--steps",
                &a.steps.to_string(),
                "--measure-experiment",
                experiment,
            ])
            .arg("--scratch-dir")
            .arg(scratch.path().join(i.to_string()))
            .args(a.check.then_some("--check"))
            .output()?;
        let m = if out.status.success() {
            serde_json::from_slice::<Measurement>(&out.stdout).map_err(|e| e.to_string())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "{} ({})",
                err.lines().last().unwrap_or("no message"),
                out.status
            ))
        };
        eprintln!(
            "  {} in {:.1} s",
            if m.is_ok() { "ran" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        measured.push(m);
    }
    Ok(measured)
}

/// A new temporary folder for measurements' checkpoints, removed when dropped.
fn scratch_folder() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("mixbench-estimate-")
        .tempdir()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot create a temporary folder in {} for the measurements' checkpoints: {e}",
                std::env::temp_dir().display()
            )
        })?;
    Ok(dir)
}

/// The real-shape check's report: one row per shape, pass or fail.
fn print_check(
    a: &EstimateArgs,
    groups: &[ShapeGroup],
    measured: &[Result<Measurement, String>],
    format: Format,
) -> anyhow::Result<()> {
    let passed = measured.iter().filter(|m| m.is_ok()).count();
    let cells: usize = groups.iter().map(ShapeGroup::cell_count).sum();
    if format == Format::Json {
        let rows: Vec<_> = groups
            .iter()
            .zip(measured)
            .map(|(g, m)| serde_json::json!({"shape": g.label, "cells": g.cell_count(), "result": m}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "# Real-shape check: {} — profiles {} on {}\n",
        a.suite,
        a.profile.join(", "),
        a.device
    );
    let gpu = on_gpu(measured.iter());
    println!(
        "| # | training shape | cells | step | eval batch | peak memory (RSS) |{} result |",
        if gpu {
            " peak GPU memory (tensors) |"
        } else {
            ""
        }
    );
    println!(
        "|---|---|---|---|---|---|{}---|",
        if gpu { "---|" } else { "" }
    );
    for (i, (g, m)) in groups.iter().zip(measured).enumerate() {
        match m {
            Ok(m) => println!(
                "| {i} | {} | {} | {:.3} s | {:.3} s | {} |{} ran |",
                g.label,
                g.cell_count(),
                m.step_seconds,
                m.eval_batch_seconds,
                m.peak_rss_bytes.map_or("not measured".into(), bytes),
                gpu_cell(gpu, m),
            ),
            Err(e) => println!(
                "| {i} | {} | {} | | | |{} **failed**: {e} |",
                g.label,
                g.cell_count(),
                if gpu { " |" } else { "" }
            ),
        }
    }
    println!(
        "\n{passed} of {} shapes ran at their real size ({cells} cells: suite × profile × experiment × seed).",
        groups.len()
    );
    Ok(())
}

/// Whether any measurement has a GPU memory figure (then the tables get its column).
fn on_gpu<'a>(mut ms: impl Iterator<Item = &'a Result<Measurement, String>>) -> bool {
    ms.any(|m| m.as_ref().is_ok_and(|m| m.peak_device_bytes.is_some()))
}

/// The GPU memory column's cell (with its leading space), empty when the table has none.
fn gpu_cell(gpu: bool, m: &Measurement) -> String {
    if !gpu {
        return String::new();
    }
    match (m.peak_device_bytes, m.device_tensors_peak_bytes) {
        (Some(p), Some(t)) => format!(" {} ({}) |", bytes(p), bytes(t)),
        _ => " not measured |".into(),
    }
}

/// Bytes in the largest binary unit that keeps the number at or above 1.
fn bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    match u {
        0 => format!("{b} B"),
        _ => format!("{v:.1} {}", units[u]),
    }
}

/// Hours as people read a duration: seconds, minutes, hours or days.
fn duration(hours: f64) -> String {
    let s = hours * 3600.0;
    match s {
        s if s < 60.0 => format!("{s:.1} s"),
        s if s < 3600.0 => format!("{:.1} min", s / 60.0),
        s if s < 48.0 * 3600.0 => format!("{hours:.1} h"),
        _ => format!("{:.1} d", hours / 24.0),
    }
}

fn print_markdown(a: &EstimateArgs, est: &Estimate) {
    let device = est
        .shapes
        .iter()
        .find_map(|(_, m)| m.as_ref().ok().map(|m| m.device.clone()));
    println!(
        "# Estimate: {} — profile `{}` on {} ({} timed steps per shape, the first excluded)\n",
        a.suite,
        a.profile.join("`, `"),
        device.as_deref().unwrap_or(&a.device),
        a.steps
    );
    let gpu = on_gpu(est.shapes.iter().map(|(_, m)| m));
    println!(
        "| # | training shape | step | eval batch | peak memory (RSS) |{} model file | checkpoint |",
        if gpu {
            " peak GPU memory (tensors) |"
        } else {
            ""
        }
    );
    println!(
        "|---|---|---|---|---|---|---|{}",
        if gpu { "---|" } else { "" }
    );
    for (i, (label, m)) in est.shapes.iter().enumerate() {
        match m {
            Ok(m) => println!(
                "| {i} | {label} | {:.3} s | {:.3} s | {} |{} {} | {} |",
                m.step_seconds,
                m.eval_batch_seconds,
                m.peak_rss_bytes.map_or("not measured".into(), bytes),
                gpu_cell(gpu, m),
                bytes(m.model_bytes),
                bytes(m.checkpoint_bytes),
            ),
            Err(e) => println!(
                "| {i} | {label} | **failed**: {e} | | |{} | |",
                if gpu { " |" } else { "" }
            ),
        }
    }
    println!(
        "\n| suite | profile | experiment | seeds | shape | epochs | steps/epoch | data in memory | per seed | all seeds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for c in &est.cells {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.suite,
            c.profile,
            c.experiment,
            c.seeds,
            c.shape,
            c.epochs,
            c.steps_per_epoch,
            bytes(c.data_bytes),
            duration(c.hours_per_seed),
            duration(c.hours)
        );
    }
    println!(
        "\nTotal: {} ({:.2} hours) of training on this device, models shared between rows counted once. \
         Steps and per-epoch test scoring only: the suite's evaluations after training (FGSM, deformations, ...) are not included.",
        duration(est.total_hours),
        est.total_hours
    );
}

fn print_csv(est: &Estimate) {
    println!(
        "suite,profile,experiment,seeds,shape,epochs,steps_per_epoch,step_seconds,eval_batch_seconds,peak_rss_bytes,peak_device_bytes,device_tensors_peak_bytes,model_bytes,checkpoint_bytes,data_bytes,hours_per_seed,hours"
    );
    for c in &est.cells {
        let Ok(m) = &est.shapes[c.shape].1 else {
            continue;
        };
        println!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            c.suite,
            c.profile,
            c.experiment,
            c.seeds,
            c.shape,
            c.epochs,
            c.steps_per_epoch,
            m.step_seconds,
            m.eval_batch_seconds,
            m.peak_rss_bytes.map_or(String::new(), |b| b.to_string()),
            m.peak_device_bytes.map_or(String::new(), |b| b.to_string()),
            m.device_tensors_peak_bytes
                .map_or(String::new(), |b| b.to_string()),
            m.model_bytes,
            m.checkpoint_bytes,
            c.data_bytes,
            c.hours_per_seed,
            c.hours
        );
    }
}
