//! Every architecture by name: adding one is a new file plus one entry in `BUILTIN` (or, from
//! another crate, `App::model`).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::glyph_cnn::GlyphCnn;
use super::mlp::{Mlp, MlpParams};
use super::preact_resnet::{PreActBlock, PreActBottleneck, PreActResNet};
use super::residual::ResidualBlock;
use super::wide_resnet::WideResNet;
use super::{InputSpec, Network, ParamBuilder};
use crate::error::{Error, Result};
use crate::registry::{Entry, Registry};

/// Builds a network from its parameters.
pub type BuildFn = fn(&ParamBuilder, InputSpec, &Map<String, Value>) -> Result<Box<dyn Network>>;

/// One registered architecture (`model: {arch: <name>}` in suites).
pub type ModelEntry = Entry<BuildFn>;

/// The built-in architectures.
pub static BUILTIN: &[ModelEntry] = &[
    Entry::typed::<ResNetParams>(
        "preactresnet18",
        "PreActResNet18 (blocks [2,2,2,2]); params: width, stem_stride, dropout (before the linear layer; not in the reference)",
        |b, i, p| resnet::<PreActBlock>(b, i, p, [2, 2, 2, 2]),
    ),
    Entry::typed::<ResNetParams>(
        "preactresnet34",
        "PreActResNet34 (blocks [3,4,6,3]); params: width, stem_stride, dropout",
        |b, i, p| resnet::<PreActBlock>(b, i, p, [3, 4, 6, 3]),
    ),
    Entry::typed::<ResNetParams>(
        "preactresnet50",
        "PreActResNet50 (bottleneck blocks [3,4,6,3], 4× expansion; §5.1's regularizer comparison); params: width, stem_stride, dropout",
        |b, i, p| resnet::<PreActBottleneck>(b, i, p, [3, 4, 6, 3]),
    ),
    Entry::typed::<ConvParams>(
        "wrn28_10",
        "WideResNet-28-10; params: width, stem_stride",
        wrn28_10,
    ),
    Entry::typed::<WrnParams>(
        "wide_resnet",
        "WideResNet-depth-widen_factor (depth = 6n + 4, as the reference asserts); params: depth, widen_factor, width, stem_stride",
        wide_resnet,
    ),
    Entry::typed::<GlyphCnnParams>(
        "glyph_cnn",
        "Table 8's synthetic-task CNN (4 stride-2 5×5 convs 32-64-128-256, BatchNorm, LeakyReLU(0.02), one sigmoid unit as logits [0, z]); params: width",
        glyph_cnn,
    ),
    Entry::typed::<MlpParams>(
        "mlp",
        "MLP; params: hidden, activation, bottleneck, dropout, batch_norm, width",
        mlp,
    ),
];

/// Every architecture: the built-in ones and those a downstream crate registered.
pub static REGISTRY: Registry<BuildFn> = Registry::new("model", BUILTIN);

/// Looks an architecture up by name.
pub fn get(name: &str) -> Result<ModelEntry> {
    REGISTRY.get(name)
}

/// Names of all registered architectures.
pub fn names() -> Vec<&'static str> {
    REGISTRY.names()
}

fn parse<T: serde::de::DeserializeOwned>(arch: &str, p: &Map<String, Value>) -> Result<T> {
    crate::params::parse(&format!("model `{arch}`"), p)
}

fn one() -> f64 {
    1.0
}

fn check_width(arch: &str, width: f64) -> Result<()> {
    if width > 0.0 && width.is_finite() {
        Ok(())
    } else {
        Err(Error::param(
            "width",
            format!("model `{arch}`: width must be > 0, got {width}"),
        ))
    }
}

/// Defaults to 2 for inputs of 64 pixels or more (Tiny-ImageNet), else 1.
fn stem_stride(given: Option<usize>, input: InputSpec) -> usize {
    given.unwrap_or(if input.height >= 64 { 2 } else { 1 })
}

/// Parameters of `wrn28_10`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvParams {
    /// Multiplier on every channel count (CPU-sized profiles), > 0.
    #[serde(default = "one")]
    pub width: f64,
    /// Stem stride; defaults to 2 for inputs of 64 pixels or more (Tiny-ImageNet), else 1.
    #[serde(default)]
    pub stem_stride: Option<usize>,
}

