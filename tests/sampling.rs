//! The distribution of mixing plans (issue item 3): the mix point is uniform over the eligible
//! set, λ ~ Beta(α, α), and the partner permutation is uniform.
//!
//! Goodness-of-fit tests at significance 0.001 on fixed seeds, so each test is deterministic:
//! with these seeds they pass, and a sampler off by a few percent fails them.

mod common;

use common::plans::draw_plan;
use mixbench::regularizer::mix::{sample_lambda, sample_plan};
use mixbench::regularizer::{MixPlan, Regularizer, registry};
use mixbench::rng::stream;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use statrs::distribution::{Beta, ChiSquared, ContinuousCDF, Normal};

/// Significance level of every test.
const ALPHA_TEST: f64 = 0.001;

fn rng(purpose: &str, index: u64) -> ChaCha8Rng {
    stream(20_190_609, &format!("tests/sampling/{purpose}"), index)
}

fn manifold_mixup(params: Value) -> Box<dyn Regularizer> {
    let p: Map<String, Value> = params.as_object().cloned().unwrap();
    registry::build("manifold_mixup", &p).unwrap()
}

/// Pearson's statistic of `counts` against equal expected counts.
fn chi_square_uniform(counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    let e = n as f64 / counts.len() as f64;
    counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum()
}

/// Upper `ALPHA_TEST` critical value of χ² with `dof` degrees of freedom.
fn chi_square_critical(dof: usize) -> f64 {
    ChiSquared::new(dof as f64)
        .unwrap()
        .inverse_cdf(1.0 - ALPHA_TEST)
}

fn check_plan(plan: &MixPlan, batch: usize) {
    assert_eq!(plan.perm.len(), batch);
    let mut seen = vec![false; batch];
    for &j in &plan.perm {
        assert!(
            (j as usize) < batch && !seen[j as usize],
            "not a permutation: {:?}",
            plan.perm
        );
        seen[j as usize] = true;
    }
    assert!((0.0..=1.0).contains(&plan.lambda), "λ = {}", plan.lambda);
}

// ------------------------------------------------------------------------------------------
// Mix point
// ------------------------------------------------------------------------------------------

#[test]
fn mix_point_is_uniform_over_the_eligible_set() {
    let n = 30_000;
    for (i, layers) in [vec![0usize, 1, 2], vec![0, 2, 3]].into_iter().enumerate() {
        let reg = manifold_mixup(json!({"alpha": 2.0, "layers": layers}));
        reg.validate(5).unwrap();
        let mut r = rng("layer", i as u64);
        let mut counts = vec![0u64; layers.len()];
        for _ in 0..n {
            let plan = draw_plan(reg.as_ref(), 8, &mut r).expect("manifold_mixup always mixes");
            check_plan(&plan, 8);
            assert!(!plan.block_gradient);
            let pos = layers
                .iter()
                .position(|&k| k == plan.layer)
                .unwrap_or_else(|| panic!("layer {} is not in {layers:?}", plan.layer));
            counts[pos] += 1;
        }
        let stat = chi_square_uniform(&counts);
        let crit = chi_square_critical(layers.len() - 1);
        println!("layers {layers:?}: counts {counts:?}, χ² = {stat:.3} (critical {crit:.3})");
        assert!(
            stat < crit,
            "layers {layers:?}: counts {counts:?}, χ² {stat} ≥ {crit}"
        );
    }
}

#[test]
fn single_eligible_layer_is_always_chosen_and_block_gradient_is_passed_on() {
    let reg = manifold_mixup(json!({"alpha": 1.0, "layers": [3], "block_gradient": true}));
    let mut r = rng("single", 0);
    for _ in 0..1000 {
        let plan = draw_plan(reg.as_ref(), 4, &mut r).unwrap();
        assert_eq!(plan.layer, 3);
        assert!(plan.block_gradient);
    }
}

// ------------------------------------------------------------------------------------------
// λ
// ------------------------------------------------------------------------------------------

