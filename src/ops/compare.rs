//! `compare`: train a new regularizer with each row's architecture, dataset and schedule, and
//! put it beside the suite's blessed baselines (Δ, Welch p-value, verdict per method).
//!
//! Rows that differ only in their regularizer (and share their evaluations) form one group and
//! get one new row. The new cells are ordinary cells of a derived suite `<suite>-with-<label>`:
//! their models live in the shared `<results>/models/` and their records under
//! `<results>/<suite>-with-<label>/<profile>/`, so a rerun trains nothing.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::Progress;
use crate::error::{Error, Result};
use crate::harness::{HarnessOptions, Training, run_cell};
use crate::regularizer;
use crate::report::{self, Subject};
use crate::results::baseline::{self, Baseline};
use crate::results::comparison::{Comparison, compare_groups};
use crate::results::record::ResultRecord;
use crate::suite::load::is_safe_id;
use crate::suite::resolve::{canonical_json, training_config, training_hash};
use crate::suite::{Cell, LoadedSuite, resolve};

/// What to compare.
pub(crate) struct CompareRequest<'a> {
    /// The suite whose rows and baselines the new method is compared with.
    pub(crate) suite: &'a LoadedSuite,
    /// Profile.
    pub(crate) profile: &'a str,
    /// Seeds instead of the profile's.
    pub(crate) seeds: Option<&'a [u64]>,
    /// The new method's `regularizer` block (`name` plus parameters).
    pub(crate) with: Value,
    /// Name shown for the new method (default: from the block).
    pub(crate) label: Option<String>,
}

/// Reads `--with`: a YAML/JSON file holding a regularizer block, an inline block
/// (`{name: cutmix, alpha: 1.0}`) or a bare registry name.
pub(crate) fn parse_with(arg: &str) -> Result<Value> {
    let (text, origin) = match std::fs::read_to_string(arg) {
        Ok(t) => (t, format!("--with {arg}")),
        Err(_) => (arg.to_string(), "--with".to_string()),
    };
    let v: Value = crate::suite::yaml::from_str(&text).map_err(|e| {
        if let Some(v) = &e.non_finite {
            return Error::Config(format!("{origin}: {}: must be a finite number, got {v}", e.field));
        }
        let at = e.at.map(|(l, c)| format!(" at line {l}, column {c}")).unwrap_or_default();
        Error::Config(format!(
            "{origin}: not YAML ({}{at}); expected a regularizer block such as '{{name: cutmix, alpha: 1.0}}', a file holding one, or a regularizer name",
            e.message
        ))
    })?;
    let block = match v {
        Value::String(name) => {
            Value::Object(Map::from_iter([("name".into(), Value::String(name))]))
        }
        Value::Object(m) => Value::Object(m),
        other => {
            return Err(Error::Config(format!(
                "{origin}: expected a regularizer block such as '{{name: cutmix, alpha: 1.0}}', got {other}"
            )));
        }
    };
    let name = block
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::Config(format!(
                "{origin}: the block needs `name`, one of: {}",
                regularizer::registry::names().join(", ")
            ))
        })?
        .to_string();
    let params: Map<String, Value> = block
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "name")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    regularizer::registry::build(&name, &params)
        .map_err(|e| Error::Config(format!("{origin}: {e}")))?;
    Ok(block)
}

/// A short, safe label for a block: `<name>-<8 hex of its canonical JSON>`.
pub(crate) fn spec_label(spec: &Value) -> String {
    let name = spec.get("name").and_then(Value::as_str).unwrap_or("method");
    let h = crate::data::files::hash::sha256_hex(canonical_json(spec).as_bytes());
    format!("{name}-{}", &h[..8])
}

/// The method as people write it: `cutmix (alpha = 1)`.
fn method_text(spec: &Value) -> String {
    let name = spec.get("name").and_then(Value::as_str).unwrap_or("method");
    let params: Vec<String> = spec
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "name")
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    if params.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({})", params.join(", "))
    }
}

