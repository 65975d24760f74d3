//! The convolution's forward and gradients (stride 1; the weight gradient at any stride) on
//! the AVX-512 panel path with the kernel taps that fall on padding left out: the batch's
//! pixels grouped by padding class ([`super::tap_classes`]), each class's panels holding only
//! its live taps. Panels are
//! copied whole vectors at a time ([`pack_in_place`]) from a batch-minor copy of the images
//! (forward) or of the upstream gradient (input gradient), where a vector's 16 images lie side
//! by side. (A tile reading those in place was slower: it jumps through the copy once per row
//! panel, where packed panels stream from L2 in order.) The weight gradient reads a
//! channel-minor copy of the images, where a pixel's 64 channels lie side by side, in place
//! (packed only where the channels leave a partial panel).
//!
//! All three give the column-matrix path's bits ([`super::conv_gemm`]):
//!
//! * forward: each output's chunk sums are the same FMA chains less terms `w · (+0)`, which
//!   change nothing while the weight is finite ([`Terms::Only`]); a weight with an Inf or NaN
//!   is left to the column path, where such a term makes NaN;
//! * input gradient: a dead tap's column-gradient value is computed there and then dropped by
//!   col2im, so here it is never computed; each input pixel gets its live taps' values added
//!   to zero in ascending tap order, which is col2im's order. Only where the output channels
//!   make one k-chunk: with several, col2im adds the chunks' sum, not the chunks one by one;
//! * weight gradient: per slab and tap, the chains over the slab's pixels less the pixels
//!   where the tap reads padding, terms `gout · (+0)` (an upstream gradient with an Inf or
//!   NaN is left to the column path). The partials come tap-major ([taps, o, c] per slab)
//!   so that each tile stores whole vectors; the caller sums them in slab order as the
//!   column path does and [`tap_major_to_weight`] reorders the sum once.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::cpu_float::{CpuFloat, all_finite, k_chunks, par_init, par_init_reserving, par_pushed};
use super::im2col::ConvGeometry;
use super::panel_gemm::{
    self, InPlace, Output, PANEL_PIXELS, PackedRows, PixelSide, Terms, pack_in_place, product,
};
use super::tap_classes::{ClassVectors, PANEL_VECTORS, TapClasses, VECTOR_LANES};
use super::transpose::{transposed, transposed_each};

/// Panels of one class that one unit of work multiplies together.
const UNIT_PANELS: usize = 4;

/// Whether the forward may run here: stride 1, panel path available, a finite weight, and
/// every input offset inside an i32.
pub fn forward_applies(g: &ConvGeometry, x: &[f32], w: &[f32]) -> bool {
    g.stride == 1 && panel_gemm::available::<f32>() && x.len() < i32::MAX as usize && all_finite(w)
}

/// Whether the input gradient may run here: stride 1, panel path available, `o` channels in
/// one k-chunk, and every upstream-gradient offset inside an i32.
pub fn input_grad_applies(g: &ConvGeometry, o: usize) -> bool {
    g.stride == 1
        && panel_gemm::available::<f32>()
        && k_chunks(o).count() == 1
        && g.n * o * g.pixels() < i32::MAX as usize
}

/// Whether the weight gradient may run here (any stride): panel path available, a finite
/// upstream gradient, and every input offset inside an i32.
pub fn weight_grad_applies(g: &ConvGeometry, gout: &[f32]) -> bool {
    panel_gemm::available::<f32>() && g.n * g.image_len() < i32::MAX as usize && all_finite(gout)
}

