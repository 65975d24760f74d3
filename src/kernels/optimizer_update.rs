//! Optimizer updates as in-place CPU passes over each parameter.
//!
//! Written as candle ops, one Adam step was thirteen full passes over every parameter, each
//! allocating its result (SGD with Nesterov momentum, eight); on the App. G MLP's 6.1 M
//! parameters that was a third of the training step. These kernels do the same arithmetic,
//! step for step in the parameter's type (including candle's `x · a + 0` for a scalar factor,
//! which turns −0 into +0), in two or three passes that write in place, so results are bit
//! for bit those of the candle ops.

use candle_core::{CpuStorage, InplaceOp3, Layout, Result};
use rayon::prelude::*;

use crate::kernels::cpu_float::{CpuFloat, simd_kernel};

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

/// `InplaceOp3` for `$ty`, running `$kernel(op, dst, src1, src2)` over parallel chunks.
macro_rules! inplace_op3 {
    ($ty:ty, $name:literal, $kernel:ident) => {
        impl InplaceOp3 for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn cpu_fwd(
                &self,
                dst: &mut CpuStorage,
                dst_l: &Layout,
                s2: &CpuStorage,
                l2: &Layout,
                s3: &CpuStorage,
                l3: &Layout,
            ) -> Result<()> {
                run(
                    $name,
                    dst,
                    dst_l,
                    [(s2, l2), (s3, l3)],
                    |d, [a, b]| par3(d, a, b, |d, a, b| $kernel(self, d, a, b)),
                    |d, [a, b]| par3(d, a, b, |d, a, b| $kernel(self, d, a, b)),
                )
            }
        }
    };
}

/// The slice of a contiguous tensor, typed.
fn data<'a, T: CpuFloat>(op: &'static str, s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    crate::kernels::cpu_float::contiguous(op, s, l, l.shape().dims())
}

/// Runs `f` on the typed mutable data of `dst` and the typed data of `srcs`.
fn run<const N: usize>(
    op: &'static str,
    dst: &mut CpuStorage,
    dst_l: &Layout,
    srcs: [(&CpuStorage, &Layout); N],
    f32: impl Fn(&mut [f32], [&[f32]; N]),
    f64: impl Fn(&mut [f64], [&[f64]; N]),
) -> Result<()> {
    let Some((a, b)) = dst_l.contiguous_offsets() else {
        return Err(candle_core::Error::RequiresContiguous { op }.bt());
    };
    for (_, l) in &srcs {
        if l.shape() != dst_l.shape() {
            candle_core::bail!(
                "{op}: shapes {:?} and {:?} differ",
                l.shape(),
                dst_l.shape()
            );
        }
    }
    match dst {
        CpuStorage::F32(d) => {
            let mut v = [&[][..]; N];
            for (i, (s, l)) in srcs.iter().enumerate() {
                v[i] = data::<f32>(op, s, l)?;
            }
            f32(&mut d[a..b], v);
        }
        CpuStorage::F64(d) => {
            let mut v = [&[][..]; N];
            for (i, (s, l)) in srcs.iter().enumerate() {
                v[i] = data::<f64>(op, s, l)?;
            }
            f64(&mut d[a..b], v);
        }
        _ => candle_core::bail!("{op}: f32 or f64 only"),
    }
    Ok(())
}

/// The gradient with L2 weight decay, `g + (p·wd + 0)`, as `g + p * wd` in candle.
#[inline(always)]
fn decayed<T: CpuFloat>(g: T, p: T, wd: Option<T>) -> T {
    match wd {
        Some(wd) => g + (p * wd + T::zero()),
        None => g,
    }
}

/// Updates an Adam moment in place from the gradient and the parameter (srcs: grad, param):
/// `m·β + x·(1 − β)`, where x is the decayed gradient or its square; on the first step
/// (`first`) just `x·(1 − β)`.
#[derive(Debug, Clone, Copy)]
pub struct AdamMoment {
    /// β₁ or β₂.
    pub beta: f64,
    /// L2 weight decay (0: none).
    pub weight_decay: f64,
    /// Whether this is the second moment (of the squared gradient).
    pub square: bool,
    /// Whether the moment starts here (its old contents are ignored).
    pub first: bool,
}