/// Cells of rows that differ only in their regularizer (and share their evaluations), grouped
/// in suite order, one cell per row.
fn groups(cells: &[Cell]) -> Vec<Vec<&Cell>> {
    let mut keys: Vec<String> = Vec::new();
    let mut out: Vec<Vec<&Cell>> = Vec::new();
    let mut seen_exp: Vec<&str> = Vec::new();
    for c in cells {
        if seen_exp.contains(&c.experiment.as_str()) {
            continue;
        }
        seen_exp.push(&c.experiment);
        let mut t = training_config(&c.config);
        if let Some(m) = t.as_object_mut() {
            m.remove("regularizer");
        }
        let key = canonical_json(&serde_json::json!({
            "training": t,
            "evaluations": c.config.evaluations,
        }));
        match keys.iter().position(|k| *k == key) {
            Some(i) => out[i].push(c),
            None => {
                keys.push(key);
                out.push(vec![c]);
            }
        }
    }
    out
}

/// The longest common `-`-separated prefix of the ids, or the first id.
fn group_id(ids: &[&str]) -> String {
    let parts: Vec<Vec<&str>> = ids.iter().map(|i| i.split('-').collect()).collect();
    let mut n = 0;
    while parts.iter().all(|p| p.len() > n && p[n] == parts[0][n]) {
        n += 1;
    }
    if n == 0 || (ids.len() == 1) {
        ids[0].to_string()
    } else {
        parts[0][..n].join("-")
    }
}

/// A finished `compare`: what it found and the report files written.
pub(crate) struct CompareRun {
    /// The comparison.
    pub(crate) comparison: Comparison,
    /// Report files written.
    pub(crate) files: Vec<PathBuf>,
}

/// Runs the comparison and writes its report; `opts` says where results live and whether
/// training is allowed.
pub(crate) fn compare(
    req: &CompareRequest,
    opts: &HarnessOptions,
    progress: &mut dyn Progress,
) -> Result<CompareRun> {
    let ls = req.suite;
    let s = &ls.suite;
    let base_cells = resolve(ls, req.profile, req.seeds)?;
    let bpath = opts.layout.baseline(&s.id, req.profile)?;
    let base = blessed_baseline(&bpath, &s.id, req.profile)?;
    let label = spec_label(&req.with);
    let derived_id = format!("{}-with-{label}", s.id);
    if !is_safe_id(&derived_id) {
        return Err(Error::Config(format!(
            "--with: `{derived_id}` cannot name a results folder; use a shorter regularizer name"
        )));
    }
    let mut derived = ls.clone();
    derived.suite.id = derived_id.clone();
    let seeds: Vec<u64> = match req.seeds {
        Some(s) => s.to_vec(),
        None => s.profiles[req.profile].seeds.clone(),
    };
    let plan = new_cells(&base_cells, &req.with, &seeds)?;
    let (records, trained) = run_new_cells(&derived, req.profile, &plan, opts, progress)?;
    let (metrics, rows) = compare_groups(ls, req.profile, &plan, &records, &base)?;
    let comparison = Comparison {
        suite: s.id.clone(),
        title: s.title.clone(),
        profile: req.profile.to_string(),
        profile_description: s.profiles[req.profile].description.clone(),
        derived_suite: derived_id,
        method: req.label.clone().unwrap_or_else(|| method_text(&req.with)),
        spec: req.with.clone(),
        significance: s.significance,
        metrics,
        baseline: bpath.display().to_string(),
        baseline_blessed_at: base.blessed_at.clone(),
        rows,
        trained,
    };
    let files = report::write_all(Subject::Comparison(&comparison), opts.layout)?;
    Ok(CompareRun { comparison, files })
}

/// The suite profile's blessed baseline; without one there is nothing to compare with.
fn blessed_baseline(path: &std::path::Path, suite: &str, profile: &str) -> Result<Baseline> {
    baseline::read(path)?.ok_or_else(|| {
        Error::Config(format!(
            "no blessed baseline for {suite} / {profile} at {}; bless one first with `mixbench reproduce {suite} --profile {profile} --bless`",
            path.display(),
        ))
    })
}

