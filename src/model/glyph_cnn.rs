//! The reference's classifier for the synthetic task (Table 8, pre-refactor
//! `supervised/classifier_synth.py`): four 5 × 5 stride-2 convolutions (32-64-128-256 channels,
//! padding 2) each followed by BatchNorm, LeakyReLU(0.02) after the first three, then one linear
//! unit and a sigmoid trained with BCE.
//!
//! The sigmoid output p = σ(z) is returned as the two logits [0, z]: softmax([0, z]) = [1 − p, p],
//! so the harness's BCE-on-softmax loss is exactly the reference's `BCELoss(sigmoid(z), y)`
//! (averaged over two identical terms), the arg-max is `p > 0.5` and the NLL is the binary one.
//! Mix points: 0 the input, i + 1 the output of convolution block i.

use candle_core::{D, Result, Tensor};

use super::Network;
use super::layers::{BatchNorm, Conv2d, Linear, leaky_relu};
use super::store::ParamBuilder;

const CHANNELS: [usize; 4] = [32, 64, 128, 256];

/// The synthetic-task CNN.
#[derive(Debug, Clone)]
pub struct GlyphCnn {
    blocks: Vec<(Conv2d, BatchNorm)>,
    head: Linear,
}

impl GlyphCnn {
    /// Builds it for `channels × height × width` inputs; `width` multiplies the channel counts.
    pub fn new(
        b: &ParamBuilder,
        channels: usize,
        height: usize,
        width_px: usize,
        width: f64,
    ) -> Result<Self> {
        let mut blocks = Vec::new();
        let mut cin = channels;
        let (mut h, mut w) = (height, width_px);
        for (i, &c) in CHANNELS.iter().enumerate() {
            let c = super::scaled(c, width);
            // PyTorch names inside `c1 = nn.Sequential(conv, bn, act, conv, bn, act, ...)`.
            let conv = Conv2d::new(&b.pp("c1").pp(3 * i), cin, c, 5, 2, 2, true)?;
            let bn = BatchNorm::new(&b.pp("c1").pp(3 * i + 1), c, 0.1)?;
            blocks.push((conv, bn));
            cin = c;
            h = h.div_ceil(2);
            w = w.div_ceil(2);
        }
        let head = Linear::new(&b.pp("c2"), cin * h * w, 1)?;
        Ok(GlyphCnn { blocks, head })
    }
}

impl Network for GlyphCnn {
    fn num_segments(&self) -> usize {
        self.blocks.len() + 1
    }

    fn forward_segment(&self, i: usize, h: &Tensor, train: bool) -> Result<Tensor> {
        if i == self.blocks.len() {
            let z = self.head.forward(&h.flatten_from(1)?)?;
            return Tensor::cat(&[&z.zeros_like()?, &z], D::Minus1);
        }
        let (conv, bn) = self
            .blocks
            .get(i)
            .ok_or_else(|| candle_core::Error::Msg(format!("glyph_cnn has no segment {i}")))?;
        let y = bn.forward(&conv.forward(h)?, train)?;
        if i + 1 < self.blocks.len() {
            leaky_relu(&y, 0.02)
        } else {
            Ok(y)
        }
    }
}
