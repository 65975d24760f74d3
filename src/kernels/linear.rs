//! The fully connected layer as CPU custom ops with a hand-written backward.
//!
//! Built from candle ops (`x.matmul(&w.t()) + b`), the weight's gradient came out of the
//! transpose's backward as a strided [in, out] view that candle then added element by element
//! into a zeroed [out, in] buffer; on the App. G MLP (6.1 M weights) that strided add cost as
//! much as a gemm. Here every gradient is one gemm (or one sum for the bias) into its own
//! layout.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::cpu_float::{CpuFloat, contiguous, dispatch2, gemm};

/// `x [n, in] · wᵀ + b`: args x, weight [out, in], bias [out].
#[derive(Debug, Clone, Copy)]
pub struct LinearOp {
    n: usize,
    cin: usize,
    cout: usize,
}

fn forward<T: CpuFloat>(op: &LinearOp, x: &[T], w: &[T], b: &[T]) -> Vec<T> {
    let LinearOp { n, cin, cout } = *op;
    let mut y = vec![T::zero(); n * cout];
    // SAFETY: x [n, cin], wᵀ [cin, cout] read from w [cout, cin], y [n, cout].
    unsafe {
        gemm(
            (n, cout, cin),
            (y.as_mut_ptr(), cout, 1),
            false,
            (x.as_ptr(), cin, 1),
            (w.as_ptr(), 1, cin),
            true,
        )
    };
    for row in y.chunks_exact_mut(cout) {
        for (v, &bias) in row.iter_mut().zip(b) {
            *v += bias;
        }
    }
    y
}

/// dx = g · w: args upstream gradient [n, out], weight.
#[derive(Debug, Clone, Copy)]
struct GradInput(LinearOp);

/// dW = gᵀ · x: args upstream gradient, input.
#[derive(Debug, Clone, Copy)]
struct GradWeight(LinearOp);

/// db = Σ_rows g: arg upstream gradient.
#[derive(Debug, Clone, Copy)]
struct GradBias(LinearOp);

fn grad_input<T: CpuFloat>(op: &LinearOp, g: &[T], w: &[T]) -> Vec<T> {
    let LinearOp { n, cin, cout } = *op;
    let mut dx = vec![T::zero(); n * cin];
    // SAFETY: g [n, cout], w [cout, cin], dx [n, cin].
    unsafe {
        gemm(
            (n, cin, cout),
            (dx.as_mut_ptr(), cin, 1),
            false,
            (g.as_ptr(), cout, 1),
            (w.as_ptr(), cin, 1),
            true,
        )
    };
    dx
}

fn grad_weight<T: CpuFloat>(op: &LinearOp, g: &[T], x: &[T]) -> Vec<T> {
    let LinearOp { n, cin, cout } = *op;
    let mut dw = vec![T::zero(); cout * cin];
    // SAFETY: gᵀ [cout, n] read from g [n, cout], x [n, cin], dw [cout, cin].
    unsafe {
        gemm(
            (cout, cin, n),
            (dw.as_mut_ptr(), cin, 1),
            false,
            (g.as_ptr(), 1, cout),
            (x.as_ptr(), cin, 1),
            true,
        )
    };
    dw
}

fn grad_bias<T: CpuFloat>(op: &LinearOp, g: &[T]) -> Vec<T> {
    let mut db = vec![T::zero(); op.cout];
    for row in g.chunks_exact(op.cout) {
        for (d, &v) in db.iter_mut().zip(row) {
            *d += v;
        }
    }
    db
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "mixbench-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (name, n, cin, cout) = (self.name(), self.n, self.cin, self.cout);
        let v = match s1 {
            CpuStorage::F32(_) => f32::storage(forward(
                self,
                contiguous(name, s1, l1, &[n, cin])?,
                contiguous(name, s2, l2, &[cout, cin])?,
                contiguous(name, s3, l3, &[cout])?,
            )),
            CpuStorage::F64(_) => f64::storage(forward(
                self,
                contiguous(name, s1, l1, &[n, cin])?,
                contiguous(name, s2, l2, &[cout, cin])?,
                contiguous(name, s3, l3, &[cout])?,
            )),
            _ => candle_core::bail!("{name}: f32 or f64 only"),
        };
        Ok((v, Shape::from((n, cout))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let dx = match x.track_op() {
            true => Some(g.apply_op2_no_bwd(w, &GradInput(*self))?),
            false => None,
        };
        let dw = match w.track_op() {
            true => Some(g.apply_op2_no_bwd(x, &GradWeight(*self))?),
            false => None,
        };
        let db = match b.track_op() {
            true => Some(g.apply_op1_no_bwd(&GradBias(*self))?),
            false => None,
        };
        Ok((dx, dw, db))
    }
}

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "mixbench-linear-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let o = &self.0;
        dispatch2(
            self.name(),
            (s1, l1, &[o.n, o.cout]),
            (s2, l2, &[o.cout, o.cin]),
            Shape::from((o.n, o.cin)),
            |g, w| grad_input(o, g, w),
            |g, w| grad_input(o, g, w),
        )
    }
}

