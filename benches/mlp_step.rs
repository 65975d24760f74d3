//! One Adam training step of the App. G MLP (784 → 3 × 1024 → 12 bottleneck → 4 × 1024 → 10,
//! batch 256, BCE on softmax), without mixing and with manifold mixup at the bottleneck, next to
//! PyTorch's CPU time for the same step measured in the same run.
//!
//! Run: `cargo bench --bench mlp_step`. The PyTorch anchor is `tools/bench/torch_mlp_step.py`,
//! run with `$MIXBENCH_TORCH_PYTHON` (default `python3`) at the same thread count; without a
//! Python that imports torch, the anchor line says why and only mixbench is timed.

use std::process::Command;
use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use mixbench::model::{InputSpec, Model};
use mixbench::regularizer::MixPlan;
use mixbench::train::{Optimizer, OptimizerConfig};
use serde_json::json;

mod common;

use common::train_step;

const GROUP: &str = "mlp_step";

fn bench(c: &mut Criterion) {
    // The pinned thread settings live in the environment: start again with them, as `mixbench` does.
    mixbench::threads::restart_with_pinned_threads();
    mixbench::memory::keep_freed_memory();
    let dev = Device::Cpu;
    let batch = 256;
    let model = Model::build(
        "mlp",
        json!({"hidden": [1024, 1024, 1024, 12, 1024, 1024, 1024, 1024], "bottleneck": 3})
            .as_object()
            .unwrap(),
        InputSpec {
            channels: 1,
            height: 28,
            width: 28,
            classes: 10,
        },
        0,
        &dev,
    )
    .unwrap();
    let cfg: OptimizerConfig = serde_json::from_value(json!({"name": "adam", "lr": 1e-4})).unwrap();
    let mut opt = Optimizer::new(&cfg);
    let x = Tensor::randn(0f32, 1.0, (batch, 1, 28, 28), &dev).unwrap();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let plan = MixPlan {
        layer: 4,
        lambda: 0.7,
        perm: (0..batch as u32).rev().collect(),
        block_gradient: false,
        lambdas: None,
    };
    let mut group = c.benchmark_group(GROUP);
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("appg_b256_none", |b| {
        b.iter(|| train_step(&model, &mut opt, &x, &labels, None, 1e-4))
    });
    group.bench_function("appg_b256_manifold", |b| {
        b.iter(|| train_step(&model, &mut opt, &x, &labels, Some(&plan), 1e-4))
    });
    group.finish();
    anchor();
}

/// Criterion's median for `id` in milliseconds, from its estimates file.
fn criterion_median_ms(id: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{dir}/criterion/{GROUP}/{id}/new/estimates.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some(v["median"]["point_estimate"].as_f64()? / 1e6)
}

/// Runs the PyTorch anchor and prints both medians and their ratio.
fn anchor() {
    let threads = candle_core::utils::get_num_threads();
    let python = std::env::var("MIXBENCH_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/bench/torch_mlp_step.py");
    let out = Command::new(&python)
        .args([script, "--threads", &threads.to_string()])
        .output();
    let torch: serde_json::Value = match out {
        Ok(o) if o.status.success() => match serde_json::from_slice(&o.stdout) {
            Ok(v) => v,
            Err(e) => {
                println!("PyTorch anchor: unreadable output ({e})");
                return;
            }
        },
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            println!(
                "PyTorch anchor skipped: `{python} {script}` failed: {}",
                err.lines().last().unwrap_or("")
            );
            return;
        }
        Err(e) => {
            println!(
                "PyTorch anchor skipped: cannot run `{python}` ({e}); set MIXBENCH_TORCH_PYTHON"
            );
            return;
        }
    };
    println!("\nApp. G MLP training step, batch 256, {threads} thread(s), median ms:");
    println!(
        "{:<20} {:>10} {:>10} {:>14}",
        "variant", "mixbench", "pytorch", "torch/mixbench"
    );
    for (id, key) in [
        ("appg_b256_none", "none_ms"),
        ("appg_b256_manifold", "manifold_ms"),
    ] {
        let ours = criterion_median_ms(id);
        let theirs = torch[key].as_f64();
        match (ours, theirs) {
            (Some(a), Some(b)) => println!("{id:<20} {a:>10.2} {b:>10.2} {:>14.2}", b / a),
            _ => println!("{id}: a median is missing (mixbench {ours:?}, pytorch {theirs:?})"),
        }
    }
    println!(
        "(PyTorch {}; a ratio above 1 means mixbench is faster)",
        torch["torch"]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