/// The slabs' partial weight gradients (slabs of `per_slab` images, as the column path cuts
/// them), tap-major: [slabs, taps, o, c]. Call only where [`weight_grad_applies`] holds.
pub fn weight_partials(
    g: &ConvGeometry,
    o: usize,
    (x, gout): (&[f32], &[f32]),
    per_slab: usize,
) -> Vec<f32> {
    assert!(panel_gemm::available::<f32>() && per_slab > 0);
    let (k, c, hw, s) = (g.k, g.c, g.h * g.w, g.stride);
    let (p, ow) = (g.pixels(), g.ow());
    // Output (oy, ox) reads input (oy·s + ky − padding, ox·s + kx − padding) at tap (ky, kx).
    let input = |q: usize, t: usize| {
        let iy = (q / ow * s + t / k)
            .checked_sub(g.padding)
            .filter(|&y| y < g.h)?;
        let ix = (q % ow * s + t % k)
            .checked_sub(g.padding)
            .filter(|&x| x < g.w)?;
        Some(iy * g.w + ix)
    };
    // Per tap, the output pixels of one image where it reads inside the image, ascending.
    let live_px: Vec<Vec<usize>> = (0..k * k)
        .map(|t| (0..p).filter(|&q| input(q, t).is_some()).collect())
        .collect();
    // The images channel-minor ([n, h·w, c]): a panel is 64 channels of one pixel.
    let xh = transposed_each(x, (g.n, c, hw));
    let panels = c.div_ceil(PANEL_PIXELS);
    let bases: Vec<[isize; 4]> = (0..panels)
        .map(|cp| std::array::from_fn(|v| (cp * PANEL_PIXELS + VECTOR_LANES * v) as isize))
        .collect();
    let masks: Vec<[u16; 4]> = (0..panels)
        .map(|cp| {
            std::array::from_fn(|v| {
                let live = c
                    .saturating_sub(cp * PANEL_PIXELS + VECTOR_LANES * v)
                    .min(16);
                ((1u32 << live) - 1) as u16
            })
        })
        .collect();
    let slabs = g.n.div_ceil(per_slab);
    let each = o * g.row_len();
    let fill = |slab: usize, dst: *mut f32| {
        let cnt = per_slab.min(g.n - slab * per_slab);
        let go = &gout[slab * per_slab * o * p..][..cnt * o * p];
        let rows = PackedRows::channels(go, (o, p, cnt));
        for (t, px) in live_px.iter().enumerate() {
            let terms: Vec<u32> = (0..cnt)
                .flat_map(|j| px.iter().map(move |&q| (j * p + q) as u32))
                .collect();
            let offsets: Vec<i32> = terms
                .iter()
                .map(|&q| {
                    let (j, at) = (q as usize / p, input(q as usize % p, t).unwrap_or(0));
                    (((slab * per_slab + j) * hw + at) * c) as i32
                })
                .collect();
            let side = InPlace {
                src: &xh,
                bases: &bases,
                offsets: &offsets,
                tap_of: &vec![0; terms.len()],
                masks: &masks,
                taps: 1,
            };
            let out = Output::matrix(dst.wrapping_add(t * o * c), c);
            // Channels filling whole panels: the tile reads each pixel's 64 channels where they
            // lie (128→128 at 16×16: 25.4 against 27.2 ms packed); otherwise they are packed.
            let whole = side.every_lane_live();
            let len = if whole {
                0
            } else {
                panels * terms.len() * PANEL_PIXELS
            };
            f32::with_scratch(0, len, |packed| {
                let pixel_side = if whole {
                    PixelSide::InPlace(side)
                } else {
                    pack_in_place(&side, packed);
                    PixelSide::Packed(packed)
                };
                // SAFETY: available (asserted); (row < o, channel < c) is
                // dst[t·o·c + row·c + channel], inside this slab's partial.
                unsafe { product(&rows, (pixel_side, c, Terms::Only(&terms)), out, false) };
            });
        }
    };
    // SAFETY: each slab's partial is [taps, o, c], and for every tap the product stores each
    // (row < o, channel < c) in its first k-chunk (a chunk without terms stores +0): every
    // element is written.
    unsafe {
        par_init(slabs * each, each, |s, part| {
            fill(s, part.as_mut_ptr().cast())
        })
    }
}

/// A weight gradient summed tap-major ([taps, o, c]) as [o, c, taps].
pub fn tap_major_to_weight(sum: &[f32], (o, c, taps): (usize, usize, usize)) -> Vec<f32> {
    assert!(sum.len() >= o * c * taps);
    par_pushed(o * c * taps, c * taps, |oo, sink| {
        for ch in 0..c {
            (0..taps).for_each(|t| sink.push(sum[(t * o + oo) * c + ch]));
        }
    })
}

