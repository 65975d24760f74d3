//! `mixbench reproduce <suite|all> [--profile P] [--seeds 0,1,2] [--bless] [--force] [--no-train]`.

use std::path::PathBuf;

use clap::Args;

use super::progress::BarObserver;
use super::{Cli, EXIT_DIVERGED, EXIT_ERROR, EXIT_NOT_COMPARABLE, EXIT_OK, EXIT_REGRESSION};
use crate::data::LoadOptions;
use crate::experiment::default_device;
use crate::harness::{HarnessOptions, Training, collect_records, run_cell};
use crate::report;
use crate::results::aggregate;
use crate::results::baseline::{self, Baseline};
use crate::results::record::CodeVersion;
use crate::suite::load::list_ids;
use crate::suite::{LoadedSuite, load, resolve};

/// Which cells to run, and with which data: shared by `reproduce` and `evaluate`.
#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// Suite id, a suite file, or `all` (every suite that defines the profile).
    pub suite: String,
    /// Profile: `smoke` (tiny, synthetic data), `paper` (the paper's settings), `paper-code`
    /// (the reference code's settings), or any other the suite defines.
    #[arg(long, default_value = "smoke")]
    pub profile: String,
    /// Seeds to run instead of the profile's, e.g. `0,1,2`.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Dataset folder (else $MIXBENCH_DATA, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Accept datasets whose checksums do not match (recorded in each result).
    #[arg(long)]
    pub allow_unverified: bool,
}

/// Arguments of `reproduce`.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// Suite, profile, seeds and data.
    #[command(flatten)]
    pub selection: Selection,
    /// Store this run's aggregated results as the new baseline for the suite and profile.
    #[arg(long)]
    pub bless: bool,
    /// Retrain and re-evaluate cells that already have stored results.
    #[arg(long)]
    pub force: bool,
    /// Never train: evaluate stored models only (cells without one are reported, exit 2).
    #[arg(long)]
    pub no_train: bool,
}

/// Runs the suite(s) and returns 1 if any metric regressed.
pub fn run(cli: &Cli, a: &ReproduceArgs) -> anyhow::Result<i32> {
    let sel = &a.selection;
    let suites: Vec<LoadedSuite> = if sel.suite == "all" {
        let mut v = Vec::new();
        for id in list_ids(&cli.suites_dir)? {
            let ls = load(&cli.suites_dir, &id)?;
            if ls.suite.profiles.contains_key(&sel.profile) {
                v.push(ls);
            }
        }
        if v.is_empty() {
            anyhow::bail!(
                "no suite in {} defines profile `{}`",
                cli.suites_dir.display(),
                sel.profile
            );
        }
        v
    } else {
        vec![load(&cli.suites_dir, &sel.suite)?]
    };
    let mut code = EXIT_OK;
    for ls in &suites {
        code = code.max(run_one(cli, a, ls)?);
    }
    Ok(code)
}

