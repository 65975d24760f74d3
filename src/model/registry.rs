//! Every architecture by name: adding one is a new file plus one entry in `BUILTIN` (or, from
//! another crate, `App::model`).

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
    Entry::new(
        "preactresnet18",
        "PreActResNet18 (blocks [2,2,2,2]); params: width, stem_stride, dropout (before the linear layer; not in the reference)",
        |b, i, p| resnet::<PreActBlock>(b, i, p, [2, 2, 2, 2]),
    ),
    Entry::new(
        "preactresnet34",
        "PreActResNet34 (blocks [3,4,6,3]); params: width, stem_stride, dropout",
        |b, i, p| resnet::<PreActBlock>(b, i, p, [3, 4, 6, 3]),
    ),
    Entry::new(
        "preactresnet50",
        "PreActResNet50 (bottleneck blocks [3,4,6,3], 4× expansion; §5.1's regularizer comparison); params: width, stem_stride, dropout",
        |b, i, p| resnet::<PreActBottleneck>(b, i, p, [3, 4, 6, 3]),
    ),
    Entry::new(
        "wrn28_10",
        "WideResNet-28-10; params: width, stem_stride",
        |b, i, p| wrn(b, i, p, Some((28, 10))),
    ),
    Entry::new(
        "wide_resnet",
        "WideResNet-depth-widen_factor (depth = 6n + 4, as the reference asserts); params: depth, widen_factor, width, stem_stride",
        |b, i, p| wrn(b, i, p, None),
    ),
    Entry::new(
        "glyph_cnn",
        "Table 8's synthetic-task CNN (4 stride-2 5×5 convs 32-64-128-256, BatchNorm, LeakyReLU(0.02), one sigmoid unit as logits [0, z]); params: width",
        glyph_cnn,
    ),
    Entry::new(
        "mlp",
        "MLP; params: hidden, activation, bottleneck, dropout, width",
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

fn parse<T: for<'de> Deserialize<'de>>(arch: &str, p: &Map<String, Value>) -> Result<T> {
    serde_json::from_value(Value::Object(p.clone()))
        .map_err(|e| Error::Config(format!("model `{arch}`: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConvParams {
    #[serde(default = "one")]
    width: f64,
    /// Stem stride; defaults to 2 for inputs of 64 pixels or more (Tiny-ImageNet), else 1.
    #[serde(default)]
    stem_stride: Option<usize>,
}

fn one() -> f64 {
    1.0
}

fn conv_params(arch: &str, input: InputSpec, p: &Map<String, Value>) -> Result<(f64, usize)> {
    let c: ConvParams = parse(arch, p)?;
    if !(c.width > 0.0 && c.width.is_finite()) {
        return Err(Error::Config(format!(
            "model `{arch}`: width must be > 0, got {}",
            c.width
        )));
    }
    let stride = c
        .stem_stride
        .unwrap_or(if input.height >= 64 { 2 } else { 1 });
    Ok((c.width, stride))
}

fn resnet<B: ResidualBlock + Send + Sync + 'static>(
    b: &ParamBuilder,
    input: InputSpec,
    p: &Map<String, Value>,
    blocks: [usize; 4],
) -> Result<Box<dyn Network>> {
    // `dropout` is PreActResNet's own; the rest is shared with WideResNet.
    let mut rest = p.clone();
    let dropout = match rest.remove("dropout") {
        None => 0.0,
        Some(v) => match v.as_f64() {
            Some(q) if (0.0..1.0).contains(&q) => q,
            _ => {
                return Err(Error::Config(format!(
                    "model `preactresnet`: dropout must be a number in [0, 1), got {v}"
                )));
            }
        },
    };
    let (width, stride) = conv_params("preactresnet", input, &rest)?;
    Ok(Box::new(PreActResNet::<B>::new(
        b,
        blocks,
        input.channels,
        input.classes,
        width,
        stride,
        dropout,
    )?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrnParams {
    depth: usize,
    widen_factor: usize,
    #[serde(default = "one")]
    width: f64,
    #[serde(default)]
    stem_stride: Option<usize>,
}

fn wrn(
    b: &ParamBuilder,
    input: InputSpec,
    p: &Map<String, Value>,
    fixed: Option<(usize, usize)>,
) -> Result<Box<dyn Network>> {
    let (arch, depth, widen, rest) = match fixed {
        Some((d, k)) => ("wrn28_10", d, k, p.clone()),
        None => {
            let q: WrnParams = parse("wide_resnet", p)?;
            if q.depth < 10 || !(q.depth - 4).is_multiple_of(6) {
                return Err(Error::Config(format!(
                    "model `wide_resnet`: `depth` must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), as the reference's `assert (depth-4)%6 == 0`; got {}",
                    q.depth
                )));
            }
            if q.widen_factor == 0 {
                return Err(Error::Config(
                    "model `wide_resnet`: `widen_factor` must be >= 1".into(),
                ));
            }
            let rest: Map<String, Value> = p
                .iter()
                .filter(|(k, _)| k.as_str() != "depth" && k.as_str() != "widen_factor")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let _ = (q.width, q.stem_stride);
            ("wide_resnet", q.depth, q.widen_factor, rest)
        }
    };
    let (width, stride) = conv_params(arch, input, &rest)?;
    Ok(Box::new(WideResNet::new(
        b,
        depth,
        widen,
        input.channels,
        input.classes,
        width,
        stride,
    )?))
}

fn glyph_cnn(
    b: &ParamBuilder,
    input: InputSpec,
    p: &Map<String, Value>,
) -> Result<Box<dyn Network>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        #[serde(default = "one")]
        width: f64,
    }
    let q: Params = parse("glyph_cnn", p)?;
    if !(q.width > 0.0 && q.width.is_finite()) {
        return Err(Error::Config(format!(
            "model `glyph_cnn`: width must be > 0, got {}",
            q.width
        )));
    }
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
    let inputs = input.channels * input.height * input.width;
    Ok(Box::new(Mlp::new(b, inputs, input.classes, &params)?))
}
