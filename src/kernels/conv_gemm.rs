//! The CPU convolution: per-slab im2col + one gemm, forward and backward, as candle custom ops.
//!
//! candle 0.11's CPU `conv2d` backward is a direct dot-product loop, several times slower than
//! the gemms it amounts to. Here a slab of `cnt` images becomes one column matrix
//! [c·k·k, cnt·pixels] (see [`super::im2col`]) and
//!
//! * forward:          out  = W · cols           ([o, c·k·k] · [c·k·k, cnt·pixels])
//! * input gradient:   dcol = Wᵀ · gout,  then col2im
//! * weight gradient:  dW   = Σ_slabs gout · colsᵀ (colsᵀ built pixel-major, see
//!   [`im2col_t_into`])
//!
//! Slabs are processed in parallel, one gemm each on one thread, in scratch buffers that
//! persist per thread. A slab holds one image on large maps (the gemm then writes the NCHW
//! output in place) and several on small ones, so every gemm has at least [`MIN_COLUMNS`]
//! columns. The slab split depends on the shape only, and the weight gradient adds the slabs'
//! partial products in slab order, so results do not depend on the thread count.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::cpu_float::{CpuFloat, all_finite, dispatch2, par_filled, par_init};

/// [`super::cpu_float::gemm`] on this thread only: the slabs already run in parallel.
///
/// # Safety
/// As for [`super::cpu_float::gemm`].
unsafe fn gemm<T: CpuFloat>(
    dims: (usize, usize, usize),
    dst: (*mut T, usize, usize),
    accumulate: bool,
    lhs: (*const T, usize, usize),
    rhs: (*const T, usize, usize),
) {
    // SAFETY: forwarded from the caller.
    unsafe { super::cpu_float::gemm(dims, dst, accumulate, lhs, rhs, false) }
}
use super::conv_skip;
use super::conv_weight_runs;
use super::im2col::{ConvGeometry, col2im_add, col2im_add_rows_f32, im2col_into, im2col_t_into};
use super::panel_gemm::{
    self, Output, PANEL_PIXELS, PANEL_ROWS, PackedRows, PixelSide, Terms, clear_tail,
    im2col_panels, im2col_t_panels, pack_pixels, panels_len, product, product_strips,
};
use super::tap_classes::VECTOR_LANES;

/// Fewest output columns (images × pixels) one gemm gets when the batch allows.
const MIN_COLUMNS: usize = 256;
/// The same for the weight gradient's inner dimension: each slab adds a partial product of
/// the whole weight's size, so it pays to make slabs wider there.
const MIN_COLUMNS_WEIGHT: usize = 1024;
/// Fewest slabs a batch is split into when it has that many images, so two to four threads
/// all get work.
const MIN_SLABS: usize = 4;

/// Images per slab for `g`: enough for `min_columns`, but at least [`MIN_SLABS`] slabs.
pub fn slab_images(g: &ConvGeometry, min_columns: usize) -> usize {
    let want = min_columns.div_ceil(g.pixels().max(1));
    want.min(g.n / MIN_SLABS).max(1)
}

/// Copies `cnt` images' [rows, pixels] blocks (`src`, image after image) side by side into
/// `dst` ([rows, cnt·pixels]).
fn gather<T: Copy>(src: &[T], rows: usize, pixels: usize, cnt: usize, dst: &mut [T]) {
    for j in 0..cnt {
        for r in 0..rows {
            dst[r * cnt * pixels + j * pixels..][..pixels]
                .copy_from_slice(&src[(j * rows + r) * pixels..][..pixels]);
        }
    }
}

/// The inverse of [`gather`].
fn scatter<T: Copy>(src: &[T], rows: usize, pixels: usize, cnt: usize, dst: &mut [T]) {
    for j in 0..cnt {
        for r in 0..rows {
            dst[(j * rows + r) * pixels..][..pixels]
                .copy_from_slice(&src[r * cnt * pixels + j * pixels..][..pixels]);
        }
    }
}

/// Runs `f` on the column matrix of images `x` (`cnt` images): the images themselves for one
/// pointwise image, else a scratch slab (slot 0) filled by im2col.
fn with_columns<T: CpuFloat, R>(
    g: &ConvGeometry,
    x: &[T],
    cnt: usize,
    f: impl FnOnce(&[T]) -> R,
) -> R {
    let (p, il) = (g.pixels(), g.image_len());
    if g.is_pointwise() && cnt == 1 {
        return f(x);
    }
    T::with_scratch(0, g.row_len() * cnt * p, |cols| {
        for j in 0..cnt {
            im2col_into(g, &x[j * il..][..il], &mut cols[j * p..], cnt * p);
        }
        f(cols)
    })
}

fn forward<T: CpuFloat>(g: &ConvGeometry, o: usize, x: &[T], w: &[T]) -> Vec<T> {
    let (p, rl, il) = (g.pixels(), g.row_len(), g.image_len());
    let nb = slab_images(g, MIN_COLUMNS);
    par_filled(g.n * o * p, nb * o * p, |s, dst: &mut [T]| {
        let cnt = dst.len() / (o * p);
        let xs = &x[s * nb * il..][..cnt * il];
        with_columns(g, xs, cnt, |cols| {
            let lhs = (w.as_ptr(), rl, 1);
            let rhs = (cols.as_ptr(), cnt * p, 1);
            if cnt == 1 {
                // SAFETY: w is [o, rl], cols [rl, p], dst [o, p], all contiguous.
                unsafe { gemm((o, p, rl), (dst.as_mut_ptr(), p, 1), false, lhs, rhs) };
            } else {
                T::with_scratch(1, o * cnt * p, |tmp| {
                    // SAFETY: w is [o, rl], cols [rl, cnt·p], tmp [o, cnt·p].
                    unsafe {
                        gemm(
                            (o, cnt * p, rl),
                            (tmp.as_mut_ptr(), cnt * p, 1),
                            false,
                            lhs,
                            rhs,
                        )
                    };
                    scatter(tmp, o, p, cnt, dst);
                });
            }
        })
    })
}

/// [`forward`] on the AVX-512 panel path: the same sums in the same order (see
/// [`panel_gemm`]), with im2col writing the gemm's panels and the tiles stored straight into
/// the NCHW output.
fn forward_panels(g: &ConvGeometry, o: usize, x: &[f32], w: &[f32]) -> Vec<f32> {
    let (p, rl, il) = (g.pixels(), g.row_len(), g.image_len());
    let nb = slab_images(g, MIN_COLUMNS);
    let weight = PackedRows::new(w, (o, rl), (rl, 1));
    let filled = |s, dst: &mut [MaybeUninit<f32>]| {
        let cnt = dst.len() / (o * p);
        let xs = &x[s * nb * il..][..cnt * il];
        f32::with_scratch(0, panels_len(cnt * p, rl), |panels| {
            for j in 0..cnt {
                im2col_panels(g, &xs[j * il..][..il], panels, j * p);
            }
            clear_tail(panels, cnt * p, rl);
            let out = Output {
                ptr: dst.as_mut_ptr().cast(),
                pixels: p,
                image_stride: o * p,
                row_stride: p,
            };
            // SAFETY: available() (the caller's check); (row < o, q < cnt·p) is
            // dst[(q / p)·o·p + row·p + q % p], inside this slab's dst.
            unsafe {
                product(
                    &weight,
                    (PixelSide::Packed(panels), cnt * p, Terms::All),
                    out,
                    false,
                )
            };
        })
    };
    // SAFETY: a product that does not add stores every (row < o, q < cnt·p) of its output,
    // which is the whole slab.
    unsafe { par_init(g.n * o * p, nb * o * p, filled) }
}

/// [`forward_panels`] read straight from the images' rows ([`panel_gemm::forward_rows`]):
/// no column matrix, the same bits.
fn forward_rows(g: &ConvGeometry, o: usize, x: &[f32], w: &[f32]) -> Vec<f32> {
    let (p, rl, il) = (g.pixels(), g.row_len(), g.image_len());
    let weight = PackedRows::new(w, (o, rl), (rl, 1));
    let filled = |j: usize, out| {
        // SAFETY: rows_apply (the caller's check); out is image j's o × p output.
        unsafe { panel_gemm::forward_rows(g, &weight, &x[j * il..][..il], out) };
    };
    // SAFETY: forward_rows stores every (row < o, q < p) of its output: the whole image.
    unsafe { per_image(g.n, (o, p), filled) }
}

/// `n` images of `rows × p` outputs, image j's filled by `fill(j, its output)` on candle's
/// threads.
///
/// # Safety
/// `fill` stores every (row < rows, q < p) of the output it is given.
unsafe fn per_image(
    n: usize,
    (rows, p): (usize, usize),
    fill: impl Fn(usize, Output) + Sync,
) -> Vec<f32> {
    let filled = |j, dst: &mut [MaybeUninit<f32>]| {
        let out = Output {
            ptr: dst.as_mut_ptr().cast(),
            pixels: p,
            image_stride: rows * p,
            row_stride: p,
        };
        fill(j, out)
    };
    // SAFETY: the caller's contract: each image's chunk is written in full.
    unsafe { par_init(n * rows * p, rows * p, filled) }
}

