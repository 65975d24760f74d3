//! Provenance rules: what the training hash covers, the numerics version in every hash and every
//! committed baseline and curated report, and the profiles that follow the reference's PyTorch.

use std::path::Path;

use mixbench::numerics::NUMERICS_VERSION;
use mixbench::suite::load::parse;
use mixbench::suite::resolve::{self, training_hash, training_hash_under};

const SUITE: &str = r#"id: t
title: "test"
paper: {arxiv: "1806.05236v7", table: "1", caption: "c"}
metrics:
  - {name: clean.test_error, unit: "%", better: lower, tolerance: 0.5}
defaults:
  dataset: {name: synthetic, classes: 4, train_size: 32, test_size: 16, size: 8}
  model: {arch: mlp, hidden: [16]}
  regularizer: {name: none}
  optimizer: {lr: 0.1, momentum: 0.9}
  epochs: 4
  batch_size: 8
  eval_every: 1
  eval_batch_size: 8
experiments:
  - id: base
    architecture: MLP
    method: No Mixup
profiles:
  smoke:
    description: "tiny"
    seeds: [0]
"#;

fn hash_of(text: &str) -> (String, String) {
    let ls = parse(Path::new("suites/t.yaml"), text).unwrap();
    let c = &resolve::resolve(&ls, "smoke", None).unwrap()[0];
    (
        c.training_hash.clone(),
        c.evaluation_hash(&c.evaluations[0]),
    )
}

#[test]
fn eval_every_keys_the_stored_model_but_eval_batch_size_does_not() {
    let (base, base_eval) = hash_of(SUITE);
    // The curves and best-epoch metrics stored with a model follow `eval_every`.
    let (every, _) = hash_of(&SUITE.replace("eval_every: 1", "eval_every: 2"));
    assert_ne!(every, base);
    // The evaluation batch size changes no weight: same model, but its own evaluation hash.
    let (batch, batch_eval) = hash_of(&SUITE.replace("eval_batch_size: 8", "eval_batch_size: 4"));
    assert_eq!(batch, base);
    assert_ne!(batch_eval, base_eval);
}

#[test]
fn the_numerics_version_is_in_the_training_hash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ls = mixbench::suite::load(&root.join("suites"), "table1").unwrap();
    let cells = resolve::resolve(&ls, "smoke", None).unwrap();
    let c = cells
        .iter()
        .find(|c| c.experiment == "c10-preact18-none")
        .unwrap();
    assert_eq!(c.training_hash, training_hash(&c.config));
    assert_eq!(
        c.training_hash,
        training_hash_under(&c.config, NUMERICS_VERSION)
    );
    // Every version names its own folder.
    let all: std::collections::BTreeSet<String> = (0..=NUMERICS_VERSION + 1)
        .map(|v| training_hash_under(&c.config, v))
        .collect();
    assert_eq!(all.len(), NUMERICS_VERSION as usize + 2);
    // Version 0 is the hash this cell had before versioning (baselines/table1.smoke.json
    // blessed at efa9775): stale models of old results folders are found under it.
    assert_eq!(
        training_hash_under(&c.config, 0),
        "04e58ecfe53db20750c572155feb17e19e66984b0258120d2be9386b4262991e"
    );
}

/// The line of a curated report's provenance that names its numerics version(s).
fn report_versions(text: &str) -> Vec<u32> {
    text.lines()
        .filter(|l| l.starts_with("- code: mixbench"))
        .filter_map(|l| l.rsplit_once("numerics version ").map(|(_, v)| v.trim()))
        .map(|v| v.parse().unwrap_or(u32::MAX))
        .collect()
}

/// CI's check that nothing committed was made by code computing other bits: a bump of the
/// numerics version fails here until the baselines are re-blessed and the curated reports
/// regenerated (or moved out of `docs/reports/`).
#[test]
fn committed_baselines_and_reports_state_the_current_numerics_version() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut baselines = 0;
    for entry in std::fs::read_dir(root.join("baselines")).unwrap() {
        let path = entry.unwrap().path();
        let b: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            b["code"]["numerics_version"].as_u64(),
            Some(NUMERICS_VERSION as u64),
            "{} was blessed under another numerics version: re-bless it (`mixbench reproduce <suite> --profile smoke --bless`)",
            path.display()
        );
        baselines += 1;
    }
    assert!(baselines >= 13, "{baselines}");
    let mut reports = 0;
    for entry in std::fs::read_dir(root.join("docs/reports")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let versions = report_versions(&std::fs::read_to_string(&path).unwrap());
        assert!(
            !versions.is_empty() && versions.iter().all(|v| *v == NUMERICS_VERSION),
            "{} states numerics version(s) {versions:?}, the code is at {NUMERICS_VERSION}: regenerate it at HEAD or retire it",
            path.display()
        );
        reports += 1;
    }
    assert!(reports >= 3, "{reports}");
}

#[test]
fn report_versions_reads_the_provenance_line() {
    let md = "## Provenance\n\n- code: mixbench 0.1.0 at git abc (dirty: false), candle 0.11.1, numerics version 7\n- device: cpu\n";
    assert_eq!(report_versions(md), vec![7]);
    assert!(
        report_versions("- code: mixbench 0.1.0 at git abc (dirty: false), candle 0.11.1\n")
            .is_empty()
    );
}

