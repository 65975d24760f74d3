//! Every regularizer by name: adding one is a new file plus one entry in `BUILTIN` (or, from
//! another crate, `App::regularizer`).

use serde_json::{Map, Value};

use super::Regularizer;
use crate::error::Result;
use crate::registry::{Entry, Registry};

/// Builds a regularizer from its parameters (the suite's `regularizer` block without `name`).
pub type BuildFn = fn(&Map<String, Value>) -> Result<Box<dyn Regularizer>>;

/// One registered regularizer.
pub type RegularizerEntry = Entry<BuildFn>;

/// The built-in regularizers.
pub static BUILTIN: &[RegularizerEntry] = &[
    Entry::typed::<super::none::Params>(
        "none",
        "no mixing (the paper's \"No Mixup\")",
        super::none::build,
    ),
    Entry::typed::<super::input_mixup::Params>(
        "input_mixup",
        "mixup of inputs; params: alpha, per_example (one λ per example, as the reference's synthetic task)",
        super::input_mixup::build,
    ),
    Entry::typed::<super::factor_mixup::Params>(
        "factor_mixup",
        "ground-truth factor mixup (Table 8): mix the latent factors, render the image; params: alpha (λ_i ~ Beta(α, α) per example; 1 = U(0, 1))",
        super::factor_mixup::build,
    ),
    Entry::typed::<super::manifold_mixup::Params>(
        "manifold_mixup",
        "mixup at a layer drawn from `layers`; params: alpha, layers, block_gradient",
        super::manifold_mixup::build,
    ),
    Entry::typed::<super::cutmix::Params>(
        "cutmix",
        "CutMix (Yun et al., 2019): paste a partner's box, mix labels by its area; params: alpha, prob (chance a minibatch is cut-mixed, default 1)",
        super::cutmix::build,
    ),
    Entry::typed::<super::cutout::Params>(
        "cutout",
        "Cutout (DeVries & Taylor, 2017) as the reference's: zero a length×length patch; params: length, holes (default 1), per_example (default false: one mask per minibatch, as the reference)",
        super::cutout::build,
    ),
    Entry::typed::<super::gaussian_noise::Params>(
        "gaussian_noise",
        "N(0, std²) noise added to each preprocessed input value (Figure 2); params: std",
        super::gaussian_noise::build,
    ),
];

/// Every regularizer: the built-in ones and those a downstream crate registered.
pub static REGISTRY: Registry<BuildFn> = Registry::new("regularizer", BUILTIN);

/// Builds the regularizer named `name`.
pub fn build(name: &str, params: &Map<String, Value>) -> Result<Box<dyn Regularizer>> {
    (REGISTRY.get(name)?.build)(params)
}

/// Names of all registered regularizers.
pub fn names() -> Vec<&'static str> {
    REGISTRY.names()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::params::parse_value;
    use crate::regularizer::{cutmix, cutout, factor_mixup, input_mixup, manifold_mixup};

    /// The fewest parameters each built-in accepts.
    fn minimal(name: &str) -> Value {
        match name {
            "none" | "factor_mixup" => json!({}),
            "cutout" => json!({"length": 4}),
            "gaussian_noise" => json!({"std": 0.1}),
            _ => json!({"alpha": 2.0}),
        }
    }

    #[test]
    fn every_builtin_reports_its_registry_name() {
        for e in BUILTIN {
            let built = (e.build)(minimal(e.name).as_object().unwrap()).unwrap();
            assert_eq!(built.name(), e.name);
            // Only factor mixup reads the latent factors; a suite is checked for them at load.
            assert_eq!(
                built.needs_factors(),
                e.name == "factor_mixup",
                "{}",
                e.name
            );
        }
    }

    #[test]
    fn alpha_below_zero_or_not_finite_is_refused_and_zero_is_allowed() {
        for name in ["input_mixup", "manifold_mixup", "factor_mixup"] {
            let e = build(name, json!({"alpha": -0.5}).as_object().unwrap()).err();
            assert!(
                matches!(&e, Some(crate::Error::Param { path, .. }) if path == "alpha"),
                "{name}: {e:?}"
            );
            assert!(build(name, json!({"alpha": 0.0}).as_object().unwrap()).is_ok());
        }
        // JSON has no NaN or infinity; YAML does, so the check must see them.
        for alpha in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(manifold_mixup::check_alpha("t", alpha).is_err(), "{alpha}");
        }
        assert!(manifold_mixup::check_alpha("t", 1e-9).is_ok());
    }

    #[test]
    fn manifold_mixup_layers_must_be_mix_points_of_the_model() {
        let p = json!({"alpha": 1.0, "layers": [0, 3]});
        let r = build("manifold_mixup", p.as_object().unwrap()).unwrap();
        let e = r.validate(3).err();
        assert!(
            matches!(&e, Some(crate::Error::Param { path, .. }) if path == "layers[1]"),
            "{e:?}"
        );
        assert!(r.validate(4).is_ok());
    }

    #[test]
    fn omitted_parameters_take_the_reference_defaults() {
        let p: manifold_mixup::Params = parse_value("t", &minimal("manifold_mixup")).unwrap();
        assert_eq!((p.layers, p.block_gradient), (vec![0, 1, 2], false));
        let p: input_mixup::Params = parse_value("t", &minimal("input_mixup")).unwrap();
        assert!(!p.per_example);
        let p: cutmix::Params = parse_value("t", &minimal("cutmix")).unwrap();
        assert_eq!(p.prob, 1.0);
        let p: cutout::Params = parse_value("t", &minimal("cutout")).unwrap();
        assert_eq!((p.holes, p.per_example), (1, false));
        let p: factor_mixup::Params = parse_value("t", &minimal("factor_mixup")).unwrap();
        assert_eq!(p.alpha, 1.0);
    }
}
