//! The pixels of a stride-1 convolution grouped by which kernel taps land inside the image,
//! and those groups laid out as 64-lane panels across the batch.
//!
//! On a 4×4 map a 3×3 kernel with padding 1 reaches into the padding for 31% of its
//! (pixel, tap) pairs (16% on 8×8, 8% on 16×16). Pixels that share their set of live taps —
//! a padding class: the corners, the edges, the interior — can be computed together with the
//! dead taps left out. A vector takes one pixel of a class from 16 consecutive images, so that
//! even the corner classes (one pixel per image) fill whole panels on a batch of 64, and a
//! batch-minor copy of the images holds each vector's values side by side.

/// One padding class: the kernel taps that land inside the image for all of its pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapClass {
    /// Live taps `ky·k + kx`, ascending.
    pub taps: Vec<usize>,
    /// The class's pixels in one image (`y·width + x`), ascending.
    pub pixels: Vec<usize>,
}

/// A map's pixels split into padding classes, each class's pixels ascending, classes in the
/// order of their first pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapClasses {
    /// The classes.
    pub classes: Vec<TapClass>,
    /// Pixels per image (every pixel is in exactly one class).
    pub pixels: usize,
    /// The map's width.
    pub width: usize,
}

impl TapClasses {
    /// Classes of a `height × width` map whose pixel (y, x) sees tap (ky, kx) of a `k × k`
    /// kernel when `ky ∈ rows(y)` and `kx ∈ cols(x)` (half-open ranges).
    pub fn new(
        (height, width, k): (usize, usize, usize),
        rows: impl Fn(usize) -> (usize, usize),
        cols: impl Fn(usize) -> (usize, usize),
    ) -> Self {
        let mut keys: Vec<((usize, usize), (usize, usize))> = Vec::new();
        let mut classes: Vec<TapClass> = Vec::new();
        for y in 0..height {
            for x in 0..width {
                let key = (clamp(rows(y), k), clamp(cols(x), k));
                let at = match keys.iter().position(|&seen| seen == key) {
                    Some(at) => at,
                    None => {
                        let ((y0, y1), (x0, x1)) = key;
                        let taps = (y0..y1)
                            .flat_map(|ky| (x0..x1).map(move |kx| ky * k + kx))
                            .collect();
                        keys.push(key);
                        classes.push(TapClass {
                            taps,
                            pixels: Vec::new(),
                        });
                        keys.len() - 1
                    }
                };
                classes[at].pixels.push(y * width + x);
            }
        }
        TapClasses {
            classes,
            pixels: height * width,
            width,
        }
    }

    /// Output pixels of a stride-1 convolution with `padding` over an `h × w` input: (oy, ox)
    /// reads input (oy + ky − padding, ox + kx − padding).
    pub fn of_outputs((h, w, k): (usize, usize, usize), padding: usize) -> Self {
        let (oh, ow) = (h + 2 * padding + 1 - k, w + 2 * padding + 1 - k);
        // 0 ≤ o + t − p < len  ⇔  p − o ≤ t < len + p − o
        let live = |len: usize| {
            move |o: usize| (padding.saturating_sub(o), (len + padding).saturating_sub(o))
        };
        TapClasses::new((oh, ow, k), live(h), live(w))
    }

    /// Input pixels of that convolution, as its input gradient sees them: (iy, ix) receives
    /// from output (iy − ky + padding, ix − kx + padding) of an `oh × ow` output.
    pub fn of_inputs((h, w, k): (usize, usize, usize), padding: usize) -> Self {
        let (oh, ow) = (h + 2 * padding + 1 - k, w + 2 * padding + 1 - k);
        // 0 ≤ i − t + p < len  ⇔  i + p + 1 − len ≤ t < i + p + 1
        let live =
            |len: usize| move |i: usize| ((i + padding + 1).saturating_sub(len), i + padding + 1);
        TapClasses::new((h, w, k), live(oh), live(ow))
    }

