//! CutMix (Yun et al., 2019): paste a box of the partner image into each image and mix the
//! labels by the pasted area. Follows the authors' `train.py`/`rand_bbox` exactly: λ ~ Beta(α, α),
//! a uniform permutation, a box of side `int(size·√(1−λ))` centred uniformly and clipped, and the
//! targets' λ recomputed from the clipped box.

use candle_core::Tensor;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::mix::sample_lambda;
use super::{BatchInfo, MixPlan, Regularizer, Treatment, soft_target_values};
use crate::error::{Error, Result};

/// Parameters of `cutmix`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// λ ~ Beta(α, α); α > 0.
    pub alpha: f64,
    /// Chance a minibatch is cut-mixed at all (the authors' `--cutmix_prob`), in [0, 1].
    #[serde(default = "one")]
    pub prob: f64,
}

fn one() -> f64 {
    1.0
}

/// Box pasting with probability `prob` per minibatch.
pub struct CutMix {
    alpha: f64,
    prob: f64,
}

/// Builds `cutmix {alpha, prob}`; `prob` (default 1, the paper's Algorithm A1) is the chance a
/// minibatch is cut-mixed at all (the authors' `--cutmix_prob`).
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Regularizer>> {
    let p: Params = crate::params::parse("regularizer `cutmix`", p)?;
    if !(p.alpha.is_finite() && p.alpha > 0.0) {
        return Err(Error::param(
            "alpha",
            format!(
                "regularizer `cutmix`: alpha must be a number > 0 (λ ~ Beta(α, α)), got {}",
                p.alpha
            ),
        ));
    }
    if !(0.0..=1.0).contains(&p.prob) {
        return Err(Error::param(
            "prob",
            format!(
                "regularizer `cutmix`: prob must be in [0, 1], got {}",
                p.prob
            ),
        ));
    }
    Ok(Box::new(CutMix {
        alpha: p.alpha,
        prob: p.prob,
    }))
}

/// A half-open box `[r1, r2) × [c1, c2)` over an image's rows and columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelBox {
    /// First row.
    pub r1: usize,
    /// One past the last row.
    pub r2: usize,
    /// First column.
    pub c1: usize,
    /// One past the last column.
    pub c2: usize,
}

impl PixelBox {
    /// Pixels inside.
    pub fn area(&self) -> usize {
        (self.r2 - self.r1) * (self.c2 - self.c1)
    }

    /// A `rows × cols` 0/1 mask, 1 inside the box.
    pub fn mask(&self, rows: usize, cols: usize) -> Vec<u8> {
        let mut m = vec![0u8; rows * cols];
        for r in self.r1..self.r2 {
            m[r * cols + self.c1..r * cols + self.c2].fill(1);
        }
        m
    }
}

/// The authors' `rand_bbox` for λ and centre (cr, cc): side `int(n·√(1−λ))` per axis, half-side
/// `side // 2` on both sides of the centre, clipped to the image.
pub fn cutmix_box(rows: usize, cols: usize, lambda: f64, cr: usize, cc: usize) -> PixelBox {
    let rat = (1.0 - lambda).sqrt();
    let half_r = ((rows as f64 * rat) as i64) / 2;
    let half_c = ((cols as f64 * rat) as i64) / 2;
    let clip = |v: i64, n: usize| v.clamp(0, n as i64) as usize;
    PixelBox {
        r1: clip(cr as i64 - half_r, rows),
        r2: clip(cr as i64 + half_r, rows),
        c1: clip(cc as i64 - half_c, cols),
        c2: clip(cc as i64 + half_c, cols),
    }
}

/// Replaces the box of every image of `x` (n, c, rows, cols) with its partner's: an exact select,
/// not arithmetic, so pixels outside the box are bit-identical.
pub fn paste_box(x: &Tensor, perm: &[u32], b: PixelBox) -> candle_core::Result<Tensor> {
    let (_, _, rows, cols) = x.dims4()?;
    let idx = Tensor::from_slice(perm, perm.len(), x.device())?;
    let partner = x.index_select(&idx, 0)?;
    let mask = Tensor::from_vec(b.mask(rows, cols), (1, 1, rows, cols), x.device())?
        .broadcast_as(x.shape())?
        .contiguous()?;
    mask.where_cond(&partner, x)
}

