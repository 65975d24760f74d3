//! Networks with numbered mix points, their parameters, and the registry of architectures.

pub mod glyph_cnn;
pub mod layers;
pub mod mlp;
pub mod preact_resnet;
pub mod registry;
pub mod residual;
pub mod store;
pub mod wide_resnet;

use candle_core::{DType, Device, Tensor};

pub use store::{BnInit, ParamBuilder, ParamStore};

use crate::error::Result;

/// A network split into segments at its mix points.
///
/// Segment `i` maps the representation at mix point `i` to mix point `i + 1`; the last segment
/// produces logits. Mix point 0 is the input, so the mix points are `0..num_segments()`.
pub trait Network: Send + Sync {
    /// Number of segments (= number of mix points).
    fn num_segments(&self) -> usize;
    /// Runs segment `i` on `h`; `train` selects batch statistics in BatchNorm.
    fn forward_segment(&self, i: usize, h: &Tensor, train: bool) -> candle_core::Result<Tensor>;
}

/// What a model is built for: input geometry and number of classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Number of classes.
    pub classes: usize,
}

/// A hook applied to the hidden representation at one mix point.
pub type MixHook<'a> = (usize, &'a dyn Fn(&Tensor) -> candle_core::Result<Tensor>);

/// A built network with its parameters.
pub struct Model {
    /// Registry name of the architecture.
    pub arch: String,
    /// The network.
    pub net: Box<dyn Network>,
    /// Its parameters and buffers.
    pub store: ParamStore,
    /// What it was built for.
    pub input: InputSpec,
    /// Its registry parameters (width, ...).
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl Model {
    /// Builds `arch` from its registry entry with parameters drawn from `seed`.
    pub fn build(
        arch: &str,
        params: &serde_json::Map<String, serde_json::Value>,
        input: InputSpec,
        seed: u64,
        device: &Device,
    ) -> Result<Model> {
        Self::build_with_dtype(arch, params, input, seed, device, DType::F32)
    }

    /// Like [`Model::build`] with parameters of `dtype` (f64 for exact reference checks).
    pub fn build_with_dtype(
        arch: &str,
        params: &serde_json::Map<String, serde_json::Value>,
        input: InputSpec,
        seed: u64,
        device: &Device,
        dtype: DType,
    ) -> Result<Model> {
        let entry = registry::get(arch)?;
        // `bn_init` applies to every architecture, so it is taken here, not by each entry.
        let mut arch_params = params.clone();
        let bn_init = match arch_params.remove("bn_init") {
            Some(v) => store::BnInit::parse(&v)?,
            None => store::BnInit::Current,
        };
        let store = ParamStore::with_dtype(seed, device.clone(), dtype).with_bn_init(bn_init);
        let net = (entry.build)(&store.builder(), input, &arch_params)?;
        Ok(Model {
            arch: arch.to_string(),
            net,
            store,
            input,
            params: params.clone(),
        })
    }

    /// The same network over the same weights (shared, not copied), with no gradient to the
    /// weights: for attacks that need only the input gradient.
    pub fn detached(&self) -> Result<Model> {
        let store = self.store.detached_view();
        let mut arch_params = self.params.clone();
        arch_params.remove("bn_init");
        let net = (registry::get(&self.arch)?.build)(&store.builder(), self.input, &arch_params)?;
        Ok(Model {
            arch: self.arch.clone(),
            net,
            store,
            input: self.input,
            params: self.params.clone(),
        })
    }

    /// Number of mix points (0 = input).
    pub fn num_mix_points(&self) -> usize {
        self.net.num_segments()
    }

    /// Plain forward pass to logits.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_with(x, train, None)
    }

    /// Forward pass that applies `hook` to the representation at its mix point.
    pub fn forward_with(
        &self,
        x: &Tensor,
        train: bool,
        hook: Option<MixHook<'_>>,
    ) -> Result<Tensor> {
        let mut h = x.clone();
        for i in 0..self.net.num_segments() {
            if let Some((k, f)) = hook
                && k == i
            {
                h = f(&h)?;
            }
            h = self.net.forward_segment(i, &h, train)?;
        }
        Ok(h)
    }

    /// The representation at mix point `k` (k = 0 returns the input), for analyses.
    pub fn hidden(&self, x: &Tensor, k: usize, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for i in 0..k.min(self.net.num_segments()) {
            h = self.net.forward_segment(i, &h, train)?;
        }
        Ok(h)
    }
}

/// `max(1, round(c × width))`: the channel count under a width multiplier.
pub fn scaled(c: usize, width: f64) -> usize {
    ((c as f64 * width).round() as usize).max(1)
}