    /// Lays the classes out over a batch of `n` images (see [`ClassVectors`]), `group`
    /// panels to a unit.
    pub fn vectors(&self, n: usize, group: usize) -> ClassVectors {
        let (mut vectors, mut panels, mut units) = (Vec::new(), Vec::new(), Vec::new());
        for (ci, class) in self.classes.iter().enumerate() {
            let (first_vector, first_panel) = (vectors.len(), panels.len());
            for &px in &class.pixels {
                for img in (0..n).step_by(VECTOR_LANES) {
                    vectors.push((px, img, VECTOR_LANES.min(n - img)));
                }
            }
            for s in (first_vector..vectors.len()).step_by(PANEL_VECTORS) {
                panels.push((ci, s, (s + PANEL_VECTORS).min(vectors.len())));
            }
            for u in (first_panel..panels.len()).step_by(group.max(1)) {
                units.push((u, (u + group.max(1)).min(panels.len())));
            }
        }
        ClassVectors {
            vectors,
            panels,
            units,
            images: n,
        }
    }
}

/// Lanes per vector: one pixel of up to 16 consecutive images.
pub const VECTOR_LANES: usize = 16;
/// Vectors per panel.
pub const PANEL_VECTORS: usize = 4;

/// The batch's pixels as vectors of [`VECTOR_LANES`] lanes, each one pixel of consecutive
/// images (the layout a batch-minor copy of the images holds contiguously): class after
/// class, each class pixel's images in blocks of 16, [`PANEL_VECTORS`] vectors of one class
/// to a panel, the last panel of a class possibly short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassVectors {
    /// Per vector: its pixel, its first image and its number of images.
    pub vectors: Vec<(usize, usize, usize)>,
    /// Per panel: its class and its range of `vectors`.
    pub panels: Vec<(usize, usize, usize)>,
    /// Runs of panels `[first, end)`, each within one class.
    pub units: Vec<(usize, usize)>,
    /// Images in the batch.
    pub images: usize,
}

impl ClassVectors {
    /// Where each (pixel, block of 16 images) lives: `at[pixel·blocks + block]` is
    /// `panel·PANEL_VECTORS + vector in its panel`.
    pub fn slots(&self, pixels: usize) -> Vec<usize> {
        let blocks = self.images.div_ceil(VECTOR_LANES);
        let mut at = vec![usize::MAX; pixels * blocks];
        for (p, &(_, s, e)) in self.panels.iter().enumerate() {
            for (v, &(px, img, _)) in self.vectors[s..e].iter().enumerate() {
                at[px * blocks + img / VECTOR_LANES] = p * PANEL_VECTORS + v;
            }
        }
        at
    }

    /// Per panel of `range`, each vector's base `place(pixel)·images + first image` (0 where
    /// the panel has no such vector) and its live lanes.
    pub fn bases(
        &self,
        range: std::ops::Range<usize>,
        place: impl Fn(usize) -> isize,
    ) -> (Vec<[isize; 4]>, Vec<[u16; 4]>) {
        self.panels[range]
            .iter()
            .map(|&(_, s, e)| {
                let vec = |v: usize| self.vectors.get(s + v).filter(|_| s + v < e);
                let base = std::array::from_fn(|v| {
                    vec(v).map_or(0, |&(px, img, _)| {
                        place(px) * self.images as isize + img as isize
                    })
                });
                let mask = std::array::from_fn(|v| {
                    vec(v).map_or(0, |&(_, _, cnt)| ((1u32 << cnt) - 1) as u16)
                });
                (base, mask)
            })
            .unzip()
    }
}

