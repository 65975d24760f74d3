//! The stride-1 convolution's forward and input gradient on the AVX-512 panel path with the
//! kernel taps that fall on padding left out: the batch's pixels grouped by padding class
//! ([`super::tap_classes`]), each class's panels holding only its live taps.
//!
//! Both give the column-matrix path's bits ([`super::conv_gemm`]):
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

use rayon::prelude::*;

use super::cpu_float::{CpuFloat, k_chunks, par_filled, par_pushed};
use super::im2col::ConvGeometry;
use super::panel_gemm::{
    self, Output, PANEL_PIXELS, PackedRows, PixelSide, Terms, gather_panel, product,
};
use super::tap_classes::{ClassPanels, TapClasses};

/// Panels of one class that one unit of work gathers and multiplies together.
const UNIT_PANELS: usize = 4;

/// Whether the forward may run here: stride 1, panel path available, a finite weight, and
/// every input offset inside an i32.
pub fn forward_applies(g: &ConvGeometry, x: &[f32], w: &[f32]) -> bool {
    g.stride == 1 && panel_gemm::available::<f32>() && x.len() < i32::MAX as usize && all_finite(w)
}

/// Whether no value of `v` is Inf or NaN (the factor that would meet a skipped padding zero).
fn all_finite(v: &[f32]) -> bool {
    v.par_chunks(1 << 14)
        .all(|c| c.iter().all(|x| x.is_finite()))
}

/// Whether the input gradient may run here: stride 1, panel path available, `o` channels in
/// one k-chunk, and every upstream-gradient offset inside an i32.
pub fn input_grad_applies(g: &ConvGeometry, o: usize) -> bool {
    g.stride == 1
        && panel_gemm::available::<f32>()
        && k_chunks(o).count() == 1
        && g.n * o * g.pixels() < i32::MAX as usize
}

/// Whether the weight gradient may run here: stride 1, panel path available, a finite
/// upstream gradient, and every input offset inside an i32.
pub fn weight_grad_applies(g: &ConvGeometry, x: &[f32], gout: &[f32]) -> bool {
    g.stride == 1
        && panel_gemm::available::<f32>()
        && x.len() < i32::MAX as usize
        && all_finite(gout)
}

/// The slabs' partial weight gradients (slabs of `per_slab` images, as the column path cuts
/// them), tap-major: [slabs, taps, o, c]. Call only where [`weight_grad_applies`] holds.
pub fn weight_partials(
    g: &ConvGeometry,
    o: usize,
    (x, gout): (&[f32], &[f32]),
    per_slab: usize,
) -> Vec<f32> {
    assert!(g.stride == 1 && panel_gemm::available::<f32>() && per_slab > 0);
    let (k, c, hw, il) = (g.k, g.c, g.h * g.w, g.image_len());
    let (p, ow) = (g.pixels(), g.ow());
    let classes = TapClasses::of_outputs((g.h, g.w, k), g.padding);
    // Per tap, the pixels of one image where it reads inside the image, ascending.
    let mut live_px: Vec<Vec<usize>> = vec![Vec::new(); k * k];
    for class in &classes.classes {
        for &t in &class.taps {
            live_px[t].extend(&class.pixels);
        }
    }
    live_px.iter_mut().for_each(|v| v.sort_unstable());
    let lane_panels: Vec<Vec<i32>> = (0..c)
        .step_by(PANEL_PIXELS)
        .map(|c0| {
            (c0..(c0 + PANEL_PIXELS).min(c))
                .map(|ch| (ch * hw) as i32)
                .collect()
        })
        .collect();
    let slabs = g.n.div_ceil(per_slab);
    par_filled(
        slabs * o * g.row_len(),
        o * g.row_len(),
        |s, dst: &mut [f32]| {
            let cnt = per_slab.min(g.n - s * per_slab);
            let xs = &x[s * per_slab * il..][..cnt * il];
            let go = &gout[s * per_slab * o * p..][..cnt * o * p];
            let rows = PackedRows::channels(go, (o, p, cnt));
            for (t, px) in live_px.iter().enumerate() {
                let (ky, kx) = (t / k, t % k);
                let terms: Vec<u32> = (0..cnt)
                    .flat_map(|j| px.iter().map(move |&q| (j * p + q) as u32))
                    .collect();
                // Pixel (oy, ox) of image j reads (oy + ky − padding, ox + kx − padding).
                let offsets: Vec<i32> = terms
                    .iter()
                    .map(|&q| {
                        let (j, oy, ox) = (q as usize / p, q as usize % p / ow, q as usize % ow);
                        (j * il + (oy + ky - g.padding) * g.w + ox + kx - g.padding) as i32
                    })
                    .collect();
                let held = terms.len() * PANEL_PIXELS;
                f32::with_scratch(0, lane_panels.len() * held, |panels| {
                    for (cp, lanes) in lane_panels.iter().enumerate() {
                        gather_panel(xs, lanes, &offsets, &mut panels[cp * held..][..held]);
                    }
                    let out = Output {
                        ptr: dst[t * o * c..].as_mut_ptr(),
                        pixels: c,
                        image_stride: 0,
                        row_stride: c,
                    };
                    // SAFETY: available (asserted); (row < o, channel < c) is
                    // dst[t·o·c + row·c + channel], inside this slab's dst.
                    unsafe {
                        product(
                            &rows,
                            (PixelSide::Packed(&panels[..]), c, Terms::Only(&terms)),
                            out,
                            false,
                        )
                    };
                })
            }
        },
    )
}