/// Parameters of the PreActResNets.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResNetParams {
    /// Multiplier on every channel count (CPU-sized profiles), > 0.
    #[serde(default = "one")]
    pub width: f64,
    /// Stem stride; defaults to 2 for inputs of 64 pixels or more (Tiny-ImageNet), else 1.
    #[serde(default)]
    pub stem_stride: Option<usize>,
    /// Dropout probability before the linear layer, in [0, 1) (not in the reference).
    #[serde(default)]
    pub dropout: f64,
}

fn resnet<B: ResidualBlock + Send + Sync + 'static>(
    b: &ParamBuilder,
    input: InputSpec,
    p: &Map<String, Value>,
    blocks: [usize; 4],
) -> Result<Box<dyn Network>> {
    let q: ResNetParams = parse("preactresnet", p)?;
    if !(0.0..1.0).contains(&q.dropout) {
        return Err(Error::param(
            "dropout",
            format!(
                "model `preactresnet`: dropout must be a number in [0, 1), got {}",
                q.dropout
            ),
        ));
    }
    check_width("preactresnet", q.width)?;
    Ok(Box::new(PreActResNet::<B>::new(
        b,
        blocks,
        input.channels,
        input.classes,
        q.width,
        stem_stride(q.stem_stride, input),
        q.dropout,
    )?))
}

/// Parameters of `wide_resnet`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WrnParams {
    /// 6n + 4 with n >= 1 (10, 16, 22, 28, ...).
    pub depth: usize,
    /// Channel multiplier k of WRN-depth-k, >= 1.
    pub widen_factor: usize,
    /// Multiplier on every channel count (CPU-sized profiles), > 0.
    #[serde(default = "one")]
    pub width: f64,
    /// Stem stride; defaults to 2 for inputs of 64 pixels or more (Tiny-ImageNet), else 1.
    #[serde(default)]
    pub stem_stride: Option<usize>,
}

fn wrn28_10(
    b: &ParamBuilder,
    input: InputSpec,
    p: &Map<String, Value>,
) -> Result<Box<dyn Network>> {
    let q: ConvParams = parse("wrn28_10", p)?;
    check_width("wrn28_10", q.width)?;
    let stride = stem_stride(q.stem_stride, input);
    let (c, k) = (input.channels, input.classes);
    Ok(Box::new(WideResNet::new(b, 28, 10, c, k, q.width, stride)?))
}

fn wide_resnet(
    b: &ParamBuilder,
    input: InputSpec,
    p: &Map<String, Value>,
) -> Result<Box<dyn Network>> {
    let q: WrnParams = parse("wide_resnet", p)?;
    if q.depth < 10 || !(q.depth - 4).is_multiple_of(6) {
        return Err(Error::param(
            "depth",
            format!(
                "model `wide_resnet`: `depth` must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), as the reference's `assert (depth-4)%6 == 0`; got {}",
                q.depth
            ),
        ));
    }
    if q.widen_factor == 0 {
        return Err(Error::param(
            "widen_factor",
            "model `wide_resnet`: `widen_factor` must be >= 1",
        ));
    }
    check_width("wide_resnet", q.width)?;
    let stride = stem_stride(q.stem_stride, input);
    let (c, k) = (input.channels, input.classes);
    Ok(Box::new(WideResNet::new(
        b,
        q.depth,
        q.widen_factor,
        c,
        k,
        q.width,
        stride,
    )?))
}

/// Parameters of `glyph_cnn`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlyphCnnParams {
    /// Multiplier on every channel count, > 0.
    #[serde(default = "one")]
    pub width: f64,
}

fn glyph_cnn(
    b: &ParamBuilder,
    input: InputSpec,
    p: &Map<String, Value>,
) -> Result<Box<dyn Network>> {
    let q: GlyphCnnParams = parse("glyph_cnn", p)?;
    check_width("glyph_cnn", q.width)?;
    if input.classes != 2 {
        return Err(Error::Config(format!(
            "model `glyph_cnn` has one sigmoid output, so it needs a 2-class dataset; this one has {} classes",
            input.classes
        )));
    }
    Ok(Box::new(GlyphCnn::new(
        b,
        input.channels,
        input.height,
        input.width,
        q.width,
    )?))
}

fn mlp(b: &ParamBuilder, input: InputSpec, p: &Map<String, Value>) -> Result<Box<dyn Network>> {
    let params: MlpParams = parse("mlp", p)?;
    params.validate()?;
    let inputs = input.channels * input.height * input.width;
    Ok(Box::new(Mlp::new(b, inputs, input.classes, &params)?))
}
