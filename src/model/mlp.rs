//! Multi-layer perceptron for the flattening analysis (App. G): hidden layers `fc{i}` with
//! ReLU or LeakyReLU, an optional linear bottleneck followed by BatchNorm `bn{i}` and no
//! activation (as the reference's MNIST bottleneck net), then `out`.
//! Optional dropout after hidden layers (a number: every hidden layer but the bottleneck, as
//! the paper's Fig. 2; a list: one probability per hidden layer), and optional BatchNorm `bn{i}`
//! after every hidden layer's linear map, before its activation (Fig. 2's "batch norm in all
//! layers").
//! Mix points: 0 the input, i+1 the output of hidden layer i (after its dropout).

use candle_core::{Result, Tensor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Network;
use super::layers::{BatchNorm, Dropout, Linear, leaky_relu, relu};
use super::store::ParamBuilder;

/// Hidden-layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// x for x > 0, 0.01·x otherwise (PyTorch's default slope).
    LeakyRelu,
}

/// MLP options from the suite's `model` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MlpParams {
    /// Widths of the hidden layers, input side first.
    pub hidden: Vec<usize>,
    /// Activation after each non-bottleneck hidden layer.
    #[serde(default = "default_activation")]
    pub activation: Activation,
    /// Index of the bottleneck hidden layer (BatchNorm, no activation), if any.
    #[serde(default)]
    pub bottleneck: Option<usize>,
    /// Dropout probability after hidden layers.
    #[serde(default)]
    pub dropout: Option<DropoutSpec>,
    /// BatchNorm after every hidden layer's linear map, not only the bottleneck's.
    #[serde(default)]
    pub batch_norm: bool,
    /// Multiplier on every hidden width except the bottleneck's (CPU-sized profiles).
    #[serde(default = "one")]
    pub width: f64,
}

fn one() -> f64 {
    1.0
}

impl MlpParams {
    /// Checks what `Mlp::new` needs, naming the field at fault (the suite points at it).
    pub fn validate(&self) -> crate::Result<()> {
        let err = |path: String, msg: String| Err(crate::Error::param(path, msg));
        if self.hidden.is_empty() {
            return err(
                "hidden".into(),
                "mlp needs at least one hidden layer".into(),
            );
        }
        if let Some(i) = self.hidden.iter().position(|&w| w == 0) {
            return err(
                format!("hidden[{i}]"),
                format!("mlp hidden layer {i} has width 0; every width must be >= 1"),
            );
        }
        if let Some(i) = self.bottleneck
            && i >= self.hidden.len()
        {
            return err(
                "bottleneck".into(),
                format!(
                    "mlp bottleneck index {i} is not a hidden layer (0..{})",
                    self.hidden.len()
                ),
            );
        }
        if !(self.width > 0.0 && self.width.is_finite()) {
            return err(
                "width".into(),
                format!("mlp width must be > 0, got {}", self.width),
            );
        }
        if let Some(DropoutSpec::PerLayer(v)) = &self.dropout
            && v.len() != self.hidden.len()
        {
            return err(
                "dropout".into(),
                format!(
                    "mlp dropout lists one probability per hidden layer: expected {}, got {}",
                    self.hidden.len(),
                    v.len()
                ),
            );
        }
        Ok(())
    }
}

/// Where dropout goes in an MLP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DropoutSpec {
    /// The same p after every hidden layer except the bottleneck.
    AllButBottleneck(f64),
    /// One p per hidden layer, input side first.
    PerLayer(Vec<f64>),
}

fn default_activation() -> Activation {
    Activation::LeakyRelu
}

/// The MLP network.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Linear>,
    bottleneck: Option<usize>,
    norms: Vec<Option<BatchNorm>>,
    dropout: Vec<Option<Dropout>>,
    activation: Activation,
    out: Linear,
}

