//! `mixbench merge <dir>... --into <dir>`.

use std::path::PathBuf;

use clap::Args;

use super::{Cli, EXIT_OK};
use crate::ops::merge::merge;

/// Arguments of `merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Results folders to merge (e.g. one per shard).
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    /// Results folder to merge into (default: the global --results-dir).
    #[arg(long)]
    pub into: Option<PathBuf>,
}

/// Merges; exit 2 (nothing copied) when two folders disagree about a model or a cell.
pub fn run(cli: &Cli, a: &MergeArgs) -> anyhow::Result<i32> {
    let into = a.into.clone().unwrap_or_else(|| cli.results_dir.clone());
    let s = merge(&a.sources, &into)?;
    eprintln!(
        "merged {} folder(s) into {}: {} file(s) copied, {} already identical",
        a.sources.len(),
        into.display(),
        s.copied,
        s.identical
    );
    Ok(EXIT_OK)
}
