//! An AVX-512 f32 product whose operands come packed by their producers: the pixel side as
//! 64-pixel panels that im2col writes directly ([`im2col_panels`]), the other side (a weight,
//! packed once per call and shared by every slab and thread) as 6-row panels.
//!
//! The `gemm` crate packs both operands again on every call (per slab and k-chunk), and the
//! convolution's forward then copies a multi-image slab's output back to NCHW; here the tile
//! is stored straight into the caller's layout. The sum is [`super::cpu_float::gemm`]'s
//! specification: per output and chunk of [`k_chunks`], an FMA chain from zero over the
//! chunk's terms in order, added to the output with one rounding (`out = acc` for the first
//! chunk), so both paths give the same bits and the CPU picks only the speed.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::cpu_float::{CpuFloat, k_chunks, par_init, par_pushed};
use super::im2col::ConvGeometry;

/// Pixels per panel: four AVX-512 vectors side by side.
pub const PANEL_PIXELS: usize = 64;
/// Rows per packed panel of the other operand: 6 × 4 accumulators fill 24 of 32 registers.
pub const PANEL_ROWS: usize = 6;
/// Pixel panels one k-chunk pass keeps in L2 while every row panel streams over them
/// (4 × 64 × 512 × 4 bytes = 512 KiB at the longest chunk).
const BLOCK_PANELS: usize = 4;

/// Whether this machine and type take the panel path (AVX-512, f32).
pub fn available<T: CpuFloat>() -> bool {
    T::DTYPE == candle_core::DType::F32
        && super::cpu_float::kernel_level() == super::cpu_float::KernelLevel::Avx512
}

/// A `rows × k` matrix packed as panels of [`PANEL_ROWS`] rows: panel `p`, term `kk`, row `r`
/// at `data[(p·k + kk)·PANEL_ROWS + r]`, rows past the end zero.
#[derive(Debug, Clone)]
pub struct PackedRows {
    data: Vec<f32>,
    rows: usize,
    k: usize,
}

impl PackedRows {
    /// Packs the matrix whose element (r, kk) is `src[r·row_stride + kk·k_stride]`.
    pub fn new(
        src: &[f32],
        (rows, k): (usize, usize),
        (row_stride, k_stride): (usize, usize),
    ) -> Self {
        if rows > 0 && k > 0 {
            assert!(src.len() > (rows - 1) * row_stride + (k - 1) * k_stride);
        }
        if k_stride == 1 && k > 0 && available::<f32>() {
            return Self::rows_contiguous(src, (rows, k), row_stride);
        }
        Self::pack(rows, k, |first, kk, dst| {
            let at = first * row_stride + kk * k_stride;
            for (r, d) in dst.iter_mut().enumerate() {
                *d = src[at + r * row_stride];
            }
        })
    }

    /// Packs `cnt` NCHW images of `ch` channels × `p` pixels (`src`, image after image) as the
    /// `ch × cnt·p` matrix of channels over the images' pixels: (c, j·p + px) is channel c of
    /// image j at pixel px.
    pub fn channels(src: &[f32], (ch, p, cnt): (usize, usize, usize)) -> Self {
        assert!(src.len() >= ch * p * cnt);
        if !available::<f32>() || ch * p * cnt == 0 {
            return Self::channels_scalar(src, (ch, p, cnt));
        }
        let chunk = cnt * p * PANEL_ROWS;
        // SAFETY: AVX-512 (checked above); panel pp's image j reads rows first .. first + live
        // of that image, p values each, inside src (asserted), and writes its p terms (p·6
        // values) at j·p·6 of the panel's chunk, which the images fill in full.
        let data = unsafe {
            par_init(ch.div_ceil(PANEL_ROWS) * chunk, chunk, |pp, part| {
                let (first, live) = (pp * PANEL_ROWS, PANEL_ROWS.min(ch - pp * PANEL_ROWS));
                let dst: *mut f32 = part.as_mut_ptr().cast();
                for j in 0..cnt {
                    let row0 = src.as_ptr().add((j * ch + first) * p);
                    pack_panel_avx512(row0, p, (live, p), dst.add(j * p * PANEL_ROWS));
                }
            })
        };
        PackedRows {
            data,
            rows: ch,
            k: cnt * p,
        }
    }

    /// [`PackedRows::channels`] value by value (no AVX-512, and the reference its test uses):
    /// the weight gradient's scalar gather here took 7% of the width-0.125 train step.
    fn channels_scalar(src: &[f32], (ch, p, cnt): (usize, usize, usize)) -> Self {
        Self::pack(ch, cnt * p, |first, q, dst| {
            for (r, d) in dst.iter_mut().enumerate() {
                *d = src[(q / p * ch + first + r) * p + q % p];
            }
        })
    }

    /// Each tap's transposed weight for a weight `w` of `o` rows of `c` channels × `taps`
    /// taps: tap t's rows are the channels, its terms the `o` rows, element (ch, r) is
    /// `w[(r·c + ch)·taps + t]`, as `new(&w[t..], (c, o), (taps, c·taps))` packs it. For 3×3
    /// kernels with AVX-512 one pass reads each weight row's six channels once and writes all
    /// nine taps by permutes: packing tap by tap, a scalar gather per value, took 13% of the
    /// 512→512 4×4 input gradient.
    pub fn taps(w: &[f32], (o, c, taps): (usize, usize, usize)) -> Vec<Self> {
        assert!(w.len() >= o * c * taps);
        if taps != TAPS_3X3 || !available::<f32>() || o == 0 || c == 0 {
            return (0..taps)
                .map(|t| Self::new(&w[t..], (c, o), (taps, c * taps)))
                .collect();
        }
        let (panels, chunk) = (c.div_ceil(PANEL_ROWS), o * PANEL_ROWS);
        let mut data: Vec<Vec<f32>> = (0..taps)
            .map(|_| Vec::with_capacity(panels * chunk))
            .collect();
        // Per row panel, its chunk of every tap's packing.
        let mut parts: Vec<Vec<&mut [MaybeUninit<f32>]>> =
            (0..panels).map(|_| Vec::with_capacity(taps)).collect();
        for tap in data.iter_mut() {
            let chunks = tap.spare_capacity_mut()[..panels * chunk].chunks_mut(chunk);
            parts
                .iter_mut()
                .zip(chunks)
                .for_each(|(p, part)| p.push(part));
        }
        // Blocks of row panels, each over blocks of weight rows: a block's rows are read as a
        // few sequential streams while its writes stay in a few KiB of each tap.
        parts
            .par_chunks_mut(TAP_BLOCK)
            .enumerate()
            .for_each(|(bi, block)| {
                let dst: Vec<[*mut f32; TAPS_3X3]> = block
                    .iter_mut()
                    .map(|part| std::array::from_fn(|t| part[t].as_mut_ptr().cast()))
                    .collect();
                for r0 in (0..o).step_by(16) {
                    for (j, d) in dst.iter().enumerate() {
                        let p = bi * TAP_BLOCK + j;
                        let live = PANEL_ROWS.min(c - p * PANEL_ROWS);
                        for r in r0..(r0 + 16).min(o) {
                            let src = &w[(r * c + p * PANEL_ROWS) * taps..][..live * taps];
                            // SAFETY: AVX-512 (checked above); src holds live·9 values, and each
                            // tap's chunk has room for term r's six values at 6·r.
                            unsafe { transpose_taps_avx512(src, d.map(|d| d.add(r * PANEL_ROWS))) };
                        }
                    }
                }
            });
        data.into_iter()
            .map(|mut d| {
                // SAFETY: every panel's chunk of every tap was written in full above.
                unsafe { d.set_len(panels * chunk) };
                PackedRows {
                    data: d,
                    rows: c,
                    k: o,
                }
            })
            .collect()
    }

    /// [`PackedRows::new`] where each row's terms are contiguous: 16 terms of a panel's six
    /// rows at a time, interleaved with permutes (the scalar fill took 5% of a 512→512 4×4
    /// forward).
    fn rows_contiguous(src: &[f32], (rows, k): (usize, usize), row_stride: usize) -> Self {
        let panels = rows.div_ceil(PANEL_ROWS);
        let chunk = k * PANEL_ROWS;
        // SAFETY: AVX-512 (the caller's check); panel p's rows first .. first + live each
        // read k values from first·row_stride on, inside src (asserted by new), and the
        // panel's chunk (k·6 values) is written in full: 16-term blocks of 96 values, the
        // last block 6·(k mod 16) values.
        let data = unsafe {
            par_init(panels * chunk, chunk, |p, part| {
                let (first, live) = (p * PANEL_ROWS, PANEL_ROWS.min(rows - p * PANEL_ROWS));
                let row0 = src.as_ptr().add(first * row_stride);
                pack_panel_avx512(row0, row_stride, (live, k), part.as_mut_ptr().cast());
            })
        };
        PackedRows { data, rows, k }
    }

