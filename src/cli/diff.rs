//! `mixbench diff <results-dir-a> <results-dir-b>`: b compared against a as the baseline.

use std::path::PathBuf;

use clap::Args;

use super::{Cli, EXIT_OK, EXIT_REGRESSION};
use crate::ops::diff::diff_dirs;
use crate::results::{Stat, Status};

/// Arguments of `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Reference results folder (records of one suite and profile).
    pub a: PathBuf,
    /// Results folder compared against it.
    pub b: PathBuf,
}

/// Prints one line per experiment and metric; exit 1 if any regressed.
pub fn run(cli: &Cli, a: &DiffArgs) -> anyhow::Result<i32> {
    let lines = diff_dirs(&cli.suites_dir, &a.a, &a.b)?;
    println!(
        "{:28} {:24} {:>22} {:>22} {:>9}  status",
        "experiment", "metric", "a", "b", "Δ"
    );
    let f = |s: &Option<Stat>| {
        s.as_ref()
            .map(|s| format!("{:.4} ± {:.4} (n={})", s.mean, s.std, s.n))
            .unwrap_or_else(|| "–".into())
    };
    for l in &lines {
        let d = &l.diff;
        println!(
            "{:28} {:24} {:>22} {:>22} {:>9}  {} {}",
            l.experiment,
            d.metric,
            f(&d.baseline),
            f(&d.current),
            d.delta
                .map(|x| format!("{x:+.4}"))
                .unwrap_or_else(|| "–".into()),
            d.status.symbol(),
            d.reason
        );
    }
    let regressed = lines.iter().any(|l| l.diff.status == Status::Regression);
    Ok(if regressed { EXIT_REGRESSION } else { EXIT_OK })
}
