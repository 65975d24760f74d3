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
use mixbench::model::{InputSpec, Model};
use mixbench::regularizer::{MixPlan, mix_hidden, soft_targets};
use mixbench::train::loss::loss;
use mixbench::train::{LossKind, Sgd, SgdConfig};
use serde_json::json;

const BATCH: usize = 128;

fn step(model: &Model, opt: &mut Sgd, x: &Tensor, labels: &[u32], plan: Option<&MixPlan>) {
    let dev = x.device().clone();
    let t = soft_targets(labels, 10, plan, &dev).unwrap();
    let logits = match plan {
        Some(p) => {
            let f = |h: &Tensor| mix_hidden(h, p);
            model.forward_with(x, true, Some((p.layer, &f))).unwrap()
        }
        None => model.forward(x, true).unwrap(),
    };
    let l = loss(LossKind::BceSoftmax, &logits, &t).unwrap();
    let grads = l.backward().unwrap();
    opt.step(&model.store.params(), &grads, 0.1).unwrap();
    // Wait for the GPU, so the time is the step's and not its launch's.
    dev.synchronize().unwrap();
}

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
    let model = Model::build(
        "preactresnet18",
        json!({"width": 1.0}).as_object().unwrap(),
        InputSpec {
            channels: 3,
            height: 32,
            width: 32,
            classes: 10,
        },
        0,
        &dev,
    )
    .unwrap();
    let mut opt = Sgd::new(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
    });
    let mut group = c.benchmark_group("gpu_train_step");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("preactresnet18_w1_b128_none", |b| {
        b.iter(|| step(&model, &mut opt, &x, &labels, None))
    });
    let plan = MixPlan {
        layer: 1,
        lambda: 0.7,
        perm: (0..BATCH as u32).rev().collect(),
        block_gradient: false,
        lambdas: None,
    };
    group.bench_function("preactresnet18_w1_b128_manifold_k1", |b| {
        b.iter(|| step(&model, &mut opt, &x, &labels, Some(&plan)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
