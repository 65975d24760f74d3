//! `reproduce` (and `evaluate`, `report`): run a suite profile's cells, compare with the
//! baseline and the paper, write the report, and bless on request.

use std::path::PathBuf;

use super::Progress;
use super::shard::{Shard, assign};
use crate::error::{Error, Result};
use crate::harness::{HarnessOptions, Training, collect_records, run_cell, stale_models};
use crate::report::{self, Report};
use crate::results::aggregate;
use crate::results::baseline::{self, Baseline};
use crate::results::history::{self, HistoryEntry};
use crate::results::layout::Layout;
use crate::results::record::{CodeVersion, ResultRecord};
use crate::suite::load::list_ids;
use crate::suite::{LoadedSuite, load, resolve};

/// What to run.
pub struct ReproduceRequest<'a> {
    /// Profile.
    pub profile: &'a str,
    /// Seeds instead of the profile's.
    pub seeds: Option<&'a [u64]>,
    /// Store the aggregated results as the new baseline.
    pub bless: bool,
    /// Run only this shard's cells (no report: merge the shards' results, then `report`).
    pub shard: Option<Shard>,
    /// Append this run's aggregate to the history in this folder (and chart the trend).
    pub history: Option<&'a std::path::Path>,
}

/// How a suite run ended, worst first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A cell had no trained model and training was disabled.
    Missing(Vec<String>),
    /// Cells were claimed by other processes and skipped (their results may come later).
    Incomplete(Vec<String>),
    /// Cells diverged (NaN/Inf); the others ran.
    Diverged(usize),
    /// Metrics regressed against the baseline.
    Regressed(usize),
    /// Experiments with a baseline could not be compared (≠).
    NotComparable(Vec<String>),
    /// A shard's cells ran; the report waits for every shard.
    ShardDone,
    /// Nothing regressed (or the run was blessed).
    Ok,
}

/// The result of one suite run.
pub struct SuiteRun {
    /// Suite id.
    pub suite: String,
    /// The report (None for a shard, which sees only part of the cells).
    pub report: Option<Report>,
    /// Report files written.
    pub files: Vec<PathBuf>,
    /// Models trained, models reused, evaluations run, evaluations reused.
    pub counts: [usize; 4],
    /// The baseline file compared with (or blessed).
    pub baseline: PathBuf,
    /// Whether this run was blessed as the baseline.
    pub blessed: bool,
    /// How it ended.
    pub ending: Ending,
}

/// The suites `suite` names: one id or file, or `all` (every suite defining `profile`).
pub fn select_suites(
    suites_dir: &std::path::Path,
    suite: &str,
    profile: &str,
) -> Result<Vec<LoadedSuite>> {
    if suite != "all" {
        return Ok(vec![load(suites_dir, suite)?]);
    }
    let mut v = Vec::new();
    for id in list_ids(suites_dir)? {
        let ls = load(suites_dir, &id)?;
        if ls.suite.profiles.contains_key(profile) {
            v.push(ls);
        }
    }
    if v.is_empty() {
        return Err(Error::Config(format!(
            "no suite in {} defines profile `{profile}`",
            suites_dir.display()
        )));
    }
    Ok(v)
}