simd_kernel! {
    fn adam_moment<T: CpuFloat>(op: &AdamMoment, m: &mut [T], g: &[T], p: &[T]) -> () {
        let wd = (op.weight_decay != 0.0).then(|| T::from_f64(op.weight_decay));
        let (beta, rest) = (T::from_f64(op.beta), T::from_f64(1.0 - op.beta));
        for ((m, &g), &p) in m.iter_mut().zip(g).zip(p) {
            let d = decayed(g, p, wd);
            let x = if op.square { d * d } else { d };
            let new = x * rest + T::zero();
            *m = if op.first {
                new
            } else {
                (*m * beta + T::zero()) + new
            };
        }
    }
}

inplace_op3!(AdamMoment, "mixbench-adam-moment", adam_moment);

/// Adam's parameter update in place (srcs: first moment, second moment):
/// `p − (m / ((sqrt(v)·c₂ + 0)·1 + eps))·step + 0`, c₂ = 1/sqrt(1 − β₂ᵗ), step = lr/(1 − β₁ᵗ).
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    /// `1 / sqrt(1 − β₂ᵗ)`.
    pub inv_sqrt_bias2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// `lr / (1 − β₁ᵗ)`.
    pub step_size: f64,
}

simd_kernel! {
    fn adam_step<T: CpuFloat>(op: &AdamStep, p: &mut [T], m: &[T], v: &[T]) -> () {
        let (c2, eps, step) = (
            T::from_f64(op.inv_sqrt_bias2),
            T::from_f64(op.eps),
            T::from_f64(op.step_size),
        );
        for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
            let denom = (v.sqrt_t() * c2 + T::zero()) * T::one() + eps;
            *p -= (m / denom) * step + T::zero();
        }
    }
}

inplace_op3!(AdamStep, "mixbench-adam-step", adam_step);

/// SGD's momentum buffer in place (srcs: grad, param): `(b·μ + 0) + d`, d the decayed
/// gradient; on the first step (`first`) just `d`.
#[derive(Debug, Clone, Copy)]
pub struct SgdMomentum {
    /// μ.
    pub momentum: f64,
    /// L2 weight decay (0: none).
    pub weight_decay: f64,
    /// Whether the buffer starts here (its old contents are ignored).
    pub first: bool,
}

simd_kernel! {
    fn sgd_momentum<T: CpuFloat>(op: &SgdMomentum, b: &mut [T], g: &[T], p: &[T]) -> () {
        let wd = (op.weight_decay != 0.0).then(|| T::from_f64(op.weight_decay));
        let mu = T::from_f64(op.momentum);
        for ((b, &g), &p) in b.iter_mut().zip(g).zip(p) {
            let d = decayed(g, p, wd);
            *b = if op.first { d } else { (*b * mu + T::zero()) + d };
        }
    }
}

inplace_op3!(SgdMomentum, "mixbench-sgd-momentum", sgd_momentum);

/// SGD's parameter update in place (srcs: grad, momentum buffer): `p − (s·lr + 0)` where s is
/// the decayed gradient `d`, the buffer `b` (plain momentum), `d + (b·μ + 0)` (Nesterov), or
/// `d` without momentum.
#[derive(Debug, Clone, Copy)]
pub struct SgdStep {
    /// Learning rate.
    pub lr: f64,
    /// μ (0: no momentum; the buffer source is then ignored).
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 weight decay (0: none).
    pub weight_decay: f64,
}

simd_kernel! {
    fn sgd_step<T: CpuFloat>(op: &SgdStep, p: &mut [T], g: &[T], b: &[T]) -> () {
        let wd = (op.weight_decay != 0.0).then(|| T::from_f64(op.weight_decay));
        let (mu, lr) = (T::from_f64(op.momentum), T::from_f64(op.lr));
        for ((p, &g), &b) in p.iter_mut().zip(g).zip(b) {
            let d = decayed(g, *p, wd);
            let s = match (op.momentum != 0.0, op.nesterov) {
                (false, _) => d,
                (true, false) => b,
                (true, true) => d + (b * mu + T::zero()),
            };
            *p -= s * lr + T::zero();
        }
    }
}

