//! White-box single-step FGSM (Goodfellow et al. 2015) as the reference's `attacks.py`:
//! x_adv = x + ε·sign(∇ₓ L), L = BCE(softmax(logits), one-hot(y)), model in eval mode, no
//! clipping or projection unless asked for. Table 7 scores accuracy on x_adv.

use candle_core::{DType, Tensor, Var};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{EvalContext, EvalOutput, Evaluator, id_number};
use crate::data::Preprocessing;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::scoring::metrics::{Scorer, for_each_batch};
use crate::scoring::{LossKind, loss};

/// The loss whose input gradient the attack follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttackLoss {
    /// `nn.BCELoss()(softmax(logits), one_hot(y))`, the reference's loss.
    #[default]
    BceSoftmax,
    /// `F.cross_entropy(logits, y)`.
    CrossEntropy,
}

/// Units of ε.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// ε in normalised input units ((x/255 − mean)/std), as the pre-refactor pipeline attacked.
    #[default]
    Normalized,
    /// ε in [0, 1] pixel units, applied before normalisation.
    Pixel,
}

/// Parameters of `fgsm`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Step size ε >= 0 (sweepable: a list gives one evaluation per value).
    pub epsilon: f64,
    /// The loss whose input gradient the attack follows.
    #[serde(default)]
    pub loss: AttackLoss,
    /// Units of ε.
    #[serde(default)]
    pub space: Space,
    /// Clip the adversarial image to [0, 1] pixels (needs `space: pixel`).
    #[serde(default)]
    pub clip: bool,
}

/// A configured FGSM evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fgsm {
    /// Step size.
    pub epsilon: f64,
    /// Attack loss.
    pub loss: AttackLoss,
    /// Units of ε.
    pub space: Space,
    /// Clip the adversarial image to [0, 1] pixels (pixel space only).
    pub clip: bool,
}

/// Registry constructor.
pub fn build(p: &Map<String, Value>) -> Result<Box<dyn Evaluator>> {
    let q: Params = crate::params::parse("evaluator `fgsm`", p)?;
    if !(q.epsilon.is_finite() && q.epsilon >= 0.0) {
        return Err(Error::param(
            "epsilon",
            format!(
                "evaluator `fgsm`: `epsilon` must be a finite number >= 0, got {}",
                q.epsilon
            ),
        ));
    }
    if q.clip && q.space != Space::Pixel {
        return Err(Error::param(
            "clip",
            "evaluator `fgsm`: `clip` needs `space: pixel` (normalised inputs have no fixed range)",
        ));
    }
    Ok(Box::new(Fgsm {
        epsilon: q.epsilon,
        loss: q.loss,
        space: q.space,
        clip: q.clip,
    }))
}

/// ∇ₓ of the attack loss at `x` (normalised inputs), model in eval mode.
pub fn input_gradient(
    model: &Model,
    x: &Tensor,
    labels: &[u32],
    classes: usize,
    attack: AttackLoss,
) -> Result<Tensor> {
    let xv = Var::from_tensor(x)?;
    let logits = model.forward(xv.as_tensor(), false)?;
    let mut onehot = vec![0f32; labels.len() * classes];
    for (i, &y) in labels.iter().enumerate() {
        onehot[i * classes + y as usize] = 1.0;
    }
    let t = Tensor::from_vec(onehot, (labels.len(), classes), x.device())?;
    let kind = match attack {
        AttackLoss::BceSoftmax => LossKind::BceSoftmax,
        AttackLoss::CrossEntropy => LossKind::SoftCrossEntropy,
    };
    let l = loss(kind, &logits, &t)?;
    let grads = l.backward()?;
    grads
        .get(xv.as_tensor())
        .cloned()
        .ok_or_else(|| Error::Other("FGSM: the loss does not depend on the input".into()))
}

/// `sign` as `torch.sign`: 0 at 0, NaN stays NaN (FGSM's and PGD's step direction).
pub(crate) fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        v
    }
}

impl Fgsm {
    /// The adversarial version of the normalised batch `x` [N, C, H, W].
    pub fn perturb(
        &self,
        model: &Model,
        x: &Tensor,
        labels: &[u32],
        classes: usize,
        pre: &Preprocessing,
    ) -> Result<Tensor> {
        let g = input_gradient(model, x, labels, classes, self.loss)?;
        let dims = x.dims4()?;
        let plane = dims.2 * dims.3;
        let xs: Vec<f64> = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        let gs: Vec<f64> = g.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        let out: Vec<f64> = xs
            .iter()
            .zip(&gs)
            .enumerate()
            .map(|(i, (&v, &d))| match self.space {
                Space::Normalized => v + self.epsilon * sign(d),
                Space::Pixel => {
                    // d(loss)/d(pixel) = d(loss)/d(x) / std: same sign, since std > 0. The step
                    // is applied in normalised units unless clipping moves the pixel, so ε = 0
                    // returns x exactly (no round trip through pixel units).
                    let ch = (i / plane) % dims.1;
                    let (m, s) = (pre.mean[ch] as f64, pre.std[ch] as f64);
                    let step = self.epsilon * sign(d);
                    let p = v * s + m + step;
                    if self.clip && !(0.0..=1.0).contains(&p) {
                        (p.clamp(0.0, 1.0) - m) / s
                    } else {
                        v + step / s
                    }
                }
            })
            .collect();
        Ok(Tensor::from_vec(out, x.shape(), x.device())?.to_dtype(x.dtype())?)
    }
}