/// [`grad_input`] read from each image's bordered upstream gradient, tap by tap
/// ([`panel_gemm::grad_input_rows`]): no column matrix and no col2im. The caller checks
/// [`panel_gemm::input_rows_apply`] and that `w` is finite.
fn grad_input_rows(g: &ConvGeometry, o: usize, gout: &[f32], w: &[f32]) -> Vec<f32> {
    let p = g.pixels();
    let per_tap = PackedRows::taps(w, (o, g.c, g.k * g.k));
    let filled = |j: usize, out| {
        let go = &gout[j * o * p..][..o * p];
        // SAFETY: input_rows_apply and finite weights (the caller's checks); out is image
        // j's c × p input gradient.
        unsafe { panel_gemm::grad_input_rows(g, &per_tap, go, out) };
    };
    // SAFETY: grad_input_rows stores every (row < c, q < p) at its first tap: the whole image.
    unsafe { per_image(g.n, (g.c, p), filled) }
}

/// [`grad_input`] on the AVX-512 panel path (see [`forward_panels`]): the slab's upstream
/// gradient packed once as pixel panels, Wᵀ packed once per call.
fn grad_input_panels(g: &ConvGeometry, o: usize, gout: &[f32], w: &[f32]) -> Vec<f32> {
    let (p, rl, il) = (g.pixels(), g.row_len(), g.image_len());
    let nb = slab_images(g, MIN_COLUMNS);
    let weight_t = PackedRows::new(w, (rl, o), (1, rl));
    par_filled(g.n * il, nb * il, |s, dst: &mut [f32]| {
        let cnt = dst.len() / il;
        let go = &gout[s * nb * o * p..][..cnt * o * p];
        f32::with_scratch(0, panels_len(cnt * p, o), |panels| {
            pack_pixels(go, (o, p, cnt), panels);
            clear_tail(panels, cnt * p, o);
            if g.is_pointwise() {
                // The column matrix is the images themselves: store into dx directly (col2im
                // would add each value to a zero, which gives the value).
                let out = Output {
                    ptr: dst.as_mut_ptr(),
                    pixels: p,
                    image_stride: il,
                    row_stride: p,
                };
                // SAFETY: available() (the caller's check); (row < c, q < cnt·p) is
                // dst[(q / p)·il + row·p + q % p], inside this slab's dx.
                unsafe {
                    product(
                        &weight_t,
                        (PixelSide::Packed(panels), cnt * p, Terms::All),
                        out,
                        false,
                    )
                };
                return;
            }
            // Six rows of the column gradient at a time, added into the images while in L1.
            f32::with_scratch(2, PANEL_ROWS * cnt * p, |strip| {
                product_strips(&weight_t, panels, cnt * p, strip, |r0, live, rows| {
                    for (j, img) in dst.chunks_mut(il).enumerate() {
                        col2im_add_rows_f32(g, &rows[j * p..], cnt * p, (r0, r0 + live), img);
                    }
                })
            })
        })
    })
}

/// The slabs' partial weight gradients on the AVX-512 panel path, [o, rl] each (the
/// pixel-major layout of [`grad_weight`]): the upstream gradient packed as rows over the
/// slab's pixels, the columns as panels of receptive-field entries over pixels.
fn weight_partials_panels(g: &ConvGeometry, o: usize, x: &[f32], gout: &[f32]) -> Vec<f32> {
    let (p, rl, il) = (g.pixels(), g.row_len(), g.image_len());
    let nb = slab_images(g, MIN_COLUMNS_WEIGHT);
    let slabs = g.n.div_ceil(nb);
    par_filled(slabs * o * rl, o * rl, |s, dst: &mut [f32]| {
        let cnt = nb.min(g.n - s * nb);
        let xs = &x[s * nb * il..][..cnt * il];
        let go = &gout[s * nb * o * p..][..cnt * o * p];
        let rows = PackedRows::channels(go, (o, p, cnt));
        f32::with_scratch(0, panels_len(rl, cnt * p), |panels| {
            for j in 0..cnt {
                im2col_t_panels(g, &xs[j * il..][..il], panels, j * p, cnt * p);
            }
            clear_tail(panels, rl, cnt * p);
            let out = Output::matrix(dst.as_mut_ptr(), rl);
            // SAFETY: available() (the caller's check); (row < o, r < rl) is dst[row·rl + r].
            unsafe {
                product(
                    &rows,
                    (PixelSide::Packed(panels), rl, Terms::All),
                    out,
                    false,
                )
            };
        })
    })
}

fn grad_input<T: CpuFloat>(g: &ConvGeometry, o: usize, gout: &[T], w: &[T]) -> Vec<T> {
    let (p, rl, il) = (g.pixels(), g.row_len(), g.image_len());
    let nb = slab_images(g, MIN_COLUMNS);
    par_filled(g.n * il, nb * il, |s, dst: &mut [T]| {
        let cnt = dst.len() / il;
        let go = &gout[s * nb * o * p..][..cnt * o * p];
        // Wᵀ: [rl, o] read from W's [o, rl] storage.
        let lhs = (w.as_ptr(), 1, rl);
        if g.is_pointwise() && cnt == 1 {
            // SAFETY: Wᵀ [rl, o], go [o, p], dst [rl = c, p] contiguous.
            unsafe {
                gemm(
                    (rl, p, o),
                    (dst.as_mut_ptr(), p, 1),
                    false,
                    lhs,
                    (go.as_ptr(), p, 1),
                )
            };
            return;
        }
        let with_gout = |f: &mut dyn FnMut(&[T])| {
            if cnt == 1 {
                f(go)
            } else {
                T::with_scratch(1, o * cnt * p, |slab| {
                    gather(go, o, p, cnt, slab);
                    f(slab)
                })
            }
        };
        with_gout(&mut |gs: &[T]| {
            T::with_scratch(2, rl * cnt * p, |dcol| {
                // SAFETY: Wᵀ [rl, o], gs [o, cnt·p], dcol [rl, cnt·p].
                unsafe {
                    gemm(
                        (rl, cnt * p, o),
                        (dcol.as_mut_ptr(), cnt * p, 1),
                        false,
                        lhs,
                        (gs.as_ptr(), cnt * p, 1),
                    )
                };
                for (j, img) in dst.chunks_mut(il).enumerate() {
                    col2im_add(g, &dcol[j * p..], cnt * p, img);
                }
            })
        });
    })
}

/// Output channels above which the weight gradient builds its columns pixel-major.
///
/// Measured on PreActResNet18's 3×3 convolutions (batch 64, 2 cores): with few output
/// channels the gemm is fastest writing a transposed partial while streaming the channel-major
/// slab (64 channels: 24–29 ms against 31–39 ms); with many, packing a pixel-major slab is
/// (512 channels: 17–18 ms against 36 ms). Measured again on an AMD EPYC with AVX-512 after
/// the partials' sum became layout-blind: 64 channels 33–42 against 54–59 ms channel-major
/// first; 512 channels (8×8, stride 2) 17–20 against 23–33 ms pixel-major first.
const PIXEL_MAJOR_ABOVE: usize = 128;

/// Receptive-field sizes (c·k·k) below which the weight gradient builds its columns
/// pixel-major whatever the channel count: on the stem (3·3·3 = 27, 64 channels, 32×32, batch
/// 64, AMD EPYC with AVX-512, 2 threads) 4.0–4.7 ms against 8.2–9.7 ms channel-major, whose
/// gemm would have only 27 output columns.
const PIXEL_MAJOR_BELOW_ROWS: usize = 64;

/// Fewest input channels for the in-place weight gradient ([`conv_weight_runs`]), whose
/// kernel rows of 3·c values are rounded up to whole vectors: at 3 (the stems) 9 of 16 lanes
/// are live and it still won, two rounds on an Intel Xeon (family 6 model 167): 3→8 0.69 /
/// 0.70 → 0.45 / 0.45 ms, 3→64 2.57 / 2.71 → 1.92 / 2.05 ms. Fewer were not measured.
const RUNS_FROM_CHANNELS: usize = 3;

/// Fewest output channels a layer needs for the panel path: below it every product stays on
/// the `gemm` crate (panels were measured from 8, PreActResNet18's width-0.125 stem).
const NARROW_FROM: usize = 8;

/// Whether the weight gradient of `o` output channels over `rl`-long receptive fields builds
/// its columns pixel-major (else channel-major, with transposed partials).
fn pixel_major(o: usize, rl: usize) -> bool {
    o > PIXEL_MAJOR_ABOVE || rl < PIXEL_MAJOR_BELOW_ROWS
}

/// Elements of the weight gradient one thread sums over all slabs at a time (16 KiB of f32).
const SUM_BLOCK: usize = 4096;

fn grad_weight<T: CpuFloat>(g: &ConvGeometry, o: usize, x: &[T], gout: &[T]) -> Vec<T> {
    let pixel_major = pixel_major(o, g.row_len());
    let partials = weight_partials(g, o, x, gout, pixel_major);
    sum_partials(partials, (o, g.row_len()), pixel_major)
}

