//! `mixbench reproduce <suite|all> [--profile P] [--seeds 0,1,2] [--bless] [--force] [--no-train]`.

use std::path::PathBuf;

use clap::Args;

use super::progress::TerminalProgress;
use super::{Cli, EXIT_OK};
use crate::data::LoadOptions;
use crate::experiment::DeviceSpec;
use crate::harness::HarnessOptions;
use crate::ops::reproduce::{ReproduceRequest, SuiteRun, reproduce, select_suites};
use crate::ops::shard::Shard;
use crate::report;
use crate::results::outcome::Ending;

/// Which cells to run, and with which data: shared by `reproduce`, `evaluate` and `compare`.
#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// Suite id, a suite file, or `all` (every suite that defines the profile).
    pub suite: String,
    /// Profile: `smoke` (tiny, synthetic data), `paper` (the paper's settings), `paper-code`
    /// (the reference code's settings), or any other the suite defines.
    #[arg(long, default_value = "smoke")]
    pub profile: String,
    /// Seeds to run instead of the profile's, e.g. `0,1,2`.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Dataset folder (else $MIXBENCH_DATA, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Accept datasets whose checksums do not match (recorded in each result).
    #[arg(long)]
    pub allow_unverified: bool,
    /// Device that trains and evaluates: `cpu` (bit-exact), `cuda`, `cuda:N`, or `auto` (GPU 0
    /// when this build has CUDA and one is present).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl Selection {
    /// The device to run on (a CUDA request that cannot be met is an error here, exit 2).
    pub fn open_device(&self) -> crate::Result<candle_core::Device> {
        DeviceSpec::parse(&self.device)?.open()
    }

    /// Data loading options.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            data_dir: super::data_dir(self.data_dir.as_ref()),
            allow_unverified: self.allow_unverified,
            progress: None,
        }
    }
}

/// Arguments of `reproduce`.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// Suite, profile, seeds and data.
    #[command(flatten)]
    pub selection: Selection,
    /// Store this run's aggregated results as the new baseline for the suite and profile.
    #[arg(long)]
    pub bless: bool,
    /// Retrain and re-evaluate cells that already have stored results.
    #[arg(long)]
    pub force: bool,
    /// Never train: evaluate stored models only (cells without one are reported, exit 2).
    #[arg(long)]
    pub no_train: bool,
    /// Run one shard of the cells: `I/N` (0-based), or `auto` to read a Slurm array task or a
    /// Kubernetes Indexed Job from the environment. Writes no report (merge, then `report`).
    #[arg(long)]
    pub shard: Option<String>,
    /// Measured hours per experiment that balance the shards, as a JSON object (`mixbench plan
    /// --costs` writes it into each task's command, so every task computes the plan's split).
    #[arg(long)]
    pub shard_costs: Option<String>,
    /// Append this run's aggregate to a history folder (one small file per run) and chart the
    /// trend in the HTML report; read it back with `mixbench history`.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Minutes after which another process's cell lock that was not refreshed is stale.
    #[arg(long, default_value_t = 30.0)]
    pub lock_lease_minutes: f64,
}

/// Runs the suite(s); the exit code is the worst suite's.
pub fn run(cli: &Cli, a: &ReproduceArgs) -> anyhow::Result<i32> {
    let sel = &a.selection;
    let suites = select_suites(&cli.suites_dir, &sel.suite, &sel.profile)?;
    let layout = cli.layout();
    let opts = HarnessOptions {
        layout: &layout,
        load: sel.load_options(),
        force: a.force,
        no_train: a.no_train,
        device: sel.open_device()?,
        lease: super::lease(a.lock_lease_minutes)?,
    };
    let shard_costs = match &a.shard_costs {
        Some(arg) => Some(crate::ops::measured_cost::parse_argument(arg)?),
        None => None,
    };
    let req = ReproduceRequest {
        profile: &sel.profile,
        seeds: sel.seeds.as_deref(),
        bless: a.bless,
        history: a.history.as_deref(),
        shard: match &a.shard {
            Some(s) => Some(Shard::parse(s, &|k| std::env::var(k).ok())?),
            None => None,
        },
        shard_costs: shard_costs.as_ref(),
    };
    let mut code = EXIT_OK;
    for ls in &suites {
        let r = reproduce(ls, &req, &opts, &mut TerminalProgress::default())?;
        code = code.max(print_run(&r, &sel.profile, &cli.results_dir));
    }
    Ok(code)
}

/// What to do after a shard: report now when this folder holds every cell's result, else
/// report when the other shards finish (one shared folder) or merge first (a folder each).
pub(crate) fn shard_next_step(
    suite: &str,
    profile: &str,
    results_dir: &std::path::Path,
    have: usize,
    total: usize,
) -> String {
    let report = format!(
        "mixbench --results-dir {} report {suite} --profile {profile}",
        results_dir.display()
    );
    if have == total {
        return format!(
            "{suite}: shard done; all {total} cells have a result in {}: run `{report}`",
            results_dir.display()
        );
    }
    format!(
        "{suite}: shard done; {have} of {total} cells have a result in {} so far. If every shard writes to this folder, run `{report}` once the other shards finish; if each shard has its own folder, run `mixbench merge <their folders> --into <dir>`, then `mixbench --results-dir <dir> report {suite} --profile {profile}`",
        results_dir.display()
    )
}

/// Prints a suite run's report and verdict; returns its exit code (decided with the verdict).
pub(crate) fn print_run(r: &SuiteRun, profile: &str, results_dir: &std::path::Path) -> i32 {
    let Some(outcome) = &r.outcome else {
        match &r.ending {
            Ending::Missing(cells) => {
                eprintln!("{} cell(s) have no trained model (--no-train)", cells.len())
            }
            Ending::ShardDone { have, total } => {
                eprintln!(
                    "{}",
                    shard_next_step(&r.suite, profile, results_dir, *have, *total)
                )
            }
            _ => {}
        }
        return r.ending.exit_code();
    };
    println!("{}", report::markdown::render(outcome));
    for f in &r.files {
        eprintln!("wrote {}", f.display());
    }
    if r.blessed {
        eprintln!("blessed {} as the baseline", r.baseline.display());
    }
    match &r.ending {
        Ending::Ok | Ending::ShardDone { .. } => {}
        Ending::Missing(cells) => eprintln!(
            "{} cell(s) have no trained model (--no-train); nothing was trained",
            cells.len()
        ),
        Ending::Incomplete(busy) => eprintln!(
            "{}: results are incomplete: {} cell(s) were being worked on by another process{}; rerun (or `mixbench report`) when they finish",
            r.suite,
            busy.len().max(1),
            if busy.is_empty() {
                String::new()
            } else {
                format!(" ({})", busy.join("; "))
            }
        ),
        Ending::Diverged(n) => {
            if outcome.regressions() > 0 {
                eprintln!(
                    "{} metric(s) regressed against {}",
                    outcome.regressions(),
                    r.baseline.display()
                );
            }
            eprintln!("{n} experiment(s) diverged (NaN/Inf): see the report");
        }
        Ending::Regressed(n) => {
            eprintln!("{n} metric(s) regressed against {}", r.baseline.display())
        }
        Ending::NotComparable(ids) => eprintln!(
            "{} experiment(s) could not be compared with {} (≠: {}); if the change is intended, re-bless with `mixbench reproduce {} --profile {profile} --bless`",
            ids.len(),
            r.baseline.display(),
            ids.join(", "),
            r.suite,
        ),
    }
    r.ending.exit_code()
}
