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

/// Rows `r0 .. r1` of [`col2im_add`] for f32 with AVX-512: `cols`' row i is column-matrix row
/// `r0 + i`. Adding all rows in ascending bands gives [`col2im_add`]'s bits (each pixel gets
/// at most one term per row, in row order); each stride-1 run is added 16 lanes at a time with
/// masked loads and stores, so the short runs of small maps cost a few instructions instead
/// of a loop with a remainder. Needs AVX-512 ([`super::cpu_float::kernel_level`]).
pub fn col2im_add_rows_f32(
    g: &ConvGeometry,
    cols: &[f32],
    row_stride: usize,
    (r0, r1): (usize, usize),
    dx: &mut [f32],
) {
    assert!(super::cpu_float::kernel_level() == super::cpu_float::KernelLevel::Avx512);
    assert!(r0 <= r1 && r1 <= g.row_len() && dx.len() >= g.image_len());
    if r0 == r1 {
        return;
    }
    assert!(cols.len() >= (r1 - r0 - 1) * row_stride + g.pixels());
    // SAFETY: AVX-512 checked; every run read is inside row r − r0's pixels of cols and every
    // run written is inside row iy of channel c of dx (valid_ox keeps ix in 0..w), by the
    // asserts.
    unsafe { col2im_add_avx512(g, cols, row_stride, (r0, r1), dx) }
}

/// [`col2im_add_rows_f32`]'s loops.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn col2im_add_avx512(
    g: &ConvGeometry,
    cols: &[f32],
    row_stride: usize,
    (r0, r1): (usize, usize),
    dx: &mut [f32],
) {
    use std::arch::x86_64::*;
    let (oh, ow, k, s) = (g.oh(), g.ow(), g.k, g.stride);
    let (src, dst) = (cols.as_ptr(), dx.as_mut_ptr());
    for r in r0..r1 {
        let (c, ky, kx) = (r / (k * k), r / k % k, r % k);
        let (lo, hi) = g.valid_ox(kx);
        if lo >= hi {
            continue;
        }
        let ix0 = lo * s + kx - g.padding;
        for oy in 0..oh {
            let Some(iy) = (oy * s + ky).checked_sub(g.padding).filter(|&iy| iy < g.h) else {
                continue;
            };
            let (from, to) = (
                (r - r0) * row_stride + oy * ow + lo,
                (c * g.h + iy) * g.w + ix0,
            );
            if s != 1 {
                for j in 0..hi - lo {
                    // SAFETY: the caller's bounds: pixel lo + j of the row, input column
                    // ix0 + s·j < w.
                    unsafe { *dst.add(to + s * j) += *src.add(from + j) };
                }
                continue;
            }
            let mut done = 0;
            while done < hi - lo {
                let n = (hi - lo - done).min(16);
                let mask: __mmask16 = ((1u32 << n) - 1) as u16;
                // SAFETY: the caller's bounds: lanes done .. done + n of the run.
                unsafe {
                    let d = dst.add(to + done);
                    let v = _mm512_maskz_loadu_ps(mask, src.add(from + done));
                    let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, d), v);
                    _mm512_mask_storeu_ps(d, mask, sum);
                }
                done += n;
            }
        }
    }
}

// Off x86-64 the kernel level is never AVX-512, so this is never called.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn col2im_add_avx512(
    _: &ConvGeometry,
    _: &[f32],
    _: usize,
    _: (usize, usize),
    _: &mut [f32],
) {
    unreachable!("no AVX-512 off x86-64")
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

    /// The straightforward loops for one image, in the (c, ky, kx, oy, ox) order, the column
    /// matrix `cols` added onto the image `start`.
    fn naive(
        g: &ConvGeometry,
        x: &[f32],
        (cols, rs): (&[f32], usize),
        start: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let (oh, ow) = (g.oh(), g.ow());
        let mut out = vec![f32::NAN; g.row_len() * rs];
        let mut back = start.to_vec();
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
            // Rows of more than one 16-lane vector, and ends inside one.
            (3, 1, 1, 5, 20),
            (3, 1, 1, 3, 33),
            (5, 1, 2, 4, 17),
            (3, 1, 0, 3, 18),
            (3, 2, 1, 5, 40),
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
            let (want_cols, want_back) = naive(&g, &x, (&cols, rs), &vec![0.0; g.image_len()]);
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
            // Onto a nonzero image, so that the order of the adds matters: whole, and (where
            // the CPU has AVX-512) the vectorized loop in ascending bands of 5 rows.
            let start: Vec<f32> = (0..g.image_len())
                .map(|i| (i as f32 * 0.29).cos())
                .collect();
            let (_, want) = naive(&g, &x, (&cols, rs), &start);
            let mut whole = start.clone();
            col2im_add(&g, &cols, rs, &mut whole);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&whole), bits(&want), "col2im onto an image {g:?}");
            if crate::kernels::cpu_float::kernel_level()
                != crate::kernels::cpu_float::KernelLevel::Avx512
            {
                continue;
            }
            let mut fast = start;
            for r0 in (0..g.row_len()).step_by(5) {
                let r1 = (r0 + 5).min(g.row_len());
                col2im_add_rows_f32(&g, &cols[r0 * rs..], rs, (r0, r1), &mut fast);
            }
            assert!(bits(&fast) == bits(&want), "col2im f32 {g:?}");
        }
    }
}
