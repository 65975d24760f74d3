//! Multi-layer perceptron for the flattening analysis (App. G): hidden layers `fc{i}` with
//! ReLU or LeakyReLU, an optional linear bottleneck followed by BatchNorm `bn{i}` and no
//! activation (as the reference's MNIST bottleneck net), then `out`.
//! Optional dropout after hidden layers (a number: every hidden layer but the bottleneck, as
//! the paper's Fig. 2; a list: one probability per hidden layer).
//! Mix points: 0 the input, i+1 the output of hidden layer i (after its dropout).

use candle_core::{Result, Tensor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Network;
use super::layers::{BatchNorm, Dropout, Linear, relu};
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
    bottleneck: Option<(usize, BatchNorm)>,
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
        let mut cin = inputs;
        for (i, &w) in p.hidden.iter().enumerate() {
            let w = if Some(i) == p.bottleneck {
                w
            } else {
                super::scaled(w, p.width)
            };
            layers.push(Linear::new(&b.pp(format!("fc{i}")), cin, w)?);
            cin = w;
        }
        let bottleneck = match p.bottleneck {
            Some(i) => Some((
                i,
                BatchNorm::new(&b.pp(format!("bn{i}")), p.hidden[i], 0.1)?,
            )),
            None => None,
        };
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
            bottleneck,
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
        let y = match &self.bottleneck {
            Some((b, bn)) if *b == i => bn.forward(&y, train)?,
            _ => match self.activation {
                Activation::Relu => relu(&y)?,
                Activation::LeakyRelu => candle_nn::ops::leaky_relu(&y, 0.01)?,
            },
        };
        match &self.dropout[i] {
            Some(d) => d.forward(&y, train),
            None => Ok(y),
        }
    }
}