/// Which of a layer's three products take the panel path (on CPUs that have it); the rest
/// stay on the `gemm` crate path. Both give the same bits, so this is speed alone.
///
/// Measured on PreActResNet18's layers (batch 64, AMD EPYC with AVX-512, 2 threads, criterion
/// medians of the `conv_layer` group, panel path on and off alternating in three rounds):
/// - fewer than 64 output channels (PreActResNet18 at width 0.125, Intel Xeon with AVX-512,
///   family 6 model 167, 2 threads, `gemm` crate path against panels, once the tile computed
///   only the vectors that hold a pixel): the forward read from rows 0.66–0.72 → 0.43–0.46 ms
///   (8→8 at 32×32), 0.65 → 0.37 ms (16→16 at 16×16), 0.64–0.66 → 0.27 ms (8→16 stride 2);
///   input gradient on panels 0.71 → 0.58 ms (16→16), 0.67 → 0.57 ms (8→16 stride 2), with
///   skipping at 8×8 0.64–0.68 → 0.56 ms (32→32); weight gradient on panels at ≤ 256 pixels
///   0.52 → 0.40 ms (16→32 stride 2), 0.75 → 0.62 ms (32→32), 0.76–0.80 → 0.57 ms (8→16
///   stride 2), 0.80 even (16→16), and at 32×32 behind (8→8: 1.50 against 1.25–1.38 ms);
///   receptive fields under 64 (the stem and the 1×1 shortcuts) weight gradient only: 3→8
///   stem 1.40–1.44 → 0.88–0.92 ms, shortcuts 8→16 0.40 → 0.32 ms, 16→32 0.196 → 0.13 ms,
///   32→64 0.11 → 0.075 ms, but the width-1 stem (3→64 at 32×32) 2.4–2.5 against 3.3–3.5 ms.
///   The skipping weight gradient puts channels on the pixel side (8 of 64 lanes): 5.6
///   against 1.2 ms at 8→8, so not below 64 channels. The width-0.125 train step: 52.4–56.3
///   → 49.4–50.0 ms in three interleaved rounds. On an AMD EPYC a first comparison (95–98 ms
///   with every layer on panels against 76–88 ms) did not hold up: that step then moved
///   between 65 and 113 ms either way;
/// - receptive fields under 64 (the stem, 27 terms per tile): forward 2.3–2.4 against
///   1.7–1.9 ms, input gradient 2.1–2.2 against 1.4–1.6 ms;
/// - stride 2 forward (im2col gathers every other pixel): 64→128 16.3–17.0 against
///   15.1–15.4 ms, 128→256 14.9–15.4 against 13.1–13.5 ms, the 1×1 shortcut 3.0–3.4
///   against 2.0–2.3 ms;
/// - input gradient over 64 output channels (64 terms per tile): 30.5–32.2 against
///   27.3–28.0 ms; at 128 and 256 about even, at 512 (8×8 stride 2 and 4×4) ahead. Once
///   the tile stopped dividing per store, alternating in two rounds: 64 channels (32×32)
///   28.4 / 27.8 against 26.8 / 26.8 ms; 128 channels ahead: 64→128 stride 2 14.4 / 14.7
///   against 15.4 / 15.4 ms, its 1×1 shortcut 2.07 / 1.97 against 2.41 / 2.37 ms, 128→128
///   at 16×16 25.0 / 25.5 against 25.6 / 25.6 ms;
/// - weight gradient on 32×32 maps (each receptive field gathered pixel by pixel): 64
///   channels 40 against 36 ms; at ≤ 16×16 even or ahead (256 at 8×8: 28–31 against
///   35–49 ms).
///
/// Padding taps are skipped ([`conv_skip`]) on maps of at most 64 pixels (the weight
/// gradient: 256, or any size with channels in whole panels of 64, see below), where they are 31% (4×4), 16% (8×8) and 8% (16×16) of a 3×3 product.
/// Same binary, skipping off and on alternating in two
/// rounds: 512→512 at 4×4 forward 27.5 / 33.0 against 20.4 / 20.9 ms, input gradient
/// 27.3 / 28.8 against 20.4 / 20.3 ms; 256→256 at 8×8 forward 28.6 / 27.8 against
/// 22.6 / 27.3 ms, input gradient 28.5 / 28.9 against 23.2 / 24.0 ms. On larger maps the
/// gathered class panels and the reordering cost more than the taps save: 128→128 at 16×16
/// forward 26.7 / 26.9 against 30.4 / 32.0 ms, 64→64 at 32×32 30.8 / 30.1 against
/// 44.8 / 44.4 ms.
/// The forward reads the images' rows directly where rows are 16, 32 or 64 pixels
/// ([`panel_gemm::forward_rows`], no column matrix): off and on alternating in two rounds,
/// 64→64 at 32×32 28.4 / 28.3 against 26.1 / 26.2 ms, 128→128 at 16×16 26.2 / 26.2 against
/// 25.6 / 25.6 ms.
///
/// Weight gradient, skipping off and on alternating in two rounds: 512→512 at 4×4
/// 29.6 / 32.7 against 25.5 / 25.3 ms, 256→256 at 8×8 33.8 / 28.6 against 23.4 / 27.0 ms.
/// Once the skipping path copied whole vectors from a channel-minor copy of the images
/// instead of gathering (three rounds, min of medians): 128→128 at 16×16 31.4 against
/// 27.2 ms, so it runs there too; 64→64 at 32×32 31.2 against 33.2 ms (one image per slab:
/// 64 small products), so not there. Its forward and input gradient at 16×16 stay off:
/// 26.2 / 25.5 against 28.3 / 30.7 ms. At stride 2 (same rounds): 256→512 at 8×8 14.5 against
/// 13.1 ms, so on from 256 channels; 64→128 at 32×32 16.5 against 18.3 ms, its 1×1 shortcut
/// 4.2 against 6.1 ms, 128→256 at 16×16 13.9 against 14.7 ms. Once it read 64-channel
/// panels in place instead of packing them (three rounds, min of medians, skipping off /
/// packed / in place): 64→64 at 32×32 32.1 / 32.8 / 29.6 ms, so it runs on larger stride-1
/// maps too where the channels fill whole panels of 64; 128→128 at 16×16 27.2 (packed) / 25.4 ms; 256→256 at 8×8 22.0 / 21.0 ms; at stride 2
/// 64→128 16.5 against 16.7 ms and 128→256 13.9 against 13.5 ms, so the rule there stays.
///
/// The weight gradient read in place from bordered channel-minor copies, all nine taps in
/// one product ([`conv_weight_runs`]), against the path each layer had (Intel Xeon with
/// AVX-512, family 6 model 167, two rounds): 64→64 at 32×32 (skipping) 19.3 / 21.8 →
/// 15.6 / 16.4 ms, 128→128 at 16×16 (skipping) 14.9 / 15.1 → 13.1 / 14.9 ms, but 256→256
/// at 8×8 12.3 / 13.0 → 13.8 / 14.8 ms and 512→512 at 4×4 12.5 / 13.0 → 17.9 / 18.7 ms,
/// where skipping leaves out 16% and 31% of the terms, so only on maps over 64 pixels; 64→64
/// at 4×4 (skipping) 0.33–0.36 against 0.35 ms, even. On the narrow layers (panels with
/// gathered fields) it wins at any size: 16→16 at 16×16 0.81 → 0.46 ms, 32→32 at 8×8 0.58 →
/// 0.36 ms. At stride 2 it won or tied everywhere (two rounds against the panel or
/// skipping path): 64→128 10.5 / 9.7 → 8.8 / 8.8 ms, 128→256 8.6 / 8.1 → 8.4 / 8.2 ms,
/// 256→512 at 8×8 8.3 / 7.8 → 7.6 / 7.7 ms, 16→32 0.38 / 0.36 → 0.28 / 0.26 ms, 8→16 0.56 /
/// 0.56 → 0.56 / 0.54 ms, 32→64 0.30 / 0.28 → 0.29 / 0.28 ms. Once the kernel rows were
/// rounded up to whole vectors instead of the channels (8 channels: 32 lanes a row instead
/// of 48), two rounds: 8→8 at 32×32 1.01 / 1.01 → 0.63 / 0.66 ms, 8→16 stride 2 0.53 / 0.52
/// → 0.37 / 0.37 ms, and the stems took it too (see [`RUNS_FROM_CHANNELS`]).
///
/// The input gradient read tap by tap from the upstream gradient's rows
/// ([`panel_gemm::grad_input_rows`]) against the panel path with its strips and col2im, four
/// interleaved rounds: 128→128 at 16×16 25.4 / 26.4 / 25.6 / 25.4 → 24.5 / 23.9 / 24.8 /
/// 24.2 ms (with the border rows' vectors left out; 25.6 / 25.6 / 24.8 / 24.8 ms without).
/// Against the `gemm` crate path at 64 output channels it lost (64→64 at 32×32, three
/// rounds: 26.3–27.0 against 27.5–28.1 ms: 64-term tiles, whose stores weigh more), and at
/// WRN-28-10's widths it tied the panel path (160→160 at 32×32 146–148 against 149–150 ms,
/// 320→320 at 16×16 142.5–142.9 against 141.3–143.5 ms), so it ran from 128 output
/// channels. On an Intel Xeon with AVX-512 (family 6 model 167, two rounds, once the tile
/// started on aligned scratch) it won below 128 as well: 64→64 at 32×32 19.2 / 19.7 →
/// 17.2 / 17.7 ms against the `gemm` crate path, 16→16 at 16×16 0.74 / 0.61 → 0.43 / 0.44 ms
/// and 8→8 at 32×32 0.85 / 0.85 → 0.76 / 0.74 ms against panels, so it runs wherever it
/// applies (the AMD figure above is older than the aligned scratch and was not measured
/// again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PanelOps {
    forward: bool,
    input_grad: bool,
    weight_grad: bool,
    /// The forward with padding taps left out ([`conv_skip`]), where its conditions hold.
    skip_forward: bool,
    /// The same for the input gradient.
    skip_input_grad: bool,
    /// The same for the weight gradient.
    skip_weight_grad: bool,
    /// The forward read straight from the images' rows ([`panel_gemm::forward_rows`]).
    forward_rows: bool,
    /// The input gradient read straight from the upstream gradient's rows
    /// ([`panel_gemm::grad_input_rows`]), where its weight is finite.
    input_grad_rows: bool,
    /// The weight gradient read in place from bordered channel-minor copies
    /// ([`conv_weight_runs`]), where its conditions hold.
    weight_grad_runs: bool,
}

