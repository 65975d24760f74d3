//! `mixbench evaluate <suite|all> [--profile P]`: `reproduce --no-train`.

use clap::Args;

use super::Cli;
use super::reproduce::{self, ReproduceArgs, Selection};

/// Arguments of `evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Suite, profile, seeds and data.
    #[command(flatten)]
    pub selection: Selection,
}

/// Runs missing evaluations on stored models; exit 2 when a cell has no trained model.
pub fn run(cli: &Cli, a: &EvaluateArgs) -> anyhow::Result<i32> {
    reproduce::run(
        cli,
        &ReproduceArgs {
            selection: a.selection.clone(),
            bless: false,
            force: false,
            no_train: true,
            lock_lease_minutes: 30.0,
            shard: None,
            shard_costs: None,
            history: None,
        },
    )
}
