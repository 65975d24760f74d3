//! A suite's `evaluations` list resolved into one spec per evaluation: sweeps expanded, ids
//! assigned, the clean evaluation always first.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Evaluator, registry};
use crate::error::Result;

/// One evaluation of a trained model, as resolved from a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationSpec {
    /// Prefix of its metric keys (`<id>.<metric>`), unique within a cell.
    pub id: String,
    /// Registry name of the evaluator.
    pub name: String,
    /// Its parameters (no `name`, no `id`), every sweep already expanded to one value.
    pub params: Map<String, Value>,
}

/// Where in the suite's `evaluations` list an error is, and what is wrong.
#[derive(Debug, Clone)]
pub struct SpecError {
    /// Index of the entry in the list.
    pub index: usize,
    /// Field path inside the entry (`epsilon`, `a.b[1]`), when one is at fault.
    pub field: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl EvaluationSpec {
    /// Builds the evaluator.
    pub fn build(&self) -> Result<Box<dyn Evaluator>> {
        (registry::get(&self.name)?.build)(&self.params)
    }

    /// Metric keys this evaluation produces (`<id>.<metric>`).
    pub fn metric_keys(&self) -> Result<Vec<String>> {
        Ok(self
            .build()?
            .metric_names()
            .into_iter()
            .map(|m| format!("{}.{m}", self.id))
            .collect())
    }

    /// The spec as hashed: name and parameters (the id only names the metrics).
    pub fn hashed_value(&self) -> Value {
        let mut m = self.params.clone();
        m.insert("name".into(), Value::String(self.name.clone()));
        Value::Object(m)
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Expands `entries` (each `{name, id?, ...params}`); the always-run evaluator
/// ([`super::registry::EPOCH_LOGGED`]) is prepended when not listed.
pub fn expand(
    entries: &[Map<String, Value>],
) -> std::result::Result<Vec<EvaluationSpec>, SpecError> {
    let mut out = Vec::new();
    let first = super::registry::EPOCH_LOGGED;
    let listed = entries
        .iter()
        .any(|e| e.get("name").and_then(Value::as_str) == Some(first));
    if !listed {
        out.push(EvaluationSpec {
            id: first.into(),
            name: first.into(),
            params: Map::new(),
        });
    }
    for (index, e) in entries.iter().enumerate() {
        out.extend(expand_entry(index, e)?);
    }
    check_unique_ids(entries, &out)?;
    Ok(out)
}

/// Every error of one entry carries its index, so the suite's line can be found.
fn entry_err(index: usize, field: Option<&str>, message: String) -> SpecError {
    SpecError {
        index,
        field: field.map(str::to_string),
        message,
    }
}

/// Building each variant here, not at run time, makes bad parameters fail before any training.
fn expand_entry(
    index: usize,
    e: &Map<String, Value>,
) -> std::result::Result<Vec<EvaluationSpec>, SpecError> {
    let (name, entry) = entry_evaluator(index, e)?;
    let id = entry_id(index, e)?;
    let params: Map<String, Value> = e
        .iter()
        .filter(|(k, _)| k.as_str() != "name" && k.as_str() != "id")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let variants = sweep_variants(index, entry.sweep, id.is_some(), params)?;
    let mut out = Vec::new();
    for p in variants {
        let built = (entry.build)(&p).map_err(|x| match x {
            crate::Error::Param { path, message } => SpecError {
                index,
                field: Some(path).filter(|p| !p.is_empty()),
                message,
            },
            other => entry_err(index, None, other.to_string()),
        })?;
        out.push(EvaluationSpec {
            id: id.clone().unwrap_or_else(|| built.default_id()),
            name: name.clone(),
            params: p,
        });
    }
    Ok(out)
}

/// A missing `name` lists the registered evaluators, since the suite author must pick one.
fn entry_evaluator(
    index: usize,
    e: &Map<String, Value>,
) -> std::result::Result<(String, registry::EvaluatorEntry), SpecError> {
    let name = match e.get("name") {
        Some(Value::String(n)) => n.clone(),
        _ => {
            return Err(entry_err(
                index,
                Some("name"),
                format!(
                    "missing field `name` (a string naming the evaluator: {})",
                    registry::names().join(", ")
                ),
            ));
        }
    };
    let entry = registry::get(&name).map_err(|x| entry_err(index, Some("name"), x.to_string()))?;
    Ok((name, entry))
}

/// The id becomes a metric-key prefix, hence the restricted alphabet.
fn entry_id(
    index: usize,
    e: &Map<String, Value>,
) -> std::result::Result<Option<String>, SpecError> {
    match e.get("id") {
        None => Ok(None),
        Some(Value::String(s)) if valid_id(s) => Ok(Some(s.clone())),
        Some(v) => Err(entry_err(
            index,
            Some("id"),
            format!("expected 1-64 characters of [A-Za-z0-9_.-], got {v}"),
        )),
    }
}

/// At most one swept parameter, so the variants stay a list rather than a grid.
fn sweep_variants(
    index: usize,
    sweep: &[&str],
    has_id: bool,
    mut params: Map<String, Value>,
) -> std::result::Result<Vec<Map<String, Value>>, SpecError> {
    let err = |field: Option<&str>, message: String| entry_err(index, field, message);
    let swept: Vec<&str> = sweep
        .iter()
        .copied()
        .filter(|k| params.get(*k).is_some_and(Value::is_array))
        .collect();
    match swept.as_slice() {
        [] => Ok(vec![params]),
        [k] => {
            if has_id {
                return Err(err(
                    Some("id"),
                    format!(
                        "`id` cannot name a sweep over `{k}` (each value needs its own id); omit it to get generated ids"
                    ),
                ));
            }
            let values = params.remove(*k).and_then(|v| v.as_array().cloned());
            let values = values.unwrap_or_default();
            if values.is_empty() {
                return Err(err(Some(k), "give at least one value".into()));
            }
            Ok(values
                .into_iter()
                .map(|v| {
                    let mut p = params.clone();
                    p.insert((*k).to_string(), v);
                    p
                })
                .collect())
        }
        many => Err(err(
            Some(many[1]),
            format!("only one parameter may be a list; got {}", many.join(", ")),
        )),
    }
}

/// Ids prefix metric keys, so two equal ids would silently merge their metrics.
fn check_unique_ids(
    entries: &[Map<String, Value>],
    out: &[EvaluationSpec],
) -> std::result::Result<(), SpecError> {
    let mut seen = BTreeSet::new();
    for s in out {
        if !seen.insert(s.id.clone()) {
            let index = entries
                .iter()
                .rposition(|e| e.get("name").and_then(Value::as_str) == Some(s.name.as_str()))
                .unwrap_or(0);
            return Err(SpecError {
                index,
                field: Some("id".into()),
                message: format!(
                    "two evaluations have the id `{}`; give one an explicit `id`",
                    s.id
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(yaml: &str) -> Vec<Map<String, Value>> {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn sweeps_expand_and_clean_comes_first() {
        let s = expand(&entries(
            "[{name: fgsm, epsilon: [0.01, 0.03]}, {name: zoom, factor: 1.2}]",
        ))
        .unwrap();
        let ids: Vec<&str> = s.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["clean", "fgsm_0.01", "fgsm_0.03", "zoom_1.2"]);
        assert_eq!(s[2].params["epsilon"], serde_json::json!(0.03));
        assert_eq!(
            s[1].metric_keys().unwrap(),
            ["fgsm_0.01.accuracy", "fgsm_0.01.error"]
        );
    }

    #[test]
    fn a_listed_clean_has_the_id_of_the_prepended_one() {
        // Best-epoch metrics join records under this id (`eval::registry::epoch_logged_metrics`).
        let s = expand(&entries("[{name: fgsm, epsilon: 0.1}, {name: clean}]")).unwrap();
        let ids: Vec<&str> = s.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["fgsm_0.1", super::super::registry::EPOCH_LOGGED]);
    }

    #[test]
    fn ids_are_1_to_64_safe_characters() {
        let ok = "a".repeat(64);
        for id in ["small-eps_0.1", ok.as_str()] {
            let text = format!("[{{name: fgsm, epsilon: 0.1, id: '{id}'}}]");
            let specs = expand(&entries(&text)).unwrap();
            assert!(specs.iter().any(|s| s.id == id), "{id}");
        }
        let long = "a".repeat(65);
        for id in ["", "a/b", "a b", "ε", long.as_str()] {
            let text = format!("[{{name: fgsm, epsilon: 0.1, id: '{id}'}}]");
            let e = expand(&entries(&text)).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("id"), "{id:?}: {}", e.message);
        }
    }

    #[test]
    fn a_duplicate_id_points_at_the_entry_that_repeats_it() {
        let e = expand(&entries(
            "[{name: fgsm, epsilon: 0.1, id: a}, {name: zoom, factor: 1.2, id: a}, {name: rotation, degrees: 5}]",
        ))
        .unwrap_err();
        assert_eq!(
            (e.index, e.field.as_deref()),
            (1, Some("id")),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("two evaluations have the id `a`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_hashed_value_is_name_and_parameters_without_the_id() {
        let specs = expand(&entries("[{name: fgsm, epsilon: 0.1, id: small}]")).unwrap();
        let fgsm = specs.iter().find(|s| s.name == "fgsm").unwrap();
        let h = fgsm.hashed_value();
        assert_eq!(
            (h["name"].as_str(), h["epsilon"].as_f64()),
            (Some("fgsm"), Some(0.1))
        );
        assert!(h.get("id").is_none(), "{h}");
        // Every parameter the spec keeps is hashed: a changed parameter is a new evaluation.
        let mut want = fgsm.params.clone();
        want.insert("name".into(), Value::String("fgsm".into()));
        assert_eq!(h, Value::Object(want));
    }

    #[test]
    fn bad_entries_name_the_field() {
        let e = expand(&entries("[{name: fgsm, epsilon: 0.1}, {name: fgsn}]")).unwrap_err();
        assert_eq!((e.index, e.field.as_deref()), (1, Some("name")));
        assert!(
            e.message.contains("unknown evaluator `fgsn`"),
            "{}",
            e.message
        );
        let e = expand(&entries("[{name: fgsm, epsilon: 0.1, eps: 2}]")).unwrap_err();
        assert!(e.message.contains("unknown field `eps`"), "{}", e.message);
        let e = expand(&entries("[{name: fgsm, epsilon: -1}]")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("epsilon"), "{}", e.message);
        let e = expand(&entries("[{name: fgsm, epsilon: [0.1, 0.2], id: a}]")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("id"));
        let e = expand(&entries(
            "[{name: fgsm, epsilon: 0.1}, {name: fgsm, epsilon: 0.1}]",
        ))
        .unwrap_err();
        assert!(e.message.contains("fgsm_0.1"), "{}", e.message);
        for (bad, field) in [
            ("[{name: rotation, degrees: -5}]", "degrees"),
            ("[{name: shear, radians: -0.1}]", "radians"),
            ("[{name: zoom, factor: -1.2}]", "factor"),
            ("[{name: zoom, factor: 0}]", "factor"),
        ] {
            let e = expand(&entries(bad)).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{bad}: {}", e.message);
        }
        assert!(
            expand(&entries(
                "[{name: rotation, degrees: 0}, {name: shear, radians: 0}]"
            ))
            .is_ok()
        );
        let e = expand(&entries("[{epsilon: 0.1}]")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
        for name in [
            "clean",
            "fgsm",
            "rotation",
            "shear",
            "singular_values",
            "zoom",
        ] {
            assert!(e.message.contains(name), "{}", e.message);
        }
    }
}
