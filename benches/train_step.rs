//! One SGD step (forward, BCE-on-softmax loss, backward, update) of PreActResNet18 on a batch
//! of 64 CIFAR-sized images: width 1 and 0.125, no mixing vs manifold mixup.
//!
//! A second group times one convolution's forward + backward: candle's `conv2d` against the
//! per-slab im2col + gemm kernel the models use on CPU; `conv_layer` times each distinct
//! PreActResNet18 width-1 convolution's forward, input gradient and weight gradient apart.
//!
//! Run: `cargo bench --bench train_step`. Width 1 is slow on CPU (seconds per step), so its
//! sample count is the minimum criterion allows.

use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use mixbench::kernels::conv_gemm::{conv2d_gemm, conv2d_input_grad, conv2d_weight_grad};

mod common;

use common::{cifar_model, manifold_plan, reference_sgd, train_step};

fn bench(c: &mut Criterion) {
    // The pinned thread settings live in the environment: start again with them, as `mixbench` does.
    mixbench::threads::restart_with_pinned_threads();
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
        let model = cifar_model(arch, width, &dev);
        let mut opt = reference_sgd();
        group.sample_size(samples);
        group.measurement_time(Duration::from_secs(if width < 1.0 { 5 } else { 30 }));
        group.bench_function(format!("{arch}_w{width}_b{batch}_none"), |b| {
            b.iter(|| train_step(&model, &mut opt, &x, &labels, None, 0.1))
        });
        let plan = manifold_plan(batch, 1);
        group.bench_function(format!("{arch}_w{width}_b{batch}_manifold_k1"), |b| {
            b.iter(|| train_step(&model, &mut opt, &x, &labels, Some(&plan), 0.1))
        });
    }
    group.finish();
}

/// Forward + backward of one 3×3 convolution (batch 64, 16 channels, 32×32 → 32 channels,
/// stride 1 and 2): candle's own `conv2d` against mixbench's per-slab im2col + gemm kernel.
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
                let y = conv2d_gemm(&x, &w, stride, 1).unwrap();
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
        let model = cifar_model("preactresnet18", width, &dev);
        group.measurement_time(Duration::from_secs(if width < 1.0 { 5 } else { 20 }));
        group.bench_function(format!("preactresnet18_w{width}_b100"), |b| {
            b.iter(|| model.forward(&x, false).unwrap())
        });
    }
    group.finish();
}

/// Each distinct convolution of PreActResNet18 at widths 1 and 0.125 (batch 64, 32×32 input):
/// forward, input gradient and weight gradient apart, as the train step runs them.
fn conv_layers(c: &mut Criterion) {
    let dev = Device::Cpu;
    let mut group = c.benchmark_group("conv_layer");
    group.sample_size(10);
    // (in channels, map size, out channels, kernel, stride)
    for (ci, h, o, k, s) in [
        (3, 32, 64, 3, 1),
        (64, 32, 64, 3, 1),
        (64, 32, 128, 3, 2),
        (64, 32, 128, 1, 2),
        (128, 16, 128, 3, 1),
        (128, 16, 256, 3, 2),
        (256, 8, 256, 3, 1),
        (256, 8, 512, 3, 2),
        (512, 4, 512, 3, 1),
        // Width 0.125: channels under 64 take the `gemm` crate path.
        (3, 32, 8, 3, 1),
        (8, 32, 8, 3, 1),
        (8, 32, 16, 3, 2),
        (8, 32, 16, 1, 2),
        (16, 16, 16, 3, 1),
        (16, 16, 32, 3, 2),
        (16, 16, 32, 1, 2),
        (32, 8, 32, 3, 1),
        (32, 8, 64, 3, 2),
        (32, 8, 64, 1, 2),
        (64, 4, 64, 3, 1),
    ] {
        let pad = k / 2;
        let x = Tensor::randn(0f32, 1.0, (64, ci, h, h), &dev).unwrap();
        let w = Tensor::randn(0f32, 0.1, (o, ci, k, k), &dev).unwrap();
        let y = conv2d_gemm(&x, &w, s, pad).unwrap();
        let gout = Tensor::randn(0f32, 1.0, y.dims(), &dev).unwrap();
        let name = format!("c{ci}_{h}x{h}_o{o}_k{k}_s{s}");
        group.bench_function(format!("{name}/forward"), |b| {
            b.iter(|| conv2d_gemm(&x, &w, s, pad).unwrap())
        });
        group.bench_function(format!("{name}/input_grad"), |b| {
            b.iter(|| conv2d_input_grad(&x, &w, &gout, s, pad).unwrap())
        });
        group.bench_function(format!("{name}/weight_grad"), |b| {
            b.iter(|| conv2d_weight_grad(&x, &w, &gout, s, pad).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench, conv, eval_forward, conv_layers);
criterion_main!(benches);
