//! What the benches share: the training step they time and the model they build.
#![allow(dead_code)]

use candle_core::{Device, Tensor};
use mixbench::model::{InputSpec, Model};
use mixbench::regularizer::{MixPlan, mix_hidden, soft_targets};
use mixbench::scoring::LossKind;
use mixbench::scoring::loss;
use mixbench::train::{Optimizer, OptimizerConfig, SgdConfig};
use serde_json::json;

/// One training step: targets (mixed by `plan`), forward (mixing at its point), BCE on
/// softmax, backward, optimizer update at `lr`; waits for the device, so a GPU step is timed
/// whole.
pub fn train_step(
    model: &Model,
    opt: &mut Optimizer,
    x: &Tensor,
    labels: &[u32],
    plan: Option<&MixPlan>,
    lr: f64,
) {
    let t = soft_targets(labels, 10, plan, x.device()).unwrap();
    let logits = match plan {
        Some(p) => {
            let f = |h: &Tensor| mix_hidden(h, p);
            model.forward_with(x, true, Some((p.layer, &f))).unwrap()
        }
        None => model.forward(x, true).unwrap(),
    };
    let l = loss(LossKind::BceSoftmax, &logits, &t).unwrap();
    opt.step(&model.store.params(), &l.backward().unwrap(), lr)
        .unwrap();
    x.device().synchronize().unwrap();
}

/// `arch` at `width` for 32×32 RGB images of 10 classes, parameters from seed 0.
pub fn cifar_model(arch: &str, width: f64, dev: &Device) -> Model {
    Model::build(
        arch,
        json!({"width": width}).as_object().unwrap(),
        InputSpec {
            channels: 3,
            height: 32,
            width: 32,
            classes: 10,
        },
        0,
        dev,
    )
    .unwrap()
}

/// The reference's SGD: lr 0.1, momentum 0.9, Nesterov, weight decay 1e-4.
pub fn reference_sgd() -> Optimizer {
    Optimizer::new(&OptimizerConfig::Sgd(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
    }))
}

/// A reversed permutation with λ = 0.7 at mix point 1 (manifold mixup after the first stage).
pub fn manifold_plan(batch: usize, layer: usize) -> MixPlan {
    MixPlan {
        layer,
        lambda: 0.7,
        perm: (0..batch as u32).rev().collect(),
        block_gradient: false,
        lambdas: None,
    }
}
