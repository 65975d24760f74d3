//! The flattening analysis (§3.2, App. G): per class, the singular values of the matrix of
//! hidden representations at a mix point. Manifold Mixup is claimed to flatten each class's
//! representation: a larger top singular value relative to the sum of the others.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::metrics::for_each_batch;
use super::{EvalContext, EvalOutput, Evaluator, registry};
use crate::data::Split;
use crate::error::{Error, Result};

/// Which split the representations come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    /// The test split.
    #[default]
    Test,
    /// The training split (without augmentation).
    Train,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    point: usize,
    #[serde(default)]
    split: Which,
    #[serde(default)]
    center: bool,
    #[serde(default)]
    per_class: Option<usize>,
}

/// A configured singular-value evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SingularValues {
    /// Mix point whose representation is analysed (0 = input).
    pub point: usize,
    /// Split of the representations.
    pub split: Which,
    /// Subtract each class's mean representation before the SVD.
    pub center: bool,
    /// Use at most this many examples per class (the first ones, in split order).
    pub per_class: Option<usize>,
}

/// Registry constructor.
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Evaluator>> {
    let q: Params = registry::parse("singular_values", p)?;
    if q.per_class == Some(0) {
        return Err(Error::Config(
            "evaluator `singular_values`: `per_class` must be >= 1".into(),
        ));
    }
    Ok(Box::new(SingularValues {
        point: q.point,
        split: q.split,
        center: q.center,
        per_class: q.per_class,
    }))
}

/// Singular values of a row-major `rows × cols` matrix, largest first (faer, sequential so
/// the result does not depend on the thread count).
pub fn singular_values(rows: usize, cols: usize, data: &[f64]) -> Result<Vec<f64>> {
    if rows == 0 || cols == 0 {
        return Ok(vec![]);
    }
    faer::set_global_parallelism(faer::Par::Seq);
    let m = faer::Mat::<f64>::from_fn(rows, cols, |i, j| data[i * cols + j]);
    m.singular_values()
        .map_err(|e| Error::Other(format!("singular value decomposition failed: {e:?}")))
}

/// The largest singular value and the sum of all the others.
pub fn top_and_rest(s: &[f64]) -> (f64, f64) {
    match s.split_first() {
        Some((top, rest)) => (*top, rest.iter().sum()),
        None => (0.0, 0.0),
    }
}

fn centered(rows: usize, cols: usize, data: &mut [f64]) {
    for j in 0..cols {
        let mean = (0..rows).map(|i| data[i * cols + j]).sum::<f64>() / rows as f64;
        for i in 0..rows {
            data[i * cols + j] -= mean;
        }
    }
}

impl SingularValues {
    /// Hidden representations of `split` at the mix point, flattened per example, eval mode.
    fn representations(&self, ctx: &EvalContext, split: &Split) -> Result<(usize, Vec<f64>)> {
        let (mut dim, mut out) = (0, Vec::new());
        for_each_batch(
            ctx.model,
            split,
            ctx.data.shape(),
            ctx.preprocessing,
            ctx.batch_size,
            |x, _| {
                let h = ctx.model.hidden(x, self.point, false)?.flatten_from(1)?;
                dim = h.dim(1)?;
                out.extend(
                    h.to_dtype(candle_core::DType::F64)?
                        .flatten_all()?
                        .to_vec1::<f64>()?,
                );
                Ok(())
            },
        )?;
        Ok((dim, out))
    }
}

impl Evaluator for SingularValues {
    fn default_id(&self) -> String {
        let mut id = format!("sv_{}", self.point);
        if self.split == Which::Train {
            id.push_str("_train");
        }
        if self.center {
            id.push_str("_centered");
        }
        id
    }

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["top_mean", "rest_sum_mean", "all_top", "all_rest_sum"]
    }

    fn evaluate(&self, ctx: &EvalContext) -> Result<EvalOutput> {
        if self.point >= ctx.model.num_mix_points() {
            return Err(Error::Config(format!(
                "evaluator `singular_values`: `point` {} is out of range; the model has mix points 0..{}",
                self.point,
                ctx.model.num_mix_points() - 1
            )));
        }
        let split = match self.split {
            Which::Test => &ctx.data.test,
            Which::Train => &ctx.data.train,
        };
        let (dim, reps) = self.representations(ctx, split)?;
        let mut out = EvalOutput {
            n: split.len(),
            ..Default::default()
        };
        let (mut tops, mut rests) = (vec![], vec![]);
        let mut all_rows: Vec<f64> = Vec::new();
        let mut all_n = 0;
        for c in 0..ctx.data.num_classes {
            let mut rows: Vec<f64> = Vec::new();
            let mut n = 0;
            for (i, &l) in split.labels.iter().enumerate() {
                if l as usize == c && self.per_class.is_none_or(|k| n < k) {
                    rows.extend_from_slice(&reps[i * dim..(i + 1) * dim]);
                    n += 1;
                }
            }
            if n == 0 {
                continue;
            }
            all_rows.extend_from_slice(&rows);
            all_n += n;
            if self.center {
                centered(n, dim, &mut rows);
            }
            let s = singular_values(n, dim, &rows)?;
            let (t, r) = top_and_rest(&s);
            tops.push(t);
            rests.push(r);
            out.arrays.insert(format!("class{c}"), s);
        }
        if self.center {
            centered(all_n, dim, &mut all_rows);
        }
        let all = singular_values(all_n, dim, &all_rows)?;
        let (at, ar) = top_and_rest(&all);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        out.metrics.insert("top_mean".into(), mean(&tops));
        out.metrics.insert("rest_sum_mean".into(), mean(&rests));
        out.metrics.insert("all_top".into(), at);
        out.metrics.insert("all_rest_sum".into(), ar);
        out.non_finite = reps.iter().filter(|v| !v.is_finite()).count().min(1) * split.len();
        out.arrays.insert("all".into(), all);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// U · diag(s) · Vᵀ with orthonormal U (a scaled Hadamard matrix) and V (a signed
    /// permutation) has exactly the singular values s.
    #[test]
    fn known_spectrum_is_recovered() {
        let h = [
            [1.0, 1.0, 1.0, 1.0],
            [1.0, -1.0, 1.0, -1.0],
            [1.0, 1.0, -1.0, -1.0],
            [1.0, -1.0, -1.0, 1.0],
        ];
        let s = [5.0, 3.0, 0.5];
        // V: columns e2, -e0, e1 of R^3.
        let v = [[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]];
        let mut a = vec![0.0; 4 * 3];
        for i in 0..4 {
            for j in 0..3 {
                a[i * 3 + j] = (0..3).map(|k| h[i][k] / 2.0 * s[k] * v[j][k]).sum();
            }
        }
        let got = singular_values(4, 3, &a).unwrap();
        for (g, w) in got.iter().zip(s) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert_eq!(top_and_rest(&got).0, got[0]);
        assert!((top_and_rest(&got).1 - 3.5).abs() < 1e-12);
    }

    /// `numpy.linalg.svd(np.array([[1, 2], [3, 4], [5, 6.5]]), compute_uv=False).tolist()`
    /// (numpy 2.4.6).
    #[test]
    fn matches_numpy() {
        let got = singular_values(3, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]).unwrap();
        let want = NUMPY;
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    const NUMPY: [f64; 2] = [9.852920234522092, 0.41226551170948406];
}
