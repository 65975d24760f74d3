//! The flattening analysis (§3.2, App. G): per class, the singular values of the matrix of
//! hidden representations at a mix point. Manifold Mixup is claimed to flatten each class's
//! representation: a larger top singular value relative to the sum of the others.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{EvalContext, EvalOutput, Evaluator};
use crate::error::{Error, Result};

/// Which split the representations come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    /// The test split.
    #[default]
    Test,
    /// The training split (without augmentation).
    Train,
}

/// Parameters of `singular_values`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Mix point whose representation is analysed (0 = input; sweepable).
    pub point: usize,
    /// Split of the representations.
    #[serde(default)]
    pub split: Which,
    /// Subtract each class's mean representation before the SVD.
    #[serde(default)]
    pub center: bool,
    /// Use at most this many examples per class (>= 1).
    #[serde(default)]
    pub per_class: Option<usize>,
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
    let q: Params = crate::params::parse("evaluator `singular_values`", p)?;
    if q.per_class == Some(0) {
        return Err(Error::param(
            "per_class",
            "evaluator `singular_values`: `per_class` must be >= 1",
        ));
    }
    Ok(Box::new(SingularValues {
        point: q.point,
        split: q.split,
        center: q.center,
        per_class: q.per_class,
    }))
}

/// Singular values of a row-major `rows × cols` matrix, largest first (`min(rows, cols)` of them).
///
/// Plain f64 loops in a fixed order (Householder QR of the tall orientation, then one-sided
/// Jacobi on R), so the bits are the same on every CPU and thread count; a SIMD library picks
/// its lane width at run time, which would make them depend on the machine.
pub fn singular_values(rows: usize, cols: usize, data: &[f64]) -> Result<Vec<f64>> {
    if rows == 0 || cols == 0 {
        return Ok(vec![]);
    }
    // Column-major copy of the tall orientation: column j is a[j*m..(j+1)*m].
    let (m, n) = (rows.max(cols), rows.min(cols));
    let mut a = vec![0.0f64; m * n];
    for i in 0..rows {
        for j in 0..cols {
            let (r, c) = if rows >= cols { (i, j) } else { (j, i) };
            a[c * m + r] = data[i * cols + j];
        }
    }
    householder_r(m, n, &mut a);
    let mut r: Vec<Vec<f64>> = (0..n).map(|j| a[j * m..j * m + n].to_vec()).collect();
    jacobi_orthogonalize(&mut r)?;
    let mut s: Vec<f64> = r.iter().map(|c| dot(c, c).sqrt()).collect();
    s.sort_by(|x, y| y.total_cmp(x));
    Ok(s)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |acc, (x, y)| acc + x * y)
}

/// Reduces the column-major m×n (m ≥ n) matrix `a` in place so that its top n×n block is the R
/// of a QR decomposition (same singular values); rows below are left as scratch.
fn householder_r(m: usize, n: usize, a: &mut [f64]) {
    let mut v = vec![0.0f64; m];
    for j in 0..n {
        let col = &a[j * m + j..(j + 1) * m];
        let norm = dot(col, col).sqrt();
        if norm == 0.0 {
            continue;
        }
        let alpha = if col[0] > 0.0 { -norm } else { norm };
        let len = m - j;
        v[..len].copy_from_slice(col);
        v[0] -= alpha;
        let vv = dot(&v[..len], &v[..len]);
        if vv == 0.0 {
            continue;
        }
        for c in j + 1..n {
            let x = &mut a[c * m + j..(c + 1) * m];
            let f = 2.0 * dot(&v[..len], x) / vv;
            for (xi, vi) in x.iter_mut().zip(&v[..len]) {
                *xi -= f * vi;
            }
        }
        a[j * m + j] = alpha;
        for x in &mut a[j * m + j + 1..(j + 1) * m] {
            *x = 0.0;
        }
    }
}

