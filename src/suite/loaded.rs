//! A parsed suite kept with its source text, so errors found after parsing (by `load`'s checks
//! or by `resolve`) still point at file:line. Both depend on this file, not on each other.

use std::path::PathBuf;

use serde_json::Value;

use super::locate::{Seg, locate, render};
use super::schema::Suite;
use crate::error::Error;

/// A parsed suite with its source text (kept to locate errors found later).
#[derive(Debug, Clone)]
pub struct LoadedSuite {
    /// The parsed suite.
    pub suite: Suite,
    /// The file it came from.
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

impl LoadedSuite {
    /// An error at `path` (field path segments) in this suite's file.
    pub fn error_at(&self, path: &[Seg], msg: &str) -> Error {
        let loc = locate(&self.text, path)
            .map(|(l, c)| format!(":{l}:{c}"))
            .unwrap_or_default();
        Error::Config(format!(
            "{}{loc}: {}: {msg}",
            self.path.display(),
            render(path)
        ))
    }
}

/// Comma-separated profile names.
pub fn profile_names(s: &Suite) -> String {
    s.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// The value at a path inside a JSON value, if present.
pub fn get_path<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut cur = v;
    for s in path {
        cur = match s {
            Seg::Key(k) => cur.get(k)?,
            Seg::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

/// `Ok` for no errors, else one error listing each, one per line; errors that differ only in
/// their experiment (a bad value in `defaults`) are listed once with every experiment named.
pub fn join_errors(ls: &LoadedSuite, errs: Vec<Error>) -> crate::error::Result<()> {
    // (message without its experiment, experiments, profile suffix)
    let mut groups: Vec<(String, Vec<String>, String)> = Vec::new();
    for e in errs {
        let m = e.to_string();
        let split = m.rfind(" (experiment `").and_then(|i| {
            let rest = &m[i + " (experiment `".len()..];
            let (id, tail) = rest.split_once('`')?;
            Some((m[..i].to_string(), id.to_string(), tail.to_string()))
        });
        let (head, id, tail) = split.unwrap_or((m, String::new(), String::new()));
        match groups.iter_mut().find(|g| g.0 == head && g.2 == tail) {
            Some(g) if !id.is_empty() && !g.1.contains(&id) => g.1.push(id),
            Some(_) => {}
            None => groups.push((
                head,
                vec![id].into_iter().filter(|i| !i.is_empty()).collect(),
                tail,
            )),
        }
    }
    let mut msgs: Vec<String> = groups
        .into_iter()
        .map(|(head, ids, tail)| match ids.len() {
            0 => head,
            1 => format!("{head} (experiment `{}`{tail}", ids[0]),
            _ => format!(
                "{head} (experiments {}{tail}",
                ids.iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect();
    match msgs.len() {
        0 => Ok(()),
        1 => Err(Error::Config(msgs.remove(0))),
        n => Err(Error::Config(format!(
            "{n} errors in {}:\n{}",
            ls.path.display(),
            msgs.join("\n")
        ))),
    }
}
