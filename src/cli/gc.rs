//! `mixbench gc [--remove]`.

use clap::Args;

use super::{Cli, EXIT_OK};
use crate::numerics::NUMERICS_VERSION;
use crate::ops::gc::{find_stale, remove};

/// Arguments of `gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Delete the stale entries (without it, only list them).
    #[arg(long)]
    pub remove: bool,
}

/// Lists (and with `--remove` deletes) models and records made under another numerics version.
pub fn run(cli: &Cli, a: &GcArgs) -> anyhow::Result<i32> {
    let stale = find_stale(&cli.layout())?;
    for e in &stale {
        println!(
            "{} {} (numerics version {})",
            e.kind,
            e.path.display(),
            e.numerics_version
        );
    }
    let (models, records) = (
        stale.iter().filter(|e| e.kind == "model").count(),
        stale.iter().filter(|e| e.kind == "record").count(),
    );
    if a.remove {
        remove(&stale)?;
        eprintln!(
            "removed {models} model(s) and {records} record(s) made under a numerics version other than {NUMERICS_VERSION}"
        );
    } else {
        eprintln!(
            "{models} model(s) and {records} record(s) in {} were made under a numerics version other than {NUMERICS_VERSION}; they are never reused{}",
            cli.results_dir.display(),
            if stale.is_empty() {
                ""
            } else {
                "; `mixbench gc --remove` deletes them"
            }
        );
    }
    Ok(EXIT_OK)
}
