//! Low-level file utilities every layer may use (below `train`, `results` and `report`).

pub mod atomic;

pub use atomic::write_atomic;
