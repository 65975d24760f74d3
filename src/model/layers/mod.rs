//! Layers with PyTorch's default initialisation and names; one file per layer.

pub mod batch_norm;
pub mod conv;
pub mod dropout;
pub mod leaky_relu;
pub mod linear;
pub mod relu;

pub use batch_norm::BatchNorm;
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use leaky_relu::leaky_relu;
pub use linear::Linear;
pub use relu::relu;

use candle_nn::Init;

/// PyTorch's default for conv/linear weights (kaiming_uniform with a=√5) and biases:
/// both reduce to U(−1/√fan_in, 1/√fan_in).
pub fn pytorch_uniform(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}
