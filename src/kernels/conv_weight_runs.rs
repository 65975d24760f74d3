//! The weight gradient of a 3×3 convolution at stride 1 or 2 with padding 1, read where its
//! terms lie: each slab's images copied channel-minor with a zero border, so that an output
//! pixel's receptive field, tap-major, is three runs of 3·c values (its three input rows'
//! neighbours). Each run takes whole 16-lane vectors on the pixel side (`run_lanes`), the
//! lanes past its 3·c values reading the next pixels' values, whose outputs are dropped. The
//! panel tile reads those vectors in place, one term per output pixel: no column matrix, no
//! gather, no packing.
//!
//! It gives the column path's bits ([`super::conv_gemm`]): per slab (the column path's
//! slabs), each output (o, c, tap) is one FMA chain from zero per k-chunk over the slab's
//! pixels in order, `gout · x` where the tap reads the image and `gout · (+0)` where it reads
//! padding, as im2col's zero does; the partials are summed in slab order by the caller and
//! reordered by [`to_weight`]. Narrow layers and stems are where this pays most: their
//! receptive fields (27 to 288 values) would otherwise be gathered lane by lane, or fill few
//! lanes when their channels lie on the pixel side ([`super::conv_skip`]).

use super::cpu_float::{CpuFloat, par_init};
use super::im2col::ConvGeometry;
use super::panel_gemm::{
    self, InPlace, Output, PANEL_PIXELS, PackedRows, PixelSide, Terms, product,
};
use super::tap_classes::VECTOR_LANES;
use super::transpose::transpose_block;

/// Taps of the 3×3 kernel.
const TAPS: usize = 9;

/// Whether layer `g` may run here: AVX-512, a 3×3 kernel at stride 1 or 2 with padding 1, and every
/// offset into a slab's copy inside an i32.
pub fn applies(g: &ConvGeometry) -> bool {
    panel_gemm::available::<f32>()
        && matches!(g.stride, 1 | 2)
        && g.k == 3
        && g.padding == 1
        && g.n * (g.h + 2) * (g.w + 2) * g.c < i32::MAX as usize / 2
}

/// Lanes of the pixel side per kernel row: its three taps' `3·c` values rounded up to a
/// whole vector (the lanes past them read the next pixels' values, whose outputs are dropped).
fn run_lanes(c: usize) -> usize {
    (3 * c).div_ceil(VECTOR_LANES) * VECTOR_LANES
}

/// Length of one output row of the partials: three kernel rows of `run_lanes(c)` values.
pub fn row_len(g: &ConvGeometry) -> usize {
    3 * run_lanes(g.c)
}

