//! 2-D convolution with optional bias.

use candle_core::{Result, Tensor};

use super::pytorch_uniform;
use crate::model::store::ParamBuilder;

/// A square-kernel 2-D convolution (`weight` [out, in, k, k], optional `bias` [out]).
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// Creates the layer's parameters under `b`.
    pub fn new(
        b: &ParamBuilder,
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    ) -> Result<Self> {
        let init = pytorch_uniform(cin * kernel * kernel);
        let weight = b.param((cout, cin, kernel, kernel), "weight", init)?;
        let bias = if bias {
            Some(b.param(cout, "bias", init)?)
        } else {
            None
        };
        Ok(Conv2d {
            weight,
            bias,
            stride,
            padding,
        })
    }

    /// Applies the convolution to an [N, C, H, W] input.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // On CPU candle's own conv backward is several times slower than im2col + gemm.
        let y = if x.device().is_cpu() {
            super::im2col::conv2d_im2col(x, &self.weight, self.stride, self.padding)?
        } else {
            x.conv2d(&self.weight, self.padding, self.stride, 1, 1)?
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
            None => Ok(y),
        }
    }
}
