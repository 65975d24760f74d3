//! A 2-feature input plane (the spiral of Figures 1 and 2) scored on a regular grid: the
//! predicted class and its softmax probability at every grid point (the decision boundary and
//! its confidence, Fig. 1 (a)/(b)), and, with `point`, where the grid and the test points land
//! in a 2-D bottleneck (Fig. 1 (d)/(e): black dots are inputs sampled uniformly over the input
//! range).
//!
//! The grid's points are the `size` bytes round(i·255/(size−1)) per input feature, so grid
//! inputs go through the same preprocessing as the data. Arrays (`axis` is the normalised input
//! value of each grid index; grid arrays are row-major, index = iy·size + ix):
//! `axis`, `class`, `confidence`; `tx`, `ty`, `tl` (test inputs and labels); with `point`:
//! `hx`, `hy` (grid at the bottleneck), `thx`, `thy` (test points at the bottleneck).

use candle_core::{D, DType, Tensor};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{EvalContext, EvalOutput, Evaluator};
use crate::data::Split;
use crate::error::{Error, Result};
use crate::scoring::metrics::for_each_batch;

/// Parameters of `decision_grid`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Grid points per input feature (2..=256).
    #[serde(default = "default_size")]
    pub size: usize,
    /// Mix point of a 2-D bottleneck to map the grid and test points to (optional).
    #[serde(default)]
    pub point: Option<usize>,
}

fn default_size() -> usize {
    101
}

/// A configured decision grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionGrid {
    /// Grid points per feature.
    pub size: usize,
    /// Bottleneck mix point, if any.
    pub point: Option<usize>,
}

/// Registry constructor.
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Evaluator>> {
    let q: Params = crate::params::parse("evaluator `decision_grid`", p)?;
    if !(2..=256).contains(&q.size) {
        return Err(Error::param(
            "size",
            format!(
                "evaluator `decision_grid`: size must be 2..=256 (grid points per input byte range), got {}",
                q.size
            ),
        ));
    }
    Ok(Box::new(DecisionGrid {
        size: q.size,
        point: q.point,
    }))
}

/// The grid's bytes per feature: round(i·255/(size−1)).
pub fn grid_bytes(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i as f64 * 255.0 / (size - 1).max(1) as f64).round() as u8)
        .collect()
}

/// Percentage of horizontally or vertically adjacent grid pairs whose predicted classes differ:
/// how long (and how ragged) the decision boundary is on this grid.
pub fn boundary_pct(class: &[f64], size: usize) -> f64 {
    let (mut differ, mut pairs) = (0usize, 0usize);
    for y in 0..size {
        for x in 0..size {
            let c = class[y * size + x];
            for (ny, nx) in [(y, x + 1), (y + 1, x)] {
                if ny < size && nx < size {
                    pairs += 1;
                    differ += usize::from(class[ny * size + nx] != c);
                }
            }
        }
    }
    100.0 * differ as f64 / pairs.max(1) as f64
}

/// Rows of two values from a [N, 2, ...] or [N, 2] tensor, as (first, second) columns in f64.
fn columns(h: &Tensor, what: &str) -> Result<(Vec<f64>, Vec<f64>)> {
    let h = h.flatten_from(1)?;
    if h.dim(1)? != 2 {
        return Err(Error::Config(format!(
            "evaluator `decision_grid`: {what} has {} features; the plane needs exactly 2",
            h.dim(1)?
        )));
    }
    let v = h.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    Ok(v.chunks_exact(2).map(|p| (p[0], p[1])).unzip())
}

/// What one pass over a split gives: predicted class and confidence, and, with a point, the
/// bottleneck coordinates.
#[derive(Default)]
struct Scored {
    class: Vec<f64>,
    confidence: Vec<f64>,
    hx: Vec<f64>,
    hy: Vec<f64>,
}

impl DecisionGrid {
    fn score(&self, ctx: &EvalContext, split: &Split) -> Result<Scored> {
        let mut out = Scored::default();
        for_each_batch(
            ctx.model,
            split,
            ctx.data.shape(),
            ctx.preprocessing,
            ctx.batch_size,
            |x, _| {
                let p = candle_nn::ops::softmax(&ctx.model.forward(x, false)?, D::Minus1)?
                    .to_dtype(DType::F64)?;
                out.class.extend(
                    p.argmax(D::Minus1)?
                        .to_vec1::<u32>()?
                        .iter()
                        .map(|&c| c as f64),
                );
                out.confidence.extend(p.max(D::Minus1)?.to_vec1::<f64>()?);
                if let Some(k) = self.point {
                    let (a, b) = columns(&ctx.model.hidden(x, k, false)?, "the bottleneck")?;
                    out.hx.extend(a);
                    out.hy.extend(b);
                }
                Ok(())
            },
        )?;
        Ok(out)
    }
}

