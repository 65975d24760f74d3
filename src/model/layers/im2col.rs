//! im2col and its adjoint col2im as candle custom ops, so a CPU convolution trains through
//! single large matmuls.
//!
//! candle 0.11's CPU backward of `conv2d` runs a direct (dot-product) transposed convolution
//! for the input gradient and a convolution with an image-sized kernel for the weight
//! gradient; both are several times slower than the gemm they amount to. Expressed as
//! `im2col(x) · Wᵀ`, the forward is one gemm and the backward is two gemms plus col2im.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// Shape of one convolution: input [n, c, h, w], square kernel `k`, output [oh, ow].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

impl ConvGeometry {
    /// Output height.
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.padding - self.k) / self.stride + 1
    }
    /// Output width.
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.padding - self.k) / self.stride + 1
    }
    /// Length of one column row: c·k·k, ordered like a PyTorch weight's (c, ky, kx).
    pub fn row_len(&self) -> usize {
        self.c * self.k * self.k
    }
}

/// [n, c, h, w] → [n·oh·ow, c·k·k]: row (b, oy, ox) holds the receptive field of that output.
#[derive(Debug, Clone, Copy)]
pub struct Im2Col(pub ConvGeometry);

/// The adjoint of [`Im2Col`]: sums each column entry back into the input pixel it came from.
#[derive(Debug, Clone, Copy)]
pub struct Col2Im(pub ConvGeometry);

/// Runs `f32`/`f64` on the contiguous data of `s`, checking its shape against `want` first.
fn dispatch(
    op: &'static str,
    g: &ConvGeometry,
    s: &CpuStorage,
    l: &Layout,
    want: &[usize],
    f32: impl Fn(&[f32]) -> Vec<f32>,
    f64: impl Fn(&[f64]) -> Vec<f64>,
) -> Result<CpuStorage> {
    if l.shape().dims() != want {
        return Err(candle_core::Error::Msg(format!(
            "{op}: input shape {:?} does not match geometry {g:?}",
            l.shape()
        )));
    }
    let Some((a, b)) = l.contiguous_offsets() else {
        return Err(candle_core::Error::RequiresContiguous { op }.bt());
    };
    Ok(match s {
        CpuStorage::F32(v) => CpuStorage::F32(f32(&v[a..b])),
        CpuStorage::F64(v) => CpuStorage::F64(f64(&v[a..b])),
        other => return Err(candle_core::Error::UnsupportedDTypeForOp(other.dtype(), op).bt()),
    })
}