/// Kolmogorov–Smirnov statistic of f32 draws against the continuous `cdf`, accounting for the
/// rounding of each draw to f32.
///
/// λ is drawn in f64 and stored as f32 (as the reference does:
/// `np.array([lam]).astype('float32')`). Near 1 the f32 grid is coarse (spacing 6e-8), and
/// Beta(0.2, 0.2) puts ≈1.6% of its mass within 3e-8 of 1, which all rounds to exactly 1.0; a
/// plain KS test against the continuous CDF would see that 1.6% jump and reject a correct
/// sampler at n = 20 000. So the reference distribution is the f32-rounded Beta: a draw
/// equals the f32 value `v` when the real draw lies in `(lo(v), hi(v))`, the midpoints to the
/// neighbouring f32 values, and its CDF is `F(hi(v))` at `v` and `F(lo(v))` just below.
fn ks_statistic_f32(draws: &mut [f32], cdf: impl Fn(f64) -> f64) -> f64 {
    draws.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = draws.len() as f64;
    let mut d = 0f64;
    let mut i = 0;
    while i < draws.len() {
        let v = draws[i];
        let mut j = i;
        while j < draws.len() && draws[j] == v {
            j += 1;
        }
        let below = f32::from_bits(v.to_bits().wrapping_sub(1)); // v > 0 here
        let above = f32::from_bits(v.to_bits() + 1);
        let lo = if v > 0.0 {
            (v as f64 + below as f64) / 2.0
        } else {
            0.0
        };
        let hi = if v < 1.0 {
            (v as f64 + above as f64) / 2.0
        } else {
            1.0
        };
        // Empirical CDF just below v is i/n, at v it is j/n.
        d = d
            .max((cdf(lo) - i as f64 / n).abs())
            .max((j as f64 / n - cdf(hi)).abs());
        i = j;
    }
    d
}

fn ks_critical(n: usize) -> f64 {
    // Asymptotic two-sided critical value at 0.001: √(−ln(0.0005)/2) ≈ 1.949.
    1.95 / (n as f64).sqrt()
}

#[test]
fn lambda_follows_beta_alpha_alpha() {
    let n = 20_000;
    for (i, alpha) in [0.2f64, 1.0, 2.0].into_iter().enumerate() {
        let beta = Beta::new(alpha, alpha).unwrap();
        let cdf = |x: f64| beta.cdf(x);

        // The sampler itself.
        let mut r = rng("lambda", i as u64);
        let mut draws: Vec<f32> = (0..n).map(|_| sample_lambda(alpha, &mut r)).collect();
        assert!(draws.iter().all(|l| (0.0..=1.0).contains(l)));
        let ones = draws.iter().filter(|&&l| l == 1.0).count();
        println!(
            "α = {alpha}: {ones} of {n} draws are exactly 1.0 in f32 (F(1 − 2^-25) predicts {:.0})",
            n as f64 * (1.0 - cdf(1.0 - 2f64.powi(-25)))
        );
        let d = ks_statistic_f32(&mut draws, cdf);
        println!(
            "α = {alpha}: sample_lambda KS D = {d:.5} (critical {:.5})",
            ks_critical(n)
        );
        assert!(
            d < ks_critical(n),
            "α = {alpha}: KS D = {d} ≥ {}",
            ks_critical(n)
        );

        // λ as the regularizer hands it out, in plans.
        let reg = manifold_mixup(json!({"alpha": alpha, "layers": [0, 1, 2]}));
        let mut r = rng("lambda-plan", i as u64);
        let mut draws: Vec<f32> = (0..n)
            .map(|_| draw_plan(reg.as_ref(), 4, &mut r).unwrap().lambda)
            .collect();
        let d = ks_statistic_f32(&mut draws, cdf);
        println!(
            "α = {alpha}: manifold_mixup plan λ KS D = {d:.5} (critical {:.5})",
            ks_critical(n)
        );
        assert!(
            d < ks_critical(n),
            "α = {alpha} (plans): KS D = {d} ≥ {}",
            ks_critical(n)
        );
    }
}