    /// Panels in parallel, each filled term by term: `fill(first row, kk, the panel's live
    /// rows at term kk)`. Term-major, so a transposed source is read a cache line at a time.
    fn pack(rows: usize, k: usize, fill: impl Fn(usize, usize, &mut [f32]) + Sync) -> Self {
        let panels = rows.div_ceil(PANEL_ROWS);
        // Pushed, not zeroed and then overwritten: packing runs once per product call.
        let data = par_pushed(panels * k * PANEL_ROWS, k * PANEL_ROWS, |p, sink| {
            let (first, live) = (p * PANEL_ROWS, PANEL_ROWS.min(rows - p * PANEL_ROWS));
            for kk in 0..k {
                let mut term = [0f32; PANEL_ROWS];
                fill(first, kk, &mut term[..live]);
                term.into_iter().for_each(|v| sink.push(v));
            }
        });
        PackedRows { data, rows, k }
    }
}

/// One panel of [`PackedRows::rows_contiguous`]: `live` ≤ 6 rows of `k` contiguous terms
/// (row r at `row0 + r·row_stride`) into `dst[kk·6 + r]`, rows past `live` zero.
///
/// # Safety
/// AVX-512F; each live row's k values are readable, and `dst` has room for k·6 values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack_panel_avx512(
    row0: *const f32,
    row_stride: usize,
    (live, k): (usize, usize),
    dst: *mut f32,
) {
    use std::arch::x86_64::*;
    // Output vector j's lane e is stream value s = 16j + e: term s / 6 of row s % 6. Rows
    // come in pairs (2i, 2i + 1), each pair one two-source permute, merged under the lanes
    // whose row is in the pair. Per output vector j and row pair: the permute's source
    // lanes, and the lanes it fills.
    const TABLES: ([[[i32; 16]; 3]; 6], [[u16; 3]; 6]) = {
        let (mut index, mut mask) = ([[[0i32; 16]; 3]; 6], [[0u16; 3]; 6]);
        let mut s = 0;
        while s < 96 {
            let (j, e, r) = (s / 16, s % 16, s % 6);
            index[j][r / 2][e] = (s / 6 + 16 * (r % 2)) as i32;
            mask[j][r / 2] |= 1 << e;
            s += 1;
        }
        (index, mask)
    };
    const MASK: [[u16; 3]; 6] = TABLES.1;
    let index: [[__m512i; 3]; 6] = TABLES
        .0
        .map(|row| row.map(|i| unsafe { _mm512_loadu_si512(i.as_ptr().cast()) }));
    for k0 in (0..k).step_by(16) {
        let n = (k - k0).min(16);
        let lanes = ((1u32 << n) - 1) as u16;
        // SAFETY: lanes below n of live rows are terms k0 .. k0 + n of those rows.
        let v: [__m512; 6] = std::array::from_fn(|r| match r < live {
            true => unsafe { _mm512_maskz_loadu_ps(lanes, row0.add(r * row_stride + k0)) },
            false => _mm512_setzero_ps(),
        });
        for j in 0..6 {
            let written = (6 * n).saturating_sub(16 * j).min(16);
            if written == 0 {
                break;
            }
            let mut out = _mm512_permutex2var_ps(v[0], index[j][0], v[1]);
            out = _mm512_mask_mov_ps(
                out,
                MASK[j][1],
                _mm512_permutex2var_ps(v[2], index[j][1], v[3]),
            );
            out = _mm512_mask_mov_ps(
                out,
                MASK[j][2],
                _mm512_permutex2var_ps(v[4], index[j][2], v[5]),
            );
            let keep = ((1u32 << written) - 1) as u16;
            // SAFETY: values k0·6 + 16j .. + written lie below k·6, inside dst.
            unsafe { _mm512_mask_storeu_ps(dst.add(k0 * PANEL_ROWS + 16 * j), keep, out) };
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn pack_panel_avx512(_: *const f32, _: usize, _: (usize, usize), _: *mut f32) {
    unreachable!("no AVX-512 off x86-64")
}

/// Taps of a 3×3 kernel.
const TAPS_3X3: usize = 9;
/// Row panels one task of [`PackedRows::taps`] packs.
const TAP_BLOCK: usize = 8;

/// One weight row's six channels × nine taps (`src`, channel-major, `src.len() / 9` live
/// channels) as nine taps × six channels: tap t's six values (zero past the live channels)
/// to `dst[t]`.
///
/// # Safety
/// AVX-512F; `src.len()` is a multiple of 9 up to 54, and each `dst[t]` has room for six
/// values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_taps_avx512(src: &[f32], dst: [*mut f32; TAPS_3X3]) {
    use std::arch::x86_64::*;
    debug_assert!(src.len() <= PANEL_ROWS * TAPS_3X3 && src.len().is_multiple_of(TAPS_3X3));
    // Lane ch of tap t's vector is source value 9·ch + t: from the first two vectors below
    // 32, else (the same low five bits) from the last two.
    const INDEX: [[i32; 16]; TAPS_3X3] = {
        let mut index = [[0i32; 16]; TAPS_3X3];
        let mut t = 0;
        while t < TAPS_3X3 {
            let mut ch = 0;
            while ch < PANEL_ROWS {
                index[t][ch] = (TAPS_3X3 * ch + t) as i32;
                ch += 1;
            }
            t += 1;
        }
        index
    };
    let n = src.len();
    let lanes = |from: usize| ((1u64 << n.saturating_sub(from).min(16)) - 1) as u16;
    // SAFETY: each load reads only lanes below n, inside src.
    let v: [__m512; 4] = std::array::from_fn(|i| unsafe {
        _mm512_maskz_loadu_ps(lanes(16 * i), src.as_ptr().add((16 * i).min(n)))
    });
    for (t, &d) in dst.iter().enumerate() {
        // SAFETY: INDEX rows are 16 values.
        let index = unsafe { _mm512_loadu_si512(INDEX[t].as_ptr().cast()) };
        let high = (0..PANEL_ROWS).fold(0u16, |m, ch| m | u16::from(INDEX[t][ch] >= 32) << ch);
        let low_half = _mm512_permutex2var_ps(v[0], index, v[1]);
        let high_half = _mm512_permutex2var_ps(v[2], index, v[3]);
        let out = _mm512_mask_mov_ps(low_half, high, high_half);
        // SAFETY: the caller's room for six values.
        unsafe { _mm512_mask_storeu_ps(d, 0x3f, out) };
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn transpose_taps_avx512(_: &[f32], _: [*mut f32; TAPS_3X3]) {
    unreachable!("no AVX-512 off x86-64")
}

/// Values of `pixels` pixel panels over `k` terms.
pub fn panels_len(pixels: usize, k: usize) -> usize {
    pixels.div_ceil(PANEL_PIXELS) * PANEL_PIXELS * k
}

/// Zeroes the lanes past `pixels` in the last of `pixels`' panels over `k` terms, so that
/// stale scratch values (NaN, subnormals) never slow the tiles that read them.
pub fn clear_tail(panels: &mut [f32], pixels: usize, k: usize) {
    let (last, used) = (pixels / PANEL_PIXELS, pixels % PANEL_PIXELS);
    if used == 0 {
        return;
    }
    for kk in 0..k {
        panels[panel_index(kk, last * PANEL_PIXELS + used, k)..][..PANEL_PIXELS - used].fill(0.0);
    }
}

/// Where the pixel-side operand's (term `kk`, pixel `q`) lives in its panels of `k` terms.
#[inline(always)]
fn panel_index(kk: usize, q: usize, k: usize) -> usize {
    (q / PANEL_PIXELS * k + kk) * PANEL_PIXELS + q % PANEL_PIXELS
}

/// Writes image `x` ([c, h, w]) as its column matrix into pixel panels of `g.row_len()` terms:
/// (row r, pixel p) at the panel index of pixel `first + p`, as [`super::im2col::im2col_into`]
/// writes (r, p) into rows (zeros for padding). Call only where [`available`] holds.
pub fn im2col_panels(g: &ConvGeometry, x: &[f32], dst: &mut [f32], first: usize) {
    assert!(available::<f32>(), "the panel im2col needs AVX-512");
    let (rl, p) = (g.row_len(), g.pixels());
    assert!(x.len() >= g.image_len() && dst.len() >= panels_len(first + p, rl));
    if splits_phases(g) {
        let bordered = Bordered::of(g);
        return f32::with_scratch(1, bordered.len(), |copy| {
            bordered.fill(x, copy);
            // SAFETY: AVX-512 checked above; every write is at a panel index of a term below
            // rl and a pixel below first + p, inside dst by the assert, and every read is a
            // run of one output row inside the bordered copy.
            unsafe { im2col_panels_bordered(&bordered, copy, dst, first) }
        });
    }
    // SAFETY: AVX-512 checked above; every write is at a panel index of a term below rl and
    // a pixel below first + p, inside dst by the assert, and every read is a pixel of x.
    unsafe { im2col_panels_avx512(g, x, dst, first) }
}

/// [`im2col_panels`] from a stride-2 image's phase-split copy: every output row's run of a
/// term is contiguous there, padding zeros included, so it moves with masked loads instead
/// of gathers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn im2col_panels_bordered(b: &Bordered, copy: &[f32], dst: &mut [f32], first: usize) {
    let (oh, ow, rl) = (b.g.oh(), b.g.ow(), b.g.row_len());
    assert!(copy.len() >= b.len());
    let d = dst.as_mut_ptr();
    for r in 0..rl {
        let at = b.offset(r);
        for oy in 0..oh {
            // SAFETY: the run is ow values of row oy of the term's phase, inside the copy
            // (offset + oy·cols + ow ≤ len); the writes as the caller's contract.
            unsafe {
                let src = copy.as_ptr().add(at + oy * b.cols);
                put_run(d, rl, r, first + oy * ow, ow, Some((src, 1)));
            }
        }
    }
}

/// [`im2col_panels`]' loops: each output row's run of taps is split where the panels break
/// and moved 16 lanes at a time with masked loads and stores (no call per run).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn im2col_panels_avx512(g: &ConvGeometry, x: &[f32], dst: &mut [f32], first: usize) {
    let (oh, ow, k, s, rl) = (g.oh(), g.ow(), g.k, g.stride, g.row_len());
    let d = dst.as_mut_ptr();
    for c in 0..g.c {
        for ky in 0..k {
            for kx in 0..k {
                let r = (c * k + ky) * k + kx;
                let (lo, hi) = g.valid_ox(kx);
                for oy in 0..oh {
                    let q = first + oy * ow;
                    let row = (oy * s + ky).checked_sub(g.padding).filter(|&iy| iy < g.h);
                    // SAFETY: as in im2col_panels; the source run is pixels
                    // ix0 .. ix0 + s·(hi − lo − 1) of input row iy, inside the image.
                    unsafe {
                        match row {
                            Some(iy) if lo < hi => {
                                let ix0 = lo * s + kx - g.padding;
                                let src = x.as_ptr().add((c * g.h + iy) * g.w + ix0);
                                put_run(d, rl, r, q, lo, None);
                                put_run(d, rl, r, q + lo, hi - lo, Some((src, s)));
                                put_run(d, rl, r, q + hi, ow - hi, None);
                            }
                            _ => put_run(d, rl, r, q, ow, None),
                        }
                    }
                }
            }
        }
    }
}

/// Writes `len` pixels of term `r` from pixel `q` on: `src`'s values at stride `step`, or
/// zeros.
///
/// # Safety
/// AVX-512F; the panel indices of (r, q .. q + len) lie in `d`'s allocation and, when given,
/// `src + step·j` for j < len in `src`'s.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn put_run(
    d: *mut f32,
    rl: usize,
    r: usize,
    q: usize,
    len: usize,
    src: Option<(*const f32, usize)>,
) {
    use std::arch::x86_64::*;
    let mut done = 0;
    while done < len {
        let qq = q + done;
        let n = (16 - qq % 16).min(len - done);
        let mask: __mmask16 = ((1u32 << n) - 1) as u16;
        // SAFETY: by the caller's contract, for the n ≤ 16 lanes of this piece (which stay
        // inside one 16-lane group of one panel).
        unsafe {
            let v = match src {
                None => _mm512_setzero_ps(),
                Some((sp, 1)) => _mm512_maskz_loadu_ps(mask, sp.add(done)),
                Some((sp, step)) => {
                    let idx = _mm512_mullo_epi32(
                        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                        _mm512_set1_epi32(step as i32),
                    );
                    _mm512_mask_i32gather_ps::<4>(
                        _mm512_setzero_ps(),
                        mask,
                        idx,
                        sp.add(done * step),
                    )
                }
            };
            _mm512_mask_storeu_ps(d.add(panel_index(r, qq, rl)), mask, v);
        }
        done += n;
    }
}

/// Packs `cnt` images of `rows` rows × `p` pixels (`src`, NCHW: image after image) as pixel
/// panels over `rows` terms: (row r, image j, pixel px) at the panel index of (r, j·p + px).
/// Call only where [`available`] holds.
pub fn pack_pixels(src: &[f32], (rows, p, cnt): (usize, usize, usize), dst: &mut [f32]) {
    assert!(available::<f32>(), "the panel packing needs AVX-512");
    assert!(src.len() >= rows * p * cnt && dst.len() >= panels_len(cnt * p, rows));
    for j in 0..cnt {
        for r in 0..rows {
            // SAFETY: AVX-512 checked; the run is src[(j·rows + r)·p ..][..p], and its panel
            // indices are below panels_len(cnt·p, rows) ≤ dst.len().
            unsafe {
                let run = src.as_ptr().add((j * rows + r) * p);
                put_run(dst.as_mut_ptr(), rows, r, j * p, p, Some((run, 1)));
            }
        }
    }
}

/// Writes image `x` as its transposed column matrix into panels of receptive-field entries
/// over pixels: entry r of pixel `first + p` at the panel index of (term `first + p`, lane r)
/// in panels of `terms` terms, as [`super::im2col::im2col_t_into`] writes it pixel after
/// pixel (zeros for padding). Call only where [`available`] holds.
pub fn im2col_t_panels(g: &ConvGeometry, x: &[f32], dst: &mut [f32], first: usize, terms: usize) {
    assert!(available::<f32>(), "the panel im2col needs AVX-512");
    assert!(x.len() >= g.image_len());
    assert!(first + g.pixels() <= terms && dst.len() >= panels_len(g.row_len(), terms));
    assert!(
        g.image_len() + g.h * g.w < i32::MAX as usize,
        "image offsets fit in i32"
    );
    // SAFETY: AVX-512 checked; offsets are gathered only where the tap is inside the image,
    // and every write is at a panel index of a term below `terms` and a lane below rl.
    unsafe { im2col_t_panels_avx512(g, x, dst, first, terms) }
}

/// [`im2col_t_panels`]' loops: per pixel and group of 16 entries, one masked gather, the
/// entries' offsets and (ky, kx) precomputed once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn im2col_t_panels_avx512(
    g: &ConvGeometry,
    x: &[f32],
    dst: &mut [f32],
    first: usize,
    terms: usize,
) {
    use std::arch::x86_64::*;
    let (oh, ow, k, s, rl) = (g.oh(), g.ow(), g.k, g.stride, g.row_len());
    let groups = rl.div_ceil(16);
    // Per entry r = (c, ky, kx): its offset c·h·w + ky·w + kx, and ky, kx; past rl, a ky that
    // is never inside the image.
    let (mut roff, mut kys, mut kxs) = (
        vec![0i32; groups * 16],
        vec![i32::MIN / 2; groups * 16],
        vec![0i32; groups * 16],
    );
    for r in 0..rl {
        let (c, ky, kx) = (r / (k * k), r / k % k, r % k);
        roff[r] = (c * g.h * g.w + ky * g.w + kx) as i32;
        (kys[r], kxs[r]) = (ky as i32, kx as i32);
    }
    let (h, w) = (_mm512_set1_epi32(g.h as i32), _mm512_set1_epi32(g.w as i32));
    let d = dst.as_mut_ptr();
    for oy in 0..oh {
        let y0 = (oy * s) as i32 - g.padding as i32;
        for ox in 0..ow {
            let x0 = (ox * s) as i32 - g.padding as i32;
            let q = first + oy * ow + ox;
            let base = _mm512_set1_epi32(y0 * g.w as i32 + x0);
            for grp in 0..groups {
                // SAFETY: the three tables hold groups·16 entries; lanes are gathered only
                // where 0 ≤ y0 + ky < h and 0 ≤ x0 + kx < w, i.e. inside the image; the
                // 16 lanes r = 16·grp.. stay inside one 64-lane panel row of term q.
                unsafe {
                    let at = 16 * grp;
                    let iy = _mm512_add_epi32(
                        _mm512_loadu_si512(kys.as_ptr().add(at).cast()),
                        _mm512_set1_epi32(y0),
                    );
                    let ix = _mm512_add_epi32(
                        _mm512_loadu_si512(kxs.as_ptr().add(at).cast()),
                        _mm512_set1_epi32(x0),
                    );
                    let zero = _mm512_setzero_si512();
                    let inside = _mm512_cmpge_epi32_mask(iy, zero)
                        & _mm512_cmplt_epi32_mask(iy, h)
                        & _mm512_cmpge_epi32_mask(ix, zero)
                        & _mm512_cmplt_epi32_mask(ix, w);
                    let off =
                        _mm512_add_epi32(_mm512_loadu_si512(roff.as_ptr().add(at).cast()), base);
                    let v =
                        _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), inside, off, x.as_ptr());
                    let lanes = (rl - at).min(16);
                    let keep: __mmask16 = ((1u32 << lanes) - 1) as u16;
                    _mm512_mask_storeu_ps(d.add(panel_index(q, at, terms)), keep, v);
                }
            }
        }
    }
}

