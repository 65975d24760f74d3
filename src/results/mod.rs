//! Result records with provenance, aggregation, baselines and diffs.

pub(crate) mod aggregate;
pub(crate) mod artifact;
pub(crate) mod baseline;
pub(crate) mod comparison;
pub(crate) mod diff;
pub(crate) mod evaluation;
pub(crate) mod history;
pub(crate) mod layout;
pub(crate) mod lock;
pub(crate) mod outcome;
pub(crate) mod record;
pub(crate) mod trend;

pub(crate) use aggregate::{Stat, aggregate};
pub(crate) use diff::{MetricDiff, Status, compare};
