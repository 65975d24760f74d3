//! Sweep rows: one experiment with `sweep: {path, values, labels?, ids?, paper?}` becomes one
//! row per value, each a plain experiment (validated, resolved and hashed like hand-written
//! rows), with a generated id `<id>-<suffix>` and row label.

use serde_json::{Map, Value};

use super::locate::Seg;
use super::merge::deep_merge;
use super::schema::{ExperimentSpec, Labels};

/// What is wrong with a sweep, and where (path inside `experiments[i]`).
pub struct SweepError {
    /// Index of the template in the file.
    pub index: usize,
    /// Field path below the template.
    pub field: Vec<Seg>,
    /// What is wrong and what is expected.
    pub message: String,
}

/// An id suffix for a value: numbers as printed, strings as they are, lists joined by `-`
/// (`[]` → `none`), blocks by their `name`; None when no safe suffix exists.
fn suffix(v: &Value) -> Option<String> {
    let s = match v {
        Value::Number(n) => crate::eval::id_number(n.as_f64()?),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(suffix).collect::<Option<Vec<_>>>()?.join("-"),
        Value::Object(m) => {
            let name = m
                .get("name")
                .or_else(|| m.get("arch"))?
                .as_str()?
                .to_string();
            let rest: Vec<String> = m
                .iter()
                .filter(|(k, _)| k.as_str() != "name" && k.as_str() != "arch")
                .map(|(_, v)| suffix(v))
                .collect::<Option<Vec<_>>>()?;
            std::iter::once(name)
                .chain(rest)
                .collect::<Vec<_>>()
                .join("-")
        }
        _ => return None,
    };
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    ok.then_some(s)
}

fn label_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// `{"a": {"b": v}}` for the path `a.b`.
fn nested(path: &str, v: Value) -> Value {
    path.rsplit('.').fold(v, |acc, k| {
        let mut m = Map::new();
        m.insert(k.to_string(), acc);
        Value::Object(m)
    })
}

/// Expands every sweep row of `experiments` in place of its template.
pub fn expand(experiments: &[ExperimentSpec]) -> Result<Vec<ExperimentSpec>, SweepError> {
    let mut out = Vec::new();
    for (index, t) in experiments.iter().enumerate() {
        let Some(sw) = &t.sweep else {
            out.push(ExperimentSpec {
                source: Some(index),
                ..t.clone()
            });
            continue;
        };
        let err = |field: &[&str], message: String| SweepError {
            index,
            field: std::iter::once("sweep")
                .chain(field.iter().copied())
                .map(|k| Seg::Key(k.into()))
                .collect(),
            message,
        };
        let n = sw.values.len();
        if n == 0 {
            return Err(err(&["values"], "give at least one value".into()));
        }
        if sw.path.is_empty() || sw.path.split('.').any(str::is_empty) {
            return Err(err(
                &["path"],
                format!(
                    "`{}` is not a dotted path such as `regularizer.alpha`",
                    sw.path
                ),
            ));
        }
        let labels: Vec<String> = match &sw.labels {
            None => sw.values.iter().map(label_of).collect(),
            Some(Labels::Template(tpl)) => sw
                .values
                .iter()
                .map(|v| tpl.replace("{}", &label_of(v)))
                .collect(),
            Some(Labels::Each(l)) if l.len() == n => l.clone(),
            Some(Labels::Each(l)) => {
                return Err(err(
                    &["labels"],
                    format!("{} labels for {n} values; give one per value", l.len()),
                ));
            }
        };
        let ids: Vec<String> = match &sw.ids {
            Some(ids) if ids.len() == n => ids.clone(),
            Some(ids) => {
                return Err(err(
                    &["ids"],
                    format!("{} ids for {n} values; give one per value", ids.len()),
                ));
            }
            None => sw
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    suffix(v).ok_or_else(|| {
                        err(
                            &["values"],
                            format!("value {i} ({v}) gives no id suffix; name the rows with `ids`"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        for (metric, printed) in &sw.paper {
            if printed.len() != n {
                return Err(err(
                    &["paper", metric],
                    format!("{} printed values for {n} sweep values", printed.len()),
                ));
            }
        }
        for (i, v) in sw.values.iter().enumerate() {
            let mut overrides = if t.overrides.is_null() {
                Value::Object(Map::new())
            } else {
                t.overrides.clone()
            };
            deep_merge(&mut overrides, &nested(&sw.path, v.clone()));
            let mut paper = t.paper.clone();
            for (metric, printed) in &sw.paper {
                paper.insert(metric.clone(), printed[i].clone());
            }
            out.push(ExperimentSpec {
                id: format!("{}-{}", t.id, ids[i]),
                overrides,
                paper,
                row: Some(labels[i].clone()),
                sweep: None,
                source: Some(index),
                ..t.clone()
            });
        }
    }
    Ok(out)
}
