//! `compare`: train a new regularizer with each row's architecture, dataset and schedule, and
//! put it beside the suite's blessed baselines (Δ, Welch p-value, verdict per method).
//!
//! Rows that differ only in their regularizer (and share their evaluations) form one group and
//! get one new row. The new cells are ordinary cells of a derived suite `<suite>-with-<label>`:
//! their models live in the shared `<results>/models/` and their records under
//! `<results>/<suite>-with-<label>/<profile>/`, so a rerun trains nothing.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::Progress;
use crate::error::{Error, Result};
use crate::harness::{HarnessOptions, run_cell};
use crate::regularizer;
use crate::results::aggregate::{Stat, aggregate};
use crate::results::baseline;
use crate::results::comparison::{MetricComparison, compare_metric};
use crate::results::record::{ResultRecord, metric_keys};
use crate::suite::load::is_safe_id;
use crate::suite::resolve::{canonical_json, training_config, training_hash};
use crate::suite::schema::{MetricSpec, expand_metrics};
use crate::suite::{Cell, LoadedSuite, resolve};

/// What to compare.
pub struct CompareRequest<'a> {
    /// The suite whose rows and baselines the new method is compared with.
    pub suite: &'a LoadedSuite,
    /// Profile.
    pub profile: &'a str,
    /// Seeds instead of the profile's.
    pub seeds: Option<&'a [u64]>,
    /// The new method's `regularizer` block (`name` plus parameters).
    pub with: Value,
    /// Name shown for the new method (default: from the block).
    pub label: Option<String>,
}

/// One baseline method of a row.
#[derive(Debug, Clone, Serialize)]
pub struct AgainstMethod {
    /// Its experiment id in the suite.
    pub experiment: String,
    /// Its method as printed.
    pub method: String,
    /// Per metric.
    pub metrics: Vec<MetricComparison>,
}

/// The new method on one group of rows.
#[derive(Debug, Clone, Serialize)]
pub struct ComparedRow {
    /// Experiment id of the new row (in the derived suite).
    pub experiment: String,
    /// The rows' group label (`(a) CIFAR-10`).
    pub group: Option<String>,
    /// The rows' architecture as printed.
    pub architecture: String,
    /// The new method's statistics per metric (seeds that diverged excluded).
    pub new: BTreeMap<String, Stat>,
    /// Seeds of the new method that diverged.
    pub diverged: Vec<u64>,
    /// The suite's methods of this group.
    pub against: Vec<AgainstMethod>,
}

/// The finished comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Suite id.
    pub suite: String,
    /// Suite title.
    pub title: String,
    /// Profile.
    pub profile: String,
    /// What the profile is for.
    pub profile_description: String,
    /// Id of the derived suite holding the new records (`<suite>-with-<label>`).
    pub derived_suite: String,
    /// Name shown for the new method.
    pub method: String,
    /// Its regularizer block.
    pub spec: Value,
    /// Significance level of the Welch tests.
    pub significance: f64,
    /// Compared metrics.
    pub metrics: Vec<MetricSpec>,
    /// The baseline file.
    pub baseline: String,
    /// When it was blessed.
    pub baseline_blessed_at: String,
    /// One per group of rows.
    pub rows: Vec<ComparedRow>,
    /// Models trained now (0 on a rerun).
    pub trained: usize,
}

