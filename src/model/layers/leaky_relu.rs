//! Leaky ReLU: the CPU kernel where it applies, candle_nn's ops elsewhere (the same bits).

use candle_core::{Result, Tensor};

/// `max(x, 0) + min(x, 0) · slope`, as `candle_nn::ops::leaky_relu` computes it, gradient included.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    if crate::kernels::cpu_float::supported(x) {
        return crate::kernels::leaky_relu::leaky_relu_cpu(x, slope);
    }
    candle_nn::ops::leaky_relu(x, slope)
}