/// The forward: `x` [n, c, h, w] and weight [o, c, k, k] give [n, o, oh, ow], bit for bit as
/// the column path. Call only where [`forward_applies`] holds.
pub fn forward(g: &ConvGeometry, o: usize, x: &[f32], w: &[f32]) -> Vec<f32> {
    forward_reserving(g, o, x, w, 0)
}

/// [`forward`] into a vector with room for `spare` more values.
pub fn forward_reserving(
    g: &ConvGeometry,
    o: usize,
    x: &[f32],
    w: &[f32],
    spare: usize,
) -> Vec<f32> {
    assert!(g.stride == 1 && panel_gemm::available::<f32>());
    let (k, hw, n) = (g.k, g.h * g.w, g.n);
    let (p, ow) = (g.pixels(), g.ow());
    let classes = TapClasses::of_outputs((g.h, g.w, k), g.padding);
    let layout = classes.vectors(n, UNIT_PANELS);
    // The images batch-minor ([c, h·w, n]): a vector is one pixel of 16 images.
    let xt = transposed(x, (n, g.c * hw));
    // Per class: its live terms (c, tap) in term order, and each one's offset from the
    // vector's tap (0, 0).
    let live: Vec<(Vec<u32>, Vec<i32>)> = classes
        .classes
        .iter()
        .map(|class| {
            (0..g.c)
                .flat_map(|c| class.taps.iter().map(move |&t| (c, t)))
                .map(|(c, t)| {
                    let at = c * hw + t / k * g.w + t % k;
                    ((c * k * k + t) as u32, (at * n) as i32)
                })
                .unzip()
        })
        .collect();
    let zeros = vec![0u8; live.iter().map(|l| l.0.len()).max().unwrap_or(0)];
    let weight = PackedRows::new(w, (o, g.row_len()), (g.row_len(), 1));
    let unit = |(first, end): (usize, usize), dst: &mut [MaybeUninit<f32>]| {
        let (terms, offsets) = &live[layout.panels[first].0];
        // Output (oy, ox) reads input (oy + ky − padding, ox + kx − padding).
        let (pad, w) = (g.padding as isize, g.w as isize);
        let (bases, masks) = layout.bases(first..end, |q| {
            (q / ow) as isize * w + (q % ow) as isize - pad * w - pad
        });
        // One k-chunk at a time: packed panels of a chunk (at most 4 × 512 terms × 64 lanes,
        // 512 KiB) stay in L2 for the product, where all of a unit's terms (up to 4.7 MB on
        // 512 channels) went out to L3 before the product read them back.
        for (ci, (k0, k1)) in k_chunks(g.row_len()).enumerate() {
            let (h0, h1) = Terms::Only(terms).held((k0, k1));
            let side = InPlace {
                src: &xt,
                bases: &bases,
                offsets: &offsets[h0..h1],
                tap_of: &zeros[..h1 - h0],
                masks: &masks,
                taps: 1,
            };
            f32::with_scratch(0, (end - first) * (h1 - h0) * PANEL_PIXELS, |panels| {
                pack_in_place(&side, panels);
                let operand = (
                    PixelSide::Packed(panels),
                    (end - first) * PANEL_PIXELS,
                    Terms::Only(&terms[h0..h1]),
                );
                // SAFETY: available (asserted); (row < o, lane < (end − first)·64) is
                // dst[lane / 64 · o · 64 + row · 64 + lane % 64], inside this unit's dst.
                // The first chunk stores, later ones add with one rounding: product's own
                // chunk order, and the chunks these terms leave empty are skipped.
                unsafe { product(&weight, operand, unit_output(dst, o), ci > 0) };
            });
        }
    };
    // SAFETY: a product that does not add stores every (row < o, lane < (end − first)·64)
    // of its output: the unit's whole part.
    let buf = unsafe { by_units(&layout, o, false, unit) };
    to_images(&layout, &buf, (o, p), spare)
}