impl Regularizer for CutMix {
    fn name(&self) -> &str {
        "cutmix"
    }

    fn treat(&self, batch: &BatchInfo<'_>, rng: &mut ChaCha8Rng) -> Result<Treatment> {
        // The authors draw r ~ U(0, 1) and cut-mix when r < prob.
        if self.prob < 1.0 && rng.random::<f64>() >= self.prob {
            return Ok(Treatment::clean(batch));
        }
        let lambda = sample_lambda(self.alpha, rng) as f64;
        let mut perm: Vec<u32> = (0..batch.examples() as u32).collect();
        perm.shuffle(rng);
        let (rows, cols) = (batch.shape.h, batch.shape.w);
        // The authors' `rand_bbox` draws the centre along dim 2 first, then dim 3.
        let cr = rng.random_range(0..rows);
        let cc = rng.random_range(0..cols);
        let b = cutmix_box(rows, cols, lambda, cr, cc);
        let plan = MixPlan {
            layer: 0,
            lambda: (1.0 - b.area() as f64 / (rows * cols) as f64) as f32,
            perm,
            block_gradient: false,
            lambdas: None,
        };
        let p = plan.perm.clone();
        Ok(Treatment {
            targets: soft_target_values(batch.labels, batch.classes, Some(&plan)),
            mix: Some(plan),
            raw_images: None,
            point: 0,
            transform: Some(Box::new(move |x: &Tensor| paste_box(x, &p, b))),
            loss_term: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::ImageShape;
    use candle_core::Device;

    #[test]
    fn boxes_match_the_authors_rand_bbox_by_hand() {
        // 32×32, λ = 0.75: √0.25 = 0.5, side 16, half 8 → [cr−8, cr+8).
        assert_eq!(
            cutmix_box(32, 32, 0.75, 10, 20),
            PixelBox {
                r1: 2,
                r2: 18,
                c1: 12,
                c2: 28
            }
        );
        // Clipped at the corner: centre (3, 30) gives rows [0, 11), cols [22, 32).
        let b = cutmix_box(32, 32, 0.75, 3, 30);
        assert_eq!((b.r1, b.r2, b.c1, b.c2), (0, 11, 22, 32));
        assert_eq!(b.area(), 110);
        // int(5·√0.5) = int(3.53) = 3, half 1: an odd side loses a pixel as in `cut_w // 2`.
        assert_eq!(cutmix_box(5, 5, 0.5, 2, 2).area(), 4);
        // λ = 1: an empty box.
        assert_eq!(cutmix_box(8, 8, 1.0, 4, 4).area(), 0);
    }

    #[test]
    fn paste_box_swaps_exactly_the_box() {
        // Two 1×3×3 images, 0..9 and 100..109; box rows [0,2), cols [1,3).
        let v: Vec<f32> = (0..9)
            .map(|i| i as f32)
            .chain((0..9).map(|i| 100.0 + i as f32))
            .collect();
        let x = Tensor::from_vec(v, (2, 1, 3, 3), &Device::Cpu).unwrap();
        let b = PixelBox {
            r1: 0,
            r2: 2,
            c1: 1,
            c2: 3,
        };
        let y: Vec<f32> = paste_box(&x, &[1, 0], b)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(
            y,
            vec![
                0., 101., 102., 3., 104., 105., 6., 7., 8., //
                100., 1., 2., 103., 4., 5., 106., 107., 108.
            ]
        );
    }

    fn info(labels: &[u32]) -> BatchInfo<'_> {
        BatchInfo {
            indices: &[0, 1, 2, 3],
            labels,
            classes: 4,
            shape: ImageShape { c: 1, h: 8, w: 8 },
            latent: None,
        }
    }

    fn cutmix(json: &str) -> Box<dyn Regularizer> {
        build(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn alpha_zero_is_refused_at_its_field() {
        let e = build(&serde_json::from_str(r#"{"alpha": 0.0}"#).unwrap()).err();
        assert!(
            matches!(&e, Some(Error::Param { path, .. }) if path == "alpha"),
            "{e:?}"
        );
    }

    #[test]
    fn at_prob_1_no_coin_is_drawn_and_the_plan_is_the_authors_sequence() {
        let labels = [0u32, 1, 2, 3];
        let mut rng = crate::rng::stream(3, "mix", 0);
        let t = cutmix(r#"{"alpha": 1.0}"#)
            .treat(&info(&labels), &mut rng)
            .unwrap();
        let plan = t.mix.unwrap();
        // λ, then the permutation, then the box centre (row, column), nothing before them.
        let mut want = crate::rng::stream(3, "mix", 0);
        let lambda = sample_lambda(1.0, &mut want) as f64;
        let mut perm: Vec<u32> = (0..4).collect();
        perm.shuffle(&mut want);
        let (cr, cc) = (want.random_range(0..8), want.random_range(0..8));
        let b = cutmix_box(8, 8, lambda, cr, cc);
        assert_eq!(plan.perm, perm);
        assert_eq!(plan.lambda, (1.0 - b.area() as f64 / 64.0) as f32);
    }

    #[test]
    fn prob_is_the_share_of_minibatches_that_are_cut_mixed() {
        let labels = [0u32, 1, 2, 3];
        let share = |json: &str| {
            let reg = cutmix(json);
            let mut rng = crate::rng::stream(5, "mix", 0);
            (0..400)
                .filter(|_| reg.treat(&info(&labels), &mut rng).unwrap().mix.is_some())
                .count()
        };
        assert_eq!(share(r#"{"alpha": 1.0, "prob": 0.0}"#), 0);
        assert_eq!(share(r#"{"alpha": 1.0, "prob": 1.0}"#), 400);
        // 400 coins at 0.3: 120 expected, sd 9.2.
        let k = share(r#"{"alpha": 1.0, "prob": 0.3}"#);
        assert!((85..=155).contains(&k), "{k}");
    }

    #[test]
    fn targets_use_the_pasted_area() {
        let reg = build(&serde_json::from_str(r#"{"alpha": 1.0}"#).unwrap()).unwrap();
        let labels = [0u32, 1, 2, 3];
        let info = BatchInfo {
            indices: &[0, 1, 2, 3],
            labels: &labels,
            classes: 4,
            shape: ImageShape { c: 1, h: 8, w: 8 },
            latent: None,
        };
        let mut rng = crate::rng::stream(7, "mix", 0);
        for _ in 0..20 {
            let t = reg.treat(&info, &mut rng).unwrap();
            let plan = t.mix.as_ref().unwrap();
            // Rebuild the box from the transform: paste a batch of ones into zeros.
            let x = Tensor::from_vec(
                (0..4 * 64).map(|i| (i / 64) as f32).collect::<Vec<_>>(),
                (4, 1, 8, 8),
                &Device::Cpu,
            )
            .unwrap();
            let y: Vec<f32> = (t.transform.as_ref().unwrap())(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            for i in 0..4 {
                let pasted = y[i * 64..(i + 1) * 64]
                    .iter()
                    .filter(|&&v| v == plan.perm[i] as f32 && plan.perm[i] as usize != i)
                    .count();
                if plan.perm[i] as usize != i {
                    let want = 1.0 - pasted as f32 / 64.0;
                    assert_eq!(plan.lambda, want);
                    assert_eq!(t.targets[i * 4 + labels[i] as usize], want);
                    assert_eq!(
                        t.targets[i * 4 + labels[plan.perm[i] as usize] as usize],
                        1.0 - want
                    );
                }
            }
        }
    }
}
