//! `mixbench estimate` end to end: every number it prints is either measured in a child process
//! at the real shape or follows from the measurements by the projection's arithmetic, which is
//! recomputed here from the JSON it prints.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const SUITE: &str = r#"id: est
title: "estimate test suite"
paper: {arxiv: "1806.05236v7", table: "0", caption: "test"}
metrics:
  - {name: clean.test_error, unit: "%", better: lower, tolerance: 0.5}
defaults:
  dataset: {name: synthetic, classes: 4, channels: 2, train_size: 90, test_size: 50, size: 8}
  model: {arch: mlp, hidden: [32]}
  regularizer: {name: none}
  optimizer: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.0001}
  epochs: 3
  eval_every: 2
  eval_batch_size: 20
  batch_size: 16
experiments:
  - {id: none, architecture: MLP, method: No Mixup}
  - {id: twin, architecture: MLP, method: No Mixup again}
  - id: mm
    architecture: MLP
    method: Manifold Mixup
    overrides: {regularizer: {name: manifold_mixup, alpha: 2.0, layers: [0, 1]}}
profiles:
  smoke: {description: "two seeds", seeds: [0, 1]}
  exploding: {description: "diverges at once", seeds: [0], overrides: {optimizer: {lr: 1.0e30, momentum: 0.0, nesterov: false, weight_decay: 0.0}}}
  big: {description: "more images, another optimizer", seeds: [0], overrides: {dataset: {train_size: 200}, optimizer: {lr: 0.05}}}
  huge: {description: "a layer that cannot fit in 4 GiB", seeds: [0], overrides: {model: {hidden: [20000, 20000]}}}
"#;

fn estimate(dir: &Path, profile: &str) -> (i32, String, String) {
    run(
        dir,
        &["--profile", profile, "--steps", "2", "--format", "json"],
    )
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mixbench"))
        .current_dir(dir)
        .args(["estimate", "est"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"))
}

#[test]
fn shapes_are_measured_once_and_cells_projected_from_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("suites")).unwrap();
    std::fs::write(dir.path().join("suites/est.yaml"), SUITE).unwrap();
    let (code, out, err) = estimate(dir.path(), "smoke");
    assert_eq!(code, 0, "{err}");
    let est: Value = serde_json::from_str(&out).unwrap();
    // none and twin train the same shape (and the same model): two shapes, not three.
    let shapes = est["shapes"].as_array().unwrap();
    assert_eq!(shapes.len(), 2, "{out}");
    for s in shapes {
        let m = &s[1]["Ok"];
        assert!(
            f(m, "step_seconds") > 0.0 && f(m, "eval_batch_seconds") > 0.0,
            "{m}"
        );
        assert_eq!(m["steps_timed"], 2);
        // The model file holds the MLP's 2·8·8·32 + 32 + 32·4 + 4 = 4260 f32 parameters.
        assert!(m["model_bytes"].as_u64().unwrap() >= 4260 * 4, "{m}");
        assert!(
            m["checkpoint_bytes"].as_u64() > m["model_bytes"].as_u64(),
            "{m}"
        );
        if cfg!(target_os = "linux") {
            assert!(m["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{m}");
        }
    }
    let cells = est["cells"].as_array().unwrap();
    let ids: Vec<&str> = cells
        .iter()
        .map(|c| c["experiment"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["none", "twin", "mm"]);
    let mut total = 0.0;
    for c in cells {
        let m = &shapes[c["shape"].as_u64().unwrap() as usize][1]["Ok"];
        // 90 images at batch 16: 5 full batches and one of 10. Scored after epochs 2 and 3,
        // 50 test images in batches of 20: 3 batches each time.
        assert_eq!(
            (
                c["steps_per_epoch"].as_u64(),
                c["evaluated_epochs"].as_u64()
            ),
            (Some(6), Some(2))
        );
        assert_eq!(c["eval_batches"], 3);
        assert_eq!(c["data_bytes"], (90 + 50) * 2 * 8 * 8);
        assert_eq!(c["seeds"], 2);
        let want =
            (3.0 * 6.0 * f(m, "step_seconds") + 2.0 * 3.0 * f(m, "eval_batch_seconds")) / 3600.0;
        assert!((f(c, "hours_per_seed") - want).abs() <= 1e-12 * want, "{c}");
        // twin's models are none's: trained once, counted once.
        let seeds_to_train = if c["experiment"] == "twin" { 0.0 } else { 2.0 };
        assert!(
            (f(c, "hours") - seeds_to_train * want).abs() <= 1e-12 * want,
            "{c}"
        );
        total += f(c, "hours");
    }
    assert!((f(&est, "total_hours") - total).abs() <= 1e-12 * total);
    assert_eq!(cells[0]["shape"], 0);
    assert_eq!(cells[1]["shape"], 0);
    assert_eq!(cells[2]["shape"], 1);
}

#[test]
fn a_shape_that_cannot_be_measured_is_reported_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("suites")).unwrap();
    std::fs::write(dir.path().join("suites/est.yaml"), SUITE).unwrap();
    let (code, out, err) = estimate(dir.path(), "exploding");
    assert_eq!(code, 2, "{out}\n{err}");
    let est: Value = serde_json::from_str(&out).unwrap();
    let failed = est["shapes"][0][1]["Err"].as_str().unwrap_or_default();
    assert!(failed.contains("diverged"), "{out}");
    assert!(
        est["cells"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["shape"] != 0),
        "{out}"
    );
}