/// What an attack's id adds for its space and loss: `_px` (pixel units), `_clip`, `_ce`;
/// nothing for the defaults (normalised units, BCE on softmax), shared by FGSM and PGD.
pub(crate) fn id_suffix(space: Space, clip: bool, loss: AttackLoss) -> String {
    let mut s = String::new();
    if space == Space::Pixel {
        s.push_str("_px");
        if clip {
            s.push_str("_clip");
        }
    }
    if loss == AttackLoss::CrossEntropy {
        s.push_str("_ce");
    }
    s
}

impl Evaluator for Fgsm {
    fn default_id(&self) -> String {
        format!(
            "fgsm_{}{}",
            id_number(self.epsilon),
            id_suffix(self.space, self.clip, self.loss)
        )
    }

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["accuracy", "error"]
    }

    fn evaluate(&self, ctx: &EvalContext) -> Result<EvalOutput> {
        adversarial_accuracy(ctx, |model, x, labels, _| {
            self.perturb(model, x, labels, ctx.data.num_classes, ctx.preprocessing)
        })
    }
}

/// Accuracy on the test split after `attack` (model, batch, labels, batch index) replaced each
/// batch: what FGSM and PGD report. Only input gradients are needed, so the model is detached.
pub(crate) fn adversarial_accuracy(
    ctx: &EvalContext,
    mut attack: impl FnMut(&Model, &Tensor, &[u32], u64) -> Result<Tensor>,
) -> Result<EvalOutput> {
    let d = ctx.data;
    let model = ctx.model.detached()?;
    let mut scorer = Scorer::default();
    let mut batch = 0u64;
    for_each_batch(
        &model,
        &d.test,
        d.shape(),
        ctx.preprocessing,
        ctx.batch_size,
        |x, labels| {
            let adv = attack(&model, x, labels, batch)?;
            batch += 1;
            scorer.add_batch(&model.forward(&adv, false)?, labels)
        },
    )?;
    Ok(EvalOutput::accuracy(&scorer.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_batch_is_attacked_once_with_its_own_index() {
        // PGD keys each batch's random start by this index: a counter that stuck at 0 or
        // wrapped would give every batch the same start, unseen by accuracy alone.
        use crate::data::DatasetSource;
        use crate::data::generated::spiral::SpiralSource;
        use crate::model::InputSpec;
        use candle_core::Device;
        let data = SpiralSource
            .load(
                &json!({"train_size": 8, "test_size": 30, "seed": 1}),
                &crate::data::LoadOptions {
                    data_dir: "data".into(),
                    allow_unverified: false,
                    progress: None,
                },
            )
            .unwrap();
        let spec = InputSpec {
            channels: 2,
            height: 1,
            width: 1,
            classes: 2,
        };
        let params = json!({"hidden": [4]});
        let model = Model::build("mlp", params.as_object().unwrap(), spec, 0, &Device::Cpu);
        let model = model.unwrap();
        let pre = SpiralSource.default_preprocessing();
        let ctx = EvalContext {
            model: &model,
            data: &data,
            preprocessing: &pre,
            seed: 0,
            batch_size: 8,
        };
        let mut seen = Vec::new();
        let out = adversarial_accuracy(&ctx, |_, x, labels, b| {
            seen.push((b, labels.len()));
            Ok(x.clone())
        })
        .unwrap();
        assert_eq!(seen, [(0, 8), (1, 8), (2, 8), (3, 6)]);
        assert_eq!(out.n, 30);
    }

    fn field_of(v: Value) -> String {
        match build(v.as_object().unwrap()) {
            Err(Error::Param { path, .. }) => path,
            Err(e) => panic!("not a parameter error: {e}"),
            Ok(_) => "accepted".into(),
        }
    }

    #[test]
    fn bad_parameters_are_refused_at_their_field_and_zero_is_allowed() {
        assert_eq!(field_of(json!({"epsilon": -0.01})), "epsilon");
        assert_eq!(field_of(json!({"epsilon": 0.03, "clip": true})), "clip");
        assert_eq!(
            field_of(json!({"epsilon": 0.03, "clip": true, "space": "normalized"})),
            "clip"
        );
        assert_eq!(field_of(json!({"epsilon": 0.0})), "accepted");
        assert_eq!(
            field_of(json!({"epsilon": 0.03, "clip": true, "space": "pixel"})),
            "accepted"
        );
    }

    #[test]
    fn ids_name_epsilon_space_clipping_and_loss() {
        let id = |v: Value| build(v.as_object().unwrap()).unwrap().default_id();
        assert_eq!(id(json!({"epsilon": 0.03})), "fgsm_0.03");
        assert_eq!(id(json!({"epsilon": 0.1, "space": "pixel"})), "fgsm_0.1_px");
        assert_eq!(
            id(json!({"epsilon": 0.1, "space": "pixel", "clip": true})),
            "fgsm_0.1_px_clip"
        );
        assert_eq!(
            id(json!({"epsilon": 0.1, "loss": "cross_entropy"})),
            "fgsm_0.1_ce"
        );
        let e = build(json!({"epsilon": 0.1}).as_object().unwrap()).unwrap();
        assert_eq!(e.metric_names(), ["accuracy", "error"]);
    }

    #[test]
    fn sign_is_torch_sign() {
        assert_eq!(sign(2.5), 1.0);
        assert_eq!(sign(-1e-300), -1.0);
        assert_eq!(sign(0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(sign(-0.0).to_bits(), (-0.0f64).to_bits());
        assert!(sign(f64::NAN).is_nan());
    }
}
