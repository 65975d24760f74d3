//! End to end through the binary: reproduce, bless, skip finished cells, detect regressions.

mod common;

use common::outcome::outcome;
use std::path::Path;
use std::process::Command;

const SUITE: &str = r#"id: tiny
title: "tiny end-to-end suite"
paper: {arxiv: "1806.05236v7", table: "0", caption: "test"}
metrics:
  - {name: clean.test_error, unit: "%", better: lower, tolerance: 0.5}
  - {name: clean.test_nll, better: lower, tolerance: 0.01}
defaults:
  dataset: {name: synthetic, classes: 4, train_size: 64, test_size: 32, size: 8}
  model: {arch: mlp, hidden: [32]}
  regularizer: {name: none}
  optimizer: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.0001}
  epochs: 2
  batch_size: 16
experiments:
  - id: none
    architecture: MLP
    method: No Mixup
    paper: {clean.test_error: "1.00 ± 0.1"}
  - id: mm
    architecture: MLP
    method: Manifold Mixup
    overrides: {regularizer: {name: manifold_mixup, alpha: 2.0, layers: [0, 1]}}
profiles:
  smoke: {description: "tiny", seeds: [0]}
"#;

fn mixbench(dir: &Path, args: &[&str]) -> (i32, String, String) {
    mixbench_env(dir, args, &[])
}

