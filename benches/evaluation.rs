//! FGSM evaluation against clean evaluation of the same model on the same test images: FGSM
//! adds one forward + backward to get the input gradient, so it should cost about 3× clean
//! (issue: ≤ 3.5×). Also one deformation evaluation (warp + clean pass).
//!
//! Run: `cargo bench --bench evaluation`.

use std::time::Duration;

use candle_core::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use mixbench::data::DatasetSource;
use mixbench::data::generated::synthetic::SyntheticSource;
use mixbench::eval::{EvalContext, registry};
use mixbench::model::{InputSpec, Model};
use serde_json::json;

fn bench(c: &mut Criterion) {
    // The pinned thread settings live in the environment: start again with them, as `mixbench` does.
    mixbench::threads::restart_with_pinned_threads();
    mixbench::memory::keep_freed_memory();
    let dev = Device::Cpu;
    let src = SyntheticSource;
    let data = src
        .load(
            &json!({"classes": 10, "train_size": 10, "test_size": 200, "size": 32}),
            &mixbench::data::LoadOptions {
                data_dir: "data".into(),
                allow_unverified: false,
                progress: None,
            },
        )
        .unwrap();
    let pre = src.default_preprocessing();
    let model = Model::build(
        "preactresnet18",
        json!({"width": 0.125}).as_object().unwrap(),
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
    let ctx = EvalContext {
        model: &model,
        data: &data,
        preprocessing: &pre,
        seed: 0,
        batch_size: 100,
    };
    let mut group = c.benchmark_group("evaluate_200_images_preactresnet18_w0.125");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for (name, params) in [
        ("clean", json!({})),
        ("fgsm", json!({"epsilon": 0.03})),
        ("rotation", json!({"degrees": 20})),
    ] {
        let ev = (registry::get(name).unwrap().build)(params.as_object().unwrap()).unwrap();
        group.bench_function(name, |b| b.iter(|| ev.evaluate(&ctx).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
