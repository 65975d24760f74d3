//! What the commands do, as library calls: each `cli/*.rs` parses its arguments and makes one
//! call here. Nothing here prints; progress goes through [`Progress`].

pub(crate) mod compare;
pub(crate) mod diff;
pub(crate) mod estimate;
pub(crate) mod gc;
pub(crate) mod history;
pub(crate) mod measured_cost;
pub(crate) mod merge;
pub(crate) mod plan;
pub(crate) mod reproduce;
pub(crate) mod shard;
pub(crate) mod show;

use crate::error::Result;
use crate::harness::CellOutcome;
use crate::train::Observer;

/// Receives progress from a long operation (the CLI draws bars and prints notes).
pub(crate) trait Progress {
    /// Runs one cell's work `f`, handing it an observer for its training steps.
    fn cell(
        &mut self,
        label: &str,
        epochs: usize,
        f: &mut dyn FnMut(&mut dyn Observer) -> Result<CellOutcome>,
    ) -> Result<CellOutcome>;
    /// Something the user should know.
    fn note(&mut self, message: &str);
    /// The next `total` calls to [`Progress::cell`] are one suite's cells (for a suite ETA).
    fn suite(&mut self, _total: usize) {}
}