impl CustomOp2 for GradWeight {
    fn name(&self) -> &'static str {
        "mixbench-linear-grad-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let o = &self.0;
        dispatch2(
            self.name(),
            (s1, l1, &[o.n, o.cout]),
            (s2, l2, &[o.n, o.cin]),
            Shape::from((o.cout, o.cin)),
            |g, x| grad_weight(o, g, x),
            |g, x| grad_weight(o, g, x),
        )
    }
}

impl CustomOp1 for GradBias {
    fn name(&self) -> &'static str {
        "mixbench-linear-grad-bias"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (o, name) = (&self.0, self.name());
        let v = match s {
            CpuStorage::F32(_) => {
                f32::storage(grad_bias(o, contiguous(name, s, l, &[o.n, o.cout])?))
            }
            CpuStorage::F64(_) => {
                f64::storage(grad_bias(o, contiguous(name, s, l, &[o.n, o.cout])?))
            }
            _ => candle_core::bail!("{name}: f32 or f64 only"),
        };
        Ok((v, Shape::from(o.cout)))
    }
}

/// `x [n, in] · weightᵀ + bias` on the CPU (weight [out, in], bias [out]).
pub fn linear_cpu(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (n, cin) = x.dims2()?;
    let (cout, win) = weight.dims2()?;
    if win != cin || bias.dims() != [cout] {
        candle_core::bail!(
            "linear: input {:?} does not fit weight {:?} and bias {:?}",
            x.dims(),
            weight.dims(),
            bias.dims()
        );
    }
    let op = LinearOp { n, cin, cout };
    x.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    fn values(shape: &[usize], salt: f64, dtype: DType) -> Var {
        let len: usize = shape.iter().product();
        let v: Vec<f64> = (0..len).map(|i| ((i as f64 + salt) * 0.73).sin()).collect();
        let t = Tensor::from_vec(v, shape, &Device::Cpu).unwrap();
        Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap()
    }

    fn rel(a: &Tensor, b: &Tensor) -> f64 {
        let m = |t: &Tensor| {
            let t = t
                .to_dtype(DType::F64)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap();
            t.max(0).unwrap().to_scalar::<f64>().unwrap()
        };
        m(&(a - b).unwrap()) / m(b)
    }

    /// Output and the three gradients against candle's `x.matmul(&w.t()) + b`.
    #[test]
    fn matches_the_candle_ops() {
        for dtype in [DType::F64, DType::F32] {
            let tol = if dtype == DType::F64 { 1e-13 } else { 1e-5 };
            for (n, cin, cout) in [(1, 1, 1), (5, 7, 3), (64, 33, 70)] {
                let (x, w, b) = (
                    values(&[n, cin], 0.1, dtype),
                    values(&[cout, cin], 2.0, dtype),
                    values(&[cout], 5.0, dtype),
                );
                let ours = linear_cpu(&x, &w, &b).unwrap();
                let theirs = x
                    .matmul(&w.t().unwrap())
                    .unwrap()
                    .broadcast_add(&b)
                    .unwrap();
                assert!(rel(&ours, &theirs) < tol, "{dtype:?} {n} {cin} {cout}");
                let up = values(&[n, cout], 9.0, dtype);
                let go = (&ours * up.as_tensor())
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let gt = (&theirs * up.as_tensor())
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                for v in [&x, &w, &b] {
                    let (a, e) = (go.get(v).unwrap(), gt.get(v).unwrap());
                    assert_eq!(a.dims(), e.dims());
                    assert!(rel(a, e) < tol, "grad {dtype:?} {n} {cin} {cout}");
                }
            }
        }
    }
}
