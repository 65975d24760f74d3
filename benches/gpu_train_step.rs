//! Train-step throughput on a CUDA GPU: one SGD step (forward, BCE-on-softmax loss, backward,
//! update) of PreActResNet18 at width 1 on a batch of 128 32×32 images, no mixing and manifold
//! mixup at mix point 1. The PyTorch anchor for the same step is
//! `tools/perf/torch_gpu_step.py`; run both on the same machine:
//!
//! ```sh
//! cargo bench --features cuda --bench gpu_train_step
//! python tools/perf/torch_gpu_step.py
//! ```
//!
//! Built only with `--features cuda`; it exits with a message when no GPU is present.

use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;

use common::{cifar_model, manifold_plan, reference_sgd, train_step};

const BATCH: usize = 128;

fn bench(c: &mut Criterion) {
    let dev = match Device::new_cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gpu_train_step: no CUDA GPU 0 ({e}); nothing to measure");
            return;
        }
    };
    let x = Tensor::randn(0f32, 1.0, (BATCH, 3, 32, 32), &dev).unwrap();
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % 10).collect();
    let model = cifar_model("preactresnet18", 1.0, &dev);
    let mut opt = reference_sgd();
    let mut group = c.benchmark_group("gpu_train_step");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("preactresnet18_w1_b128_none", |b| {
        b.iter(|| train_step(&model, &mut opt, &x, &labels, None, 0.1))
    });
    let plan = manifold_plan(BATCH, 1);
    group.bench_function("preactresnet18_w1_b128_manifold_k1", |b| {
        b.iter(|| train_step(&model, &mut opt, &x, &labels, Some(&plan), 0.1))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
