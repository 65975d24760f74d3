//! BatchNorm, optionally fused with the ReLU after it, as CPU custom ops with a hand-written
//! backward.
//!
//! Built from candle ops, a train-mode BatchNorm was a dozen broadcast passes in f64 plus a
//! transpose, and its ReLU three more; together they took about a quarter of a PreActResNet
//! step. Here the forward is one pass for the statistics (f64, as PyTorch's CPU kernel) and one
//! for the output, the backward one reduction and one pass. The arithmetic is that of the candle
//! version: train mode `((x − mean)·(w·inv) + b)` in f64, eval mode `((x − mean)·(w·inv)) + b`
//! in the tensor's type, ReLU's gradient 0 at 0; only the order of the f64 sums differs.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_float::{CpuFloat, KernelLevel, contiguous, kernel_level, par_filled, simd_kernel};

/// Per-channel affine map of a BatchNorm, as f64 values (exact copies of f32 values in eval
/// mode).
#[derive(Debug, Clone)]
pub struct NormParams {
    /// Subtracted mean.
    pub mean: Vec<f64>,
    /// `w · inv`, the factor after centring.
    pub scale: Vec<f64>,
    /// `b`, added last.
    pub shift: Vec<f64>,
    /// `1 / sqrt(var + eps)`.
    pub inv: Vec<f64>,
    /// Train mode: arithmetic in f64 and gradients through the batch statistics.
    pub train: bool,
    /// Whether a ReLU follows.
    pub relu: bool,
}

/// [n, c, rest…] as (n, c, product of rest).
fn ncs(dims: &[usize]) -> (usize, usize, usize) {
    (dims[0], dims[1], dims[2..].iter().product())
}

/// Batch mean and biased variance per channel of [n, c, …] in f64 (two passes): a [2, c] f64
/// tensor.
#[derive(Debug, Clone, Copy)]
pub struct BatchStats;

/// Calls `f(lane, values)` for each index `i` in order with the `N` slices' values at `i`,
/// `lane` the one of eight interleaved lanes that `i` is summed into (the tail into the first
/// lanes): a fixed summation order, which [`lanes_simd`] keeps with the eight lanes in SIMD
/// registers.
#[inline(always)]
fn each_lane<T: Copy, const N: usize>(slices: [&[T]; N], mut f: impl FnMut(usize, [T; N])) {
    let len = slices.first().map_or(0, |s| s.len());
    assert!(slices.iter().all(|s| s.len() == len));
    let full = len - len % 8;
    for i in (0..full).step_by(8) {
        let group: [&[T; 8]; N] = slices.map(|s| s[i..i + 8].try_into().expect("eight values"));
        for l in 0..8 {
            f(l, group.map(|g| g[l]));
        }
    }
    let tails = slices.map(|s| &s[full..]);
    for l in 0..len - full {
        f(l, tails.map(|t| t[l]));
    }
}

/// Adds `f(v)` for every value `v` of `values` into eight interleaved f64 lanes, as
/// [`each_lane`] orders them.
#[inline(always)]
fn add_lanes<T: Copy>(lanes: &mut [f64; 8], values: &[T], f: impl Fn(T) -> f64) {
    each_lane([values], |l, [v]| lanes[l] += f(v));
}

