//! One experiment cell: a fully resolved config, and running it end to end.

pub mod config;
pub mod device;
pub mod device_memory;
pub mod plan;
pub mod run;

pub use config::ExperimentConfig;
pub use device::{DeviceSpec, device_name};
pub use device_memory::{DeviceMemoryPeak, device_memory_peak};
pub use plan::Plan;
pub use run::{Prepared, prepare, train_prepared};
