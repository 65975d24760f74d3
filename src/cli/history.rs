//! `mixbench history <suite> [--profile P] [--history-dir DIR]`.

use std::path::PathBuf;

use clap::Args;

use super::{Cli, EXIT_OK, EXIT_REGRESSION};
use crate::ops::history::history;
use crate::suite::load;

/// Arguments of `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Suite id or suite file.
    pub suite: String,
    /// Profile.
    #[arg(long, default_value = "smoke")]
    pub profile: String,
    /// History folder (as given to `reproduce --history`).
    #[arg(long, default_value = "history")]
    pub history_dir: PathBuf,
}

/// Prints each metric over the runs and the steps found; exit 1 when a regression stayed.
pub fn run(cli: &Cli, a: &HistoryArgs) -> anyhow::Result<i32> {
    let ls = load(&cli.suites_dir, &a.suite)?;
    let v = history(&ls, &a.profile, &a.history_dir)?;
    println!(
        "# {} — profile `{}`: {} runs\n",
        ls.suite.id,
        a.profile,
        v.runs.len()
    );
    println!("| run | date | commit | device |\n|---|---|---|---|");
    for (i, r) in v.runs.iter().enumerate() {
        println!(
            "| {i} | {} | {}{} | {} |",
            r.date,
            &r.commit[..r.commit.len().min(12)],
            if r.dirty == "true" { " (dirty)" } else { "" },
            r.device
        );
    }
    let header: Vec<String> = (0..v.runs.len()).map(|i| i.to_string()).collect();
    println!(
        "\n| experiment | metric | {} | steps |\n|---|---|{}---|",
        header.join(" | "),
        "---|".repeat(v.runs.len())
    );
    for r in &v.rows {
        let vals: Vec<String> = r
            .values
            .iter()
            .map(|x| x.map_or("–".into(), |x| format!("{x:.4}")))
            .collect();
        let steps: Vec<String> = r
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{:?} at run {} (first {} / last good {}: {:.4} → {:.4})",
                    s.direction,
                    s.index,
                    &s.first_commit[..s.first_commit.len().min(10)],
                    &s.last_commit[..s.last_commit.len().min(10)],
                    s.before,
                    s.after
                )
                .to_lowercase()
            })
            .collect();
        println!(
            "| {} | {} | {} | {} |",
            r.experiment,
            r.metric,
            vals.join(" | "),
            steps.join("; ")
        );
    }
    let n = v.regressions();
    if n > 0 {
        eprintln!("{n} regression step(s): a metric moved beyond its tolerance and stayed");
        return Ok(EXIT_REGRESSION);
    }
    Ok(EXIT_OK)
}