fn run_one(cli: &Cli, a: &ReproduceArgs, ls: &LoadedSuite) -> anyhow::Result<i32> {
    let sel = &a.selection;
    let cells = resolve(ls, &sel.profile, sel.seeds.as_deref())?;
    let opts = HarnessOptions {
        results_dir: &cli.results_dir,
        load: LoadOptions {
            data_dir: super::data_dir(sel.data_dir.as_ref()),
            allow_unverified: sel.allow_unverified,
        },
        force: a.force,
        no_train: a.no_train,
        device: default_device(),
    };
    eprintln!(
        "{} — profile `{}`: {} cells",
        ls.suite.title,
        sel.profile,
        cells.len()
    );
    let (mut trained, mut reused, mut evaluated, mut reused_evals) = (0, 0, 0, 0);
    let mut missing: Vec<String> = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let label = format!(
            "[{}/{}] {} s{}",
            i + 1,
            cells.len(),
            cell.experiment,
            cell.seed
        );
        let mut bar = BarObserver::new(label.clone(), cell.config.epochs);
        let outcome = run_cell(ls, &sel.profile, cell, &opts, &mut bar);
        bar.finish();
        let o = outcome?;
        for n in &o.notes {
            eprintln!("{label}: {n}");
        }
        evaluated += o.evaluated;
        reused_evals += o.reused_evaluations;
        let how = match &o.training {
            Training::Trained => {
                trained += 1;
                "trained"
            }
            Training::Reused => {
                reused += 1;
                "reused the stored model"
            }
            Training::NotTrained(why) => {
                missing.push(format!("{label}: {why}"));
                eprintln!("{label}: not trained ({why}); run `mixbench reproduce` to train it");
                continue;
            }
        };
        if let Some((_, rec)) = &o.record {
            let result = match &rec.diverged {
                Some(d) => format!("DIVERGED in {}: {}", d.stage, d.reason),
                None => format!(
                    "test error {:.2}% nll {:.4}",
                    rec.metrics
                        .get("clean.test_error")
                        .copied()
                        .unwrap_or(f64::NAN),
                    rec.metrics
                        .get("clean.test_nll")
                        .copied()
                        .unwrap_or(f64::NAN)
                ),
            };
            eprintln!(
                "{label}: {how}, {} evaluation(s) run, {} stored; {result}{}",
                o.evaluated,
                o.reused_evaluations,
                rec.resumed_from
                    .filter(|_| o.training == Training::Trained)
                    .map(|e| format!(" (resumed after epoch {e})"))
                    .unwrap_or_default()
            );
        }
    }
    eprintln!(
        "{}: trained {trained} model(s), reused {reused}, ran {evaluated} evaluation(s), reused {reused_evals}{}",
        ls.suite.id,
        if missing.is_empty() {
            String::new()
        } else {
            format!(", {} cell(s) without a trained model", missing.len())
        }
    );
    let records = collect_records(&cli.results_dir, ls, &sel.profile, &cells)?;
    let bpath = baseline::path(&cli.baselines_dir, &ls.suite.id, &sel.profile);
    let base = baseline::read(&bpath)?;
    let rep = report::build(ls, &sel.profile, &records, base.as_ref())?;
    let files = report::write_all(&rep, &cli.reports_dir)?;
    println!("{}", report::markdown::render(&rep));
    for f in &files {
        eprintln!("wrote {}", f.display());
    }
    if a.bless {
        if !missing.is_empty() || rep.diverged() > 0 {
            anyhow::bail!(
                "not blessing {}: {} cell(s) have no trained model and {} experiment(s) diverged",
                bpath.display(),
                missing.len(),
                rep.diverged()
            );
        }
        let summaries = aggregate(&records, &rep.metrics)?;
        let b = Baseline {
            suite: ls.suite.id.clone(),
            profile: sel.profile.clone(),
            blessed_at: chrono::Utc::now().to_rfc3339(),
            code: CodeVersion::current(),
            device: records
                .first()
                .map(|r| r.environment.device.clone())
                .unwrap_or_default(),
            experiments: summaries
                .into_iter()
                .map(|s| (s.experiment.clone(), s))
                .collect(),
        };
        baseline::write(&bpath, &b)?;
        eprintln!("blessed {} as the baseline", bpath.display());
        return Ok(EXIT_OK);
    }
    if !missing.is_empty() {
        eprintln!(
            "{} cell(s) have no trained model (--no-train); nothing was trained",
            missing.len()
        );
        return Ok(EXIT_ERROR);
    }
    let diverged = rep.diverged();
    let n = rep.regressions();
    if n > 0 {
        eprintln!("{n} metric(s) regressed against {}", bpath.display());
    }
    if diverged > 0 {
        eprintln!("{diverged} experiment(s) diverged (NaN/Inf): see the report");
        return Ok(EXIT_DIVERGED);
    }
    if n > 0 {
        return Ok(EXIT_REGRESSION);
    }
    let nc = rep.not_comparable();
    if !nc.is_empty() {
        eprintln!(
            "{} experiment(s) could not be compared with {} (≠: {}); if the change is intended, re-bless with `mixbench reproduce {} --profile {} --bless`",
            nc.len(),
            bpath.display(),
            nc.join(", "),
            ls.suite.id,
            sel.profile
        );
        return Ok(EXIT_NOT_COMPARABLE);
    }
    Ok(EXIT_OK)
}
