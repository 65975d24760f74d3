//! ReLU as one CPU custom op with a hand-written backward.
//!
//! Built from candle ops (`x * (x > 0)`), one ReLU was a broadcast compare, a u8 → float
//! conversion and a multiply forward, and two multiplies (one for the mask, never used) plus two
//! zeroed accumulators backward: on the App. G MLP, candle's element-wise maps were a fifth of a
//! training step. Here each direction is one pass. The arithmetic is the candle ops' exactly:
//! forward `x · m`, backward `g · m` with `m = 1` where `x > 0` and `0` elsewhere, so negative
//! inputs give −0 and NaN stays NaN, bit for bit as before.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use super::cpu_float::{CpuFloat, contiguous, dispatch2};

/// `x · (x > 0)` elementwise.
#[derive(Debug, Clone, Copy)]
struct Relu;

/// `g · (x > 0)` elementwise: args upstream gradient, the ReLU's input.
#[derive(Debug, Clone, Copy)]
struct ReluGrad;

/// `v · m` with `m = 1` where `x > 0`, else `0`, as candle's multiply by the converted mask.
fn masked<T: CpuFloat>(v: T, x: T) -> T {
    let m = if x > T::zero() { T::one() } else { T::zero() };
    v * m
}

fn forward<T: CpuFloat>(x: &[T]) -> Vec<T> {
    x.iter().map(|&v| masked(v, v)).collect()
}

fn backward<T: CpuFloat>(g: &[T], x: &[T]) -> Vec<T> {
    g.iter().zip(x).map(|(&g, &x)| masked(g, x)).collect()
}

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "mixbench-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (name, dims) = (self.name(), l.shape().dims());
        let v = match s {
            CpuStorage::F32(_) => f32::storage(forward(contiguous::<f32>(name, s, l, dims)?)),
            CpuStorage::F64(_) => f64::storage(forward(contiguous::<f64>(name, s, l, dims)?)),
            other => {
                return Err(candle_core::Error::UnsupportedDTypeForOp(other.dtype(), name).bt());
            }
        };
        Ok((v, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op2_no_bwd(x, &ReluGrad)?))
    }
}

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "mixbench-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = l1.shape().dims();
        dispatch2(
            self.name(),
            (s1, l1, dims),
            (s2, l2, dims),
            l1.shape().clone(),
            backward,
            backward,
        )
    }
}

/// `max(x, 0)` on the CPU (f32 or f64, any shape), gradient 1 where `x > 0` and 0 elsewhere.
pub fn relu_cpu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Relu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    use crate::kernels::cpu_float::tensor_bits as bits;

    /// Output and input gradient equal candle's `x * (x > 0)` bit for bit, signed zeros and
    /// NaN included, in both float types.
    #[test]
    fn equals_the_candle_ops_bit_for_bit() {
        let xs = [
            -2.5,
            -0.0,
            0.0,
            1e-40,
            3.0,
            f64::NAN,
            -f64::INFINITY,
            f64::INFINITY,
            -1e-300,
        ];
        let gs = [1.5, -2.0, 4.0, -0.0, 0.25, 7.0, -3.0, f64::NAN, 2.0];
        for dtype in [DType::F32, DType::F64] {
            let x = Var::from_tensor(
                &Tensor::new(&xs, &Device::Cpu)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap(),
            )
            .unwrap();
            let g = Tensor::new(&gs, &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let ours = relu_cpu(&x).unwrap();
            let mask = x.gt(0.0).unwrap().to_dtype(dtype).unwrap();
            let theirs = (x.as_tensor() * mask).unwrap();
            assert_eq!(bits(&ours), bits(&theirs), "{dtype:?} forward");
            let go = (&ours * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let gt = (&theirs * &g)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let (a, e) = (go.get(&x).unwrap(), gt.get(&x).unwrap());
            assert_eq!(bits(a), bits(e), "{dtype:?} gradient");
        }
    }

    /// The values themselves, so that the comparison above cannot pass with both sides wrong.
    #[test]
    fn passes_positives_and_zeroes_the_rest() {
        let x = Var::new(&[-1.0f32, -0.0, 0.0, 2.0, f32::NAN], &Device::Cpu).unwrap();
        let y = relu_cpu(&x).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(
            y[..4].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            [
                (-0.0f32).to_bits(),
                (-0.0f32).to_bits(),
                0,
                2.0f32.to_bits()
            ]
        );
        assert!(y[4].is_nan());
        let up = Tensor::new(&[3.0f32, 3.0, 3.0, 3.0, 3.0], &Device::Cpu).unwrap();
        let g = (&relu_cpu(&x).unwrap() * up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert_eq!(
            g.get(&x).unwrap().to_vec1::<f32>().unwrap(),
            [0.0, 0.0, 0.0, 3.0, 0.0]
        );
    }
}
