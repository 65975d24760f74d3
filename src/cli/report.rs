//! `mixbench report <suite> [--profile P]`: re-render from stored results.

use clap::Args;

use super::{Cli, EXIT_DIVERGED, EXIT_NOT_COMPARABLE, EXIT_OK, EXIT_REGRESSION};
use crate::harness::collect_records;
use crate::report;
use crate::results::baseline;
use crate::suite::{load, resolve};

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
    let cells = resolve(&ls, &a.profile, None)?;
    let records = collect_records(&cli.results_dir, &ls, &a.profile, &cells)?;
    if records.is_empty() {
        anyhow::bail!(
            "no results for suite `{}` profile `{}` in {}; run `mixbench reproduce {} --profile {}` first",
            ls.suite.id,
            a.profile,
            cli.results_dir.display(),
            ls.suite.id,
            a.profile
        );
    }
    let base = baseline::read(&baseline::path(
        &cli.baselines_dir,
        &ls.suite.id,
        &a.profile,
    ))?;
    let rep = report::build(&ls, &a.profile, &records, base.as_ref())?;
    for f in report::write_all(&rep, &cli.reports_dir)? {
        eprintln!("wrote {}", f.display());
    }
    println!("{}", report::markdown::render(&rep));
    Ok(if rep.diverged() > 0 {
        EXIT_DIVERGED
    } else if rep.regressions() > 0 {
        EXIT_REGRESSION
    } else if !rep.not_comparable().is_empty() {
        EXIT_NOT_COMPARABLE
    } else {
        EXIT_OK
    })
}
