//! `mixbench show <suite> [--profile P]`.

use clap::Args;

use super::{Cli, EXIT_OK};
use crate::ops::show::show;

/// Arguments of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Suite id (file name in the suites folder without `.yaml`) or a path to a suite file.
    pub suite: String,
    /// Profile to resolve.
    #[arg(long, default_value = "smoke")]
    pub profile: String,
    /// Print each cell's full resolved config as JSON.
    #[arg(long)]
    pub full: bool,
}

/// Prints the resolved cells.
pub fn run(cli: &Cli, a: &ShowArgs) -> anyhow::Result<i32> {
    let shown = show(&cli.suites_dir, &a.suite, &a.profile)?;
    println!(
        "{} — profile `{}`: {} cells",
        shown.title,
        a.profile,
        shown.cells.len()
    );
    for s in &shown.cells {
        let c = &s.cell;
        println!(
            "{:28} seed {:<3} training {}  epochs {} batch {} loss {:?} lr {} milestones {:?}",
            c.experiment,
            c.seed,
            &c.training_hash[..16],
            c.config.epochs,
            c.config.batch_size,
            c.config.loss,
            c.config.optimizer.lr(),
            c.config.schedule.milestones,
        );
        println!(
            "{:28} data {} / model {} / regularizer {}",
            "", s.dataset, s.model, s.regularizer,
        );
        println!("{:28} evaluations: {}", "", s.evaluations.join(", "));
        if a.full {
            println!("{}", serde_json::to_string_pretty(&c.config)?);
        }
    }
    Ok(EXIT_OK)
}
