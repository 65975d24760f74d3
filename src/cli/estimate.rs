//! `mixbench estimate <suite|all> [--profile P] [--device D] [--steps N] [--format md|json|csv]`.
//!
//! Each training shape is measured in its own process (this binary, with `--measure-shape`), so
//! its peak memory is its own and a shape that runs out of memory fails alone.

use std::process::Command as Process;

use clap::{Args, ValueEnum};

use super::{Cli, EXIT_ERROR, EXIT_OK};
use crate::experiment::DeviceSpec;
use crate::ops::estimate::{Estimate, Measurement, measure, project, shapes};

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
    /// Profile to estimate.
    #[arg(long, default_value = "paper")]
    pub profile: String,
    /// Device to measure on: cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Training steps timed per shape (one more runs first, untimed).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: Format,
    /// Measure only shape N and print its measurement as JSON (what each child process runs).
    #[arg(long, hide = true)]
    pub measure_shape: Option<usize>,
}

/// Measures every shape (one child process each), prints the projection; exits with
/// `EXIT_ERROR` when a shape could not be measured (a real-shape check fails on it).
pub fn run(cli: &Cli, a: &EstimateArgs) -> anyhow::Result<i32> {
    if a.steps == 0 {
        anyhow::bail!("--steps must be >= 1 (the first step is never timed), got 0");
    }
    let groups = shapes(&cli.suites_dir, &a.suite, &a.profile)?;
    if let Some(i) = a.measure_shape {
        let g = groups.get(i).ok_or_else(|| {
            anyhow::anyhow!(
                "--measure-shape {i}: the profile has {} shapes",
                groups.len()
            )
        })?;
        let device = DeviceSpec::parse(&a.device)?.open()?;
        println!("{}", serde_json::to_string(&measure(g, a.steps, &device)?)?);
        return Ok(EXIT_OK);
    }
    let exe = std::env::current_exe()?;
    let mut measured = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        eprintln!("measuring shape {}/{}: {}", i + 1, groups.len(), g.label);
        let out = Process::new(&exe)
            .arg("--suites-dir")
            .arg(&cli.suites_dir)
            .args([
                "estimate",
                &a.suite,
                "--profile",
                &a.profile,
                "--device",
                &a.device,
            ])
            .args([
                "--steps",
                &a.steps.to_string(),
                "--measure-shape",
                &i.to_string(),
            ])
            .output()?;
        measured.push(if out.status.success() {
            serde_json::from_slice::<Measurement>(&out.stdout).map_err(|e| e.to_string())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "{} ({})",
                err.lines().last().unwrap_or("no message"),
                out.status
            ))
        });
    }
    let est = project(&groups, measured);
    match a.format {
        Format::Md => print_markdown(a, &est),
        Format::Json => println!("{}", serde_json::to_string_pretty(&est)?),
        Format::Csv => print_csv(&est),
    }
    Ok(if est.shapes.iter().all(|(_, m)| m.is_ok()) {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
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
        a.profile,
        device.as_deref().unwrap_or(&a.device),
        a.steps
    );
    println!(
        "| # | training shape | step | eval batch | peak memory (RSS) | model file | checkpoint |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, (label, m)) in est.shapes.iter().enumerate() {
        match m {
            Ok(m) => println!(
                "| {i} | {label} | {:.3} s | {:.3} s | {} | {} | {} |",
                m.step_seconds,
                m.eval_batch_seconds,
                m.peak_rss_bytes.map_or("not measured".into(), bytes),
                bytes(m.model_bytes),
                bytes(m.checkpoint_bytes),
            ),
            Err(e) => println!("| {i} | {label} | **failed**: {e} | | | | |"),
        }
    }
    println!(
        "\n| suite | experiment | seeds | shape | epochs | steps/epoch | data in memory | per seed | all seeds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for c in &est.cells {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.suite,
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
        "suite,experiment,seeds,shape,epochs,steps_per_epoch,step_seconds,eval_batch_seconds,peak_rss_bytes,model_bytes,checkpoint_bytes,data_bytes,hours_per_seed,hours"
    );
    for c in &est.cells {
        let Ok(m) = &est.shapes[c.shape].1 else {
            continue;
        };
        println!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            c.suite,
            c.experiment,
            c.seeds,
            c.shape,
            c.epochs,
            c.steps_per_epoch,
            m.step_seconds,
            m.eval_batch_seconds,
            m.peak_rss_bytes.map_or(String::new(), |b| b.to_string()),
            m.model_bytes,
            m.checkpoint_bytes,
            c.data_bytes,
            c.hours_per_seed,
            c.hours
        );
    }
}
