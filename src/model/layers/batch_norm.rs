//! Batch normalisation with PyTorch's semantics (biased batch variance to normalise,
//! unbiased variance in the running estimate, `momentum` weighting the new batch).

use std::sync::Arc;

use candle_core::{DType, Result, Tensor, Var};

use crate::kernels::batch_norm::{NormApply, batch_mean_var, eval_norm_params, train_norm_params};
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
        self.forward_fused(x, train, false)
    }

    /// `relu(self.forward(x, train))`, in one pass on the CPU.
    pub fn forward_relu(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_fused(x, train, true)
    }

    fn forward_fused(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        if !crate::kernels::cpu_float::supported(x) {
            let y = self.forward_ops(x, train)?;
            return if relu { super::relu(&y) } else { Ok(y) };
        }
        let x = x.contiguous()?;
        let params = if train {
            let (mean, var) = batch_mean_var(&x)?;
            let dev = x.device();
            let mean_t = Tensor::new(mean.as_slice(), dev)?;
            let var_t = Tensor::new(var.as_slice(), dev)?;
            self.update_running(&mean_t, &var_t, x.elem_count() / x.dim(1)?, x.dtype())?;
            train_norm_params(mean, &var, &self.weight, &self.bias, self.eps, relu)?
        } else {
            eval_norm_params(
                self.running_mean.as_tensor(),
                self.running_var.as_tensor(),
                &self.weight,
                &self.bias,
                self.eps,
                relu,
            )?
        };
        x.apply_op3(&self.weight, &self.bias, NormApply(Arc::new(params)))
    }

    /// Moves the running statistics towards the batch's `mean` and biased `var` (f64, [c]).
    fn update_running(&self, mean: &Tensor, var: &Tensor, n: usize, dtype: DType) -> Result<()> {
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
        self.running_var.set(&new_var.detach())
    }

    /// The same map from candle ops, for devices without the CPU kernels.
    fn forward_ops(&self, x: &Tensor, train: bool) -> Result<Tensor> {
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
            self.update_running(&mean, &var, n, dtype)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn values(shape: &[usize], salt: f64, dtype: DType) -> Tensor {
        let len: usize = shape.iter().product();
        let v: Vec<f64> = (0..len)
            .map(|i| ((i as f64 * 0.61 + salt).sin() * 2.0).round() / 3.0 + (i as f64).cos() * 0.1)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    fn layer(c: usize, dtype: DType) -> BatchNorm {
        let var = |t: Tensor| Var::from_tensor(&t).unwrap();
        BatchNorm {
            weight: var(values(&[c], 0.3, dtype)).as_tensor().clone(),
            bias: var(values(&[c], 1.7, dtype)).as_tensor().clone(),
            running_mean: var(values(&[c], 2.9, dtype)),
            running_var: var((values(&[c], 4.1, dtype).abs().unwrap() + 0.5).unwrap()),
            momentum: 0.1,
            eps: 1e-5,
        }
    }

    fn rel(a: &Tensor, b: &Tensor) -> f64 {
        let m = |t: &Tensor| {
            let t = t
                .to_dtype(DType::F64)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap();
            t.max(0).unwrap().to_scalar::<f64>().unwrap()
        };
        m(&(a - b).unwrap()) / m(b).max(1e-30)
    }

    /// The fused CPU kernels against the candle-op version (which the reference fixtures
    /// pinned first): outputs, running statistics and the gradients of x, weight and bias, in
    /// train and eval mode, with and without ReLU, for [n, c] and [n, c, h, w]. Eval mode is
    /// the same arithmetic and must agree bit for bit; train mode sums in another order.
    #[test]
    fn fused_kernels_match_the_candle_ops() {
        for dtype in [DType::F64, DType::F32] {
            let tol = if dtype == DType::F64 { 1e-12 } else { 2e-6 };
            for shape in [vec![6, 3], vec![4, 5, 3, 2], vec![1, 2, 1, 1]] {
                for (train, relu) in [(true, false), (true, true), (false, false), (false, true)] {
                    let what = format!("{dtype:?} {shape:?} train={train} relu={relu}");
                    let (ours, theirs) = (layer(shape[1], dtype), layer(shape[1], dtype));
                    let x = Var::from_tensor(&values(&shape, 0.0, dtype)).unwrap();
                    let yo = ours.forward_fused(&x, train, relu).unwrap();
                    let yt = theirs.forward_ops(&x, train).unwrap();
                    let yt = if relu {
                        super::super::relu(&yt).unwrap()
                    } else {
                        yt
                    };
                    let flat = yo.flatten_all().unwrap().to_dtype(DType::F64).unwrap();
                    let flat = flat.to_vec1::<f64>().unwrap();
                    assert!(!relu || flat.iter().all(|&v| v >= 0.0), "{what}");
                    assert!(flat.iter().any(|&v| v != 0.0), "{what}");
                    if train {
                        assert!(rel(&yo, &yt) <= tol, "forward {what}: {}", rel(&yo, &yt));
                    } else {
                        let (a, b) = (yo.flatten_all().unwrap(), yt.flatten_all().unwrap());
                        let a = a.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
                        let b = b.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
                        assert!(
                            a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{what}"
                        );
                    }
                    for (a, b) in [
                        (&ours.running_mean, &theirs.running_mean),
                        (&ours.running_var, &theirs.running_var),
                    ] {
                        assert!(rel(a.as_tensor(), b.as_tensor()) <= tol, "running {what}");
                    }
                    let up = values(&shape, 5.5, dtype);
                    let go = (&yo * &up).unwrap().sum_all().unwrap().backward().unwrap();
                    let gt = (&yt * &up).unwrap().sum_all().unwrap().backward().unwrap();
                    for (name, a, b) in [
                        ("x", x.as_tensor(), x.as_tensor()),
                        ("weight", &ours.weight, &theirs.weight),
                        ("bias", &ours.bias, &theirs.bias),
                    ] {
                        let (da, db) = (go.get(a).unwrap(), gt.get(b).unwrap());
                        let tol = if train { tol * 10.0 } else { tol };
                        assert!(rel(da, db) <= tol, "grad {name} {what}: {}", rel(da, db));
                    }
                }
            }
        }
    }
}
