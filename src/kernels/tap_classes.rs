//! The pixels of a stride-1 convolution grouped by which kernel taps land inside the image,
//! and those groups laid out as 64-lane panels across the batch.
//!
//! On a 4×4 map a 3×3 kernel with padding 1 reaches into the padding for 31% of its
//! (pixel, tap) pairs (16% on 8×8, 8% on 16×16). Pixels that share their set of live taps —
//! a padding class: the corners, the edges, the interior — can be computed together with the
//! dead taps left out. Panels take the pixels of one class from every image in turn, so that
//! even the corner classes (one pixel per image) fill whole panels on a batch of 64.

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

    /// Lays the classes out over a batch of `n` images (see [`ClassPanels`]).
    pub fn panels(&self, n: usize, lanes: usize, group: usize) -> ClassPanels {
        let mut members = Vec::with_capacity(n * self.pixels);
        let mut panels = Vec::new();
        let mut units = Vec::new();
        for (ci, class) in self.classes.iter().enumerate() {
            let first = panels.len();
            let start = members.len();
            for img in 0..n {
                members.extend(class.pixels.iter().map(|&px| img * self.pixels + px));
            }
            for s in (start..members.len()).step_by(lanes) {
                panels.push((ci, s, (s + lanes).min(members.len())));
            }
            for u in (first..panels.len()).step_by(group.max(1)) {
                units.push((u, (u + group.max(1)).min(panels.len())));
            }
        }
        ClassPanels {
            members,
            panels,
            units,
            lanes,
        }
    }
}

/// A half-open range of taps cut to `0..k`.
fn clamp((lo, hi): (usize, usize), k: usize) -> (usize, usize) {
    let hi = hi.min(k);
    (lo.min(hi), hi)
}

/// The batch's pixels (`image·pixels + pixel`) in panels of `lanes` lanes: each class's
/// pixels image after image, cut into panels, the last panel of a class possibly partial;
/// panels grouped into units of consecutive panels of one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassPanels {
    /// Every pixel of the batch once, class after class.
    pub members: Vec<usize>,
    /// Per panel: its class and its range of `members`.
    pub panels: Vec<(usize, usize, usize)>,
    /// Runs of panels `[first, end)`, each within one class.
    pub units: Vec<(usize, usize)>,
    /// Lanes per panel.
    pub lanes: usize,
}

impl ClassPanels {
    /// For each pixel of the batch, its slot `panel·lanes + lane`.
    pub fn slots(&self) -> Vec<usize> {
        let mut slot = vec![0; self.members.len()];
        for (p, &(_, s, e)) in self.panels.iter().enumerate() {
            for (lane, &q) in self.members[s..e].iter().enumerate() {
                slot[q] = p * self.lanes + lane;
            }
        }
        slot
    }
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

    #[test]
    fn panels_take_each_class_image_after_image() {
        let c = TapClasses::of_outputs((4, 4, 3), 1);
        let b = c.panels(3, 4, 2);
        // The corner class (pixel 0) of three images, then the top edge (pixels 1, 2).
        assert_eq!(&b.members[..9], &[0, 16, 32, 1, 2, 17, 18, 33, 34]);
        assert_eq!(&b.panels[..3], &[(0, 0, 3), (1, 3, 7), (1, 7, 9)]);
        // The interior class has 12 pixels: three full panels, units of two.
        let interior: Vec<_> = b.panels.iter().filter(|p| p.0 == 4).collect();
        assert_eq!(interior.len(), 3);
        let first = b.panels.iter().position(|p| p.0 == 4).unwrap();
        assert!(b.units.contains(&(first, first + 2)) && b.units.contains(&(first + 2, first + 3)));
        let slots = b.slots();
        assert_eq!((slots[0], slots[16], slots[1], slots[18]), (0, 1, 4, 7));
        let mut sorted = b.members.clone();
        sorted.sort();
        assert_eq!(sorted, (0..48).collect::<Vec<_>>());
    }
}
