//! k-nearest-neighbour classification on a trained network's representations (§5.1): fit on
//! the training split's representation at a mix point, score the test split. Exact search
//! (every training example is a candidate), in blocks, so memory is the training features plus
//! one block of distances.
//!
//! Choices the paper leaves open, made here: the representation is the one at `point` (eval
//! mode, flattened, or averaged over height and width with `pool`); ties in distance go to the lower training index; a tie in votes goes to the
//! smallest class index (as scikit-learn's `KNeighborsClassifier` with uniform weights).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{EvalContext, EvalOutput, Evaluator, id_number};
use crate::data::Split;
use crate::error::{Error, Result};
use crate::kernels::cpu_float::gemm;

/// The distance neighbours are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// Euclidean distance.
    #[default]
    Euclidean,
    /// 1 − cosine similarity (a zero vector is at distance 1 from everything).
    Cosine,
}

/// Parameters of `knn`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Neighbours that vote (>= 1; sweepable).
    pub k: usize,
    /// Mix point whose representation is used (0 = the input).
    pub point: usize,
    /// Distance between representations.
    #[serde(default)]
    pub distance: Distance,
    /// Average an image-shaped representation over its height and width first (at the last
    /// mix point of a PreActResNet, the pooled top-layer features the final linear layer sees).
    #[serde(default)]
    pub pool: bool,
}

/// A configured k-NN evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knn {
    /// Neighbours that vote.
    pub k: usize,
    /// Mix point of the representation.
    pub point: usize,
    /// Distance.
    pub distance: Distance,
    /// Average [N, C, H, W] representations over H and W.
    pub pool: bool,
}

/// Registry constructor.
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Evaluator>> {
    let q: Params = crate::params::parse("evaluator `knn`", p)?;
    if q.k == 0 {
        return Err(Error::param("k", "evaluator `knn`: `k` must be >= 1"));
    }
    Ok(Box::new(Knn {
        k: q.k,
        point: q.point,
        distance: q.distance,
        pool: q.pool,
    }))
}

/// Test rows and training rows compared per block: a block of distances is 256 × 4096 f32.
const TEST_BLOCK: usize = 256;
const TRAIN_BLOCK: usize = 4096;

/// Rows of `x` (row-major, `dim` wide) scaled to unit length for the cosine distance (a zero row
/// stays zero).
fn normalized(x: &mut [f32], dim: usize) {
    for row in x.chunks_exact_mut(dim.max(1)) {
        let n = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
        if n > 0.0 {
            for v in row.iter_mut() {
                *v = (*v as f64 / n) as f32;
            }
        }
    }
}

/// Squared norms of the rows, summed in f64 in order.
fn row_norms(x: &[f32], dim: usize) -> Vec<f64> {
    x.chunks_exact(dim.max(1))
        .map(|r| r.iter().map(|&v| v as f64 * v as f64).sum())
        .collect()
}

/// The class each test row is given: the majority label of its `k` nearest training rows.
///
/// `train` and `test` are row-major `dim`-wide features. Distances are ranked as
/// ‖a‖² + ‖b‖² − 2·a·b (the product by the fixed-order gemm, so the same bits on every CPU);
/// for cosine the rows are unit-normalised first, which ranks by 1 − cos.
pub fn predict(
    train: &[f32],
    labels: &[u32],
    test: &[f32],
    dim: usize,
    k: usize,
    distance: Distance,
    classes: usize,
) -> Vec<u32> {
    let (mut train, mut test) = (train.to_vec(), test.to_vec());
    if distance == Distance::Cosine {
        normalized(&mut train, dim);
        normalized(&mut test, dim);
    }
    let (n_train, n_test) = (labels.len(), test.len() / dim.max(1));
    let (mut tn, mut qn) = (row_norms(&train, dim), row_norms(&test, dim));
    if distance == Distance::Cosine {
        // Unit rows are at ‖a − b‖² = 2·(1 − cos); a zero row counted as norm 1 with every
        // product 0 is at 2 from everything, i.e. at 1 − cos = 1, as documented.
        for n in tn.iter_mut().chain(qn.iter_mut()) {
            if *n == 0.0 {
                *n = 1.0;
            }
        }
    }
    let k = k.min(n_train).max(1);
    let mut out = Vec::with_capacity(n_test);
    let mut dots = vec![0f32; TEST_BLOCK * TRAIN_BLOCK];
    for q0 in (0..n_test).step_by(TEST_BLOCK) {
        let qb = TEST_BLOCK.min(n_test - q0);
        // Per test row: the k best (distance, index) so far, sorted.
        let mut best: Vec<Vec<(f64, usize)>> = vec![Vec::with_capacity(k + 1); qb];
        for t0 in (0..n_train).step_by(TRAIN_BLOCK) {
            let tb = TRAIN_BLOCK.min(n_train - t0);
            // SAFETY: dots holds qb × tb (row stride tb); test rows q0.. and training rows t0..
            // are inside their vectors (qb and tb are clamped to the row counts).
            unsafe {
                gemm(
                    (qb, tb, dim),
                    (dots.as_mut_ptr(), tb, 1),
                    false,
                    (test.as_ptr().add(q0 * dim), dim, 1),
                    (train.as_ptr().add(t0 * dim), 1, dim),
                    true,
                )
            };
            for (i, b) in best.iter_mut().enumerate() {
                for j in 0..tb {
                    let d = qn[q0 + i] + tn[t0 + j] - 2.0 * dots[i * tb + j] as f64;
                    let cand = (d, t0 + j);
                    if b.len() == k && cand >= b[k - 1] {
                        continue;
                    }
                    let at = b.partition_point(|&x| x <= cand);
                    b.insert(at, cand);
                    b.truncate(k);
                }
            }
        }
        for b in &best {
            let mut votes = vec![0usize; classes.max(1)];
            for &(_, j) in b {
                votes[labels[j] as usize] += 1;
            }
            // The first class with the most votes: the smallest index wins a tie.
            let most = votes.iter().copied().max().unwrap_or(0);
            out.push(votes.iter().position(|&v| v == most).unwrap_or(0) as u32);
        }
    }
    out
}

