//! im2col and its adjoint col2im for one image, in the layout the CPU convolution multiplies:
//! rows are receptive-field entries (c, ky, kx), as in a PyTorch weight's [out, c·k·k] view,
//! columns are output pixels (oy, ox).
//!
//! With that layout `weight · cols` is the image's output already in NCHW order, so no
//! transpose follows the gemm, and several images can sit side by side in one column slab
//! (`row_stride` > pixels) so the gemm's inner dimension stays wide on small late-stage maps.

use super::cpu_float::simd_kernel;

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
    /// Output pixels per image.
    pub fn pixels(&self) -> usize {
        self.oh() * self.ow()
    }
    /// Rows of an image's column matrix: c·k·k, ordered like a PyTorch weight's (c, ky, kx).
    pub fn row_len(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Values in one input image.
    pub fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }
    /// Whether the column matrix is the image itself (1×1 kernel, stride 1, no padding).
    pub fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.padding == 0
    }
    /// The output columns `ox` whose input column `ox·stride + kx − padding` lies inside the
    /// image, as a half-open range.
    pub(crate) fn valid_ox(&self, kx: usize) -> (usize, usize) {
        let ow = self.ow();
        // ox·s + kx ≥ p  ⇔  ox ≥ ⌈(p − kx) / s⌉
        let lo = self
            .padding
            .saturating_sub(kx)
            .div_ceil(self.stride)
            .min(ow);
        // ox·s + kx − p ≤ w − 1  ⇔  ox ≤ (w − 1 + p − kx) / s
        let hi = match (self.w + self.padding).checked_sub(kx + 1) {
            Some(top) => (top / self.stride + 1).min(ow),
            None => 0,
        };
        (lo, hi.max(lo))
    }
}

simd_kernel! {
/// Writes image `x` ([c, h, w]) as its column matrix into `dst`: entry (row r, pixel p) at
/// `dst[r * row_stride + p]`. Every entry in those ranges is written (zeros for padding).
pub fn im2col_into<T: CpuFloat>(g: &ConvGeometry, x: &[T], dst: &mut [T], row_stride: usize) -> () {
    let (oh, ow, k, s) = (g.oh(), g.ow(), g.k, g.stride);
    for c in 0..g.c {
        for ky in 0..k {
            for kx in 0..k {
                let r = (c * k + ky) * k + kx;
                let row = &mut dst[r * row_stride..][..oh * ow];
                let (lo, hi) = g.valid_ox(kx);
                for oy in 0..oh {
                    let out = &mut row[oy * ow..][..ow];
                    let Some(iy) = (oy * s + ky).checked_sub(g.padding).filter(|&iy| iy < g.h)
                    else {
                        out.fill(T::default());
                        continue;
                    };
                    out[..lo].fill(T::default());
                    out[hi..].fill(T::default());
                    if lo < hi {
                        let src = &x[(c * g.h + iy) * g.w..][..g.w];
                        let ix0 = lo * s + kx - g.padding;
                        if s == 1 {
                            out[lo..hi].copy_from_slice(&src[ix0..ix0 + hi - lo]);
                        } else {
                            for (j, v) in out[lo..hi].iter_mut().enumerate() {
                                *v = src[ix0 + j * s];
                            }
                        }
                    }
                }
            }
        }
    }
}
}

simd_kernel! {
/// Adds column matrix `cols` (entry (r, p) at `cols[r * row_stride + p]`) back into image
/// `dx` ([c, h, w]): the adjoint of [`im2col_into`]. Each pixel receives its terms in
/// (c, ky, kx, oy, ox) order, so sums do not depend on threads or batch layout.
pub fn col2im_add<T: CpuFloat>(
    g: &ConvGeometry,
    cols: &[T],
    row_stride: usize,
    dx: &mut [T],
) -> () {
    let (oh, ow, k, s) = (g.oh(), g.ow(), g.k, g.stride);
    for c in 0..g.c {
        for ky in 0..k {
            for kx in 0..k {
                let r = (c * k + ky) * k + kx;
                let row = &cols[r * row_stride..][..oh * ow];
                let (lo, hi) = g.valid_ox(kx);
                if lo >= hi {
                    continue;
                }
                for oy in 0..oh {
                    let Some(iy) = (oy * s + ky).checked_sub(g.padding).filter(|&iy| iy < g.h)
                    else {
                        continue;
                    };
                    let src = &row[oy * ow + lo..oy * ow + hi];
                    let dst = &mut dx[(c * g.h + iy) * g.w..][..g.w];
                    let ix0 = lo * s + kx - g.padding;
                    if s == 1 {
                        for (d, &v) in dst[ix0..ix0 + hi - lo].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (j, &v) in src.iter().enumerate() {
                            dst[ix0 + j * s] += v;
                        }
                    }
                }
            }
        }
    }
}
}

