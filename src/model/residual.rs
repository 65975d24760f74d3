//! What PreActResNet and WideResNet share: a stem convolution followed by stages of residual
//! blocks named `layer{s}.{j}`, the first block of every stage after the first striding by 2.

use candle_core::{Result, Tensor};

use super::layers::Conv2d;
use super::store::ParamBuilder;

/// A residual block a [`ResidualTrunk`] can stack.
pub trait ResidualBlock: Sized {
    /// Output channels per `planes` (4 for bottlenecks).
    const EXPANSION: usize = 1;
    /// Builds the block under `b`, from `cin` to `planes` channels, with `stride`.
    fn build(b: &ParamBuilder, cin: usize, planes: usize, stride: usize) -> Result<Self>;
    /// Applies the block.
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor>;
}

/// The 1×1 projection `shortcut.0` a block needs when it changes resolution or width; `None`
/// (identity) otherwise.
pub fn projection_shortcut(
    b: &ParamBuilder,
    cin: usize,
    planes: usize,
    stride: usize,
    bias: bool,
) -> Result<Option<Conv2d>> {
    if stride == 1 && cin == planes {
        return Ok(None);
    }
    Conv2d::new(&b.pp("shortcut").pp(0), cin, planes, 1, stride, 0, bias).map(Some)
}

/// The stem and the stages; stage `i` ends at mix point `i + 1`.
#[derive(Debug, Clone)]
pub struct ResidualTrunk<B> {
    stem: Conv2d,
    stages: Vec<Vec<B>>,
    out_channels: usize,
}

impl<B: ResidualBlock> ResidualTrunk<B> {
    /// Stages of `(blocks, planes)` after `stem` (which outputs `stem_channels`).
    pub fn new(
        b: &ParamBuilder,
        stem: Conv2d,
        stem_channels: usize,
        stages: &[(usize, usize)],
    ) -> Result<Self> {
        let mut cin = stem_channels;
        let mut built = Vec::with_capacity(stages.len());
        for (i, &(blocks, planes)) in stages.iter().enumerate() {
            let lb = b.pp(format!("layer{}", i + 1));
            let mut stage = Vec::with_capacity(blocks);
            for j in 0..blocks {
                let stride = if i > 0 && j == 0 { 2 } else { 1 };
                stage.push(B::build(&lb.pp(j), cin, planes, stride)?);
                cin = planes * B::EXPANSION;
            }
            built.push(stage);
        }
        Ok(ResidualTrunk {
            stem,
            stages: built,
            out_channels: cin,
        })
    }

    /// Channels of the last stage's output.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Number of stages.
    pub fn num_stages(&self) -> usize {
        self.stages.len()
    }

    /// Runs stage `i`, preceded by the stem when `i` is 0.
    pub fn forward_stage(&self, i: usize, h: &Tensor, train: bool) -> Result<Tensor> {
        let Some(stage) = self.stages.get(i) else {
            candle_core::bail!("the network has stages 0..{}, got {i}", self.stages.len());
        };
        let mut out = if i == 0 {
            self.stem.forward(h)?
        } else {
            h.clone()
        };
        for blk in stage {
            out = blk.forward(&out, train)?;
        }
        Ok(out)
    }
}
