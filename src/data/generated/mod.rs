//! Datasets generated in memory from a seed: no files, the same bytes on every machine.

pub mod glyphs;
pub mod spiral;
pub mod synthetic;
