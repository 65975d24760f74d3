//! `mixbench compare <suite> --with <regularizer> [--profile P] [--seeds ..] [--label ..]`.

use clap::Args;

use super::progress::TerminalProgress;
use super::reproduce::Selection;
use super::{Cli, EXIT_OK};
use crate::harness::HarnessOptions;
use crate::ops::compare::{CompareRequest, compare, parse_with};
use crate::report::comparison;
use crate::suite::load;

/// Arguments of `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Suite, profile, seeds and data.
    #[command(flatten)]
    pub selection: Selection,
    /// The new method: a regularizer block (`'{name: cutmix, alpha: 1.0}'`), a YAML file
    /// holding one, or a registered regularizer's name.
    #[arg(long)]
    pub with: String,
    /// Name shown for the new method (default: its block, e.g. `cutmix (alpha = 1.0)`).
    #[arg(long)]
    pub label: Option<String>,
    /// Never train: use stored models only.
    #[arg(long)]
    pub no_train: bool,
}

/// Trains the new method per row and writes the comparison report; 0 whatever the verdict.
pub fn run(cli: &Cli, a: &CompareArgs) -> anyhow::Result<i32> {
    let sel = &a.selection;
    let ls = load(&cli.suites_dir, &sel.suite)?;
    let req = CompareRequest {
        suite: &ls,
        profile: &sel.profile,
        seeds: sel.seeds.as_deref(),
        with: parse_with(&a.with)?,
        label: a.label.clone(),
    };
    let layout = cli.layout();
    let opts = HarnessOptions {
        layout: &layout,
        load: sel.load_options(),
        force: false,
        no_train: a.no_train,
        device: sel.open_device()?,
        lease: super::lease(30.0)?,
    };
    let run = compare(&req, &opts, &mut TerminalProgress::default())?;
    let c = &run.comparison;
    println!("{}", comparison::markdown(c));
    for f in &run.files {
        eprintln!("wrote {}", f.display());
    }
    eprintln!(
        "{}: trained {} model(s) for {} row(s)",
        c.derived_suite,
        c.trained,
        c.rows.len()
    );
    Ok(EXIT_OK)
}
