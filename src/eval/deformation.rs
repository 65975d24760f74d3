//! Novel deformations of the test set (Tables 4 and 9): every test image gets its own random
//! rotation or shear, or a fixed zoom, applied to raw pixels before normalisation with
//! nearest-neighbour sampling and black fill (the paper: "the padding outside of the image is
//! black"). Draws come from a stream keyed by (seed, image index).

use rand::Rng;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::affine::{Affine, warp_nearest};
use super::{EvalContext, EvalOutput, Evaluator, id_number};
use crate::data::Split;
use crate::data::batch::ImageShape;
use crate::error::{Error, Result};
use crate::rng;
use crate::scoring::evaluate;

/// Which deformation, with its range or factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Deformation {
    /// Rotation by an angle drawn from U(−degrees, degrees).
    Rotation {
        /// Half-width of the range, degrees.
        degrees: f64,
    },
    /// Shear by an angle drawn from U(−radians, radians) (the reference draws radians).
    Shear {
        /// Half-width of the range, radians.
        radians: f64,
    },
    /// Fixed zoom: the centre box of `factor` × size resampled to full size (< 1 zooms in).
    Zoom {
        /// Zoom factor.
        factor: f64,
    },
}

fn finite_nonneg(name: &str, field: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::param(
            field,
            format!("evaluator `{name}`: `{field}` must be a finite number >= 0, got {v}"),
        ))
    }
}

/// Parameters of `rotation`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotationParams {
    /// Half-width of the angle range, degrees (>= 0; sweepable).
    pub degrees: f64,
}

/// Parameters of `shear`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShearParams {
    /// Half-width of the shear-angle range, radians (>= 0; sweepable).
    pub radians: f64,
}

/// Parameters of `zoom`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoomParams {
    /// Zoom factor > 0 (< 1 zooms in, > 1 out; sweepable).
    pub factor: f64,
}

/// Registry constructor for `rotation`.
pub fn build_rotation(p: &Map<String, Value>) -> Result<Box<dyn Evaluator>> {
    let q: RotationParams = crate::params::parse("evaluator `rotation`", p)?;
    Ok(Box::new(Deformation::Rotation {
        degrees: finite_nonneg("rotation", "degrees", q.degrees)?,
    }))
}

/// Registry constructor for `shear`.
pub fn build_shear(p: &Map<String, Value>) -> Result<Box<dyn Evaluator>> {
    let q: ShearParams = crate::params::parse("evaluator `shear`", p)?;
    Ok(Box::new(Deformation::Shear {
        radians: finite_nonneg("shear", "radians", q.radians)?,
    }))
}

/// Registry constructor for `zoom`.
pub fn build_zoom(p: &Map<String, Value>) -> Result<Box<dyn Evaluator>> {
    let q: ZoomParams = crate::params::parse("evaluator `zoom`", p)?;
    if !(q.factor.is_finite() && q.factor > 0.0) {
        return Err(Error::param(
            "factor",
            format!(
                "evaluator `zoom`: `factor` must be a finite number > 0, got {}",
                q.factor
            ),
        ));
    }
    Ok(Box::new(Deformation::Zoom { factor: q.factor }))
}

impl Deformation {
    /// Stream purpose: the kind only, so ±20° and ±40° use the same uniform draw per image.
    fn purpose(&self) -> &'static str {
        match self {
            Deformation::Rotation { .. } => "deform/rotation",
            Deformation::Shear { .. } => "deform/shear",
            Deformation::Zoom { .. } => "deform/zoom",
        }
    }

    /// The map for one image, drawing its angle from `r`.
    pub fn draw<R: Rng>(&self, r: &mut R, h: usize, w: usize) -> Affine {
        let mut u = || 2.0 * r.random::<f64>() - 1.0;
        match *self {
            Deformation::Rotation { degrees } => Affine::rotation(degrees * u(), h, w),
            Deformation::Shear { radians } => Affine::shear(radians * u(), h, w),
            Deformation::Zoom { factor } => Affine::zoom(factor, h, w),
        }
    }

    /// The deformed test split: image `i` drawn from stream (seed, kind, i).
    pub fn apply(&self, split: &Split, shape: ImageShape, seed: u64) -> Split {
        let n = shape.len();
        let mut images = vec![0u8; split.images.len()];
        for (i, (src, dst)) in split.images.chunks(n).zip(images.chunks_mut(n)).enumerate() {
            let mut r = rng::stream(seed, self.purpose(), i as u64);
            let a = self.draw(&mut r, shape.h, shape.w);
            warp_nearest(src, shape.c, shape.h, shape.w, &a, dst);
        }
        Split {
            images,
            labels: split.labels.clone(),
        }
    }
}

impl Evaluator for Deformation {
    fn default_id(&self) -> String {
        match *self {
            Deformation::Rotation { degrees } => format!("rotation_{}", id_number(degrees)),
            Deformation::Shear { radians } => format!("shear_{}", id_number(radians)),
            Deformation::Zoom { factor } => format!("zoom_{}", id_number(factor)),
        }
    }

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["accuracy", "error"]
    }

    fn evaluate(&self, ctx: &EvalContext) -> Result<EvalOutput> {
        let d = ctx.data;
        let deformed = self.apply(&d.test, d.shape(), ctx.seed);
        let m = evaluate(
            ctx.model,
            &deformed,
            d.shape(),
            ctx.preprocessing,
            ctx.batch_size,
        )?;
        Ok(EvalOutput::accuracy(&m))
    }
}
