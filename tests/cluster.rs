//! Runs that survive: two processes on one results folder train every cell exactly once, and a
//! run killed with SIGKILL mid-training resumes to the bit-identical result (through the binary).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn suite(epochs: usize, rows: &str) -> String {
    format!(
        r#"id: lk
title: "locks"
paper: {{arxiv: "1806.05236v7", table: "0", caption: "test"}}
metrics:
  - {{name: clean.test_error, unit: "%", better: lower, tolerance: 0.5}}
defaults:
  dataset: {{name: synthetic, classes: 4, train_size: 1024, test_size: 64, size: 8}}
  model: {{arch: mlp, hidden: [128, 128]}}
  regularizer: {{name: none}}
  optimizer: {{lr: 0.05, momentum: 0.9}}
  epochs: {epochs}
  batch_size: 16
  checkpoint_every: 1
experiments:
{rows}
profiles:
  smoke: {{description: "tiny", seeds: [0]}}
"#
    )
}

const SIX: &str = r#"  - {id: a, architecture: MLP, method: none}
  - {id: b, architecture: MLP, method: mixup, overrides: {regularizer: {name: input_mixup, alpha: 1.0}}}
  - {id: c, architecture: MLP, method: mm, overrides: {regularizer: {name: manifold_mixup, alpha: 2.0, layers: [0, 1, 2]}}}
  - {id: d, architecture: MLP, method: cutout, overrides: {regularizer: {name: cutout, length: 2}}}
  - {id: e, architecture: MLP, method: cutmix, overrides: {regularizer: {name: cutmix, alpha: 1.0}}}
  - {id: f, architecture: MLP, method: mm1, overrides: {regularizer: {name: manifold_mixup, alpha: 1.0, layers: [1]}}}"#;

fn setup(text: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("suites")).unwrap();
    std::fs::write(d.path().join("suites/lk.yaml"), text).unwrap();
    d
}

fn cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mixbench"));
    c.current_dir(dir).args(args);
    c
}

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = cmd(dir, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// "lk: trained N model(s), reused M" → N.
fn trained(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("lk: trained "))
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    line["lk: trained ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Losses and metrics of a record, without the wall-clock fields.
fn outcome(record: &Path) -> serde_json::Value {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
    let curves: Vec<serde_json::Value> = r["curves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::json!([e["train_loss"], e["test"]]))
        .collect();
    serde_json::json!({"metrics": r["metrics"], "curves": curves})
}

#[test]
fn two_processes_on_one_folder_train_every_cell_exactly_once() {
    let d = setup(&suite(40, SIX));
    let spawn = || {
        cmd(d.path(), &["reproduce", "lk"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (ea, eb) = (
        String::from_utf8_lossy(&a.stderr).to_string(),
        String::from_utf8_lossy(&b.stderr).to_string(),
    );
    for (o, e) in [(&a, &ea), (&b, &eb)] {
        // 0 when the other process finished its cells in time, 5 when some were still claimed.
        assert!(matches!(o.status.code(), Some(0) | Some(5)), "{e}");
    }
    assert_eq!(
        trained(&ea) + trained(&eb),
        6,
        "each cell once:\n{ea}\n---\n{eb}"
    );
    for id in ["a", "b", "c", "d", "e", "f"] {
        let trained_by = [&ea, &eb]
            .iter()
            .filter(|e| e.contains(&format!("] {id} s0: trained")))
            .count();
        assert_eq!(trained_by, 1, "cell {id}:\n{ea}\n---\n{eb}");
    }
    assert_eq!(
        std::fs::read_dir(d.path().join("results/locks"))
            .unwrap()
            .count(),
        0,
        "every lock released"
    );
    let (code, err) = run(d.path(), &["reproduce", "lk"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(trained(&err), 0);
}

#[test]
fn a_killed_run_resumes_to_the_same_bits() {
    let one = "  - {id: a, architecture: MLP, method: mm, overrides: {regularizer: {name: manifold_mixup, alpha: 2.0, layers: [0, 1, 2]}}}";
    let text = suite(60, one);
    let whole = setup(&text);
    let (code, err) = run(whole.path(), &["reproduce", "lk"]);
    assert_eq!(code, 0, "{err}");

    let killed = setup(&text);
    let mut child = cmd(killed.path(), &["reproduce", "lk"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let models = killed.path().join("results/models");
    let t0 = Instant::now();
    // Wait for the third checkpoint, then SIGKILL: no chance to clean up.
    let third = loop {
        let found = std::fs::read_dir(&models).ok().and_then(|mut it| {
            let dir = it.next()?.ok()?.path().join("s0/checkpoints/epoch-2");
            dir.exists().then_some(dir)
        });
        if let Some(f) = found {
            break f;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(third.exists());
    let lock_dir = killed.path().join("results/locks");
    assert_eq!(
        std::fs::read_dir(&lock_dir).unwrap().count(),
        1,
        "the killed process leaves its lock"
    );
    let (code, err) = run(killed.path(), &["reproduce", "lk"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("took over the stale lock"), "{err}");
    assert!(err.contains("(resumed after epoch"), "{err}");
    let rec = |d: &Path| d.join("results/lk/smoke/a-s0.json");
    assert_eq!(outcome(&rec(killed.path())), outcome(&rec(whole.path())));
}
