//! PreActResNet18/34 as in the reference code (`supervised/models/preresnet.py`).
//!
//! 3×3 stem conv (stride 2 for 64×64 inputs), four stages of pre-activation blocks, the 1×1
//! projection shortcut taken after the first BN-ReLU, no final BN-ReLU, average pooling, linear.
//! Mix points: 0 input, 1 after conv1+layer1, 2 after layer2, 3 after layer3, 4 after layer4.

use candle_core::{Result, Tensor};

use super::layers::{BatchNorm, Conv2d, Linear, relu};
use super::residual::{ResidualBlock, ResidualTrunk, projection_shortcut};
use super::store::ParamBuilder;
use super::{Network, scaled};

/// One pre-activation basic block.
#[derive(Debug, Clone)]
pub struct PreActBlock {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl ResidualBlock for PreActBlock {
    fn build(b: &ParamBuilder, cin: usize, planes: usize, stride: usize) -> Result<Self> {
        let shortcut = projection_shortcut(b, cin, planes, stride, false)?;
        Ok(PreActBlock {
            bn1: BatchNorm::new(&b.pp("bn1"), cin, 0.1)?,
            conv1: Conv2d::new(&b.pp("conv1"), cin, planes, 3, stride, 1, false)?,
            bn2: BatchNorm::new(&b.pp("bn2"), planes, 0.1)?,
            conv2: Conv2d::new(&b.pp("conv2"), planes, planes, 3, 1, 1, false)?,
            shortcut,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let out = relu(&self.bn1.forward(x, train)?)?;
        let short = match &self.shortcut {
            Some(s) => s.forward(&out)?,
            None => x.clone(),
        };
        let out = self.conv1.forward(&out)?;
        let out = self
            .conv2
            .forward(&relu(&self.bn2.forward(&out, train)?)?)?;
        out + short
    }
}

/// PreActResNet with basic blocks; `blocks` = [2,2,2,2] (18) or [3,4,6,3] (34).
#[derive(Debug, Clone)]
pub struct PreActResNet {
    trunk: ResidualTrunk<PreActBlock>,
    linear: Linear,
}

impl PreActResNet {
    /// Builds the network for `in_channels`, `classes`, width multiplier and stem stride.
    pub fn new(
        b: &ParamBuilder,
        blocks: [usize; 4],
        in_channels: usize,
        classes: usize,
        width: f64,
        stem_stride: usize,
    ) -> Result<Self> {
        let c0 = scaled(64, width);
        let conv1 = Conv2d::new(&b.pp("conv1"), in_channels, c0, 3, stem_stride, 1, false)?;
        let plan: Vec<(usize, usize)> = blocks
            .iter()
            .zip([1usize, 2, 4, 8])
            .map(|(&n, mult)| (n, scaled(64 * mult, width)))
            .collect();
        let trunk = ResidualTrunk::new(b, conv1, c0, &plan)?;
        let linear = Linear::new(&b.pp("linear"), trunk.out_channels(), classes)?;
        Ok(PreActResNet { trunk, linear })
    }
}

impl Network for PreActResNet {
    fn num_segments(&self) -> usize {
        self.trunk.num_stages() + 1
    }

    fn forward_segment(&self, i: usize, h: &Tensor, train: bool) -> Result<Tensor> {
        match i {
            0..=3 => self.trunk.forward_stage(i, h, train),
            // The reference pools with a 4×4 window, which is the whole final map for its inputs
            // (32×32, or 64×64 with the stride-2 stem); a global mean equals it there.
            4 => self.linear.forward(&h.mean((2, 3))?),
            _ => candle_core::bail!("PreActResNet has segments 0..=4, got {i}"),
        }
    }
}