/// A weight gradient summed tap-major ([taps, o, c]) as [o, c, taps].
pub fn tap_major_to_weight(sum: &[f32], (o, c, taps): (usize, usize, usize)) -> Vec<f32> {
    par_filled(o * c * taps, c * taps, |oo, row: &mut [f32]| {
        for (i, d) in row.iter_mut().enumerate() {
            *d = sum[((i % taps) * o + oo) * c + i / taps];
        }
    })
}

/// The forward: `x` [n, c, h, w] and weight [o, c, k, k] give [n, o, oh, ow], bit for bit as
/// the column path. Call only where [`forward_applies`] holds.
pub fn forward(g: &ConvGeometry, o: usize, x: &[f32], w: &[f32]) -> Vec<f32> {
    assert!(g.stride == 1 && panel_gemm::available::<f32>());
    let (k, hw, il) = (g.k, g.h * g.w, g.image_len());
    let (p, ow) = (g.pixels(), g.ow());
    let classes = TapClasses::of_outputs((g.h, g.w, k), g.padding);
    let layout = classes.panels(g.n, PANEL_PIXELS, UNIT_PANELS);
    // Per class: its live terms (c, tap) in term order, and each one's offset in an image.
    let live: Vec<(Vec<u32>, Vec<i32>)> = classes
        .classes
        .iter()
        .map(|class| {
            (0..g.c)
                .flat_map(|c| class.taps.iter().map(move |&t| (c, t)))
                .map(|(c, t)| {
                    (
                        (c * k * k + t) as u32,
                        (c * hw + t / k * g.w + t % k) as i32,
                    )
                })
                .unzip()
        })
        .collect();
    let weight = PackedRows::new(w, (o, g.row_len()), (g.row_len(), 1));
    let buf = by_units(&layout, o, |(first, end), dst| {
        let (terms, offsets) = &live[layout.panels[first].0];
        let held = terms.len() * PANEL_PIXELS;
        f32::with_scratch(0, (end - first) * held, |panels| {
            for (j, &(_, s, e)) in layout.panels[first..end].iter().enumerate() {
                // Pixel (oy, ox) reads (oy + ky − padding, ox + kx − padding): its tap (0, 0).
                let lanes: Vec<i32> = layout.members[s..e]
                    .iter()
                    .map(|&q| {
                        let (img, oy, ox) = (q / p, q % p / ow, q % ow);
                        let at = img * il + oy * g.w + ox;
                        (at as i64 - (g.padding * g.w + g.padding) as i64) as i32
                    })
                    .collect();
                gather_panel(x, &lanes, offsets, &mut panels[j * held..][..held]);
            }
            let out = unit_output(dst, o);
            // SAFETY: available (asserted); (row < o, lane < (end − first)·64) is
            // dst[lane / 64 · o · 64 + row · 64 + lane % 64], inside this unit's dst.
            unsafe {
                let operand = (
                    PixelSide::Packed(&panels[..]),
                    (end - first) * PANEL_PIXELS,
                    Terms::Only(terms),
                );
                product(&weight, operand, out, false)
            };
        })
    });
    unscramble(&layout, &buf, (g.n, o, p))
}