inplace_op3!(SgdStep, "mixbench-sgd-step", sgd_step);

/// Runs `f` over matching chunks of `dst`, `a` and `b` in parallel.
fn par3<T: CpuFloat>(dst: &mut [T], a: &[T], b: &[T], f: impl Fn(&mut [T], &[T], &[T]) + Sync) {
    dst.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(d, (a, b))| f(d, a, b));
}

/// Whether `t` can be updated by these kernels (a CPU tensor of f32 or f64).
pub use super::cpu_float::supported;

#[cfg(test)]
mod tests {
    use crate::train::{Adam, AdamConfig, Sgd, SgdConfig};
    use candle_core::{DType, Device, Tensor, Var};

    /// Parameters with zeros, negatives and a wide range of magnitudes.
    fn values(len: usize, salt: f64, dtype: DType) -> Tensor {
        let v: Vec<f64> = (0..len)
            .map(|i| match i % 7 {
                0 => 0.0,
                3 => -0.0,
                _ => ((i as f64 + salt) * 0.77).sin() * 10f64.powi((i % 5) as i32 - 3),
            })
            .collect();
        Tensor::from_vec(v, len, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    use crate::kernels::cpu_float::tensor_bits as bits;

    /// Three steps of a loss Σ c·p² + Σ d·p (gradients with zeros and both signs) through the
    /// in-place kernels and through the candle ops: parameters bit for bit equal after each.
    fn same_as_candle_ops(
        mut fast: impl FnMut(&[(String, Var)], &candle_core::backprop::GradStore),
        mut slow: impl FnMut(&[(String, Var)], &candle_core::backprop::GradStore),
        dtype: DType,
    ) {
        let make = || {
            vec![(
                "w".to_string(),
                Var::from_tensor(&values(4099, 0.3, dtype)).unwrap(),
            )]
        };
        let (pf, ps) = (make(), make());
        let c = values(4099, 1.9, dtype);
        let d = values(4099, 4.2, dtype);
        let grads = |params: &[(String, Var)]| {
            let p = params[0].1.as_tensor();
            let loss = ((p.sqr().unwrap() * &c).unwrap() + (p * &d).unwrap()).unwrap();
            loss.sum_all().unwrap().backward().unwrap()
        };
        for step in 0..3 {
            fast(&pf, &grads(&pf));
            slow(&ps, &grads(&ps));
            assert_eq!(
                bits(pf[0].1.as_tensor()),
                bits(ps[0].1.as_tensor()),
                "step {step}"
            );
        }
    }

    #[test]
    fn adam_in_place_equals_the_candle_ops_bit_for_bit() {
        for dtype in [DType::F32, DType::F64] {
            for wd in [0.0, 1e-2] {
                let cfg = AdamConfig {
                    name: crate::train::adam::AdamName::Adam,
                    lr: 0.1,
                    betas: [0.9, 0.999],
                    eps: 1e-8,
                    weight_decay: wd,
                };
                let (mut a, mut b) = (Adam::new(cfg.clone()), Adam::new(cfg));
                b.use_candle_ops();
                same_as_candle_ops(
                    |p, g| a.step(p, g, 0.1).unwrap(),
                    |p, g| b.step(p, g, 0.1).unwrap(),
                    dtype,
                );
            }
        }
    }

    #[test]
    fn sgd_in_place_equals_the_candle_ops_bit_for_bit() {
        for dtype in [DType::F32, DType::F64] {
            for (momentum, nesterov, weight_decay) in
                [(0.9, true, 1e-4), (0.9, false, 0.0), (0.0, false, 5e-4)]
            {
                let cfg = SgdConfig {
                    lr: 0.1,
                    momentum,
                    nesterov,
                    weight_decay,
                };
                let (mut a, mut b) = (Sgd::new(cfg.clone()), Sgd::new(cfg));
                b.use_candle_ops();
                same_as_candle_ops(
                    |p, g| a.step(p, g, 0.05).unwrap(),
                    |p, g| b.step(p, g, 0.05).unwrap(),
                    dtype,
                );
            }
        }
    }
}
