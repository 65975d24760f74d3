//! The clean test metrics of a trained model: what Tables 1–3 print.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{EvalContext, EvalOutput, Evaluator};
use crate::error::Result;
use crate::scoring::metrics::{EvalMetrics, evaluate};

/// Clean test-split evaluation (no parameters).
pub struct Clean;

/// `clean` takes no parameters.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {}

/// Registry constructor.
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Evaluator>> {
    let _: Params = crate::params::parse("evaluator `clean`", p)?;
    Ok(Box::new(Clean))
}

/// The named metrics of an [`EvalMetrics`] (also used for the best epoch of a training log).
pub fn named(m: &EvalMetrics) -> Vec<(&'static str, f64)> {
    vec![
        ("test_error", m.error_pct),
        ("top1_acc", 100.0 - m.error_pct),
        ("top5_acc", m.top5_pct),
        ("test_nll", m.nll),
    ]
}

impl Evaluator for Clean {
    fn default_id(&self) -> String {
        "clean".into()
    }

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["test_error", "top1_acc", "top5_acc", "test_nll"]
    }

    fn evaluate(&self, ctx: &EvalContext) -> Result<EvalOutput> {
        let d = ctx.data;
        let m = evaluate(
            ctx.model,
            &d.test,
            d.shape(),
            ctx.preprocessing,
            ctx.batch_size,
        )?;
        Ok(EvalOutput {
            metrics: named(&m)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            arrays: Default::default(),
            non_finite: m.non_finite,
            n: m.n,
        })
    }
}