/// Where `product` stores: output (row, pixel q) at
/// `ptr[(q / pixels)·image_stride + row·row_stride + q % pixels]`.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// The output's first element.
    pub ptr: *mut f32,
    /// Pixels per image (the run that is contiguous in a row).
    pub pixels: usize,
    /// Elements between images.
    pub image_stride: usize,
    /// Elements between rows.
    pub row_stride: usize,
}

impl Output {
    /// A row-major matrix whose rows hold `row_len` outputs: (row, q) at `ptr[row·row_len + q]`.
    pub fn matrix(ptr: *mut f32, row_len: usize) -> Self {
        Output {
            ptr,
            pixels: row_len,
            image_stride: 0,
            row_stride: row_len,
        }
    }
}

/// Which of the packed rows' terms the pixel panels hold, in order.
#[derive(Debug, Clone, Copy)]
pub enum Terms<'a> {
    /// All of them.
    All,
    /// Only these (ascending, each below the rows' `k`): the others would multiply zeros,
    /// and leaving them out of an FMA chain that starts at +0 gives the same bits whenever
    /// the rows are finite (an added ±0 leaves a nonzero sum alone and +0 at +0, and the chain
    /// is never −0).
    Only(&'a [u32]),
}

impl Terms<'_> {
    /// Where the terms `k0 .. k1` of the rows lie among the held ones.
    pub fn held(&self, (k0, k1): (usize, usize)) -> (usize, usize) {
        match self {
            Terms::All => (k0, k1),
            Terms::Only(t) => (
                t.partition_point(|&x| (x as usize) < k0),
                t.partition_point(|&x| (x as usize) < k1),
            ),
        }
    }
}