/// The input gradient: upstream gradient [n, o, oh, ow] and weight [o, c, k, k] give
/// [n, c, h, w], bit for bit as the column path. Call only where [`input_grad_applies`] holds.
pub fn grad_input(g: &ConvGeometry, o: usize, gout: &[f32], w: &[f32]) -> Vec<f32> {
    assert!(input_grad_applies(g, o));
    let (k, hw) = (g.k, g.h * g.w);
    let (p, ow) = (g.pixels(), g.ow());
    let classes = TapClasses::of_inputs((g.h, g.w, k), g.padding);
    let layout = classes.panels(g.n, PANEL_PIXELS, UNIT_PANELS);
    // Wᵀ one tap at a time: rows c, terms o.
    let per_tap: Vec<PackedRows> = (0..k * k)
        .map(|t| PackedRows::new(&w[t..], (g.c, o), (k * k, g.row_len())))
        .collect();
    let offsets: Vec<i32> = (0..o).map(|oo| (oo * p) as i32).collect();
    let held = o * PANEL_PIXELS;
    let buf = by_units(&layout, g.c, |(first, end), dst| {
        let taps = &classes.classes[layout.panels[first].0].taps;
        f32::with_scratch(0, (end - first) * held, |panels| {
            for &t in taps {
                let (ky, kx) = (t / k, t % k);
                for (j, &(_, s, e)) in layout.panels[first..end].iter().enumerate() {
                    // Input (iy, ix) receives tap (ky, kx) from output
                    // (iy + padding − ky, ix + padding − kx).
                    let lanes: Vec<i32> = layout.members[s..e]
                        .iter()
                        .map(|&q| {
                            let (img, iy, ix) = (q / hw, q % hw / g.w, q % g.w);
                            let (oy, ox) = (iy + g.padding - ky, ix + g.padding - kx);
                            (img * o * p + oy * ow + ox) as i32
                        })
                        .collect();
                    gather_panel(gout, &lanes, &offsets, &mut panels[j * held..][..held]);
                }
                let out = unit_output(dst, g.c);
                // SAFETY: available (asserted); (row < c, lane < (end − first)·64) is
                // dst[lane / 64 · c · 64 + row · 64 + lane % 64], inside this unit's dst.
                unsafe {
                    let operand = (
                        PixelSide::Packed(&panels[..]),
                        (end - first) * PANEL_PIXELS,
                        Terms::All,
                    );
                    product(&per_tap[t], operand, out, true)
                };
            }
        })
    });
    unscramble(&layout, &buf, (g.n, g.c, hw))
}

/// Runs `unit((first panel, end panel), its rows)` for every unit of `layout` in parallel,
/// over a zeroed buffer of panels × `rows` × 64 lanes (panel-major), and returns the buffer.
fn by_units(
    layout: &ClassPanels,
    rows: usize,
    unit: impl Fn((usize, usize), &mut [f32]) + Sync,
) -> Vec<f32> {
    let per_panel = rows * PANEL_PIXELS;
    // Zeroed in parallel: the input gradient adds into it.
    let mut buf = par_filled(
        layout.panels.len() * per_panel,
        per_panel,
        |_, _: &mut [f32]| {},
    );
    let mut parts = Vec::with_capacity(layout.units.len());
    let mut rest = &mut buf[..];
    for &(first, end) in &layout.units {
        let (head, tail) = rest.split_at_mut((end - first) * per_panel);
        parts.push(((first, end), head));
        rest = tail;
    }
    parts
        .into_par_iter()
        .for_each(|(range, dst)| unit(range, dst));
    buf
}

/// Where [`product`] stores a unit's panels: (row, lane q) at
/// `dst[q / 64 · rows · 64 + row · 64 + q % 64]`.
fn unit_output(dst: &mut [f32], rows: usize) -> Output {
    Output {
        ptr: dst.as_mut_ptr(),
        pixels: PANEL_PIXELS,
        image_stride: rows * PANEL_PIXELS,
        row_stride: PANEL_PIXELS,
    }
}

/// The panel-major buffer back in NCHW order: [n, rows, pixels].
fn unscramble(
    layout: &ClassPanels,
    buf: &[f32],
    (n, rows, pixels): (usize, usize, usize),
) -> Vec<f32> {
    let slots = layout.slots();
    let at: Vec<usize> = slots
        .iter()
        .map(|&slot| slot / PANEL_PIXELS * rows * PANEL_PIXELS + slot % PANEL_PIXELS)
        .collect();
    par_pushed(n * rows * pixels, rows * pixels, |img, sink| {
        let at = &at[img * pixels..][..pixels];
        for r in 0..rows {
            at.iter()
                .for_each(|&a| sink.push(buf[a + r * PANEL_PIXELS]));
        }
    })
}
