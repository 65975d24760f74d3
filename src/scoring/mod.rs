//! What a model's outputs are scored by: the training loss and the test metrics. Below both
//! `train` (which minimises the loss and logs the metrics each epoch) and `eval` (whose
//! evaluators report them), so neither imports the other.

pub mod loss;
pub mod metrics;

pub use loss::{LossKind, loss};
pub use metrics::{EvalMetrics, Scorer, evaluate};
