//! Runs that survive: two processes on one results folder train every cell exactly once, and a
//! run killed with SIGKILL mid-training resumes to the bit-identical result (through the binary).

mod common;

use common::outcome::outcome;
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

#[test]
fn shards_sharing_one_folder_are_told_to_report_once_every_cell_has_a_result() {
    let d = setup(&suite(3, SIX));
    let p = d.path();
    let mut last = String::new();
    for i in 0..3 {
        let shard = format!("{i}/3");
        let (code, err) = run(
            p,
            &[
                "--results-dir",
                "shared",
                "reproduce",
                "lk",
                "--shard",
                &shard,
            ],
        );
        assert_eq!(code, 0, "{err}");
        if i < 2 {
            assert!(
                err.contains("cells have a result in shared so far"),
                "{err}"
            );
        }
        last = err;
    }
    assert!(
        last.contains("all 6 cells have a result in shared: run `mixbench --results-dir shared report lk --profile smoke`"),
        "{last}"
    );
    let (code, err) = run(
        p,
        &[
            "--results-dir",
            "shared",
            "report",
            "lk",
            "--profile",
            "smoke",
        ],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn three_shards_merged_equal_one_run_and_conflicts_are_refused() {
    let d = setup(&suite(3, SIX));
    let p = d.path();
    let (code, err) = run(p, &["--results-dir", "one", "reproduce", "lk"]);
    assert_eq!(code, 0, "{err}");
    let mut trained_total = 0;
    for i in 0..3 {
        let dir = format!("r{i}");
        let shard = format!("{i}/3");
        let (code, err) = run(
            p,
            &["--results-dir", &dir, "reproduce", "lk", "--shard", &shard],
        );
        assert_eq!(code, 0, "{err}");
        // A folder per shard: this folder holds only this shard's cells, so the next step
        // named is merging (or waiting, had they shared it).
        assert!(err.contains("shard done"), "{err}");
        assert!(
            err.contains(&format!("of 6 cells have a result in {dir} so far")),
            "{err}"
        );
        assert!(
            err.contains("mixbench merge <their folders> --into <dir>"),
            "{err}"
        );
        let line = err.lines().find(|l| l.starts_with("lk shard ")).unwrap();
        trained_total += line
            .split("trained ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap();
    }
    assert_eq!(trained_total, 6, "the shards cover every cell once");
    // A partial tree cannot be blessed.
    let (code, err) = run(
        p,
        &[
            "--results-dir",
            "r0",
            "reproduce",
            "lk",
            "--no-train",
            "--bless",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a baseline must hold every cell"), "{err}");
    let (code, err) = run(p, &["merge", "r0", "r1", "r2", "--into", "merged"]);
    assert_eq!(code, 0, "{err}");
    for id in ["a", "b", "c", "d", "e", "f"] {
        let rec = format!("lk/smoke/{id}-s0.json");
        assert_eq!(
            outcome(&p.join("merged").join(&rec)),
            outcome(&p.join("one").join(&rec)),
            "cell {id}"
        );
    }
    // The merged tree is complete: nothing trains, and it can be blessed.
    let (code, err) = run(
        p,
        &["--results-dir", "merged", "reproduce", "lk", "--bless"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(trained(&err), 0);
    // Merging the same folders again copies nothing new.
    let (code, err) = run(p, &["merge", "r0", "r1", "r2", "--into", "merged"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(": 0 file(s) copied"), "{err}");

    // Two different results for one cell: refused, both paths named, nothing copied.
    let shard_of_a = (0..3)
        .find(|i| p.join(format!("r{i}/lk/smoke/a-s0.json")).exists())
        .unwrap();
    let bad = p.join("bad");
    std::fs::create_dir_all(bad.join("lk/smoke")).unwrap();
    let src = p.join(format!("r{shard_of_a}/lk/smoke/a-s0.json"));
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&src).unwrap()).unwrap();
    v["metrics"]["clean.test_error"] = serde_json::json!(99.0);
    std::fs::write(bad.join("lk/smoke/a-s0.json"), v.to_string()).unwrap();
    let (code, err) = run(
        p,
        &["merge", &format!("r{shard_of_a}"), "bad", "--into", "fresh"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("a-s0.json") && err.contains("bad/lk/smoke/a-s0.json"),
        "{err}"
    );
    assert!(
        err.contains("different results for the same cell record"),
        "{err}"
    );
    assert!(!p.join("fresh").exists(), "nothing copied");
}

#[test]
fn emitted_slurm_and_kubernetes_files_parse_and_name_every_shard_once() {
    let d = setup(&suite(3, SIX));
    let out = |emit: &str| {
        let o = cmd(
            d.path(),
            &[
                "plan",
                "lk",
                "--profile",
                "smoke",
                "--shards",
                "4",
                "--emit",
                emit,
            ],
        )
        .output()
        .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    for (emit, text) in [("slurm", out("slurm")), ("k8s", out("k8s"))] {
        // Every cell in exactly one shard line, and every shard listed once.
        let shard_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("# shard ")).collect();
        assert_eq!(shard_lines.len(), 4, "{emit}:\n{text}");
        for (i, l) in shard_lines.iter().enumerate() {
            assert!(l.starts_with(&format!("# shard {i} (")), "{l}");
        }
        for id in ["a", "b", "c", "d", "e", "f"] {
            let n = shard_lines
                .iter()
                .filter(|l| {
                    l.split(": ")
                        .nth(1)
                        .unwrap()
                        .split(", ")
                        .any(|c| c == format!("{id} s0"))
                })
                .count();
            assert_eq!(n, 1, "{emit}: cell {id}:\n{text}");
        }
        if emit == "slurm" {
            assert!(text.starts_with("#!/bin/bash\n"));
            assert!(text.contains("#SBATCH --array=0-3\n"), "{text}");
            assert!(
                text.contains(
                    "\nmixbench --results-dir /results reproduce lk --profile smoke --shard auto --device cuda\n"
                ),
                "{text}"
            );
        } else {
            let v: serde_json::Value = mixbench::suite::yaml::from_str(&text).unwrap();
            assert_eq!(v["kind"].as_str(), Some("Job"));
            assert_eq!(v["spec"]["completionMode"].as_str(), Some("Indexed"));
            assert_eq!(v["spec"]["completions"].as_u64(), Some(4));
            let c = &v["spec"]["template"]["spec"]["containers"][0];
            let cmdline: Vec<&str> = c["command"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            assert_eq!(
                cmdline.join(" "),
                "mixbench --results-dir /results reproduce lk --profile smoke --shard auto --device cuda"
            );
            let env: Vec<(&str, &str)> = c["env"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str().unwrap()))
                .collect();
            assert!(env.contains(&("MIXBENCH_SHARD_COUNT", "4")), "{env:?}");
            assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"].as_u64(), Some(1));
        }
    }
}

/// `plan --costs` balances measured hours (one 10-hour experiment against five 1-hour ones
/// gives 10 h and 5 h, where the equal relative costs of six identical MLPs split 3 and 3), and
/// a task given the emitted `--shard-costs` trains exactly the cells its header line lists.
#[test]
fn measured_costs_set_the_split_and_every_task_computes_the_same_one() {
    let d = setup(&suite(1, SIX));
    let p = d.path();
    let hours = [
        ("a", 10.0),
        ("b", 1.0),
        ("c", 1.0),
        ("d", 1.0),
        ("e", 1.0),
        ("f", 1.0),
    ];
    let rows: Vec<serde_json::Value> = hours
        .iter()
        .map(|(e, h)| serde_json::json!({"suite": "lk", "profile": "smoke", "experiment": e, "hours_per_seed": h}))
        .collect();
    std::fs::write(
        p.join("est.json"),
        serde_json::json!({"shapes": [["mlp", {"Ok": {"device": "cpu (test)"}}]], "cells": rows})
            .to_string(),
    )
    .unwrap();
    let plan = |extra: &[&str]| {
        let mut args = vec![
            "plan",
            "lk",
            "--profile",
            "smoke",
            "--shards",
            "2",
            "--emit",
            "slurm",
            "--gpus",
            "0",
        ];
        args.extend_from_slice(extra);
        let o = cmd(p, &args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let shard_cells = |text: &str, i: usize| -> Vec<String> {
        let l = text
            .lines()
            .find(|l| l.starts_with(&format!("# shard {i} (")))
            .unwrap();
        l.split("): ")
            .nth(1)
            .unwrap()
            .split(", ")
            .map(String::from)
            .collect()
    };
    let (code, relative, err) = plan(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(shard_cells(&relative, 0).len(), 3, "{relative}");
    assert!(!relative.contains("--shard-costs"), "{relative}");
    let (code, measured, err) = plan(&["--costs", "est.json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(shard_cells(&measured, 0), vec!["a s0"], "{measured}");
    assert_eq!(shard_cells(&measured, 1).len(), 5, "{measured}");
    assert!(
        measured.contains("# shard 0 (66.7% of the estimated cost, 10.0 h)"),
        "{measured}"
    );
    assert!(measured.contains("measured on cpu (test)"), "{measured}");
    let arg = measured
        .split("--shard-costs '")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap()
        .to_string();
    for i in 0..2 {
        let dir = format!("out{i}");
        let shard = format!("{i}/2");
        let (code, err) = run(
            p,
            &[
                "--results-dir",
                &dir,
                "reproduce",
                "lk",
                "--shard",
                &shard,
                "--shard-costs",
                &arg,
            ],
        );
        assert_eq!(code, 0, "{err}");
        let mut trained: Vec<String> = std::fs::read_dir(p.join(&dir).join("lk/smoke"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with("-s0.json"))
            .map(|n| n.replace("-s0.json", " s0"))
            .collect();
        trained.sort();
        assert_eq!(trained, shard_cells(&measured, i), "shard {i}");
    }
    // An estimate without one of the experiments is refused, naming it.
    let partial = serde_json::json!({"cells": &rows[..5]}).to_string();
    std::fs::write(p.join("est.json"), partial).unwrap();
    let (code, _, err) = plan(&["--costs", "est.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no hours for experiment `f`"), "{err}");
    let (code, err) = run(p, &["reproduce", "lk", "--shard-costs", &arg]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--shard-costs balances shards: it needs --shard"),
        "{err}"
    );
}

/// Hostile ids (traversal, absolute, separators, empty, too long) are refused at load through
/// the binary, and nothing at all is written, inside or outside the work folder.
#[test]
fn hostile_ids_write_nothing_anywhere() {
    let outer = tempfile::tempdir().unwrap();
    let work = outer.path().join("work");
    std::fs::create_dir_all(work.join("suites")).unwrap();
    let long = "x".repeat(101);
    let cases: Vec<(String, &str)> = vec![
        (
            SIX.replace("{id: a,", "{id: ../../escape,"),
            "experiment id",
        ),
        (SIX.replace("{id: a,", "{id: /tmp/abs,"), "experiment id"),
        (SIX.replace("{id: a,", "{id: a/b,"), "experiment id"),
        (SIX.replace("{id: a,", "{id: \"\","), "experiment id"),
        (
            SIX.replace("{id: a,", &format!("{{id: {long},")),
            "experiment id",
        ),
    ];
    for (rows, what) in &cases {
        std::fs::write(work.join("suites/lk.yaml"), suite(1, rows)).unwrap();
        for args in [
            vec!["reproduce", "lk"],
            vec!["compare", "lk", "--with", "none"],
            vec!["reproduce", "lk", "--shard", "0/2"],
        ] {
            let (code, err) = run(&work, &args);
            assert_eq!(code, 2, "{args:?}: {err}");
            assert!(
                err.contains(what) && err.contains("not a safe name"),
                "{err}"
            );
        }
    }
    let profile = suite(1, SIX).replace("  smoke: {", "  \"../p\": {");
    std::fs::write(work.join("suites/lk.yaml"), profile).unwrap();
    let (code, err) = run(&work, &["reproduce", "lk", "--profile", "../p"]);
    assert_eq!(code, 2, "{err}");
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(outer.path()), vec!["work"]);
    assert_eq!(names(&work), vec!["suites"]);
}
