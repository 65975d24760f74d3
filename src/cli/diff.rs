//! `mixbench diff <results-dir-a> <results-dir-b>`: b compared against a as the baseline.

use std::path::PathBuf;

use clap::Args;

use super::{Cli, EXIT_OK, EXIT_REGRESSION};
use crate::results::record::read_dir;
use crate::results::{Status, aggregate, compare};
use crate::suite::load;
use crate::suite::schema::expand_metrics;

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
    let ra = read_dir(&a.a)?;
    let rb = read_dir(&a.b)?;
    let Some(first) = rb.first().or(ra.first()) else {
        anyhow::bail!(
            "no result records in {} or {}",
            a.a.display(),
            a.b.display()
        );
    };
    let ls = load(&cli.suites_dir, &first.suite)?;
    let keys = crate::results::record::metric_keys(ra.iter().chain(&rb));
    // The profile's tolerances, as `reproduce` and `report` apply them.
    let metrics = &expand_metrics(&ls.suite.metrics_for(&first.profile), &keys);
    let sa = aggregate(&ra, metrics)?;
    let sb = aggregate(&rb, metrics)?;
    let mut regressions = 0;
    println!(
        "{:28} {:24} {:>22} {:>22} {:>9}  status",
        "experiment", "metric", "a", "b", "Δ"
    );
    for cur in &sb {
        let base = sa.iter().find(|x| x.experiment == cur.experiment);
        for d in compare(cur, base, metrics, ls.suite.significance) {
            let f = |s: &Option<crate::results::Stat>| {
                s.as_ref()
                    .map(|s| format!("{:.4} ± {:.4} (n={})", s.mean, s.std, s.n))
                    .unwrap_or_else(|| "–".into())
            };
            println!(
                "{:28} {:24} {:>22} {:>22} {:>9}  {} {}",
                cur.experiment,
                d.metric,
                f(&d.baseline),
                f(&d.current),
                d.delta
                    .map(|x| format!("{x:+.4}"))
                    .unwrap_or_else(|| "–".into()),
                d.status.symbol(),
                d.reason
            );
            if d.status == Status::Regression {
                regressions += 1;
            }
        }
    }
    Ok(if regressions > 0 {
        EXIT_REGRESSION
    } else {
        EXIT_OK
    })
}
