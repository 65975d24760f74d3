//! The one registry shape every extensible kind shares (regularizers, models, datasets,
//! evaluators): named, described constructors, the built-in ones fixed at compile time and more
//! added at start-up by a crate that depends on mixbench (see [`crate::app::App`]).

use std::sync::RwLock;

use crate::error::{Error, Result};

/// One registered constructor.
#[derive(Debug, Clone, Copy)]
pub struct Entry<F> {
    /// Name used in suites.
    pub name: &'static str,
    /// One-line description with its parameters.
    pub description: &'static str,
    /// Parameters that may be given as a list, each value becoming its own run with its own
    /// id and hash (evaluators use it; empty elsewhere).
    pub sweep: &'static [&'static str],
    /// Constructor: parses the block's parameters (with [`crate::params::parse`], so errors
    /// carry their field path), validates them and builds the component.
    pub build: F,
    /// JSON Schema of the parameters (`mixbench schema`).
    pub schema: fn() -> serde_json::Value,
}

impl<F> Entry<F> {
    /// An entry whose parameters have no declared type (the schema allows any mapping).
    pub const fn new(name: &'static str, description: &'static str, build: F) -> Self {
        Entry {
            name,
            description,
            sweep: &[],
            build,
            schema: crate::params::any_params,
        }
    }

    /// An entry whose parameters are `P`: `build` parses them into `P`, and `P`'s schema
    /// describes the block in `mixbench schema`.
    pub const fn typed<P: schemars::JsonSchema>(
        name: &'static str,
        description: &'static str,
        build: F,
    ) -> Self {
        Entry {
            name,
            description,
            sweep: &[],
            build,
            schema: crate::params::schema::<P>,
        }
    }

    /// The same entry with `sweep` as its sweepable parameters.
    pub const fn with_sweep(mut self, sweep: &'static [&'static str]) -> Self {
        self.sweep = sweep;
        self
    }
}

/// Built-in entries plus those added at start-up.
pub struct Registry<F: 'static> {
    kind: &'static str,
    builtin: &'static [Entry<F>],
    added: RwLock<Vec<Entry<F>>>,
}

impl<F: Copy + 'static> Registry<F> {
    /// A registry of `kind` (`"regularizer"`, used in messages) holding `builtin`.
    pub const fn new(kind: &'static str, builtin: &'static [Entry<F>]) -> Self {
        Registry {
            kind,
            builtin,
            added: RwLock::new(Vec::new()),
        }
    }

    /// Every entry: built-in first, then added ones in the order they were added.
    pub fn entries(&self) -> Vec<Entry<F>> {
        let added = self.added.read().unwrap_or_else(|p| p.into_inner());
        self.builtin.iter().chain(added.iter()).copied().collect()
    }

    /// Names of every entry.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries().iter().map(|e| e.name).collect()
    }

    /// The entry named `name`, or an error listing the valid names.
    pub fn get(&self, name: &str) -> Result<Entry<F>> {
        self.entries()
            .into_iter()
            .find(|e| e.name == name)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown {} `{name}`; expected one of: {}",
                    self.kind,
                    self.names().join(", ")
                ))
            })
    }

    /// Adds `entry`; a name that is taken or not a plain identifier is refused.
    pub fn add(&self, entry: Entry<F>) -> Result<()> {
        let ok = !entry.name.is_empty()
            && entry.name.len() <= 64
            && entry
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Error::Config(format!(
                "cannot register {} `{}`: a name is 1-64 characters of [A-Za-z0-9_]",
                self.kind, entry.name
            )));
        }
        let mut added = self.added.write().unwrap_or_else(|p| p.into_inner());
        if self
            .builtin
            .iter()
            .chain(added.iter())
            .any(|e| e.name == entry.name)
        {
            return Err(Error::Config(format!(
                "cannot register {} `{}`: the name is taken",
                self.kind, entry.name
            )));
        }
        added.push(entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BUILTIN: &[Entry<fn() -> u32>] = &[Entry::new("one", "returns 1", || 1)];

    #[test]
    fn added_entries_are_found_and_names_are_checked() {
        let r: Registry<fn() -> u32> = Registry::new("thing", BUILTIN);
        assert_eq!((r.get("one").unwrap().build)(), 1);
        let e = r.get("two").unwrap_err().to_string();
        assert!(
            e.contains("unknown thing `two`; expected one of: one"),
            "{e}"
        );
        r.add(Entry::new("two", "returns 2", || 2)).unwrap();
        assert_eq!((r.get("two").unwrap().build)(), 2);
        assert_eq!(r.names(), vec!["one", "two"]);
        let taken = r
            .add(Entry::new("one", "again", || 3))
            .unwrap_err()
            .to_string();
        assert!(taken.contains("the name is taken"), "{taken}");
        let bad = r.add(Entry::new("../x", "", || 4)).unwrap_err().to_string();
        assert!(bad.contains("[A-Za-z0-9_]"), "{bad}");
        assert_eq!(r.names().len(), 2);
    }
}