impl Mlp {
    /// Builds an MLP from `inputs` features to `classes` logits.
    pub fn new(b: &ParamBuilder, inputs: usize, classes: usize, p: &MlpParams) -> Result<Self> {
        if p.hidden.is_empty() {
            candle_core::bail!("mlp needs at least one hidden layer");
        }
        if let Some(i) = p.hidden.iter().position(|&w| w == 0) {
            candle_core::bail!("mlp hidden layer {i} has width 0; every width must be >= 1");
        }
        if let Some(i) = p.bottleneck
            && i >= p.hidden.len()
        {
            candle_core::bail!(
                "mlp bottleneck index {i} is not a hidden layer (0..{})",
                p.hidden.len()
            );
        }
        if !(p.width > 0.0 && p.width.is_finite()) {
            candle_core::bail!("mlp width must be > 0, got {}", p.width);
        }
        let mut layers = Vec::new();
        let mut widths = Vec::new();
        let mut cin = inputs;
        for (i, &w) in p.hidden.iter().enumerate() {
            let w = if Some(i) == p.bottleneck {
                w
            } else {
                super::scaled(w, p.width)
            };
            layers.push(Linear::new(&b.pp(format!("fc{i}")), cin, w)?);
            widths.push(w);
            cin = w;
        }
        let norms = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                if p.batch_norm || Some(i) == p.bottleneck {
                    BatchNorm::new(&b.pp(format!("bn{i}")), w, 0.1).map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let probs: Vec<f64> = match &p.dropout {
            None => vec![0.0; p.hidden.len()],
            Some(DropoutSpec::AllButBottleneck(q)) => (0..p.hidden.len())
                .map(|i| if Some(i) == p.bottleneck { 0.0 } else { *q })
                .collect(),
            Some(DropoutSpec::PerLayer(v)) if v.len() == p.hidden.len() => v.clone(),
            Some(DropoutSpec::PerLayer(v)) => candle_core::bail!(
                "mlp dropout lists one probability per hidden layer: expected {}, got {}",
                p.hidden.len(),
                v.len()
            ),
        };
        let dropout = probs
            .iter()
            .map(|&q| {
                if q == 0.0 {
                    Ok(None)
                } else {
                    Dropout::new(q, b.noise()).map(Some)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp {
            layers,
            bottleneck: p.bottleneck,
            norms,
            dropout,
            activation: p.activation,
            out: Linear::new(&b.pp("out"), cin, classes)?,
        })
    }
}

impl Network for Mlp {
    fn num_segments(&self) -> usize {
        self.layers.len() + 1
    }

    fn forward_segment(&self, i: usize, h: &Tensor, train: bool) -> Result<Tensor> {
        let h = if h.rank() > 2 {
            h.flatten_from(1)?
        } else {
            h.clone()
        };
        if i == self.layers.len() {
            return self.out.forward(&h);
        }
        let y = self
            .layers
            .get(i)
            .ok_or_else(|| candle_core::Error::Msg(format!("mlp has no segment {i}")))?
            .forward(&h)?;
        let y = match &self.norms[i] {
            Some(bn) => bn.forward(&y, train)?,
            None => y,
        };
        let y = if self.bottleneck == Some(i) {
            y
        } else {
            match self.activation {
                Activation::Relu => relu(&y)?,
                Activation::LeakyRelu => leaky_relu(&y, 0.01)?,
            }
        };
        match &self.dropout[i] {
            Some(d) => d.forward(&y, train),
            None => Ok(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{InputSpec, Model};
    use candle_core::{DType, Device, Tensor};

    /// `batch_norm: true` puts a train-mode BatchNorm (batch mean, biased variance, eps 1e-5)
    /// between every hidden layer's linear map and its activation, and the bottleneck stays
    /// without activation: checked against the same arithmetic by hand, in f64.
    #[test]
    fn batch_norm_everywhere_normalises_every_hidden_layer_before_its_activation() {
        let params: serde_json::Map<String, serde_json::Value> = serde_json::from_value(
            serde_json::json!({"hidden": [3, 2], "bottleneck": 1, "batch_norm": true}),
        )
        .unwrap();
        let input = InputSpec {
            channels: 1,
            height: 1,
            width: 4,
            classes: 2,
        };
        let m =
            Model::build_with_dtype("mlp", &params, input, 5, &Device::Cpu, DType::F64).unwrap();
        let named: std::collections::BTreeMap<String, Vec<f64>> = m
            .store
            .params()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()))
            .collect();
        let names: Vec<&str> = named.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "bn0.bias",
                "bn0.weight",
                "bn1.bias",
                "bn1.weight",
                "fc0.bias",
                "fc0.weight",
                "fc1.bias",
                "fc1.weight",
                "out.bias",
                "out.weight"
            ]
        );
        let x: Vec<f64> = (0..20).map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0).collect();
        let linear = |h: &[Vec<f64>], w: &[f64], b: &[f64]| -> Vec<Vec<f64>> {
            h.iter()
                .map(|row| {
                    b.iter()
                        .enumerate()
                        .map(|(o, bo)| {
                            bo + row
                                .iter()
                                .enumerate()
                                .map(|(i, v)| v * w[o * row.len() + i])
                                .sum::<f64>()
                        })
                        .collect()
                })
                .collect()
        };
        let bn = |h: Vec<Vec<f64>>, g: &[f64], b: &[f64]| -> Vec<Vec<f64>> {
            let n = h.len() as f64;
            let mut out = h.clone();
            for c in 0..g.len() {
                let mean = h.iter().map(|r| r[c]).sum::<f64>() / n;
                let var = h.iter().map(|r| (r[c] - mean).powi(2)).sum::<f64>() / n;
                for (o, r) in out.iter_mut().zip(&h) {
                    o[c] = (r[c] - mean) / (var + 1e-5).sqrt() * g[c] + b[c];
                }
            }
            out
        };
        let leaky = |h: Vec<Vec<f64>>| -> Vec<Vec<f64>> {
            h.into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|v| if v > 0.0 { v } else { 0.01 * v })
                        .collect()
                })
                .collect()
        };
        let p = |n: &str| named[n].as_slice();
        let rows: Vec<Vec<f64>> = x.chunks(4).map(<[f64]>::to_vec).collect();
        let h0 = leaky(bn(
            linear(&rows, p("fc0.weight"), p("fc0.bias")),
            p("bn0.weight"),
            p("bn0.bias"),
        ));
        let h1 = bn(
            linear(&h0, p("fc1.weight"), p("fc1.bias")),
            p("bn1.weight"),
            p("bn1.bias"),
        );
        let want: Vec<f64> = linear(&h1, p("out.weight"), p("out.bias")).concat();
        let xt = Tensor::from_vec(x, (5, 1, 1, 4), &Device::Cpu).unwrap();
        let got: Vec<f64> = m
            .forward(&xt, true)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
        // Without the option, only the bottleneck has a BatchNorm.
        let mut plain = params.clone();
        plain.remove("batch_norm");
        let m = Model::build("mlp", &plain, input, 5, &Device::Cpu).unwrap();
        let bns: Vec<String> = m
            .store
            .params()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with("bn"))
            .collect();
        assert_eq!(bns, ["bn1.bias", "bn1.weight"]);
    }
}
