//! `reproduce` (and `evaluate`, `report`): run a suite profile's cells, compare with the
//! baseline and the paper, write the report, and bless on request.

use std::path::PathBuf;

use super::Progress;
use super::measured_cost;
use super::shard::{Shard, assign};
use crate::error::{Error, Result};
use crate::eval::registry::EPOCH_LOGGED;
use crate::harness::{
    CellOutcome, HarnessOptions, Training, collect_records, run_cell, stale_models,
};
use crate::report::{self, Subject};
use crate::results::baseline::{self, Baseline};
use crate::results::history::{self, HistoryEntry};
use crate::results::layout::Layout;
use crate::results::outcome::{Ending, SuiteOutcome};
use crate::results::record::{CodeVersion, ResultRecord};
use crate::suite::load::list_ids;
use crate::suite::{Cell, LoadedSuite, load, resolve};

/// What to run.
pub(crate) struct ReproduceRequest<'a> {
    /// Profile.
    pub(crate) profile: &'a str,
    /// Seeds instead of the profile's.
    pub(crate) seeds: Option<&'a [u64]>,
    /// Store the aggregated results as the new baseline.
    pub(crate) bless: bool,
    /// Run only this shard's cells (no report: merge the shards' results, then `report`).
    pub(crate) shard: Option<Shard>,
    /// Measured hours per experiment that balance the shards (as `plan --costs` wrote them).
    pub(crate) shard_costs: Option<&'a std::collections::BTreeMap<String, f64>>,
    /// Append this run's aggregate to the history in this folder (and chart the trend).
    pub(crate) history: Option<&'a std::path::Path>,
}

/// The result of one suite run.
pub(crate) struct SuiteRun {
    /// Suite id.
    pub(crate) suite: String,
    /// What happened (None for a shard, which sees only part of the cells).
    pub(crate) outcome: Option<SuiteOutcome>,
    /// Report files written.
    pub(crate) files: Vec<PathBuf>,
    /// The baseline file compared with (or blessed).
    pub(crate) baseline: PathBuf,
    /// Whether this run was blessed as the baseline.
    pub(crate) blessed: bool,
    /// How it ended.
    pub(crate) ending: Ending,
}

