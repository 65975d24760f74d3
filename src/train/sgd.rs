//! SGD with momentum, Nesterov and L2 weight decay, following `torch.optim.SGD` step by step.

use std::collections::{BTreeMap, BTreeSet};

use candle_core::{Result, Tensor, Var, backprop::GradStore};

use crate::kernels::optimizer_update::{self, SgdMomentum, SgdStep};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Optimizer settings (the reference: lr 0.1, momentum 0.9, Nesterov, weight decay 1e-4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SgdConfig {
    /// Base learning rate (the schedule multiplies it).
    pub lr: f64,
    /// Momentum factor.
    #[serde(default)]
    pub momentum: f64,
    /// Use Nesterov momentum.
    #[serde(default)]
    pub nesterov: bool,
    /// L2 penalty added to every parameter's gradient (BatchNorm and biases included, as PyTorch).
    #[serde(default)]
    pub weight_decay: f64,
}

impl SgdConfig {
    /// PyTorch's own checks: lr, momentum and weight decay finite and >= 0; Nesterov needs
    /// momentum.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (k, v) in [
            ("lr", self.lr),
            ("momentum", self.momentum),
            ("weight_decay", self.weight_decay),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("optimizer.{k} must be a number >= 0, got {v}"));
            }
        }
        if self.nesterov && self.momentum <= 0.0 {
            return Err("optimizer.nesterov needs momentum > 0 (as torch.optim.SGD)".into());
        }
        Ok(())
    }
}

/// SGD state: the momentum buffer of each parameter, by name.
#[derive(Debug, Clone)]
pub struct Sgd {
    cfg: SgdConfig,
    buffers: BTreeMap<String, Tensor>,
    /// Parameters that have had a gradient (PyTorch: `p.grad` is no longer None).
    seen: BTreeSet<String>,
    /// Whether CPU parameters use the in-place kernels (off only to test them against the
    /// candle ops).
    in_place: bool,
}

