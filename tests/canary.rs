//! The numerics canary: trains a few steps of every model family with every kind of regularizer
//! and runs every evaluator (`tests/fixtures/canary/canary.yaml`), under every CPU kernel copy
//! this machine can run and several thread counts, and requires
//! - the same bits in every one of those runs (CPU results must not depend on the machine), and
//! - the bits committed for the current numerics version in `tests/fixtures/canary/expected.json`.
//!
//! Changed bits without a bump of `mixbench::numerics::NUMERICS_VERSION` fail with the
//! instruction to bump and re-bless (`MIXBENCH_BLESS_CANARY=1 cargo test --release --test
//! canary`); a bump that changes no bit passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mixbench::numerics::NUMERICS_VERSION;
use serde_json::{Value, json};

const EXPECTED: &str = "tests/fixtures/canary/expected.json";

/// Per cell: the weights' sha256 and every metric's and array's bits.
type Fingerprint = BTreeMap<String, Value>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bits(v: &Value) -> Value {
    match v {
        Value::Number(n) => Value::String(format!("{:016x}", n.as_f64().unwrap().to_bits())),
        Value::Array(a) => Value::Array(a.iter().map(bits).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), bits(v))).collect()),
        other => other.clone(),
    }
}

/// A `/sys/devices/system/cpu` with one CPU whose caches are `l1` KiB `ways`-way (data),
/// 2 MiB L2 and 32 MiB L3: what the `gemm` crate reads to choose its blocking.
fn fake_sysfs_cpu(dir: &Path, l1: usize, ways: usize) {
    for (i, level, size, w) in [
        (0, 1, format!("{l1}K"), ways),
        (2, 2, "2048K".to_string(), 16),
        (3, 3, "32768K".to_string(), 16),
    ] {
        let d = dir.join(format!("cpu0/cache/index{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let kind = if level == 1 { "Data" } else { "Unified" };
        for (f, v) in [
            ("type", kind.to_string()),
            ("level", level.to_string()),
            ("size", size.clone()),
            ("ways_of_associativity", w.to_string()),
            ("coherency_line_size", "64".to_string()),
            ("shared_cpu_list", "0".to_string()),
        ] {
            std::fs::write(d.join(f), format!("{v}\n")).unwrap();
        }
    }
}

/// Whether this process may bind-mount over sysfs in a private mount namespace.
fn can_fake_sysfs() -> bool {
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the canary suite in a fresh results folder under `env`, returning its fingerprint.
/// With `caches`, the binary runs in a mount namespace whose `/sys/devices/system/cpu` reports
/// those L1 data cache (KiB, ways).
fn run(env: &[(&str, &str)]) -> Fingerprint {
    run_on(env, None)
}

fn run_on(env: &[(&str, &str)], caches: Option<(usize, usize)>) -> Fingerprint {
    let d = tempfile::tempdir().unwrap();
    let mut cmd = match caches {
        None => Command::new(env!("CARGO_BIN_EXE_mixbench")),
        Some((l1, ways)) => {
            let fake = d.path().join("sysfs-cpu");
            fake_sysfs_cpu(&fake, l1, ways);
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(r#"mount --bind "$0" /sys/devices/system/cpu && exec "$@""#)
                .arg(&fake)
                .arg(env!("CARGO_BIN_EXE_mixbench"));
            c
        }
    };
    cmd.current_dir(root())
        .args(["--suites-dir", "tests/fixtures/canary"])
        .arg("--results-dir")
        .arg(d.path().join("results"))
        .arg("--baselines-dir")
        .arg(d.path().join("baselines"))
        .arg("--reports-dir")
        .arg(d.path().join("reports"))
        .args(["reproduce", "canary", "--profile", "canary"])
        .env_remove("RAYON_NUM_THREADS")
        .env_remove("MIXBENCH_CPU_KERNELS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{env:?}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let records = d.path().join("results/canary/canary");
    let mut fp = Fingerprint::new();
    for e in std::fs::read_dir(&records).unwrap() {
        let p = e.unwrap().path();
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert!(r["diverged"].is_null(), "{}: diverged", p.display());
        let model = d
            .path()
            .join("results/models")
            .join(r["training_hash"].as_str().unwrap())
            .join("s0/model.json");
        let m: Value = serde_json::from_str(&std::fs::read_to_string(model).unwrap()).unwrap();
        fp.insert(
            r["experiment"].as_str().unwrap().to_string(),
            json!({
                "weights_sha256": m["weights"]["sha256"],
                "metrics": bits(&r["metrics"]),
                "arrays": bits(&r["arrays"]),
                "curves_test": bits(&Value::Array(
                    r["curves"].as_array().unwrap().iter().map(|c| c["test"].clone()).collect()
                )),
            }),
        );
    }
    assert_eq!(fp.len(), 10, "{fp:?}");
    fp
}

fn differing(a: &Fingerprint, b: &Fingerprint) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let what = match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) if x["weights_sha256"] != y["weights_sha256"] => "weights",
                (Some(_), Some(_)) => "metrics",
                _ => "missing",
            };
            format!("{k} ({what})")
        })
        .collect()
}