/// The lanes' total, in a fixed pairwise order.
fn total(l: &[f64; 8]) -> f64 {
    ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

/// [`each_lane`]'s sums over f32 data with its eight lanes in SIMD registers (one AVX-512
/// register, or two AVX2 ones): each lane gets the same f64 operations in the same order, so
/// the same bits. The compiler keeps the scalar loop scalar (it does not vectorise a
/// reduction), which made the backward's sums 5% of a width-1 train step on an Intel Xeon
/// (AVX-512), and `channel_grad_sums` 10% of the width-0.125 step on the AVX2 path. Each
/// function takes the whole groups of eight of its slices where `level` has SIMD copies (none
/// at the baseline level) and returns how many values that is; the caller adds the rest with
/// [`each_lane`]. `level` is [`kernel_level`] outside tests, which also check the AVX2 copies
/// on AVX-512 CPUs.
mod lanes_simd {
    use super::KernelLevel;

    /// `lanes += x` (as f64).
    pub(super) fn add_values(level: KernelLevel, lanes: &mut [f64; 8], x: &[f32]) -> usize {
        // SAFETY: each copy runs only at a level the CPU has (`checked`).
        match checked(level) {
            KernelLevel::Avx512 => unsafe { x86::add_values(lanes, x) },
            KernelLevel::Avx2 => unsafe { x86_avx2::add_values(lanes, x) },
            KernelLevel::Baseline => 0,
        }
    }

    /// `lanes += (x − mean)²` (f64, the square rounded before the sum).
    pub(super) fn add_squares(
        level: KernelLevel,
        lanes: &mut [f64; 8],
        x: &[f32],
        mean: f64,
    ) -> usize {
        // SAFETY: as above.
        match checked(level) {
            KernelLevel::Avx512 => unsafe { x86::add_squares(lanes, x, mean) },
            KernelLevel::Avx2 => unsafe { x86_avx2::add_squares(lanes, x, mean) },
            KernelLevel::Baseline => 0,
        }
    }

    /// `lg += g'` and `lgx += g'·(x − mean)`, g' the upstream gradient `g` where the ReLU
    /// passed (`r > 0`), else `g · 0` (as `masked`).
    pub(super) fn add_grad_sums(
        level: KernelLevel,
        sums: (&mut [f64; 8], &mut [f64; 8]),
        data: (&[f32], &[f32], &[f32]),
        relu: bool,
        mean: f64,
    ) -> usize {
        // SAFETY: as above.
        match checked(level) {
            KernelLevel::Avx512 => unsafe { x86::add_grad_sums(sums, data, relu, mean) },
            KernelLevel::Avx2 => unsafe { x86_avx2::add_grad_sums(sums, data, relu, mean) },
            KernelLevel::Baseline => 0,
        }
    }

    /// `level`, which must not exceed what the CPU has.
    fn checked(level: KernelLevel) -> KernelLevel {
        assert!(level <= super::super::cpu_float::detected_kernel_level());
        level
    }

    #[cfg(not(target_arch = "x86_64"))]
    use x86 as x86_avx2;

    #[cfg(not(target_arch = "x86_64"))]
    mod x86 {
        // Off x86-64 the kernel level is always the baseline, so these are never called.
        pub(super) unsafe fn add_values(_: &mut [f64; 8], _: &[f32]) -> usize {
            unreachable!("no SIMD copies off x86-64")
        }
        pub(super) unsafe fn add_squares(_: &mut [f64; 8], _: &[f32], _: f64) -> usize {
            unreachable!("no SIMD copies off x86-64")
        }
        pub(super) unsafe fn add_grad_sums(
            _: (&mut [f64; 8], &mut [f64; 8]),
            _: (&[f32], &[f32], &[f32]),
            _: bool,
            _: f64,
        ) -> usize {
            unreachable!("no SIMD copies off x86-64")
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use std::arch::x86_64::*;

        /// Eight f32 values at `v[i..]` as f64.
        ///
        /// # Safety
        /// AVX-512F is available and `i + 8 <= v.len()`.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load(v: &[f32], i: usize) -> __m512d {
            debug_assert!(i + 8 <= v.len());
            // SAFETY: i + 8 <= v.len() (the contract).
            _mm512_cvtps_pd(unsafe { _mm256_loadu_ps(v.as_ptr().add(i)) })
        }

        /// The lanes in registers, `acc = f(acc, i)` for each whole group of eight of `len`
        /// values (starting at `i`), stored back; how many values that is.
        ///
        /// # Safety
        /// AVX-512F is available.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn over_groups<const L: usize>(
            lanes: [&mut [f64; 8]; L],
            len: usize,
            mut f: impl FnMut([__m512d; L], usize) -> [__m512d; L],
        ) -> usize {
            let full = len - len % 8;
            // SAFETY: each lane array is eight f64.
            let mut acc = lanes
                .each_ref()
                .map(|l| unsafe { _mm512_loadu_pd(l.as_ptr()) });
            for i in (0..full).step_by(8) {
                acc = f(acc, i);
            }
            for (l, a) in lanes.into_iter().zip(acc) {
                // SAFETY: as above.
                unsafe { _mm512_storeu_pd(l.as_mut_ptr(), a) };
            }
            full
        }

        /// `lanes += x` (as f64).
        ///
        /// # Safety
        /// AVX-512F is available.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn add_values(lanes: &mut [f64; 8], x: &[f32]) -> usize {
            // SAFETY: i + 8 <= x.len() in whole groups; AVX-512F (the contract).
            unsafe { over_groups([lanes], x.len(), |[a], i| [_mm512_add_pd(a, load(x, i))]) }
        }

        /// `lanes += (x − mean)²` (f64, the square rounded before the sum).
        ///
        /// # Safety
        /// AVX-512F is available.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn add_squares(lanes: &mut [f64; 8], x: &[f32], mean: f64) -> usize {
            let m = _mm512_set1_pd(mean);
            // SAFETY: as in add_values.
            unsafe {
                over_groups([lanes], x.len(), |[a], i| {
                    let d = _mm512_sub_pd(load(x, i), m);
                    [_mm512_add_pd(a, _mm512_mul_pd(d, d))]
                })
            }
        }

        /// `lg += g'` and `lgx += g'·(x − mean)`, g' the upstream gradient `g` where the ReLU
        /// passed (`r > 0`), else `g · 0` (as `masked`).
        ///
        /// # Safety
        /// AVX-512F is available and the three slices have one length.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn add_grad_sums(
            (lg, lgx): (&mut [f64; 8], &mut [f64; 8]),
            (x, g, r): (&[f32], &[f32], &[f32]),
            relu: bool,
            mean: f64,
        ) -> usize {
            assert!(g.len() == x.len() && r.len() == x.len());
            let m = _mm512_set1_pd(mean);
            let zero = _mm512_setzero_ps();
            // SAFETY: i + 8 <= the slices' length in whole groups; AVX-512F (the contract).
            unsafe {
                over_groups([lg, lgx], x.len(), |[a, b], i| {
                    let gv = _mm256_loadu_ps(g.as_ptr().add(i));
                    let gv = if relu {
                        // In a 512-bit register, lanes 8.. unused: AVX-512F has no 256-bit masks.
                        let (g16, r16) = (
                            _mm512_castps256_ps512(gv),
                            _mm512_castps256_ps512(_mm256_loadu_ps(r.as_ptr().add(i))),
                        );
                        let pass = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(r16, zero);
                        let kept = _mm512_mask_blend_ps(pass, _mm512_mul_ps(g16, zero), g16);
                        _mm512_castps512_ps256(kept)
                    } else {
                        gv
                    };
                    let gd = _mm512_cvtps_pd(gv);
                    let d = _mm512_sub_pd(load(x, i), m);
                    [_mm512_add_pd(a, gd), _mm512_add_pd(b, _mm512_mul_pd(gd, d))]
                })
            }
        }
    }

    /// The AVX2 copies: the eight lanes as two 256-bit registers (lanes 0-3 and 4-7), each
    /// lane with [`x86`]'s operations.
    #[cfg(target_arch = "x86_64")]
    mod x86_avx2 {
        use std::arch::x86_64::*;

        /// Two halves of eight lanes.
        type Eight = [__m256d; 2];

        /// The two halves of eight f32 lanes as f64.
        #[inline]
        #[target_feature(enable = "avx2")]
        fn widen(v: __m256) -> Eight {
            [
                _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)),
            ]
        }

        /// Eight f32 values at `v[i..]` as f64.
        ///
        /// # Safety
        /// AVX2 is available and `i + 8 <= v.len()`.
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn load(v: &[f32], i: usize) -> Eight {
            debug_assert!(i + 8 <= v.len());
            // SAFETY: i + 8 <= v.len() (the contract).
            widen(unsafe { _mm256_loadu_ps(v.as_ptr().add(i)) })
        }

        /// `f` on each half.
        #[inline]
        #[target_feature(enable = "avx2")]
        fn halves(a: Eight, b: Eight, f: impl Fn(__m256d, __m256d) -> __m256d) -> Eight {
            [f(a[0], b[0]), f(a[1], b[1])]
        }

        /// As [`x86`]'s `over_groups`, with the lanes in two registers each.
        ///
        /// # Safety
        /// AVX2 is available.
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn over_groups<const L: usize>(
            lanes: [&mut [f64; 8]; L],
            len: usize,
            mut f: impl FnMut([Eight; L], usize) -> [Eight; L],
        ) -> usize {
            let full = len - len % 8;
            // SAFETY: each lane array is eight f64.
            let mut acc = lanes.each_ref().map(|l| unsafe {
                [
                    _mm256_loadu_pd(l.as_ptr()),
                    _mm256_loadu_pd(l.as_ptr().add(4)),
                ]
            });
            for i in (0..full).step_by(8) {
                acc = f(acc, i);
            }
            for (l, [lo, hi]) in lanes.into_iter().zip(acc) {
                // SAFETY: as above.
                unsafe {
                    _mm256_storeu_pd(l.as_mut_ptr(), lo);
                    _mm256_storeu_pd(l.as_mut_ptr().add(4), hi);
                }
            }
            full
        }

        /// `lanes += x` (as f64).
        ///
        /// # Safety
        /// AVX2 is available.
        #[target_feature(enable = "avx2")]
        pub(super) unsafe fn add_values(lanes: &mut [f64; 8], x: &[f32]) -> usize {
            // SAFETY: i + 8 <= x.len() in whole groups; AVX2 (the contract).
            unsafe {
                over_groups([lanes], x.len(), |[a], i| {
                    [halves(a, load(x, i), |a, v| _mm256_add_pd(a, v))]
                })
            }
        }

        /// `lanes += (x − mean)²` (f64, the square rounded before the sum).
        ///
        /// # Safety
        /// AVX2 is available.
        #[target_feature(enable = "avx2")]
        pub(super) unsafe fn add_squares(lanes: &mut [f64; 8], x: &[f32], mean: f64) -> usize {
            let m = _mm256_set1_pd(mean);
            // SAFETY: as in add_values.
            unsafe {
                over_groups([lanes], x.len(), |[a], i| {
                    [halves(a, load(x, i), |a, v| {
                        let d = _mm256_sub_pd(v, m);
                        _mm256_add_pd(a, _mm256_mul_pd(d, d))
                    })]
                })
            }
        }

        /// `lg += g'` and `lgx += g'·(x − mean)`, g' the upstream gradient `g` where the ReLU
        /// passed (`r > 0`), else `g · 0` (as `masked`).
        ///
        /// # Safety
        /// AVX2 is available and the three slices have one length.
        #[target_feature(enable = "avx2")]
        pub(super) unsafe fn add_grad_sums(
            (lg, lgx): (&mut [f64; 8], &mut [f64; 8]),
            (x, g, r): (&[f32], &[f32], &[f32]),
            relu: bool,
            mean: f64,
        ) -> usize {
            assert!(g.len() == x.len() && r.len() == x.len());
            let m = _mm256_set1_pd(mean);
            let zero = _mm256_setzero_ps();
            // SAFETY: i + 8 <= the slices' length in whole groups; AVX2 (the contract).
            unsafe {
                over_groups([lg, lgx], x.len(), |[a, b], i| {
                    let gv = _mm256_loadu_ps(g.as_ptr().add(i));
                    let gv = if relu {
                        let rv = _mm256_loadu_ps(r.as_ptr().add(i));
                        let pass = _mm256_cmp_ps::<_CMP_GT_OQ>(rv, zero);
                        _mm256_blendv_ps(_mm256_mul_ps(gv, zero), gv, pass)
                    } else {
                        gv
                    };
                    let gd = widen(gv);
                    let d = halves(load(x, i), [m, m], |v, m| _mm256_sub_pd(v, m));
                    [
                        halves(a, gd, |a, g| _mm256_add_pd(a, g)),
                        halves(b, halves(gd, d, |g, d| _mm256_mul_pd(g, d)), |b, p| {
                            _mm256_add_pd(b, p)
                        }),
                    ]
                })
            }
        }
    }
}

