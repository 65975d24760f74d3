//! `mixbench evaluate <suite|all> [--profile P]`: `reproduce --no-train`.

use std::path::PathBuf;

use clap::Args;

use super::Cli;
use super::reproduce::{self, ReproduceArgs};

/// Arguments of `evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Suite id, a suite file, or `all`.
    pub suite: String,
    /// Profile whose stored models to evaluate.
    #[arg(long, default_value = "smoke")]
    pub profile: String,
    /// Seeds instead of the profile's.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Dataset folder (else $MIXBENCH_DATA, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Accept datasets whose checksums do not match (recorded in each result).
    #[arg(long)]
    pub allow_unverified: bool,
}

/// Runs missing evaluations; exit 2 when a cell has no trained model.
pub fn run(cli: &Cli, a: &EvaluateArgs) -> anyhow::Result<i32> {
    reproduce::run(
        cli,
        &ReproduceArgs {
            suite: a.suite.clone(),
            profile: a.profile.clone(),
            seeds: a.seeds.clone(),
            data_dir: a.data_dir.clone(),
            allow_unverified: a.allow_unverified,
            bless: false,
            force: false,
            no_train: true,
        },
    )
}