/// The pixel side of a [`product`].
#[derive(Clone, Copy)]
pub enum PixelSide<'a> {
    /// Panels of 64 pixels over the held terms ([`panels_len`]), packed by the caller.
    Packed(&'a [f32]),
    /// Panels read where their values lie.
    InPlace(InPlace<'a>),
}

/// Pixel panels read in place: panel `pp`'s vector `v` (16 lanes) at held term `kk` is the
/// 16 values of `src` from `bases[pp][v] + offsets[kk]` on, its lanes outside
/// `masks[pp·taps + tap_of[kk]][v]` taken as +0. [`pack_in_place`] reads any masks; a
/// [`product`] reads whole vectors only (every mask full: a zero-bordered source).
#[derive(Clone, Copy)]
pub struct InPlace<'a> {
    /// Where the values lie.
    pub src: &'a [f32],
    /// Per panel, each vector's first value (before the term's offset).
    pub bases: &'a [[isize; 4]],
    /// Per held term, its offset.
    pub offsets: &'a [i32],
    /// Per held term, which of its panel's masks it uses.
    pub tap_of: &'a [u8],
    /// Per panel and tap, the live lanes of each vector.
    pub masks: &'a [[u16; 4]],
    /// Masks per panel.
    pub taps: usize,
}

impl InPlace<'_> {
    /// Panics unless every live lane of every panel and term lies inside `src` and there is
    /// one offset and one tap (below `taps`) per held term.
    fn check(&self, held: usize) {
        assert!(self.offsets.len() == held && self.tap_of.len() == held);
        assert!(self.masks.len() >= self.bases.len() * self.taps);
        // Per tap, the smallest and largest offset of the terms that use it.
        let mut span = vec![(i64::MAX, i64::MIN); self.taps];
        for (&off, &t) in self.offsets.iter().zip(self.tap_of) {
            let s = &mut span[t as usize];
            *s = (s.0.min(off as i64), s.1.max(off as i64));
        }
        for (pp, bases) in self.bases.iter().enumerate() {
            for (t, &(lo, hi)) in span.iter().enumerate().filter(|(_, s)| s.0 <= s.1) {
                for (v, &m) in self.masks[pp * self.taps + t].iter().enumerate() {
                    if m != 0 {
                        let first = bases[v] as i64 + m.trailing_zeros() as i64 + lo;
                        let last = bases[v] as i64 + 15 - m.leading_zeros() as i64 + hi;
                        assert!(
                            first >= 0 && last < self.src.len() as i64,
                            "in-place panel {pp} reads outside its source"
                        );
                    }
                }
            }
        }
    }

    /// Whether every mask is full, so that a [`product`] may read the panels in place.
    pub fn every_lane_live(&self) -> bool {
        self.masks.iter().all(|m| *m == [u16::MAX; 4])
    }

    /// Panel `pp`'s terms `h0 .. h1` as a tile reads them.
    fn panel(&self, pp: usize, (h0, h1): (usize, usize)) -> Pixels<'_> {
        Pixels {
            ptrs: self.bases[pp].map(|b| self.src.as_ptr().wrapping_offset(b)),
            count: h1 - h0,
            offsets: &self.offsets[h0..h1],
        }
    }
}

/// Copies in-place panels into packed ones (`dst`, [`PixelSide::Packed`]'s layout over all
/// of `side`'s terms): a tile then streams them from L2 in order instead of jumping through
/// the source once per row panel.
pub fn pack_in_place(side: &InPlace, dst: &mut [f32]) {
    assert!(available::<f32>(), "the panel packing needs AVX-512");
    let held = side.offsets.len();
    side.check(held);
    assert!(dst.len() >= side.bases.len() * held * PANEL_PIXELS);
    // SAFETY: AVX-512 checked; every live lane read is inside src (checked), and every store
    // is below bases.len()·held·64 ≤ dst.len().
    unsafe { pack_in_place_avx512(side, dst) }
}

/// [`pack_in_place`]'s loop: four masked loads and four stores per panel and term.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack_in_place_avx512(side: &InPlace, dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let held = side.offsets.len();
    for pp in 0..side.bases.len() {
        let a = side.panel(pp, (0, held));
        let masks = &side.masks[pp * side.taps..][..side.taps];
        let d = dst.as_mut_ptr().wrapping_add(pp * held * PANEL_PIXELS);
        for kk in 0..held {
            let off = a.offsets[kk] as isize;
            let m = masks[side.tap_of[kk] as usize];
            for (v, (&mask, src)) in m.iter().zip(a.ptrs).enumerate() {
                // SAFETY: the live lanes are inside src (the caller's check); the store is
                // term kk of panel pp, inside dst.
                unsafe {
                    let x = _mm512_maskz_loadu_ps(mask, src.wrapping_offset(off));
                    _mm512_storeu_ps(d.add(kk * PANEL_PIXELS + 16 * v), x);
                }
            }
        }
    }
}

