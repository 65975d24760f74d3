//! Training: losses, SGD, the LR schedule, checkpoints and the deterministic epoch loop.

pub mod adam;
pub mod best_epoch;
pub mod checkpoint;
pub mod checkpoint_policy;
pub mod epoch_evaluation;
pub mod optimizer;
pub mod schedule;
pub mod sgd;
pub mod trainer;

pub use adam::{Adam, AdamConfig};
pub use optimizer::{Optimizer, OptimizerConfig};
pub use schedule::StepSchedule;
pub use sgd::{Sgd, SgdConfig};
pub use trainer::{
    Checkpointing, Divergence, EpochRecord, Observer, SilentObserver, TrainConfig, TrainOutcome,
    Trainer, train,
};