/// The suites `suite` names: one id or file, or `all` (every suite defining `profile`).
pub(crate) fn select_suites(
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
pub(crate) fn reproduce(
    ls: &LoadedSuite,
    req: &ReproduceRequest,
    opts: &HarnessOptions,
    progress: &mut dyn Progress,
) -> Result<SuiteRun> {
    let cells = select_cells(ls, req)?;
    // Every path is checked before anything trains.
    let bpath = opts.layout.baseline(&ls.suite.id, req.profile)?;
    progress.note(&format!(
        "{} — profile `{}`: {} cells",
        ls.suite.title,
        req.profile,
        cells.len()
    ));
    note_stale_models(&cells, opts.layout, progress)?;
    let tally = run_cells(ls, req.profile, &cells, opts, progress)?;
    progress.note(&tally.summary(&ls.suite.id, req.shard));
    let Tally { missing, busy, .. } = tally;
    if req.shard.is_some() {
        // What the next step is depends on whether the other shards write here too.
        let all_cells = resolve(ls, req.profile, req.seeds)?;
        let have = collect_records(opts.layout, ls, req.profile, &all_cells)?.len();
        return Ok(SuiteRun {
            suite: ls.suite.id.clone(),
            outcome: None,
            files: vec![],
            baseline: bpath,
            blessed: false,
            ending: if missing.is_empty() {
                Ending::ShardDone {
                    have,
                    total: all_cells.len(),
                }
            } else {
                Ending::Missing(missing)
            },
        });
    }
    let records = collect_records(opts.layout, ls, req.profile, &cells)?;
    let base = baseline::read(&bpath)?;
    let mut outcome = SuiteOutcome::build(ls, req.profile, &records, base.as_ref())?;
    if let Some(dir) = req.history
        && records.len() == cells.len()
    {
        let path = append_history(dir, &outcome, &records)?;
        progress.note(&format!("appended {} to the history", path.display()));
        outcome.history = history::read_all(dir, &ls.suite.id, req.profile)?;
    }
    let files = report::write_all(Subject::Suite(&outcome), opts.layout)?;
    let complete = records.len() == cells.len();
    let ending = if req.bless {
        if !complete || outcome.diverged() > 0 {
            return Err(Error::Config(format!(
                "not blessing {}: {} of {} cell(s) have no result and {} experiment(s) diverged; a baseline must hold every cell",
                bpath.display(),
                cells.len() - records.len(),
                cells.len(),
                outcome.diverged()
            )));
        }
        bless(opts.layout, ls, req.profile, &records, &outcome)?;
        Ending::Ok
    } else if !missing.is_empty() {
        Ending::Missing(missing)
    } else if !complete {
        Ending::Incomplete(busy)
    } else {
        outcome.verdict()
    };
    Ok(SuiteRun {
        suite: ls.suite.id.clone(),
        outcome: Some(outcome),
        files,
        baseline: bpath,
        blessed: req.bless,
        ending,
    })
}

/// The cells this run covers: all of the profile's, or one shard's (which cannot bless).
fn select_cells(ls: &LoadedSuite, req: &ReproduceRequest) -> Result<Vec<Cell>> {
    let mut all_cells = resolve(ls, req.profile, req.seeds)?;
    let Some(sh) = req.shard else {
        if req.shard_costs.is_some() {
            return Err(Error::Config(
                "--shard-costs balances shards: it needs --shard".into(),
            ));
        }
        return Ok(all_cells);
    };
    if let Some(hours) = req.shard_costs {
        measured_cost::apply(&mut all_cells, hours)?;
    }
    if req.bless {
        return Err(Error::Config(
            "--bless needs every cell: merge the shards' results (`mixbench merge`), then bless with `mixbench reproduce <suite> --no-train --bless`".into(),
        ));
    }
    let which = assign(&all_cells, sh.count);
    Ok(all_cells
        .into_iter()
        .zip(which)
        .filter(|(_, s)| *s == sh.index)
        .map(|(c, _)| c)
        .collect())
}

/// Names the stored models of cells without a current one that an older numerics version made.
fn note_stale_models(cells: &[Cell], layout: &Layout, progress: &mut dyn Progress) -> Result<()> {
    let mut stale = Vec::new();
    for cell in cells {
        if layout
            .model(&cell.training_hash, cell.seed)?
            .meta()
            .exists()
        {
            continue;
        }
        for (v, dir) in stale_models(layout, cell)? {
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
    Ok(())
}

/// What running the cells did.
struct Tally {
    /// Models trained, models reused, evaluations run, evaluations reused.
    counts: [usize; 4],
    /// Cells without a trained model (training disabled), as `label: why`.
    missing: Vec<String>,
    /// Cells claimed by another process, as `label: who`.
    busy: Vec<String>,
}

impl Tally {
    /// The closing line: what was trained, reused and run.
    fn summary(&self, suite: &str, shard: Option<Shard>) -> String {
        let c = self.counts;
        format!(
            "{suite}{}: trained {} model(s), reused {}, ran {} evaluation(s), reused {}{}",
            shard
                .map(|s| format!(" shard {}/{}", s.index, s.count))
                .unwrap_or_default(),
            c[0],
            c[1],
            c[2],
            c[3],
            if self.missing.is_empty() {
                String::new()
            } else {
                format!(", {} cell(s) without a trained model", self.missing.len())
            }
        )
    }
}

/// Runs each cell in order, noting what happened to it.
fn run_cells(
    ls: &LoadedSuite,
    profile: &str,
    cells: &[Cell],
    opts: &HarnessOptions,
    progress: &mut dyn Progress,
) -> Result<Tally> {
    let mut tally = Tally {
        counts: [0; 4],
        missing: Vec::new(),
        busy: Vec::new(),
    };
    progress.suite(cells.len());
    for (i, cell) in cells.iter().enumerate() {
        let label = format!(
            "[{}/{}] {} s{}",
            i + 1,
            cells.len(),
            cell.experiment,
            cell.seed
        );
        let o = progress.cell(&label, cell.config.epochs, &mut |obs| {
            run_cell(ls, profile, cell, opts, obs)
        })?;
        note_cell(&label, &o, &mut tally, progress);
    }
    Ok(tally)
}

/// Counts one cell's outcome into `tally` and tells the user about it.
fn note_cell(label: &str, o: &CellOutcome, tally: &mut Tally, progress: &mut dyn Progress) {
    for n in &o.notes {
        progress.note(&format!("{label}: {n}"));
    }
    tally.counts[2] += o.evaluated;
    tally.counts[3] += o.reused_evaluations;
    let how = match &o.training {
        Training::Trained => {
            tally.counts[0] += 1;
            "trained"
        }
        Training::Reused => {
            tally.counts[1] += 1;
            "reused the stored model"
        }
        Training::Busy(who) => {
            progress.note(&format!("{label}: claimed by {who}; skipped"));
            tally.busy.push(format!("{label}: {who}"));
            return;
        }
        Training::NotTrained(why) => {
            tally.missing.push(format!("{label}: {why}"));
            progress.note(&format!(
                "{label}: not trained ({why}); run `mixbench reproduce` to train it"
            ));
            return;
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

/// Appends this run's aggregate to the history in `dir`; returns the file written.
fn append_history(
    dir: &std::path::Path,
    outcome: &SuiteOutcome,
    records: &[ResultRecord],
) -> Result<PathBuf> {
    let entry = HistoryEntry::new(
        &outcome.suite,
        &outcome.profile,
        &CodeVersion::current(),
        &records
            .first()
            .map(|r| r.environment.device.clone())
            .unwrap_or_default(),
        &outcome.summaries,
    );
    history::append(dir, &entry)
}

fn cell_result(rec: &ResultRecord) -> String {
    match &rec.diverged {
        Some(d) => format!("DIVERGED in {}: {}", d.stage, d.reason),
        None => format!(
            "test error {:.2}% nll {:.4}",
            rec.metrics
                .get(&format!("{EPOCH_LOGGED}.test_error"))
                .copied()
                .unwrap_or(f64::NAN),
            rec.metrics
                .get(&format!("{EPOCH_LOGGED}.test_nll"))
                .copied()
                .unwrap_or(f64::NAN)
        ),
    }
}

/// Stores the outcome's aggregate (of `records`) as the suite profile's baseline; returns its path.
pub(crate) fn bless(
    layout: &Layout,
    ls: &LoadedSuite,
    profile: &str,
    records: &[ResultRecord],
    outcome: &SuiteOutcome,
) -> Result<PathBuf> {
    let path = layout.baseline(&ls.suite.id, profile)?;
    let b = Baseline {
        suite: ls.suite.id.clone(),
        profile: profile.to_string(),
        blessed_at: chrono::Utc::now().to_rfc3339(),
        code: CodeVersion::current(),
        device: records
            .first()
            .map(|r| r.environment.device.clone())
            .unwrap_or_default(),
        experiments: outcome
            .summaries
            .iter()
            .cloned()
            .map(|s| (s.experiment.clone(), s))
            .collect(),
    };
    baseline::write(&path, &b)?;
    Ok(path)
}

/// Re-renders a suite profile's report from stored records, without running anything.
pub(crate) fn report_stored(ls: &LoadedSuite, profile: &str, layout: &Layout) -> Result<SuiteRun> {
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
    let outcome = SuiteOutcome::build(ls, profile, &records, base.as_ref())?;
    let files = report::write_all(Subject::Suite(&outcome), layout)?;
    let ending = outcome.verdict();
    Ok(SuiteRun {
        suite: ls.suite.id.clone(),
        outcome: Some(outcome),
        files,
        baseline: bpath,
        blessed: false,
        ending,
    })
}