impl PanelOps {
    /// The choice for a layer of geometry `g` with `o` output channels.
    fn for_layer(g: &ConvGeometry, o: usize) -> Self {
        let none = PanelOps {
            forward: false,
            input_grad: false,
            weight_grad: false,
            skip_forward: false,
            skip_input_grad: false,
            skip_weight_grad: false,
            forward_rows: false,
            input_grad_rows: false,
            weight_grad_runs: false,
        };
        if !panel_gemm::available::<f32>() || o < NARROW_FROM {
            return none;
        }
        let narrow = o < 64;
        if g.row_len() < 64 {
            return PanelOps {
                weight_grad: narrow || g.pixels() <= 256,
                weight_grad_runs: g.c >= RUNS_FROM_CHANNELS,
                ..none
            };
        }
        let small = g.padding > 0 && g.stride == 1 && g.h * g.w <= 64;
        PanelOps {
            forward: g.stride == 1 || panel_gemm::splits_phases(g),
            input_grad: narrow || o >= 128,
            weight_grad: g.pixels() <= 256,
            skip_forward: small,
            skip_input_grad: small,
            skip_weight_grad: !narrow
                && g.padding > 0
                && (g.stride == 1 && (g.h * g.w <= 256 || g.c.is_multiple_of(PANEL_PIXELS))
                    || g.stride == 2 && g.c >= 256),
            forward_rows: panel_gemm::rows_apply(g),
            input_grad_rows: panel_gemm::input_rows_apply(g, o),
            weight_grad_runs: g.c >= RUNS_FROM_CHANNELS
                && (narrow || g.stride == 2 || g.h * g.w > 64),
        }
    }
}

/// The f32 forward on the fastest path that applies (all give [`forward`]'s bits).
fn forward_f32(g: &ConvGeometry, o: usize, x: &[f32], w: &[f32]) -> Vec<f32> {
    let ops = PanelOps::for_layer(g, o);
    let columns = |g: &ConvGeometry, x: &[f32]| match ops.forward {
        true => forward_panels(g, o, x, w),
        false => forward(g, o, x, w),
    };
    if ops.skip_forward && conv_skip::forward_applies(g, x, w) {
        let skipping =
            |g: &ConvGeometry, x: &[f32], spare| conv_skip::forward_reserving(g, o, x, w, spare);
        in_whole_vectors(g, (g.image_len(), o * g.pixels()), x, skipping, columns)
    } else if ops.forward_rows {
        forward_rows(g, o, x, w)
    } else {
        columns(g, x)
    }
}

/// The f32 input gradient on the fastest path that applies (all give [`grad_input`]'s bits).
fn grad_input_f32(g: &ConvGeometry, o: usize, gout: &[f32], w: &[f32]) -> Vec<f32> {
    let ops = PanelOps::for_layer(g, o);
    let columns = |g: &ConvGeometry, go: &[f32]| match ops.input_grad {
        true => grad_input_panels(g, o, go, w),
        false => grad_input(g, o, go, w),
    };
    if ops.skip_input_grad && conv_skip::input_grad_applies(g, o) {
        let skipping = |g: &ConvGeometry, go: &[f32], spare| {
            conv_skip::grad_input_reserving(g, o, go, w, spare)
        };
        in_whole_vectors(g, (o * g.pixels(), g.image_len()), gout, skipping, columns)
    } else if ops.input_grad_rows && all_finite(w) {
        grad_input_rows(g, o, gout, w)
    } else {
        columns(g, gout)
    }
}

/// `skipping` on the images that fill whole 16-image vectors of [`conv_skip`], `columns` on
/// the rest, joined in batch order: a batch of 100 would otherwise compute a seventh vector
/// per pixel with 4 of its 16 lanes live. Every image's result depends on that image alone,
/// and both paths give the same bits. `per` is (input, output) values per image.
fn in_whole_vectors(
    g: &ConvGeometry,
    (per_in, per_out): (usize, usize),
    input: &[f32],
    skipping: impl Fn(&ConvGeometry, &[f32], usize) -> Vec<f32> + Sync,
    columns: impl Fn(&ConvGeometry, &[f32]) -> Vec<f32> + Sync,
) -> Vec<f32> {
    let head = g.n / VECTOR_LANES * VECTOR_LANES;
    if head == 0 || head == g.n {
        return skipping(g, input, 0);
    }
    let (first, rest) = input.split_at(head * per_in);
    let (whole, part) = (
        ConvGeometry { n: head, ..*g },
        ConvGeometry {
            n: g.n - head,
            ..*g
        },
    );
    // Side by side: the few remaining images make one slab, which one thread computes while
    // the others take the skipping path's units.
    let (mut out, tail) = rayon::join(
        || skipping(&whole, first, part.n * per_out),
        || columns(&part, rest),
    );
    out.extend_from_slice(&tail);
    out
}

/// [`grad_weight`] on the AVX-512 panel path: the same partials in the pixel-major layout,
/// summed the same way.
fn grad_weight_panels(g: &ConvGeometry, o: usize, x: &[f32], gout: &[f32]) -> Vec<f32> {
    let partials = weight_partials_panels(g, o, x, gout);
    sum_partials(partials, (o, g.row_len()), true)
}

/// [`grad_weight`] with padding taps skipped ([`conv_skip::weight_partials`]): the same slabs,
/// summed the same way, tap-major until the end.
fn grad_weight_skipping(g: &ConvGeometry, o: usize, x: &[f32], gout: &[f32]) -> Vec<f32> {
    let nb = slab_images(g, MIN_COLUMNS_WEIGHT);
    let partials = conv_skip::weight_partials(g, o, (x, gout), nb);
    let sum = sum_partials(partials, (o, g.row_len()), true);
    conv_skip::tap_major_to_weight(&sum, (o, g.c, g.k * g.k))
}

/// [`grad_weight`] read in place from bordered channel-minor copies
/// ([`conv_weight_runs::weight_partials`]): the same slabs, summed the same way.
fn grad_weight_runs(g: &ConvGeometry, o: usize, x: &[f32], gout: &[f32]) -> Vec<f32> {
    let nb = slab_images(g, MIN_COLUMNS_WEIGHT);
    let partials = conv_weight_runs::weight_partials(g, o, (x, gout), nb);
    let sum = sum_partials(partials, (o, conv_weight_runs::row_len(g)), true);
    conv_weight_runs::to_weight(&sum, (o, g.c))
}

/// Each slab's partial weight gradient, one after another: [o, rl] when `pixel_major`, else
/// transposed ([rl, o]).
fn weight_partials<T: CpuFloat>(
    g: &ConvGeometry,
    o: usize,
    x: &[T],
    gout: &[T],
    pixel_major: bool,
) -> Vec<T> {
    let (p, rl, il) = (g.pixels(), g.row_len(), g.image_len());
    let nb = slab_images(g, MIN_COLUMNS_WEIGHT);
    let slabs = g.n.div_ceil(nb);
    // Each slab's partial dW: [o, rl] when the columns are pixel-major, else transposed,
    // [rl, o], so that the gemm streams the channel-major slab as it is.
    par_filled(slabs * o * rl, o * rl, |s, dst: &mut [T]| {
        let cnt = nb.min(g.n - s * nb);
        let xs = &x[s * nb * il..][..cnt * il];
        let go = &gout[s * nb * o * p..][..cnt * o * p];
        let mut multiply = |cols: &[T], rhs_strides: (usize, usize)| {
            let rhs = (cols.as_ptr(), rhs_strides.0, rhs_strides.1);
            let out = match pixel_major {
                true => (dst.as_mut_ptr(), rl, 1),
                false => (dst.as_mut_ptr(), 1, o),
            };
            if cnt == 1 {
                // SAFETY: go [o, p], colsᵀ [p, rl] and dst [o, rl] by their strides.
                unsafe { gemm((o, rl, p), out, false, (go.as_ptr(), p, 1), rhs) };
            } else {
                T::with_scratch(1, o * cnt * p, |slab| {
                    gather(go, o, p, cnt, slab);
                    let lhs = (slab.as_ptr(), cnt * p, 1);
                    // SAFETY: slab [o, cnt·p], colsᵀ [cnt·p, rl], dst as above.
                    unsafe { gemm((o, rl, cnt * p), out, false, lhs, rhs) };
                })
            }
        };
        if pixel_major {
            T::with_scratch(0, cnt * p * rl, |cols_t| {
                for j in 0..cnt {
                    let img = &xs[j * il..][..il];
                    im2col_t_into(g, img, &mut cols_t[j * p * rl..][..p * rl]);
                }
                multiply(cols_t, (rl, 1))
            })
        } else {
            with_columns(g, xs, cnt, |cols| multiply(cols, (1, cnt * p)))
        }
    })
}

