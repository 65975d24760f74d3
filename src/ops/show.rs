//! `show`: a suite profile's resolved cells with their blocks spelled out, without running
//! anything.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::Result;
use crate::experiment::ExperimentConfig;
use crate::suite::{Cell, load, resolve};

/// One resolved cell, its blocks as people write them.
pub(crate) struct ShownCell {
    /// The cell.
    pub(crate) cell: Cell,
    /// The dataset block: `synthetic {classes: 10}`.
    pub(crate) dataset: String,
    /// The model block: `preactresnet18 {width: 0.125, bn_init: torch1.0}`.
    pub(crate) model: String,
    /// The regularizer block.
    pub(crate) regularizer: String,
    /// Each evaluation as `<id> [<8 hex of its evaluation hash>]`.
    pub(crate) evaluations: Vec<String>,
}

/// A suite profile's cells.
pub(crate) struct Shown {
    /// Suite title.
    pub(crate) title: String,
    /// Cells in suite order.
    pub(crate) cells: Vec<ShownCell>,
}

/// Resolves `suite` (an id or a file under `suites_dir`) under `profile`.
pub(crate) fn show(suites_dir: &Path, suite: &str, profile: &str) -> Result<Shown> {
    let ls = load(suites_dir, suite)?;
    let cells = resolve(&ls, profile, None)?;
    Ok(Shown {
        title: ls.suite.title.clone(),
        cells: cells
            .into_iter()
            .map(|c| ShownCell {
                dataset: block(&c.config.dataset, "name"),
                model: block(&c.config.model, "arch"),
                regularizer: block(&c.config.regularizer, "name"),
                evaluations: c
                    .evaluations
                    .iter()
                    .map(|e| format!("{} [{}]", e.id, &c.evaluation_hash(e)[..8]))
                    .collect(),
                cell: c,
            })
            .collect(),
    })
}

/// A block with its parameters: `preactresnet18 {width: 0.125, bn_init: torch1.0}`.
pub(crate) fn block(b: &Map<String, Value>, k: &str) -> String {
    let name = ExperimentConfig::block_name(b, k, k)
        .unwrap_or("?")
        .to_string();
    let params: Vec<String> = b
        .iter()
        .filter(|(key, _)| key.as_str() != k)
        .map(|(key, v)| format!("{key}: {v}"))
        .collect();
    if params.is_empty() {
        name
    } else {
        format!("{name} {{{}}}", params.join(", "))
    }
}
