//! Seeded class-balanced subsets and per-class caps, applied after a dataset is loaded.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::Split;

/// Indices of at most `per_class` images of each class, chosen by a seeded shuffle, ascending.
fn cap_indices(split: &Split, per_class: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let classes = split
        .labels
        .iter()
        .copied()
        .max()
        .map_or(0, |m| m as usize + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in split.labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let mut keep = Vec::new();
    for idx in by_class.iter_mut() {
        if idx.len() > per_class {
            idx.shuffle(rng);
            idx.truncate(per_class);
        }
        keep.extend_from_slice(idx);
    }
    keep.sort_unstable();
    keep
}

/// Keeps at most `per_class` images of each class, chosen by a seeded shuffle; order is kept.
pub fn cap_per_class(
    split: &Split,
    image_len: usize,
    per_class: usize,
    rng: &mut ChaCha8Rng,
) -> Split {
    select(split, image_len, &cap_indices(split, per_class, rng))
}

/// Splits off `per_class` images of each class (seeded shuffle) as a held-out split:
/// (the rest, the held-out images), both in their original order.
pub fn hold_out_per_class(
    split: &Split,
    image_len: usize,
    per_class: usize,
    rng: &mut ChaCha8Rng,
) -> (Split, Split) {
    let held = cap_indices(split, per_class, rng);
    let mut taken = vec![false; split.len()];
    for &i in &held {
        taken[i] = true;
    }
    let rest: Vec<usize> = (0..split.len()).filter(|&i| !taken[i]).collect();
    (
        select(split, image_len, &rest),
        select(split, image_len, &held),
    )
}

/// Copies the images at `indices` into a new split.
pub fn select(split: &Split, image_len: usize, indices: &[usize]) -> Split {
    let mut images = Vec::with_capacity(indices.len() * image_len);
    let mut labels = Vec::with_capacity(indices.len());
    for &i in indices {
        images.extend_from_slice(&split.images[i * image_len..(i + 1) * image_len]);
        labels.push(split.labels[i]);
    }
    Split { images, labels }
}

/// The images whose label is in `classes`, in their original order, relabelled by position
/// in `classes` (the first listed class becomes 0), so a model sees `classes.len()` classes.
pub fn keep_classes(split: &Split, image_len: usize, classes: &[u32]) -> Split {
    let indices: Vec<usize> = (0..split.len())
        .filter(|&i| classes.contains(&split.labels[i]))
        .collect();
    let mut out = select(split, image_len, &indices);
    for l in &mut out.labels {
        *l = classes.iter().position(|c| c == l).unwrap_or_default() as u32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn keeping_classes_filters_in_order_and_relabels_by_position() {
        let split = Split {
            images: (0u8..16).collect(),
            labels: vec![3, 0, 1, 3, 2, 1, 0, 3],
        };
        let out = keep_classes(&split, 2, &[3, 1]);
        assert_eq!(out.labels, vec![0, 1, 0, 1, 0]);
        assert_eq!(out.images, vec![0, 1, 4, 5, 6, 7, 10, 11, 14, 15]);
    }

    #[test]
    fn caps_each_class_and_keeps_order() {
        let split = Split {
            images: (0u8..10).collect(),
            labels: vec![0, 0, 0, 1, 1, 0, 2, 1, 1, 0],
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let out = cap_per_class(&split, 1, 2, &mut rng);
        let mut counts = [0; 3];
        for &l in &out.labels {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [2, 2, 1]);
        assert!(out.images.windows(2).all(|w| w[0] < w[1]));
        for (img, l) in out.images.iter().zip(&out.labels) {
            assert_eq!(split.labels[*img as usize], *l);
        }
    }

    #[test]
    fn a_class_at_its_cap_is_kept_whole_without_a_draw() {
        // Class 0 exactly at the cap (a) or under it (b): neither may consume the stream, so
        // class 1 keeps the same images (shifted by one index) and a subset stays the same
        // when a small class gains an image up to the cap.
        let a = Split {
            images: (0u8..10).collect(),
            labels: vec![0, 0, 1, 1, 1, 1, 1, 1, 1, 1],
        };
        let b = Split {
            images: (1u8..10).collect(),
            labels: vec![0, 1, 1, 1, 1, 1, 1, 1, 1],
        };
        for seed in 0..8 {
            let ka = cap_indices(&a, 2, &mut ChaCha8Rng::seed_from_u64(seed));
            let kb = cap_indices(&b, 2, &mut ChaCha8Rng::seed_from_u64(seed));
            assert_eq!(ka[..2], [0, 1]);
            let shifted: Vec<usize> = kb[1..].iter().map(|i| i + 1).collect();
            assert_eq!(ka[2..], shifted[..], "seed {seed}");
        }
    }

    #[test]
    fn held_out_images_leave_the_rest_and_nothing_is_lost() {
        let split = Split {
            images: (0u8..12).collect(),
            labels: vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2],
        };
        let (rest, held) = hold_out_per_class(&split, 1, 1, &mut ChaCha8Rng::seed_from_u64(3));
        let mut held_labels = held.labels.clone();
        held_labels.sort_unstable();
        assert_eq!(held_labels, [0, 1, 2]);
        assert_eq!(rest.len(), 9);
        let mut all: Vec<u8> = rest.images.iter().chain(&held.images).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0u8..12).collect::<Vec<_>>());
        assert!(rest.images.windows(2).all(|w| w[0] < w[1]));
    }
}
