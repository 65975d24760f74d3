//! 2-D convolution with optional bias.

use candle_core::{Result, Tensor};

use super::pytorch_uniform;
use crate::model::store::ParamBuilder;

/// How a convolution runs on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPath {
    /// mixbench's im2col + gemm custom ops (CPU only: candle's own conv backward is several
    /// times slower there).
    Im2colGemm,
    /// candle's `conv2d` (CUDA and other devices, where the custom op has no kernel).
    Candle,
}

/// The convolution path for a device.
pub fn conv_path(loc: candle_core::DeviceLocation) -> ConvPath {
    match loc {
        candle_core::DeviceLocation::Cpu => ConvPath::Im2colGemm,
        _ => ConvPath::Candle,
    }
}

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
        let y = match conv_path(x.device().location()) {
            ConvPath::Im2colGemm => {
                crate::kernels::conv_gemm::conv2d_gemm(x, &self.weight, self.stride, self.padding)?
            }
            ConvPath::Candle => x.conv2d(&self.weight, self.padding, self.stride, 1, 1)?,
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
            None => Ok(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DeviceLocation;

    #[test]
    fn the_custom_op_runs_on_cpu_and_candle_conv_elsewhere() {
        assert_eq!(conv_path(DeviceLocation::Cpu), ConvPath::Im2colGemm);
        assert_eq!(
            conv_path(DeviceLocation::Cuda { gpu_id: 0 }),
            ConvPath::Candle
        );
        assert_eq!(
            conv_path(DeviceLocation::Metal { gpu_id: 0 }),
            ConvPath::Candle
        );
    }
}