/// Σ_s partial_s of `partials` (whole [o, rl] weights, or [rl, o] unless `pixel_major`),
/// as [o, rl].
fn sum_partials<T: CpuFloat>(
    partials: Vec<T>,
    (o, rl): (usize, usize),
    pixel_major: bool,
) -> Vec<T> {
    let slabs = partials.len() / (o * rl).max(1);
    // Σ_s partial_s elementwise, slabs in slab order whichever thread runs a block: blocks of
    // the partials' own layout, so every pass streams contiguous memory that stays in cache.
    let sum = par_filled(o * rl, SUM_BLOCK, |b, blk: &mut [T]| {
        for s in 0..slabs {
            let part = &partials[s * o * rl + b * SUM_BLOCK..][..blk.len()];
            for (d, &v) in blk.iter_mut().zip(part) {
                *d += v;
            }
        }
    });
    if pixel_major {
        return sum;
    }
    // The sum is dWᵀ ([rl, o]): transpose it into [o, rl].
    par_filled(o * rl, rl, |oc, row: &mut [T]| {
        for (r, d) in row.iter_mut().enumerate() {
            *d = sum[r * o + oc];
        }
    })
}

/// Forward convolution: `x` [n, c, h, w] with weight [o, c, k, k] → [n, o, oh, ow].
#[derive(Debug, Clone, Copy)]
struct ConvForward(ConvGeometry, usize);

/// Input gradient: upstream gradient [n, o, oh, ow] with weight → [n, c, h, w].
#[derive(Debug, Clone, Copy)]
struct ConvGradInput(ConvGeometry, usize);

/// Weight gradient: input [n, c, h, w] with upstream gradient → [o, c, k, k].
#[derive(Debug, Clone, Copy)]
struct ConvGradWeight(ConvGeometry, usize);

impl ConvForward {
    fn input_dims(&self) -> [usize; 4] {
        [self.0.n, self.0.c, self.0.h, self.0.w]
    }
    fn weight_dims(&self) -> [usize; 4] {
        [self.1, self.0.c, self.0.k, self.0.k]
    }
    fn output_dims(&self) -> [usize; 4] {
        [self.0.n, self.1, self.0.oh(), self.0.ow()]
    }
}

impl CustomOp2 for ConvForward {
    fn name(&self) -> &'static str {
        "mixbench-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, o) = (&self.0, self.1);
        dispatch2(
            self.name(),
            (s1, l1, &self.input_dims()),
            (s2, l2, &self.weight_dims()),
            Shape::from(self.output_dims().to_vec()),
            |x, w| forward_f32(g, o, x, w),
            |x, w| forward(g, o, x, w),
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // An untracked operand (the input images, detached weights under FGSM) gets no gradient,
        // which saves that gemm entirely.
        let dx = match x.track_op() {
            true => Some(input_grad(self.0, self.1, grad, w)?),
            false => None,
        };
        let dw = match w.track_op() {
            true => Some(weight_grad(self.0, self.1, x, grad)?),
            false => None,
        };
        Ok((dx, dw))
    }
}

impl CustomOp2 for ConvGradInput {
    fn name(&self) -> &'static str {
        "mixbench-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let f = ConvForward(self.0, self.1);
        let (g, o) = (&self.0, self.1);
        dispatch2(
            self.name(),
            (s1, l1, &f.output_dims()),
            (s2, l2, &f.weight_dims()),
            Shape::from(f.input_dims().to_vec()),
            |go, w| grad_input_f32(g, o, go, w),
            |go, w| grad_input(g, o, go, w),
        )
    }
}

impl CustomOp2 for ConvGradWeight {
    fn name(&self) -> &'static str {
        "mixbench-conv2d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let f = ConvForward(self.0, self.1);
        let (g, o) = (&self.0, self.1);
        dispatch2(
            self.name(),
            (s1, l1, &f.input_dims()),
            (s2, l2, &f.output_dims()),
            Shape::from(f.weight_dims().to_vec()),
            |x, go| {
                let ops = PanelOps::for_layer(g, o);
                if ops.weight_grad_runs && conv_weight_runs::applies(g) {
                    grad_weight_runs(g, o, x, go)
                } else if ops.skip_weight_grad && conv_skip::weight_grad_applies(g, go) {
                    grad_weight_skipping(g, o, x, go)
                } else if ops.weight_grad {
                    grad_weight_panels(g, o, x, go)
                } else {
                    grad_weight(g, o, x, go)
                }
            },
            |x, go| grad_weight(g, o, x, go),
        )
    }
}

/// `x` [n, c, h, w] convolved with `weight` [o, c, k, k] (no bias) on the CPU.
pub fn conv2d_gemm(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (g, o) = geometry(x.dims(), weight.dims(), stride, padding)?;
    if g.n == 0 || g.c == 0 || o == 0 {
        // Nothing to multiply; candle's op handles the empty shapes.
        return x.conv2d(weight, padding, stride, 1, 1);
    }
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, ConvForward(g, o))
}

/// The checked geometry of `x` [n, c, h, w] under a [o, c, k, k] weight, and `o`.
fn geometry(
    x: &[usize],
    w: &[usize],
    stride: usize,
    padding: usize,
) -> Result<(ConvGeometry, usize)> {
    let (&[n, c, h, wd], &[o, wc, k, k2]) = (x, w) else {
        candle_core::bail!("conv2d: input {x:?} and weight {w:?} must both have four dims");
    };
    if wc != c || k != k2 || h + 2 * padding < k || wd + 2 * padding < k || stride == 0 {
        candle_core::bail!(
            "conv2d: input {x:?} does not fit weight {w:?} (stride {stride}, padding {padding})"
        );
    }
    let g = ConvGeometry {
        n,
        c,
        h,
        w: wd,
        k,
        stride,
        padding,
    };
    Ok((g, o))
}

/// The input gradient alone ([n, c, h, w], the shape of `x`) for upstream gradient `gout`,
/// as the backward pass computes it: for per-layer benches.
pub fn conv2d_input_grad(
    x: &Tensor,
    weight: &Tensor,
    gout: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let (g, o) = geometry(x.dims(), weight.dims(), stride, padding)?;
    input_grad(g, o, gout, weight)
}

/// The weight gradient alone ([o, c, k, k]) for upstream gradient `gout`, as the backward pass
/// computes it: for per-layer benches.
pub fn conv2d_weight_grad(
    x: &Tensor,
    weight: &Tensor,
    gout: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let (g, o) = geometry(x.dims(), weight.dims(), stride, padding)?;
    weight_grad(g, o, x, gout)
}

/// The input gradient op of convolution `g` with `o` output channels.
fn input_grad(g: ConvGeometry, o: usize, gout: &Tensor, weight: &Tensor) -> Result<Tensor> {
    gout.contiguous()?
        .apply_op2_no_bwd(&weight.contiguous()?, &ConvGradInput(g, o))
}

