//! Cutout (DeVries & Taylor, 2017): zero square patches of the (normalised) input; targets stay
//! one-hot. As the reference's `utils.Cutout.apply`, by default one mask is drawn per minibatch
//! and applied to every image in it; `per_example: true` draws one per image, as the original
//! Cutout code does inside its per-image transform.

use candle_core::Tensor;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{BatchInfo, Regularizer, Treatment};
use crate::error::{Error, Result};

/// Parameters of `cutout`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Side of each square patch, pixels (>= 1).
    pub length: usize,
    /// Patches per mask (>= 1).
    #[serde(default = "one")]
    pub holes: usize,
    /// One mask per image instead of one per minibatch (the reference's default).
    #[serde(default)]
    pub per_example: bool,
}

fn one() -> usize {
    1
}

/// Zeroes `holes` patches of side `length`.
pub struct Cutout {
    length: usize,
    holes: usize,
    per_example: bool,
}

/// Builds `cutout {length, holes, per_example}` (the reference's `--cutout 16`, one hole).
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Regularizer>> {
    let p: Params = crate::params::parse("regularizer `cutout`", p)?;
    if p.length == 0 || p.holes == 0 {
        return Err(Error::param(
            if p.length == 0 { "length" } else { "holes" },
            format!(
                "regularizer `cutout`: length and holes must be >= 1, got length {} and holes {}",
                p.length, p.holes
            ),
        ));
    }
    Ok(Box::new(Cutout {
        length: p.length,
        holes: p.holes,
        per_example: p.per_example,
    }))
}

/// The reference's patch for centre (y, x): `int(clip(y ∓ length/2, 0, h))` per side, so an odd
/// length covers `length` pixels away from the border and fewer at it.
pub fn cutout_patch(h: usize, w: usize, length: usize, y: usize, x: usize) -> [usize; 4] {
    let half = length as f64 / 2.0;
    let clip = |v: f64, n: usize| v.clamp(0.0, n as f64) as usize;
    [
        clip(y as f64 - half, h),
        clip(y as f64 + half, h),
        clip(x as f64 - half, w),
        clip(x as f64 + half, w),
    ]
}

impl Cutout {
    /// One `h × w` mask (1 kept, 0 cut), drawing each hole's centre row then column.
    fn draw_mask(&self, h: usize, w: usize, rng: &mut ChaCha8Rng, out: &mut [f32]) {
        out.fill(1.0);
        for _ in 0..self.holes {
            let y = rng.random_range(0..h);
            let x = rng.random_range(0..w);
            let [y1, y2, x1, x2] = cutout_patch(h, w, self.length, y, x);
            for r in y1..y2 {
                out[r * w + x1..r * w + x2].fill(0.0);
            }
        }
    }
}

impl Regularizer for Cutout {
    fn name(&self) -> &str {
        "cutout"
    }

    fn treat(&self, batch: &BatchInfo<'_>, rng: &mut ChaCha8Rng) -> Result<Treatment> {
        let (h, w) = (batch.shape.h, batch.shape.w);
        let masks = if self.per_example {
            batch.examples()
        } else {
            1
        };
        let mut m = vec![1f32; masks * h * w];
        for chunk in m.chunks_mut(h * w) {
            self.draw_mask(h, w, rng, chunk);
        }
        let mut t = Treatment::clean(batch);
        t.transform = Some(Box::new(move |x: &Tensor| {
            let mask = Tensor::from_slice(&m, (masks, 1, h, w), x.device())?.to_dtype(x.dtype())?;
            x.broadcast_mul(&mask)
        }));
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::ImageShape;
    use candle_core::Device;

    #[test]
    fn a_zero_length_or_zero_holes_is_refused_at_its_own_field() {
        let field = |v: serde_json::Value| match build(v.as_object().unwrap()) {
            Err(crate::Error::Param { path, .. }) => Some(path),
            Err(e) => panic!("{e}"),
            Ok(_) => None,
        };
        assert_eq!(
            field(serde_json::json!({"length": 0})),
            Some("length".into())
        );
        assert_eq!(
            field(serde_json::json!({"length": 0, "holes": 2})),
            Some("length".into())
        );
        assert_eq!(
            field(serde_json::json!({"length": 4, "holes": 0})),
            Some("holes".into())
        );
        assert_eq!(field(serde_json::json!({"length": 4})), None);
    }

    #[test]
    fn patches_match_the_reference_by_hand() {
        // length 16 around (10, 20) in 32×32: [2, 18) × [12, 28).
        assert_eq!(cutout_patch(32, 32, 16, 10, 20), [2, 18, 12, 28]);
        // At the border: y = 3 → [0, 11); x = 31 → [23, 32).
        assert_eq!(cutout_patch(32, 32, 16, 3, 31), [0, 11, 23, 32]);
        // Odd length 5 at (4, 4): int(1.5) = 1, int(6.5) = 6 → 5 pixels.
        assert_eq!(cutout_patch(10, 10, 5, 4, 4), [1, 6, 1, 6]);
        // Odd length at the border: int(clip(−0.5)) = 0, int(2.5) = 2 → 2 pixels.
        assert_eq!(cutout_patch(10, 10, 5, 0, 9), [0, 2, 6, 10]);
    }

    fn apply(per_example: bool, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let reg = build(
            &serde_json::from_value(serde_json::json!({"length": 2, "per_example": per_example}))
                .unwrap(),
        )
        .unwrap();
        let labels = [1u32, 0, 1];
        let info = BatchInfo {
            indices: &[0, 1, 2],
            labels: &labels,
            classes: 2,
            shape: ImageShape { c: 2, h: 4, w: 4 },
            latent: None,
        };
        let mut rng = crate::rng::stream(seed, "mix", 0);
        let t = reg.treat(&info, &mut rng).unwrap();
        assert!(t.mix.is_none());
        let x = Tensor::ones((3, 2, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let y = (t.transform.as_ref().unwrap())(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        (y, t.targets)
    }

    #[test]
    fn one_patch_per_batch_or_per_image_and_targets_stay_one_hot() {
        for seed in 0..10 {
            let (y, targets) = apply(false, seed);
            assert_eq!(targets, vec![0., 1., 1., 0., 0., 1.]);
            // Every image and channel gets the same mask, which cuts 1, 2 or 4 pixels.
            let first = &y[..16];
            let cut = first.iter().filter(|&&v| v == 0.0).count();
            assert!([1, 2, 4].contains(&cut), "{cut}");
            for plane in y.chunks(16) {
                assert_eq!(plane, first);
            }
        }
        // Per image: the masks differ within a batch for some seed, and both channels of an
        // image share one.
        let mut differed = false;
        for seed in 0..10 {
            let (y, _) = apply(true, seed);
            for img in y.chunks(32) {
                assert_eq!(img[..16], img[16..]);
            }
            differed |= y[..16] != y[32..48];
        }
        assert!(differed);
    }
}
