//! f32 matrices transposed in 16 × 16 blocks held in AVX-512 registers (a plain loop
//! elsewhere): the batch-minor and channel-minor layouts that let the padding-skipping
//! convolution ([`super::conv_skip`]) read whole vectors where it used to gather lane by lane.
//! Values are only moved, so the bits are the source's.

use super::cpu_float::{LineAligned, par_init, par_init_aligned};

/// The `rows × cols` matrix `src` (row-major) as its `cols × rows` transpose.
pub fn transposed(src: &[f32], (rows, cols): (usize, usize)) -> Vec<f32> {
    assert!(src.len() >= rows * cols);
    if rows * cols == 0 {
        return Vec::new();
    }
    // Chunks of 16 destination rows: 16 source columns each.
    let chunk = 16 * rows;
    // SAFETY: chunk i is destination rows 16i .. 16i + m (m = its length / rows), which
    // `block` writes in full from source columns 16i .. 16i + m, all inside src (asserted).
    unsafe {
        par_init(rows * cols, chunk, |i, part| {
            let m = part.len() / rows;
            block(
                src.as_ptr().add(16 * i),
                cols,
                (rows, m),
                part.as_mut_ptr().cast(),
            );
        })
    }
}

/// Each of `count` consecutive `rows × cols` matrices of `src` transposed in place of it,
/// starting on a cache line (the weight gradient's tile reads it in place).
pub fn transposed_each(
    src: &[f32],
    (count, rows, cols): (usize, usize, usize),
) -> LineAligned<f32> {
    assert!(src.len() >= count * rows * cols);
    let each = rows * cols;
    // SAFETY: chunk j is matrix j's transpose, which `block` writes in full from matrix j.
    unsafe {
        par_init_aligned(count * each, each, |j, part| {
            block(
                src.as_ptr().add(j * each),
                cols,
                (rows, cols),
                part.as_mut_ptr().cast(),
            )
        })
    }
}

/// Writes the `rows × cols` block of `src` (rows `stride` apart) transposed into `dst`
/// (`cols × rows`, row-major): the safe form of the block copy the whole-matrix transposes use.
pub fn transpose_block(src: &[f32], stride: usize, (rows, cols): (usize, usize), dst: &mut [f32]) {
    if rows * cols == 0 {
        return;
    }
    assert!(src.len() >= (rows - 1) * stride + cols && dst.len() >= rows * cols);
    // SAFETY: every read is (r < rows, c < cols) of src and every write one of dst's
    // rows·cols values (asserted above).
    unsafe { block(src.as_ptr(), stride, (rows, cols), dst.as_mut_ptr()) }
}

/// Writes the transpose of the `rows × cols` block at `src` (row stride `stride`) to `dst`
/// (`cols × rows`, row-major).
///
/// # Safety
/// `src + r·stride + c` for r < rows, c < cols is readable and `dst[.. rows·cols]` writable.
unsafe fn block(src: *const f32, stride: usize, (rows, cols): (usize, usize), dst: *mut f32) {
    if super::cpu_float::kernel_level() == super::cpu_float::KernelLevel::Avx512 {
        // SAFETY: AVX-512 checked; the caller's contract.
        unsafe { block_avx512(src, stride, (rows, cols), dst) }
    } else {
        for c in 0..cols {
            for r in 0..rows {
                // SAFETY: the caller's contract.
                unsafe { *dst.add(c * rows + r) = *src.add(r * stride + c) };
            }
        }
    }
}

/// [`block`] 16 × 16 values at a time: masked loads of up to 16 source rows, the register
/// transpose, masked stores of up to 16 destination rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn block_avx512(
    src: *const f32,
    stride: usize,
    (rows, cols): (usize, usize),
    dst: *mut f32,
) {
    use std::arch::x86_64::*;
    let mask = |n: usize| -> __mmask16 { ((1u32 << n.min(16)) - 1) as u16 };
    for c0 in (0..cols).step_by(16) {
        let cn = (cols - c0).min(16);
        for r0 in (0..rows).step_by(16) {
            let rn = (rows - r0).min(16);
            let mut v = [_mm512_setzero_ps(); 16];
            for (r, x) in v.iter_mut().enumerate().take(rn) {
                // SAFETY: row r0 + r < rows, columns c0 .. c0 + cn < cols (the mask).
                *x = unsafe { _mm512_maskz_loadu_ps(mask(cn), src.add((r0 + r) * stride + c0)) };
            }
            let t = transpose16(v);
            for (c, x) in t.iter().enumerate().take(cn) {
                // SAFETY: destination row c0 + c < cols, columns r0 .. r0 + rn < rows.
                unsafe { _mm512_mask_storeu_ps(dst.add((c0 + c) * rows + r0), mask(rn), *x) };
            }
        }
    }
}

