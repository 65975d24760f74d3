//! Adam with L2 weight decay, following `torch.optim.Adam` (amsgrad off) step by step.

use std::collections::BTreeMap;

use candle_core::{DType, Result, Tensor, Var, backprop::GradStore};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kernels::optimizer_update::{self, AdamMoment, AdamStep};

/// The only value of `optimizer.name` that selects Adam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdamName {
    /// `name: adam`.
    Adam,
}

/// Adam settings (PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    /// Always `adam`.
    pub name: AdamName,
    /// Base learning rate (the schedule multiplies it).
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Added to the denominator for numerical stability.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// L2 penalty added to the gradient before the moments (PyTorch `Adam`, not `AdamW`).
    #[serde(default)]
    pub weight_decay: f64,
}

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}

impl AdamConfig {
    /// Rejects settings PyTorch rejects (`Invalid beta parameter` and friends).
    pub fn validate(&self) -> std::result::Result<(), String> {
        let [b1, b2] = self.betas;
        let ok = |b: f64| (0.0..1.0).contains(&b);
        if !(self.lr >= 0.0 && self.lr.is_finite()) {
            return Err(format!(
                "optimizer.lr must be a number >= 0, got {}",
                self.lr
            ));
        }
        if !ok(b1) || !ok(b2) {
            return Err(format!(
                "optimizer.betas must both be in [0, 1), got [{b1}, {b2}]"
            ));
        }
        if !(self.eps >= 0.0 && self.eps.is_finite()) {
            return Err(format!("optimizer.eps must be >= 0, got {}", self.eps));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(format!(
                "optimizer.weight_decay must be >= 0, got {}",
                self.weight_decay
            ));
        }
        Ok(())
    }
}

/// Per-parameter state: step count and the two moment estimates.
#[derive(Debug, Clone)]
struct Moments {
    step: u64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// Adam state by parameter name.
#[derive(Debug, Clone)]
pub struct Adam {
    cfg: AdamConfig,
    state: BTreeMap<String, Moments>,
    /// Whether CPU parameters use the in-place kernels (off only to test them against the
    /// candle ops).
    in_place: bool,
}

impl Adam {
    /// A fresh optimizer (no state yet).
    pub fn new(cfg: AdamConfig) -> Self {
        Adam {
            cfg,
            state: BTreeMap::new(),
            in_place: true,
        }
    }

    /// Steps with candle ops even on the CPU (to test the in-place kernels against them).
    #[cfg(test)]
    pub(crate) fn use_candle_ops(&mut self) {
        self.in_place = false;
    }