impl Evaluator for DecisionGrid {
    fn default_id(&self) -> String {
        match self.point {
            Some(k) => format!("grid_{}_at_{k}", self.size),
            None => format!("grid_{}", self.size),
        }
    }

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["mean_confidence", "boundary"]
    }

    fn evaluate(&self, ctx: &EvalContext) -> Result<EvalOutput> {
        let d = ctx.data;
        if d.image_len() != 2 {
            return Err(Error::Config(format!(
                "evaluator `decision_grid`: the dataset's inputs have {} values ({}×{}×{}); a decision grid needs a 2-D input plane such as `spiral`",
                d.image_len(),
                d.channels,
                d.height,
                d.width
            )));
        }
        if let Some(k) = self.point.filter(|&k| k >= ctx.model.num_mix_points()) {
            return Err(Error::param(
                "point",
                format!(
                    "evaluator `decision_grid`: point {k} does not exist (the model has mix points 0..{})",
                    ctx.model.num_mix_points()
                ),
            ));
        }
        let bytes = grid_bytes(self.size);
        let mut images = Vec::with_capacity(2 * self.size * self.size);
        for &y in &bytes {
            for &x in &bytes {
                images.extend([x, y]);
            }
        }
        let grid = Split {
            labels: vec![0; self.size * self.size],
            images,
        };
        let g = self.score(ctx, &grid)?;
        let t = self.score(ctx, &d.test)?;
        let pre = ctx.preprocessing;
        // As the batch filler computes it (f32), so a grid point sits where the network saw it.
        let norm = |b: u8, c: usize| ((b as f32 / 255.0 - pre.mean[c]) / pre.std[c]) as f64;
        let axis: Vec<f64> = bytes.iter().map(|&b| norm(b, 0)).collect();
        let (tx, ty): (Vec<f64>, Vec<f64>) = d
            .test
            .images
            .chunks_exact(2)
            .map(|p| (norm(p[0], 0), norm(p[1], 1)))
            .unzip();
        let non_finite = g.confidence.iter().filter(|v| !v.is_finite()).count();
        let mean_confidence =
            100.0 * g.confidence.iter().sum::<f64>() / g.confidence.len().max(1) as f64;
        let mut arrays: std::collections::BTreeMap<String, Vec<f64>> = [
            ("axis".to_string(), axis),
            ("tx".to_string(), tx),
            ("ty".to_string(), ty),
            (
                "tl".to_string(),
                d.test.labels.iter().map(|&l| l as f64).collect(),
            ),
        ]
        .into();
        let boundary = boundary_pct(&g.class, self.size);
        arrays.insert("class".into(), g.class);
        arrays.insert("confidence".into(), g.confidence);
        if self.point.is_some() {
            arrays.extend([
                ("hx".to_string(), g.hx),
                ("hy".to_string(), g.hy),
                ("thx".to_string(), t.hx),
                ("thy".to_string(), t.hy),
            ]);
        }
        Ok(EvalOutput {
            metrics: [
                ("mean_confidence".to_string(), mean_confidence),
                ("boundary".to_string(), boundary),
            ]
            .into(),
            arrays,
            non_finite,
            n: self.size * self.size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_bytes_span_the_byte_range_evenly() {
        assert_eq!(grid_bytes(2), [0, 255]);
        assert_eq!(grid_bytes(5), [0, 64, 128, 191, 255]);
        assert_eq!(grid_bytes(256), (0..=255).collect::<Vec<u8>>());
    }

    #[test]
    fn boundary_counts_differing_neighbour_pairs() {
        // 3×3 grid, left column class 1: 3 of the 12 adjacent pairs differ.
        let class = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        assert_eq!(boundary_pct(&class, 3), 25.0);
        // A checkerboard: every pair differs.
        let checker = [0.0, 1.0, 1.0, 0.0];
        assert_eq!(boundary_pct(&checker, 2), 100.0);
        assert_eq!(boundary_pct(&[0.0; 4], 2), 0.0);
    }

    #[test]
    fn an_omitted_size_is_101_points_per_feature() {
        let e = build(&Map::new()).unwrap();
        assert_eq!(e.default_id(), "grid_101");
        let p: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"size": 7, "point": 3})).unwrap();
        assert_eq!(build(&p).unwrap().default_id(), "grid_7_at_3");
        assert_eq!(e.metric_names(), ["mean_confidence", "boundary"]);
    }

    #[test]
    fn a_size_outside_2_to_256_is_refused() {
        for size in [1, 257] {
            let p: Map<String, Value> =
                serde_json::from_value(serde_json::json!({"size": size})).unwrap();
            assert!(build(&p).is_err(), "{size}");
        }
    }
}
