//! `mixbench show <suite> [--profile P]`.

use clap::Args;

use super::{Cli, EXIT_OK};
use crate::experiment::ExperimentConfig;
use crate::suite::{load, resolve};

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
    let ls = load(&cli.suites_dir, &a.suite)?;
    let cells = resolve(&ls, &a.profile, None)?;
    println!(
        "{} — profile `{}`: {} cells",
        ls.suite.title,
        a.profile,
        cells.len()
    );
    for c in &cells {
        let name = |b: &serde_json::Map<String, serde_json::Value>, k: &str| {
            ExperimentConfig::block_name(b, k, k)
                .unwrap_or("?")
                .to_string()
        };
        println!(
            "{:28} seed {:<3} training {}  {} / {} / {}  epochs {} batch {}",
            c.experiment,
            c.seed,
            &c.training_hash[..16],
            name(&c.config.dataset, "name"),
            name(&c.config.model, "arch"),
            name(&c.config.regularizer, "name"),
            c.config.epochs,
            c.config.batch_size
        );
        let evals: Vec<String> = c
            .evaluations
            .iter()
            .map(|e| format!("{} [{}]", e.id, &c.evaluation_hash(e)[..8]))
            .collect();
        println!("{:28} evaluations: {}", "", evals.join(", "));
        if a.full {
            println!("{}", serde_json::to_string_pretty(&c.config)?);
        }
    }
    Ok(EXIT_OK)
}