simd_kernel! {
    /// Mean and biased variance of channel `ch` of [n, c, s] data.
    fn channel_stats<T: CpuFloat>(x: &[T], n: usize, c: usize, s: usize, ch: usize) -> (f64, f64) {
        let mut lanes = [0f64; 8];
        for i in 0..n {
            let b = &x[(i * c + ch) * s..][..s];
            let done = T::as_f32(b).map_or(0, |b| lanes_simd::add_values(kernel_level(), &mut lanes, b));
            add_lanes(&mut lanes, &b[done..], |v| v.to_f64());
        }
        let mean = total(&lanes) / (n * s) as f64;
        let mut lanes = [0f64; 8];
        for i in 0..n {
            let b = &x[(i * c + ch) * s..][..s];
            let done = T::as_f32(b).map_or(0, |b| lanes_simd::add_squares(kernel_level(), &mut lanes, b, mean));
            add_lanes(&mut lanes, &b[done..], |v| {
                let d = v.to_f64() - mean;
                d * d
            });
        }
        (mean, total(&lanes) / (n * s) as f64)
    }
}

fn batch_stats<T: CpuFloat>(x: &[T], (n, c, s): (usize, usize, usize)) -> Vec<f64> {
    let per: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| channel_stats(x, n, c, s, ch))
        .collect();
    per.iter()
        .map(|p| p.0)
        .chain(per.iter().map(|p| p.1))
        .collect()
}

