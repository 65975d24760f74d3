//! One SGD step (forward, BCE-on-softmax loss, backward, update) of PreActResNet18 on a batch
//! of 64 CIFAR-sized images: width 1 and 0.125, no mixing vs manifold mixup.
//!
//! A second group times one convolution's forward + backward: candle's `conv2d` against the
//! im2col + gemm op the models use on CPU.
//!
//! Run: `cargo bench --bench train_step`. Width 1 is slow on CPU (seconds per step), so its
//! sample count is the minimum criterion allows.

use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use mixbench::model::layers::im2col::conv2d_im2col;
use mixbench::model::{InputSpec, Model};
use mixbench::regularizer::{MixPlan, mix_hidden, soft_targets};
use mixbench::train::loss::loss;
use mixbench::train::{LossKind, Sgd, SgdConfig};
use serde_json::json;

fn step(model: &Model, opt: &mut Sgd, x: &Tensor, labels: &[u32], plan: Option<&MixPlan>) {
    let dev = Device::Cpu;
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
}

fn bench(c: &mut Criterion) {
    // SAFETY: criterion runs the groups on the main thread, before candle starts its pool.
    unsafe { mixbench::threads::pin_thread_count() };
    mixbench::memory::keep_freed_memory();
    let dev = Device::Cpu;
    let batch = 64;
    let x = Tensor::randn(0f32, 1.0, (batch, 3, 32, 32), &dev).unwrap();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let mut group = c.benchmark_group("train_step");
    for (arch, width, samples) in [
        ("preactresnet18", 0.125, 20),
        ("preactresnet34", 0.125, 10),
        ("preactresnet18", 1.0, 10),
    ] {
        let model = Model::build(
            arch,
            json!({"width": width}).as_object().unwrap(),
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
        group.sample_size(samples);
        group.measurement_time(Duration::from_secs(if width < 1.0 { 5 } else { 30 }));
        group.bench_function(format!("{arch}_w{width}_b{batch}_none"), |b| {
            b.iter(|| step(&model, &mut opt, &x, &labels, None))
        });
        let plan = MixPlan {
            layer: 1,
            lambda: 0.7,
            perm: (0..batch as u32).rev().collect(),
            block_gradient: false,
            lambdas: None,
        };
        group.bench_function(format!("{arch}_w{width}_b{batch}_manifold_k1"), |b| {
            b.iter(|| step(&model, &mut opt, &x, &labels, Some(&plan)))
        });
    }
    group.finish();
}

/// Forward + backward of one 3×3 convolution (batch 64, 16 channels, 32×32 → 32 channels,
/// stride 1 and 2): candle's own `conv2d` against mixbench's im2col + gemm op.
fn conv(c: &mut Criterion) {
    let dev = Device::Cpu;
    let x =
        candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, (64, 16, 32, 32), &dev).unwrap())
            .unwrap();
    let w = candle_core::Var::from_tensor(&Tensor::randn(0f32, 0.1, (32, 16, 3, 3), &dev).unwrap())
        .unwrap();
    let mut group = c.benchmark_group("conv3x3_fwd_bwd");
    group.sample_size(10);
    for stride in [1, 2] {
        group.bench_function(format!("candle_conv2d_s{stride}"), |b| {
            b.iter(|| {
                let y = x.conv2d(&w, 1, stride, 1, 1).unwrap();
                y.sqr().unwrap().sum_all().unwrap().backward().unwrap()
            })
        });
        group.bench_function(format!("im2col_gemm_s{stride}"), |b| {
            b.iter(|| {
                let y = conv2d_im2col(&x, &w, stride, 1).unwrap();
                y.sqr().unwrap().sum_all().unwrap().backward().unwrap()
            })
        });
    }
    group.finish();
}

/// Eval-mode forward (BatchNorm running statistics) of PreActResNet18 on a batch of 100, as
/// the clean evaluation runs it: widths 0.125 and 1.
fn eval_forward(c: &mut Criterion) {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (100, 3, 32, 32), &dev).unwrap();
    let mut group = c.benchmark_group("eval_forward");
    group.sample_size(10);
    for width in [0.125, 1.0] {
        let model = Model::build(
            "preactresnet18",
            json!({"width": width}).as_object().unwrap(),
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
        group.measurement_time(Duration::from_secs(if width < 1.0 { 5 } else { 20 }));
        group.bench_function(format!("preactresnet18_w{width}_b100"), |b| {
            b.iter(|| model.forward(&x, false).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench, conv, eval_forward);
criterion_main!(benches);
