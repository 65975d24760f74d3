//! `mixbench schema`: JSON Schema of the suite format.

use super::EXIT_OK;
use crate::experiment::ExperimentConfig;
use crate::suite::Suite;

/// Prints the schema of suite files, with the experiment config schema under `$defs`.
pub fn run() -> anyhow::Result<i32> {
    let mut suite = serde_json::to_value(schemars::schema_for!(Suite))?;
    let exp = serde_json::to_value(schemars::schema_for!(ExperimentConfig))?;
    if let Some(defs) = suite
        .as_object_mut()
        .map(|o| o.entry("$defs").or_insert_with(|| serde_json::json!({})))
    {
        defs["ExperimentConfig"] = exp;
    }
    suite["description"] = serde_json::Value::String(
        "mixbench suite: `defaults`, experiment `overrides` and profile `overrides` are (partial) ExperimentConfig objects, deep-merged in that order".into(),
    );
    println!("{}", serde_json::to_string_pretty(&suite)?);
    Ok(EXIT_OK)
}
