//! Evaluation: test error, top-5 accuracy and NLL with BatchNorm in eval mode.

pub mod metrics;

pub use metrics::{EvalMetrics, evaluate};
