//! ReLU with PyTorch's gradient at zero.
//!
//! candle's `relu` passes the gradient where the input is exactly 0 (its mask is `x >= 0`);
//! PyTorch's is `x > 0`. Exact zeros are common in BN outputs of channels that are constant
//! over the batch (e.g. dead channels of a reduced-width network), and there the two disagree
//! by whole gradient terms.

use candle_core::{Result, Tensor};

/// `max(x, 0)` whose gradient is 1 where `x > 0` and 0 elsewhere, as in PyTorch.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if crate::kernels::cpu_float::supported(x) {
        return crate::kernels::relu::relu_cpu(x);
    }
    // The comparison is not differentiable, so the mask is a constant in the backward pass.
    let mask = x.gt(0.0)?.to_dtype(x.dtype())?;
    x * mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn gradient_is_zero_at_zero_like_pytorch() {
        let x = Var::new(&[-1.0f32, 0.0, 2.0], &Device::Cpu).unwrap();
        let y = relu(&x).unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), [0.0, 0.0, 2.0]);
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(
            g.get(&x).unwrap().to_vec1::<f32>().unwrap(),
            [0.0, 0.0, 1.0]
        );
        // candle's own relu differs exactly there, which is why this file exists.
        let g = x.relu().unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(
            g.get(&x).unwrap().to_vec1::<f32>().unwrap(),
            [0.0, 1.0, 1.0]
        );
    }
}