#[test]
fn ks_test_rejects_the_wrong_alpha() {
    // Guard: the KS test above has the power to tell Beta(1, 1) from Beta(1.2, 1.2).
    let n = 20_000;
    let beta = Beta::new(1.0, 1.0).unwrap();
    let mut r = rng("lambda-wrong", 0);
    let mut draws: Vec<f32> = (0..n).map(|_| sample_lambda(1.2, &mut r)).collect();
    let d = ks_statistic_f32(&mut draws, |x| beta.cdf(x));
    println!(
        "Beta(1.2,1.2) draws vs Beta(1,1): KS D = {d:.5} (critical {:.5})",
        ks_critical(n)
    );
    assert!(
        d > ks_critical(n),
        "KS D = {d} should exceed {}",
        ks_critical(n)
    );
}

#[test]
fn alpha_zero_gives_lambda_one() {
    let mut r = rng("alpha0", 0);
    for _ in 0..1000 {
        assert_eq!(sample_lambda(0.0, &mut r), 1.0);
    }
    let reg = manifold_mixup(json!({"alpha": 0.0, "layers": [0, 1, 2]}));
    let mut r = rng("alpha0-plan", 0);
    for _ in 0..1000 {
        let plan = draw_plan(reg.as_ref(), 8, &mut r).unwrap();
        check_plan(&plan, 8);
        assert_eq!(plan.lambda, 1.0);
    }
    let plan = sample_plan(0.0, &[1], false, 4, &mut r);
    assert_eq!((plan.lambda, plan.layer), (1.0, 1));
}

// ------------------------------------------------------------------------------------------
// Permutation
// ------------------------------------------------------------------------------------------

/// Lexicographic rank of a permutation of 0..n.
fn perm_rank(p: &[u32]) -> usize {
    let n = p.len();
    let mut rank = 0;
    for i in 0..n {
        let smaller_after = p[i + 1..].iter().filter(|&&q| q < p[i]).count();
        rank = rank * (n - i) + smaller_after;
    }
    rank
}

#[test]
fn permutation_rank_is_a_bijection() {
    // 4! permutations of 0..4 get distinct ranks 0..24.
    let mut seen = [false; 24];
    for a in 0..4u32 {
        for b in 0..4u32 {
            for c in 0..4u32 {
                for d in 0..4u32 {
                    let p = [a, b, c, d];
                    let mut s = p;
                    s.sort();
                    if s == [0, 1, 2, 3] {
                        let r = perm_rank(&p);
                        assert!(!seen[r]);
                        seen[r] = true;
                    }
                }
            }
        }
    }
    assert!(seen.iter().all(|&s| s));
    assert_eq!(perm_rank(&[0, 1, 2, 3]), 0);
    assert_eq!(perm_rank(&[3, 2, 1, 0]), 23);
}

/// Two-sided z bound for `cells` simultaneous binomial tests at family-wise level `ALPHA_TEST`
/// (Bonferroni).
fn bonferroni_z(cells: usize) -> f64 {
    Normal::new(0.0, 1.0)
        .unwrap()
        .inverse_cdf(1.0 - ALPHA_TEST / (2.0 * cells as f64))
}

