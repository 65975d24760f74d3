//! The trainer's evaluation seam (burn-train's metric / learner split): what is scored at an
//! epoch's end, and when, is the caller's choice; the trainer logs what it is given and stops
//! a run whose test outputs are not finite.

use crate::data::batch::ImageShape;
use crate::data::{Preprocessing, Split};
use crate::error::Result;
use crate::model::Model;
use crate::scoring::{EvalMetrics, evaluate};

/// Scores of one evaluated epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochScores {
    /// Test-split metrics (a non-finite one marks the run diverged).
    pub test: EvalMetrics,
    /// Held-out validation metrics, when the run has a validation split.
    pub validation: Option<EvalMetrics>,
}

/// Scores the model at the end of an epoch.
pub trait EpochEvaluation {
    /// Scores `model` after `epoch` (from 0) of `epochs`; `None` when this epoch is not scored.
    fn evaluate(
        &mut self,
        model: &Model,
        epoch: usize,
        epochs: usize,
    ) -> Result<Option<EpochScores>>;
}

/// The test split (and a validation split, if held out) every `every` epochs and after the last.
pub struct TestSplitEvaluation<'a> {
    test: &'a Split,
    validation: Option<&'a Split>,
    shape: ImageShape,
    preprocessing: &'a Preprocessing,
    every: usize,
    batch_size: usize,
}

impl<'a> TestSplitEvaluation<'a> {
    /// Scores `test` (and `validation`) of images shaped `shape` every `every` epochs, in
    /// batches of `batch_size` (both at least 1).
    pub fn new(
        test: &'a Split,
        validation: Option<&'a Split>,
        shape: ImageShape,
        preprocessing: &'a Preprocessing,
        every: usize,
        batch_size: usize,
    ) -> Self {
        TestSplitEvaluation {
            test,
            validation,
            shape,
            preprocessing,
            every: every.max(1),
            batch_size: batch_size.max(1),
        }
    }
}

impl EpochEvaluation for TestSplitEvaluation<'_> {
    fn evaluate(
        &mut self,
        model: &Model,
        epoch: usize,
        epochs: usize,
    ) -> Result<Option<EpochScores>> {
        let last = epoch + 1 == epochs;
        if !last && !(epoch + 1).is_multiple_of(self.every) {
            return Ok(None);
        }
        let score = |s: &Split| evaluate(model, s, self.shape, self.preprocessing, self.batch_size);
        let test = score(self.test)?;
        let validation = self.validation.map(score).transpose()?;
        Ok(Some(EpochScores { test, validation }))
    }
}
