//! im2col and its adjoint col2im for one image, in the layout the CPU convolution multiplies:
//! rows are receptive-field entries (c, ky, kx), as in a PyTorch weight's [out, c·k·k] view,
//! columns are output pixels (oy, ox).
//!
//! With that layout `weight · cols` is the image's output already in NCHW order, so no
//! transpose follows the gemm, and several images can sit side by side in one column slab
//! (`row_stride` > pixels) so the gemm's inner dimension stays wide on small late-stage maps.

use super::cpu_float::{CpuFloat, simd_kernel};

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
    // Measured on an Intel Xeon (AVX2 kernels, 2 threads, batch 64): 8→8 at 32×32 0.83 → 0.78
    // ms, 32→32 at 8×8 0.80 → 0.53 ms, 8→16 stride 2 0.73 → 0.46 ms; a 1×1 stride-2 kernel
    // without padding reads a quarter of the pixels, so it gathers them directly.
    if g.padding > 0 {
        return im2col_phased(g, x, dst, row_stride);
    }
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
    // At stride 1 (Intel Xeon, AVX2 kernels, as above): 8→8 at 32×32 0.96 → 0.86 ms, 32→32 at
    // 8×8 0.77 → 0.55 ms. At stride 2 copying the phases in and out cost what the runs saved
    // (8→16 0.73 → 0.75 ms; 1×1 0.11 → 0.23 ms), so strided runs add in place.
    if g.stride == 1 && g.padding > 0 {
        return col2im_phased(g, cols, row_stride, dx);
    }
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

/// One channel of an image, zero-bordered by the padding and split into its stride × stride
/// phases (phase (a, b) holds bordered rows a, a + s, … and columns b, b + s, …), so that every
/// run of a column-matrix row, at any stride, is one contiguous run of one phase: no range
/// checks, no zero fills, no strided gather and no library call per short run. im2col and
/// col2im were 22% of the width-0.125 train step on the AVX2 path (a `memmove` call for each
/// run of 4 to 32 values, a scalar gather at stride 2).
#[derive(Debug, Clone, Copy)]
struct Phases {
    g: ConvGeometry,
    /// Rows of each phase.
    rows: usize,
    /// Columns of each phase.
    cols: usize,
}

impl Phases {
    #[inline(always)]
    fn of(g: &ConvGeometry) -> Self {
        let s = g.stride;
        Phases {
            g: *g,
            rows: (g.h + 2 * g.padding).div_ceil(s),
            cols: (g.w + 2 * g.padding).div_ceil(s),
        }
    }

    /// Values of one channel's phases.
    #[inline(always)]
    fn len(&self) -> usize {
        self.g.stride * self.g.stride * self.rows * self.cols
    }

    /// Where tap (ky, kx) of output pixel (0, 0) reads; pixel (oy, ox) reads `oy·cols + ox`
    /// further on (bordered row oy·s + ky is row oy + ky / s of the phases of row ky % s).
    #[inline(always)]
    fn tap(&self, ky: usize, kx: usize) -> usize {
        let s = self.g.stride;
        (((ky % s) * s + kx % s) * self.rows + ky / s) * self.cols + kx / s
    }

    /// Where input pixel (iy, ix) of the channel lies.
    #[inline(always)]
    fn pixel(&self, iy: usize, ix: usize) -> usize {
        let pad = self.g.padding;
        self.tap(iy + pad, ix + pad)
    }

    /// Writes channel `map` ([h, w]) into its pixels' places in `dst` (`len()` values). The
    /// other places are never written: they keep the zeros `dst` was made with, or in
    /// [`col2im_phased`] the terms that fell on the border, which are never read.
    #[inline(always)]
    fn fill<T: CpuFloat>(&self, map: &[T], dst: &mut [T]) {
        let (w, s) = (self.g.w, self.g.stride);
        for (iy, src) in map.chunks_exact(w).enumerate() {
            if s == 1 {
                dst[self.pixel(iy, 0)..][..w].copy_from_slice(src);
                continue;
            }
            for (first, at) in self.row_phases(iy) {
                for (d, &v) in dst[at..].iter_mut().zip(src.iter().skip(first).step_by(s)) {
                    *d = v;
                }
            }
        }
    }

    /// Copies the channel's pixels from `src` (`len()` values) back into `map` ([h, w]), at
    /// stride 1 (the only stride [`col2im_phased`] runs at).
    #[inline(always)]
    fn read<T: CpuFloat>(&self, src: &[T], map: &mut [T]) {
        assert!(self.g.stride == 1, "phases are read back at stride 1 only");
        for (iy, out) in map.chunks_exact_mut(self.g.w).enumerate() {
            out.copy_from_slice(&src[self.pixel(iy, 0)..][..self.g.w]);
        }
    }

    /// For input row `iy`, each column phase's first pixel column and where it lies: the
    /// columns first, first + s, … of the row are consecutive there.
    #[inline(always)]
    fn row_phases(&self, iy: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.g.stride.min(self.g.w)).map(move |first| (first, self.pixel(iy, first)))
    }
}