impl Sgd {
    /// A fresh optimizer (no momentum buffers yet).
    pub fn new(cfg: SgdConfig) -> Self {
        Sgd {
            cfg,
            buffers: BTreeMap::new(),
            seen: BTreeSet::new(),
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
    /// A parameter without a gradient in this backward pass is skipped only if it never had
    /// one: the reference (torch 1.0) zeroes gradients in place with `zero_grad`, so a layer
    /// cut off by a gradient block still has a zero gradient and weight decay and momentum
    /// keep moving it.
    pub fn step(&mut self, params: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<()> {
        let c = self.cfg.clone();
        for (name, p) in params {
            let zero;
            let g = match grads.get(p.as_tensor()) {
                Some(g) => {
                    self.seen.insert(name.clone());
                    g
                }
                None if self.seen.contains(name) => {
                    zero = p.as_tensor().zeros_like()?;
                    &zero
                }
                None => continue,
            };
            if self.in_place && optimizer_update::supported(p.as_tensor()) {
                self.step_in_place(name, p, &g.contiguous()?, lr)?;
                continue;
            }
            // Detached: `p` is a Var, so without this every momentum buffer would keep the
            // previous step's graph alive and memory would grow with each step.
            let mut d_p = if c.weight_decay != 0.0 {
                (g + (p.as_tensor() * c.weight_decay)?)?.detach()
            } else {
                g.detach()
            };
            if c.momentum != 0.0 {
                let buf = match self.buffers.get(name) {
                    None => d_p.copy()?,
                    Some(b) => ((b * c.momentum)? + &d_p)?.detach(),
                };
                d_p = if c.nesterov {
                    (&d_p + (&buf * c.momentum)?)?
                } else {
                    buf.clone()
                };
                self.buffers.insert(name.clone(), buf);
            }
            p.set(&(p.as_tensor() - (d_p * lr)?)?.detach())?;
        }
        Ok(())
    }

    /// [`Sgd::step`] for one parameter with the in-place CPU kernels (same arithmetic).
    fn step_in_place(&mut self, name: &str, p: &Var, g: &Tensor, lr: f64) -> Result<()> {
        let c = &self.cfg;
        let pt = p.as_tensor();
        let buf = if c.momentum != 0.0 {
            let (buf, first) = match self.buffers.get(name) {
                Some(b) => (b.clone(), false),
                None => (pt.zeros_like()?, true),
            };
            let op = SgdMomentum {
                momentum: c.momentum,
                weight_decay: c.weight_decay,
                first,
            };
            buf.inplace_op3(g, pt, &op)?;
            self.buffers.insert(name.to_string(), buf.clone());
            buf
        } else {
            // No buffer: the kernel ignores this operand.
            g.clone()
        };
        let op = SgdStep {
            lr,
            momentum: c.momentum,
            nesterov: c.nesterov,
            weight_decay: c.weight_decay,
        };
        pt.inplace_op3(g, &buf, &op)
    }

    /// Momentum buffers by parameter name (for checkpoints).
    pub fn buffers(&self) -> &BTreeMap<String, Tensor> {
        &self.buffers
    }

    /// Restores momentum buffers from a checkpoint.
    pub fn set_buffers(&mut self, buffers: BTreeMap<String, Tensor>) -> Result<()> {
        self.seen = buffers.keys().cloned().collect();
        // Copies: the CPU step updates the buffers in place.
        self.buffers = buffers
            .into_iter()
            .map(|(k, b)| Ok((k, b.copy()?)))
            .collect::<Result<_>>()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A parameter the in-place kernels cannot take (f16 here, as any CUDA tensor) steps with
    /// the candle ops: p − lr·c.
    #[test]
    fn a_parameter_outside_the_kernels_steps_with_the_candle_ops() {
        let dev = Device::Cpu;
        let w = Tensor::new(&[1.0f32, -2.0, 0.5], &dev).unwrap();
        let p = Var::from_tensor(&w.to_dtype(candle_core::DType::F16).unwrap()).unwrap();
        assert!(!optimizer_update::supported(p.as_tensor()));
        let c = Tensor::new(&[1.0f32, 2.0, -3.0], &dev).unwrap();
        let loss = (p.as_tensor().to_dtype(candle_core::DType::F32).unwrap() * &c)
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let mut opt = Sgd::new(SgdConfig {
            lr: 0.1,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        });
        opt.step(&[("w".to_string(), p.clone())], &grads, 0.1)
            .unwrap();
        let got: Vec<f32> = p
            .as_tensor()
            .to_dtype(candle_core::DType::F32)
            .unwrap()
            .to_vec1()
            .unwrap();
        for (g, want) in got.iter().zip([0.9f32, -2.2, 0.8]) {
            assert!((g - want).abs() < 4e-3, "{got:?}");
        }
    }

    /// Two steps on p = [1, -2, 0.5] with loss = Σ c·p (constant gradient c), against the
    /// PyTorch rule worked out by hand.
    #[test]
    fn validate_refuses_what_torch_optim_sgd_refuses() {
        let ok = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
        };
        assert_eq!(ok.validate(), Ok(()));
        // Zero is allowed everywhere (plain SGD without decay).
        let zero = SgdConfig {
            lr: 0.0,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        };
        assert_eq!(zero.validate(), Ok(()));
        for (field, v) in [
            ("lr", -0.1),
            ("momentum", -1.0),
            ("weight_decay", f64::INFINITY),
            ("lr", f64::NAN),
        ] {
            let mut c = ok.clone();
            match field {
                "lr" => c.lr = v,
                "momentum" => c.momentum = v,
                _ => c.weight_decay = v,
            }
            let e = c.validate().unwrap_err();
            assert!(
                e.starts_with(&format!("optimizer.{field} must be a number >= 0")),
                "{e}"
            );
        }
        let e = SgdConfig {
            momentum: 0.0,
            ..ok
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("nesterov needs momentum > 0"), "{e}");
    }

    #[test]
    fn momentum_nesterov_decay_matches_pytorch_rule() {
        let dev = Device::Cpu;
        let p = Var::new(&[1.0f32, -2.0, 0.5], &dev).unwrap();
        let c = Tensor::new(&[0.3f32, -0.1, 2.0], &dev).unwrap();
        let params = vec![("w".to_string(), p.clone())];
        let mut opt = Sgd::new(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-2,
        });
        let (lr, m, wd) = (0.1f64, 0.9f64, 1e-2f64);
        let mut want = [1.0f64, -2.0, 0.5];
        let cc = [0.3f64, -0.1, 2.0];
        let mut buf = [0f64; 3];
        for step in 0..2 {
            let loss = (p.as_tensor() * &c).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&params, &grads, lr).unwrap();
            for i in 0..3 {
                let d = cc[i] + wd * want[i];
                buf[i] = if step == 0 { d } else { m * buf[i] + d };
                want[i] -= lr * (d + m * buf[i]);
            }
        }
        let got: Vec<f32> = p.as_tensor().to_vec1().unwrap();
        // Hand values: step 1 d=[0.31,-0.12,2.005] → p=[0.9411,-1.9772,0.11905];
        // step 2 → p=[0.85720191,-1.94472332,-0.42358120].
        for i in 0..3 {
            assert!(
                (got[i] as f64 - want[i]).abs() < 1e-6,
                "{i}: {} vs {}",
                got[i],
                want[i]
            );
        }
        assert!((want[0] - 0.857_201_91).abs() < 1e-6, "{}", want[0]);
        assert!((want[2] + 0.423_581_2).abs() < 1e-6, "{}", want[2]);
        let b: Vec<f32> = opt.buffers()["w"].to_vec1().unwrap();
        assert!((b[2] as f64 - buf[2]).abs() < 1e-6);
    }

    /// torch 1.0 semantics of a gradient block: p = [2], weight decay 0.1, momentum 0.5,
    /// Nesterov off, lr 0.1. Step 1 has gradient 1; step 2 has none (cut off), so the zeroed
    /// gradient still carries weight decay and momentum:
    /// step 1: d = 1 + 0.1·2 = 1.2, buf = 1.2, p = 2 − 0.12 = 1.88;
    /// step 2: d = 0 + 0.1·1.88 = 0.188, buf = 0.5·1.2 + 0.188 = 0.788, p = 1.88 − 0.0788 = 1.8012.
    /// A parameter that never had a gradient is not touched.
    #[test]
    fn blocked_parameters_keep_moving_by_weight_decay_and_momentum() {
        let dev = Device::Cpu;
        let p = Var::from_tensor(&Tensor::new(&[2f64], &dev).unwrap()).unwrap();
        let never = Var::from_tensor(&Tensor::new(&[5f64], &dev).unwrap()).unwrap();
        let params = vec![
            ("p".to_string(), p.clone()),
            ("never".to_string(), never.clone()),
        ];
        let mut opt = Sgd::new(SgdConfig {
            lr: 0.1,
            momentum: 0.5,
            nesterov: false,
            weight_decay: 0.1,
        });
        let g1 = p.as_tensor().sum_all().unwrap().backward().unwrap();
        opt.step(&params, &g1, 0.1).unwrap();
        let v = |x: &Var| x.as_tensor().to_vec1::<f64>().unwrap()[0];
        assert!((v(&p) - 1.88).abs() < 1e-12, "{}", v(&p));
        // A backward pass that does not reach `p`.
        let other = Var::from_tensor(&Tensor::new(&[1f64], &dev).unwrap()).unwrap();
        let g2 = other.as_tensor().sum_all().unwrap().backward().unwrap();
        opt.step(&params, &g2, 0.1).unwrap();
        assert!((v(&p) - 1.8012).abs() < 1e-12, "{}", v(&p));
        assert_eq!(v(&never), 5.0);
    }
}
