//! The mixing operation shared by input and manifold mixup, as the reference `mixup_process`.

use candle_core::{Device, Result, Tensor};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};

/// One minibatch's mixing decision.
#[derive(Debug, Clone, PartialEq)]
pub struct MixPlan {
    /// Mix point (0 = input).
    pub layer: usize,
    /// Weight of the original example; the partner gets 1 − λ.
    pub lambda: f32,
    /// Partner of example i is example `perm[i]` of the same minibatch.
    pub perm: Vec<u32>,
    /// Stop gradients from flowing into the layers before the mix point.
    pub block_gradient: bool,
    /// One λ per example, overriding `lambda` (the reference's synthetic task draws λ per
    /// example).
    pub lambdas: Option<Vec<f32>>,
}

impl MixPlan {
    /// λ of example `i`.
    pub fn lambda_of(&self, i: usize) -> f32 {
        self.lambdas.as_ref().map_or(self.lambda, |l| l[i])
    }
}

/// λ ~ Beta(α, α), or 1 when α ≤ 0 (the reference's `get_lambda`).
pub fn sample_lambda(alpha: f64, rng: &mut ChaCha8Rng) -> f32 {
    // rand_distr refuses exactly the shapes the reference maps to λ = 1 (α ≤ 0, and NaN, which
    // config validation excludes), so its error is that branch; nothing is drawn there.
    Beta::new(alpha, alpha).map_or(1.0, |d| d.sample(rng) as f32)
}

/// Draws λ, then the layer uniformly from `layers`, then a uniform permutation.
pub fn sample_plan(
    alpha: f64,
    layers: &[usize],
    block_gradient: bool,
    batch: usize,
    rng: &mut ChaCha8Rng,
) -> MixPlan {
    let lambda = sample_lambda(alpha, rng);
    let layer = layers[rng.random_range(0..layers.len())];
    let mut perm: Vec<u32> = (0..batch as u32).collect();
    perm.shuffle(rng);
    MixPlan {
        layer,
        lambda,
        perm,
        block_gradient,
        lambdas: None,
    }
}

/// One λ_i ~ Beta(α, α) per example, then a uniform permutation; mix point 0.
pub fn sample_per_example_plan(alpha: f64, batch: usize, rng: &mut ChaCha8Rng) -> MixPlan {
    let lambdas: Vec<f32> = (0..batch).map(|_| sample_lambda(alpha, rng)).collect();
    let mut perm: Vec<u32> = (0..batch as u32).collect();
    perm.shuffle(rng);
    MixPlan {
        layer: 0,
        lambda: f32::NAN,
        perm,
        block_gradient: false,
        lambdas: Some(lambdas),
    }
}

/// λ·h + (1−λ)·h[perm], detached when the plan blocks gradients.
pub fn mix_hidden(h: &Tensor, plan: &MixPlan) -> Result<Tensor> {
    let idx = Tensor::from_slice(&plan.perm, plan.perm.len(), h.device())?;
    let partner = h.index_select(&idx, 0)?;
    let mixed = match &plan.lambdas {
        Some(l) => {
            let mut shape = vec![1usize; h.rank()];
            shape[0] = l.len();
            let lam = Tensor::from_slice(l, shape.as_slice(), h.device())?.to_dtype(h.dtype())?;
            let other = lam.affine(-1.0, 1.0)?;
            (h.broadcast_mul(&lam)? + partner.broadcast_mul(&other)?)?
        }
        None => {
            let lam = plan.lambda;
            // PyTorch rounds 1−λ in the representation's precision. For an f32 λ, 1−λ in f64
            // rounded once to f32 (candle's scalar conversion) is the f32 difference itself
            // (`f32_one_minus_lambda_is_the_f64_difference_rounded_once`), so one formula
            // serves f32 and f64.
            ((h * lam as f64)? + (partner * (1.0 - lam as f64))?)?
        }
    };
    Ok(if plan.block_gradient {
        mixed.detach()
    } else {
        mixed
    })
}

/// One-hot targets, mixed with the plan's λ and permutation when there is a plan.
pub fn soft_targets(
    labels: &[u32],
    classes: usize,
    plan: Option<&MixPlan>,
    device: &Device,
) -> Result<Tensor> {
    let t = soft_target_values(labels, classes, plan);
    Tensor::from_vec(t, (labels.len(), classes), device)
}