    /// One step at learning rate `lr`.
    ///
    /// A parameter with no gradient in this pass is skipped if it never had one; once it had
    /// one, it steps on a zero gradient (the reference zeroes gradients in place, and PyTorch's
    /// Adam then still moves it by its moments and weight decay), as [`super::Sgd`] does.
    pub fn step(&mut self, params: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<()> {
        let c = self.cfg.clone();
        let [b1, b2] = c.betas;
        for (name, p) in params {
            let zero;
            let g = match grads.get(p.as_tensor()) {
                Some(g) => g,
                None if self.state.contains_key(name) => {
                    zero = p.as_tensor().zeros_like()?;
                    &zero
                }
                None => continue,
            };
            if self.in_place && optimizer_update::supported(p.as_tensor()) {
                self.step_in_place(name, p, &g.contiguous()?, lr)?;
                continue;
            }
            let g = if c.weight_decay != 0.0 {
                (g + (p.as_tensor() * c.weight_decay)?)?.detach()
            } else {
                g.detach()
            };
            let m = match self.state.remove(name) {
                None => Moments {
                    step: 1,
                    exp_avg: (&g * (1.0 - b1))?,
                    exp_avg_sq: (g.sqr()? * (1.0 - b2))?,
                },
                Some(s) => Moments {
                    step: s.step + 1,
                    exp_avg: ((s.exp_avg * b1)? + (&g * (1.0 - b1))?)?.detach(),
                    exp_avg_sq: ((s.exp_avg_sq * b2)? + (g.sqr()? * (1.0 - b2))?)?.detach(),
                },
            };
            let t = m.step as i32;
            let bias1 = 1.0 - b1.powi(t);
            let bias2 = 1.0 - b2.powi(t);
            // PyTorch: denom = sqrt(v) / sqrt(bias2) + eps; p -= lr / bias1 · m / denom.
            let denom = ((m.exp_avg_sq.sqrt()? / bias2.sqrt())? + c.eps)?;
            let update = ((&m.exp_avg / &denom)? * (lr / bias1))?;
            p.set(&(p.as_tensor() - update)?.detach())?;
            self.state.insert(name.clone(), m);
        }
        Ok(())
    }

    /// [`Adam::step`] for one parameter with the in-place CPU kernels (same arithmetic).
    fn step_in_place(&mut self, name: &str, p: &Var, g: &Tensor, lr: f64) -> Result<()> {
        let c = &self.cfg;
        let [b1, b2] = c.betas;
        let (m, first) = match self.state.remove(name) {
            None => {
                let zeros = || p.as_tensor().zeros_like();
                let m = Moments {
                    step: 1,
                    exp_avg: zeros()?,
                    exp_avg_sq: zeros()?,
                };
                (m, true)
            }
            Some(s) => (
                Moments {
                    step: s.step + 1,
                    ..s
                },
                false,
            ),
        };
        let pt = p.as_tensor();
        for (moment, beta, square) in [(&m.exp_avg, b1, false), (&m.exp_avg_sq, b2, true)] {
            let op = AdamMoment {
                beta,
                weight_decay: c.weight_decay,
                square,
                first,
            };
            moment.inplace_op3(g, pt, &op)?;
        }
        let t = m.step as i32;
        let op = AdamStep {
            inv_sqrt_bias2: 1.0 / (1.0 - b2.powi(t)).sqrt(),
            eps: c.eps,
            step_size: lr / (1.0 - b1.powi(t)),
        };
        pt.inplace_op3(&m.exp_avg, &m.exp_avg_sq, &op)?;
        self.state.insert(name.to_string(), m);
        Ok(())
    }

    /// The state as named tensors (for checkpoints): `adam/{exp_avg,exp_avg_sq,step}/<param>`.
    pub fn state(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for (name, m) in &self.state {
            // Copies: the CPU step updates the moments in place, and a snapshot must not move.
            out.insert(format!("adam/exp_avg/{name}"), m.exp_avg.copy()?);
            out.insert(format!("adam/exp_avg_sq/{name}"), m.exp_avg_sq.copy()?);
            let step = Tensor::new(&[m.step as f64], m.exp_avg.device())?.to_dtype(DType::F64)?;
            out.insert(format!("adam/step/{name}"), step);
        }
        Ok(out)
    }

    /// Restores the state written by [`Adam::state`]; a parameter missing a piece is an error.
    pub fn set_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        self.state.clear();
        for (k, m) in state {
            let Some(name) = k.strip_prefix("adam/exp_avg/") else {
                continue;
            };
            let get = |what: &str| {
                state.get(&format!("adam/{what}/{name}")).ok_or_else(|| {
                    candle_core::Error::Msg(format!("checkpoint has no adam/{what}/{name}"))
                })
            };
            let step = get("step")?.to_vec1::<f64>()?;
            self.state.insert(
                name.to_string(),
                Moments {
                    step: step.first().copied().unwrap_or(0.0) as u64,
                    // Copies: the CPU step updates the moments in place.
                    exp_avg: m.copy()?,
                    exp_avg_sq: get("exp_avg_sq")?.copy()?,
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn cfg(wd: f64) -> AdamConfig {
        AdamConfig {
            name: AdamName::Adam,
            lr: 0.1,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: wd,
        }
    }

    /// A parameter the in-place kernels cannot take (f16 here, as any CUDA tensor) steps with
    /// the candle ops: the first Adam step moves each value by ≈ lr · sign(gradient).
    #[test]
    fn a_parameter_outside_the_kernels_steps_with_the_candle_ops() {
        let dev = Device::Cpu;
        let w = Tensor::new(&[1.0f32, -2.0, 0.5], &dev).unwrap();
        let p = Var::from_tensor(&w.to_dtype(DType::F16).unwrap()).unwrap();
        assert!(!optimizer_update::supported(p.as_tensor()));
        let c = Tensor::new(&[1.0f32, 2.0, -3.0], &dev).unwrap();
        let loss = (p.as_tensor().to_dtype(DType::F32).unwrap() * &c)
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let mut opt = Adam::new(cfg(0.0));
        opt.step(&[("w".to_string(), p.clone())], &grads, 0.1)
            .unwrap();
        let got: Vec<f32> = p
            .as_tensor()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1()
            .unwrap();
        for (g, want) in got.iter().zip([0.9f32, -2.1, 0.6]) {
            assert!((g - want).abs() < 4e-3, "{got:?}");
        }
    }

    /// Three steps of loss = Σ c·p² against the PyTorch update rule in f64 by hand.
    #[test]
    fn matches_pytorch_rule_by_hand() {
        let dev = Device::Cpu;
        let p = Var::from_tensor(&Tensor::new(&[1.0f64, -2.0, 0.5], &dev).unwrap()).unwrap();
        let c = Tensor::new(&[0.3f64, -0.1, 2.0], &dev).unwrap();
        let params = vec![("w".to_string(), p.clone())];
        let mut opt = Adam::new(cfg(0.01));
        let cc = [0.3f64, -0.1, 2.0];
        let mut want = [1.0f64, -2.0, 0.5];
        let (mut m, mut v) = ([0f64; 3], [0f64; 3]);
        for t in 1..=3 {
            let loss = (p.as_tensor().sqr().unwrap() * &c)
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&params, &grads, 0.1).unwrap();
            for i in 0..3 {
                let g = 2.0 * cc[i] * want[i] + 0.01 * want[i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let denom = v[i].sqrt() / (1.0 - 0.999f64.powi(t)).sqrt() + 1e-8;
                want[i] -= 0.1 / (1.0 - 0.9f64.powi(t)) * m[i] / denom;
            }
        }
        let got: Vec<f64> = p.as_tensor().to_vec1().unwrap();
        for i in 0..3 {
            assert!(
                (got[i] - want[i]).abs() < 1e-12,
                "{i}: {} vs {}",
                got[i],
                want[i]
            );
        }
        // The first step moves every coordinate by lr (Adam's normalised step), so a rule
        // without bias correction would be far off.
        assert!((want[0] - 1.0).abs() > 0.2);
    }

    #[test]
    fn state_round_trips_and_resumes_identically() {
        let dev = Device::Cpu;
        let run = |split: Option<usize>| {
            let p = Var::from_tensor(&Tensor::new(&[1.0f64, -2.0], &dev).unwrap()).unwrap();
            let params = vec![("w".to_string(), p.clone())];
            let mut opt = Adam::new(cfg(0.0));
            for s in 0..4 {
                if Some(s) == split {
                    let st = opt.state().unwrap();
                    opt = Adam::new(cfg(0.0));
                    opt.set_state(&st).unwrap();
                }
                let g = p
                    .as_tensor()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                opt.step(&params, &g, 0.05).unwrap();
            }
            p.as_tensor().to_vec1::<f64>().unwrap()
        };
        assert_eq!(run(None), run(Some(2)));
    }

    #[test]
    fn rejects_pytorch_invalid_settings() {
        let mut c = cfg(0.0);
        c.betas = [0.9, 1.0];
        assert!(c.validate().unwrap_err().contains("betas"));
        let mut c = cfg(0.0);
        c.weight_decay = -1.0;
        assert!(c.validate().is_err());
        assert!(cfg(0.0).validate().is_ok());
    }

    #[test]
    fn omitted_settings_take_pytorchs_defaults() {
        let c: AdamConfig = serde_json::from_str(r#"{"name": "adam", "lr": 0.01}"#).unwrap();
        assert_eq!((c.betas, c.eps, c.weight_decay), ([0.9, 0.999], 1e-8, 0.0));
    }

    #[test]
    fn every_setting_must_be_finite_and_in_range() {
        let bad = |f: &dyn Fn(&mut AdamConfig)| {
            let mut c = cfg(0.0);
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(&|c| c.lr = -0.1).contains("optimizer.lr"));
        assert!(bad(&|c| c.lr = f64::INFINITY).contains("optimizer.lr"));
        assert!(bad(&|c| c.lr = f64::NAN).contains("optimizer.lr"));
        assert!(bad(&|c| c.betas = [1.0, 0.999]).contains("betas"));
        assert!(bad(&|c| c.betas = [-0.1, 0.999]).contains("betas"));
        assert!(bad(&|c| c.eps = -1e-8).contains("optimizer.eps"));
        assert!(bad(&|c| c.eps = f64::INFINITY).contains("optimizer.eps"));
        assert!(bad(&|c| c.weight_decay = f64::INFINITY).contains("weight_decay"));
        // The edges PyTorch accepts.
        let mut c = cfg(0.0);
        (c.lr, c.eps, c.betas) = (0.0, 0.0, [0.0, 0.0]);
        assert!(c.validate().is_ok());
    }

    /// A parameter that had a gradient keeps stepping on a zero one (its moments and weight
    /// decay still move it, as PyTorch's Adam after `zero_grad`), on both code paths; one that
    /// never had a gradient is not touched.
    #[test]
    fn a_parameter_without_a_gradient_steps_on_its_moments_once_it_had_one() {
        for candle_ops in [false, true] {
            let dev = Device::Cpu;
            let a = Var::from_tensor(&Tensor::new(&[1.0f64, -2.0], &dev).unwrap()).unwrap();
            let b = Var::from_tensor(&Tensor::new(&[3.0f64], &dev).unwrap()).unwrap();
            let never = Var::from_tensor(&Tensor::new(&[5.0f64], &dev).unwrap()).unwrap();
            let params = vec![
                ("a".to_string(), a.clone()),
                ("b".to_string(), b.clone()),
                ("never".to_string(), never.clone()),
            ];
            let mut opt = Adam::new(cfg(0.01));
            if candle_ops {
                opt.use_candle_ops();
            }
            let both = (a.as_tensor().sqr().unwrap().sum_all().unwrap()
                + b.as_tensor().sqr().unwrap().sum_all().unwrap())
            .unwrap();
            opt.step(&params, &both.backward().unwrap(), 0.1).unwrap();
            let b1 = b.as_tensor().to_vec1::<f64>().unwrap()[0];
            // Step 2: only `a` has a gradient.
            let only_a = a.as_tensor().sqr().unwrap().sum_all().unwrap();
            opt.step(&params, &only_a.backward().unwrap(), 0.1).unwrap();
            // By hand for b: g1 = 2·3 + 0.01·3, then g2 = 0 + 0.01·b1.
            let g1 = 6.0 + 0.03;
            let (m1, v1) = (0.1 * g1, 0.001 * g1 * g1);
            let g2 = 0.01 * b1;
            let (m2, v2) = (0.9 * m1 + 0.1 * g2, 0.999 * v1 + 0.001 * g2 * g2);
            let denom = v2.sqrt() / (1.0 - 0.999f64.powi(2)).sqrt() + 1e-8;
            let want = b1 - 0.1 / (1.0 - 0.9f64.powi(2)) * m2 / denom;
            let got = b.as_tensor().to_vec1::<f64>().unwrap()[0];
            assert!((got - want).abs() < 1e-12, "{candle_ops}: {got} vs {want}");
            assert!((got - b1).abs() > 0.05, "b moved on its moments");
            assert_eq!(never.as_tensor().to_vec1::<f64>().unwrap(), [5.0]);
            let st = opt.state().unwrap();
            assert!(!st.contains_key("adam/exp_avg/never"));
            assert_eq!(st["adam/step/b"].to_vec1::<f64>().unwrap(), [2.0]);
        }
    }

    #[test]
    fn a_state_missing_a_piece_is_refused_by_name() {
        let dev = Device::Cpu;
        let t = Tensor::new(&[0.5f64], &dev).unwrap();
        let mut st = BTreeMap::new();
        st.insert("adam/exp_avg/w".to_string(), t.clone());
        st.insert(
            "adam/step/w".to_string(),
            Tensor::new(&[3.0f64], &dev).unwrap(),
        );
        let e = Adam::new(cfg(0.0)).set_state(&st).unwrap_err().to_string();
        assert!(e.contains("checkpoint has no adam/exp_avg_sq/w"), "{e}");
        st.insert("adam/exp_avg_sq/w".to_string(), t);
        let mut opt = Adam::new(cfg(0.0));
        opt.set_state(&st).unwrap();
        let back = opt.state().unwrap();
        assert_eq!(back.len(), 3);
        for (k, v) in [("step", 3.0), ("exp_avg", 0.5), ("exp_avg_sq", 0.5)] {
            let got = back[&format!("adam/{k}/w")].to_vec1::<f64>().unwrap();
            assert_eq!(got, [v], "{k}");
        }
    }
}
