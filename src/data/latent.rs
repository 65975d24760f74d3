//! Datasets generated from latent factors (Table 8's glyphs): what factor-space mixing needs from
//! them, independent of how a particular set draws or renders its factors.

/// A training split generated from latent factors, able to render a mix of two examples'
/// factors (ground-truth factor mixup).
pub trait LatentFactors: Send + Sync + std::fmt::Debug {
    /// Renders into `out` (one image of the dataset's shape) the image of the factors
    /// λ·f(a) + (1 − λ)·f(b), where `a` and `b` index the training split.
    fn render_mix(&self, a: usize, b: usize, lambda: f64, out: &mut [u8]);
}