/// `rows · panels` into `out`: for each chunk of [`k_chunks`]`(k)` the chunk's sums are stored
/// (first chunk, unless `add`) or added with one rounding (later chunks, or all when `add`).
/// A chunk that holds none of the listed terms adds nothing (adding its +0 would change only
/// a −0 output, which no product stores: its sums are never −0).
///
/// The pixel side holds `pixels` pixels (in-place: at most 64 per panel) over the terms
/// `terms` names; lanes past `pixels` are never stored.
///
/// # Safety
/// [`available`] holds, and every (row < rows, q < pixels) of `out` lies in one allocation
/// that nothing else touches meanwhile.
pub unsafe fn product(
    rows: &PackedRows,
    (side, pixels, terms): (PixelSide, usize, Terms),
    out: Output,
    add: bool,
) {
    let k = rows.k;
    let held = match terms {
        Terms::All => k,
        Terms::Only(t) => {
            assert!(
                t.windows(2).all(|w| w[0] < w[1]) && t.last().is_none_or(|&l| (l as usize) < k)
            );
            t.len()
        }
    };
    let count = match side {
        PixelSide::Packed(panels) => {
            let count = pixels.div_ceil(PANEL_PIXELS);
            assert!(panels.len() >= count * PANEL_PIXELS * held);
            count
        }
        PixelSide::InPlace(at) => {
            at.check(held);
            // Masked loads cost the tile a tenth of its speed: a product reads whole vectors
            // (a zero-bordered source), and only `pack_in_place` reads masked ones.
            assert!(
                at.every_lane_live(),
                "a product reads in-place panels whole: every lane must be live"
            );
            assert!(pixels <= at.bases.len() * PANEL_PIXELS);
            at.bases.len()
        }
    };
    for (ci, (k0, k1)) in k_chunks(k).enumerate() {
        // The chunk's terms as positions in the panels.
        let (h0, h1) = terms.held((k0, k1));
        if h0 == h1 && (ci > 0 || add) {
            // Adding an empty chunk's +0 leaves every output as it is.
            continue;
        }
        for block in (0..count).step_by(BLOCK_PANELS) {
            for (rp, packed) in rows.data.chunks(k * PANEL_ROWS).enumerate() {
                let live = PANEL_ROWS.min(rows.rows - rp * PANEL_ROWS);
                for pp in block..(block + BLOCK_PANELS).min(count) {
                    let at = (rp * PANEL_ROWS, pp * PANEL_PIXELS, pixels);
                    let first = ci == 0 && !add;
                    // SAFETY: the caller's contract; a holds h1 − h0 terms (packed, or in
                    // place with every live lane inside its source, checked above), and b the
                    // terms (k0 .. k1, or the chunk's listed terms, all below k) they pair with.
                    unsafe {
                        match (side, terms) {
                            (PixelSide::Packed(panels), Terms::All) => {
                                let a = &panels[(pp * held + h0) * PANEL_PIXELS..]
                                    [..(h1 - h0) * PANEL_PIXELS];
                                let b = &packed[k0 * PANEL_ROWS..k1 * PANEL_ROWS];
                                tile::<_, false>(Pixels::packed(a), b, Dense, out, at, live, first)
                            }
                            (PixelSide::Packed(panels), Terms::Only(t)) => {
                                let a = &panels[(pp * held + h0) * PANEL_PIXELS..]
                                    [..(h1 - h0) * PANEL_PIXELS];
                                let listed = Listed(&t[h0..h1]);
                                tile::<_, false>(
                                    Pixels::packed(a),
                                    packed,
                                    listed,
                                    out,
                                    at,
                                    live,
                                    first,
                                )
                            }
                            (PixelSide::InPlace(src), Terms::All) => {
                                let b = &packed[k0 * PANEL_ROWS..k1 * PANEL_ROWS];
                                let a = src.panel(pp, (h0, h1));
                                tile::<_, true>(a, b, Dense, out, at, live, first)
                            }
                            (PixelSide::InPlace(src), Terms::Only(t)) => {
                                let (a, listed) = (src.panel(pp, (h0, h1)), Listed(&t[h0..h1]));
                                tile::<_, true>(a, packed, listed, out, at, live, first)
                            }
                        }
                    };
                }
            }
        }
    }
}

/// Where a tile finds term `kk`'s row values: at `6·at(kk)` in its row panel.
trait TermIndex: Copy {
    /// The row-panel term that the panels' term `kk` pairs with.
    ///
    /// # Safety
    /// `kk` is below the number of terms the tile's panels hold.
    unsafe fn at(self, kk: usize) -> usize;
}

/// Consecutive terms: the panels' term `kk` is the row panel's `kk`.
#[derive(Clone, Copy)]
struct Dense;

impl TermIndex for Dense {
    #[inline(always)]
    unsafe fn at(self, kk: usize) -> usize {
        kk
    }
}

/// Listed terms: the panels' term `kk` is the row panel's `list[kk]`.
#[derive(Clone, Copy)]
struct Listed<'a>(&'a [u32]);

impl TermIndex for Listed<'_> {
    #[inline(always)]
    unsafe fn at(self, kk: usize) -> usize {
        // Unchecked: a checked index in the tile's loop made the compiler keep ten of its
        // accumulators on the stack, stored every term.
        debug_assert!(kk < self.0.len());
        // SAFETY: the list has one entry per term the panels hold, and kk is below that.
        unsafe { *self.0.get_unchecked(kk) as usize }
    }
}

/// Whether [`forward_rows`] can run layer `g`: a kernel centred by its padding (k =
/// 2·padding + 1); at stride 1 input rows of 16, 32 or 64 pixels, at stride 2 a 3×3 kernel
/// over an even-sided map with output rows of 16, 32 or 64 pixels; output maps in whole
/// panels, and offsets into the bordered copy inside an i32.
pub fn rows_apply(g: &ConvGeometry) -> bool {
    let shape = match g.stride {
        1 => matches!(g.w, 16 | 32 | 64),
        2 => splits_phases(g) && matches!(g.ow(), 16 | 32 | 64),
        _ => false,
    };
    available::<f32>()
        && shape
        && g.k == 2 * g.padding + 1
        && g.pixels().is_multiple_of(PANEL_PIXELS)
        && Bordered::of(g).len() < i32::MAX as usize / 2
}

/// Whether layer `g` is a stride-2 layer that [`Bordered`] splits into phases: a 3×3 kernel
/// with padding 1 over an even-sided map. Its [`im2col_panels`] then copies contiguous runs
/// instead of gathering (128→256 at 16×16 13.1 → 12.7 ms, 256→512 at 8×8 13.5 → 12.8 ms
/// against the `gemm` crate path).
pub fn splits_phases(g: &ConvGeometry) -> bool {
    g.stride == 2 && g.k == 3 && g.padding == 1 && g.h.is_multiple_of(2) && g.w.is_multiple_of(2)
}

/// The zero-bordered copy of one image that [`forward_rows`] reads: at stride 1 each
/// channel's map with `padding` zeros around it; at stride 2 each channel split into its four
/// phases (even and odd rows × even and odd columns), each with one zero row above and one
/// zero column to the left, so that every tap of a stride-2 output row is one contiguous run
/// of one phase.
#[derive(Debug, Clone, Copy)]
struct Bordered {
    /// The layer.
    g: ConvGeometry,
    /// Maps per channel: 1, or 4 phases.
    maps: usize,
    /// Rows of each map.
    rows: usize,
    /// Columns of each map.
    cols: usize,
}

impl Bordered {
    fn of(g: &ConvGeometry) -> Self {
        let (maps, rows, cols) = match g.stride {
            1 => (1, g.h + 2 * g.padding, g.w + 2 * g.padding),
            _ => (4, g.oh() + 1, g.ow() + 1),
        };
        Bordered {
            g: *g,
            maps,
            rows,
            cols,
        }
    }

    /// Where output pixel `q` of rows `width` long reads its run at term 0's offset 0: its row
    /// and column in the copy's rows of `cols`.
    fn run(&self, q: usize, width: usize) -> usize {
        q / width * self.cols + q % width
    }

    /// Values in the copy.
    fn len(&self) -> usize {
        self.g.c * self.maps * self.rows * self.cols
    }

    /// Where term (c, ky, kx) of output pixel (0, 0) reads; output (oy, ox) reads
    /// `oy·cols + ox` further on. Input row 2·oy + ky − 1 at stride 2 is phase row oy − 1
    /// of the odd rows (ky = 0), oy of the even rows (ky = 1) or oy of the odd rows (ky = 2),
    /// each phase row r stored at row r + 1; columns alike.
    fn offset(&self, term: usize) -> usize {
        let k = self.g.k;
        let (c, ky, kx) = (term / (k * k), term / k % k, term % k);
        let (map, dy, dx) = match self.g.stride {
            1 => (0, ky, kx),
            _ => (
                2 * usize::from(ky != 1) + usize::from(kx != 1),
                usize::from(ky > 0),
                usize::from(kx > 0),
            ),
        };
        ((c * self.maps + map) * self.rows + dy) * self.cols + dx
    }