/// The 16 × 16 matrix whose rows are `r` transposed: unpacks pair rows and then row pairs
/// inside each 128-bit lane, two lane shuffles gather each output row's four quarters.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) fn transpose16(r: [std::arch::x86_64::__m512; 16]) -> [std::arch::x86_64::__m512; 16] {
    use std::arch::x86_64::*;
    // t[2i], t[2i + 1]: rows 2i and 2i + 1 interleaved, low and high pairs of each lane.
    let t: [__m512; 16] = std::array::from_fn(|i| match i % 2 {
        0 => _mm512_unpacklo_ps(r[i], r[i + 1]),
        _ => _mm512_unpackhi_ps(r[i - 1], r[i]),
    });
    // u[4g + j]: rows 4g .. 4g + 4 of column 4L + j in each lane L.
    let u: [__m512; 16] = std::array::from_fn(|i| {
        let (g, j) = (i / 4, i % 4);
        let (a, b) = (
            _mm512_castps_pd(t[4 * g + j / 2]),
            _mm512_castps_pd(t[4 * g + 2 + j / 2]),
        );
        _mm512_castpd_ps(match j % 2 {
            0 => _mm512_unpacklo_pd(a, b),
            _ => _mm512_unpackhi_pd(a, b),
        })
    });
    let mut out = [_mm512_setzero_ps(); 16];
    for j in 0..4 {
        let even_a = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
        let even_b = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
        let odd_a = _mm512_shuffle_f32x4::<0xdd>(u[j], u[4 + j]);
        let odd_b = _mm512_shuffle_f32x4::<0xdd>(u[8 + j], u[12 + j]);
        out[j] = _mm512_shuffle_f32x4::<0x88>(even_a, even_b);
        out[8 + j] = _mm512_shuffle_f32x4::<0xdd>(even_a, even_b);
        out[4 + j] = _mm512_shuffle_f32x4::<0x88>(odd_a, odd_b);
        out[12 + j] = _mm512_shuffle_f32x4::<0xdd>(odd_a, odd_b);
    }
    out
}

// Off x86-64 the level is never AVX-512, so this is never called: it keeps the crate
// building there.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn block_avx512(_: *const f32, _: usize, _: (usize, usize), _: *mut f32) {
    unreachable!("no AVX-512 off x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element lands at its transposed place, over shapes with and without partial
    /// 16 × 16 blocks and with one row or one column; bits untouched (signed zeros, NaN).
    #[test]
    fn transposes_move_every_value_to_its_transposed_place() {
        let value = |i: usize| match i % 13 {
            4 => -0.0,
            9 => f32::from_bits(0x7fc0_1234),
            _ => i as f32 * 0.37 - 5.0,
        };
        for (rows, cols) in [
            (1, 1),
            (16, 16),
            (17, 33),
            (64, 16),
            (3, 100),
            (100, 3),
            (1, 40),
        ] {
            let src: Vec<f32> = (0..rows * cols).map(value).collect();
            let t = transposed(&src, (rows, cols));
            assert_eq!(t.len(), rows * cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        t[c * rows + r].to_bits(),
                        src[r * cols + c].to_bits(),
                        "{rows}x{cols} at ({r}, {c})"
                    );
                }
            }
            let each = transposed_each(&[src.clone(), src.clone()].concat(), (2, rows, cols));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&each),
                bits(&[t.clone(), t].concat()),
                "{rows}x{cols} twice"
            );
        }
        assert!(transposed(&[], (0, 5)).is_empty());
    }

    /// A block read with a row stride wider than its columns lands transposed, and nothing is
    /// written past its rows·cols values: rows under, at and over 16, columns around 16.
    #[test]
    fn strided_blocks_transpose_in_place_of_their_destination() {
        for (rows, cols) in [(8, 32), (16, 5), (3, 17), (17, 1), (0, 3)] {
            let stride = cols + 3;
            let src: Vec<f32> = (0..rows * stride).map(|i| i as f32 - 7.5).collect();
            let mut dst = vec![f32::NAN; rows * cols + 1];
            transpose_block(&src, stride, (rows, cols), &mut dst);
            for c in 0..cols {
                for r in 0..rows {
                    assert_eq!(
                        dst[c * rows + r].to_bits(),
                        src[r * stride + c].to_bits(),
                        "{rows}x{cols} at ({r}, {c})"
                    );
                }
            }
            assert!(dst[rows * cols].is_nan(), "wrote past rows·cols");
        }
    }
}
