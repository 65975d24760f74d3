//! The dataset table behind `mixbench data status` and `mixbench data verify`.

use std::path::Path;

use crate::data::{DatasetStatus, LoadOptions, Presence, registry};
use crate::error::Result;

/// Status of every registered dataset (or only `only`); with `verify`, every file is re-hashed.
pub fn collect(opts: &LoadOptions, verify: bool, only: Option<&str>) -> Result<Vec<DatasetStatus>> {
    let sources = match only {
        Some(name) => vec![registry::get(name)?],
        None => registry::all(),
    };
    Ok(sources.iter().map(|s| s.status(opts, verify)).collect())
}

/// True when any dataset is missing or corrupt.
pub fn any_problem(statuses: &[DatasetStatus]) -> bool {
    statuses
        .iter()
        .any(|s| matches!(s.presence, Presence::Missing(_) | Presence::Corrupt(_)))
}

fn word(p: &Presence) -> &'static str {
    match p {
        Presence::Present => "present",
        Presence::Embedded => "embedded",
        Presence::Missing(_) => "missing",
        Presence::Corrupt(_) => "corrupt",
    }
}

/// A readable table (name, presence, path, fingerprint), then details of every dataset that is
/// missing or corrupt, and any notes; `origin` says how the data directory was chosen.
pub fn render(statuses: &[DatasetStatus], data_dir: &Path, origin: &str, verify: bool) -> String {
    let mut rows: Vec<[String; 4]> = vec![[
        "DATASET".into(),
        "STATUS".into(),
        "PATH".into(),
        "FINGERPRINT (sha256 of the files read)".into(),
    ]];
    for s in statuses {
        let fp = match (&s.fingerprint, &s.presence) {
            (Some(f), _) => f.clone(),
            (None, Presence::Present) if !verify => {
                "(not hashed; run `mixbench data verify`)".into()
            }
            _ => "-".into(),
        };
        let path = match (&s.path, &s.presence) {
            (_, Presence::Embedded) => "(built in)".to_string(),
            (Some(p), _) => p.display().to_string(),
            (None, _) => "-".into(),
        };
        rows.push([s.name.clone(), word(&s.presence).into(), path, fp]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("Data directory: {} ({origin})\n\n", data_dir.display());
    for r in &rows {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    for s in statuses {
        let detail = match &s.presence {
            Presence::Missing(t) | Presence::Corrupt(t) => Some(t),
            _ => None,
        };
        if detail.is_none() && s.notes.is_empty() {
            continue;
        }
        out.push_str(&format!("\n== {} ({}) ==\n", s.name, word(&s.presence)));
        if let Some(t) = detail {
            out.push_str(t);
            out.push('\n');
        }
        for n in &s.notes {
            out.push_str(&format!("note: {n}\n"));
        }
    }
    out
}
