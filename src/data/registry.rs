//! Every dataset by name: adding one is a new file plus one entry in `BUILTIN` (or, from
//! another crate, `App::dataset`).

use super::DatasetSource;
use crate::error::Result;
use crate::registry::{Entry, Registry};

/// Makes the dataset's source (loading is the source's `load`).
pub type BuildFn = fn() -> Box<dyn DatasetSource>;

/// One registered dataset (`dataset: {name: <name>}` in suites); its source's `name()` is the
/// entry's name.
pub type DatasetEntry = Entry<BuildFn>;

/// The built-in datasets, in the order `mixbench data status` lists them.
pub static BUILTIN: &[DatasetEntry] = &[
    Entry::typed::<super::generated::synthetic::SyntheticParams>(
        "synthetic",
        "generated class templates plus noise (no files; for smoke runs and tests)",
        || Box::new(super::generated::synthetic::SyntheticSource),
    ),
    Entry::typed::<super::generated::spiral::SpiralParams>(
        "spiral",
        "Figures 1 and 2's 2-D spiral: interleaved arms in the plane, one class each, as 2-channel 1x1 images (no files)",
        || Box::new(super::generated::spiral::SpiralSource),
    ),
    Entry::typed::<super::sources::digits::DigitsParams>(
        "digits",
        "UCI/scikit-learn 8x8 handwritten digits, embedded: 1,797 greyscale images, 10 classes",
        || Box::new(super::sources::digits::DigitsSource),
    ),
    Entry::typed::<super::generated::glyphs::GlyphParams>(
        "glyphs",
        "Table 8's synthetic glyphs (\"1\" vs \"7\" by stroke length, rotated; tasks a/b/c), rendered from seeded latent factors",
        || Box::new(super::generated::glyphs::GlyphSource),
    ),
    Entry::typed::<super::sources::mnist::MnistParams>(
        "mnist",
        "MNIST: 60,000 / 10,000 28x28 greyscale digits, 10 classes",
        || Box::new(super::sources::mnist::MnistSource),
    ),
    Entry::typed::<super::sources::cifar::Cifar10Params>(
        "cifar10",
        "CIFAR-10 (binary version): 50,000 / 10,000 32x32 colour images, 10 classes",
        || Box::new(super::sources::cifar::Cifar10Source),
    ),
    Entry::typed::<super::sources::cifar::Cifar100Params>(
        "cifar100",
        "CIFAR-100 (binary version): 50,000 / 10,000 32x32 colour images, 100 fine or 20 coarse classes",
        || Box::new(super::sources::cifar::Cifar100Source),
    ),
    Entry::typed::<super::sources::svhn::SvhnParams>(
        "svhn",
        "SVHN cropped digits: 73,257 train (+531,131 extra) / 26,032 test 32x32 colour images, 10 classes",
        || Box::new(super::sources::svhn::SvhnSource),
    ),
    Entry::typed::<super::sources::tiny_imagenet::TinyImagenetParams>(
        "tiny_imagenet",
        "Tiny-ImageNet-200: 100,000 train / 10,000 val (used as test) 64x64 colour images, 200 classes",
        || Box::new(super::sources::tiny_imagenet::TinyImagenetSource),
    ),
];

/// Every dataset: the built-in ones and those a downstream crate registered.
pub static REGISTRY: Registry<BuildFn> = Registry::new("dataset", BUILTIN);

/// Every registered dataset's source, in registry order.
pub fn all() -> Vec<Box<dyn DatasetSource>> {
    REGISTRY.entries().iter().map(|e| (e.build)()).collect()
}

/// Looks a dataset up by its registry name.
pub fn get(name: &str) -> Result<Box<dyn DatasetSource>> {
    Ok((REGISTRY.get(name)?.build)())
}

/// Names of all registered datasets.
pub fn names() -> Vec<&'static str> {
    REGISTRY.names()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_their_sources_names() {
        for e in REGISTRY.entries() {
            assert_eq!((e.build)().name(), e.name);
        }
    }
}
