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
        // A block with its parameters: `preactresnet18 {width: 0.125, bn_init: torch1.0}`.
        let block = |b: &serde_json::Map<String, serde_json::Value>, k: &str| {
            let params: Vec<String> = b
                .iter()
                .filter(|(key, _)| key.as_str() != k)
                .map(|(key, v)| format!("{key}: {v}"))
                .collect();
            if params.is_empty() {
                name(b, k)
            } else {
                format!("{} {{{}}}", name(b, k), params.join(", "))
            }
        };
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
            "",
            block(&c.config.dataset, "name"),
            block(&c.config.model, "arch"),
            block(&c.config.regularizer, "name"),
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