impl CustomOp1 for BatchStats {
    fn name(&self) -> &'static str {
        "mixbench-batch-stats"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = l.shape().dims();
        if dims.len() < 2 {
            candle_core::bail!("batch statistics need [n, c, …], got {dims:?}");
        }
        let shape = ncs(dims);
        let v = match s {
            CpuStorage::F32(_) => batch_stats(contiguous::<f32>(self.name(), s, l, dims)?, shape),
            CpuStorage::F64(_) => batch_stats(contiguous::<f64>(self.name(), s, l, dims)?, shape),
            _ => candle_core::bail!("batch statistics: f32 or f64 only"),
        };
        Ok((CpuStorage::F64(v), Shape::from((2, shape.1))))
    }
}

/// Applies [`NormParams`] to `x` (args: x, weight, bias; the latter two for their gradients).
#[derive(Debug, Clone)]
pub struct NormApply(pub Arc<NormParams>);

/// `x · [x > 0]`, as the candle ReLU (negative inputs give −0).
#[inline(always)]
fn relu_if<T: CpuFloat>(on: bool, y: T) -> T {
    if !on || y > T::zero() {
        y
    } else {
        y * T::zero()
    }
}

simd_kernel! {
    /// One image's [c, s] block: `dst = relu?(affine(src))` per channel.
    fn apply_image<T: CpuFloat>(p: &NormParams, src: &[T], dst: &mut [T], s: usize) -> () {
        for (ch, (src, dst)) in src.chunks_exact(s).zip(dst.chunks_exact_mut(s)).enumerate() {
            let (mean, scale, shift) = (p.mean[ch], p.scale[ch], p.shift[ch]);
            if p.train {
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = relu_if(p.relu, T::from_f64((v.to_f64() - mean) * scale + shift));
                }
            } else {
                let (m, sc, sh) = (T::from_f64(mean), T::from_f64(scale), T::from_f64(shift));
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = relu_if(p.relu, (v - m) * sc + sh);
                }
            }
        }
    }
}