/// One new cell per group of rows and seed, with `with` as its regularizer; every one is built
/// (and its regularizer checked) before anything trains.
fn new_cells<'a>(
    base_cells: &'a [Cell],
    with: &Value,
    seeds: &[u64],
) -> Result<Vec<(Vec<&'a Cell>, Vec<Cell>)>> {
    let reg_params: Map<String, Value> = with
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut checker = crate::suite::check::Checker::default();
    let mut plan: Vec<(Vec<&Cell>, Vec<Cell>)> = Vec::new();
    let mut used_ids: Vec<String> = Vec::new();
    for g in groups(base_cells) {
        let ids: Vec<&str> = g.iter().map(|c| c.experiment.as_str()).collect();
        let mut id = group_id(&ids);
        if used_ids.contains(&id) {
            id = format!("{id}-{}", used_ids.len());
        }
        used_ids.push(id.clone());
        let mut config = g[0].config.clone();
        config.regularizer = reg_params.clone();
        let built = crate::experiment::Plan::of(&config)?;
        if let Err((_, _, msg)) = checker.check(&config, &built) {
            return Err(Error::Config(format!(
                "--with: {msg} (rows {})",
                ids.join(", ")
            )));
        }
        let hash = training_hash(&config);
        let cells = seeds
            .iter()
            .map(|&seed| Cell {
                experiment: id.clone(),
                seed,
                config: config.clone(),
                training_hash: hash.clone(),
                evaluations: g[0].evaluations.clone(),
                cost: g[0].cost,
                plan: built.clone(),
            })
            .collect();
        plan.push((g, cells));
    }
    Ok(plan)
}

/// Runs the new cells as cells of the derived suite; returns their records and how many
/// models were trained now. A cell left without a model (`--no-train`) is an error.
fn run_new_cells(
    derived: &LoadedSuite,
    profile: &str,
    plan: &[(Vec<&Cell>, Vec<Cell>)],
    opts: &HarnessOptions,
    progress: &mut dyn Progress,
) -> Result<(Vec<ResultRecord>, usize)> {
    let total: usize = plan.iter().map(|(_, c)| c.len()).sum();
    let mut records: Vec<ResultRecord> = Vec::new();
    let mut trained = 0;
    progress.suite(total);
    for (k, cell) in plan.iter().flat_map(|(_, c)| c).enumerate() {
        let label = format!("[{}/{total}] {} s{}", k + 1, cell.experiment, cell.seed);
        let outcome = progress.cell(&label, cell.config.epochs, &mut |obs| {
            run_cell(derived, profile, cell, opts, obs)
        })?;
        for n in &outcome.notes {
            progress.note(&format!("{label}: {n}"));
        }
        let how = match &outcome.training {
            Training::Trained => {
                trained += 1;
                "trained".to_string()
            }
            Training::Reused => "reused the stored model".to_string(),
            Training::NotTrained(why) => format!("not trained ({why})"),
            Training::Busy(who) => format!("claimed by {who}"),
        };
        progress.note(&format!("{label}: {how}"));
        match outcome.record {
            Some((_, r)) => records.push(*r),
            None => {
                return Err(Error::Config(format!(
                    "{label}: no trained model ({:?}); run without --no-train",
                    outcome.training
                )));
            }
        }
    }
    Ok((records, trained))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_accepts_blocks_names_and_files_and_rejects_the_rest() {
        let v = parse_with("{name: cutmix, alpha: 1.0}").unwrap();
        assert_eq!(v, serde_json::json!({"name": "cutmix", "alpha": 1.0}));
        assert_eq!(
            parse_with("none").unwrap(),
            serde_json::json!({"name": "none"})
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("reg.yaml");
        std::fs::write(&f, "name: cutout\nlength: 16\n").unwrap();
        assert_eq!(
            parse_with(f.to_str().unwrap()).unwrap(),
            serde_json::json!({"name": "cutout", "length": 16})
        );
        let e = parse_with("{name: shakedrop}").unwrap_err().to_string();
        assert!(e.contains("--with: unknown regularizer `shakedrop`"), "{e}");
        let e = parse_with("{name: cutmix, alpha: -1}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("alpha must be a number > 0"), "{e}");
        let e = parse_with("{alpha: 1}").unwrap_err().to_string();
        assert!(e.contains("needs `name`"), "{e}");
        let e = parse_with("[1, 2]").unwrap_err().to_string();
        assert!(e.contains("expected a regularizer block"), "{e}");
    }

    #[test]
    fn labels_are_safe_and_change_with_the_parameters() {
        let a = spec_label(&serde_json::json!({"name": "cutmix", "alpha": 1.0}));
        let b = spec_label(&serde_json::json!({"alpha": 1.0, "name": "cutmix"}));
        let c = spec_label(&serde_json::json!({"name": "cutmix", "alpha": 0.5}));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("cutmix-") && is_safe_id(&a));
        assert_eq!(
            group_id(&["c10-preact18-none", "c10-preact18-input-mixup"]),
            "c10-preact18"
        );
        assert_eq!(group_id(&["a-b", "c-d"]), "a-b");
    }
}