/// [`im2col_into`] through each channel's [`Phases`]: the zeros are the padding values it
/// writes, so the result is the same copy.
#[inline(always)]
fn im2col_phased<T: CpuFloat>(g: &ConvGeometry, x: &[T], dst: &mut [T], row_stride: usize) {
    let (oh, ow, k) = (g.oh(), g.ow(), g.k);
    let phases = Phases::of(g);
    let mut copy = vec![T::default(); phases.len()];
    for c in 0..g.c {
        phases.fill(&x[c * g.h * g.w..][..g.h * g.w], &mut copy);
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut dst[((c * k + ky) * k + kx) * row_stride..][..oh * ow];
                let (src, pw) = (&copy[phases.tap(ky, kx)..], phases.cols);
                match ow {
                    4 => copy_runs::<T, 4>(src, pw, row),
                    8 => copy_runs::<T, 8>(src, pw, row),
                    16 => copy_runs::<T, 16>(src, pw, row),
                    32 => copy_runs::<T, 32>(src, pw, row),
                    _ => {
                        for (oy, out) in row.chunks_exact_mut(ow).enumerate() {
                            out.copy_from_slice(&src[oy * pw..][..ow]);
                        }
                    }
                }
            }
        }
    }
}

/// [`col2im_add`] through each channel's [`Phases`] of `dx`: every run of a column-matrix
/// row is added at once, and terms that fall on the padding land on the border, which is
/// dropped. Each pixel still receives its terms in (ky, kx) order, one per row, onto its own
/// value, so the sums are [`col2im_add`]'s.
#[inline(always)]
fn col2im_phased<T: CpuFloat>(g: &ConvGeometry, cols: &[T], row_stride: usize, dx: &mut [T]) {
    let (oh, ow, k) = (g.oh(), g.ow(), g.k);
    let phases = Phases::of(g);
    let mut copy = vec![T::default(); phases.len()];
    for c in 0..g.c {
        let channel = &mut dx[c * g.h * g.w..][..g.h * g.w];
        phases.fill(channel, &mut copy);
        for ky in 0..k {
            for kx in 0..k {
                let row = &cols[((c * k + ky) * k + kx) * row_stride..][..oh * ow];
                let (dst, pw) = (&mut copy[phases.tap(ky, kx)..], phases.cols);
                match ow {
                    4 => add_runs::<T, 4>(row, pw, dst),
                    8 => add_runs::<T, 8>(row, pw, dst),
                    16 => add_runs::<T, 16>(row, pw, dst),
                    32 => add_runs::<T, 32>(row, pw, dst),
                    _ => {
                        for (oy, src) in row.chunks_exact(ow).enumerate() {
                            for (d, &v) in dst[oy * pw..][..ow].iter_mut().zip(src) {
                                *d += v;
                            }
                        }
                    }
                }
            }
        }
        phases.read(&copy, channel);
    }
}

/// `out`'s runs of `N` from rows of `src` `bw` apart; `N` known, so each copy is a few moves.
#[inline(always)]
fn copy_runs<T: Copy, const N: usize>(src: &[T], bw: usize, out: &mut [T]) {
    for (oy, run) in out.chunks_exact_mut(N).enumerate() {
        let from: &[T; N] = src[oy * bw..][..N].try_into().expect("N values");
        run.copy_from_slice(from);
    }
}

/// Adds `row`'s runs of `N` onto rows of `dst` `bw` apart, lane by lane.
#[inline(always)]
fn add_runs<T: CpuFloat, const N: usize>(row: &[T], bw: usize, dst: &mut [T]) {
    for (oy, run) in row.chunks_exact(N).enumerate() {
        let run: &[T; N] = run.try_into().expect("N values");
        let to: &mut [T; N] = (&mut dst[oy * bw..][..N]).try_into().expect("N values");
        // Through a local copy, so that the compiler sees no overlap and adds whole vectors.
        let mut sum = *to;
        for (d, &v) in sum.iter_mut().zip(run) {
            *d += v;
        }
        *to = sum;
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
            // im2col through the phases (any padded layer) and col2im through them (stride 1):
            // runs of 4, 8, 16 and 32 (fixed lengths) and others, strides 1, 2 and 3, odd
            // bordered sizes, kernels wider than their padding, 1×1 kernels with padding;
            // and unpadded strided layers, which gather directly.
            (3, 2, 1, 7, 7),
            (1, 2, 1, 5, 5),
            (3, 3, 1, 6, 6),
            (3, 2, 1, 16, 16),
            (1, 2, 0, 32, 32),
            (3, 2, 1, 64, 64),
            (3, 3, 1, 7, 7),
            (3, 3, 0, 8, 9),
            (1, 2, 0, 5, 5),
            (3, 2, 0, 7, 7),
            (3, 1, 1, 4, 4),
            (3, 1, 1, 8, 8),
            (3, 1, 1, 2, 16),
            (3, 1, 1, 3, 32),
            (5, 1, 2, 4, 8),
            (3, 1, 2, 4, 6),
            (1, 1, 1, 2, 2),
            (3, 1, 1, 6, 7),
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
                .map(|i| {
                    if i % 7 == 3 {
                        -0.0
                    } else {
                        (i as f32 * 0.29).cos()
                    }
                })
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