fn model_param(suite: &str, profile: &str, key: &str) -> Vec<Option<serde_json::Value>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ls = mixbench::suite::load(&root.join("suites"), suite).unwrap();
    resolve::resolve(&ls, profile, None)
        .unwrap()
        .iter()
        .map(|c| {
            let v = serde_json::to_value(&c.config).unwrap();
            v["model"].get(key).cloned()
        })
        .collect()
}

/// Where the reference ran PyTorch < 1.2 (BatchNorm γ ~ U(0,1)), the profile says so.
#[test]
fn profiles_that_follow_the_reference_use_its_batchnorm_init() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for id in mixbench::suite::load::list_ids(&root.join("suites")).unwrap() {
        let ls = mixbench::suite::load(&root.join("suites"), &id).unwrap();
        if ls.suite.profiles.contains_key("paper-code") {
            for v in model_param(&id, "paper-code", "bn_init") {
                assert_eq!(v, Some("torch1.0".into()), "{id} paper-code");
                checked += 1;
            }
        }
    }
    for (suite, profile) in [
        ("table1", "paper-prerefactor"),
        ("table8", "paper"),
        ("table8", "cpu"),
        ("flattening", "paper"),
        ("flattening", "cpu"),
        ("flattening_regularizers", "paper"),
        ("flattening_regularizers", "cpu"),
    ] {
        for v in model_param(suite, profile, "bn_init") {
            assert_eq!(v, Some("torch1.0".into()), "{suite} {profile}");
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}

/// Tables 5 and 6 `paper-code` follow the reference README's PreActResNet18 CIFAR-10 command.
#[test]
fn ablation_paper_code_profiles_use_the_readme_schedule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for suite in ["table5", "table6"] {
        let ls = mixbench::suite::load(&root.join("suites"), suite).unwrap();
        for c in resolve::resolve(&ls, "paper-code", None).unwrap() {
            let v = serde_json::to_value(&c.config).unwrap();
            assert_eq!(
                v["schedule"]["milestones"],
                serde_json::json!([500, 1000, 1500]),
                "{suite} {}",
                c.experiment
            );
            assert_eq!(v["epochs"], serde_json::json!(2000));
        }
    }
}

/// The README's main command writes `reports/table1-smoke.*`: generated, so ignored by git and
/// the tree stays clean; curated reports live in `docs/reports/`, which no run writes.
#[test]
fn generated_reports_are_ignored_and_curated_ones_are_not() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root.join(".git").exists() {
        return; // a packaged crate has no git tree to keep clean
    }
    let ignored = |p: &str| {
        std::process::Command::new("git")
            .args(["check-ignore", "-q", p])
            .current_dir(root)
            .status()
            .unwrap()
            .success()
    };
    for p in [
        "reports/table1-smoke.md",
        "reports/table1-smoke.parquet",
        "reports/flattening-cpu.html",
        "results/models/x/s0/model.json",
    ] {
        assert!(ignored(p), "{p} should be ignored by git");
    }
    assert!(!ignored("docs/reports/table8-cpu.md"));
}

/// Where `paper-prerefactor` departs from its script, its description says so (the script
/// scored validation images with the training transforms and drew the 45k/5k split per run).
#[test]
fn prerefactor_profile_states_where_it_departs_from_the_script() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ls = mixbench::suite::load(&root.join("suites"), "table1").unwrap();
    let d = &ls.suite.profiles["paper-prerefactor"].description;
    assert!(
        d.contains("validation images are scored without augmentation"),
        "{d}"
    );
    assert!(d.contains("drawn once from a fixed seed"), "{d}");
}

/// The candle this crate builds is vendor/candle-core (Cargo.toml's `[patch.crates-io]`): a
/// tensor's first gradient is kept as it is, not added to zeroes. That is invisible except in a
/// zero's sign (`0 + (−0)` is +0), which is how this checks that the patch is the one in use; a
/// second contribution is still added, and a strided one still becomes a contiguous tensor (the
/// CPU kernels refuse strided operands).
#[test]
fn the_vendored_candle_keeps_a_first_gradient_as_it_is() {
    use candle_core::{Device, Tensor, Var};
    let dev = Device::Cpu;
    let bits = |t: &Tensor| -> Vec<u32> {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.iter().map(|x| x.to_bits()).collect()
    };
    let x = Var::new(&[1.0f32, -2.0], &dev).unwrap();
    let t = Tensor::new(&[-0.0f32, 3.0], &dev).unwrap();
    let g = (x.as_tensor() * &t)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(bits(g.get(&x).unwrap()), [0x8000_0000, 3.0f32.to_bits()]);

    let u = Tensor::new(&[0.5f32, -0.0], &dev).unwrap();
    let y = ((x.as_tensor() * &t).unwrap() + (x.as_tensor() * &u).unwrap()).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(
        bits(g.get(&x).unwrap()),
        [0.5f32.to_bits(), 3.0f32.to_bits()]
    );

    let m = Var::new(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]], &dev).unwrap();
    let w = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]], &dev).unwrap();
    let y = (m.as_tensor().t().unwrap() * &w)
        .unwrap()
        .sum_all()
        .unwrap();
    let g = y.backward().unwrap();
    let gm = g.get(&m).unwrap();
    assert!(gm.is_contiguous());
    assert_eq!(
        gm.to_vec2::<f32>().unwrap(),
        [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]
    );
}
