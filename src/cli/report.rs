//! `mixbench report <suite> [--profile P]`: re-render from stored results.

use clap::Args;

use super::Cli;
use super::reproduce::print_run;
use crate::ops::reproduce::report_stored;
use crate::suite::load;

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Suite id or suite file.
    pub suite: String,
    /// Profile whose results to report.
    #[arg(long, default_value = "smoke")]
    pub profile: String,
}

/// Rebuilds the report files from the result records on disk.
pub fn run(cli: &Cli, a: &ReportArgs) -> anyhow::Result<i32> {
    let ls = load(&cli.suites_dir, &a.suite)?;
    let r = report_stored(&ls, &a.profile, &cli.layout())?;
    Ok(print_run(&r, &a.profile, &cli.results_dir))
}
