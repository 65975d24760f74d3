//! PreActResNet18/34/50 as in the reference code (`supervised/models/preresnet.py`).
//!
//! 3×3 stem conv (stride 2 for 64×64 inputs), four stages of pre-activation blocks (basic for
//! 18/34, bottleneck ×4 for 50), the 1×1 projection shortcut taken after the first BN-ReLU, no
//! final BN-ReLU, average pooling, optional dropout (not in the reference), linear.
//! Mix points: 0 input, 1 after conv1+layer1, 2 after layer2, 3 after layer3, 4 after layer4.

use candle_core::{Result, Tensor};

use super::layers::{BatchNorm, Conv2d, Dropout, Linear};
use super::residual::{ResidualBlock, ResidualTrunk, projection_shortcut};
use super::store::ParamBuilder;
use super::{Network, scaled};

/// BN-ReLU of the block input, and the shortcut: the projection of that activation when the
/// block has one (as the reference), else the input itself.
fn preactivate(
    bn1: &BatchNorm,
    shortcut: Option<&Conv2d>,
    x: &Tensor,
    train: bool,
) -> Result<(Tensor, Tensor)> {
    let out = bn1.forward_relu(x, train)?;
    let short = match shortcut {
        Some(s) => s.forward(&out)?,
        None => x.clone(),
    };
    Ok((out, short))
}

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
        let (out, short) = preactivate(&self.bn1, self.shortcut.as_ref(), x, train)?;
        let out = self.conv1.forward(&out)?;
        let out = self.conv2.forward(&self.bn2.forward_relu(&out, train)?)?;
        out + short
    }
}

/// One pre-activation bottleneck block (1×1, 3×3 strided, 1×1 to 4 × planes).
#[derive(Debug, Clone)]
pub struct PreActBottleneck {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    bn3: BatchNorm,
    conv3: Conv2d,
    shortcut: Option<Conv2d>,
}

impl ResidualBlock for PreActBottleneck {
    const EXPANSION: usize = 4;

    fn build(b: &ParamBuilder, cin: usize, planes: usize, stride: usize) -> Result<Self> {
        let out = planes * Self::EXPANSION;
        let shortcut = projection_shortcut(b, cin, out, stride, false)?;
        Ok(PreActBottleneck {
            bn1: BatchNorm::new(&b.pp("bn1"), cin, 0.1)?,
            conv1: Conv2d::new(&b.pp("conv1"), cin, planes, 1, 1, 0, false)?,
            bn2: BatchNorm::new(&b.pp("bn2"), planes, 0.1)?,
            conv2: Conv2d::new(&b.pp("conv2"), planes, planes, 3, stride, 1, false)?,
            bn3: BatchNorm::new(&b.pp("bn3"), planes, 0.1)?,
            conv3: Conv2d::new(&b.pp("conv3"), planes, out, 1, 1, 0, false)?,
            shortcut,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (out, short) = preactivate(&self.bn1, self.shortcut.as_ref(), x, train)?;
        let out = self.conv1.forward(&out)?;
        let out = self.conv2.forward(&self.bn2.forward_relu(&out, train)?)?;
        let out = self.conv3.forward(&self.bn3.forward_relu(&out, train)?)?;
        out + short
    }
}

/// PreActResNet over blocks `B`: basic [2,2,2,2] (18) or [3,4,6,3] (34), bottleneck [3,4,6,3] (50).
#[derive(Debug, Clone)]
pub struct PreActResNet<B = PreActBlock> {
    trunk: ResidualTrunk<B>,
    dropout: Option<Dropout>,
    linear: Linear,
}

impl<B: ResidualBlock> PreActResNet<B> {
    /// Builds the network for `in_channels`, `classes`, width multiplier, stem stride and the
    /// dropout probability before the linear layer (0 = none, as the reference).
    pub fn new(
        b: &ParamBuilder,
        blocks: [usize; 4],
        in_channels: usize,
        classes: usize,
        width: f64,
        stem_stride: usize,
        dropout: f64,
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
        let dropout = if dropout > 0.0 {
            Some(Dropout::new(dropout, b.noise())?)
        } else {
            None
        };
        Ok(PreActResNet {
            trunk,
            dropout,
            linear,
        })
    }
}

impl<B: ResidualBlock + Send + Sync> Network for PreActResNet<B> {
    fn num_segments(&self) -> usize {
        self.trunk.num_stages() + 1
    }

    fn forward_segment(&self, i: usize, h: &Tensor, train: bool) -> Result<Tensor> {
        match i {
            0..=3 => self.trunk.forward_stage(i, h, train),
            // The reference pools with a 4×4 window, which is the whole final map for its inputs
            // (32×32, or 64×64 with the stride-2 stem); a global mean equals it there.
            4 => {
                let pooled = h.mean((2, 3))?;
                let pooled = match &self.dropout {
                    Some(d) => d.forward(&pooled, train)?,
                    None => pooled,
                };
                self.linear.forward(&pooled)
            }
            _ => candle_core::bail!("PreActResNet has segments 0..=4, got {i}"),
        }
    }
}
