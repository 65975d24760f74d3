//! The optimizer chosen per suite: `optimizer: {lr, momentum, ...}` is SGD (the default, so
//! existing suites and their hashes are unchanged), `optimizer: {name: adam, lr, ...}` is Adam.

use std::collections::BTreeMap;

use candle_core::{Tensor, Var, backprop::GradStore};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};

use super::adam::{Adam, AdamConfig};
use super::sgd::{Sgd, SgdConfig};

/// Optimizer settings from the suite.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OptimizerConfig {
    /// SGD (`name: sgd` or no name), serialised without a name.
    Sgd(SgdConfig),
    /// Adam (`name: adam`).
    Adam(AdamConfig),
}

impl<'de> Deserialize<'de> for OptimizerConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut v = serde_json::Value::deserialize(d)?;
        let name = v.get("name").map(|n| n.as_str().map(str::to_string));
        match name {
            None => serde_json::from_value(v).map(Self::Sgd),
            Some(Some(n)) if n == "sgd" => {
                if let Some(m) = v.as_object_mut() {
                    m.remove("name");
                }
                serde_json::from_value(v).map(Self::Sgd)
            }
            Some(Some(n)) if n == "adam" => serde_json::from_value(v).map(Self::Adam),
            Some(n) => {
                return Err(D::Error::custom(format!(
                    "unknown optimizer {}; expected `sgd` (the default) or `adam`",
                    n.map_or("(not a string)".to_string(), |s| format!("`{s}`"))
                )));
            }
        }
        .map_err(D::Error::custom)
    }
}

impl From<SgdConfig> for OptimizerConfig {
    fn from(c: SgdConfig) -> Self {
        Self::Sgd(c)
    }
}

impl OptimizerConfig {
    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd(c) => c.lr,
            Self::Adam(c) => c.lr,
        }
    }

    /// Short name for listings.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sgd(_) => "sgd",
            Self::Adam(_) => "adam",
        }
    }

    /// Checks the values (before anything trains).
    pub fn validate(&self) -> std::result::Result<(), String> {
        match self {
            Self::Sgd(c) => c.validate(),
            Self::Adam(c) => c.validate(),
        }
    }
}

/// A running optimizer.
#[derive(Debug, Clone)]
pub enum Optimizer {
    /// SGD with momentum buffers.
    Sgd(Sgd),
    /// Adam with moment estimates.
    Adam(Adam),
}

impl Optimizer {
    /// A fresh optimizer for `cfg`.
    pub fn new(cfg: &OptimizerConfig) -> Self {
        match cfg {
            OptimizerConfig::Sgd(c) => Self::Sgd(Sgd::new(c.clone())),
            OptimizerConfig::Adam(c) => Self::Adam(Adam::new(c.clone())),
        }
    }

    /// One step at learning rate `lr`.
    pub fn step(
        &mut self,
        params: &[(String, Var)],
        grads: &GradStore,
        lr: f64,
    ) -> candle_core::Result<()> {
        match self {
            Self::Sgd(o) => o.step(params, grads, lr),
            Self::Adam(o) => o.step(params, grads, lr),
        }
    }

    /// The state as named tensors, keys distinct from `param/` and `buffer/` (checkpoints).
    pub fn state(&self) -> candle_core::Result<BTreeMap<String, Tensor>> {
        match self {
            // Copies: the CPU step updates the buffers in place, and a snapshot must not move.
            Self::Sgd(o) => o
                .buffers()
                .iter()
                .map(|(n, t)| Ok((format!("momentum/{n}"), t.copy()?)))
                .collect(),
            Self::Adam(o) => o.state(),
        }
    }

    /// Restores what [`Optimizer::state`] wrote.
    pub fn set_state(&mut self, state: &BTreeMap<String, Tensor>) -> candle_core::Result<()> {
        match self {
            Self::Sgd(o) => o.set_buffers(
                state
                    .iter()
                    .filter_map(|(k, t)| {
                        k.strip_prefix("momentum/")
                            .map(|n| (n.to_string(), t.clone()))
                    })
                    .collect(),
            ),
            Self::Adam(o) => o.set_state(state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state snapshot keeps its values when the optimizer steps again (the CPU step updates
    /// its own moments and buffers in place).
    #[test]
    fn a_state_snapshot_does_not_move_with_later_steps() {
        use candle_core::{Device, Var};
        for cfg in [
            r#"{"lr": 0.1, "momentum": 0.9}"#,
            r#"{"name": "adam", "lr": 0.1}"#,
        ] {
            let mut opt = Optimizer::new(&serde_json::from_str(cfg).unwrap());
            let p = Var::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap();
            let params = vec![("w".to_string(), p.clone())];
            let step = |opt: &mut Optimizer| {
                let g = p
                    .as_tensor()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                opt.step(&params, &g, 0.1).unwrap();
            };
            step(&mut opt);
            let snap = opt.state().unwrap();
            let before: Vec<Vec<f32>> = snap
                .values()
                .map(|t| {
                    t.flatten_all()
                        .unwrap()
                        .to_dtype(candle_core::DType::F32)
                        .unwrap()
                        .to_vec1()
                        .unwrap()
                })
                .collect();
            step(&mut opt);
            let after: Vec<Vec<f32>> = snap
                .values()
                .map(|t| {
                    t.flatten_all()
                        .unwrap()
                        .to_dtype(candle_core::DType::F32)
                        .unwrap()
                        .to_vec1()
                        .unwrap()
                })
                .collect();
            assert_eq!(before, after, "{cfg}");
            let live = opt.state().unwrap();
            assert_ne!(
                snap.values().next().unwrap().to_vec1::<f32>().unwrap(),
                live.values().next().unwrap().to_vec1::<f32>().unwrap(),
                "{cfg}"
            );
        }
    }

    #[test]
    fn sgd_is_the_default_and_serialises_as_before() {
        let a: OptimizerConfig = serde_json::from_str(r#"{"lr": 0.1, "momentum": 0.9}"#).unwrap();
        let b: OptimizerConfig =
            serde_json::from_str(r#"{"name": "sgd", "lr": 0.1, "momentum": 0.9}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"lr":0.1,"momentum":0.9,"nesterov":false,"weight_decay":0.0}"#
        );
        let adam: OptimizerConfig =
            serde_json::from_str(r#"{"name": "adam", "lr": 1e-4}"#).unwrap();
        assert_eq!(adam.name(), "adam");
        assert!(
            serde_json::to_string(&adam)
                .unwrap()
                .contains(r#""name":"adam""#)
        );
    }

    #[test]
    fn unknown_names_and_fields_are_errors() {
        let e = serde_json::from_str::<OptimizerConfig>(r#"{"name": "rmsprop", "lr": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rmsprop") && e.contains("adam"), "{e}");
        let e = serde_json::from_str::<OptimizerConfig>(
            r#"{"name": "adam", "lr": 1, "momentum": 0.9}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("momentum"), "{e}");
    }
}
