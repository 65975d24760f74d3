//! Evaluations of trained models: a registry of evaluators, each returning named scalar
//! metrics (and named arrays for analyses). The clean test metrics are the first evaluator;
//! FGSM and the novel deformations of Tables 4, 7 and 9 are the others.

pub mod affine;
pub mod clean;
pub mod decision_grid;
pub mod deformation;
pub mod embedding;
pub mod fgsm;
pub mod knn;
pub mod pgd;
pub mod registry;
pub mod singular_values;
pub mod spec;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use spec::EvaluationSpec;

use crate::data::{ImageDataset, Preprocessing};
use crate::error::Result;
use crate::model::Model;
use crate::scoring::EvalMetrics;

/// What an evaluator sees: a trained model in eval mode and the data it was trained for.
pub struct EvalContext<'a> {
    /// The trained model (BatchNorm uses running statistics).
    pub model: &'a Model,
    /// The dataset; evaluators use its test split.
    pub data: &'a ImageDataset,
    /// Normalisation applied to raw pixels (augmentation is never applied at evaluation).
    pub preprocessing: &'a Preprocessing,
    /// The cell's seed: random draws of an evaluation come from streams keyed by it.
    pub seed: u64,
    /// Images per forward pass.
    pub batch_size: usize,
}

/// Named results of one evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalOutput {
    /// Scalar metrics by name (without the evaluation id prefix).
    pub metrics: BTreeMap<String, f64>,
    /// Named arrays (spectra, curves) for analyses.
    #[serde(default)]
    pub arrays: BTreeMap<String, Vec<f64>>,
    /// Examples whose logits were not finite: the evaluation is then diverged, not a score.
    #[serde(default)]
    pub non_finite: usize,
    /// Number of examples evaluated.
    pub n: usize,
}

impl EvalOutput {
    /// `accuracy` and `error` (%) of scored logits: what the robustness evaluators report.
    pub fn accuracy(m: &EvalMetrics) -> Self {
        EvalOutput {
            metrics: [
                ("accuracy".to_string(), 100.0 - m.error_pct),
                ("error".to_string(), m.error_pct),
            ]
            .into(),
            arrays: BTreeMap::new(),
            non_finite: m.non_finite,
            n: m.n,
        }
    }
}

/// A configured evaluation of a trained model.
pub trait Evaluator: Send + Sync {
    /// Identifier used when the suite gives none (`fgsm_0.03`, `rotation_20`): metric keys are
    /// `<id>.<metric>`.
    fn default_id(&self) -> String;
    /// Names of the scalar metrics `evaluate` returns.
    fn metric_names(&self) -> Vec<&'static str>;
    /// Runs the evaluation.
    fn evaluate(&self, ctx: &EvalContext) -> Result<EvalOutput>;
}

/// The eval-mode representation of every example of `split` at mix point `point`, one row per
/// example: flattened, or with `pool` an image-shaped [N, C, H, W] one averaged over H and W;
/// (features per row, rows in f64). What the analyses of hidden states read (k-NN, singular
/// values, embeddings).
pub fn representation(
    ctx: &EvalContext,
    split: &crate::data::Split,
    point: usize,
    pool: bool,
) -> Result<(usize, Vec<f64>)> {
    let (mut dim, mut out) = (0, Vec::new());
    crate::scoring::metrics::for_each_batch(
        ctx.model,
        split,
        ctx.data.shape(),
        ctx.preprocessing,
        ctx.batch_size,
        |x, _| {
            let h = ctx.model.hidden(x, point, false)?;
            let h = match pool && h.rank() == 4 {
                true => h.mean((2, 3))?,
                false => h.flatten_from(1)?,
            };
            dim = h.dim(1)?;
            out.extend(
                h.to_dtype(candle_core::DType::F64)?
                    .flatten_all()?
                    .to_vec1::<f64>()?,
            );
            Ok(())
        },
    )?;
    Ok((dim, out))
}

/// Formats a parameter for an id: `0.03`, `20`, `1.2` (shortest form that reads back exactly).
pub fn id_number(v: f64) -> String {
    // `Display` already prints that form and no `.0`; only −0 would read `-0`.
    if v == 0.0 {
        "0".to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::id_number;

    #[test]
    fn ids_use_the_shortest_exact_form_of_a_number() {
        let cases = [
            (20.0, "20"),
            (0.03, "0.03"),
            (1.2, "1.2"),
            (-0.0, "0"),
            (-15.0, "-15"),
        ];
        for (v, id) in cases {
            assert_eq!(id_number(v), id);
            assert_eq!(id.parse::<f64>().unwrap(), v);
        }
        assert_eq!(id_number(1e16), "10000000000000000");
    }
}
