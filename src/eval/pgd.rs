//! Projected gradient descent (Madry et al. 2018), the App. D sanity check against gradient
//! masking: `steps` FGSM steps of size `step_size`, each followed by the projection onto the
//! ε-ball around the clean image (when `epsilon` is given) and the clipping to [0, 1] pixels
//! (when asked, pixel space only). The loss, the model mode and the two spaces are FGSM's.

use candle_core::{DType, Tensor};
use rand::Rng;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::fgsm::{AttackLoss, Space, adversarial_accuracy, input_gradient, sign};
use super::{EvalContext, EvalOutput, Evaluator, id_number};
use crate::data::Preprocessing;
use crate::error::{Error, Result};
use crate::model::Model;

/// Parameters of `pgd`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Gradient steps (>= 1; sweepable).
    pub steps: usize,
    /// Size of each step (> 0), in the units of `space`.
    pub step_size: f64,
    /// Radius of the L∞ ball the image stays in (>= 0; sweepable); unbounded when absent.
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// Start from a uniform draw in the ε-ball (needs `epsilon`).
    #[serde(default)]
    pub random_start: bool,
    /// The loss whose input gradient the attack follows.
    #[serde(default)]
    pub loss: AttackLoss,
    /// Units of the step and of ε.
    #[serde(default)]
    pub space: Space,
    /// Clip to [0, 1] pixels after each step (needs `space: pixel`).
    #[serde(default)]
    pub clip: bool,
}

/// A configured PGD evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pgd {
    /// Gradient steps.
    pub steps: usize,
    /// Step size.
    pub step_size: f64,
    /// L∞ radius, None = unbounded.
    pub epsilon: Option<f64>,
    /// Uniform random start in the ε-ball.
    pub random_start: bool,
    /// Attack loss.
    pub loss: AttackLoss,
    /// Units of step and ε.
    pub space: Space,
    /// Clip to [0, 1] pixels.
    pub clip: bool,
}

/// Registry constructor.
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Evaluator>> {
    let q: Params = crate::params::parse("evaluator `pgd`", p)?;
    let bad =
        |field: &str, msg: String| Err(Error::param(field, format!("evaluator `pgd`: {msg}")));
    if q.steps == 0 {
        return bad("steps", "`steps` must be >= 1".into());
    }
    if !(q.step_size.is_finite() && q.step_size > 0.0) {
        return bad(
            "step_size",
            format!(
                "`step_size` must be a finite number > 0, got {}",
                q.step_size
            ),
        );
    }
    if let Some(e) = q.epsilon
        && !(e.is_finite() && e >= 0.0)
    {
        return bad(
            "epsilon",
            format!("`epsilon` must be a finite number >= 0, got {e}"),
        );
    }
    if q.random_start && q.epsilon.is_none() {
        return bad(
            "random_start",
            "`random_start` draws inside the ε-ball: give `epsilon`".into(),
        );
    }
    if q.clip && q.space != Space::Pixel {
        return bad(
            "clip",
            "`clip` needs `space: pixel` (normalised inputs have no fixed range)".into(),
        );
    }
    Ok(Box::new(Pgd {
        steps: q.steps,
        step_size: q.step_size,
        epsilon: q.epsilon,
        random_start: q.random_start,
        loss: q.loss,
        space: q.space,
        clip: q.clip,
    }))
}

impl Pgd {
    /// `a` (attack-space values) projected onto the ε-ball around `a0` and clipped, in place.
    fn constrain(&self, a: &mut [f64], a0: &[f64]) {
        for (v, &v0) in a.iter_mut().zip(a0) {
            if let Some(e) = self.epsilon {
                *v = v0 + (*v - v0).clamp(-e, e);
            }
            if self.clip {
                *v = v.clamp(0.0, 1.0);
            }
        }
    }