fn apply<T: CpuFloat>(p: &NormParams, x: &[T], (_, c, s): (usize, usize, usize)) -> Vec<T> {
    if s == 0 {
        return vec![T::zero(); x.len()];
    }
    par_filled(x.len(), c * s, |i, dst: &mut [T]| {
        apply_image(p, &x[i * c * s..][..dst.len()], dst, s)
    })
}

/// Gradients of [`NormApply`] w.r.t. x, weight and bias, concatenated (each only if asked).
/// Args: x, the upstream gradient, and the forward output (whose sign is the ReLU's mask).
#[derive(Debug, Clone)]
struct NormBackward {
    params: Arc<NormParams>,
    want: [bool; 3],
}

/// The upstream gradient where the ReLU passed its input (`out > 0`).
#[inline(always)]
fn masked<T: CpuFloat>(relu: bool, go: T, out: T) -> T {
    if !relu || out > T::zero() {
        go
    } else {
        go * T::zero()
    }
}

simd_kernel! {
    /// Σ g and Σ g·(x − mean) over channel `ch`, g the upstream gradient where the ReLU passed.
    fn channel_grad_sums<T: CpuFloat>(
        p: &NormParams,
        args: (&[T], &[T], &[T]),
        n: usize,
        c: usize,
        s: usize,
        ch: usize,
    ) -> (f64, f64) {
        let (x, gout, res) = args;
        let mean = p.mean[ch];
        let (mut lg, mut lgx) = ([0f64; 8], [0f64; 8]);
        for i in 0..n {
            let o = (i * c + ch) * s;
            let (xs, gs, rs) = (&x[o..o + s], &gout[o..o + s], &res[o..o + s]);
            let done = match (T::as_f32(xs), T::as_f32(gs), T::as_f32(rs)) {
                (Some(xs), Some(gs), Some(rs)) => {
                    lanes_simd::add_grad_sums(kernel_level(), (&mut lg, &mut lgx), (xs, gs, rs), p.relu, mean)
                }
                _ => 0,
            };
            let (xs, gs, rs) = (&xs[done..], &gs[done..], &rs[done..]);
            // Both sums in one pass over the data, each lane in the same order as two passes.
            each_lane([xs, gs, rs], |l, [x, g, r]| {
                let g = masked(p.relu, g, r).to_f64();
                lg[l] += g;
                lgx[l] += g * (x.to_f64() - mean);
            });
        }
        (total(&lg), total(&lgx))
    }
}

