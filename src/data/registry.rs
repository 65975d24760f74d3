//! Every dataset by name: adding one is a new file plus one line here.

use super::DatasetSource;
use crate::error::{Error, Result};

/// All registered datasets, in the order `mixbench data status` lists them.
pub fn all() -> Vec<Box<dyn DatasetSource>> {
    vec![
        Box::new(super::synthetic::SyntheticSource),
        Box::new(super::digits::DigitsSource),
        Box::new(super::glyphs::GlyphSource),
        Box::new(super::mnist::MnistSource),
        Box::new(super::cifar::Cifar10Source),
        Box::new(super::cifar::Cifar100Source),
        Box::new(super::svhn::SvhnSource),
        Box::new(super::tiny_imagenet::TinyImagenetSource),
    ]
}

/// Looks a dataset up by its registry name.
pub fn get(name: &str) -> Result<Box<dyn DatasetSource>> {
    all().into_iter().find(|d| d.name() == name).ok_or_else(|| {
        let names: Vec<&str> = all().iter().map(|d| d.name()).collect();
        Error::Config(format!(
            "unknown dataset `{name}`; expected one of: {}",
            names.join(", ")
        ))
    })
}

/// Names of all registered datasets.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|d| d.name()).collect()
}