/// The input gradient: upstream gradient [n, o, oh, ow] and weight [o, c, k, k] give
/// [n, c, h, w], bit for bit as the column path. Call only where [`input_grad_applies`] holds.
pub fn grad_input(g: &ConvGeometry, o: usize, gout: &[f32], w: &[f32]) -> Vec<f32> {
    grad_input_reserving(g, o, gout, w, 0)
}

/// [`grad_input`] into a vector with room for `spare` more values.
pub fn grad_input_reserving(
    g: &ConvGeometry,
    o: usize,
    gout: &[f32],
    w: &[f32],
    spare: usize,
) -> Vec<f32> {
    assert!(input_grad_applies(g, o));
    let (k, hw, n) = (g.k, g.h * g.w, g.n);
    let (p, ow) = (g.pixels(), g.ow());
    let classes = TapClasses::of_inputs((g.h, g.w, k), g.padding);
    let layout = classes.vectors(n, UNIT_PANELS);
    // The upstream gradient batch-minor ([o, oh·ow, n]).
    let gt = transposed(gout, (n, o * p));
    // Wᵀ one tap at a time: rows c, terms o.
    let per_tap = PackedRows::taps(w, (o, g.c, k * k));
    let offsets: Vec<i32> = (0..o).map(|oo| (oo * p * n) as i32).collect();
    let zeros = vec![0u8; o];
    let unit = |(first, end): (usize, usize), dst: &mut [MaybeUninit<f32>]| {
        for &t in &classes.classes[layout.panels[first].0].taps {
            // Input (iy, ix) receives tap (ky, kx) from output
            // (iy + padding − ky, ix + padding − kx).
            let pad = g.padding as isize;
            let (dy, dx) = (pad - (t / k) as isize, pad - (t % k) as isize);
            let (bases, masks) = layout.bases(first..end, |q| {
                ((q / g.w) as isize + dy) * ow as isize + (q % g.w) as isize + dx
            });
            let side = InPlace {
                src: &gt,
                bases: &bases,
                offsets: &offsets,
                tap_of: &zeros,
                masks: &masks,
                taps: 1,
            };
            f32::with_scratch(0, (end - first) * o * PANEL_PIXELS, |panels| {
                pack_in_place(&side, panels);
                let operand = (
                    PixelSide::Packed(panels),
                    (end - first) * PANEL_PIXELS,
                    Terms::All,
                );
                // SAFETY: available (asserted); (row < c, lane < (end − first)·64) is
                // dst[lane / 64 · c · 64 + row · 64 + lane % 64], inside this unit's dst.
                unsafe { product(&per_tap[t], operand, unit_output(dst, g.c), true) };
            });
        }
    };
    // SAFETY: zeroed, so the units need not write every value.
    let buf = unsafe { by_units(&layout, g.c, true, unit) };
    to_images(&layout, &buf, (g.c, hw), spare)
}

