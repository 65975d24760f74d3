//! mixbench's own CPU kernels, in one place: the f32/f64 plumbing and the fixed-order gemm
//! wrapper every product goes through (`cpu_float`), the convolution as per-slab im2col + gemm,
//! BatchNorm (+ fused ReLU), ReLU, leaky ReLU and Linear with hand-written backward passes, and the in-place SGD
//! and Adam updates. Each is a candle custom op on CPU storage; `model::layers` and `train`
//! call them, other devices keep candle's own ops. Their bits must not depend on the CPU
//! (ARCHITECTURE.md, "Bit-identical on every x86-64 CPU").

pub mod batch_norm;
pub mod conv_gemm;
pub mod conv_skip;
pub mod conv_weight_runs;
pub mod cpu_float;
pub mod im2col;
pub mod leaky_relu;
pub mod linear;
pub mod optimizer_update;
pub mod panel_gemm;
pub mod relu;
pub mod tap_classes;
pub mod transpose;
