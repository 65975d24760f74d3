//! Splitting a profile's cells over machines: `--shard I/N` takes a stable, cost-balanced share.
//!
//! Cells that train the same model (same training hash and seed) stay together. Groups are
//! assigned largest first to the least-loaded shard (longest-processing-time rule), with ties
//! broken by hash and seed, so every process computes the same split from the same suite.

use crate::error::{Error, Result};
use crate::suite::Cell;

/// One shard of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    /// From 0.
    pub(crate) index: usize,
    /// Number of shards.
    pub(crate) count: usize,
}

impl Shard {
    /// Parses `I/N` (0 <= I < N), or `auto`: from a Slurm array task
    /// (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`) or a
    /// Kubernetes Indexed Job (`JOB_COMPLETION_INDEX` of `MIXBENCH_SHARD_COUNT`).
    pub(crate) fn parse(arg: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard> {
        let bad = |why: String| Error::Config(format!("--shard {arg}: {why}"));
        let num = |k: &str, v: &str| -> Result<usize> {
            v.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("{k} = `{v}` is not a non-negative integer")))
        };
        let (index, count) = if arg == "auto" {
            if let (Some(id), Some(n)) = (env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT"))
            {
                let min = env("SLURM_ARRAY_TASK_MIN")
                    .map_or(Ok(0), |m| num("SLURM_ARRAY_TASK_MIN", &m))?;
                let id = num("SLURM_ARRAY_TASK_ID", &id)?;
                (
                    id.checked_sub(min).ok_or_else(|| {
                        bad("SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN".into())
                    })?,
                    num("SLURM_ARRAY_TASK_COUNT", &n)?,
                )
            } else if let (Some(i), Some(n)) =
                (env("JOB_COMPLETION_INDEX"), env("MIXBENCH_SHARD_COUNT"))
            {
                (
                    num("JOB_COMPLETION_INDEX", &i)?,
                    num("MIXBENCH_SHARD_COUNT", &n)?,
                )
            } else {
                return Err(bad(
                    "no shard in the environment: set SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (a Slurm array) or JOB_COMPLETION_INDEX and MIXBENCH_SHARD_COUNT (a Kubernetes Indexed Job), or give I/N".into(),
                ));
            }
        } else {
            let (i, n) = arg
                .split_once('/')
                .ok_or_else(|| bad("expected I/N such as 0/4, or auto".into()))?;
            (num("I", i)?, num("N", n)?)
        };
        if count == 0 || index >= count {
            return Err(bad(format!("shard {index} of {count}: need 0 <= I < N")));
        }
        Ok(Shard { index, count })
    }
}