/// [`soft_targets`] as a row-major `labels.len() × classes` vector.
pub fn soft_target_values(labels: &[u32], classes: usize, plan: Option<&MixPlan>) -> Vec<f32> {
    let mut t = vec![0f32; labels.len() * classes];
    match plan {
        None => {
            for (i, &y) in labels.iter().enumerate() {
                t[i * classes + y as usize] = 1.0;
            }
        }
        Some(p) => {
            for (i, &y) in labels.iter().enumerate() {
                let lam = p.lambda_of(i);
                t[i * classes + y as usize] += lam;
                let yp = labels[p.perm[i] as usize];
                t[i * classes + yp as usize] += 1.0 - lam;
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn mixed_targets_rows_sum_to_one_and_lambda_one_is_identity() {
        let labels = [0u32, 1, 2, 1];
        let plan = MixPlan {
            layer: 0,
            lambda: 0.3,
            perm: vec![2, 0, 3, 1],
            block_gradient: false,
            lambdas: None,
        };
        let t = soft_targets(&labels, 3, Some(&plan), &Device::Cpu).unwrap();
        let rows: Vec<f32> = t.sum(1).unwrap().to_vec1().unwrap();
        for r in rows {
            assert!((r - 1.0).abs() < 1e-6);
        }
        let v: Vec<Vec<f32>> = t.to_vec2().unwrap();
        // Row 0: 0.3 of class 0 and 0.7 of class 2 (partner 2 has label 2).
        assert!((v[0][0] - 0.3).abs() < 1e-6 && (v[0][2] - 0.7).abs() < 1e-6);

        let id = MixPlan {
            lambda: 1.0,
            ..plan
        };
        let t1 = soft_targets(&labels, 3, Some(&id), &Device::Cpu).unwrap();
        let t0 = soft_targets(&labels, 3, None, &Device::Cpu).unwrap();
        assert_eq!(t1.to_vec2::<f32>().unwrap(), t0.to_vec2::<f32>().unwrap());
        let h = Tensor::arange(0f32, 8., &Device::Cpu)
            .unwrap()
            .reshape((4, 2))
            .unwrap();
        let m = mix_hidden(&h, &id).unwrap();
        assert_eq!(m.to_vec2::<f32>().unwrap(), h.to_vec2::<f32>().unwrap());
    }

    /// Why `mix_hidden` needs no f32 branch: for every f32 λ in [0, 1] (all 2^30 of them
    /// would take minutes; here every 997th bit pattern, plus the tiny and near-½ ones),
    /// `(1 − λ)` computed in f64 and rounded to f32 equals the f32 subtraction.
    #[test]
    fn f32_one_minus_lambda_is_the_f64_difference_rounded_once() {
        let special = [
            0.0f32,
            1.0,
            0.5,
            2f32.powi(-25),
            2f32.powi(-30),
            1e-40,
            0.3,
            0.7,
        ];
        let stepped = (0..1.0f32.to_bits()).step_by(997).map(f32::from_bits);
        for lam in special.into_iter().chain(stepped) {
            let f32_diff = 1.0f32 - lam;
            let via_f64 = (1.0 - lam as f64) as f32;
            assert_eq!(f32_diff.to_bits(), via_f64.to_bits(), "lambda {lam:e}");
        }
    }

    /// An f32 representation mixes with 1−λ rounded to f32 (0.3f32 for λ = 0.7), bit for bit.
    #[test]
    fn f32_mixing_uses_the_f32_partner_weight() {
        let h = Tensor::new(&[[1f32, 3.], [7., 11.]], &Device::Cpu).unwrap();
        let plan = MixPlan {
            layer: 1,
            lambda: 0.7,
            perm: vec![1, 0],
            block_gradient: false,
            lambdas: None,
        };
        let m: Vec<Vec<f32>> = mix_hidden(&h, &plan).unwrap().to_vec2().unwrap();
        let w = 1.0f32 - 0.7;
        let want = [
            [0.7 * 1. + w * 7., 0.7 * 3. + w * 11.],
            [0.7 * 7. + w * 1., 0.7 * 11. + w * 3.],
        ];
        for (row, want) in m.iter().zip(want) {
            for (&got, want) in row.iter().zip(want) {
                assert_eq!(got.to_bits(), want.to_bits());
            }
        }
    }

    #[test]
    fn mix_hidden_matches_hand_computation() {
        let h = Tensor::new(&[[1f32, 2.], [10., 20.]], &Device::Cpu).unwrap();
        let plan = MixPlan {
            layer: 1,
            lambda: 0.25,
            perm: vec![1, 0],
            block_gradient: false,
            lambdas: None,
        };
        let m: Vec<Vec<f32>> = mix_hidden(&h, &plan).unwrap().to_vec2().unwrap();
        assert_eq!(m, vec![vec![7.75, 15.5], vec![3.25, 6.5]]);
        // Per example: row 0 keeps 0.5 of itself, row 1 keeps 0.1.
        let per = MixPlan {
            lambdas: Some(vec![0.5, 0.1]),
            ..plan
        };
        let m: Vec<Vec<f32>> = mix_hidden(&h, &per).unwrap().to_vec2().unwrap();
        assert_eq!(m, vec![vec![5.5, 11.0], vec![1.9, 3.8]]);
        let t: Vec<Vec<f32>> = soft_targets(&[0, 1], 2, Some(&per), &Device::Cpu)
            .unwrap()
            .to_vec2()
            .unwrap();
        assert!(
            (t[1][1] - 0.1).abs() < 1e-6 && (t[1][0] - 0.9).abs() < 1e-6,
            "{t:?}"
        );
    }

    #[test]
    fn beta_draws_match_mean_and_variance() {
        for alpha in [0.2f64, 1.0, 2.0] {
            let mut rng = ChaCha8Rng::seed_from_u64(42);
            let n = 10_000;
            let xs: Vec<f64> = (0..n)
                .map(|_| sample_lambda(alpha, &mut rng) as f64)
                .collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
            let want_var = 1.0 / (4.0 * (2.0 * alpha + 1.0));
            assert!((mean - 0.5).abs() < 0.01, "alpha {alpha}: mean {mean}");
            assert!(
                (var - want_var).abs() / want_var < 0.05,
                "alpha {alpha}: var {var} vs {want_var}"
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(sample_lambda(0.0, &mut rng), 1.0);
        assert_eq!(sample_lambda(-1.0, &mut rng), 1.0);
        assert_eq!(sample_lambda(f64::NAN, &mut rng), 1.0);
        // No draw at λ = 1: the stream continues where it was, as the reference's.
        assert_eq!(
            rng.random::<u64>(),
            ChaCha8Rng::seed_from_u64(1).random::<u64>()
        );
    }
}