/// Runs the binary in `dir` with extra environment variables; (exit code, stdout, stderr).
fn mixbench_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mixbench"))
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn reproduce_bless_skip_and_regression_exit_codes() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    std::fs::write(d.path().join("suites/tiny.yaml"), SUITE).unwrap();

    let (code, out, err) = mixbench(d.path(), &["reproduce", "tiny", "--bless"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(d.path().join("baselines/tiny.smoke.json").exists());
    for ext in ["md", "html", "csv", "parquet"] {
        assert!(
            d.path().join(format!("reports/tiny-smoke.{ext}")).exists(),
            "{ext}"
        );
    }
    assert!(
        out.contains("These numbers are not a reproduction of the paper's"),
        "{out}"
    );
    // Before the bless there was no baseline: the verdict says nothing was compared.
    assert!(
        out.contains("Nothing was compared: no value of this run has a baseline"),
        "{out}"
    );
    assert!(!out.contains("No regression"), "{out}");
    let rec_path = d.path().join("results/tiny/smoke/none-s0.json");
    let first = std::fs::read_to_string(&rec_path).unwrap();

    // Second run: every model and evaluation is reused, the comparison holds.
    let (code, out, err) = mixbench(d.path(), &["reproduce", "tiny"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(err.matches("reused the stored model").count(), 2, "{err}");
    assert!(
        err.contains("trained 0 model(s), reused 2, ran 0 evaluation(s), reused 2"),
        "{err}"
    );
    // On CPU against a CPU baseline every value is bit-identical.
    assert!(out.contains("| = |"), "{out}");
    assert!(!out.contains("| ✓ |"), "{out}");
    assert!(
        out.contains("No regression and nothing incomparable: 8 value(s) compared with the baseline, 8 of them bit-identical"),
        "{out}"
    );

    // A model whose artifact is gone is trained again; the other is reused.
    let mm: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("results/tiny/smoke/mm-s0.json")).unwrap(),
    )
    .unwrap();
    let mm_hash = mm["training_hash"].as_str().unwrap().to_string();
    std::fs::remove_dir_all(d.path().join("results/models").join(&mm_hash)).unwrap();
    let (code, _, err) = mixbench(d.path(), &["reproduce", "tiny"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("trained 1 model(s), reused 1"), "{err}");

    // A truncated weights file is detected, reported and retrained, never used.
    let weights = d
        .path()
        .join("results/models")
        .join(&mm_hash)
        .join("s0/model.safetensors");
    let len = std::fs::metadata(&weights).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&weights)
        .unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    // With --no-train the run refuses (exit 2) and says why.
    let (code, _, err) = mixbench(d.path(), &["reproduce", "tiny", "--no-train"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("truncated or replaced"), "{err}");
    let (code, _, err) = mixbench(d.path(), &["reproduce", "tiny"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("truncated or replaced") && err.contains("retraining"),
        "{err}"
    );
    assert!(err.contains("trained 1 model(s), reused 1"), "{err}");
    let rec = std::fs::read_to_string(d.path().join("results/tiny/smoke/mm-s0.json")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(&rec).unwrap();
    assert_eq!(
        rec["metrics"], mm["metrics"],
        "retraining gives the same numbers"
    );

    // --force reruns and gives identical metrics.
    let (code, _, err) = mixbench(d.path(), &["reproduce", "tiny", "--force"]);
    assert_eq!(code, 0, "{err}");
    let again = std::fs::read_to_string(&rec_path).unwrap();
    let metrics =
        |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["metrics"].clone();
    assert_eq!(metrics(&first), metrics(&again));

    // Perturb the baseline so this run looks worse: exit code 1.
    let bpath = d.path().join("baselines/tiny.smoke.json");
    let mut b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bpath).unwrap()).unwrap();
    let m = b["experiments"]["none"]["metrics"]["clean.test_error"]["mean"]
        .as_f64()
        .unwrap();
    b["experiments"]["none"]["metrics"]["clean.test_error"]["mean"] = serde_json::json!(m - 10.0);
    std::fs::write(&bpath, serde_json::to_vec(&b).unwrap()).unwrap();
    let (code, out, _) = mixbench(d.path(), &["report", "tiny"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗"), "{out}");

    // A baseline from another config is "not comparable", never compared.
    b["experiments"]["none"]["training_hash"] = serde_json::json!("0000");
    std::fs::write(&bpath, serde_json::to_vec(&b).unwrap()).unwrap();
    // ... and comparing nothing is not a pass: exit 4.
    let (code, out, _) = mixbench(d.path(), &["report", "tiny"]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("≠") && out.contains("training config differs"),
        "{out}"
    );

    // Bad usage exits 2 with a message.
    let (code, _, err) = mixbench(d.path(), &["reproduce", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no suite `nope`"), "{err}");
}

const CONV_SUITE: &str = r#"id: threads
title: "thread-count determinism"
paper: {arxiv: "1806.05236v7", table: "0", caption: "test"}
metrics:
  - {name: clean.test_error, unit: "%", better: lower, tolerance: 0.5}
defaults:
  dataset: {name: synthetic, classes: 4, train_size: 48, test_size: 24, size: 8}
  model: {arch: preactresnet18, width: 0.125}
  regularizer: {name: manifold_mixup, alpha: 2.0, layers: [0, 1, 2]}
  optimizer: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.0001}
  epochs: 2
  batch_size: 12
experiments:
  - {id: pre18-mm, architecture: PreActResNet18, method: Manifold Mixup}
profiles:
  smoke: {description: "tiny", seeds: [3]}
"#;

/// The same seed gives bit-identical losses and metrics with 1 and with 2 threads (convolution,
/// matmul and BatchNorm included).
#[test]
fn one_and_two_threads_give_identical_bits() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    std::fs::write(d.path().join("suites/threads.yaml"), CONV_SUITE).unwrap();
    let mut runs = Vec::new();
    for threads in ["1", "2"] {
        let results = format!("r{threads}");
        let (code, out, err) = mixbench_env(
            d.path(),
            &["reproduce", "threads", "--results-dir", &results],
            &[("RAYON_NUM_THREADS", threads)],
        );
        assert_eq!(code, 0, "{out}\n{err}");
        runs.push(outcome(
            &d.path()
                .join(format!("r{threads}/threads/smoke/pre18-mm-s3.json")),
        ));
    }
    assert_eq!(runs[0]["threads"], 1);
    assert_eq!(runs[1]["threads"], 2);
    assert_eq!(runs[0]["metrics"], runs[1]["metrics"]);
    assert_eq!(runs[0]["curves"], runs[1]["curves"]);
    assert!(runs[0]["curves"][0][0].as_f64().unwrap() > 0.0);
}

const EVAL_SUITE: &str = r#"id: evals
title: "evaluation stage"
paper: {arxiv: "1806.05236v7", table: "0", caption: "test"}
metrics:
  - {name: "fgsm_*.accuracy", unit: "%", better: higher, tolerance: 1.0}
  - {name: clean.top1_acc, unit: "%", better: higher, tolerance: 1.0}
defaults:
  dataset: {name: synthetic, classes: 4, train_size: 64, test_size: 32, size: 8}
  model: {arch: mlp, hidden: [32]}
  regularizer: {name: none}
  optimizer: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.0001}
  epochs: 2
  batch_size: 16
  evaluations:
    - {name: fgsm, epsilon: [0.1]}
experiments:
  - id: none
    architecture: MLP
    method: No Mixup
  - id: unstable
    architecture: MLP
    method: diverging learning rate
    overrides: {optimizer: {lr: LR}}
profiles:
  smoke: {description: "tiny", seeds: [0]}
"#;

#[test]
fn adding_an_epsilon_evaluates_without_training() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    let path = d.path().join("suites/evals.yaml");
    std::fs::write(&path, EVAL_SUITE.replace("LR", "0.05")).unwrap();
    let (code, out, err) = mixbench(d.path(), &["reproduce", "evals", "--bless"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("trained 2 model(s), reused 0, ran 4 evaluation(s)"),
        "{err}"
    );
    assert!(
        out.contains("fgsm_0.1.accuracy") && !out.contains("fgsm_0.3.accuracy"),
        "{out}"
    );
    let rec = |name: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(d.path().join(format!("results/evals/smoke/{name}-s0.json")))
                .unwrap(),
        )
        .unwrap()
    };
    let before = rec("none");

    // One more ε: `evaluate` runs only it, on the stored models, and the report gains a column.
    std::fs::write(
        &path,
        EVAL_SUITE
            .replace("LR", "0.05")
            .replace("epsilon: [0.1]", "epsilon: [0.1, 0.3]"),
    )
    .unwrap();
    let (code, out, err) = mixbench(d.path(), &["evaluate", "evals"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("trained 0 model(s), reused 2, ran 2 evaluation(s), reused 4"),
        "{err}"
    );
    assert!(out.contains("fgsm_0.3.accuracy"), "{out}");
    // Clean metrics are shown at the final and at the best epoch, each with Δ to the paper.
    assert!(
        out.contains("clean.top1_acc (best epoch) (%) paper"),
        "{out}"
    );
    assert!(out.contains("| Δ paper |"), "{out}");
    // The new column has no baseline yet: "–", not "≠" (exit 0 above).
    assert!(
        out.contains("No regression and nothing incomparable:")
            && out.contains("without a baseline."),
        "{out}"
    );
    let after = rec("none");
    assert_eq!(after["training_hash"], before["training_hash"]);
    assert_eq!(after["curves"], before["curves"]);
    assert_eq!(
        after["metrics"]["fgsm_0.1.accuracy"],
        before["metrics"]["fgsm_0.1.accuracy"]
    );
    let clean = after["metrics"]["clean.top1_acc"].as_f64().unwrap();
    let small = after["metrics"]["fgsm_0.1.accuracy"].as_f64().unwrap();
    let large = after["metrics"]["fgsm_0.3.accuracy"].as_f64().unwrap();
    assert!(large <= small && small <= clean, "{clean} {small} {large}");
    // The existing column still compares against the baseline; the new one has none.
    assert!(out.contains("✓"), "{out}");
}

#[test]
fn a_diverging_row_is_reported_and_the_others_still_run() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    std::fs::write(
        d.path().join("suites/evals.yaml"),
        EVAL_SUITE
            .replace("LR", "1.0e30")
            .replace(
                "profiles:",
                "  - id: after\n    architecture: MLP\n    method: a row after the diverging one\nprofiles:",
            ),
    )
    .unwrap();
    let (code, out, err) = mixbench(d.path(), &["reproduce", "evals"]);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(err.contains("DIVERGED in training"), "{err}");
    assert!(err.contains("1 experiment(s) diverged"), "{err}");
    // The rows before and after the diverging one ran and have numbers (`after` trains the
    // same model as `none`, so it is reused).
    assert!(err.contains("trained 2 model(s), reused 1"), "{err}");
    assert!(
        err.contains("[3/3] after s0: reused the stored model"),
        "{err}"
    );
    let rec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("results/evals/smoke/unstable-s0.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rec["diverged"]["stage"], "training");
    assert!(
        rec["diverged"]["epoch"].is_u64() && rec["diverged"]["step"].is_u64(),
        "{rec}"
    );
    assert!(out.contains("⚠"), "{out}");
    assert!(out.contains("diverged in training at epoch"), "{out}");
    // The diverged row is never averaged as a number.
    assert!(rec["metrics"].as_object().unwrap().is_empty(), "{rec}");
}

/// An evaluation whose outputs are not finite (FGSM with ε = 1e300 turns the inputs into
/// infinities) marks the cell diverged at that evaluation, not in training: stage = the
/// evaluation's id, no epoch or step, the count of non-finite outputs as the reason.
#[test]
fn a_non_finite_evaluation_marks_the_cell_diverged_at_that_evaluation() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    std::fs::write(
        d.path().join("suites/evals.yaml"),
        EVAL_SUITE.replace("LR", "0.05").replace(
            "- {name: fgsm, epsilon: [0.1]}",
            "- {name: fgsm, epsilon: [0.1]}\n    - {name: fgsm, id: fgsm_huge, epsilon: 1.0e300}",
        ),
    )
    .unwrap();
    let (code, out, err) = mixbench(d.path(), &["reproduce", "evals"]);
    assert_eq!(code, 3, "{out}\n{err}");
    for name in ["none", "unstable"] {
        let rec: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.path().join(format!("results/evals/smoke/{name}-s0.json")))
                .unwrap(),
        )
        .unwrap();
        let dv = &rec["diverged"];
        assert_eq!(dv["stage"], "fgsm_huge", "{rec}");
        assert!(dv["epoch"].is_null() && dv["step"].is_null(), "{rec}");
        assert_eq!(
            dv["reason"], "32 of 32 outputs are NaN or infinite",
            "{rec}"
        );
    }
}