/// The shard (0..count) of every cell.
pub(crate) fn assign(cells: &[Cell], count: usize) -> Vec<usize> {
    let count = count.max(1);
    // (cost, key, cell indices) per model.
    let mut groups: Vec<(f64, String, Vec<usize>)> = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        let key = format!("{}-s{}", c.training_hash, c.seed);
        match groups.iter_mut().find(|g| g.1 == key) {
            Some(g) => g.2.push(i),
            None => groups.push((c.cost, key, vec![i])),
        }
    }
    groups.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut load = vec![0f64; count];
    let mut out = vec![0usize; cells.len()];
    for (cost, _, members) in groups {
        let s = (0..count)
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        load[s] += cost;
        for i in members {
            out[i] = s;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(hash: &str, seed: u64, cost: f64) -> Cell {
        let config: crate::experiment::ExperimentConfig =
            serde_json::from_value(serde_json::json!({
                "dataset": {"name": "synthetic"}, "model": {"arch": "mlp"},
                "regularizer": {"name": "none"}, "optimizer": {"lr": 0.1},
                "epochs": 1, "batch_size": 2
            }))
            .unwrap();
        Cell {
            experiment: format!("e{hash}"),
            seed,
            plan: crate::experiment::Plan::of(&config).unwrap(),
            config,
            training_hash: hash.into(),
            evaluations: vec![],
            cost,
        }
    }

    #[test]
    fn parses_explicit_slurm_and_kubernetes_shards() {
        let none = |_: &str| None;
        assert_eq!(
            Shard::parse("1/3", &none).unwrap(),
            Shard { index: 1, count: 3 }
        );
        for bad in ["3/3", "1", "a/2", "0/0", "auto"] {
            assert!(Shard::parse(bad, &none).is_err(), "{bad}");
        }
        let slurm = |k: &str| match k {
            "SLURM_ARRAY_TASK_ID" => Some("5".to_string()),
            "SLURM_ARRAY_TASK_MIN" => Some("4".to_string()),
            "SLURM_ARRAY_TASK_COUNT" => Some("3".to_string()),
            _ => None,
        };
        assert_eq!(
            Shard::parse("auto", &slurm).unwrap(),
            Shard { index: 1, count: 3 }
        );
        let k8s = |k: &str| match k {
            "JOB_COMPLETION_INDEX" => Some("2".to_string()),
            "MIXBENCH_SHARD_COUNT" => Some("4".to_string()),
            _ => None,
        };
        assert_eq!(
            Shard::parse("auto", &k8s).unwrap(),
            Shard { index: 2, count: 4 }
        );
    }

    #[test]
    fn shards_balance_cost_keep_models_together_and_are_stable() {
        // Costs 8, 7, 6, 5, 4, 3 over 2 shards: LPT gives {8,5,4} = 17 and {7,6,3} = 16.
        let mut cells: Vec<Cell> = [8.0, 7.0, 6.0, 5.0, 4.0, 3.0]
            .iter()
            .enumerate()
            .map(|(i, &c)| cell(&format!("h{i}"), 0, c))
            .collect();
        // A second row that trains h0's model must share its shard.
        cells.push(cell("h0", 0, 8.0));
        let a = assign(&cells, 2);
        assert_eq!(a, vec![0, 1, 1, 0, 0, 1, 0]);
        let load = |s: usize| -> f64 {
            cells
                .iter()
                .zip(&a)
                .filter(|(_, x)| **x == s)
                .map(|(c, _)| c.cost)
                .sum()
        };
        assert_eq!(load(1), 16.0);
        // Stable under reordering of the cells.
        let mut rev = cells.clone();
        rev.reverse();
        let b = assign(&rev, 2);
        for (i, c) in rev.iter().enumerate() {
            let j = cells
                .iter()
                .position(|x| x.training_hash == c.training_hash)
                .unwrap();
            assert_eq!(b[i], a[j]);
        }
        // Every cell gets a shard below the count.
        assert!(assign(&cells, 5).iter().all(|&s| s < 5));
    }

    #[test]
    fn measured_hours_replace_the_relative_cost_and_move_the_split() {
        // Equal relative costs split four cells 2 and 2; measured hours 9, 1, 1, 1 put the
        // 9-hour cell alone.
        let mut cells: Vec<Cell> = (0..4).map(|i| cell(&format!("h{i}"), 0, 1.0)).collect();
        assert_eq!(assign(&cells, 2), vec![0, 1, 0, 1]);
        let hours = std::collections::BTreeMap::from([
            ("eh0".to_string(), 1.0),
            ("eh1".to_string(), 1.0),
            ("eh2".to_string(), 9.0),
            ("eh3".to_string(), 1.0),
        ]);
        crate::ops::measured_cost::apply(&mut cells, &hours).unwrap();
        assert_eq!(
            cells.iter().map(|c| c.cost).collect::<Vec<_>>(),
            [1.0, 1.0, 9.0, 1.0]
        );
        assert_eq!(assign(&cells, 2), vec![1, 1, 0, 1]);
        let mut fewer = hours.clone();
        fewer.remove("eh3");
        let e = crate::ops::measured_cost::apply(&mut cells, &fewer)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no hours for experiment `eh3` (1 cells without)"),
            "{e}"
        );
    }
}