/// Runs every cell of `ls` under `req.profile` (training as `opts` allows), then compares,
/// reports and, with `req.bless`, blesses.
pub fn reproduce(
    ls: &LoadedSuite,
    req: &ReproduceRequest,
    opts: &HarnessOptions,
    progress: &mut dyn Progress,
) -> Result<SuiteRun> {
    let all_cells = resolve(ls, req.profile, req.seeds)?;
    let cells: Vec<_> = match req.shard {
        None => all_cells,
        Some(sh) => {
            if req.bless {
                return Err(Error::Config(
                    "--bless needs every cell: merge the shards' results (`mixbench merge`), then bless with `mixbench reproduce <suite> --no-train --bless`".into(),
                ));
            }
            let which = assign(&all_cells, sh.count);
            all_cells
                .into_iter()
                .zip(which)
                .filter(|(_, s)| *s == sh.index)
                .map(|(c, _)| c)
                .collect()
        }
    };
    // Every path is checked before anything trains.
    let bpath = opts.layout.baseline(&ls.suite.id, req.profile)?;
    progress.note(&format!(
        "{} — profile `{}`: {} cells",
        ls.suite.title,
        req.profile,
        cells.len()
    ));
    let mut stale = Vec::new();
    for cell in &cells {
        if opts
            .layout
            .model(&cell.training_hash, cell.seed)?
            .meta()
            .exists()
        {
            continue;
        }
        for (v, dir) in stale_models(opts.layout, cell)? {
            stale.push(format!(
                "{} s{} (numerics version {v}: {})",
                cell.experiment,
                cell.seed,
                dir.display()
            ));
        }
    }
    if !stale.is_empty() {
        progress.note(&format!(
            "{} stored model(s) of this profile were made under an older numerics version than {}: stale, so they are retrained, never reused (`mixbench gc --remove` deletes them):\n  {}",
            stale.len(),
            crate::numerics::NUMERICS_VERSION,
            stale.join("\n  ")
        ));
    }
    let mut counts = [0usize; 4];
    let mut missing: Vec<String> = Vec::new();
    let mut busy: Vec<String> = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let label = format!(
            "[{}/{}] {} s{}",
            i + 1,
            cells.len(),
            cell.experiment,
            cell.seed
        );
        let o = progress.cell(&label, cell.config.epochs, &mut |obs| {
            run_cell(ls, req.profile, cell, opts, obs)
        })?;
        for n in &o.notes {
            progress.note(&format!("{label}: {n}"));
        }
        counts[2] += o.evaluated;
        counts[3] += o.reused_evaluations;
        let how = match &o.training {
            Training::Trained => {
                counts[0] += 1;
                "trained"
            }
            Training::Reused => {
                counts[1] += 1;
                "reused the stored model"
            }
            Training::Busy(who) => {
                progress.note(&format!("{label}: claimed by {who}; skipped"));
                busy.push(format!("{label}: {who}"));
                continue;
            }
            Training::NotTrained(why) => {
                missing.push(format!("{label}: {why}"));
                progress.note(&format!(
                    "{label}: not trained ({why}); run `mixbench reproduce` to train it"
                ));
                continue;
            }
        };
        if let Some((_, rec)) = &o.record {
            progress.note(&format!(
                "{label}: {how}, {} evaluation(s) run, {} stored; {}{}",
                o.evaluated,
                o.reused_evaluations,
                cell_result(rec),
                rec.resumed_from
                    .filter(|_| o.training == Training::Trained)
                    .map(|e| format!(" (resumed after epoch {e})"))
                    .unwrap_or_default()
            ));
        }
    }
    progress.note(&format!(
        "{}{}: trained {} model(s), reused {}, ran {} evaluation(s), reused {}{}",
        ls.suite.id,
        req.shard
            .map(|s| format!(" shard {}/{}", s.index, s.count))
            .unwrap_or_default(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        if missing.is_empty() {
            String::new()
        } else {
            format!(", {} cell(s) without a trained model", missing.len())
        }
    ));
    if req.shard.is_some() {
        return Ok(SuiteRun {
            suite: ls.suite.id.clone(),
            report: None,
            files: vec![],
            counts,
            baseline: bpath,
            blessed: false,
            ending: if missing.is_empty() {
                Ending::ShardDone
            } else {
                Ending::Missing(missing)
            },
        });
    }
    let records = collect_records(opts.layout, ls, req.profile, &cells)?;
    let base = baseline::read(&bpath)?;
    let mut rep = report::build(ls, req.profile, &records, base.as_ref())?;
    if let Some(dir) = req.history
        && records.len() == cells.len()
    {
        let summaries = aggregate(&records, &rep.metrics)?;
        let entry = HistoryEntry::new(
            &ls.suite.id,
            req.profile,
            &CodeVersion::current(),
            &records
                .first()
                .map(|r| r.environment.device.clone())
                .unwrap_or_default(),
            &summaries,
        );
        let path = history::append(dir, &entry)?;
        progress.note(&format!("appended {} to the history", path.display()));
        rep.history = history::read_all(dir, &ls.suite.id, req.profile)?;
    }
    let files = report::write_all(&rep, opts.layout)?;
    let mut blessed = false;
    let ending = if req.bless {
        if records.len() < cells.len() || rep.diverged() > 0 {
            return Err(Error::Config(format!(
                "not blessing {}: {} of {} cell(s) have no result and {} experiment(s) diverged; a baseline must hold every cell",
                bpath.display(),
                cells.len() - records.len(),
                cells.len(),
                rep.diverged()
            )));
        }
        bless(opts.layout, ls, req.profile, &records, &rep)?;
        blessed = true;
        Ending::Ok
    } else if !missing.is_empty() {
        Ending::Missing(missing)
    } else if records.len() < cells.len() {
        Ending::Incomplete(busy)
    } else {
        ending_of(&rep)
    };
    Ok(SuiteRun {
        suite: ls.suite.id.clone(),
        report: Some(rep),
        files,
        counts,
        baseline: bpath,
        blessed,
        ending,
    })
}

/// How a report ends: diverged, regressed, not comparable, or fine.
pub fn ending_of(rep: &Report) -> Ending {
    if rep.diverged() > 0 {
        Ending::Diverged(rep.diverged())
    } else if rep.regressions() > 0 {
        Ending::Regressed(rep.regressions())
    } else if !rep.not_comparable().is_empty() {
        Ending::NotComparable(rep.not_comparable())
    } else {
        Ending::Ok
    }
}

fn cell_result(rec: &ResultRecord) -> String {
    match &rec.diverged {
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
    }
}

/// Stores `records`' aggregate as the suite profile's baseline; returns its path.
pub fn bless(
    layout: &Layout,
    ls: &LoadedSuite,
    profile: &str,
    records: &[ResultRecord],
    rep: &Report,
) -> Result<PathBuf> {
    let path = layout.baseline(&ls.suite.id, profile)?;
    let summaries = aggregate(records, &rep.metrics)?;
    let b = Baseline {
        suite: ls.suite.id.clone(),
        profile: profile.to_string(),
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
    baseline::write(&path, &b)?;
    Ok(path)
}

/// Re-renders a suite profile's report from stored records, without running anything.
pub fn report_stored(ls: &LoadedSuite, profile: &str, layout: &Layout) -> Result<SuiteRun> {
    let cells = resolve(ls, profile, None)?;
    let records = collect_records(layout, ls, profile, &cells)?;
    if records.is_empty() {
        return Err(Error::Config(format!(
            "no results for suite `{}` profile `{profile}` in {}; run `mixbench reproduce {} --profile {profile}` first",
            ls.suite.id,
            layout.results.display(),
            ls.suite.id
        )));
    }
    let bpath = layout.baseline(&ls.suite.id, profile)?;
    let base = baseline::read(&bpath)?;
    let rep = report::build(ls, profile, &records, base.as_ref())?;
    let files = report::write_all(&rep, layout)?;
    let ending = ending_of(&rep);
    Ok(SuiteRun {
        suite: ls.suite.id.clone(),
        report: Some(rep),
        files,
        counts: [0; 4],
        baseline: bpath,
        blessed: false,
        ending,
    })
}