simd_kernel! {
/// Writes image `x` ([c, h, w]) as its transposed column matrix into `dst`: the receptive
/// field of pixel p (entries in (c, ky, kx) order) at `dst[p * row_len ..][..row_len]`.
///
/// The weight gradient multiplies by this layout: the gemm then reads it column by column
/// without first transposing it into its packing buffer.
pub fn im2col_t_into<T: CpuFloat>(g: &ConvGeometry, x: &[T], dst: &mut [T]) -> () {
    let (oh, ow, k, s, rl) = (g.oh(), g.ow(), g.k, g.stride, g.row_len());
    for oy in 0..oh {
        for ox in 0..ow {
            let row = &mut dst[(oy * ow + ox) * rl..][..rl];
            let ix0 = (ox * s) as isize - g.padding as isize;
            let inside = ix0 >= 0 && ix0 as usize + k <= g.w;
            for c in 0..g.c {
                for ky in 0..k {
                    let d = &mut row[(c * k + ky) * k..][..k];
                    let Some(iy) = (oy * s + ky).checked_sub(g.padding).filter(|&iy| iy < g.h)
                    else {
                        d.fill(T::zero());
                        continue;
                    };
                    let src = &x[(c * g.h + iy) * g.w..][..g.w];
                    if inside {
                        d.copy_from_slice(&src[ix0 as usize..ix0 as usize + k]);
                    } else {
                        for (kx, v) in d.iter_mut().enumerate() {
                            let ix = ix0 + kx as isize;
                            *v = if ix >= 0 && (ix as usize) < g.w {
                                src[ix as usize]
                            } else {
                                T::zero()
                            };
                        }
                    }
                }
            }
        }
    }
}
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

    /// The straightforward loops for one image, in the (c, ky, kx, oy, ox) order.
    fn naive(g: &ConvGeometry, x: &[f32], cols: &[f32], rs: usize) -> (Vec<f32>, Vec<f32>) {
        let (oh, ow) = (g.oh(), g.ow());
        let mut out = vec![f32::NAN; g.row_len() * rs];
        let mut back = vec![0f32; g.image_len()];
        for c in 0..g.c {
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let r = (c * g.k + ky) * g.k + kx;
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let e = r * rs + oy * ow + ox;
                            match source(g, oy, ox, ky, kx) {
                                Some((iy, ix)) => {
                                    let p = (c * g.h + iy) * g.w + ix;
                                    out[e] = x[p];
                                    back[p] += cols[e];
                                }
                                None => out[e] = 0.0,
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
            (3, 2, 1, 8, 8),
            (1, 2, 0, 4, 4),
            (1, 1, 0, 3, 5),
            (5, 2, 2, 9, 8),
            (3, 1, 0, 4, 3),
            (3, 1, 1, 1, 1),
            (3, 2, 1, 1, 2),
            (7, 2, 3, 4, 5),
        ] {
            let g = ConvGeometry {
                n: 1,
                c: 3,
                h,
                w,
                k,
                stride,
                padding,
            };
            // A slab wider than one image: entries outside this image's columns stay as they were.
            let rs = g.pixels() + 3;
            let x: Vec<f32> = (0..g.image_len())
                .map(|i| ((i as f32) * 0.37).sin())
                .collect();
            let cols: Vec<f32> = (0..g.row_len() * rs)
                .map(|i| ((i as f32) * 0.13).cos() * 1e3f32.powi((i % 3) as i32 - 1))
                .collect();
            let (want_cols, want_back) = naive(&g, &x, &cols, rs);
            let mut got = vec![f32::NAN; g.row_len() * rs];
            im2col_into(&g, &x, &mut got, rs);
            for (i, (a, b)) in got.iter().zip(&want_cols).enumerate() {
                assert!(
                    a.to_bits() == b.to_bits(),
                    "im2col {g:?} entry {i}: {a} vs {b}"
                );
            }
            let mut t = vec![f32::NAN; g.pixels() * g.row_len()];
            im2col_t_into(&g, &x, &mut t);
            for r in 0..g.row_len() {
                for p in 0..g.pixels() {
                    let (a, b) = (t[p * g.row_len() + r], want_cols[r * rs + p]);
                    assert!(a.to_bits() == b.to_bits(), "im2col_t {g:?} ({r}, {p})");
                }
            }
            let mut back = vec![0f32; g.image_len()];
            col2im_add(&g, &cols, rs, &mut back);
            assert!(
                back.iter()
                    .zip(&want_back)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "col2im {g:?}"
            );
        }
    }
}
