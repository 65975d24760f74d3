//! Reading and validating suite files, with errors that name file, line:column and field.

use std::collections::BTreeSet;
use std::path::Path;

use super::loaded::{LoadedSuite, profile_names};
use super::locate::{Seg, locate, parse_path};
use super::resolve::{Resolved, resolve_experiment};
use super::schema::{FigureKind, ProfileSpec, Suite, Which};
use super::yaml::{self, YamlError};
use crate::error::{Error, Result};

/// Loads `suites/<id>.yaml` from `dir`, or a suite file given by path.
pub fn load(dir: &Path, id_or_path: &str) -> Result<LoadedSuite> {
    let p = Path::new(id_or_path);
    let path = if p.extension().is_some() || p.components().count() > 1 {
        p.to_path_buf()
    } else {
        dir.join(format!("{id_or_path}.yaml"))
    };
    if !path.exists() {
        let known = list_ids(dir).unwrap_or_default();
        return Err(Error::Config(format!(
            "no suite `{id_or_path}`: {} does not exist; known suites in {}: {}",
            path.display(),
            dir.display(),
            if known.is_empty() {
                "(none)".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    parse(&path, &text)
}

/// Ids of the suites in `dir`, sorted.
pub fn list_ids(dir: &Path) -> Result<Vec<String>> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            if p.extension()? == "yaml" {
                Some(p.file_stem()?.to_string_lossy().to_string())
            } else {
                None
            }
        })
        .collect();
    ids.sort();
    Ok(ids)
}

/// Parses and validates suite text.
pub fn parse(path: &Path, text: &str) -> Result<LoadedSuite> {
    let place = |e: &YamlError| {
        let at = e.at.or_else(|| locate(text, &parse_path(&e.field)));
        at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default()
    };
    let field = |e: &YamlError| match e.field.as_str() {
        "." => "(top level)".to_string(),
        f => f.to_string(),
    };
    // First as plain data: a NaN or infinite number anywhere is named as such, not as the type
    // error it would cause in the field that holds it.
    if let Err(e) = yaml::from_str::<serde_json::Value>(text)
        && let Some(v) = &e.non_finite
    {
        return Err(Error::Config(format!(
            "{}{}: {}: must be a finite number, got {v}",
            path.display(),
            place(&e),
            field(&e)
        )));
    }
    let suite: Suite = yaml::from_str(text).map_err(|e| {
        Error::Config(format!(
            "{}{}: {}: {}",
            path.display(),
            place(&e),
            field(&e),
            e.message
        ))
    })?;
    let mut loaded = LoadedSuite {
        suite,
        path: path.to_path_buf(),
        text: text.to_string(),
    };
    loaded.suite.experiments = super::sweep::expand(&loaded.suite.experiments).map_err(|e| {
        let mut at = vec![key("experiments"), Seg::Index(e.index)];
        at.extend(e.field);
        loaded.error_at(&at, &e.message)
    })?;
    validate(&loaded)?;
    Ok(loaded)
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// Longest suite, experiment or profile id (ids name files under the results root).
pub const MAX_ID_LEN: usize = 100;

/// Whether `id` may name a file or folder: 1–100 of `[A-Za-z0-9_.-]`, not starting with `.`
/// (no separators, no `..`, no hidden files), so no id can lead outside the results root.
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn id_error(what: &str, id: &str) -> String {
    format!(
        "{what} `{id}` is not a safe name: use 1-{MAX_ID_LEN} characters of [A-Za-z0-9_.-], not starting with `.` (ids name files under the results folder)"
    )
}

/// Checks everything that needs no model or data; reports every error found, not the first.
fn validate(ls: &LoadedSuite) -> Result<()> {
    let mut errs: Vec<Error> = Vec::new();
    check_header(ls, &mut errs);
    check_experiments(ls, &mut errs);
    check_figures(ls, &mut errs);
    if ls.suite.profiles.is_empty() {
        errs.push(ls.error_at(
            &[key("profiles")],
            "define at least one profile (e.g. `smoke`)",
        ));
    }
    let mut resolved = Vec::new();
    for (name, p) in &ls.suite.profiles {
        check_profile(ls, name, p, &mut errs);
        resolved.extend(check_rows(ls, name, &mut errs)?);
    }
    // A suite that already fails is also built, so one run lists every error; a suite that
    // passes is built per profile by `resolve`, which does not pay for unused profiles.
    if !errs.is_empty() {
        let mut checker = super::check::Checker::default();
        for (profile, id, r) in &resolved {
            if let Err(e) = checker.check(&r.config, &r.plan) {
                errs.push(super::check::located_error(ls, &r.origins, e, id, profile));
            }
        }
    }
    super::loaded::join_errors(ls, errs)
}

/// Ids, the file name, metrics, significance and the shape of `defaults`.
fn check_header(ls: &LoadedSuite, errs: &mut Vec<Error>) {
    let s = &ls.suite;
    if !is_safe_id(&s.id) {
        errs.push(ls.error_at(&[key("id")], &id_error("suite id", &s.id)));
    }
    for name in s.profiles.keys() {
        if !is_safe_id(name) {
            errs.push(ls.error_at(&[key("profiles"), key(name)], &id_error("profile", name)));
        }
    }
    if let Some(stem) = ls.path.file_stem().map(|s| s.to_string_lossy().to_string())
        && stem != s.id
    {
        errs.push(ls.error_at(
            &[key("id")],
            &format!("suite id `{}` must match the file name `{stem}`", s.id),
        ));
    }
    for (i, m) in s.metrics.iter().enumerate() {
        let at = |k: &str| [key("metrics"), Seg::Index(i), key(k)];
        if m.name.is_empty() {
            errs.push(ls.error_at(&at("name"), "give a metric key such as `clean.test_error`"));
        }
        if m.from == Which::Best && !crate::eval::registry::is_epoch_logged(&m.name) {
            errs.push(ls.error_at(
                &at("from"),
                &format!(
                    "`from: best` exists only for the metrics logged every epoch (`{}.*`)",
                    crate::eval::registry::EPOCH_LOGGED
                ),
            ));
        }
        if m.tolerance.is_nan() || m.tolerance < 0.0 {
            errs.push(ls.error_at(&at("tolerance"), "tolerance must be a number >= 0"));
        }
    }
    if !(s.significance > 0.0 && s.significance < 1.0) {
        errs.push(ls.error_at(&[key("significance")], "significance must be in (0, 1)"));
    }
    if !s.defaults.is_object() {
        errs.push(ls.error_at(
            &[key("defaults")],
            "expected a mapping of experiment settings",
        ));
    }
}

/// Each experiment's id, paper values, profile overrides and overrides.
fn check_experiments(ls: &LoadedSuite, errs: &mut Vec<Error>) {
    let s = &ls.suite;
    let mut ids = BTreeSet::new();
    for (i, e) in s.experiments.iter().enumerate() {
        let src = e.source.unwrap_or(i);
        let at = |k: &str| vec![key("experiments"), Seg::Index(src), key(k)];
        if !is_safe_id(&e.id) {
            errs.push(ls.error_at(&at("id"), &id_error("experiment id", &e.id)));
        }
        if !ids.insert(e.id.clone()) {
            errs.push(ls.error_at(&at("id"), &format!("duplicate experiment id `{}`", e.id)));
        }
        for m in e.paper.keys() {
            if !s.metrics.iter().any(|x| x.matches(m)) {
                errs.push(ls.error_at(
                    &at("paper"),
                    &format!("paper value for `{m}`, which is not one of the suite's metrics"),
                ));
            }
        }
        for p in e.profile_overrides.keys() {
            if !s.profiles.contains_key(p) {
                errs.push(ls.error_at(
                    &at("profile_overrides"),
                    &format!(
                        "unknown profile `{p}`; the suite defines: {}",
                        profile_names(s)
                    ),
                ));
            }
        }
        if !(e.overrides.is_object() || e.overrides.is_null()) {
            errs.push(ls.error_at(&at("overrides"), "expected a mapping"));
        }
    }
}

/// Each figure names experiments of the suite, and what its kind needs.
fn check_figures(ls: &LoadedSuite, errs: &mut Vec<Error>) {
    let s = &ls.suite;
    let ids: Vec<&str> = s.experiments.iter().map(|e| e.id.as_str()).collect();
    for (i, f) in s.figures.iter().enumerate() {
        let at = |k: &str| [key("figures"), Seg::Index(i), key(k)];
        for (field, list) in [("experiments", &f.experiments), ("order", &f.order)] {
            for id in list.iter().filter(|id| !ids.contains(&id.as_str())) {
                errs.push(ls.error_at(
                    &at(field),
                    &format!(
                        "no experiment `{id}` in this suite (ids: {})",
                        ids.join(", ")
                    ),
                ));
            }
        }
        let drawn = |id: &String| f.experiments.is_empty() || f.experiments.contains(id);
        if let Some(id) = f.order.iter().find(|id| !drawn(id)) {
            errs.push(ls.error_at(
                &at("order"),
                &format!("`{id}` is ordered but not one of the figure's experiments"),
            ));
        }
        match (f.kind, &f.evaluation, f.order.is_empty()) {
            (FigureKind::Embedding, None, _) => errs.push(ls.error_at(
                &at("kind"),
                "an `embedding` figure needs `evaluation: <id of an embedding evaluation>`",
            )),
            (FigureKind::Embedding, _, false) => {
                errs.push(ls.error_at(&at("order"), "`order` is for `train_loss` figures"))
            }
            (FigureKind::TrainLoss, Some(_), _) => {
                errs.push(ls.error_at(&at("evaluation"), "`evaluation` is for `embedding` figures"))
            }
            _ => {}
        }
    }
}

/// A profile's tolerances and seeds.
fn check_profile(ls: &LoadedSuite, name: &str, p: &ProfileSpec, errs: &mut Vec<Error>) {
    let s = &ls.suite;
    for (t, v) in &p.tolerances {
        let at = [key("profiles"), key(name), key("tolerances"), key(t)];
        if !s.metrics.iter().any(|m| &m.name == t) {
            let names: Vec<&str> = s.metrics.iter().map(|m| m.name.as_str()).collect();
            errs.push(ls.error_at(
                &at,
                &format!(
                    "tolerance for `{t}`, which is not one of the suite's metrics ({})",
                    names.join(", ")
                ),
            ));
        }
        if !(v.is_finite() && *v >= 0.0) {
            errs.push(ls.error_at(&at, "tolerance must be a number >= 0"));
        }
    }
    let seeds = [key("profiles"), key(name), key("seeds")];
    let mut seen = BTreeSet::new();
    if let Some(dup) = p.seeds.iter().find(|s| !seen.insert(**s)) {
        errs.push(ls.error_at(
            &seeds,
            &format!("seed {dup} is listed twice; each seed must count once in the mean, std and Welch test"),
        ));
    }
    if p.seeds.is_empty() {
        errs.push(ls.error_at(&seeds, "give at least one seed"));
    }
}

/// Resolves every row under profile `name`; when all resolve, checks that each metric is
/// produced by some evaluation. Returns the rows that resolved (profile, id, row).
fn check_rows(
    ls: &LoadedSuite,
    name: &str,
    errs: &mut Vec<Error>,
) -> Result<Vec<(String, String, Resolved)>> {
    let s = &ls.suite;
    let mut keys = BTreeSet::new();
    let mut resolved = Vec::new();
    let mut resolved_all = true;
    for e in s.experiments.iter().filter(|e| e.quoted.is_none()) {
        match resolve_experiment(ls, e, name) {
            Ok(r) => {
                for ev in &r.evaluations {
                    keys.extend(ev.metric_keys()?);
                }
                resolved.push((name.to_string(), e.id.clone(), r));
            }
            Err(err) => {
                resolved_all = false;
                errs.push(err);
            }
        }
    }
    // Metric keys are known only when every row resolved.
    for (i, m) in s.metrics.iter().enumerate().filter(|_| resolved_all) {
        if !keys.iter().any(|k| m.matches(k)) {
            let known: Vec<&str> = keys.iter().map(String::as_str).collect();
            errs.push(ls.error_at(
                &[key("metrics"), Seg::Index(i), key("name")],
                &format!(
                    "no evaluation of profile `{name}` produces `{}`; its metrics are: {}",
                    m.name,
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(resolved)
}