    /// Writes image `x` ([c, h, w]) into `dst` (`len()` values).
    fn fill(&self, x: &[f32], dst: &mut [f32]) {
        let g = &self.g;
        let map_len = self.rows * self.cols;
        for (c, channel) in dst.chunks_exact_mut(self.maps * map_len).enumerate() {
            let image = &x[c * g.h * g.w..][..g.h * g.w];
            if self.maps == 1 {
                let pad = g.padding;
                let (top, rest) = channel.split_at_mut(pad * self.cols);
                let (body, bottom) = rest.split_at_mut(g.h * self.cols);
                top.fill(0.0);
                bottom.fill(0.0);
                for (y, row) in body.chunks_exact_mut(self.cols).enumerate() {
                    row[..pad].fill(0.0);
                    row[pad..pad + g.w].copy_from_slice(&image[y * g.w..][..g.w]);
                    row[pad + g.w..].fill(0.0);
                }
                continue;
            }
            #[cfg(target_arch = "x86_64")]
            if available::<f32>()
                && g.h.is_multiple_of(2)
                && g.w.is_multiple_of(2)
                && (self.rows, self.cols) == (g.h / 2 + 1, g.w / 2 + 1)
            {
                // SAFETY: AVX-512 (available), and the four maps of `rows × cols` hold each
                // phase's h/2 rows of w/2 columns past their border.
                unsafe { self.fill_phases_avx512(image, channel) };
                continue;
            }
            for (phase, map) in channel.chunks_exact_mut(map_len).enumerate() {
                let (py, px) = (phase / 2, phase % 2);
                map[..self.cols].fill(0.0);
                for (r, row) in map[self.cols..].chunks_exact_mut(self.cols).enumerate() {
                    row[0] = 0.0;
                    let src = &image[(2 * r + py) * g.w..][..g.w];
                    for (d, &v) in row[1..].iter_mut().zip(src.iter().skip(px).step_by(2)) {
                        *d = v;
                    }
                }
            }
        }
    }

    /// One channel's four phase maps from its even-sized `image`, each input row read once
    /// 32 values at a time and split into its even and odd columns by two permutes: the
    /// scalar loop's strided copy was 18% of the 64→128 stride-2 forward on an Intel Xeon.
    /// A copy: the same values.
    ///
    /// # Safety
    /// AVX-512F is available, `image` is h × w with both even, `maps` is 4 and `channel`
    /// holds the four maps of `(h/2 + 1) × (w/2 + 1)`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn fill_phases_avx512(&self, image: &[f32], channel: &mut [f32]) {
        use std::arch::x86_64::*;
        let (h, w, cols) = (self.g.h, self.g.w, self.cols);
        let map_len = self.rows * cols;
        assert!(image.len() >= h * w && channel.len() >= 4 * map_len && cols == w / 2 + 1);
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let lanes = |n: usize| ((1u32 << n.min(16)) - 1) as __mmask16;
        for map in channel.chunks_exact_mut(map_len).take(4) {
            map[..cols].fill(0.0);
            for row in map[cols..].chunks_exact_mut(cols) {
                row[0] = 0.0;
            }
        }
        let (src, dst) = (image.as_ptr(), channel.as_mut_ptr());
        for y in 0..h {
            // Input row y is row y / 2 + 1 of the even-row (y even) or odd-row maps.
            let at = |px: usize| ((2 * (y % 2) + px) * self.rows + y / 2 + 1) * cols + 1;
            for j0 in (0..w).step_by(32) {
                let n = (w - j0).min(32);
                // SAFETY: lanes j0 .. j0 + n of input row y, and the n / 2 columns j0 / 2 ..
                // of each phase row (the contract's sizes).
                unsafe {
                    let s = src.add(y * w + j0);
                    let a = _mm512_maskz_loadu_ps(lanes(n), s);
                    let b = _mm512_maskz_loadu_ps(lanes(n.saturating_sub(16)), s.wrapping_add(16));
                    let half = lanes(n / 2);
                    let (e, o) = (dst.add(at(0) + j0 / 2), dst.add(at(1) + j0 / 2));
                    _mm512_mask_storeu_ps(e, half, _mm512_permutex2var_ps(a, even, b));
                    _mm512_mask_storeu_ps(o, half, _mm512_permutex2var_ps(a, odd, b));
                }
            }
        }
    }
}

/// The forward product of one image `x` read from a zero-bordered copy of it ([`Bordered`]),
/// without a column matrix: each 64-pixel panel is whole output rows, so term (c, ky, kx) of
/// its four vectors is four runs of the copy. The border's +0s are [`im2col_panels`]' padding
/// values, in its order, summed by the same tile in the same chunks, so the bits are
/// [`product`]'s. Every lane lies inside the copy, so the tile loads without masks (masked
/// loads of the unbordered image ran the tile at 106 instead of 117 GFLOP/s in a one-thread
/// loop).
///
/// # Safety
/// [`rows_apply`] holds, and every (row < rows.rows, q < pixels) of `out` lies in one
/// allocation that nothing else touches meanwhile.
pub unsafe fn forward_rows(g: &ConvGeometry, rows: &PackedRows, x: &[f32], out: Output) {
    assert!(rows_apply(g) && x.len() >= g.image_len() && rows.k == g.row_len());
    let (p, ow) = (g.pixels(), g.ow());
    let bordered = Bordered::of(g);
    let offsets: Vec<i32> = (0..g.row_len())
        .map(|kk| bordered.offset(kk) as i32)
        .collect();
    let tap_of = vec![0u8; g.row_len()];
    let count = p / PANEL_PIXELS;
    let masks = vec![[u16::MAX; 4]; count];
    // Each vector is 16 pixels of one output row (rows are 16, 32 or 64 long).
    let bases: Vec<[isize; 4]> = (0..count)
        .map(|pp| std::array::from_fn(|v| bordered.run(pp * PANEL_PIXELS + 16 * v, ow) as isize))
        .collect();
    f32::with_scratch(0, bordered.len(), |copy| {
        bordered.fill(x, copy);
        let side = InPlace {
            src: copy,
            bases: &bases,
            offsets: &offsets,
            tap_of: &tap_of,
            masks: &masks,
            taps: 1,
        };
        // SAFETY: the caller's contract for out; every lane of term (c, ky, kx) is the value
        // that im2col puts there, in the bordered copy (product checks it is inside).
        unsafe { product(rows, (PixelSide::InPlace(side), p, Terms::All), out, false) }
    })
}

/// Whether [`grad_input_rows`] can run layer `g` with `o` output channels: stride 1, a kernel
/// centred by its padding, rows of 16, 32 or 64 pixels, maps in whole panels, the `o`
/// channels in one k-chunk, and offsets into the bordered copy of the upstream gradient
/// inside an i32.
pub fn input_rows_apply(g: &ConvGeometry, o: usize) -> bool {
    // The upstream gradient read as a stride-1 image of o channels: the forward's conditions.
    g.stride == 1 && k_chunks(o).count() == 1 && rows_apply(&ConvGeometry { c: o, ..*g })
}

