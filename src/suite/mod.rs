//! Suites: YAML files reproducing one paper table each, resolved into experiment cells.

pub mod check;
pub mod load;
pub mod loaded;
pub mod locate;
pub mod merge;
pub mod paper;
pub mod resolve;
pub mod schema;
pub mod sweep;
pub mod yaml;

pub use load::load;
pub use loaded::LoadedSuite;
pub use resolve::{Cell, evaluation_hash, resolve, training_hash};
pub use schema::Suite;
