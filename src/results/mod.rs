//! Result records with provenance, aggregation, baselines and diffs.

pub mod aggregate;
pub mod artifact;
pub mod baseline;
pub mod comparison;
pub mod diff;
pub mod evaluation;
pub mod history;
pub mod layout;
pub mod lock;
pub mod outcome;
pub mod record;
pub mod trend;

pub use aggregate::{ExperimentSummary, Stat, aggregate};
pub use diff::{MetricDiff, Status, compare};
pub use record::ResultRecord;