/// The slabs' partial weight gradients (slabs of `per_slab` images, as the column path cuts
/// them), [slabs, o, 3, run_lanes(c)]. Call only where [`applies`] holds.
pub fn weight_partials(
    g: &ConvGeometry,
    o: usize,
    (x, gout): (&[f32], &[f32]),
    per_slab: usize,
) -> Vec<f32> {
    assert!(applies(g) && per_slab > 0);
    assert!(x.len() >= g.n * g.image_len() && gout.len() >= g.n * o * g.pixels());
    let (c, h, w, p, ow, st) = (g.c, g.h, g.w, g.pixels(), g.ow(), g.stride);
    let (run, rl) = (run_lanes(c), row_len(g));
    let (bh, bw) = (h + 2, w + 2);
    let per_image = bh * bw * c;
    // Vector v of the receptive field (lanes 16v ..) lies in the run of kernel row ky, at
    // `at` values from the run's start (the pixel left of the output's column).
    let vectors = rl / VECTOR_LANES;
    let base = |v: usize| {
        let (ky, at) = (v * VECTOR_LANES / run, v * VECTOR_LANES % run);
        ((ky as isize - 1) * bw as isize - 1) * c as isize + at as isize
    };
    // The last panel's vectors past the field are never read (the tile computes only the
    // vectors that hold a pixel); they get the first vector's base to stay inside the copy.
    let bases: Vec<[isize; 4]> = (0..rl.div_ceil(PANEL_PIXELS))
        .map(|pp| {
            std::array::from_fn(|v| base(Some(4 * pp + v).filter(|&v| v < vectors).unwrap_or(0)))
        })
        .collect();
    let masks = vec![[u16::MAX; 4]; bases.len()];
    // Per output pixel of a slab, in order: where its receptive field's centre lies in the
    // slab's copy (the same for every slab; a shorter last slab takes the first ones).
    let offsets: Vec<i32> = (0..per_slab.min(g.n))
        .flat_map(|j| {
            (0..p).map(move |q| (((j * bh + q / ow * st + 1) * bw + q % ow * st + 1) * c) as i32)
        })
        .collect();
    let tap_of = vec![0; offsets.len()];
    let slabs = g.n.div_ceil(per_slab);
    let each = o * rl;
    let fill = |s: usize, dst: *mut f32| {
        let cnt = per_slab.min(g.n - s * per_slab);
        let xs = &x[s * per_slab * g.image_len()..][..cnt * g.image_len()];
        let go = &gout[s * per_slab * o * p..][..cnt * o * p];
        let rows = PackedRows::channels(go, (o, p, cnt));
        // The last pixel's last run reads up to 15 values past the copy: zeros.
        f32::with_scratch(0, cnt * per_image + VECTOR_LANES, |copy| {
            let (images, slack) = copy.split_at_mut(cnt * per_image);
            for (img, dst) in xs.chunks(g.image_len()).zip(images.chunks_mut(per_image)) {
                bordered_channel_minor(img, (c, h, w), dst);
            }
            slack.fill(0.0);
            let side = InPlace {
                src: copy,
                bases: &bases,
                offsets: &offsets[..cnt * p],
                tap_of: &tap_of[..cnt * p],
                masks: &masks,
                taps: 1,
            };
            let out = Output::matrix(dst, rl);
            // SAFETY: available (applies); every lane of every vector the tile reads lies in
            // the copy (InPlace::check, run by product); (row < o, r < rl) is dst[row·rl + r],
            // inside this slab's partial.
            unsafe {
                product(
                    &rows,
                    (PixelSide::InPlace(side), rl, Terms::All),
                    out,
                    false,
                )
            };
        });
    };
    // SAFETY: each slab's partial is [o, rl], every element of which the product stores in
    // its first k-chunk.
    unsafe {
        par_init(slabs * each, each, |s, part| {
            fill(s, part.as_mut_ptr().cast())
        })
    }
}

/// Image `img` ([c, h, w]) as [h + 2, w + 2, c]: each pixel's channels side by side, a border
/// of zero pixels around.
fn bordered_channel_minor(img: &[f32], (c, h, w): (usize, usize, usize), dst: &mut [f32]) {
    let row = (w + 2) * c;
    dst[..row].fill(0.0);
    dst[(h + 1) * row..][..row].fill(0.0);
    for y in 0..h {
        let line = &mut dst[(y + 1) * row..][..row];
        line[..c].fill(0.0);
        line[(w + 1) * c..].fill(0.0);
        transpose_block(&img[y * w..], h * w, (c, w), &mut line[c..(w + 1) * c]);
    }
}

/// The summed partials ([o, 3, run_lanes(c)], tap (ky, kx) and channel ch at lane
/// ky·run_lanes + kx·c + ch) as the weight's gradient [o, c, 3, 3].
pub fn to_weight(sum: &[f32], (o, c): (usize, usize)) -> Vec<f32> {
    let (run, rl) = (run_lanes(c), 3 * run_lanes(c));
    assert!(sum.len() >= o * rl);
    let mut out = Vec::with_capacity(o * c * TAPS);
    for oc in 0..o {
        for ch in 0..c {
            out.extend((0..TAPS).map(|t| sum[oc * rl + t / 3 * run + t % 3 * c + ch]));
        }
    }
    out
}
