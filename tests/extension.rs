//! Extending mixbench from outside the crate: a regularizer registered through `App` is found
//! by name, trains through the seam's loss term, and a taken name is refused.

use candle_core::{Device, Tensor};
use mixbench::data::registry as datasets;
use mixbench::experiment::ExperimentConfig;
use mixbench::registry::Entry;
use mixbench::regularizer::{BatchInfo, Regularizer, Treatment, registry};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

/// Adds β·mean(Σ logits²) to the loss (a logit penalty; β = 0 must train exactly as `none`).
struct LogitPenalty(f64);

impl Regularizer for LogitPenalty {
    fn name(&self) -> &str {
        "logit_penalty"
    }
    fn treat(&self, b: &BatchInfo<'_>, _: &mut ChaCha8Rng) -> mixbench::Result<Treatment> {
        let beta = self.0;
        let mut t = Treatment::clean(b);
        t.loss_term = Some(Box::new(move |logits: &Tensor, _: &Tensor| {
            logits.sqr()?.sum(1)?.mean(0)? * beta
        }));
        Ok(t)
    }
}

fn build(p: &Map<String, Value>) -> mixbench::Result<Box<dyn Regularizer>> {
    Ok(Box::new(LogitPenalty(
        p.get("beta").and_then(Value::as_f64).unwrap_or(0.0),
    )))
}

fn train(reg: &dyn Regularizer) -> Vec<f64> {
    let data = datasets::get("synthetic")
        .unwrap()
        .load(
            &json!({"classes": 3, "train_size": 48, "test_size": 12, "size": 6}),
            &mixbench::data::LoadOptions {
                data_dir: ".".into(),
                allow_unverified: false,
                progress: None,
            },
        )
        .unwrap();
    let cfg: ExperimentConfig = serde_json::from_value(json!({
        "dataset": {"name": "synthetic"},
        "model": {"arch": "mlp", "hidden": [16]},
        "regularizer": {"name": "none"},
        "optimizer": {"lr": 0.1, "momentum": 0.9},
        "epochs": 2,
        "batch_size": 12
    }))
    .unwrap();
    let model = mixbench::model::Model::build(
        "mlp",
        json!({"hidden": [16]}).as_object().unwrap(),
        mixbench::model::InputSpec {
            channels: data.channels,
            height: data.height,
            width: data.width,
            classes: data.num_classes,
        },
        5,
        &Device::Cpu,
    )
    .unwrap();
    let pre = datasets::get("synthetic").unwrap().default_preprocessing();
    let out = mixbench::train::trainer::train(
        &model,
        &data,
        &pre,
        reg,
        &cfg.train_config(),
        5,
        None,
        &mut mixbench::train::SilentObserver,
    )
    .unwrap();
    out.epochs.iter().map(|e| e.train_loss).collect()
}

#[test]
fn a_regularizer_registered_through_app_trains_through_its_loss_term() {
    mixbench::App::new()
        .regularizer(Entry::new(
            "logit_penalty",
            "test: β·mean Σ logits²; params: beta",
            build,
        ))
        .register()
        .unwrap();
    assert!(registry::names().contains(&"logit_penalty"));
    let zero = registry::build("logit_penalty", json!({"beta": 0.0}).as_object().unwrap()).unwrap();
    let some = registry::build("logit_penalty", json!({"beta": 0.5}).as_object().unwrap()).unwrap();
    let none = registry::build("none", &Map::new()).unwrap();
    let base = train(none.as_ref());
    assert_eq!(train(zero.as_ref()), base, "β = 0 adds an exact zero");
    let penalised = train(some.as_ref());
    assert!(
        penalised[0] > base[0],
        "the term is added to the loss: {penalised:?} vs {base:?}"
    );
    let again = mixbench::App::new()
        .regularizer(Entry::new("logit_penalty", "again", build))
        .register()
        .unwrap_err()
        .to_string();
    assert!(again.contains("the name is taken"), "{again}");
    let builtin = mixbench::App::new()
        .regularizer(Entry::new("cutmix", "shadowing a built-in", build))
        .register()
        .unwrap_err()
        .to_string();
    assert!(
        builtin.contains("cannot register regularizer `cutmix`"),
        "{builtin}"
    );
}
