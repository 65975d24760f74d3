//! Batch normalisation with PyTorch's semantics (biased batch variance to normalise,
//! unbiased variance in the running estimate, `momentum` weighting the new batch).

use candle_core::{DType, Result, Tensor, Var};

use crate::model::store::ParamBuilder;

/// BatchNorm over the channel axis (dim 1) of [N, C] or [N, C, H, W] inputs.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    momentum: f64,
    eps: f64,
}

impl BatchNorm {
    /// Creates `weight` (1, or U(0,1) under `bn_init: torch1.0`), `bias`=0, `running_mean`=0,
    /// `running_var`=1 under `b`.
    pub fn new(b: &ParamBuilder, channels: usize, momentum: f64) -> Result<Self> {
        Ok(BatchNorm {
            weight: b.param(channels, "weight", b.bn_weight_init())?,
            bias: b.param(channels, "bias", candle_nn::Init::Const(0.0))?,
            running_mean: b.buffer(channels, "running_mean", 0.0)?,
            running_var: b.buffer(channels, "running_var", 1.0)?,
            momentum,
            eps: 1e-5,
        })
    }

    /// Normalises `x`; in train mode with batch statistics (and updates the running ones).
    ///
    /// Train mode computes in f64, as PyTorch's CPU kernel accumulates its statistics in double:
    /// f32 sums over N·H·W values are off by ~1e-6, enough to flip near-zero ReLU inputs and
    /// move gradients by percents against the reference.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let rank = x.rank();
        let c = x.dim(1)?;
        let bshape: Vec<usize> = (0..rank).map(|i| if i == 1 { c } else { 1 }).collect();
        let dtype = x.dtype();
        if train {
            // Channels first ([C, N, ...], contiguous): candle's CPU sum is fast only over
            // trailing contiguous dims, and the backward of every broadcast below is such a sum.
            let xc = x.to_dtype(DType::F64)?.transpose(0, 1)?.contiguous()?;
            let trailing: Vec<usize> = (1..rank).collect();
            let cshape: Vec<usize> = (0..rank).map(|i| if i == 0 { c } else { 1 }).collect();
            let n = x.elem_count() / c;
            let mean = xc.mean_keepdim(trailing.as_slice())?;
            let centred = xc.broadcast_sub(&mean)?;
            let var = centred.sqr()?.mean_keepdim(trailing.as_slice())?;
            let m = self.momentum;
            let unbiased = if n > 1 {
                n as f64 / (n as f64 - 1.0)
            } else {
                1.0
            };
            let new_mean = ((self.running_mean.as_tensor() * (1.0 - m))?
                + (mean.detach().flatten_all()?.to_dtype(dtype)? * m)?)?;
            let new_var = ((self.running_var.as_tensor() * (1.0 - m))?
                + (var.detach().flatten_all()?.to_dtype(dtype)? * (m * unbiased))?)?;
            self.running_mean.set(&new_mean.detach())?;
            self.running_var.set(&new_var.detach())?;
            let inv = (var + self.eps)?.sqrt()?.recip()?;
            let w = self
                .weight
                .to_dtype(DType::F64)?
                .reshape(cshape.as_slice())?;
            let b = self.bias.to_dtype(DType::F64)?.reshape(cshape.as_slice())?;
            return centred
                .broadcast_mul(&w.broadcast_mul(&inv)?)?
                .broadcast_add(&b)?
                .transpose(0, 1)?
                .to_dtype(dtype)?
                .contiguous();
        }
        // Running statistics are buffers, never trained: detached, so a backward pass through
        // eval mode (FGSM) does not sum their gradients over N·H·W.
        let mean = self
            .running_mean
            .as_tensor()
            .detach()
            .reshape(bshape.as_slice())?;
        let var = self
            .running_var
            .as_tensor()
            .detach()
            .reshape(bshape.as_slice())?;
        let inv = (var + self.eps)?.sqrt()?.recip()?;
        let scale = self
            .weight
            .reshape(bshape.as_slice())?
            .broadcast_mul(&inv)?;
        x.broadcast_sub(&mean)?
            .broadcast_mul(&scale)?
            .broadcast_add(&self.bias.reshape(bshape.as_slice())?)
    }
}
