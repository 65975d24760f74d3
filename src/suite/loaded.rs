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