simd_kernel! {
    /// One image's input gradient ([c, s] blocks of x, upstream gradient, output, dx).
    fn image_grad_input<T: CpuFloat>(
        p: &NormParams,
        sums: &[(f64, f64)],
        count: f64,
        args: (&[T], &[T], &[T]),
        dst: &mut [T],
        s: usize,
    ) -> () {
        let (xs, gs, rs) = args;
        for (ch, dst) in dst.chunks_exact_mut(s).enumerate() {
            let r = ch * s..(ch + 1) * s;
            let (xs, gs, rs) = (&xs[r.clone()], &gs[r.clone()], &rs[r]);
            if p.train {
                let (sg, sgx) = sums[ch];
                let (mean, inv, scale) = (p.mean[ch], p.inv[ch], p.scale[ch]);
                // dx = w·inv·(g − mean(g) − x̂·mean(g·x̂)), x̂ = (x − mean)·inv.
                let (mg, mgx) = (sg / count, sgx * inv / count);
                for k in 0..s {
                    let xhat = (xs[k].to_f64() - mean) * inv;
                    let gv = masked(p.relu, gs[k], rs[k]).to_f64();
                    dst[k] = T::from_f64(scale * (gv - mg - xhat * mgx));
                }
            } else {
                let scale = T::from_f64(p.scale[ch]);
                for k in 0..s {
                    dst[k] = masked(p.relu, gs[k], rs[k]) * scale;
                }
            }
        }
    }
}

fn backward<T: CpuFloat>(
    nb: &NormBackward,
    (x, gout, res): (&[T], &[T], &[T]),
    (n, c, s): (usize, usize, usize),
) -> Vec<T> {
    let p = &*nb.params;
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| channel_grad_sums(p, (x, gout, res), n, c, s, ch))
        .collect();
    let count = (n * s) as f64;
    let mut out = Vec::new();
    if nb.want[0] {
        // The input gradient is the output's first part: built in place, never copied.
        let cs = c * s;
        out = match s {
            0 => vec![T::zero(); x.len()],
            _ => par_filled(x.len(), cs, |i, dst: &mut [T]| {
                let (at, len) = (i * cs, dst.len());
                let parts = (&x[at..][..len], &gout[at..][..len], &res[at..][..len]);
                image_grad_input(p, &sums, count, parts, dst, s)
            }),
        };
    }
    if nb.want[1] {
        out.extend(
            sums.iter()
                .zip(&p.inv)
                .map(|(s, inv)| T::from_f64(s.1 * inv)),
        );
    }
    if nb.want[2] {
        out.extend(sums.iter().map(|s| T::from_f64(s.0)));
    }
    out
}

impl CustomOp3 for NormBackward {
    fn name(&self) -> &'static str {
        "mixbench-batch-norm-backward"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
        sr: &CpuStorage,
        lr: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = lx.shape().dims();
        let shape = ncs(dims);
        let name = self.name();
        let v = match sx {
            CpuStorage::F32(_) => {
                let args = (
                    contiguous(name, sx, lx, dims)?,
                    contiguous(name, sg, lg, dims)?,
                    contiguous(name, sr, lr, dims)?,
                );
                f32::storage(backward(self, args, shape))
            }
            CpuStorage::F64(_) => {
                let args = (
                    contiguous(name, sx, lx, dims)?,
                    contiguous(name, sg, lg, dims)?,
                    contiguous(name, sr, lr, dims)?,
                );
                f64::storage(backward(self, args, shape))
            }
            _ => candle_core::bail!("batch norm: f32 or f64 only"),
        };
        let len = match &v {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            _ => 0,
        };
        Ok((v, Shape::from(len)))
    }
}