/// A half-open range of taps cut to `0..k`.
fn clamp((lo, hi): (usize, usize), k: usize) -> (usize, usize) {
    let hi = hi.min(k);
    (lo.min(hi), hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The live taps of one pixel, tap by tap from the definition.
    fn live_taps(inside: impl Fn(usize, usize) -> bool, k: usize) -> Vec<usize> {
        (0..k * k).filter(|&t| inside(t / k, t % k)).collect()
    }

    #[test]
    fn a_4x4_map_under_a_3x3_kernel_has_nine_classes() {
        let c = TapClasses::of_outputs((4, 4, 3), 1);
        let summary: Vec<(Vec<usize>, Vec<usize>)> = c
            .classes
            .iter()
            .map(|c| (c.taps.clone(), c.pixels.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (vec![4, 5, 7, 8], vec![0]),
                (vec![3, 4, 5, 6, 7, 8], vec![1, 2]),
                (vec![3, 4, 6, 7], vec![3]),
                (vec![1, 2, 4, 5, 7, 8], vec![4, 8]),
                ((0..9).collect(), vec![5, 6, 9, 10]),
                (vec![0, 1, 3, 4, 6, 7], vec![7, 11]),
                (vec![1, 2, 4, 5], vec![12]),
                (vec![0, 1, 2, 3, 4, 5], vec![13, 14]),
                (vec![0, 1, 3, 4], vec![15]),
            ]
        );
    }

    /// Every pixel lands in one class whose taps are exactly the taps that read inside the
    /// image (outputs) or that come from inside the output (inputs), over kernels of 1 to 5,
    /// paddings 0 to 2 and maps smaller than the kernel.
    #[test]
    fn each_pixel_has_its_live_taps() {
        for (h, w, k, p) in [
            (4, 4, 3, 1),
            (8, 5, 3, 1),
            (3, 3, 5, 2),
            (6, 6, 1, 0),
            (5, 7, 3, 0),
            (2, 2, 3, 2),
        ] {
            let (oh, ow) = (h + 2 * p + 1 - k, w + 2 * p + 1 - k);
            let outs = TapClasses::of_outputs((h, w, k), p);
            let ins = TapClasses::of_inputs((h, w, k), p);
            for (classes, (rows, cols)) in [(&outs, (oh, ow)), (&ins, (h, w))] {
                let mut seen = vec![0; rows * cols];
                for class in &classes.classes {
                    for &px in &class.pixels {
                        seen[px] += 1;
                        let (y, x) = ((px / cols) as isize, (px % cols) as isize);
                        let p = p as isize;
                        let inside = |ky: usize, kx: usize| {
                            let (ky, kx) = (ky as isize, kx as isize);
                            if std::ptr::eq(classes, &outs) {
                                (0..h as isize).contains(&(y + ky - p))
                                    && (0..w as isize).contains(&(x + kx - p))
                            } else {
                                (0..oh as isize).contains(&(y - ky + p))
                                    && (0..ow as isize).contains(&(x - kx + p))
                            }
                        };
                        assert_eq!(
                            class.taps,
                            live_taps(inside, k),
                            "{h}x{w} k{k} p{p} px {px}"
                        );
                    }
                }
                assert!(seen.iter().all(|&s| s == 1), "{h}x{w} k{k} p{p}: {seen:?}");
            }
        }
    }

    /// Vectors take one pixel of up to 16 images, pixel after pixel within a class; panels
    /// hold four vectors of one class; slots and bases find them again.
    #[test]
    fn vectors_take_each_class_pixel_over_blocks_of_images() {
        let c = TapClasses::of_outputs((4, 4, 3), 1);
        let b = c.vectors(20, 2);
        // The corner (pixel 0): images 0..16 and 16..20; then the top edge (pixels 1, 2).
        assert_eq!(
            &b.vectors[..6],
            &[
                (0, 0, 16),
                (0, 16, 4),
                (1, 0, 16),
                (1, 16, 4),
                (2, 0, 16),
                (2, 16, 4)
            ]
        );
        assert_eq!(&b.panels[..2], &[(0, 0, 2), (1, 2, 6)]);
        // The interior (pixels 5, 6, 9, 10): eight vectors, two panels, one unit.
        let first = b.panels.iter().position(|p| p.0 == 4).unwrap();
        assert_eq!(b.panels[first + 1].0, 4);
        assert!(b.units.contains(&(first, first + 2)));
        assert_eq!(b.vectors.len(), 16 * 2);
        let slots = b.slots(16);
        assert_eq!((slots[0], slots[1], slots[2], slots[5]), (0, 1, 4, 7));
        let mut seen = slots.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 32, "every (pixel, block) in its own slot");
        let (bases, masks) = b.bases(0..2, |px| px as isize * 10);
        assert_eq!(bases, vec![[0, 16, 0, 0], [200, 216, 400, 416]]);
        assert_eq!(masks, vec![[0xffff, 0xf, 0, 0], [0xffff, 0xf, 0xffff, 0xf]]);
    }
}
