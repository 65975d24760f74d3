//! What the commands do, as library calls: each `cli/*.rs` parses its arguments and makes one
//! call here. Nothing here prints; progress goes through [`Progress`].

pub mod compare;
pub mod diff;
pub mod gc;
pub mod history;
pub mod merge;
pub mod plan;
pub mod reproduce;
pub mod shard;
pub mod show;

use crate::error::Result;
use crate::harness::CellOutcome;
use crate::train::Observer;

/// Receives progress from a long operation (the CLI draws bars and prints notes).
pub trait Progress {
    /// Runs one cell's work `f`, handing it an observer for its training steps.
    fn cell(
        &mut self,
        label: &str,
        epochs: usize,
        f: &mut dyn FnMut(&mut dyn Observer) -> Result<CellOutcome>,
    ) -> Result<CellOutcome>;
    /// Something the user should know.
    fn note(&mut self, message: &str);
}

/// Progress that goes nowhere (tests, library use).
pub struct Quiet;

impl Progress for Quiet {
    fn cell(
        &mut self,
        _label: &str,
        _epochs: usize,
        f: &mut dyn FnMut(&mut dyn Observer) -> Result<CellOutcome>,
    ) -> Result<CellOutcome> {
        f(&mut crate::train::SilentObserver)
    }

    fn note(&mut self, _message: &str) {}
}