/// Every P(perm[i] = j) is 1/n: each of the n² counts within the Bonferroni z bound of its
/// Binomial(N, 1/n) mean, and each position's row passes a χ² test with n − 1 dof.
fn check_positions(counts: &[Vec<u64>], plans: usize, what: &str) {
    let n = counts.len();
    let p = 1.0 / n as f64;
    let mean = plans as f64 * p;
    let sd = (plans as f64 * p * (1.0 - p)).sqrt();
    let z = bonferroni_z(n * n);
    // Rows are tested together: Bonferroni over the n rows.
    let row_crit = ChiSquared::new((n - 1) as f64)
        .unwrap()
        .inverse_cdf(1.0 - ALPHA_TEST / n as f64);
    let mut worst_z = 0f64;
    let mut worst_row = 0f64;
    for (i, row) in counts.iter().enumerate() {
        assert_eq!(row.iter().sum::<u64>(), plans as u64);
        for (j, &c) in row.iter().enumerate() {
            let zij = (c as f64 - mean) / sd;
            worst_z = worst_z.max(zij.abs());
            assert!(
                zij.abs() < z,
                "{what}: P(perm[{i}] = {j}) count {c}, expected {mean:.0} (z = {zij:.2}, bound {z:.2})"
            );
        }
        let stat = chi_square_uniform(row);
        worst_row = worst_row.max(stat);
        assert!(
            stat < row_crit,
            "{what}: position {i} counts {row:?}, χ² {stat} ≥ {row_crit}"
        );
    }
    println!(
        "{what}: worst |z| = {worst_z:.2} (bound {z:.2}), worst row χ² = {worst_row:.2} (bound {row_crit:.2})"
    );
}

#[test]
fn permutation_is_uniform() {
    // All 24 permutations of a batch of 4 over 48 000 plans (2 000 expected each).
    let batch = 4;
    let plans = 48_000;
    let reg = manifold_mixup(json!({"alpha": 1.0, "layers": [0, 1, 2]}));
    let mut r = rng("perm", 4);
    let mut by_perm = vec![0u64; 24];
    let mut by_pos = vec![vec![0u64; batch]; batch];
    for _ in 0..plans {
        let plan = draw_plan(reg.as_ref(), batch, &mut r).unwrap();
        check_plan(&plan, batch);
        by_perm[perm_rank(&plan.perm)] += 1;
        for (i, &j) in plan.perm.iter().enumerate() {
            by_pos[i][j as usize] += 1;
        }
    }
    let stat = chi_square_uniform(&by_perm);
    let crit = chi_square_critical(23);
    println!(
        "batch 4: χ² over 24 permutations = {stat:.2} (critical {crit:.2}); min {} max {}",
        by_perm.iter().min().unwrap(),
        by_perm.iter().max().unwrap()
    );
    assert!(
        stat < crit,
        "permutation counts {by_perm:?}: χ² {stat} ≥ {crit}"
    );
    check_positions(&by_pos, plans, "batch 4");
}

#[test]
fn permutation_positions_are_uniform_for_a_larger_batch() {
    // A batch of 16 (too many permutations to count): P(perm[i] = j) = 1/16 for all i, j.
    let batch = 16;
    let plans = 32_000;
    let mut r = rng("perm", 16);
    let mut by_pos = vec![vec![0u64; batch]; batch];
    for _ in 0..plans {
        let plan = sample_plan(1.0, &[0, 1, 2], false, batch, &mut r);
        check_plan(&plan, batch);
        for (i, &j) in plan.perm.iter().enumerate() {
            by_pos[i][j as usize] += 1;
        }
    }
    check_positions(&by_pos, plans, "batch 16");
}

#[test]
fn chi_square_rejects_a_biased_permutation_sampler() {
    // Guard: a sampler that moves 1.3% of its draws to the identity (its count ≈ +30%) is
    // rejected by the same test.
    let mut r = rng("perm-biased", 0);
    let mut by_perm = vec![0u64; 24];
    for _ in 0..48_000 {
        let plan = sample_plan(1.0, &[0], false, 4, &mut r);
        let rank = if r.random_bool(0.013) {
            0
        } else {
            perm_rank(&plan.perm)
        };
        by_perm[rank] += 1;
    }
    let stat = chi_square_uniform(&by_perm);
    let crit = chi_square_critical(23);
    println!(
        "biased sampler: χ² = {stat:.2} (critical {crit:.2}), identity count {}",
        by_perm[0]
    );
    assert!(stat > crit, "a biased sampler passed: χ² {stat} < {crit}");
}