/// The input gradient of one image read from a zero-bordered copy of its upstream gradient
/// `gout` ([o, h, w]), without a column matrix or col2im: for each tap (ky, kx) in order, the
/// tap's column-gradient rows `Σ_oc W[oc, c, ky, kx] · gout[oc]` (one FMA chain from zero over
/// the one k-chunk of `o`, as [`product`] computes them) are stored (the first tap) or added
/// with one rounding (the others) at the input pixels they land on, which is col2im's order
/// and rounding. A tap's run may cover border zeros where col2im has no term: with
/// `per_tap` finite those chains are +0, and adding +0 leaves a sum that is never −0 as it
/// is, so the bits are the column path's; the vectors whose run is a whole border row are
/// not computed at all past the first tap (at 16×16, 1 of 16 rows at 3 of 9 taps).
/// `per_tap[t]` is tap t's `c × o` rows, W[oc, c, t].
///
/// # Safety
/// [`input_rows_apply`] holds, every `per_tap` row is finite, and every (row < c, q < pixels)
/// of `out` lies in one allocation that nothing else touches meanwhile.
pub unsafe fn grad_input_rows(g: &ConvGeometry, per_tap: &[PackedRows], gout: &[f32], out: Output) {
    let o = per_tap.first().map_or(0, |r| r.k);
    assert!(input_rows_apply(g, o) && gout.len() >= o * g.pixels());
    assert!(per_tap.len() == g.k * g.k && per_tap.iter().all(|r| r.k == o && r.rows == g.c));
    let (p, w, kk) = (g.pixels(), g.w, g.k * g.k);
    // The upstream gradient as an image of o channels, bordered like a stride-1 input.
    let bordered = Bordered::of(&ConvGeometry { c: o, ..*g });
    let channel = |oc: usize| bordered.offset(oc * kk) as i32;
    let offsets: Vec<i32> = (0..o).map(channel).collect();
    f32::with_scratch(0, bordered.len(), |copy| {
        bordered.fill(gout, copy);
        for pp in 0..p / PANEL_PIXELS {
            // Input pixel (y, x) of tap (ky, kx) takes upstream pixel (y + pad − ky, x + pad −
            // kx): the copy's (y + 2·pad − ky, x + 2·pad − kx), at the offset of the flipped
            // tap (k − 1 − ky, k − 1 − kx).
            let base = |v: usize| bordered.run(pp * PANEL_PIXELS + 16 * v, w);
            for (t, rows) in per_tap.iter().enumerate() {
                let shift = bordered.offset(kk - 1 - t);
                let a = Pixels {
                    ptrs: std::array::from_fn(|v| copy.as_ptr().wrapping_add(base(v) + shift)),
                    count: o,
                    offsets: &offsets,
                };
                // The vectors whose run is a border row would add a chain of +0s: only the
                // others are computed, past the first tap (which stores every vector).
                let inside = |v: usize| {
                    let y = (pp * PANEL_PIXELS + 16 * v) / w;
                    (y + g.padding)
                        .checked_sub(t / g.k)
                        .is_some_and(|r| r < g.h)
                };
                let (v0, v1) = match t {
                    0 => (0, 4),
                    _ => (
                        (0..4).find(|&v| inside(v)).unwrap_or(4),
                        (0..4).rev().find(|&v| inside(v)).map_or(0, |v| v + 1),
                    ),
                };
                for (rp, b) in rows.data.chunks(o * PANEL_ROWS).enumerate() {
                    let live = PANEL_ROWS.min(g.c - rp * PANEL_ROWS);
                    let run = (a, b, out, (rp * PANEL_ROWS, pp * PANEL_PIXELS, p));
                    let first = t == 0;
                    // SAFETY: available (asserted); every run lies inside the copy (a flipped
                    // tap moves an image run by at most 2·pad rows and columns, which the
                    // border holds), b holds this row panel's o terms, and the caller's
                    // contract covers out.
                    unsafe {
                        match (v0, v1) {
                            (1, 4) => tile_vectors::<3, 1>(run, live, first),
                            (0, 3) => tile_vectors::<3, 0>(run, live, first),
                            (2, 4) => tile_vectors::<2, 2>(run, live, first),
                            (0, 2) => tile_vectors::<2, 0>(run, live, first),
                            (v0, v1) if v0 >= v1 => {}
                            _ => tile_vectors::<4, 0>(run, live, first),
                        }
                    }
                }
            }
        }
    })
}

/// `rows · panels` one row panel at a time: each panel's [`PANEL_ROWS`] output rows over all
/// `pixels` (every chunk of [`k_chunks`] summed as in [`product`]) go to `strip` (row i at
/// `strip[i·pixels..]`), which is then handed to `each(first row, live rows, strip)` while it
/// is still in L1, row panels in ascending order.
pub fn product_strips(
    rows: &PackedRows,
    panels: &[f32],
    pixels: usize,
    strip: &mut [f32],
    mut each: impl FnMut(usize, usize, &[f32]),
) {
    assert!(available::<f32>(), "the panel product needs AVX-512");
    let k = rows.k;
    let count = pixels.div_ceil(PANEL_PIXELS);
    assert!(panels.len() >= count * PANEL_PIXELS * k && strip.len() >= PANEL_ROWS * pixels);
    let out = Output::matrix(strip.as_mut_ptr(), pixels);
    for (rp, packed) in rows.data.chunks(k * PANEL_ROWS).enumerate() {
        let live = PANEL_ROWS.min(rows.rows - rp * PANEL_ROWS);
        for (ci, (k0, k1)) in k_chunks(k).enumerate() {
            let b = &packed[k0 * PANEL_ROWS..k1 * PANEL_ROWS];
            for pp in 0..count {
                let a = &panels[(pp * k + k0) * PANEL_PIXELS..(pp * k + k1) * PANEL_PIXELS];
                // SAFETY: AVX-512 checked; rows 0..live and pixels below `pixels` of the
                // strip are inside it (asserted), and nothing else holds it meanwhile.
                unsafe {
                    tile::<_, false>(
                        Pixels::packed(a),
                        b,
                        Dense,
                        out,
                        (0, pp * PANEL_PIXELS, pixels),
                        live,
                        ci == 0,
                    )
                };
            }
        }
        each(rp * PANEL_ROWS, live, &strip[..live * pixels]);
    }
}

/// Where a tile reads its pixel side's 64 values per term.
#[derive(Clone, Copy)]
struct Pixels<'a> {
    /// Packed: the chunk's first value (in `ptrs[0]`), term `kk` at `64·kk`. Direct: where
    /// each vector reads at offset 0.
    ptrs: [*const f32; 4],
    /// Terms in the chunk.
    count: usize,
    /// Direct: per term, its offset from each of `ptrs`.
    offsets: &'a [i32],
}

impl<'a> Pixels<'a> {
    /// Packed panels: `a` holds the chunk's terms, 64 values each.
    fn packed(a: &'a [f32]) -> Self {
        Pixels {
            ptrs: [a.as_ptr(); 4],
            count: a.len() / PANEL_PIXELS,
            offsets: &[],
        }
    }
}

/// [`tile_rows`] computing only as many of the panel's six rows as hold outputs, rounded up
/// to two or four: the last row panel of 64 or 256 rows has four, of 128 or 512 two, and
/// six would spend a third or two thirds of its FMAs on padding rows. Likewise only the
/// panel's vectors that hold a pixel: a weight gradient's pixel side is the receptive field,
/// 72 terms for 8 channels (a last panel with one live vector of four) or 27 for the stem.
///
/// # Safety
/// As [`tile_rows`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<I: TermIndex, const DIRECT: bool>(
    a: Pixels,
    b: &[f32],
    terms: I,
    out: Output,
    at: (usize, usize, usize),
    live: usize,
    first: bool,
) {
    // SAFETY: forwarded; each computes at least `live` rows and every vector with a pixel.
    unsafe {
        match (live, vectors_with_pixels(at)) {
            (0..=2, 1) => tile_rows::<I, DIRECT, 2, 1, 0>(a, b, terms, out, at, live, first),
            (0..=2, 2) => tile_rows::<I, DIRECT, 2, 2, 0>(a, b, terms, out, at, live, first),
            (0..=2, 3) => tile_rows::<I, DIRECT, 2, 3, 0>(a, b, terms, out, at, live, first),
            (0..=2, _) => tile_rows::<I, DIRECT, 2, 4, 0>(a, b, terms, out, at, live, first),
            (3..=4, 1) => tile_rows::<I, DIRECT, 4, 1, 0>(a, b, terms, out, at, live, first),
            (3..=4, 2) => tile_rows::<I, DIRECT, 4, 2, 0>(a, b, terms, out, at, live, first),
            (3..=4, 3) => tile_rows::<I, DIRECT, 4, 3, 0>(a, b, terms, out, at, live, first),
            (3..=4, _) => tile_rows::<I, DIRECT, 4, 4, 0>(a, b, terms, out, at, live, first),
            (_, 1) => tile_rows::<I, DIRECT, PANEL_ROWS, 1, 0>(a, b, terms, out, at, live, first),
            (_, 2) => tile_rows::<I, DIRECT, PANEL_ROWS, 2, 0>(a, b, terms, out, at, live, first),
            (_, 3) => tile_rows::<I, DIRECT, PANEL_ROWS, 3, 0>(a, b, terms, out, at, live, first),
            _ => tile_rows::<I, DIRECT, PANEL_ROWS, 4, 0>(a, b, terms, out, at, live, first),
        }
    }
}

/// How many of a panel's four vectors hold a pixel below `end` for the tile at `(_, q0, end)`.
fn vectors_with_pixels((_, q0, end): (usize, usize, usize)) -> usize {
    end.saturating_sub(q0).min(PANEL_PIXELS).div_ceil(16)
}

/// [`tile`] over the direct panel's vectors `V0 .. V0 + V` of consecutive terms only: the
/// others' outputs are neither read nor written.
///
/// # Safety
/// As [`tile_rows`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_vectors<const V: usize, const V0: usize>(
    (a, b, out, at): (Pixels, &[f32], Output, (usize, usize, usize)),
    live: usize,
    first: bool,
) {
    // SAFETY: forwarded; each computes at least `live` rows.
    unsafe {
        match live {
            0..=2 => tile_rows::<_, true, 2, V, V0>(a, b, Dense, out, at, live, first),
            3..=4 => tile_rows::<_, true, 4, V, V0>(a, b, Dense, out, at, live, first),
            _ => tile_rows::<_, true, PANEL_ROWS, V, V0>(a, b, Dense, out, at, live, first),
        }
    }
}

