//! Command-line interface: one file per subcommand. Only this module prints.

pub mod compare;
pub mod data;
pub mod diff;
pub mod estimate;
pub mod evaluate;
pub mod gc;
pub mod history;
pub mod list;
pub mod merge;
pub mod plan;
pub mod progress;
pub mod report;
pub mod reproduce;
pub mod schema;
pub mod show;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

// The exit codes are decided with the verdict, in `results::outcome`.
pub use crate::results::outcome::{
    EXIT_DIVERGED, EXIT_ERROR, EXIT_INCOMPLETE, EXIT_NOT_COMPARABLE, EXIT_OK, EXIT_REGRESSION,
};

/// `--lock-lease-minutes` as a duration (finite, > 0).
pub fn lease(minutes: f64) -> anyhow::Result<std::time::Duration> {
    if !(minutes.is_finite() && minutes > 0.0) {
        anyhow::bail!("--lock-lease-minutes must be a number > 0, got {minutes}");
    }
    Ok(std::time::Duration::from_secs_f64(minutes * 60.0))
}

/// mixbench reruns the tables of "Manifold Mixup" (Verma et al., ICML 2019) from YAML suites,
/// pins every result (data hashes, seed, config hash, code version, device), compares it with
/// stored baselines and the paper's printed numbers, and writes reports.
#[derive(Debug, Parser)]
#[command(name = "mixbench", version, about, long_about = None, after_help = "Start with: mixbench reproduce table1 --profile smoke   (runs on built-in synthetic data, about half a minute on 2 cores)")]
pub struct Cli {
    /// Folder holding the suite files (`<id>.yaml`).
    #[arg(long, global = true, default_value = "suites")]
    pub suites_dir: PathBuf,
    /// Folder where result records are written (`<suite>/<profile>/<experiment>-s<seed>.json`).
    #[arg(long, global = true, default_value = "results")]
    pub results_dir: PathBuf,
    /// Folder holding blessed baselines (`<suite>.<profile>.json`).
    #[arg(long, global = true, default_value = "baselines")]
    pub baselines_dir: PathBuf,
    /// Folder where reports are written.
    #[arg(long, global = true, default_value = "reports")]
    pub reports_dir: PathBuf,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the suites, their profiles and what each reproduces.
    List,
    /// Show a suite's resolved cells (config hashes, seeds, settings) without running anything.
    Show(show::ShowArgs),
    /// Run a suite (or `all`): train missing models, run missing evaluations, compare with the
    /// baseline and the paper, write reports.
    Reproduce(reproduce::ReproduceArgs),
    /// Run missing evaluations on stored trained models, without training; then report.
    Evaluate(evaluate::EvaluateArgs),
    /// Re-render a suite's report from stored results, without training.
    Report(report::ReportArgs),
    /// Train a new regularizer with each row's architecture, dataset and schedule and compare
    /// it with the suite's blessed baselines (Δ, Welch p-value, verdict; exit 0 whatever the
    /// verdict).
    Compare(compare::CompareArgs),
    /// Measure each training shape of a profile at its real size on this device (step time,
    /// peak memory, model and checkpoint size) and project every cell's hours.
    Estimate(estimate::EstimateArgs),
    /// Write a Slurm array script or a Kubernetes Indexed Job that runs a profile as N shards.
    Plan(plan::PlanArgs),
    /// List (or `--remove`) stored models and records made under another numerics version.
    Gc(gc::GcArgs),
    /// Combine results folders (e.g. one per shard); refuses two different results for one cell.
    Merge(merge::MergeArgs),
    /// A suite profile's metrics over the runs kept by `reproduce --history`, with the commits
    /// where a metric moved beyond its tolerance and stayed (exit 1 for a regression).
    History(history::HistoryArgs),
    /// Compare two results folders (e.g. two commits' `results/table1/smoke`).
    Diff(diff::DiffArgs),
    /// Print the JSON Schema of the suite format (for editor completion and validation), or
    /// with `<kind> <name>` the parameters of one component (`schema regularizer cutmix`).
    Schema(schema::SchemaArgs),
    /// Dataset status (present / missing / corrupt) and verification against published hashes.
    Data(data::DataArgs),
}

impl Cli {
    /// Where results, baselines and reports live.
    pub(crate) fn layout(&self) -> crate::results::layout::Layout {
        crate::results::layout::Layout::new(
            &self.results_dir,
            &self.baselines_dir,
            &self.reports_dir,
        )
    }
}

/// Parses arguments, runs the command and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::List => list::run(&cli),
        Command::Show(a) => show::run(&cli, a),
        Command::Reproduce(a) => reproduce::run(&cli, a),
        Command::Evaluate(a) => evaluate::run(&cli, a),
        Command::Report(a) => report::run(&cli, a),
        Command::Compare(a) => compare::run(&cli, a),
        Command::Estimate(a) => estimate::run(&cli, a),
        Command::Plan(a) => plan::run(&cli, a),
        Command::Merge(a) => merge::run(&cli, a),
        Command::Gc(a) => gc::run(&cli, a),
        Command::History(a) => history::run(&cli, a),
        Command::Diff(a) => diff::run(&cli, a),
        Command::Schema(a) => schema::run(a),
        Command::Data(a) => data::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_ERROR
        }
    }
}

/// `--data-dir`, else `MIXBENCH_DATA`, else `./data`.
pub fn data_dir(flag: Option<&PathBuf>) -> PathBuf {
    crate::data::resolve_data_dir(flag.map(PathBuf::as_path))
}
