//! Fully connected layer.

use candle_core::{Result, Tensor};

use super::pytorch_uniform;
use crate::model::store::ParamBuilder;

/// y = x Wᵀ + b with `weight` [out, in] and `bias` [out].
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// Creates the layer's parameters under `b`.
    pub fn new(b: &ParamBuilder, cin: usize, cout: usize) -> Result<Self> {
        let init = pytorch_uniform(cin);
        Ok(Linear {
            weight: b.param((cout, cin), "weight", init)?,
            bias: b.param(cout, "bias", init)?,
        })
    }

    /// Applies the layer to an [N, in] input.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if crate::kernels::cpu_float::supported(x) && x.rank() == 2 {
            return crate::kernels::linear::linear_cpu(x, &self.weight, &self.bias);
        }
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}
