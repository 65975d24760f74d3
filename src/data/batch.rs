//! Minibatch assembly: seeded random crop with zero padding, horizontal flip, normalisation.

use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Split;

/// How images become network inputs, as the reference code's torchvision transforms do it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// Per-channel mean subtracted after scaling pixels to [0, 1].
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after subtracting the mean.
    pub std: Vec<f32>,
    /// Zero padding on each side before a random crop back to full size (0 = no crop).
    #[serde(default)]
    pub crop_padding: usize,
    /// Flip each training image horizontally with probability 1/2.
    #[serde(default)]
    pub hflip: bool,
}

impl Preprocessing {
    /// Plain scaling to [0,1] then (x - 0.5) / 0.5, no augmentation.
    pub fn centered(channels: usize) -> Self {
        Preprocessing {
            mean: vec![0.5; channels],
            std: vec![0.5; channels],
            crop_padding: 0,
            hflip: false,
        }
    }
}

/// Geometry of the images in a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl ImageShape {
    /// Number of values per image.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// True when an image has no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes the normalised (and, with `rng`, augmented) images `indices` of `split` into `out`.
///
/// `out` must hold `indices.len() * shape.len()` values. Each image draws its crop offsets and
/// then its flip from `rng`, in index order, so a seeded generator gives the same batch.
pub fn fill_batch<R: Rng + ?Sized>(
    split: &Split,
    shape: ImageShape,
    indices: &[usize],
    pre: &Preprocessing,
    mut rng: Option<&mut R>,
    out: &mut [f32],
) {
    let n = shape.len();
    let (c, h, w) = (shape.c, shape.h, shape.w);
    // Precompute per-channel lookup tables: 256 values each, so the inner loop is a gather.
    let luts: Vec<[f32; 256]> = (0..c)
        .map(|ch| {
            let mut t = [0f32; 256];
            for (v, slot) in t.iter_mut().enumerate() {
                *slot = (v as f32 / 255.0 - pre.mean[ch]) / pre.std[ch];
            }
            t
        })
        .collect();
    for (bi, &idx) in indices.iter().enumerate() {
        let src = &split.images[idx * n..(idx + 1) * n];
        let dst = &mut out[bi * n..(bi + 1) * n];
        let (mut dy, mut dx, mut flip) = (0isize, 0isize, false);
        if let Some(r) = rng.as_deref_mut() {
            // rand 0.9 has no uniform sampler for isize, so draw as i64.
            let p = pre.crop_padding as i64;
            if p > 0 {
                dy = (r.random_range(0..=2 * p) - p) as isize;
                dx = (r.random_range(0..=2 * p) - p) as isize;
            }
            if pre.hflip {
                flip = r.random_bool(0.5);
            }
        }
        for ch in 0..c {
            let lut = &luts[ch];
            let zero = lut[0];
            let plane = &src[ch * h * w..(ch + 1) * h * w];
            let dplane = &mut dst[ch * h * w..(ch + 1) * h * w];
            for y in 0..h {
                let sy = y as isize + dy;
                let drow = &mut dplane[y * w..(y + 1) * w];
                if sy < 0 || sy >= h as isize {
                    drow.fill(zero);
                    continue;
                }
                let srow = &plane[sy as usize * w..(sy as usize + 1) * w];
                for (x, d) in drow.iter_mut().enumerate() {
                    let xo = if flip { w - 1 - x } else { x };
                    let sx = xo as isize + dx;
                    *d = if sx < 0 || sx >= w as isize {
                        zero
                    } else {
                        lut[srow[sx as usize] as usize]
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn split_1x2x3() -> Split {
        Split {
            images: vec![0, 51, 102, 153, 204, 255],
            labels: vec![0],
        }
    }

    #[test]
    fn shapes_count_their_values_and_centred_maps_bytes_to_minus_one_to_one() {
        let s = ImageShape { c: 3, h: 4, w: 5 };
        assert_eq!((s.len(), s.is_empty()), (60, false));
        assert!(ImageShape { c: 3, h: 0, w: 5 }.is_empty());
        let pre = Preprocessing::centered(2);
        assert_eq!((pre.crop_padding, pre.hflip), (0, false));
        let split = Split {
            images: vec![0, 255],
            labels: vec![0],
        };
        let mut out = [9f32; 2];
        fill_batch::<ChaCha8Rng>(
            &split,
            ImageShape { c: 2, h: 1, w: 1 },
            &[0],
            &pre,
            None,
            &mut out,
        );
        assert_eq!(out, [-1.0, 1.0]);
    }

    #[test]
    fn normalises_without_augmentation() {
        let s = split_1x2x3();
        let pre = Preprocessing::centered(1);
        let mut out = vec![0f32; 6];
        fill_batch::<ChaCha8Rng>(
            &s,
            ImageShape { c: 1, h: 2, w: 3 },
            &[0],
            &pre,
            None,
            &mut out,
        );
        // f32 rounding: (51/255 - 0.5)/0.5 is -0.19999999, not -0.2.
        let want = [-1.0, -0.6, -0.2, 0.2, 0.6, 1.0];
        assert!(
            out.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{out:?}"
        );
    }

    #[test]
    fn flip_only_reverses_rows() {
        let s = split_1x2x3();
        let pre = Preprocessing {
            mean: vec![0.0],
            std: vec![1.0 / 255.0],
            crop_padding: 0,
            hflip: true,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut seen = [false, false];
        for _ in 0..32 {
            let mut out = vec![0f32; 6];
            fill_batch(
                &s,
                ImageShape { c: 1, h: 2, w: 3 },
                &[0],
                &pre,
                Some(&mut rng),
                &mut out,
            );
            let out: Vec<u32> = out.iter().map(|v| v.round() as u32).collect();
            if out == vec![0, 51, 102, 153, 204, 255] {
                seen[0] = true;
            } else {
                assert_eq!(out, vec![102, 51, 0, 255, 204, 153]);
                seen[1] = true;
            }
        }
        assert_eq!(seen, [true, true]);
    }

    #[test]
    fn crop_shifts_in_zero_padding() {
        // A 1×1×4 image; padding 1 means shifts of -1, 0, +1 along each axis.
        let s = Split {
            images: vec![10, 20, 30, 40],
            labels: vec![0],
        };
        let pre = Preprocessing {
            mean: vec![0.0],
            std: vec![1.0 / 255.0],
            crop_padding: 1,
            hflip: false,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..64 {
            let mut out = vec![0f32; 4];
            fill_batch(
                &s,
                ImageShape { c: 1, h: 1, w: 4 },
                &[0],
                &pre,
                Some(&mut rng),
                &mut out,
            );
            let out: Vec<u32> = out.iter().map(|v| v.round() as u32).collect();
            let allowed = [
                vec![10, 20, 30, 40],
                vec![0, 10, 20, 30],
                vec![20, 30, 40, 0],
                vec![0, 0, 0, 0],
            ];
            assert!(allowed.contains(&out), "unexpected crop {out:?}");
        }
    }

    /// Pad with black, crop at (p + dy, p + dx), then flip: the torchvision order, written
    /// the simple way.
    fn pad_then_slice(
        img: &[u8],
        (c, h, w): (usize, usize, usize),
        p: usize,
        (dy, dx, flip): (isize, isize, bool),
        pre: &Preprocessing,
    ) -> Vec<f32> {
        let (ph, pw) = (h + 2 * p, w + 2 * p);
        let mut padded = vec![0u8; c * ph * pw];
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    padded[ch * ph * pw + (y + p) * pw + x + p] = img[ch * h * w + y * w + x];
                }
            }
        }
        let mut out = vec![0f32; c * h * w];
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let sx = if flip { w - 1 - x } else { x };
                    let py = (y as isize + p as isize + dy) as usize;
                    let px = (sx as isize + p as isize + dx) as usize;
                    let v = padded[ch * ph * pw + py * pw + px];
                    out[ch * h * w + y * w + x] = (v as f32 / 255.0 - pre.mean[ch]) / pre.std[ch];
                }
            }
        }
        out
    }

    /// The documented draw order, replayed on a second generator with the same seed: per
    /// image the row offset, the column offset (only when padding) and then the flip (only
    /// when flipping), so the batch is exactly that replay's pad-then-slice.
    #[test]
    fn each_image_draws_its_offsets_then_its_flip_from_the_stream_in_order() {
        let (c, h, w) = (2usize, 3usize, 4usize);
        let img: Vec<u8> = (0..c * h * w).map(|i| (10 * i + 5) as u8).collect();
        let n = 40;
        let s = Split {
            images: img.repeat(n),
            labels: vec![0; n],
        };
        let idx: Vec<usize> = (0..n).collect();
        for (p, hflip) in [(0usize, true), (1, false), (1, true), (3, true)] {
            let pre = Preprocessing {
                mean: vec![0.3, 0.6],
                std: vec![0.5, 0.25],
                crop_padding: p,
                hflip,
            };
            let mut out = vec![0f32; n * c * h * w];
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            fill_batch(
                &s,
                ImageShape { c, h, w },
                &idx,
                &pre,
                Some(&mut rng),
                &mut out,
            );
            let mut replay = ChaCha8Rng::seed_from_u64(11);
            let mut flips = 0;
            for i in 0..n {
                let pi = p as i64;
                let (mut dy, mut dx) = (0, 0);
                if p > 0 {
                    dy = (replay.random_range(0..=2 * pi) - pi) as isize;
                    dx = (replay.random_range(0..=2 * pi) - pi) as isize;
                }
                let flip = hflip && replay.random_bool(0.5);
                flips += usize::from(flip);
                let want = pad_then_slice(&img, (c, h, w), p, (dy, dx, flip), &pre);
                assert_eq!(
                    &out[i * c * h * w..(i + 1) * c * h * w],
                    &want[..],
                    "padding {p}, flip {hflip}, image {i}"
                );
            }
            // The generator is left where the replay is: nothing else was drawn.
            assert_eq!(rng.random::<u64>(), replay.random::<u64>());
            assert!(!hflip || (flips > 5 && flips < 35), "{flips} flips of {n}");
        }
    }

    #[test]
    fn crops_and_flips_equal_pad_then_slice_and_cover_every_offset() {
        let (c, h, w, p) = (3usize, 5usize, 6usize, 2usize);
        // Distinct non-zero pixels, so the offset and flip of an output can be recovered.
        let img: Vec<u8> = (0..c * h * w).map(|i| (i + 1) as u8).collect();
        let n = 600;
        let s = Split {
            images: img.repeat(n),
            labels: vec![0; n],
        };
        let pre = Preprocessing {
            mean: vec![0.4, 0.5, 0.6],
            std: vec![0.2, 0.25, 0.3],
            crop_padding: p,
            hflip: true,
        };
        let mut out = vec![0f32; n * c * h * w];
        let idx: Vec<usize> = (0..n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        fill_batch(
            &s,
            ImageShape { c, h, w },
            &idx,
            &pre,
            Some(&mut rng),
            &mut out,
        );
        let mut seen = std::collections::BTreeSet::new();
        let mut black = 0;
        for i in 0..n {
            let got = &out[i * c * h * w..(i + 1) * c * h * w];
            let mut matches = vec![];
            for dy in -(p as isize)..=p as isize {
                for dx in -(p as isize)..=p as isize {
                    for flip in [false, true] {
                        if pad_then_slice(&img, (c, h, w), p, (dy, dx, flip), &pre) == got {
                            matches.push((dy, dx, flip));
                        }
                    }
                }
            }
            // Exactly one shift and flip explains all three channels at once.
            assert_eq!(matches.len(), 1, "image {i}: {matches:?}");
            seen.insert(matches[0]);
            // Padding is the normalised value of black, -mean/std, not 0.
            for ch in 0..c {
                let pad = -pre.mean[ch] / pre.std[ch];
                black += got[ch * h * w..(ch + 1) * h * w]
                    .iter()
                    .filter(|&&v| v == pad)
                    .count();
            }
        }
        assert_eq!(
            seen.len(),
            25 * 2,
            "every offset in -p..=p on both axes, flipped or not"
        );
        assert!(black > 0);
    }
}
