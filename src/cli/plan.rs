//! `mixbench plan <suite> --profile P --shards N --emit slurm|k8s`.

use clap::{Args, ValueEnum};

use super::{Cli, EXIT_OK};
use crate::ops::measured_cost;
use crate::ops::plan::{Emit, PlanRequest, plan};
use crate::suite::load;

/// Scheduler file kinds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EmitArg {
    /// An sbatch array script.
    Slurm,
    /// A Kubernetes Indexed Job manifest.
    K8s,
}

/// Arguments of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Suite id or suite file.
    pub suite: String,
    /// Profile to run.
    #[arg(long, default_value = "paper")]
    pub profile: String,
    /// Number of shards (array tasks or Job completions).
    #[arg(long)]
    pub shards: usize,
    /// What to write.
    #[arg(long, value_enum)]
    pub emit: EmitArg,
    /// Container image (Kubernetes).
    #[arg(long, default_value = "mixbench:latest")]
    pub image: String,
    /// GPUs per task (0: CPU only).
    #[arg(long, default_value_t = 1)]
    pub gpus: usize,
    /// Shared results folder as the tasks see it (absolute).
    #[arg(long, default_value = "/results")]
    pub task_results_dir: String,
    /// Dataset folder as the tasks see it.
    #[arg(long, default_value = "/data")]
    pub task_data_dir: String,
    /// Balance shards by measured hours: the output of `mixbench estimate <suite> --profile P
    /// --format json`, run on the machine type the tasks get (else a relative cost is used).
    #[arg(long)]
    pub costs: Option<std::path::PathBuf>,
}

/// Prints the scheduler file.
pub fn run(cli: &Cli, a: &PlanArgs) -> anyhow::Result<i32> {
    let ls = load(&cli.suites_dir, &a.suite)?;
    for (flag, p) in [
        ("--task-results-dir", &a.task_results_dir),
        ("--task-data-dir", &a.task_data_dir),
    ] {
        if !p.starts_with('/') {
            anyhow::bail!("{flag} must be an absolute path as the tasks see it, got `{p}`");
        }
    }
    let results = a.task_results_dir.clone();
    let costs = match &a.costs {
        Some(path) => Some(measured_cost::from_estimate_file(
            path,
            &ls.suite.id,
            &a.profile,
        )?),
        None => None,
    };
    let out = plan(
        &ls,
        &PlanRequest {
            profile: &a.profile,
            shards: a.shards,
            emit: match a.emit {
                EmitArg::Slurm => Emit::Slurm,
                EmitArg::K8s => Emit::Kubernetes,
            },
            results_dir: &results,
            data_dir: &a.task_data_dir,
            image: &a.image,
            gpus: a.gpus,
            costs: costs.as_ref(),
        },
    )?;
    print!("{out}");
    Ok(EXIT_OK)
}
