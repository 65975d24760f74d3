//! Low-level file utilities every layer may use (below `train`, `results` and `report`).

pub(crate) mod atomic;

pub(crate) use atomic::write_atomic;
