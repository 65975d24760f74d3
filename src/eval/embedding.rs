//! The test split's representation at a 2-D mix point (a bottleneck), kept as points for the
//! report's scatter plots (Figure 5: MNIST with a 2-D bottleneck; Figure 1 (d)/(e)), and one
//! number that says how well the classes separate there: the leave-one-out 1-nearest-neighbour
//! error among the embedded test points.
//!
//! Arrays: `x`, `y` (the two coordinates) and `label` (the class), one entry per embedded test
//! image, in test-split order.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{EvalContext, EvalOutput, Evaluator};
use crate::data::Split;
use crate::error::{Error, Result};

/// Parameters of `embedding`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Mix point whose representation is drawn; it must have exactly two features.
    pub point: usize,
    /// Test images embedded: the first `count` of the test split (>= 2).
    #[serde(default = "default_count")]
    pub count: usize,
}

fn default_count() -> usize {
    2000
}

/// A configured embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Embedding {
    /// Mix point of the representation.
    pub point: usize,
    /// Test images embedded (at most).
    pub count: usize,
}

/// Registry constructor.
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Evaluator>> {
    let q: Params = crate::params::parse("evaluator `embedding`", p)?;
    if q.count < 2 {
        return Err(Error::param(
            "count",
            "evaluator `embedding`: `count` must be >= 2 (a nearest neighbour needs another point)",
        ));
    }
    Ok(Box::new(Embedding {
        point: q.point,
        count: q.count,
    }))
}

/// Leave-one-out 1-nearest-neighbour error (%) of 2-D points: each point takes the label of
/// its nearest other point (squared Euclidean distance in f64; the lower index wins a tie).
pub fn loo_nearest_error(x: &[f64], y: &[f64], labels: &[u32]) -> f64 {
    let n = labels.len();
    let mut wrong = 0usize;
    for i in 0..n {
        let mut best = (f64::INFINITY, usize::MAX);
        for j in (0..n).filter(|&j| j != i) {
            let d = (x[i] - x[j]).powi(2) + (y[i] - y[j]).powi(2);
            if d < best.0 {
                best = (d, j);
            }
        }
        if best.1 == usize::MAX || labels[best.1] != labels[i] {
            wrong += 1;
        }
    }
    100.0 * wrong as f64 / n.max(1) as f64
}

/// Points with a coordinate that is not finite (either one: the point cannot be drawn).
fn non_finite_points(x: &[f64], y: &[f64]) -> usize {
    x.iter()
        .zip(y)
        .filter(|(a, b)| !a.is_finite() || !b.is_finite())
        .count()
}

impl Embedding {
    /// The first `count` test images' representation at the point: (x, y, labels).
    fn points(&self, ctx: &EvalContext, test: &Split) -> Result<(Vec<f64>, Vec<f64>, Vec<u32>)> {
        let n = self.count.min(test.len());
        let len = ctx.data.image_len();
        let split = Split {
            images: test.images[..n * len].to_vec(),
            labels: test.labels[..n].to_vec(),
        };
        let (dim, rows) = super::representation(ctx, &split, self.point, false)?;
        if dim != 2 {
            return Err(Error::Config(format!(
                "evaluator `embedding`: the representation at point {} has {dim} features; a scatter plot needs exactly 2 (a 2-D bottleneck)",
                self.point
            )));
        }
        let (xs, ys) = rows.chunks_exact(2).map(|p| (p[0], p[1])).unzip();
        Ok((xs, ys, split.labels))
    }
}

impl Evaluator for Embedding {
    fn default_id(&self) -> String {
        format!("embedding_{}", self.point)
    }

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["nearest_error"]
    }

    fn evaluate(&self, ctx: &EvalContext) -> Result<EvalOutput> {
        if self.point >= ctx.model.num_mix_points() {
            return Err(Error::param(
                "point",
                format!(
                    "evaluator `embedding`: point {} does not exist (the model has mix points 0..{})",
                    self.point,
                    ctx.model.num_mix_points()
                ),
            ));
        }
        let (x, y, labels) = self.points(ctx, &ctx.data.test)?;
        let non_finite = non_finite_points(&x, &y);
        let error = loo_nearest_error(&x, &y, &labels);
        Ok(EvalOutput {
            metrics: [("nearest_error".to_string(), error)].into(),
            arrays: [
                ("x".to_string(), x),
                ("y".to_string(), y),
                (
                    "label".to_string(),
                    labels.iter().map(|&l| l as f64).collect(),
                ),
            ]
            .into(),
            non_finite,
            n: labels.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_neighbour_error_counts_points_whose_nearest_other_point_differs() {
        // Two tight pairs of class 0 and 1, and a class-1 point sitting next to the class-0
        // pair: it and its neighbour (index 1) are both wrong.
        let x = [0.0, 0.1, 5.0, 5.1, 0.15];
        let y = [0.0, 0.0, 5.0, 5.0, 0.0];
        let labels = [0, 0, 1, 1, 1];
        // 0 -> 1 (right), 1 -> 4 (0.05 away: wrong), 2 -> 3, 3 -> 2, 4 -> 1 (wrong).
        assert_eq!(loo_nearest_error(&x, &y, &labels), 40.0);
    }

    #[test]
    fn a_tie_goes_to_the_lower_index() {
        // Point 1 is equally far from 0 (class 0) and 2 (class 1): index 0 wins, so right.
        let (x, y, labels) = ([0.0, 1.0, 2.0], [0.0; 3], [0, 0, 1]);
        // 0 -> 1 right, 1 -> 0 right, 2 -> 1 wrong.
        assert!((loo_nearest_error(&x, &y, &labels) - 100.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_point_with_either_coordinate_not_finite_counts_once() {
        let x = [0.0, f64::NAN, 1.0, f64::INFINITY, 2.0];
        let y = [0.0, 1.0, f64::NEG_INFINITY, f64::NAN, 2.0];
        assert_eq!(non_finite_points(&x, &y), 3);
        assert_eq!(non_finite_points(&x[4..], &y[4..]), 0);
    }

    #[test]
    fn an_omitted_count_is_2000_and_the_id_names_the_point() {
        let p: Map<String, Value> = serde_json::from_str(r#"{"point": 3}"#).unwrap();
        let q: Params = crate::params::parse("evaluator `embedding`", &p).unwrap();
        assert_eq!((q.point, q.count), (3, 2000));
        assert_eq!(build(&p).unwrap().default_id(), "embedding_3");
        assert_eq!(build(&p).unwrap().metric_names(), vec!["nearest_error"]);
    }

    #[test]
    fn a_count_below_two_is_refused_and_two_is_enough() {
        let p: Map<String, Value> = serde_json::from_str(r#"{"point": 1, "count": 1}"#).unwrap();
        assert!(matches!(build(&p), Err(Error::Param { ref path, .. }) if path == "count"));
        let p: Map<String, Value> = serde_json::from_str(r#"{"point": 1, "count": 2}"#).unwrap();
        assert!(build(&p).is_ok());
    }
}
