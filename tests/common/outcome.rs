//! What a stored record says about training and results, without its wall-clock fields: two
//! runs that computed the same bits give equal values.

use std::path::Path;

/// Losses and metrics of a record (plus the thread count), without timings.
pub fn outcome(record: &Path) -> serde_json::Value {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
    let curves: Vec<serde_json::Value> = r["curves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::json!([e["train_loss"], e["test"]]))
        .collect();
    serde_json::json!({"metrics": r["metrics"], "curves": curves, "threads": r["environment"]["threads"]})
}