fn suite_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("suites")).unwrap();
    std::fs::write(dir.path().join("suites/est.yaml"), SUITE).unwrap();
    dir
}

#[test]
fn listing_groups_by_timing_shape_across_profiles() {
    let dir = suite_dir();
    let (code, out, err) = run(dir.path(), &["--profile", "smoke,big", "--list"]);
    assert_eq!(code, 0, "{err}");
    // smoke: none and twin share a shape, mm has its own; big again (other size, optimizer).
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 4, "{out}");
    let cells: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(cells, ["4 cells", "2 cells", "2 cells", "1 cells"], "{out}");
    assert!(rows[2][2].contains("200 train images"), "{out}");
}

#[test]
fn the_check_runs_each_geometry_and_model_once_with_its_most_demanding_cell() {
    let dir = suite_dir();
    let (code, out, err) = run(
        dir.path(),
        &["--profile", "smoke,big", "--check", "--format", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    // Same geometry and model: one run for 3 experiments x 2 seeds + 3 x 1 seed, made with
    // the most images (big) and the regularizer that mixes a hidden layer (mm).
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["cells"], 9);
    let shape = rows[0]["shape"].as_str().unwrap();
    assert!(
        shape.contains("200 train images") && shape.contains("manifold_mixup"),
        "{shape}"
    );
    assert_eq!(rows[0]["result"]["Ok"]["steps_timed"], 1, "{out}");
}

#[cfg(target_os = "linux")]
#[test]
fn the_check_fails_on_a_shape_that_does_not_fit_in_memory() {
    let dir = suite_dir();
    // Its own temporary folder, to see what the measurements leave there.
    let tmp = tempfile::tempdir().unwrap();
    // 4 GiB of address space: the smoke shape fits, two 20000-wide layers (1.6 GB of weights,
    // as much again for gradients and momentum) do not.
    let out = Command::new("sh")
        .current_dir(dir.path())
        .env("TMPDIR", tmp.path())
        .arg("-c")
        .arg(format!(
            "ulimit -v 4194304 && exec '{}' estimate est --profile smoke,huge --check",
            env!("CARGO_BIN_EXE_mixbench")
        ))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(rows[1].ends_with("| ran |"), "{stdout}");
    assert!(
        rows[2].contains("hidden: [20000,20000]") && rows[2].contains("**failed**"),
        "{stdout}"
    );
    assert!(stdout.contains("1 of 2 shapes ran"), "{stdout}");
    // The child that ran out of memory was killed before it could clean up: its checkpoint
    // folder goes with the parent's.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left in the temporary folder: {left:?}");
}