/// Rotates pairs of columns (Hestenes' one-sided Jacobi) until all are orthogonal; their norms
/// are then the singular values.
fn jacobi_orthogonalize(cols: &mut [Vec<f64>]) -> Result<()> {
    let n = cols.len();
    // Rotations preserve the Frobenius norm; a column below its rounding level (a rank-deficient
    // matrix, e.g. a centred class of two examples) holds noise that never becomes orthogonal
    // to anything, so it counts as converged.
    let total: f64 = cols.iter().map(|c| dot(c, c)).sum();
    let negligible = 1e-30 * total;
    for _sweep in 0..100 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let (left, right) = cols.split_at_mut(q);
                let (cp, cq) = (&mut left[p], &mut right[0]);
                let alpha = dot(cp, cp);
                let beta = dot(cq, cq);
                let gamma = dot(cp, cq);
                if gamma == 0.0
                    || gamma.abs() <= 1e-15 * (alpha * beta).sqrt()
                    || alpha.min(beta) <= negligible
                {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for (x, y) in cp.iter_mut().zip(cq.iter_mut()) {
                    let (xp, yq) = (*x, *y);
                    *x = c * xp - s * yq;
                    *y = s * xp + c * yq;
                }
            }
        }
        if !rotated {
            return Ok(());
        }
    }
    Err(Error::Other(
        "singular values: Jacobi rotations did not converge in 100 sweeps (NaN or Inf in the representations?)".into(),
    ))
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
        let (dim, reps) = super::representation(ctx, split, self.point, false)?;
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

    /// A wide matrix and its transpose: `numpy.linalg.svd(a, compute_uv=False)` for
    /// `a[i][j] = ((7i + 3j) mod 11) − 5 + i/4`, 5 × 8 (numpy 2.x).
    #[test]
    fn wide_and_tall_orientations_match_numpy() {
        let want = [
            13.10160328701491,
            11.21727542956639,
            7.631770577702796,
            6.978429077412583,
            5.619459823484696,
        ];
        let a: Vec<f64> = (0..5)
            .flat_map(|i| {
                (0..8).map(move |j| ((i * 7 + j * 3) % 11) as f64 - 5.0 + 0.25 * i as f64)
            })
            .collect();
        let at: Vec<f64> = (0..8)
            .flat_map(|j| (0..5).map(|i| a[i * 8 + j]).collect::<Vec<_>>())
            .collect();
        for got in [
            singular_values(5, 8, &a).unwrap(),
            singular_values(8, 5, &at).unwrap(),
        ] {
            assert_eq!(got.len(), 5);
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn ids_metric_names_and_a_zero_per_class() {
        let b = |v: serde_json::Value| build(v.as_object().unwrap());
        let e = b(serde_json::json!({"point": 2})).unwrap();
        assert_eq!(e.default_id(), "sv_2");
        assert_eq!(
            e.metric_names(),
            ["top_mean", "rest_sum_mean", "all_top", "all_rest_sum"]
        );
        let e = b(serde_json::json!({"point": 1, "split": "train", "center": true})).unwrap();
        assert_eq!(e.default_id(), "sv_1_train_centered");
        let e = b(serde_json::json!({"point": 0, "center": true})).unwrap();
        assert_eq!(e.default_id(), "sv_0_centered");
        assert!(matches!(
            b(serde_json::json!({"point": 0, "per_class": 0})).err().unwrap(),
            Error::Param { ref path, .. } if path == "per_class"
        ));
    }

    /// A zero column (nothing to reflect) and a zero matrix give zero singular values; a NaN
    /// never converges and says so instead of returning numbers.
    #[test]
    fn zero_columns_are_exact_and_nan_is_an_error() {
        let got = singular_values(3, 2, &[1.0, 0.0, 2.0, 0.0, 3.0, 0.0]).unwrap();
        assert_eq!(got, [14f64.sqrt(), 0.0]);
        let got = singular_values(3, 2, &[0.0, 1.0, 0.0, 2.0, 0.0, 3.0]).unwrap();
        assert_eq!(got, [14f64.sqrt(), 0.0]);
        assert_eq!(singular_values(2, 2, &[0.0; 4]).unwrap(), [0.0, 0.0]);
        assert!(singular_values(0, 3, &[]).unwrap().is_empty());
        let e = singular_values(2, 2, &[1.0, f64::NAN, 0.5, 2.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not converge"), "{e}");
        assert_eq!(top_and_rest(&[]), (0.0, 0.0));
    }

    /// A first column almost along e1, with either sign: the reflection must be built away
    /// from it (`alpha` of the opposite sign), or `col[0] − alpha` cancels to noise and the
    /// spectrum is wrong (seen failing with `>` turned into `<`). `numpy.linalg.svd(a,
    /// compute_uv=False)` (numpy 2.4.6), equal for both signs of the first column.
    #[test]
    fn a_column_almost_along_the_first_axis_keeps_full_accuracy() {
        let want = [5.60474651037921, 2.009957020775345, 0.9270325393577031];
        for sign in [1.0, -1.0] {
            let a = [
                sign,
                2.0,
                0.5,
                sign * 1e-9,
                3.0,
                -1.0,
                sign * -2e-9,
                4.0,
                2.0,
                sign * 1e-9,
                -1.0,
                0.25,
            ];
            let got = singular_values(4, 3, &a).unwrap();
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "sign {sign}: {got:?} vs {want:?}");
            }
        }
    }

    /// A centred class of two examples is rank 1: after one rotation the second column holds
    /// only rounding noise (~1e-16 of the first), which no rotation makes orthogonal. Whatever
    /// the scale of the representations, that noise must count as converged and the top value
    /// stay exact.
    #[test]
    fn a_rank_one_class_converges_at_every_scale() {
        let x1 = [0.3, -1.7, 2.2, 0.9, -0.4, 1.1, 3.0, -2.5];
        let x2 = [1.9, 0.6, -0.8, 2.4, 1.3, -1.2, 0.5, 0.7];
        for scale in [1e-3, 1.0, 1e2, 1e4, 1e8] {
            let mut rows: Vec<f64> = x1.iter().chain(&x2).map(|v| v * scale).collect();
            centered(2, 8, &mut rows);
            let got = singular_values(2, 8, &rows).unwrap();
            let d: f64 = x1.iter().zip(&x2).map(|(a, b)| (a - b) * (a - b)).sum();
            let want = scale * (d / 2.0).sqrt();
            assert!(
                (got[0] - want).abs() <= 1e-12 * want,
                "scale {scale}: {got:?}"
            );
            assert!(got[1] <= 1e-14 * want, "scale {scale}: {got:?}");
        }
    }

    /// Six examples spanning only `rank` directions: the other columns end as rounding noise
    /// next to large ones. The spectrum keeps the Frobenius norm, and the noise counts as zero.
    #[test]
    fn rank_deficient_classes_converge_at_every_scale() {
        let basis = [
            [3.0, -1.0, 2.0, 0.5, -2.0, 1.0, 4.0, -3.0],
            [1.0, 2.0, -1.5, 3.0, 0.25, -2.0, 1.0, 2.0],
            [-2.0, 0.5, 1.0, -1.0, 3.0, 2.5, -0.5, 1.5],
        ];
        let coef = [
            [1.0, 2.0, -1.0],
            [-3.0, 1.0, 2.0],
            [2.0, -2.0, 1.0],
            [0.5, 4.0, -3.0],
            [-1.0, -1.0, 0.5],
            [2.5, 0.5, 2.0],
        ];
        for rank in 1..=3 {
            for scale in [1.0, 1e3, 1e6, 1e9] {
                let rows: Vec<f64> = coef
                    .iter()
                    .flat_map(|c| {
                        (0..8).map(move |j| {
                            scale * (0..rank).map(|k| c[k] * basis[k][j]).sum::<f64>()
                        })
                    })
                    .collect();
                let got = singular_values(6, 8, &rows).unwrap();
                let frob: f64 = rows.iter().map(|v| v * v).sum();
                let spec: f64 = got.iter().map(|v| v * v).sum();
                assert!(
                    (spec - frob).abs() <= 1e-12 * frob,
                    "rank {rank}, scale {scale}"
                );
                for s in &got[rank..] {
                    assert!(*s <= 1e-13 * got[0], "rank {rank}, scale {scale}: {got:?}");
                }
            }
        }
    }

    /// The numerics version fixes the bits, including two choices that are equally right in
    /// value: the reflection's sign when a column starts with an exact 0 (ReLU outputs do;
    /// either sign is free of cancellation) and the level below which a column counts as
    /// rounding noise (here it leaves 3.6e-15 instead of rotating it to 0). The expected values
    /// are this implementation's own (numerics version 1); a change of either choice changes
    /// them by a few ulps, which a stored result's bits would show.
    #[test]
    fn the_numerics_version_pins_the_bits_of_both_free_choices() {
        let relu_like = [0.0, 0.0, 1.5, 3.0, 0.0, 0.5, 1.0, 0.0, 1.5, 0.0, 1.5, 0.5];
        let want = [3.3787921882170044, 1.9688107174645146, 1.3991239071792825];
        assert_eq!(singular_values(4, 3, &relu_like).unwrap(), want);
        let rank_one = [
            -15.0, 60.0, -60.0, -30.0, -15.0, 60.0, -60.0, -30.0, 2.5, -10.0, 10.0, 5.0,
        ];
        let want = [129.92786460186284, 3.552713678800501e-15, 0.0];
        assert_eq!(singular_values(3, 4, &rank_one).unwrap(), want);
    }

    #[test]
    fn centring_subtracts_each_columns_mean() {
        let mut d = [1.0, 10.0, 3.0, 20.0, 5.0, 60.0];
        centered(3, 2, &mut d);
        assert_eq!(d, [-2.0, -20.0, 0.0, -10.0, 2.0, 30.0]);
    }
}