fn im2col<T: WithDType>(g: &ConvGeometry, x: &[T]) -> Vec<T> {
    let (oh, ow, row, k) = (g.oh(), g.ow(), g.row_len(), g.k);
    let image = g.c * g.h * g.w;
    let mut out = vec![T::zero(); g.n * oh * ow * row];
    out.par_chunks_mut(oh * ow * row)
        .enumerate()
        .for_each(|(b, dst)| {
            let xs = &x[b * image..(b + 1) * image];
            for oy in 0..oh {
                for ox in 0..ow {
                    let r = &mut dst[(oy * ow + ox) * row..][..row];
                    // Leftmost input column of the receptive field; a field wholly inside the
                    // image copies each kernel row as one run.
                    let ix0 = (ox * g.stride) as isize - g.padding as isize;
                    let inside = ix0 >= 0 && ix0 as usize + k <= g.w;
                    for c in 0..g.c {
                        for ky in 0..k {
                            let Some(iy) = (oy * g.stride + ky).checked_sub(g.padding) else {
                                continue;
                            };
                            if iy >= g.h {
                                continue;
                            }
                            let src = (c * g.h + iy) * g.w;
                            let d = &mut r[(c * k + ky) * k..][..k];
                            if inside {
                                let s0 = src + ix0 as usize;
                                d.copy_from_slice(&xs[s0..s0 + k]);
                            } else {
                                for (kx, v) in d.iter_mut().enumerate() {
                                    let ix = ix0 + kx as isize;
                                    if ix >= 0 && (ix as usize) < g.w {
                                        *v = xs[src + ix as usize];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        });
    out
}

fn col2im<T: WithDType>(g: &ConvGeometry, cols: &[T]) -> Vec<T> {
    let (oh, ow, row, k) = (g.oh(), g.ow(), g.row_len(), g.k);
    let image = g.c * g.h * g.w;
    let mut out = vec![T::zero(); g.n * image];
    // Each input pixel receives its contributions in (oy, ox) order, then (c, ky, kx): the
    // order of the straightforward loop, so sums are bit-identical to it.
    out.par_chunks_mut(image).enumerate().for_each(|(b, dst)| {
        let src = &cols[b * oh * ow * row..(b + 1) * oh * ow * row];
        for oy in 0..oh {
            for ox in 0..ow {
                let r = &src[(oy * ow + ox) * row..][..row];
                let ix0 = (ox * g.stride) as isize - g.padding as isize;
                let inside = ix0 >= 0 && ix0 as usize + k <= g.w;
                for c in 0..g.c {
                    for ky in 0..k {
                        let Some(iy) = (oy * g.stride + ky).checked_sub(g.padding) else {
                            continue;
                        };
                        if iy >= g.h {
                            continue;
                        }
                        let base = (c * g.h + iy) * g.w;
                        let s = &r[(c * k + ky) * k..][..k];
                        if inside {
                            let d0 = base + ix0 as usize;
                            for (d, &v) in dst[d0..d0 + k].iter_mut().zip(s) {
                                *d += v;
                            }
                        } else {
                            for (kx, &v) in s.iter().enumerate() {
                                let ix = ix0 + kx as isize;
                                if ix >= 0 && (ix as usize) < g.w {
                                    dst[base + ix as usize] += v;
                                }
                            }
                        }
                    }
                }
            }
        }
    });
    out
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "mixbench-im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let want = [g.n, g.c, g.h, g.w];
        let out = dispatch("im2col", g, s, l, &want, |x| im2col(g, x), |x| im2col(g, x))?;
        Ok((out, Shape::from((g.n * g.oh() * g.ow(), g.row_len()))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Col2Im(self.0))?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "mixbench-col2im"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let want = [g.n * g.oh() * g.ow(), g.row_len()];
        let out = dispatch("col2im", g, s, l, &want, |c| col2im(g, c), |c| col2im(g, c))?;
        Ok((out, Shape::from((g.n, g.c, g.h, g.w))))
    }
}

/// `x` [n, c, h, w] convolved with `weight` [o, c, k, k] through im2col and one matmul.
pub fn conv2d_im2col(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (o, _, k, _) = weight.dims4()?;
    let g = ConvGeometry {
        n,
        c,
        h,
        w,
        k,
        stride,
        padding,
    };
    let cols = x.contiguous()?.apply_op1(Im2Col(g))?;
    let wt = weight.reshape((o, g.row_len()))?.t()?;
    cols.matmul(&wt)?
        .reshape((n, g.oh(), g.ow(), o))?
        .permute((0, 3, 1, 2))?
        .contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input (iy, ix) for output (oy, ox) and kernel entry (ky, kx), if inside the image.
    fn source(
        g: &ConvGeometry,
        oy: usize,
        ox: usize,
        ky: usize,
        kx: usize,
    ) -> Option<(usize, usize)> {
        let iy = (oy * g.stride + ky).checked_sub(g.padding)?;
        let ix = (ox * g.stride + kx).checked_sub(g.padding)?;
        (iy < g.h && ix < g.w).then_some((iy, ix))
    }

    /// The straightforward loops: every output, every row entry, in order.
    fn naive(g: &ConvGeometry, x: &[f32], cols: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (oh, ow, row) = (g.oh(), g.ow(), g.row_len());
        let image = g.c * g.h * g.w;
        let mut out = vec![0f32; g.n * oh * ow * row];
        let mut back = vec![0f32; g.n * image];
        for b in 0..g.n {
            for oy in 0..oh {
                for ox in 0..ow {
                    let r = (b * oh * ow + oy * ow + ox) * row;
                    for c in 0..g.c {
                        for ky in 0..g.k {
                            for kx in 0..g.k {
                                if let Some((iy, ix)) = source(g, oy, ox, ky, kx) {
                                    let e = r + (c * g.k + ky) * g.k + kx;
                                    let p = b * image + (c * g.h + iy) * g.w + ix;
                                    out[e] = x[p];
                                    back[p] += cols[e];
                                }
                            }
                        }
                    }
                }
            }
        }
        (out, back)
    }

    #[test]
    fn runs_equal_the_straightforward_loops_bit_for_bit() {
        for (k, stride, padding, h, w) in [
            (3, 1, 1, 5, 6),
            (3, 2, 1, 7, 5),
            (1, 2, 0, 4, 4),
            (5, 2, 2, 9, 8),
            (3, 1, 0, 4, 3),
        ] {
            let g = ConvGeometry {
                n: 2,
                c: 3,
                h,
                w,
                k,
                stride,
                padding,
            };
            let x: Vec<f32> = (0..g.n * g.c * h * w)
                .map(|i| ((i as f32) * 0.37).sin())
                .collect();
            let cols: Vec<f32> = (0..g.n * g.oh() * g.ow() * g.row_len())
                .map(|i| ((i as f32) * 0.13).cos() * 1e3f32.powi((i % 3) as i32 - 1))
                .collect();
            let (want_cols, want_back) = naive(&g, &x, &cols);
            assert_eq!(im2col(&g, &x), want_cols, "im2col {g:?}");
            let got = col2im(&g, &cols);
            assert!(
                got.iter()
                    .zip(&want_back)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "col2im {g:?}"
            );
        }
    }
    use candle_core::{Device, Var};

    fn fixed(shape: &[usize], salt: f32) -> Tensor {
        let len: usize = shape.iter().product();
        let v: Vec<f32> = (0..len)
            .map(|i| ((i as f32 * 0.7 + salt).sin() * 1.3).round() / 4.0)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Forward values and both gradients equal candle's own conv2d for 3×3 and 1×1 kernels,
    /// strides 1 and 2, with and without padding.
    #[test]
    fn matches_candle_conv2d_forward_and_backward() {
        let mut cases = vec![];
        for h in 1..=8 {
            cases.extend([(3, 1, 1, h), (3, 2, 1, h), (1, 2, 0, h), (1, 1, 0, h)]);
        }
        for (k, stride, padding, h) in cases {
            let x = Var::from_tensor(&fixed(&[2, 3, h, h], 0.1)).unwrap();
            let wgt = Var::from_tensor(&fixed(&[4, 3, k, k], 0.9)).unwrap();
            let ours = conv2d_im2col(&x, &wgt, stride, padding).unwrap();
            let theirs = x.conv2d(&wgt, padding, stride, 1, 1).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            assert!(
                max_abs_diff(&ours, &theirs) < 1e-5,
                "forward k={k} s={stride}"
            );
            // A non-uniform upstream gradient so every position is weighted differently.
            let up = fixed(theirs.dims(), 2.3);
            let go = (&ours * &up)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gt = (&theirs * &up)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &wgt] {
                let (a, b) = (go.get(v).unwrap(), gt.get(v).unwrap());
                assert!(max_abs_diff(a, b) < 1e-4, "grad k={k} s={stride}");
                assert!(
                    b.abs()
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap()
                        > 0.1
                );
            }
        }
    }

    #[test]
    fn rejects_a_mismatched_input() {
        let g = ConvGeometry {
            n: 1,
            c: 2,
            h: 4,
            w: 4,
            k: 3,
            stride: 1,
            padding: 1,
        };
        let err = fixed(&[1, 3, 4, 4], 0.0).apply_op1(Im2Col(g)).unwrap_err();
        assert!(err.to_string().contains("does not match geometry"), "{err}");
    }
}
