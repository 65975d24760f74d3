//! One experiment cell: a fully resolved config, and running it end to end.

pub mod config;
pub mod run;

pub use config::ExperimentConfig;
pub use run::{Prepared, RunOutput, default_device, prepare, run, train_prepared};
