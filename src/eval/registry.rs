//! Every evaluator by name: adding one is a new file plus one entry in `BUILTIN` (or, from
//! another crate, `App::evaluator`).

use serde_json::{Map, Value};

use super::Evaluator;
use crate::error::Result;
use crate::registry::{Entry, Registry};

/// Builds an evaluator from its parameters (the suite entry without `name` and `id`).
pub type BuildFn = fn(&Map<String, Value>) -> Result<Box<dyn Evaluator>>;

/// One registered evaluator (`evaluations: [{name: <name>}]` in suites); `sweep` lists the
/// parameters that may be given as a list, each value becoming its own evaluation (with its own
/// id and hash), so adding a value to a suite runs only that value.
pub type EvaluatorEntry = Entry<BuildFn>;

/// The built-in evaluators.
pub static BUILTIN: &[EvaluatorEntry] = &[
    EvaluatorEntry::typed::<super::clean::Params>(
        "clean",
        "test error, top-1/top-5 accuracy and NLL on the clean test split (always run)",
        super::clean::build,
    ),
    EvaluatorEntry::typed::<super::fgsm::Params>(
        "fgsm",
        "white-box single-step FGSM accuracy; params: epsilon, loss (bce_softmax|cross_entropy), space (normalized|pixel), clip",
        super::fgsm::build,
    )
    .with_sweep(&["epsilon"]),
    EvaluatorEntry::typed::<super::pgd::Params>(
        "pgd",
        "white-box PGD accuracy (App. D sanity check); params: steps, step_size, epsilon (absent: unbounded), random_start, loss, space, clip",
        super::pgd::build,
    )
    .with_sweep(&["steps", "epsilon"]),
    EvaluatorEntry::typed::<super::deformation::RotationParams>(
        "rotation",
        "accuracy on test images rotated by U(-degrees, degrees); params: degrees",
        super::deformation::build_rotation,
    )
    .with_sweep(&["degrees"]),
    EvaluatorEntry::typed::<super::deformation::ShearParams>(
        "shear",
        "accuracy on test images sheared by U(-radians, radians); params: radians",
        super::deformation::build_shear,
    )
    .with_sweep(&["radians"]),
    EvaluatorEntry::typed::<super::decision_grid::Params>(
        "decision_grid",
        "a 2-D input plane (spiral) scored on a grid: predicted class and confidence per point, and where grid and test points land in a 2-D bottleneck (Figures 1 and 2); params: size, point",
        super::decision_grid::build,
    ),
    EvaluatorEntry::typed::<super::embedding::Params>(
        "embedding",
        "the test split's 2-D representation at a mix point (a bottleneck) as points for scatter plots, and its leave-one-out 1-NN error (Figures 1 and 5); params: point, count",
        super::embedding::build,
    ),
    EvaluatorEntry::typed::<super::knn::Params>(
        "knn",
        "k-nearest-neighbour test accuracy on the representation at a mix point, fitted on the training split (§5.1); params: k, point, distance (euclidean|cosine), pool",
        super::knn::build,
    )
    .with_sweep(&["k"]),
    EvaluatorEntry::typed::<super::singular_values::Params>(
        "singular_values",
        "per-class singular values of the hidden representation at a mix point (flattening, §3.2); params: point, split (test|train), center, per_class",
        super::singular_values::build,
    )
    .with_sweep(&["point"]),
    EvaluatorEntry::typed::<super::deformation::ZoomParams>(
        "zoom",
        "accuracy on test images zoomed by a fixed factor (< 1 in, > 1 out, black outside); params: factor",
        super::deformation::build_zoom,
    )
    .with_sweep(&["factor"]),
];

/// Every evaluator: the built-in ones and those a downstream crate registered.
pub static REGISTRY: Registry<BuildFn> = Registry::new("evaluator", BUILTIN);

/// Looks an evaluator up by name.
pub fn get(name: &str) -> Result<EvaluatorEntry> {
    REGISTRY.get(name)
}

/// Names of all registered evaluators.
pub fn names() -> Vec<&'static str> {
    REGISTRY.names()
}

/// The evaluator every cell runs first. Its metrics are the scores the trainer logs each epoch
/// (`train::epoch_evaluation`), so they alone also exist at the best epoch (`from: best`).
pub const EPOCH_LOGGED: &str = "clean";

/// The metric keys and values of per-epoch scores, as [`EPOCH_LOGGED`]'s evaluation names them
/// (`clean.test_error`, …): how a training log's best epoch joins a record.
pub fn epoch_logged_metrics(m: &crate::scoring::EvalMetrics) -> Vec<(String, f64)> {
    super::clean::named(m)
        .into_iter()
        .map(|(k, v)| (format!("{EPOCH_LOGGED}.{k}"), v))
        .collect()
}

/// Whether the metric key `key` (`<evaluation id>.<metric>`) is logged every epoch.
pub fn is_epoch_logged(key: &str) -> bool {
    key.strip_prefix(EPOCH_LOGGED)
        .is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::EvalMetrics;

    #[test]
    fn epoch_logged_metrics_are_the_clean_metrics_under_its_id() {
        let m = EvalMetrics {
            error_pct: 12.5,
            top5_pct: 97.0,
            nll: 0.4,
            n: 8,
            non_finite: 0,
        };
        let keys: Vec<(String, f64)> = [
            ("clean.test_error", 12.5),
            ("clean.top1_acc", 87.5),
            ("clean.top5_acc", 97.0),
            ("clean.test_nll", 0.4),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        assert_eq!(epoch_logged_metrics(&m), keys);
        for (k, _) in &keys {
            assert!(is_epoch_logged(k), "{k}");
        }
        for k in [
            "cleanup.test_error",
            "fgsm_0.1.error",
            "clean",
            "x.clean.test_error",
        ] {
            assert!(!is_epoch_logged(k), "{k}");
        }
    }
}