impl CustomOp3 for NormApply {
    fn name(&self) -> &'static str {
        "mixbench-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s: &CpuStorage,
        l: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = l.shape().dims();
        let shape = ncs(dims);
        if self.0.mean.len() != shape.1 {
            candle_core::bail!("batch norm: {} channels in {dims:?}", self.0.mean.len());
        }
        let v = match s {
            CpuStorage::F32(_) => {
                f32::storage(apply(&self.0, contiguous(self.name(), s, l, dims)?, shape))
            }
            CpuStorage::F64(_) => {
                f64::storage(apply(&self.0, contiguous(self.name(), s, l, dims)?, shape))
            }
            _ => candle_core::bail!("batch norm: f32 or f64 only"),
        };
        Ok((v, l.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let want = [x.track_op(), w.track_op(), b.track_op()];
        if !want.iter().any(|&t| t) {
            return Ok((None, None, None));
        }
        let op = NormBackward {
            params: self.0.clone(),
            want,
        };
        let flat = x.apply_op3_no_bwd(&grad.contiguous()?, res, &op)?;
        let mut at = 0;
        let mut take = |on: bool, like: &Tensor| -> Result<Option<Tensor>> {
            if !on {
                return Ok(None);
            }
            let len = like.elem_count();
            let t = flat.narrow(0, at, len)?.reshape(like.shape())?;
            at += len;
            Ok(Some(t))
        };
        Ok((take(want[0], x)?, take(want[1], w)?, take(want[2], b)?))
    }
}

/// Per-channel mean and biased variance of `x` ([n, c, …], CPU, f32 or f64), in f64.
pub fn batch_mean_var(x: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let v = x
        .contiguous()?
        .apply_op1_no_bwd(&BatchStats)?
        .to_vec2::<f64>()?;
    Ok((v[0].clone(), v[1].clone()))
}

/// Eval-mode parameters from the running statistics, computed in `T` step by step as the
/// candle ops `w · (1 / sqrt(var + eps))` do.
fn eval_params<T: CpuFloat>(
    rm: &Tensor,
    rv: &Tensor,
    w: &Tensor,
    eps: f64,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let (rm, rv, w) = (rm.to_vec1::<T>()?, rv.to_vec1::<T>()?, w.to_vec1::<T>()?);
    let inv: Vec<T> = rv
        .iter()
        .map(|&v| (v * T::one() + T::from_f64(eps)).rsqrt_stepwise())
        .collect();
    let scale = w
        .iter()
        .zip(&inv)
        .map(|(&w, &i)| (w * i).to_f64())
        .collect();
    Ok((
        rm.iter().map(|v| v.to_f64()).collect(),
        scale,
        inv.iter().map(|v| v.to_f64()).collect(),
    ))
}

/// Eval-mode [`NormParams`] (running statistics, arithmetic in the tensors' type).
pub fn eval_norm_params(
    rm: &Tensor,
    rv: &Tensor,
    w: &Tensor,
    b: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<NormParams> {
    let (mean, scale, inv) = match w.dtype() {
        DType::F32 => eval_params::<f32>(rm, rv, w, eps)?,
        DType::F64 => eval_params::<f64>(rm, rv, w, eps)?,
        d => candle_core::bail!("batch norm: f32 or f64 only, got {d:?}"),
    };
    Ok(NormParams {
        mean,
        scale,
        shift: b.to_dtype(DType::F64)?.to_vec1()?,
        inv,
        train: false,
        relu,
    })
}

/// Train-mode [`NormParams`] from the batch statistics (f64 throughout).
pub fn train_norm_params(
    mean: Vec<f64>,
    var: &[f64],
    w: &Tensor,
    b: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<NormParams> {
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let w = w.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    Ok(NormParams {
        mean,
        scale: w.iter().zip(&inv).map(|(w, i)| w * i).collect(),
        shift: b.to_dtype(DType::F64)?.to_vec1()?,
        inv,
        train: true,
        relu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` f32 values of both signs, different for each `seed`; with `special`, a third of
    /// them signed zeros, infinities, NaN or subnormals.
    fn values(len: usize, seed: usize, special: bool) -> Vec<f32> {
        let specials = [
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1e-40,
            -3.5,
        ];
        (0..len)
            .map(|i| match (i * 7 + seed * 13) % 23 {
                k if special && k < specials.len() && (i + seed).is_multiple_of(3) => specials[k],
                k => (k as f32 - 11.3) * 0.37 + (i as f32) * 1e-3,
            })
            .collect()
    }

    /// Each lane's bits, every NaN as one value: which NaN an x86 add of two NaNs returns
    /// depends on the operand order, which the compiler picks freely for a commutative add
    /// (even between two builds of the scalar loop); a NaN stops a training run anyway.
    fn bits(l: &[f64; 8]) -> [u64; 8] {
        l.map(|v| if v.is_nan() { u64::MAX } else { v.to_bits() })
    }

    /// The AVX-512 and AVX2 lane sums give [`each_lane`]'s scalar lanes bit for bit: lengths
    /// around whole groups of eight, the ReLU mask on and off, signed zeros, Inf and NaN in
    /// every operand. Each copy the CPU has runs, whatever `MIXBENCH_CPU_KERNELS` says.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn simd_lane_sums_give_the_scalar_lanes() {
        let detected = super::super::cpu_float::detected_kernel_level();
        let levels = [KernelLevel::Avx2, KernelLevel::Avx512];
        for level in levels.into_iter().filter(|&l| l <= detected) {
            lane_sums_at(level);
        }
        if detected < KernelLevel::Avx512 {
            eprintln!("no AVX-512 on this CPU: only the AVX2 lane sums ran");
        }
    }

    fn lane_sums_at(level: KernelLevel) {
        // Specials in one operand at a time, so that one NaN does not hide the other lanes;
        // means with all 53 bits, so that the products round.
        let cases = [
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ];
        for (len, (sx, sg, sr)) in [0, 1, 7, 8, 9, 16, 23, 24, 41, 1024]
            .into_iter()
            .flat_map(|len| cases.map(|c| (len, c)))
        {
            let (x, g, r) = (values(len, 1, sx), values(len, 2, sg), values(len, 3, sr));
            for (data, mean) in [(&x, 0.1), (&x, -1.7 / 3.0)] {
                let mut scalar = [0.5f64; 8];
                add_lanes(&mut scalar, data, f64::from);
                let mut vector = [0.5f64; 8];
                let done = lanes_simd::add_values(level, &mut vector, data);
                assert_eq!(done, len - len % 8);
                add_lanes(&mut vector, &data[done..], f64::from);
                assert_eq!(bits(&scalar), bits(&vector), "values, len {len}, {level:?}");

                let square = |v: f32| (f64::from(v) - mean) * (f64::from(v) - mean);
                let mut scalar = [0.5f64; 8];
                add_lanes(&mut scalar, data, square);
                let mut vector = [0.5f64; 8];
                let done = lanes_simd::add_squares(level, &mut vector, data, mean);
                add_lanes(&mut vector, &data[done..], square);
                assert_eq!(
                    bits(&scalar),
                    bits(&vector),
                    "squares, len {len}, {level:?}"
                );

                for relu in [false, true] {
                    let (mut sg, mut sgx) = ([0.0f64; 8], [-0.0f64; 8]);
                    each_lane([data.as_slice(), &g, &r], |l, [x, g, r]| {
                        let g = f64::from(masked(relu, g, r));
                        sg[l] += g;
                        sgx[l] += g * (f64::from(x) - mean);
                    });
                    let (mut vg, mut vgx) = ([0.0f64; 8], [-0.0f64; 8]);
                    let slices = (data.as_slice(), g.as_slice(), r.as_slice());
                    let done =
                        lanes_simd::add_grad_sums(level, (&mut vg, &mut vgx), slices, relu, mean);
                    let rest = [&data[done..], &g[done..], &r[done..]];
                    each_lane(rest, |l, [x, g, r]| {
                        let g = f64::from(masked(relu, g, r));
                        vg[l] += g;
                        vgx[l] += g * (f64::from(x) - mean);
                    });
                    let what = format!("len {len} relu {relu}, {level:?}");
                    assert_eq!(bits(&sg), bits(&vg), "Σ g, {what}");
                    assert_eq!(bits(&sgx), bits(&vgx), "Σ g·(x − mean), {what}");
                }
            }
        }
    }
}