/// `diff` judges with the profile's tolerances, as `reproduce` does: a change of 5 points is
/// within the smoke profile's 20 (the suite default is 0.5), one of 25 is a regression.
#[test]
fn diff_applies_the_profiles_tolerances() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    let suite = SUITE.replace(
        r#"smoke: {description: "tiny", seeds: [0]}"#,
        r#"smoke: {description: "tiny", seeds: [0], tolerances: {clean.test_error: 20.0, clean.test_nll: 5.0}}"#,
    );
    std::fs::write(d.path().join("suites/tiny.yaml"), suite).unwrap();
    let (code, out, err) = mixbench(d.path(), &["reproduce", "tiny"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let a = d.path().join("results/tiny/smoke");
    let b = d.path().join("b");
    std::fs::create_dir(&b).unwrap();
    let shifted = |by: f64| {
        for e in std::fs::read_dir(&a).unwrap().flatten() {
            let mut r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
            let v = r["metrics"]["clean.test_error"].as_f64().unwrap();
            r["metrics"]["clean.test_error"] = serde_json::json!(v + by);
            std::fs::write(b.join(e.file_name()), serde_json::to_vec(&r).unwrap()).unwrap();
        }
    };
    let (sa, sb) = (a.to_str().unwrap(), b.to_str().unwrap());
    shifted(5.0);
    let (code, out, err) = mixbench(d.path(), &["diff", sa, sb]);
    assert_eq!(
        code, 0,
        "a 5-point change is within the profile's 20\n{out}\n{err}"
    );
    shifted(25.0);
    let (code, out, _) = mixbench(d.path(), &["diff", sa, sb]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗"), "{out}");
}

/// `compare`: bad input is exit 2 before anything trains; a run puts the new method beside
/// the blessed baseline with seeds from the profile, and a rerun trains nothing.
#[test]
fn compare_trains_each_row_once_and_reports_beside_the_baseline() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    let two_seeds = SUITE.replace("seeds: [0]", "seeds: [0, 1]");
    std::fs::write(d.path().join("suites/tiny.yaml"), &two_seeds).unwrap();
    let with = "{name: cutout, length: 4}";
    let (code, _, err) = mixbench(d.path(), &["compare", "tiny", "--with", with]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no blessed baseline"), "{err}");
    let (code, _, err) = mixbench(d.path(), &["reproduce", "tiny", "--bless"]);
    assert_eq!(code, 0, "{err}");
    for bad in ["{name: shakedrop}", "{name: cutout}", "[1]"] {
        let (code, _, err) = mixbench(d.path(), &["compare", "tiny", "--with", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("--with"), "{err}");
    }
    // Only the suite's two rows have models: nothing trained for a bad --with.
    let models = || d.path().join("results/models").read_dir().unwrap().count();
    assert_eq!(models(), 2);
    let (code, out, err) = mixbench(d.path(), &["compare", "tiny", "--with", with]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Both rows differ only in their regularizer: one new row, two seeds.
    assert!(err.contains("trained 2 model(s) for 1 row(s)"), "{err}");
    assert_eq!(models(), 3);
    assert!(
        out.contains("| | No Mixup |") && out.contains("| | Manifold Mixup |"),
        "{out}"
    );
    assert!(out.contains("**cutout (length = 4)** (new)"), "{out}");
    let stem = std::fs::read_dir(d.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .find(|n| n.starts_with("tiny-with-cutout-") && n.ends_with("-smoke.json"))
        .expect("comparison json");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("reports").join(&stem)).unwrap(),
    )
    .unwrap();
    let row = &json["rows"][0];
    assert_eq!(row["new"]["clean.test_error"]["n"], 2);
    // The new row is the mean of the new method's own records, not of another experiment's.
    let new = row["new"]["clean.test_error"]["mean"].as_f64().unwrap();
    let derived = stem.trim_end_matches("-smoke.json");
    let own: Vec<f64> = std::fs::read_dir(d.path().join("results").join(derived).join("smoke"))
        .unwrap()
        .map(|e| {
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
            r["metrics"]["clean.test_error"].as_f64().unwrap()
        })
        .collect();
    assert_eq!(own.len(), 2);
    assert!(
        (new - (own[0] + own[1]) / 2.0).abs() < 1e-12,
        "{new} vs {own:?}"
    );
    let against = row["against"].as_array().unwrap();
    assert_eq!(against.len(), 2);
    for a in against {
        let m = &a["metrics"][0];
        let base = m["baseline"]["mean"].as_f64().unwrap();
        assert!((m["delta"].as_f64().unwrap() - (new - base)).abs() < 1e-9);
        let v = m["verdict"].as_str().unwrap();
        let text = match v {
            "better" => "better",
            "worse" => "worse",
            "no_significant_difference" => "no significant difference",
            other => panic!("{other}"),
        };
        // The Markdown row of this baseline method ends with the verdict's words.
        let line = format!("| | {} |", a["method"].as_str().unwrap());
        assert!(
            out.lines()
                .any(|l| l.starts_with(&line) && l.ends_with(&format!("| {text} |"))),
            "{line} … {text}\n{out}"
        );
    }
    assert!(
        std::fs::read_to_string(
            d.path()
                .join("reports")
                .join(stem.replace(".json", ".html"))
        )
        .unwrap()
        .contains("<svg")
    );
    let (code, _, err) = mixbench(d.path(), &["compare", "tiny", "--with", with]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("trained 0 model(s)"), "{err}");

    // A baseline blessed on another dataset (same training config) is shown, never judged.
    let path = d.path().join("baselines/tiny.smoke.json");
    let mut base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    base["experiments"]["none"]["dataset_fingerprint"] = "0".repeat(64).into();
    std::fs::write(&path, serde_json::to_string(&base).unwrap()).unwrap();
    let (code, out, err) = mixbench(d.path(), &["compare", "tiny", "--with", with]);
    assert_eq!(code, 0, "{err}");
    let stale: Vec<&str> = out
        .lines()
        .filter(|l| l.ends_with("| ≠ baseline is stale |"))
        .collect();
    // One row per compared metric, all of them No Mixup's; Manifold Mixup is still judged.
    assert!(!stale.is_empty(), "{out}");
    assert!(
        stale.iter().all(|l| l.starts_with("| | No Mixup |")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("| | Manifold Mixup |") && !l.contains("stale")),
        "{out}"
    );
}

/// A suite with an error anywhere trains nothing: the error is exit 2 before the first cell.
#[test]
fn a_bad_suite_trains_nothing() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    let bad = SUITE.replace(
        "profiles:",
        "  - id: late-bad\n    architecture: MLP\n    method: x\n    overrides: {regularizer: {name: manifold_mixup, alpha: 2.0, layers: [5]}}\nprofiles:",
    );
    std::fs::write(d.path().join("suites/tiny.yaml"), bad).unwrap();
    let (code, _, err) = mixbench(d.path(), &["reproduce", "tiny"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("layer 5 is not a mix point") && err.contains("late-bad"),
        "{err}"
    );
    assert!(!d.path().join("results").exists(), "nothing may be written");
}

/// `reproduce --history` appends one file per run; `history` lists the runs and the HTML report
/// charts the trend; a run that cannot be compared with its baseline (≠) exits 4.
#[test]
fn history_keeps_every_run_and_the_report_charts_it() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    std::fs::write(d.path().join("suites/tiny.yaml"), SUITE).unwrap();
    let (code, _, err) = mixbench(d.path(), &["reproduce", "tiny", "--bless"]);
    assert_eq!(code, 0, "{err}");
    // The baseline is seed 0 on CPU, so a CPU run of seed 0 is bit-identical (exit 0) and any
    // other seed differs in some bit, which against a CPU baseline is a regression (exit 1).
    for (seeds, expected) in [("0", 0), ("1", 1), ("2", 1)] {
        let (code, out, err) = mixbench(
            d.path(),
            &["reproduce", "tiny", "--seeds", seeds, "--history", "hist"],
        );
        assert_eq!(code, expected, "seed {seeds}\n{out}\n{err}");
        assert!(err.contains("to the history"), "{err}");
        if expected == 1 {
            assert!(out.contains("| ✗ |"), "{out}");
            assert!(
                err.contains("regressed against baselines/tiny.smoke.json"),
                "{err}"
            );
        }
    }
    let files = std::fs::read_dir(d.path().join("hist/tiny/smoke"))
        .unwrap()
        .count();
    assert_eq!(files, 3);
    let (code, out, err) = mixbench(d.path(), &["history", "tiny", "--history-dir", "hist"]);
    // Seeds 0, 1, 2 give test errors 75.0, 71.875, 87.5 (no mixup): run 1 is better than the
    // level, run 2 worse, so neither move is confirmed by the next run and there is no step.
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("regression at run"), "{out}");
    assert!(!out.contains("improvement at run"), "{out}");
    assert!(out.contains("tiny — profile `smoke`: 3 runs"), "{out}");
    assert!(out.contains("| none | clean.test_error |"), "{out}");
    let html = std::fs::read_to_string(d.path().join("reports/tiny-smoke.html")).unwrap();
    assert!(
        html.contains("<h2>Trends</h2>"),
        "the last report charts the history"
    );
    // Changing the smoke config without re-blessing: nothing can be compared, exit 4.
    std::fs::write(
        d.path().join("suites/tiny.yaml"),
        SUITE.replace("epochs: 2", "epochs: 3"),
    )
    .unwrap();
    let (code, _, err) = mixbench(d.path(), &["reproduce", "tiny"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("re-bless"), "{err}");
}

/// A model stored by code of an older numerics version is never reused: `reproduce` names it as
/// stale and retrains, `gc` lists it and `gc --remove` deletes it.
#[test]
fn stale_models_are_reported_retrained_and_collected() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    std::fs::write(d.path().join("suites/tiny.yaml"), SUITE).unwrap();
    let (code, _, err) = mixbench(d.path(), &["reproduce", "tiny"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = mixbench(d.path(), &["gc"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("0 model(s) and 0 record(s)"), "{err}");

    // Make `none` look as if version-0 code had trained it: its folder under the version-0
    // hash, its provenance saying version 0.
    let ls = mixbench::suite::load(&d.path().join("suites"), "tiny").unwrap();
    let cells = mixbench::suite::resolve(&ls, "smoke", None).unwrap();
    let cell = cells.iter().find(|c| c.experiment == "none").unwrap();
    let old_hash = mixbench::suite::resolve::training_hash_under(&cell.config, 0);
    assert_ne!(old_hash, cell.training_hash);
    let models = d.path().join("results/models");
    std::fs::create_dir_all(models.join(&old_hash)).unwrap();
    let old_dir = models.join(&old_hash).join("s0");
    std::fs::rename(models.join(&cell.training_hash).join("s0"), &old_dir).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(old_dir.join("model.json")).unwrap())
            .unwrap();
    meta["training_hash"] = serde_json::json!(old_hash);
    meta["code"]
        .as_object_mut()
        .unwrap()
        .remove("numerics_version");
    std::fs::write(
        old_dir.join("model.json"),
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();

    let (code, out, err) = mixbench(d.path(), &["gc"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains(&old_hash) && out.contains("(numerics version 0)"),
        "{out}"
    );
    assert!(err.contains("1 model(s) and 0 record(s)"), "{err}");

    let (code, _, err) = mixbench(d.path(), &["reproduce", "tiny"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("1 stored model(s) of this profile were made under an older numerics version"),
        "{err}"
    );
    assert!(err.contains("none s0 (numerics version 0"), "{err}");
    assert!(err.contains("trained 1 model(s), reused 1"), "{err}");

    let (code, _, err) = mixbench(d.path(), &["gc", "--remove"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("removed 1 model(s)"), "{err}");
    assert!(!models.join(&old_hash).exists());
    assert!(
        models
            .join(&cell.training_hash)
            .join("s0/model.json")
            .exists()
    );
    let (_, out, _) = mixbench(d.path(), &["gc"]);
    assert!(out.is_empty(), "{out}");
}

/// `history` flags a move beyond the tolerance that the next run confirms, names its first bad
/// and last good commit and exits 1; a lone blip is ignored and an improvement is no failure.
#[test]
fn history_flags_a_confirmed_step_and_ignores_a_blip() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    std::fs::write(d.path().join("suites/tiny.yaml"), SUITE).unwrap();
    let dir = d.path().join("hist/tiny/smoke");
    std::fs::create_dir_all(&dir).unwrap();
    // clean.test_error (lower is better, tolerance 0.5) of `none` over six runs: run 2 is a
    // blip (20.0, back to 10.1 at run 3); run 4 moves to 15.0 and run 5 confirms it, against
    // the level mean(10.0, 10.2, 10.1) = 10.1. `mm` improves 50 → 40 at run 2 and stays.
    let none = [10.0, 10.2, 20.0, 10.1, 15.0, 15.1];
    let mm = [50.0, 50.0, 40.0, 40.0, 40.0, 40.0];
    for i in 0..6 {
        let exp = |v: f64| {
            serde_json::json!({
                "training_hash": "h", "dataset_fingerprint": "fp",
                "metrics": {"clean.test_error": {"mean": v, "std": 0.0, "n": 1},
                            "clean.test_nll": {"mean": 1.0, "std": 0.0, "n": 1}}
            })
        };
        let entry = serde_json::json!({
            "history_version": 1, "suite": "tiny", "profile": "smoke",
            "commit": format!("{i}{i}{i}{i}{i}{i}{i}{i}{i}{i}abcdef"), "dirty": "false",
            "date": format!("2026-01-0{}T00:00:00.000Z", i + 1), "device": "cpu",
            "experiments": {"none": exp(none[i]), "mm": exp(mm[i])}
        });
        std::fs::write(dir.join(format!("run{i}.json")), entry.to_string()).unwrap();
    }
    let (code, out, err) = mixbench(d.path(), &["history", "tiny", "--history-dir", "hist"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("tiny — profile `smoke`: 6 runs"), "{out}");
    assert!(
        out.contains("| none | clean.test_error | 10.0000 | 10.2000 | 20.0000 | 10.1000 | 15.0000 | 15.1000 | regression at run 4 (first 4444444444 / last good 3333333333: 10.1000 → 15.0000) |"),
        "{out}"
    );
    assert!(
        out.contains("| mm | clean.test_error | 50.0000 | 50.0000 | 40.0000 | 40.0000 | 40.0000 | 40.0000 | improvement at run 2 (first 2222222222 / last good 1111111111: 50.0000 → 40.0000) |"),
        "{out}"
    );
    assert!(
        out.contains(
            "| none | clean.test_nll | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1.0000 |  |"
        ),
        "{out}"
    );
    assert!(err.contains("1 regression step(s)"), "{err}");
}