    /// The adversarial version of the normalised batch `x` [N, C, H, W]; `rng` draws the random
    /// start (when configured).
    pub fn perturb(
        &self,
        model: &Model,
        x: &Tensor,
        labels: &[u32],
        classes: usize,
        pre: &Preprocessing,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<Tensor> {
        let dims = x.dims4()?;
        let plane = dims.2 * dims.3;
        let ch = |i: usize| (i / plane) % dims.1;
        let mean = |i: usize| pre.mean[ch(i)] as f64;
        let std = |i: usize| pre.std[ch(i)] as f64;
        let pixel = self.space == Space::Pixel;
        // The attack runs in its own units: normalised values, or pixels (x·std + mean).
        let a0: Vec<f64> = x
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?
            .into_iter()
            .enumerate()
            .map(|(i, v)| match pixel {
                true => v * std(i) + mean(i),
                false => v,
            })
            .collect();
        let normalised = |a: &[f64]| -> Result<Tensor> {
            let v: Vec<f64> = a
                .iter()
                .enumerate()
                .map(|(i, &p)| match pixel {
                    true => (p - mean(i)) / std(i),
                    false => p,
                })
                .collect();
            Ok(Tensor::from_vec(v, x.shape(), x.device())?.to_dtype(x.dtype())?)
        };
        let mut a = a0.clone();
        if let (true, Some(e)) = (self.random_start, self.epsilon) {
            for v in a.iter_mut() {
                *v += rng.random_range(-e..=e);
            }
            self.constrain(&mut a, &a0);
        }
        for _ in 0..self.steps {
            let g = input_gradient(model, &normalised(&a)?, labels, classes, self.loss)?;
            let g: Vec<f64> = g.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
            // d(loss)/d(pixel) = d(loss)/d(x) / std: the same sign, since std > 0.
            for (v, d) in a.iter_mut().zip(g) {
                *v += self.step_size * sign(d);
            }
            self.constrain(&mut a, &a0);
        }
        normalised(&a)
    }
}

impl Evaluator for Pgd {
    fn default_id(&self) -> String {
        let mut id = format!("pgd_{}x{}", self.steps, id_number(self.step_size));
        if let Some(e) = self.epsilon {
            id.push_str(&format!("_eps{}", id_number(e)));
        }
        if self.random_start {
            id.push_str("_rs");
        }
        id.push_str(&super::fgsm::id_suffix(self.space, self.clip, self.loss));
        id
    }

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["accuracy", "error"]
    }

    fn evaluate(&self, ctx: &EvalContext) -> Result<EvalOutput> {
        adversarial_accuracy(ctx, |model, x, labels, batch| {
            let mut rng = crate::rng::stream(ctx.seed, "pgd/start", batch);
            let (classes, pre) = (ctx.data.num_classes, ctx.preprocessing);
            self.perturb(model, x, labels, classes, pre, &mut rng)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(v: serde_json::Value) -> String {
        match build(v.as_object().unwrap()) {
            Err(Error::Param { path, .. }) => path,
            Err(e) => panic!("not a parameter error: {e}"),
            Ok(_) => "accepted".into(),
        }
    }

    #[test]
    fn bad_parameters_are_refused_at_their_field() {
        use serde_json::json;
        assert_eq!(field_of(json!({"steps": 0, "step_size": 0.01})), "steps");
        assert_eq!(field_of(json!({"steps": 1, "step_size": 0.0})), "step_size");
        assert_eq!(
            field_of(json!({"steps": 1, "step_size": -1.0})),
            "step_size"
        );
        assert_eq!(
            field_of(json!({"steps": 1, "step_size": 0.1, "epsilon": -0.1})),
            "epsilon"
        );
        assert_eq!(
            field_of(json!({"steps": 1, "step_size": 0.1, "random_start": true})),
            "random_start"
        );
        assert_eq!(
            field_of(json!({"steps": 1, "step_size": 0.1, "clip": true})),
            "clip"
        );
        assert_eq!(
            field_of(
                json!({"steps": 200, "step_size": 0.01, "epsilon": 0.0, "random_start": true})
            ),
            "accepted"
        );
    }

    #[test]
    fn ids_name_every_setting() {
        use serde_json::json;
        let id = |v: serde_json::Value| build(v.as_object().unwrap()).unwrap().default_id();
        assert_eq!(id(json!({"steps": 200, "step_size": 0.01})), "pgd_200x0.01");
        assert_eq!(
            id(
                json!({"steps": 7, "step_size": 0.007, "epsilon": 0.03, "random_start": true, "space": "pixel", "clip": true, "loss": "cross_entropy"})
            ),
            "pgd_7x0.007_eps0.03_rs_px_clip_ce"
        );
        let e = build(json!({"steps": 1, "step_size": 0.1}).as_object().unwrap()).unwrap();
        assert_eq!(e.metric_names(), ["accuracy", "error"]);
    }
}