#[test]
fn cpu_bits_are_the_same_everywhere_and_pinned_by_the_numerics_version() {
    let reference = run(&[]);
    let detected = mixbench::kernels::cpu_float::detected_kernel_level();
    let mut variants: Vec<Vec<(&str, &str)>> = vec![
        vec![("RAYON_NUM_THREADS", "1")],
        vec![("RAYON_NUM_THREADS", "3")],
        vec![("MIXBENCH_CPU_KERNELS", "baseline")],
    ];
    if detected == mixbench::kernels::cpu_float::KernelLevel::Avx512 {
        variants.push(vec![("MIXBENCH_CPU_KERNELS", "avx2")]);
    }
    for env in &variants {
        let fp = run(env);
        let diff = differing(&reference, &fp);
        assert!(
            diff.is_empty(),
            "CPU results depend on the machine: with {env:?} (CPU kernels at {}) these cells' bits differ from the default run: {diff:?}",
            detected.name()
        );
    }
    // Other cache sizes, as the `gemm` crate sees them: a 48 KiB 12-way L1 (where it blocks k
    // by 1024 for AVX2 instead of 512) and a 32 KiB 8-way one.
    if can_fake_sysfs() {
        for caches in [(48, 12), (32, 8)] {
            let diff = differing(&reference, &run_on(&[], Some(caches)));
            assert!(
                diff.is_empty(),
                "CPU results depend on the cache sizes: with an L1 of {} KiB {}-way these cells' bits differ from the default run: {diff:?}",
                caches.0,
                caches.1
            );
        }
    } else {
        // Where mount namespaces are not permitted, say loudly what was not checked.
        eprintln!(
            "WARNING: cache sizes were NOT simulated: `unshare -m` is not permitted here (run as root to check them)"
        );
    }

    let path = root().join(EXPECTED);
    let mut table: BTreeMap<String, Fingerprint> = std::fs::read_to_string(&path)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or_default();
    let key = NUMERICS_VERSION.to_string();
    if std::env::var_os("MIXBENCH_BLESS_CANARY").is_some() {
        table.insert(key, reference);
        let text = serde_json::to_string_pretty(&table).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        return;
    }
    let bless = "MIXBENCH_BLESS_CANARY=1 cargo test --release --test canary";
    match table.get(&key) {
        Some(expected) => {
            let diff = differing(expected, &reference);
            assert!(
                diff.is_empty(),
                "CPU bits changed under numerics version {NUMERICS_VERSION} in: {diff:?}. If the change is intended, bump the numerics version and re-bless: raise NUMERICS_VERSION in src/numerics.rs, then `{bless}`, re-bless the smoke baselines (`cargo run --release -- reproduce all --profile smoke --bless`) and regenerate or retire docs/reports/. If it is not intended, it is a bug."
            );
        }
        None => {
            // A bump without changed bits is fine; one with changed bits needs its entry.
            let older = table
                .iter()
                .filter_map(|(v, fp)| v.parse::<u32>().ok().map(|v| (v, fp)))
                .filter(|(v, _)| *v < NUMERICS_VERSION)
                .max_by_key(|(v, _)| *v);
            let same = older.is_some_and(|(_, fp)| differing(fp, &reference).is_empty());
            assert!(
                same,
                "{} has no entry for numerics version {NUMERICS_VERSION} and the bits differ from the last version's: bless it with `{bless}`",
                Path::new(EXPECTED).display()
            );
        }
    }
}