/// One R × 64 tile (the row panel's first R ≤ 6 rows): `Σ_kk b[6·terms.at(kk) + r] · a(kk)[i]`
/// as one FMA chain from zero in kk order per output, stored at rows `row0 .. row0 + live` and pixels `q0 ..` (below `end`)
/// of `out`, or added there unless `first`. `a(kk)` is the packed panel's term `kk`, or when
/// `DIRECT` the four runs of 16 at `a.ptrs[v] + a.offsets[kk]`. Only the panel's vectors
/// `V0 .. V0 + V` (pixels `q0 + 16·V0 ..`) are computed.
///
/// # Safety
/// As [`product`]; when `DIRECT`, every lane of every run is inside the source.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_rows<
    I: TermIndex,
    const DIRECT: bool,
    const R: usize,
    const V: usize,
    const V0: usize,
>(
    a: Pixels,
    b: &[f32],
    terms: I,
    out: Output,
    (row0, q0, end): (usize, usize, usize),
    live: usize,
    first: bool,
) {
    use std::arch::x86_64::*;
    debug_assert!(live <= R && R <= PANEL_ROWS && V0 + V <= 4);
    let kc = a.count;
    // SAFETY: kk < kc, the terms the panels hold.
    debug_assert!((0..kc).all(|kk| unsafe { terms.at(kk) } < b.len() / PANEL_ROWS));
    debug_assert!(!DIRECT || a.offsets.len() >= kc);
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    let (ap, bp) = (a.ptrs[0], b.as_ptr());
    for kk in 0..kc {
        // SAFETY: kk < kc, so the 64 values at ap + 64·kk are inside the packed panel (or,
        // direct, every lane inside the source), and the 6 at bp + 6·terms.at(kk)
        // inside b (the callers' contract, checked in debug builds).
        unsafe {
            let v: [__m512; V] = if DIRECT {
                let off = *a.offsets.get_unchecked(kk) as isize;
                std::array::from_fn(|i| _mm512_loadu_ps(a.ptrs[V0 + i].wrapping_offset(off)))
            } else {
                let av = ap.add(kk * PANEL_PIXELS);
                std::array::from_fn(|i| _mm512_loadu_ps(av.add(16 * (V0 + i))))
            };
            let bv = bp.add(terms.at(kk) * PANEL_ROWS);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let w = _mm512_set1_ps(*bv.add(r));
                for (x, vi) in acc_r.iter_mut().zip(&v) {
                    *x = _mm512_fmadd_ps(*vi, w, *x);
                }
            }
        }
    }
    // Each vector's place in the output, worked out once for all the tile's rows: a division
    // per store cost as much as a fifth of a 64-term tile's FMAs.
    let places: [(usize, usize, usize, bool); V] = std::array::from_fn(|i| {
        let (q, px) = (q0 + 16 * (V0 + i), (q0 + 16 * (V0 + i)) % out.pixels);
        let n = end.saturating_sub(q).min(16);
        let base = q / out.pixels * out.image_stride + px;
        (q, n, base, px + n <= out.pixels)
    });
    for (r, acc_r) in acc.iter().enumerate().take(live) {
        let row = (row0 + r) * out.row_stride;
        for (x, &(q, n, base, one_run)) in acc_r.iter().zip(&places) {
            if n == 0 {
                break;
            }
            if one_run {
                let mask: __mmask16 = ((1u32 << n) - 1) as u16;
                // SAFETY: lanes q .. q + n are n pixels of one image's row (one_run).
                unsafe {
                    let p = out.ptr.add(base + row);
                    let v = match first {
                        true => *x,
                        false => _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), *x),
                    };
                    _mm512_mask_storeu_ps(p, mask, v);
                }
            } else {
                let mut lanes = [0f32; 16];
                // SAFETY: 16 values into a 16-value array.
                unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), *x) };
                for (j, v) in lanes[..n].iter().enumerate() {
                    let (img, px) = ((q + j) / out.pixels, (q + j) % out.pixels);
                    let at = img * out.image_stride + row + px;
                    // SAFETY: (row0 + r, q + j) is an output by the caller's contract.
                    unsafe {
                        let p = out.ptr.add(at);
                        *p = if first { *v } else { *p + *v };
                    }
                }
            }
        }
    }
}

// Off x86-64 `available` is false, so none of these is ever called: they keep the crate
// building there.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn im2col_panels_avx512(_: &ConvGeometry, _: &[f32], _: &mut [f32], _: usize) {
    unreachable!("no AVX-512 off x86-64")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn im2col_panels_bordered(_: &Bordered, _: &[f32], _: &mut [f32], _: usize) {
    unreachable!("no AVX-512 off x86-64")
}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn put_run(
    _: *mut f32,
    _: usize,
    _: usize,
    _: usize,
    _: usize,
    _: Option<(*const f32, usize)>,
) {
    unreachable!("no AVX-512 off x86-64")
}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn pack_in_place_avx512(_: &InPlace, _: &mut [f32]) {
    unreachable!("no AVX-512 off x86-64")
}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn im2col_t_panels_avx512(_: &ConvGeometry, _: &[f32], _: &mut [f32], _: usize, _: usize) {
    unreachable!("no AVX-512 off x86-64")
}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile<I: TermIndex, const DIRECT: bool>(
    _: Pixels,
    _: &[f32],
    _: I,
    _: Output,
    _: (usize, usize, usize),
    _: usize,
    _: bool,
) {
    unreachable!("no AVX-512 off x86-64")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile_vectors<const V: usize, const V0: usize>(
    _: (Pixels, &[f32], Output, (usize, usize, usize)),
    _: usize,
    _: bool,
) {
    unreachable!("no AVX-512 off x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorized packing of rows with contiguous terms gives the scalar packing's
    /// panels: partial row panels (zero rows) and term counts around 16.
    #[test]
    fn contiguous_rows_pack_as_strided_ones() {
        if !available::<f32>() {
            eprintln!("no AVX-512 on this CPU: the vectorized packing does not run here");
            return;
        }
        for (rows, k) in [(1, 1), (5, 15), (6, 16), (7, 17), (13, 40), (12, 3)] {
            let m: Vec<f32> = (0..rows * k).map(|i| i as f32 + 0.5).collect();
            let t: Vec<f32> = (0..rows * k).map(|i| m[i % rows * k + i / rows]).collect();
            let contiguous = PackedRows::new(&m, (rows, k), (k, 1));
            let strided = PackedRows::new(&t, (rows, k), (1, rows));
            assert_eq!(contiguous.data, strided.data, "{rows} × {k}");
        }
    }

    /// Channels over several images pack as value by value: partial row panels, pixel
    /// counts around 16, one and several images.
    #[test]
    fn channels_pack_as_value_by_value() {
        if !available::<f32>() {
            eprintln!("no AVX-512 on this CPU: the vectorized packing does not run here");
            return;
        }
        for (ch, p, cnt) in [(1, 1, 1), (8, 16, 3), (7, 17, 2), (13, 5, 4), (6, 64, 1)] {
            let src: Vec<f32> = (0..ch * p * cnt).map(|i| i as f32 - 0.5).collect();
            let fast = PackedRows::channels(&src, (ch, p, cnt));
            let slow = PackedRows::channels_scalar(&src, (ch, p, cnt));
            assert_eq!((fast.rows, fast.k), (slow.rows, slow.k));
            assert_eq!(
                fast.data, slow.data,
                "{ch} channels × {p} pixels × {cnt} images"
            );
        }
    }

    /// The one-pass packing of every tap's transposed weight equals packing each tap alone:
    /// 3×3 kernels (the permutes) over partial row panels, several blocks of row panels and
    /// of weight rows, and other kernels.
    #[test]
    fn taps_pack_as_each_tap_alone() {
        for (o, c, taps) in [
            (1, 1, 9),
            (5, 7, 9),
            (3, 6, 9),
            (2, 13, 9),
            (20, 53, 9),
            (4, 12, 1),
            (2, 5, 25),
        ] {
            let w: Vec<f32> = (0..o * c * taps).map(|i| i as f32 + 0.25).collect();
            let all = PackedRows::taps(&w, (o, c, taps));
            assert_eq!(all.len(), taps);
            for (t, packed) in all.iter().enumerate() {
                let alone = PackedRows::new(&w[t..], (c, o), (taps, c * taps));
                assert_eq!(packed.data, alone.data, "{o} × {c} × {taps}, tap {t}");
                assert_eq!((packed.rows, packed.k), (alone.rows, alone.k));
            }
        }
    }
}
