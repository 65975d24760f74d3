//! Adam against PyTorch: three `torch.optim.Adam` steps (weight decay on) on a bottleneck MLP,
//! from `tests/fixtures/reference/adam_mlp.safetensors` (`tools/reference/make_adam_fixture.py`).
//! Both sides compute in float64, so parameters, moments and losses agree to ~1e-12.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use mixbench::model::{InputSpec, Model};
use mixbench::regularizer::soft_targets;
use mixbench::scoring::LossKind;
use mixbench::scoring::loss;
use mixbench::train::{Adam, AdamConfig, adam::AdamName};
use serde_json::json;

const FIXTURE: &str = "tests/fixtures/reference/adam_mlp.safetensors";

fn prefixed(all: &BTreeMap<String, Tensor>, p: &str) -> BTreeMap<String, Tensor> {
    all.iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(&format!("{p}."))
                .map(|n| (n.to_string(), v.clone()))
        })
        .collect()
}

fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let a: Vec<f64> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f64> = b.flatten_all().unwrap().to_vec1().unwrap();
    let scale = b.iter().fold(1e-12f64, |m, x| m.max(x.abs()));
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f64, f64::max)
        / scale
}

/// Runs our Adam on the fixture with `cfg`; returns the worst relative error over parameters
/// after the steps and the per-step losses.
fn run(cfg: AdamConfig) -> (f64, Vec<f64>, BTreeMap<String, f64>) {
    let dev = Device::Cpu;
    let all: BTreeMap<String, Tensor> = candle_core::safetensors::load(FIXTURE, &dev)
        .unwrap()
        .into_iter()
        .collect();
    let params = json!({"hidden": [8, 3, 8], "bottleneck": 1})
        .as_object()
        .cloned()
        .unwrap();
    let spec = InputSpec {
        channels: 1,
        height: 2,
        width: 3,
        classes: 4,
    };
    let model = Model::build_with_dtype("mlp", &params, spec, 0, &dev, DType::F64).unwrap();
    model.store.load(&prefixed(&all, "init")).unwrap();
    let x = all["input"].clone();
    let labels: Vec<u32> = all["labels"]
        .to_vec1::<f64>()
        .unwrap()
        .iter()
        .map(|v| *v as u32)
        .collect();
    let lr = cfg.lr;
    let mut opt = Adam::new(cfg);
    let vars = model.store.params();
    let mut losses = Vec::new();
    for _ in 0..3 {
        let logits = model.forward(&x, true).unwrap();
        let t = soft_targets(&labels, 4, None, &dev).unwrap();
        let l = loss(LossKind::BceSoftmax, &logits, &t).unwrap();
        losses.push(l.to_scalar::<f64>().unwrap());
        opt.step(&vars, &l.backward().unwrap(), lr).unwrap();
    }
    let after = prefixed(&all, "after");
    let mut worst = 0f64;
    for (name, v) in vars.iter().chain(model.store.buffers().iter()) {
        worst = worst.max(max_rel(v.as_tensor(), &after[name]));
    }
    let state = opt.state().unwrap();
    let mut moments = BTreeMap::new();
    for what in ["exp_avg", "exp_avg_sq"] {
        let want = prefixed(&all, what);
        let e = want
            .iter()
            .map(|(n, w)| max_rel(&state[&format!("adam/{what}/{n}")], w))
            .fold(0f64, f64::max);
        moments.insert(what.to_string(), e);
    }
    (worst, losses, moments)
}

fn fixture_config() -> AdamConfig {
    AdamConfig {
        name: AdamName::Adam,
        lr: 0.01,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weight_decay: 1e-3,
    }
}

#[test]
fn adam_matches_pytorch_fixture() {
    let (worst, losses, moments) = run(fixture_config());
    let all = candle_core::safetensors::load(FIXTURE, &Device::Cpu).unwrap();
    let want: Vec<f64> = all["losses"].to_vec1().unwrap();
    for (a, b) in losses.iter().zip(&want) {
        assert!((a - b).abs() < 1e-12, "loss {a} vs {b}");
    }
    assert!(
        worst < 1e-10,
        "parameters/buffers after 3 steps: rel {worst:e}"
    );
    for (what, e) in moments {
        assert!(e < 1e-10, "{what}: rel {e:e}");
    }
}

/// The comparison can fail: AdamW-style decoupled decay or no weight decay are caught.
#[test]
fn adam_fixture_detects_a_wrong_rule() {
    let mut c = fixture_config();
    c.weight_decay = 0.0;
    let (worst, _, _) = run(c);
    assert!(worst > 1e-7, "no weight decay went unnoticed: {worst:e}");
    let mut c = fixture_config();
    c.betas = [0.8, 0.999];
    let (worst, _, _) = run(c);
    assert!(worst > 1e-4, "a wrong beta1 went unnoticed: {worst:e}");
}