/// The weight gradient op of convolution `g` with `o` output channels.
fn weight_grad(g: ConvGeometry, o: usize, x: &Tensor, gout: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2_no_bwd(&gout.contiguous()?, &ConvGradWeight(g, o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    /// Each value's bits, to compare results exactly.
    fn bits(v: Vec<f32>) -> Vec<u32> {
        v.into_iter().map(f32::to_bits).collect()
    }

    /// `len` deterministic values over six orders of magnitude with +0 and −0 among them.
    fn signed_values(len: usize, salt: f32) -> Vec<f32> {
        (0..len)
            .map(|i| match i % 11 {
                3 => -0.0,
                7 => 0.0,
                _ => (i as f32 * 0.61 + salt).sin() * 1e3f32.powi(i as i32 % 3 - 1),
            })
            .collect()
    }

    /// The geometry of `n` images of `c` channels on an h×h map under a k×k kernel.
    fn square(
        n: usize,
        c: usize,
        h: usize,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> ConvGeometry {
        ConvGeometry {
            n,
            c,
            h,
            w: h,
            k,
            stride,
            padding,
        }
    }

    fn fixed(shape: &[usize], salt: f64, dtype: DType) -> Tensor {
        let len: usize = shape.iter().product();
        let v: Vec<f64> = (0..len)
            .map(|i| ((i as f64 * 0.7 + salt).sin() * 1.3).round() / 4.0 + (i as f64 * 0.01).cos())
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    fn max_abs(a: &Tensor) -> f64 {
        let a = a.abs().unwrap().flatten_all().unwrap();
        let a = a.to_dtype(DType::F64).unwrap().max(0).unwrap();
        a.to_scalar::<f64>().unwrap()
    }

    /// max|a − b| relative to max|b|.
    fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
        max_abs(&(a - b).unwrap()) / max_abs(b).max(1e-30)
    }

    /// Forward values and both gradients equal candle's own conv2d for 3×3 and 1×1 kernels,
    /// strides 1 and 2, with and without padding, for batch sizes that give one image per slab,
    /// several per slab and a short last slab; in f64 to 1e-12 of the largest value, in f32 to 1e-5.
    #[test]
    fn matches_candle_conv2d_forward_and_backward() {
        let mut cases = vec![];
        for h in 1..=8 {
            cases.extend([(3, 1, 1, h), (3, 2, 1, h), (1, 2, 0, h), (1, 1, 0, h)]);
        }
        cases.extend([(3, 1, 1, 20), (1, 1, 0, 17), (3, 2, 1, 33)]);
        for dtype in [DType::F64, DType::F32] {
            let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
            for (i, &(k, stride, padding, h)) in cases.iter().enumerate() {
                let n = [1, 2, 5, 9, 18][i % 5];
                let x = Var::from_tensor(&fixed(&[n, 3, h, h], 0.1, dtype)).unwrap();
                let wgt = Var::from_tensor(&fixed(&[4, 3, k, k], 0.9, dtype)).unwrap();
                let ours = conv2d_gemm(&x, &wgt, stride, padding).unwrap();
                let theirs = x.conv2d(&wgt, padding, stride, 1, 1).unwrap();
                assert_eq!(ours.dims(), theirs.dims());
                let what = format!("{dtype:?} n={n} h={h} k={k} s={stride}");
                assert!(rel_diff(&ours, &theirs) < tol, "forward {what}");
                // A non-uniform upstream gradient so every position is weighted differently.
                let up = fixed(theirs.dims(), 2.3, dtype);
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
                    assert!(rel_diff(a, b) < tol, "grad {what}");
                    assert!(max_abs(b) > 0.1, "{what}");
                }
            }
        }
    }

    /// Both weight-gradient layouts (few and many output channels, short receptive fields)
    /// against candle, with several slabs and gradients longer than one summing block.
    #[test]
    fn weight_gradient_layouts_match_candle() {
        const {
            assert!(
                PIXEL_MAJOR_ABOVE * 8 * 9 > SUM_BLOCK,
                "several summing blocks"
            )
        };
        let mut layouts = std::collections::BTreeSet::new();
        for (o, c) in [
            (PIXEL_MAJOR_ABOVE, 8),
            (PIXEL_MAJOR_ABOVE + 1, 8),
            (PIXEL_MAJOR_ABOVE, 2),
        ] {
            for (n, k, stride, padding) in [(1, 3, 1, 1), (9, 3, 2, 1), (5, 1, 1, 0)] {
                layouts.insert(pixel_major(o, c * k * k));
                let x = Var::from_tensor(&fixed(&[n, c, 5, 5], 0.4, DType::F64)).unwrap();
                let w = Var::from_tensor(&fixed(&[o, c, k, k], 1.1, DType::F64)).unwrap();
                let ours = conv2d_gemm(&x, &w, stride, padding).unwrap();
                let theirs = x.conv2d(&w, padding, stride, 1, 1).unwrap();
                let up = fixed(theirs.dims(), 3.1, DType::F64);
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
                let (a, b) = (go.get(&w).unwrap(), gt.get(&w).unwrap());
                assert!(rel_diff(a, b) < 1e-12, "o={o} c={c} n={n} k={k} s={stride}");
            }
        }
        assert_eq!(layouts.len(), 2, "both layouts ran");
    }

    /// The weight gradient is, bit for bit, Σ over slabs in slab order of each slab's partial,
    /// each partial the gemm's specification (FMA chains over the slab's pixels in order, one
    /// per k-chunk, the chunks added in order): in both layouts, with several slabs, blocks and
    /// k-chunks.
    #[test]
    fn weight_gradient_is_its_slab_ordered_specification() {
        use crate::kernels::cpu_float::k_chunks;
        let mut layouts = std::collections::BTreeSet::new();
        for (n, c, h, o, k, stride, padding) in [
            (9, 8, 24, 4, 3, 1, 1),
            (5, 8, 6, 64, 3, 1, 1),
            (9, 3, 24, 4, 3, 1, 1),
            (9, 8, 5, 129, 3, 2, 1),
            (6, 2, 7, 3, 1, 1, 0),
        ] {
            let g = square(n, c, h, k, stride, padding);
            let (p, rl, il, ow) = (g.pixels(), g.row_len(), g.image_len(), g.ow());
            let x: Vec<f32> = (0..n * il).map(|i| ((i as f32) * 0.37).sin()).collect();
            let go: Vec<f32> = (0..n * o * p)
                .map(|i| ((i as f32) * 0.11).cos() * 1e3f32.powi((i % 3) as i32 - 1))
                .collect();
            // Entry (r, px) of image `img`'s column matrix.
            let col = |img: usize, r: usize, px: usize| {
                let (ci, ky, kx) = (r / (k * k), r / k % k, r % k);
                let iy = (px / ow * stride + ky)
                    .checked_sub(padding)
                    .filter(|&v| v < h);
                let ix = (px % ow * stride + kx)
                    .checked_sub(padding)
                    .filter(|&v| v < h);
                match (iy, ix) {
                    (Some(iy), Some(ix)) => x[img * il + (ci * h + iy) * h + ix],
                    _ => 0.0,
                }
            };
            let nb = slab_images(&g, MIN_COLUMNS_WEIGHT);
            layouts.insert(pixel_major(o, rl));
            let got = grad_weight(&g, o, &x, &go);
            for oc in 0..o {
                for r in 0..rl {
                    let mut dw = 0f32;
                    for s in 0..n.div_ceil(nb) {
                        let cnt = nb.min(n - s * nb);
                        let mut part = 0f32;
                        for (i, (k0, k1)) in k_chunks(cnt * p).enumerate() {
                            let mut acc = 0f32;
                            for kk in k0..k1 {
                                let img = s * nb + kk / p;
                                let gv = go[(img * o + oc) * p + kk % p];
                                acc = gv.mul_add(col(img, r, kk % p), acc);
                            }
                            part = if i == 0 { acc } else { part + acc };
                        }
                        dw += part;
                    }
                    let at = got[oc * rl + r];
                    assert_eq!(at.to_bits(), dw.to_bits(), "{g:?} o={o} ({oc}, {r})");
                }
            }
        }
        assert_eq!(layouts.len(), 2, "both layouts ran");
    }

    #[test]
    fn short_receptive_fields_and_many_channels_go_pixel_major() {
        assert!(!pixel_major(64, 576), "PreActResNet18's first stage");
        assert!(pixel_major(64, 27), "the stem");
        assert!(pixel_major(256, 1152));
    }

    #[test]
    fn slabs_widen_on_small_maps_but_keep_four_per_batch() {
        let g = |n, h| square(n, 8, h, 3, 1, 1);
        assert_eq!(slab_images(&g(64, 32), 256), 1);
        assert_eq!(slab_images(&g(64, 8), 256), 4);
        assert_eq!(slab_images(&g(64, 4), 256), 16);
        assert_eq!(slab_images(&g(8, 4), 256), 2);
        assert_eq!(slab_images(&g(3, 4), 256), 1);
        assert_eq!(slab_images(&g(64, 16), 1024), 4);
    }

    #[test]
    fn an_untracked_input_gets_no_gradient_and_the_weight_still_does() {
        let x = fixed(&[2, 3, 5, 5], 0.1, DType::F32);
        let w = Var::from_tensor(&fixed(&[4, 3, 3, 3], 0.9, DType::F32)).unwrap();
        let y = conv2d_gemm(&x, &w, 1, 1).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(&w).is_some());
    }

    /// The two gradient ops alone give exactly what backward gives, and a gradient of the
    /// wrong shape is refused.
    #[test]
    fn the_gradient_ops_alone_equal_the_backward_pass() {
        let x = Var::from_tensor(&fixed(&[5, 3, 6, 6], 0.2, DType::F32)).unwrap();
        let w = Var::from_tensor(&fixed(&[4, 3, 3, 3], 0.8, DType::F32)).unwrap();
        let y = conv2d_gemm(&x, &w, 2, 1).unwrap();
        let up = fixed(y.dims(), 1.7, DType::F32);
        let grads = (&y * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = conv2d_input_grad(&x, &w, &up, 2, 1).unwrap();
        let dw = conv2d_weight_grad(&x, &w, &up, 2, 1).unwrap();
        use crate::kernels::cpu_float::tensor_bits;
        assert_eq!(tensor_bits(&dx), tensor_bits(grads.get(&x).unwrap()));
        assert_eq!(tensor_bits(&dw), tensor_bits(grads.get(&w).unwrap()));
        let wrong = fixed(&[5, 4, 6, 6], 0.0, DType::F32);
        assert!(conv2d_weight_grad(&x, &w, &wrong, 2, 1).is_err());
    }

    /// An Inf in the weight keeps the input gradient off the row-reading path, whose border
    /// zeros would meet it (NaN) where col2im has no term at all.
    #[test]
    fn an_infinite_weight_keeps_the_input_gradient_bits() {
        if !panel_gemm::available::<f32>() {
            eprintln!("no AVX-512 on this CPU: the row-reading path does not run here");
            return;
        }
        let (g, o) = (square(1, 8, 16, 3, 1, 1), 128);
        assert!(PanelOps::for_layer(&g, o).input_grad_rows);
        let mut w = signed_values(o * g.row_len(), 1.1);
        let gout = signed_values(o * g.pixels(), 2.9);
        for infinite in [false, true] {
            if infinite {
                // Output channel 0, input channel 0, tap (ky, kx) = (0, 1).
                w[1] = f32::INFINITY;
            }
            let fastest = bits(grad_input_f32(&g, o, &gout, &w));
            assert_eq!(
                fastest,
                bits(grad_input(&g, o, &gout, &w)),
                "Inf: {infinite}"
            );
        }
    }

    /// The panel path's per-layer choice follows the measurements in [`PanelOps`]' comment.
    #[test]
    fn panel_ops_follow_the_measured_rule() {
        let g = |c, h, k, stride| square(64, c, h, k, stride, k / 2);
        let ops = |g: ConvGeometry, o| {
            let p = PanelOps::for_layer(&g, o);
            (p.forward, p.input_grad, p.weight_grad)
        };
        if !panel_gemm::available::<f32>() {
            assert_eq!(ops(g(512, 4, 3, 1), 512), (false, false, false));
            return;
        }
        let skips = |g: ConvGeometry, o| {
            let p = PanelOps::for_layer(&g, o);
            (p.skip_forward, p.skip_input_grad, p.skip_weight_grad)
        };
        assert_eq!(skips(g(512, 4, 3, 1), 512), (true, true, true));
        assert_eq!(skips(g(256, 8, 3, 1), 256), (true, true, true));
        assert_eq!(skips(g(128, 16, 3, 1), 128), (false, false, true));
        assert_eq!(skips(g(64, 32, 3, 1), 64), (false, false, true));
        assert_eq!(
            skips(g(160, 32, 3, 1), 160),
            (false, false, false),
            "partial panels"
        );
        assert_eq!(
            skips(g(256, 8, 3, 2), 512),
            (false, false, true),
            "stride 2"
        );
        assert_eq!(
            skips(g(128, 16, 3, 2), 256),
            (false, false, false),
            "stride 2"
        );
        assert_eq!(
            skips(g(256, 8, 1, 1), 512),
            (false, false, false),
            "no padding"
        );
        let rows = |g: ConvGeometry, o| PanelOps::for_layer(&g, o).forward_rows;
        assert!(rows(g(64, 32, 3, 1), 64) && rows(g(128, 16, 3, 1), 128));
        assert!(!rows(g(256, 8, 3, 1), 256), "8-pixel rows");
        assert!(rows(g(64, 32, 3, 2), 128), "stride 2, output rows of 16");
        assert!(!rows(g(128, 16, 3, 2), 256), "stride 2, output rows of 8");
        assert!(!rows(g(64, 32, 1, 2), 128), "1×1 at stride 2");
        assert!(!rows(g(3, 32, 3, 1), 64), "stem");
        let input_rows = |g: ConvGeometry, o| PanelOps::for_layer(&g, o).input_grad_rows;
        assert!(input_rows(g(128, 16, 3, 1), 128) && input_rows(g(160, 32, 3, 1), 160));
        assert!(input_rows(g(64, 32, 3, 1), 64) && input_rows(g(16, 16, 3, 1), 16));
        assert!(!input_rows(g(256, 8, 3, 1), 256), "8-pixel rows");
        assert!(!input_rows(g(64, 32, 3, 2), 128), "stride 2");
        assert!(!input_rows(g(512, 16, 3, 1), 600), "two k-chunks");
        assert_eq!(ops(g(3, 32, 3, 1), 64), (false, false, false), "stem");
        assert_eq!(
            ops(g(8, 32, 3, 1), 8),
            (true, true, false),
            "8 channels at 32×32"
        );
        assert_eq!(
            ops(g(16, 16, 3, 1), 16),
            (true, true, true),
            "16 channels at 16×16"
        );
        assert_eq!(ops(g(3, 32, 3, 1), 8), (false, false, true), "narrow stem");
        assert_eq!(
            ops(g(8, 32, 1, 2), 16),
            (false, false, true),
            "narrow shortcut"
        );
        assert_eq!(
            ops(g(32, 8, 1, 2), 64),
            (false, false, true),
            "shortcut onto 4×4"
        );
        assert_eq!(ops(g(4, 32, 3, 1), 4), (false, false, false), "4 channels");
        assert_eq!(
            skips(g(32, 8, 3, 1), 32),
            (true, true, false),
            "narrow: channels would fill 32 of 64 lanes"
        );
        assert!(rows(g(8, 32, 3, 1), 8) && input_rows(g(8, 32, 3, 1), 8));
        let runs = |g: ConvGeometry, o| PanelOps::for_layer(&g, o).weight_grad_runs;
        assert!(runs(g(64, 32, 3, 1), 64) && runs(g(128, 16, 3, 1), 128));
        assert!(
            runs(g(8, 32, 3, 1), 8) && runs(g(32, 8, 3, 1), 32),
            "narrow"
        );
        assert!(
            !runs(g(256, 8, 3, 1), 256) && !runs(g(64, 4, 3, 1), 64),
            "≤ 64 pixels"
        );
        assert!(
            runs(g(256, 8, 3, 2), 512) && runs(g(16, 16, 3, 2), 32),
            "stride 2"
        );
        assert!(runs(g(3, 32, 3, 1), 8) && runs(g(3, 32, 3, 1), 64), "stems");
        assert_eq!(ops(g(64, 32, 3, 1), 64), (true, false, false));
        assert_eq!(ops(g(64, 32, 3, 2), 128), (true, true, true), "phase-split");
        assert_eq!(ops(g(64, 32, 1, 2), 128), (false, true, true));
        assert_eq!(ops(g(128, 16, 3, 1), 128), (true, true, true));
        assert_eq!(ops(g(256, 8, 3, 1), 256), (true, true, true));
        assert_eq!(ops(g(512, 4, 3, 1), 512), (true, true, true));
    }

    /// The AVX-512 panel path gives the `gemm` crate path's bits: forward, input gradient and
    /// weight gradient, over shapes with one and several images per slab, pixel counts and
    /// channel counts that leave partial panels (one, two and three live vectors), strides 1 and 2, 1×1 kernels and receptive
    /// fields of one, two and three k-chunks. Where the CPU lacks AVX-512 there is no panel
    /// path to compare, and the test says so.
    #[test]
    fn panel_path_equals_the_gemm_path_bit_for_bit() {
        if !panel_gemm::available::<f32>() {
            eprintln!("no AVX-512 on this CPU: the panel path does not run here");
            return;
        }
        let values = |len: usize, salt: f32| -> Vec<f32> {
            (0..len)
                .map(|i| (i as f32 * 0.61 + salt).sin() * 1e3f32.powi(i as i32 % 3 - 1))
                .collect()
        };
        // (n, c, h, o, k, stride, padding)
        for (n, c, h, o, k, s, pad) in [
            (3, 3, 5, 7, 3, 1, 1),
            (9, 64, 4, 13, 3, 1, 1),
            (2, 60, 10, 5, 3, 2, 1),
            (5, 8, 9, 6, 1, 2, 0),
            (4, 16, 8, 70, 1, 1, 0),
            (2, 130, 3, 4, 3, 1, 1),
            (17, 2, 4, 3, 3, 1, 0),
            (1, 3, 33, 64, 3, 1, 1),
            // Last panels with three live vectors (pixels and receptive fields of 33 to 48).
            (3, 4, 6, 5, 3, 1, 1),
            (2, 5, 7, 11, 3, 1, 1),
            // Rows of 16, 32 and 64 pixels (the direct forward): 2 and 3 k-chunks, 5×5.
            (2, 70, 16, 9, 3, 1, 1),
            (1, 130, 32, 13, 3, 1, 1),
            (3, 5, 16, 7, 5, 1, 2),
            (1, 4, 64, 6, 3, 1, 1),
            // Stride 2 from the phase-split copy: output rows of 16 and 32, 2 and 3 k-chunks.
            (2, 70, 32, 9, 3, 2, 1),
            (1, 5, 64, 7, 3, 2, 1),
            (1, 130, 32, 13, 3, 2, 1),
        ] {
            let g = square(n, c, h, k, s, pad);
            let x = values(g.n * g.image_len(), 0.3);
            let w = values(o * g.row_len(), 1.1);
            let gout = values(g.n * o * g.pixels(), 2.9);
            let what = format!("{g:?} o={o}");
            assert_eq!(
                bits(forward_panels(&g, o, &x, &w)),
                bits(forward(&g, o, &x, &w)),
                "forward {what}"
            );
            if panel_gemm::rows_apply(&g) {
                let direct = bits(forward_rows(&g, o, &x, &w));
                assert_eq!(direct, bits(forward(&g, o, &x, &w)), "forward rows {what}");
            }
            if panel_gemm::input_rows_apply(&g, o) {
                let signed = signed_values(gout.len(), 0.7);
                for go in [&gout, &signed] {
                    let direct = bits(grad_input_rows(&g, o, go, &w));
                    let columns = bits(grad_input(&g, o, go, &w));
                    assert_eq!(direct, columns, "input gradient rows {what}");
                }
            }
            assert_eq!(
                bits(grad_input_panels(&g, o, &gout, &w)),
                bits(grad_input(&g, o, &gout, &w)),
                "input gradient {what}"
            );
            assert_eq!(
                bits(grad_weight_panels(&g, o, &x, &gout)),
                bits(grad_weight(&g, o, &x, &gout)),
                "weight gradient {what}"
            );
        }
    }

    /// The weight gradient read in place from bordered channel-minor copies
    /// ([`conv_weight_runs`]) gives the column path's bits: kernel rows of 3·c values that
    /// fill 6, 9, 15, 24, 48, 51 and 96 lanes of their whole vectors (the rest read the next
    /// pixels, past the copy's end for the last one), strides 1 and 2 (odd and even sides), maps of one row, non-square maps, one and
    /// several images per slab with a shorter last slab, partial row panels, one to three
    /// k-chunks, signed zeros, and an Inf and a NaN in the images and the upstream gradient
    /// (the padding terms then make NaN on both paths).
    #[test]
    fn runs_path_equals_the_gemm_path_bit_for_bit() {
        if !panel_gemm::available::<f32>() {
            eprintln!("no AVX-512 on this CPU: the in-place weight gradient does not run here");
            return;
        }
        // (n, c, h, w, o, stride)
        for (n, c, h, w, o, stride) in [
            (3, 3, 5, 5, 7, 1),
            (5, 8, 4, 6, 13, 1),
            (2, 16, 1, 9, 6, 1),
            (1, 17, 33, 31, 5, 1),
            (7, 32, 8, 8, 32, 1),
            (2, 8, 40, 37, 9, 1),
            (18, 2, 3, 2, 1, 1),
            (3, 8, 7, 9, 5, 2),
            (9, 16, 8, 8, 6, 2),
            (1, 17, 5, 6, 3, 2),
            (2, 5, 33, 32, 11, 2),
        ] {
            let g = ConvGeometry {
                n,
                c,
                h,
                w,
                k: 3,
                stride,
                padding: 1,
            };
            assert!(conv_weight_runs::applies(&g));
            let x = signed_values(g.n * g.image_len(), 0.3);
            let gout = signed_values(g.n * o * g.pixels(), 2.9);
            let what = format!("{g:?} o={o}");
            assert_eq!(
                bits(grad_weight_runs(&g, o, &x, &gout)),
                bits(grad_weight(&g, o, &x, &gout)),
                "weight gradient {what}"
            );
            let (mut xs, mut gs) = (x.clone(), gout.clone());
            (xs[x.len() / 2], gs[gout.len() / 3]) = (f32::INFINITY, f32::NAN);
            let (runs, columns) = (
                grad_weight_runs(&g, o, &xs, &gs),
                grad_weight(&g, o, &xs, &gs),
            );
            let nan_or_bits = |v: Vec<f32>| -> Vec<Option<u32>> {
                v.into_iter()
                    .map(|x| (!x.is_nan()).then(|| x.to_bits()))
                    .collect()
            };
            assert_eq!(nan_or_bits(runs), nan_or_bits(columns), "non-finite {what}");
        }
        assert!(
            !conv_weight_runs::applies(&square(2, 8, 8, 3, 3, 1)),
            "stride 3"
        );
        assert!(!conv_weight_runs::applies(&square(2, 8, 8, 1, 1, 0)), "1×1");
    }

    /// The padding-skipping forward and input gradient ([`conv_skip`]) give the column path's
    /// bits: full and partial class panels, one to three k-chunks, 3×3 and 5×5 kernels, maps
    /// smaller than the kernel's reach, and signed zeros among the inputs. A weight with an
    /// Inf is refused (the column path makes NaN of its padding terms), and so are input
    /// gradients over more than one k-chunk of output channels.
    #[test]
    fn skip_path_equals_the_gemm_path_bit_for_bit() {
        if !panel_gemm::available::<f32>() {
            eprintln!("no AVX-512 on this CPU: the skipping path does not run here");
            return;
        }
        let values = signed_values;
        // (n, c, h, o, k, stride, padding); the forward and input gradient skip at stride 1
        // only, the weight gradient at any stride.
        for (n, c, h, o, k, stride, pad) in [
            (64, 8, 4, 70, 3, 1, 1),
            (3, 5, 5, 7, 3, 1, 1),
            (9, 130, 4, 13, 3, 1, 1),
            (2, 6, 7, 9, 5, 1, 2),
            (5, 64, 8, 64, 3, 1, 1),
            (4, 3, 2, 6, 3, 1, 2),
            (1, 3, 33, 64, 3, 1, 1),
            (5, 70, 9, 13, 3, 2, 1),
            (4, 3, 8, 6, 1, 2, 0),
            (3, 9, 7, 5, 5, 2, 2),
            (2, 4, 10, 7, 3, 3, 1),
            // Channels filling whole panels (read in place): 32×32, two k-chunks; stride 2.
            (2, 64, 32, 6, 3, 1, 1),
            (3, 128, 9, 5, 3, 2, 1),
        ] {
            let g = square(n, c, h, k, stride, pad);
            let x = values(g.n * g.image_len(), 0.3);
            let w = values(o * g.row_len(), 1.1);
            let gout = values(g.n * o * g.pixels(), 2.9);
            let what = format!("{g:?} o={o}");
            if stride == 1 {
                assert!(
                    conv_skip::forward_applies(&g, &x, &w) && conv_skip::input_grad_applies(&g, o)
                );
                assert_eq!(
                    bits(conv_skip::forward(&g, o, &x, &w)),
                    bits(forward(&g, o, &x, &w)),
                    "forward {what}"
                );
                assert_eq!(
                    bits(conv_skip::grad_input(&g, o, &gout, &w)),
                    bits(grad_input(&g, o, &gout, &w)),
                    "input gradient {what}"
                );
            }
            assert!(conv_skip::weight_grad_applies(&g, &gout));
            assert_eq!(
                bits(grad_weight_skipping(&g, o, &x, &gout)),
                bits(grad_weight(&g, o, &x, &gout)),
                "weight gradient {what}"
            );
        }
        let g = square(2, 4, 4, 3, 1, 1);
        let mut w = values(5 * g.row_len(), 1.1);
        assert!(conv_skip::forward_applies(
            &g,
            &values(g.n * g.image_len(), 0.3),
            &w
        ));
        w[17] = f32::INFINITY;
        assert!(!conv_skip::forward_applies(
            &g,
            &values(g.n * g.image_len(), 0.3),
            &w
        ));
        assert!(conv_skip::input_grad_applies(&g, 512) && !conv_skip::input_grad_applies(&g, 513));
        let mut gout = values(g.n * 5 * g.pixels(), 2.9);
        assert!(conv_skip::weight_grad_applies(&g, &gout));
        gout[9] = f32::NAN;
        assert!(!conv_skip::weight_grad_applies(&g, &gout));
        assert!(
            !conv_skip::input_grad_applies(&square(2, 4, 4, 3, 2, 1), 8),
            "stride 2"
        );
    }

    /// Batches that leave a partial 16-image vector go through the skipping path for their
    /// whole vectors and the column path for the rest; the joined result has the column
    /// path's bits, forward and input gradient, whatever the split.
    #[test]
    fn a_batch_outside_whole_vectors_keeps_the_column_bits() {
        if !panel_gemm::available::<f32>() {
            eprintln!("no AVX-512 on this CPU: the skipping path does not run here");
            return;
        }
        let values = signed_values;
        for (n, c, h, o) in [
            (7, 8, 4, 64),
            (20, 8, 4, 64),
            (37, 16, 5, 70),
            (32, 8, 3, 64),
        ] {
            let g = square(n, c, h, 3, 1, 1);
            let ops = PanelOps::for_layer(&g, o);
            assert!(ops.skip_forward && ops.skip_input_grad, "{g:?}");
            let x = values(g.n * g.image_len(), 0.3);
            let w = values(o * g.row_len(), 1.1);
            let gout = values(g.n * o * g.pixels(), 2.9);
            assert_eq!(
                bits(forward_f32(&g, o, &x, &w)),
                bits(forward(&g, o, &x, &w)),
                "forward n={n}"
            );
            assert_eq!(
                bits(grad_input_f32(&g, o, &gout, &w)),
                bits(grad_input(&g, o, &gout, &w)),
                "input gradient n={n}"
            );
        }
    }

    #[test]
    fn rejects_a_weight_that_does_not_fit() {
        let x = fixed(&[1, 3, 4, 4], 0.0, DType::F32);
        let w = fixed(&[2, 2, 3, 3], 0.0, DType::F32);
        let err = conv2d_gemm(&x, &w, 1, 1).unwrap_err();
        assert!(err.to_string().contains("does not fit weight"), "{err}");
    }
}
