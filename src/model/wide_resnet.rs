//! WideResNet-28-10 as in the reference code (`supervised/models/wide_resnet.py`): widths
//! 16→160/320/640, convs with bias, the stride on each block's second conv, shortcut on the raw
//! input, final BN (momentum 0.9, as written there) then ReLU, 8×8 pooling, no dropout.
//! Mix points: 0 input, 1 after conv1+layer1, 2 after layer2, 3 after layer3.

use candle_core::{Result, Tensor};

use super::layers::{BatchNorm, Conv2d, Linear};
use super::residual::{ResidualBlock, ResidualTrunk, projection_shortcut};
use super::store::ParamBuilder;
use super::{Network, scaled};

/// One wide basic block.
#[derive(Debug, Clone)]
pub struct WideBasic {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl ResidualBlock for WideBasic {
    fn build(b: &ParamBuilder, cin: usize, planes: usize, stride: usize) -> Result<Self> {
        let shortcut = projection_shortcut(b, cin, planes, stride, true)?;
        Ok(WideBasic {
            bn1: BatchNorm::new(&b.pp("bn1"), cin, 0.1)?,
            conv1: Conv2d::new(&b.pp("conv1"), cin, planes, 3, 1, 1, true)?,
            bn2: BatchNorm::new(&b.pp("bn2"), planes, 0.1)?,
            conv2: Conv2d::new(&b.pp("conv2"), planes, planes, 3, stride, 1, true)?,
            shortcut,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let out = self.conv1.forward(&self.bn1.forward_relu(x, train)?)?;
        let out = self.conv2.forward(&self.bn2.forward_relu(&out, train)?)?;
        let short = match &self.shortcut {
            Some(s) => s.forward(x)?,
            None => x.clone(),
        };
        out + short
    }
}

/// WideResNet of depth 6n+4 and widen factor k.
#[derive(Debug, Clone)]
pub struct WideResNet {
    trunk: ResidualTrunk<WideBasic>,
    bn1: BatchNorm,
    linear: Linear,
}

impl WideResNet {
    /// Builds WRN-`depth`-`widen` with a width multiplier applied to every stage.
    pub fn new(
        b: &ParamBuilder,
        depth: usize,
        widen: usize,
        in_channels: usize,
        classes: usize,
        width: f64,
        stem_stride: usize,
    ) -> Result<Self> {
        if depth < 10 || !(depth - 4).is_multiple_of(6) {
            candle_core::bail!("WideResNet depth must be 6n+4, got {depth}");
        }
        let n = (depth - 4) / 6;
        let c0 = scaled(16, width);
        let conv1 = Conv2d::new(&b.pp("conv1"), in_channels, c0, 3, stem_stride, 1, true)?;
        let plan: Vec<(usize, usize)> = [1usize, 2, 4]
            .into_iter()
            .map(|mult| (n, scaled(16 * widen * mult, width)))
            .collect();
        let trunk = ResidualTrunk::new(b, conv1, c0, &plan)?;
        let cin = trunk.out_channels();
        // PyTorch momentum=0.9 weights the new batch by 0.9, as the reference code wrote it.
        let bn1 = BatchNorm::new(&b.pp("bn1"), cin, 0.9)?;
        let linear = Linear::new(&b.pp("linear"), cin, classes)?;
        Ok(WideResNet { trunk, bn1, linear })
    }
}

impl Network for WideResNet {
    fn num_segments(&self) -> usize {
        self.trunk.num_stages() + 1
    }

    fn forward_segment(&self, i: usize, h: &Tensor, train: bool) -> Result<Tensor> {
        match i {
            0..=2 => self.trunk.forward_stage(i, h, train),
            // 8×8 average pooling is the whole final map for 32×32 inputs.
            3 => {
                let out = self.bn1.forward_relu(h, train)?;
                self.linear.forward(&out.mean((2, 3))?)
            }
            _ => candle_core::bail!("WideResNet has segments 0..=3, got {i}"),
        }
    }
}
