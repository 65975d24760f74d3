//! Leaky ReLU as one CPU custom op with a hand-written backward.
//!
//! `candle_nn::ops::leaky_relu` is `max(x, 0) + min(x, 0) · a` over a zeroed tensor: five
//! element-wise passes forward and, backward, the masks, products and quotients of two
//! `maximum`/`minimum` gradients (about a dozen passes): on the App. G MLP (eight leaky layers of
//! 1,024) candle's element-wise maps were a fifth of a training step. Here each direction is one
//! pass that does the candle ops' arithmetic in the same order, so the bits are theirs (signed
//! zeros, the halved gradient at exactly 0 and NaN included); the test compares them.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use super::cpu_float::{CpuFloat, contiguous, dispatch2};

/// `max(x, 0) + min(x, 0) · slope` elementwise.
#[derive(Debug, Clone, Copy)]
struct LeakyRelu(f64);

/// Its input gradient: args upstream gradient, the op's input.
#[derive(Debug, Clone, Copy)]
struct LeakyReluGrad(f64);

/// candle's `maximum(x, 0)` and `minimum(x, 0)`.
fn max_min<T: CpuFloat>(x: T) -> (T, T) {
    let zero = T::from_f64(0.0);
    let max = if x < zero { zero } else { x };
    let min = if x > zero { zero } else { x };
    (max, min)
}

fn forward<T: CpuFloat>(x: &[T], slope: f64) -> Vec<T> {
    let (a, zero) = (T::from_f64(slope), T::from_f64(0.0));
    x.iter()
        .map(|&x| {
            let (max, min) = max_min(x);
            // `min * slope` is candle's affine(slope, 0): v * mul + add.
            max + (min * a + zero)
        })
        .collect()
}

/// One of candle's `maximum`/`minimum` input gradients: `(node == x) · g / ((node == 0) + 1)`,
/// the masks converted to floats and `+ 1` an affine(1, 1).
fn branch<T: CpuFloat>(node: T, x: T, g: T) -> T {
    let (zero, one) = (T::from_f64(0.0), T::from_f64(1.0));
    let lhs = if node == x { one } else { zero };
    let rhs = if node == zero { one } else { zero };
    (lhs * g) / (rhs * one + one)
}

fn backward<T: CpuFloat>(g: &[T], x: &[T], slope: f64) -> Vec<T> {
    let (a, zero) = (T::from_f64(slope), T::from_f64(0.0));
    g.iter()
        .zip(x)
        .map(|(&g, &x)| {
            let (max, min) = max_min(x);
            // The sum's two operands get `g`; the affine passes `g * slope + 0` to the minimum.
            let from_max = branch(max, x, g);
            let from_min = branch(min, x, g * a + zero);
            // candle (as vendored) keeps the first branch's gradient and adds the second.
            from_max + from_min
        })
        .collect()
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "mixbench-leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (name, dims) = (self.name(), l.shape().dims());
        let v = match s {
            CpuStorage::F32(_) => {
                f32::storage(forward(contiguous::<f32>(name, s, l, dims)?, self.0))
            }
            CpuStorage::F64(_) => {
                f64::storage(forward(contiguous::<f64>(name, s, l, dims)?, self.0))
            }
            other => {
                return Err(candle_core::Error::UnsupportedDTypeForOp(other.dtype(), name).bt());
            }
        };
        Ok((v, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let op = LeakyReluGrad(self.0);
        Ok(Some(grad.contiguous()?.apply_op2_no_bwd(x, &op)?))
    }
}

impl CustomOp2 for LeakyReluGrad {
    fn name(&self) -> &'static str {
        "mixbench-leaky-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = l1.shape().dims();
        let slope = self.0;
        dispatch2(
            self.name(),
            (s1, l1, dims),
            (s2, l2, dims),
            l1.shape().clone(),
            |g, x| backward(g, x, slope),
            |g, x| backward(g, x, slope),
        )
    }
}

/// `candle_nn::ops::leaky_relu(x, slope)` on the CPU (f32 or f64, any shape), same bits forward
/// and backward.
pub fn leaky_relu_cpu(x: &Tensor, slope: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op1(LeakyRelu(slope))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    use crate::kernels::cpu_float::tensor_bits as bits;

    /// Output and input gradient equal candle_nn's leaky ReLU bit for bit, signed zeros, the
    /// halved gradient at exactly 0, infinities and NaN included, in both float types.
    #[test]
    fn equals_candle_nn_leaky_relu_bit_for_bit() {
        let xs = [
            -2.5,
            -0.0,
            0.0,
            0.0,
            1e-40,
            -1e-40,
            3.0,
            f64::NAN,
            -f64::INFINITY,
            f64::INFINITY,
            -1e-300,
            -7.25,
        ];
        let gs = [
            1.5,
            -2.0,
            4.0,
            -3.0,
            -0.0,
            0.25,
            7.0,
            -3.0,
            f64::NAN,
            2.0,
            2.0,
            f64::INFINITY,
        ];
        for slope in [0.01, 0.02, 0.3] {
            for dtype in [DType::F32, DType::F64] {
                let t = |v: &[f64]| {
                    Tensor::new(v, &Device::Cpu)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap()
                };
                let x = Var::from_tensor(&t(&xs)).unwrap();
                let g = t(&gs);
                let ours = leaky_relu_cpu(&x, slope).unwrap();
                let theirs = candle_nn::ops::leaky_relu(&x, slope).unwrap();
                assert_eq!(bits(&ours), bits(&theirs), "{dtype:?} {slope} forward");
                let grad = |y: &Tensor| {
                    let gs = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                    bits(gs.get(&x).unwrap())
                };
                assert_eq!(grad(&ours), grad(&theirs), "{dtype:?} {slope} backward");
            }
        }
    }

    #[test]
    fn at_exactly_zero_the_gradient_is_the_mean_of_both_sides() {
        let x = Var::new(&[0.0f64, 2.0, -2.0], &Device::Cpu).unwrap();
        let y = leaky_relu_cpu(&x, 0.1).unwrap();
        assert_eq!(y.to_vec1::<f64>().unwrap(), [0.0, 2.0, -0.2]);
        let g = y.sum_all().unwrap().backward().unwrap();
        let g = g.get(&x).unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(g, [0.5 + 0.05, 1.0, 0.1]);
    }
}
