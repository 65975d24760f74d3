//! What a cell trains with, parsed and validated once when the suite is resolved.

use std::sync::Arc;

use super::ExperimentConfig;
use crate::error::Result;
use crate::regularizer::{self, Regularizer};

/// What a cell trains with, parsed and validated once when it is resolved; `config` keeps the
/// blocks as written because the hashes are computed over them.
#[derive(Clone)]
pub struct Plan {
    /// The regularizer.
    pub regularizer: Arc<dyn Regularizer>,
}

impl Plan {
    /// Builds the plan of `cfg` (errors are not located; `resolve` locates its own).
    pub fn of(cfg: &ExperimentConfig) -> Result<Plan> {
        let name = ExperimentConfig::block_name(&cfg.regularizer, "name", "regularizer")?;
        let params = ExperimentConfig::block_params(&cfg.regularizer, &["name"]);
        Ok(Plan {
            regularizer: Arc::from(regularizer::registry::build(name, &params)?),
        })
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("regularizer", &self.regularizer.name())
            .finish()
    }
}