/// Runs `unit((first panel, end panel), its rows)` for every unit of `layout` in parallel,
/// over a buffer of panels × `rows` × 64 lanes (panel-major), and returns the buffer. Each
/// unit's part is zeroed first when `zeroed` (the input gradient adds into it).
///
/// # Safety
/// Unless `zeroed`, `unit` writes every value of its part.
unsafe fn by_units(
    layout: &ClassVectors,
    rows: usize,
    zeroed: bool,
    unit: impl Fn((usize, usize), &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let per_panel = rows * PANEL_PIXELS;
    let len = layout.panels.len() * per_panel;
    let mut buf: Vec<f32> = Vec::with_capacity(len);
    let mut parts = Vec::with_capacity(layout.units.len());
    let mut rest = &mut buf.spare_capacity_mut()[..len];
    for &(first, end) in &layout.units {
        let (head, tail) = rest.split_at_mut((end - first) * per_panel);
        parts.push(((first, end), head));
        rest = tail;
    }
    assert!(rest.is_empty(), "the units cover every panel");
    parts.into_par_iter().for_each(|(range, dst)| {
        if zeroed {
            dst.fill(MaybeUninit::new(0.0));
        }
        unit(range, dst)
    });
    // SAFETY: the parts cover 0..len; each was zeroed, or its unit wrote it (the caller's
    // contract).
    unsafe { buf.set_len(len) };
    buf
}

/// Where [`product`] stores a unit's panels: (row, lane q) at
/// `dst[q / 64 · rows · 64 + row · 64 + q % 64]`.
fn unit_output(dst: &mut [MaybeUninit<f32>], rows: usize) -> Output {
    Output {
        ptr: dst.as_mut_ptr().cast(),
        pixels: PANEL_PIXELS,
        image_stride: rows * PANEL_PIXELS,
        row_stride: PANEL_PIXELS,
    }
}

/// The panel-major buffer back in NCHW order ([n, rows, pixels]), with room for `spare` more
/// values: per block of 16 images, row and 16 pixels, the 16 pixels' vectors transposed into
/// the 16 images' runs.
fn to_images(
    layout: &ClassVectors,
    buf: &[f32],
    (rows, pixels): (usize, usize),
    spare: usize,
) -> Vec<f32> {
    assert!(panel_gemm::available::<f32>());
    let n = layout.images;
    let blocks = n.div_ceil(VECTOR_LANES);
    let slots = layout.slots(pixels);
    assert!(
        slots
            .iter()
            .all(|&slot| slot < layout.panels.len() * PANEL_VECTORS)
            && buf.len() >= layout.panels.len() * rows * PANEL_PIXELS,
        "every (pixel, block of images) has a vector in the buffer"
    );
    // Each (pixel, block)'s row 0 in buf.
    let at: Vec<usize> = slots
        .into_iter()
        .map(|slot| {
            slot / PANEL_VECTORS * rows * PANEL_PIXELS + slot % PANEL_VECTORS * VECTOR_LANES
        })
        .collect();
    let chunk = VECTOR_LANES * rows * pixels;
    // SAFETY: AVX-512 (asserted); chunk b is images 16b .. 16b + m (m = its length / (rows ·
    // pixels)), each of whose rows and pixels gets one store; every read is a whole vector
    // of a panel of buf (slots and buf's length asserted above).
    unsafe {
        par_init_reserving(n * rows * pixels, spare, chunk, |b, part| {
            let m = part.len() / (rows * pixels);
            let at = |px: usize| at[px * blocks + b];
            to_images_block(buf, &at, (rows, pixels, m), part.as_mut_ptr().cast())
        })
    }
}

/// One block of `m` ≤ 16 images of [`to_images`]: `at(pixel)` is where the block's vector of
/// that pixel starts in `buf` (row 0).
///
/// # Safety
/// AVX-512F; `at(px) + r·64 + 16` ≤ `buf.len()` for every pixel and row; `dst` holds
/// `m · rows · pixels` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn to_images_block(
    buf: &[f32],
    at: &dyn Fn(usize) -> usize,
    (rows, pixels, m): (usize, usize, usize),
    dst: *mut f32,
) {
    use std::arch::x86_64::*;
    let starts: Vec<usize> = (0..pixels).map(at).collect();
    for r in 0..rows {
        for px0 in (0..pixels).step_by(16) {
            let pn = (pixels - px0).min(16);
            let mut v = [_mm512_setzero_ps(); 16];
            for (i, x) in v.iter_mut().enumerate().take(pn) {
                // SAFETY: a whole vector of buf (the caller's contract).
                *x = unsafe {
                    _mm512_loadu_ps(buf.as_ptr().add(starts[px0 + i] + r * PANEL_PIXELS))
                };
            }
            let t = super::transpose::transpose16(v);
            let mask = ((1u32 << pn) - 1) as u16;
            for (j, x) in t.iter().enumerate().take(m) {
                // SAFETY: image j < m, row r, pixels px0 .. px0 + pn of dst.
                unsafe { _mm512_mask_storeu_ps(dst.add((j * rows + r) * pixels + px0), mask, *x) };
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn to_images_block(
    _: &[f32],
    _: &dyn Fn(usize) -> usize,
    _: (usize, usize, usize),
    _: *mut f32,
) {
    unreachable!("no AVX-512 off x86-64")
}