/// Reads `--with`: a YAML/JSON file holding a regularizer block, an inline block
/// (`{name: cutmix, alpha: 1.0}`) or a bare registry name.
pub fn parse_with(arg: &str) -> Result<Value> {
    let (text, origin) = match std::fs::read_to_string(arg) {
        Ok(t) => (t, format!("--with {arg}")),
        Err(_) => (arg.to_string(), "--with".to_string()),
    };
    let v: Value = serde_yaml::from_str(&text).map_err(|e| {
        Error::Config(format!(
            "{origin}: not YAML ({e}); expected a regularizer block such as '{{name: cutmix, alpha: 1.0}}', a file holding one, or a regularizer name"
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
pub fn spec_label(spec: &Value) -> String {
    let name = spec.get("name").and_then(Value::as_str).unwrap_or("method");
    let h = crate::data::hash::sha256_hex(canonical_json(spec).as_bytes());
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

/// Runs the comparison; `opts` says where results live and whether training is allowed.
pub fn compare(
    req: &CompareRequest,
    opts: &HarnessOptions,
    progress: &mut dyn Progress,
) -> Result<Comparison> {
    let ls = req.suite;
    let s = &ls.suite;
    let base_cells = resolve(ls, req.profile, req.seeds)?;
    let bpath = opts.layout.baseline(&s.id, req.profile)?;
    let base = baseline::read(&bpath)?.ok_or_else(|| {
        Error::Config(format!(
            "no blessed baseline for {} / {} at {}; bless one first with `mixbench reproduce {} --profile {} --bless`",
            s.id,
            req.profile,
            bpath.display(),
            s.id,
            req.profile
        ))
    })?;
    let label = spec_label(&req.with);
    let derived_id = format!("{}-with-{label}", s.id);
    if !is_safe_id(&derived_id) {
        return Err(Error::Config(format!(
            "--with: `{derived_id}` cannot name a results folder; use a shorter regularizer name"
        )));
    }
    let mut derived = ls.clone();
    derived.suite.id = derived_id.clone();
    let method = req.label.clone().unwrap_or_else(|| method_text(&req.with));
    let seeds: Vec<u64> = match req.seeds {
        Some(s) => s.to_vec(),
        None => s.profiles[req.profile].seeds.clone(),
    };

    // Every new cell is built (and its regularizer checked) before anything trains.
    let reg_params: Map<String, Value> = req
        .with
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let grouped = groups(&base_cells);
    let mut checker = crate::suite::check::Checker::default();
    let mut plan: Vec<(Vec<&Cell>, Vec<Cell>)> = Vec::new();
    let mut used_ids: Vec<String> = Vec::new();
    for g in grouped {
        let ids: Vec<&str> = g.iter().map(|c| c.experiment.as_str()).collect();
        let mut id = group_id(&ids);
        if used_ids.contains(&id) {
            id = format!("{id}-{}", used_ids.len());
        }
        used_ids.push(id.clone());
        let mut config = g[0].config.clone();
        config.regularizer = reg_params.clone();
        let built = crate::suite::resolve::Plan::of(&config)?;
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

    let total: usize = plan.iter().map(|(_, c)| c.len()).sum();
    let mut records: Vec<ResultRecord> = Vec::new();
    let mut trained = 0;
    let mut k = 0;
    for (_, cells) in &plan {
        for cell in cells {
            k += 1;
            let label = format!("[{k}/{total}] {} s{}", cell.experiment, cell.seed);
            let outcome = progress.cell(&label, cell.config.epochs, &mut |obs| {
                run_cell(&derived, req.profile, cell, opts, obs)
            })?;
            for n in &outcome.notes {
                progress.note(&format!("{label}: {n}"));
            }
            let how = match &outcome.training {
                crate::harness::Training::Trained => {
                    trained += 1;
                    "trained".to_string()
                }
                crate::harness::Training::Reused => "reused the stored model".to_string(),
                crate::harness::Training::NotTrained(why) => format!("not trained ({why})"),
                crate::harness::Training::Busy(who) => format!("claimed by {who}"),
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
    }

    let metrics = expand_metrics(&s.metrics_for(req.profile), &metric_keys(&records));
    let summaries = aggregate(&records, &metrics)?;
    let mut rows = Vec::new();
    for ((group, cells), summary) in plan.iter().zip(
        plan.iter()
            .map(|(_, c)| summaries.iter().find(|x| x.experiment == c[0].experiment)),
    ) {
        let Some(summary) = summary else { continue };
        let spec_of = |id: &str| s.experiments.iter().find(|e| e.id == id);
        let first = spec_of(&group[0].experiment);
        let against = group
            .iter()
            .map(|c| {
                let b = base.experiments.get(&c.experiment);
                let stale = b.is_some_and(|b| {
                    b.training_hash != c.training_hash
                        || b.dataset_fingerprint != summary.dataset_fingerprint
                });
                AgainstMethod {
                    experiment: c.experiment.clone(),
                    method: spec_of(&c.experiment)
                        .map(|e| e.method.clone())
                        .unwrap_or_default(),
                    metrics: metrics
                        .iter()
                        .map(|m| {
                            compare_metric(
                                m,
                                summary.metrics.get(&m.name),
                                b.and_then(|b| b.metrics.get(&m.name)),
                                stale,
                                s.significance,
                            )
                        })
                        .collect(),
                }
            })
            .collect();
        rows.push(ComparedRow {
            experiment: cells[0].experiment.clone(),
            group: first.and_then(|e| e.group.clone()),
            architecture: first.map(|e| e.architecture.clone()).unwrap_or_default(),
            new: summary.metrics.clone(),
            diverged: summary.diverged.iter().map(|(s, _)| *s).collect(),
            against,
        });
    }
    Ok(Comparison {
        suite: s.id.clone(),
        title: s.title.clone(),
        profile: req.profile.to_string(),
        profile_description: s.profiles[req.profile].description.clone(),
        derived_suite: derived_id,
        method,
        spec: req.with.clone(),
        significance: s.significance,
        metrics,
        baseline: bpath.display().to_string(),
        baseline_blessed_at: base.blessed_at.clone(),
        rows,
        trained,
    })
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
