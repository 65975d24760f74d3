//! Measured training hours per experiment, read from `estimate --format json`, which replace
//! the relative cost (epochs × images × parameters) when shards are balanced.
//!
//! `plan --costs FILE` reads the file and writes the hours into the emitted command as
//! `--shard-costs '{"experiment": hours, ...}'`, so every task computes the same split as the
//! plan's header without reading any file. f64 values round-trip exactly through JSON, so the
//! split the tasks compute is the header's, bit for bit.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::suite::Cell;

/// Hours to train one seed of each experiment, and where they were measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MeasuredCosts {
    /// Experiment id → projected hours per seed.
    pub(crate) hours: BTreeMap<String, f64>,
    /// The devices the shapes were measured on (as provenance names them), joined by `, `.
    pub(crate) device: String,
}

/// The rows of `suite` under `profile` in the JSON that `estimate --format json` printed.
pub(crate) fn from_estimate_file(path: &Path, suite: &str, profile: &str) -> Result<MeasuredCosts> {
    let bad = |why: String| Error::Config(format!("--costs {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "not JSON ({e}); expected the output of `mixbench estimate {suite} --profile {profile} --format json`"
        ))
    })?;
    let rows = v["cells"].as_array().ok_or_else(|| {
        bad("no `cells` array: expected the output of `mixbench estimate ... --format json`".into())
    })?;
    let mut hours = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        if row["suite"].as_str() != Some(suite) || row["profile"].as_str() != Some(profile) {
            continue;
        }
        let exp = row["experiment"]
            .as_str()
            .ok_or_else(|| bad(format!("cells[{i}] has no `experiment` string")))?;
        let h = row["hours_per_seed"]
            .as_f64()
            .filter(|h| h.is_finite() && *h >= 0.0)
            .ok_or_else(|| {
                bad(format!(
                    "cells[{i}] (`{exp}`): `hours_per_seed` must be a finite number >= 0"
                ))
            })?;
        hours.insert(exp.to_string(), h);
    }
    if hours.is_empty() {
        return Err(bad(format!(
            "no row for suite `{suite}`, profile `{profile}`: run `mixbench estimate {suite} --profile {profile} --format json` on the machine type the tasks run on"
        )));
    }
    let mut devices: Vec<&str> = v["shapes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s[1]["Ok"]["device"].as_str())
        .collect();
    devices.sort_unstable();
    devices.dedup();
    Ok(MeasuredCosts {
        hours,
        device: if devices.is_empty() {
            "an unnamed device".into()
        } else {
            devices.join(", ")
        },
    })
}

/// The hours as the `--shard-costs` argument: one JSON object, experiment → hours.
pub(crate) fn to_argument(hours: &BTreeMap<String, f64>) -> String {
    serde_json::to_string(hours).unwrap_or_default()
}

/// Parses a `--shard-costs` argument.
pub(crate) fn parse_argument(arg: &str) -> Result<BTreeMap<String, f64>> {
    let hours: BTreeMap<String, f64> = serde_json::from_str(arg).map_err(|e| {
        Error::Config(format!(
            "--shard-costs: {e}; expected a JSON object of experiment id to hours, as `mixbench plan --costs` writes it"
        ))
    })?;
    if let Some((exp, h)) = hours.iter().find(|(_, h)| !(h.is_finite() && **h >= 0.0)) {
        return Err(Error::Config(format!(
            "--shard-costs: `{exp}` has {h} hours; expected a finite number >= 0"
        )));
    }
    Ok(hours)
}

/// Sets every cell's cost to its experiment's measured hours; a cell without one is an error,
/// since a split from partly measured, partly relative costs would balance nothing.
pub(crate) fn apply(cells: &mut [Cell], hours: &BTreeMap<String, f64>) -> Result<()> {
    let missing: Vec<&str> = cells
        .iter()
        .filter(|c| !hours.contains_key(&c.experiment))
        .map(|c| c.experiment.as_str())
        .collect();
    if let Some(first) = missing.first() {
        return Err(Error::Config(format!(
            "the measured costs have no hours for experiment `{first}` ({} cells without): rerun `mixbench estimate` for this suite and profile and plan again",
            missing.len()
        )));
    }
    for c in cells {
        c.cost = hours[&c.experiment];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_suite_and_profile_rows_and_the_device() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("est.json");
        std::fs::write(
            &p,
            r#"{"shapes": [["a", {"Ok": {"device": "cuda:0 (H100)"}}], ["b", {"Err": "oom"}], ["c", {"Ok": {"device": "cuda:0 (H100)"}}]],
                "cells": [
                  {"suite": "t1", "profile": "paper", "experiment": "x", "hours_per_seed": 2.5},
                  {"suite": "t1", "profile": "paper", "experiment": "y", "hours_per_seed": 0.1},
                  {"suite": "t1", "profile": "paper-code", "experiment": "x", "hours_per_seed": 9.0},
                  {"suite": "t2", "profile": "paper", "experiment": "z", "hours_per_seed": 7.0}],
                "total_hours": 1.0}"#,
        )
        .unwrap();
        let m = from_estimate_file(&p, "t1", "paper").unwrap();
        assert_eq!(
            m.hours,
            BTreeMap::from([("x".to_string(), 2.5), ("y".to_string(), 0.1)])
        );
        assert_eq!(m.device, "cuda:0 (H100)");
        let e = from_estimate_file(&p, "t1", "smoke")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no row for suite `t1`, profile `smoke`"), "{e}");
        std::fs::write(&p, r#"{"cells": [{"suite": "t1", "profile": "paper", "experiment": "x", "hours_per_seed": -1}]}"#).unwrap();
        let e = from_estimate_file(&p, "t1", "paper")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cells[0] (`x`)"), "{e}");
        std::fs::write(&p, "# a markdown table").unwrap();
        let e = from_estimate_file(&p, "t1", "paper")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not JSON"), "{e}");
    }

    #[test]
    fn the_argument_round_trips_every_bit_and_refuses_bad_hours() {
        let hours = BTreeMap::from([
            ("a".to_string(), 0.1 + 0.2),
            ("b".to_string(), 1.0 / 3.0),
            ("c".to_string(), 0.0),
        ]);
        assert_eq!(parse_argument(&to_argument(&hours)).unwrap(), hours);
        for bad in [r#"{"a": -0.5}"#, r#"["a"]"#, r#"{"a": "1"}"#] {
            assert!(parse_argument(bad).is_err(), "{bad}");
        }
    }
}
