//! The engine learns: real digits with an MLP, synthetic images with PreActResNet18.

use candle_core::Device;
use mixbench::data::Preprocessing;
use mixbench::data::generated::synthetic::{SyntheticParams, generate};
use mixbench::model::{InputSpec, Model};
use mixbench::regularizer::registry;
use mixbench::scoring::LossKind;
use mixbench::train::{SgdConfig, SilentObserver, StepSchedule, TrainConfig, train};
use serde_json::json;

fn cfg(epochs: usize, batch: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: batch,
        loss: LossKind::BceSoftmax,
        optimizer: SgdConfig {
            lr,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-4,
        }
        .into(),
        schedule: StepSchedule::default(),
        eval_every: epochs,
        eval_batch_size: 500,
        checkpoint_every: 0,
        checkpoint_minutes: 0.0,
    }
}

#[test]
fn mlp_on_real_digits_reaches_90_percent() {
    let src = mixbench::data::registry::get("digits").unwrap();
    let opts = mixbench::data::LoadOptions {
        data_dir: "data".into(),
        allow_unverified: false,
        progress: None,
    };
    let ds = src.load(&json!({}), &opts).unwrap();
    let m = Model::build(
        "mlp",
        json!({"hidden": [128]}).as_object().unwrap(),
        InputSpec {
            channels: 1,
            height: 8,
            width: 8,
            classes: 10,
        },
        0,
        &Device::Cpu,
    )
    .unwrap();
    let reg = registry::build("none", &serde_json::Map::new()).unwrap();
    let out = train(
        &m,
        &ds,
        &src.default_preprocessing(),
        reg.as_ref(),
        &cfg(20, 32, 0.05),
        0,
        None,
        &mut SilentObserver,
    )
    .unwrap();
    let acc = 100.0 - out.final_metrics.unwrap().error_pct;
    println!(
        "digits MLP test accuracy {acc:.2}% over {} images",
        out.final_metrics.unwrap().n
    );
    assert!(acc >= 90.0, "accuracy {acc}");
}

#[test]
fn preactresnet18_learns_synthetic_images_with_each_regularizer() {
    let ds = generate(&SyntheticParams {
        classes: 10,
        train_size: 500,
        test_size: 200,
        size: 16,
        noise: 20.0,
        ..Default::default()
    })
    .unwrap();
    let pre = Preprocessing {
        crop_padding: 2,
        hflip: true,
        ..Preprocessing::centered(3)
    };
    for (name, params) in [
        ("none", json!({})),
        ("input_mixup", json!({"alpha": 1.0})),
        ("manifold_mixup", json!({"alpha": 2.0, "layers": [0, 1, 2]})),
    ] {
        let m = Model::build(
            "preactresnet18",
            json!({"width": 0.125}).as_object().unwrap(),
            InputSpec {
                channels: 3,
                height: 16,
                width: 16,
                classes: 10,
            },
            1,
            &Device::Cpu,
        )
        .unwrap();
        let reg = registry::build(name, params.as_object().unwrap()).unwrap();
        let mut config = cfg(8, 25, 0.1);
        config.schedule = StepSchedule {
            milestones: vec![6],
            gammas: vec![0.1],
        };
        let started = std::time::Instant::now();
        let out = train(
            &m,
            &ds,
            &pre,
            reg.as_ref(),
            &config,
            1,
            None,
            &mut SilentObserver,
        )
        .unwrap();
        let err = out.final_metrics.unwrap().error_pct;
        println!(
            "{name}: test error {err:.1}% (chance 90%) after {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert!(
            err < 30.0,
            "{name}: test error {err}% is not well above chance"
        );
    }
}