impl Knn {
    /// The representations of `split` at the mix point (pooled when asked), eval mode, in the
    /// f32 the search computes in: (dim, rows).
    fn features(&self, ctx: &EvalContext, split: &Split) -> Result<(usize, Vec<f32>)> {
        let (dim, rows) = super::representation(ctx, split, self.point, self.pool)?;
        Ok((dim, rows.into_iter().map(|v| v as f32).collect()))
    }
}

impl Evaluator for Knn {
    fn default_id(&self) -> String {
        let mut id = format!("knn_{}_at_{}", id_number(self.k as f64), self.point);
        if self.pool {
            id.push_str("_pooled");
        }
        if self.distance == Distance::Cosine {
            id.push_str("_cos");
        }
        id
    }

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["accuracy", "error"]
    }

    fn evaluate(&self, ctx: &EvalContext) -> Result<EvalOutput> {
        if self.point >= ctx.model.num_mix_points() {
            return Err(Error::Config(format!(
                "evaluator `knn`: `point` {} is out of range; the model has mix points 0..{}",
                self.point,
                ctx.model.num_mix_points() - 1
            )));
        }
        let d = ctx.data;
        let (dim, train) = self.features(ctx, &d.train)?;
        let (_, test) = self.features(ctx, &d.test)?;
        let non_finite = test
            .chunks_exact(dim.max(1))
            .filter(|r| r.iter().any(|v| !v.is_finite()))
            .count()
            + train.iter().any(|v| !v.is_finite()) as usize * d.test.len();
        let pred = predict(
            &train,
            &d.train.labels,
            &test,
            dim,
            self.k,
            self.distance,
            d.num_classes,
        );
        let wrong = pred
            .iter()
            .zip(&d.test.labels)
            .filter(|(p, y)| p != y)
            .count();
        let n = d.test.len();
        let error = 100.0 * wrong as f64 / n.max(1) as f64;
        Ok(EvalOutput {
            metrics: [
                ("accuracy".to_string(), 100.0 - error),
                ("error".to_string(), error),
            ]
            .into(),
            arrays: Default::default(),
            non_finite: non_finite.min(n),
            n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The specification, written independently: every distance computed directly in f64 as
    /// Σ (a − b)² (or 1 − cos), all of them sorted, the first k voting.
    fn brute_force(
        train: &[f32],
        labels: &[u32],
        test: &[f32],
        dim: usize,
        k: usize,
        distance: Distance,
        classes: usize,
    ) -> Vec<u32> {
        test.chunks_exact(dim)
            .map(|q| {
                let mut d: Vec<(f64, usize)> = train
                    .chunks_exact(dim)
                    .enumerate()
                    .map(|(j, t)| {
                        let v = match distance {
                            Distance::Euclidean => q
                                .iter()
                                .zip(t)
                                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                                .sum(),
                            Distance::Cosine => {
                                let dot: f64 =
                                    q.iter().zip(t).map(|(&a, &b)| a as f64 * b as f64).sum();
                                let na: f64 =
                                    q.iter().map(|&a| (a as f64).powi(2)).sum::<f64>().sqrt();
                                let nb: f64 =
                                    t.iter().map(|&b| (b as f64).powi(2)).sum::<f64>().sqrt();
                                1.0 - dot / (na * nb)
                            }
                        };
                        (v, j)
                    })
                    .collect();
                // Stable: equal distances keep index order.
                d.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
                let mut votes = vec![0; classes];
                for &(_, j) in &d[..k] {
                    votes[labels[j] as usize] += 1;
                }
                let most = *votes.iter().max().unwrap();
                votes.iter().position(|&v| v == most).unwrap() as u32
            })
            .collect()
    }

    /// Clustered data with more training rows than one block and more test rows than one
    /// block. Euclidean on small integers (every sum exact in f32 and f64, and many exact
    /// ties, so the tie rules are exercised): predictions equal the brute force for k = 1, 5,
    /// 20. Cosine on the same data: rounding can reorder neighbours at equal cosine, so at
    /// least 99% agree; both beat chance by far.
    #[test]
    fn predictions_equal_a_brute_force_search() {
        let (dim, classes) = (7, 5);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let centres: Vec<i32> = (0..classes * dim)
            .map(|_| rng.random_range(-6..=6))
            .collect();
        let mut make = |n: usize| {
            let labels: Vec<u32> = (0..n)
                .map(|_| rng.random_range(0..classes as u32))
                .collect();
            let mut x = Vec::with_capacity(n * dim);
            for &y in &labels {
                for j in 0..dim {
                    x.push((centres[y as usize * dim + j] + rng.random_range(-3..=3)) as f32);
                }
            }
            (x, labels)
        };
        let (train, labels) = make(TRAIN_BLOCK + 300);
        let (test, test_labels) = make(TEST_BLOCK + 40);
        for distance in [Distance::Euclidean, Distance::Cosine] {
            for k in [1, 5, 20] {
                let ours = predict(&train, &labels, &test, dim, k, distance, classes);
                let spec = brute_force(&train, &labels, &test, dim, k, distance, classes);
                let differ = ours.iter().zip(&spec).filter(|(a, b)| a != b).count();
                let allowed = match distance {
                    Distance::Euclidean => 0,
                    Distance::Cosine => test_labels.len() / 100,
                };
                assert!(differ <= allowed, "{distance:?} k={k}: {differ} differ");
                let right = ours
                    .iter()
                    .zip(&test_labels)
                    .filter(|(a, b)| a == b)
                    .count();
                assert!(
                    right * 2 > test_labels.len(),
                    "{distance:?} k={k}: {right} right"
                );
            }
        }
    }

    /// By hand: equal distances go to the lower training index, equal votes to the lower class.
    #[test]
    fn ties_go_to_the_lower_index_and_the_lower_class() {
        // One dimension. Query 0: training points at -1 (class 2) and +1 (class 1) are equally
        // near; k = 1 takes index 0 (class 2). k = 2: one vote each, class 1 wins the tie.
        let train = [-1.0f32, 1.0, 5.0];
        let labels = [2u32, 1, 0];
        assert_eq!(
            predict(&train, &labels, &[0.0], 1, 1, Distance::Euclidean, 3),
            [2]
        );
        assert_eq!(
            predict(&train, &labels, &[0.0], 1, 2, Distance::Euclidean, 3),
            [1]
        );
        // k larger than the training set: every point votes (one vote each: class 0).
        assert_eq!(
            predict(&train, &labels, &[4.0], 1, 10, Distance::Euclidean, 3),
            [0]
        );
        // A query nearest the third point.
        assert_eq!(
            predict(&train, &labels, &[4.0], 1, 1, Distance::Euclidean, 3),
            [0]
        );
    }

    /// A zero vector is at cosine distance 1 from everything: as far as an orthogonal row,
    /// nearer than an opposite one (ties to the lower index).
    #[test]
    fn a_zero_row_is_at_cosine_distance_one() {
        let train = [1.0f32, 0.0, 0.0, 0.0];
        let labels = [0u32, 1];
        let nearest = |q: [f32; 2]| predict(&train, &labels, &q, 2, 1, Distance::Cosine, 2)[0];
        // From a zero query everything is at 1: the lower index wins.
        assert_eq!(nearest([0.0, 0.0]), 0);
        // Orthogonal to the first row (1 − cos = 1) and at 1 from the zero row: a tie.
        assert_eq!(nearest([0.0, 3.0]), 0);
        // Opposite the first row (1 − cos = 2): the zero row is nearer.
        assert_eq!(nearest([-2.0, 0.0]), 1);
        assert_eq!(nearest([2.0, 0.5]), 0);
    }

    #[test]
    fn k_zero_is_refused_at_its_field_and_ids_name_k_point_and_distance() {
        let p = |v: serde_json::Value| v.as_object().unwrap().clone();
        let e = build(&p(serde_json::json!({"k": 0, "point": 1})))
            .err()
            .unwrap();
        assert!(
            matches!(e, Error::Param { ref path, .. } if path == "k"),
            "{e}"
        );
        let e = build(&p(serde_json::json!({"k": 5, "point": 2}))).unwrap();
        assert_eq!(e.default_id(), "knn_5_at_2");
        let e = build(&p(
            serde_json::json!({"k": 1, "point": 0, "distance": "cosine"}),
        ))
        .unwrap();
        assert_eq!(e.default_id(), "knn_1_at_0_cos");
        let e = build(&p(
            serde_json::json!({"k": 3, "point": 4, "pool": true, "distance": "cosine"}),
        ))
        .unwrap();
        assert_eq!(e.default_id(), "knn_3_at_4_pooled_cos");
        let e = build(&p(serde_json::json!({"k": 3, "point": 4, "pool": true}))).unwrap();
        assert_eq!(e.default_id(), "knn_3_at_4_pooled");
        assert_eq!(e.metric_names(), ["accuracy", "error"]);
    }
}
