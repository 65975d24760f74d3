//! The real 8×8 handwritten digits embedded in the binary (1,797 images, 10 classes).
//!
//! Source: scikit-learn's `sklearn/datasets/data/digits.csv.gz` (scikit-learn 1.9.1,
//! BSD-3-Clause), which is the test set of the UCI "Optical Recognition of Handwritten Digits"
//! data set by E. Alpaydin and C. Kaynak (1998), licensed CC BY 4.0 by the UCI Machine Learning
//! Repository. Each row holds 64 pixel counts 0..16 (row-major 8×8) and then the label.
//!
//! Pixels are scaled to bytes as `round(v * 255 / 16)` (0 → 0, 8 → 128, 16 → 255) so that the
//! usual `x / 255` input scaling maps them onto [0, 1]. The train/test split is stratified
//! and seeded, and both its parameters enter the fingerprint.

use std::io::Read;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::files::hash::{combine, sha256_hex};
use crate::data::files::manifest;
use crate::data::subset::select;
use crate::data::{
    DataShape, DatasetProvenance, DatasetSource, DatasetStatus, ImageDataset, LoadOptions,
    Preprocessing, Presence, SourceFile, Split,
};
use crate::error::{Error, Result};

/// The embedded `digits.csv.gz`, byte-identical to scikit-learn's copy.
pub static DIGITS_CSV_GZ: &[u8] = include_bytes!("../../../assets/digits/digits.csv.gz");

/// sha256 of `DIGITS_CSV_GZ` as recorded in `shared/data/digits/README.md`.
pub const DIGITS_SHA256: &str = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22";

/// Number of images in the embedded set.
pub const DIGITS_COUNT: usize = 1797;

fn default_test_size() -> usize {
    450
}

/// Digits options from the suite's `params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DigitsParams {
    /// Seed of the ChaCha8 generator that draws the stratified split.
    #[serde(default)]
    pub split_seed: u64,
    /// Test images (spread over classes in proportion to their sizes); the rest train.
    #[serde(default = "default_test_size")]
    pub test_size: usize,
}

impl Default for DigitsParams {
    fn default() -> Self {
        DigitsParams {
            split_seed: 0,
            test_size: default_test_size(),
        }
    }
}

/// Decodes the embedded CSV into all 1,797 images (scaled to 0..255) and labels.
pub fn parse_all() -> Result<Split> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| {
            Error::Data(format!(
                "digits: embedded digits.csv.gz does not decompress: {e}"
            ))
        })?;
    let mut images = Vec::with_capacity(DIGITS_COUNT * 64);
    let mut labels = Vec::with_capacity(DIGITS_COUNT);
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let vals: Vec<&str> = line.split(',').collect();
        if vals.len() != 65 {
            return Err(Error::Data(format!(
                "digits: line {} has {} fields, expected 64 pixels + 1 label",
                i + 1,
                vals.len()
            )));
        }
        for (j, v) in vals.iter().enumerate() {
            let x: f64 = v.trim().parse().map_err(|_| {
                Error::Data(format!(
                    "digits: line {} field {} is `{v}`, not a number",
                    i + 1,
                    j + 1
                ))
            })?;
            let limit = if j == 64 { 9.0 } else { 16.0 };
            if x.fract() != 0.0 || !(0.0..=limit).contains(&x) {
                return Err(Error::Data(format!(
                    "digits: line {} field {} is {x}, expected an integer 0..{limit}",
                    i + 1,
                    j + 1
                )));
            }
            if j == 64 {
                labels.push(x as u32);
            } else {
                images.push((x * 255.0 / 16.0).round() as u8);
            }
        }
    }
    if labels.len() != DIGITS_COUNT {
        return Err(Error::Data(format!(
            "digits: embedded CSV holds {} rows, expected {DIGITS_COUNT}",
            labels.len()
        )));
    }
    Ok(Split { images, labels })
}

/// Test indices of a stratified split: each class gives its share of `test_size` (largest
/// remainder rounding), drawn by a per-class seeded shuffle. Returned sorted.
pub fn stratified_test_indices(labels: &[u32], test_size: usize, seed: u64) -> Vec<usize> {
    let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let n = labels.len();
    let mut quota: Vec<usize> = by_class.iter().map(|c| c.len() * test_size / n).collect();
    let mut left = test_size - quota.iter().sum::<usize>();
    // Largest fractional part first, ties to the lower class, so the split is deterministic.
    let mut order: Vec<usize> = (0..classes).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(by_class[c].len() * test_size % n), c));
    for &c in order.iter().cycle().take(classes * 2) {
        if left == 0 {
            break;
        }
        if quota[c] < by_class[c].len() {
            quota[c] += 1;
            left -= 1;
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut test = Vec::with_capacity(test_size);
    for (idx, q) in by_class.iter_mut().zip(&quota) {
        idx.shuffle(&mut rng);
        test.extend_from_slice(&idx[..*q]);
    }
    test.sort_unstable();
    test
}

/// Builds the digits dataset with the given split.
pub fn load(p: &DigitsParams) -> Result<ImageDataset> {
    if p.test_size < 10 || p.test_size > DIGITS_COUNT - 10 {
        return Err(Error::param(
            "test_size",
            format!(
                "dataset `digits` params: test_size {} must be between 10 and {}",
                p.test_size,
                DIGITS_COUNT - 10
            ),
        ));
    }
    let all = parse_all()?;
    let test_idx = stratified_test_indices(&all.labels, p.test_size, p.split_seed);
    let mut is_test = vec![false; all.len()];
    for &i in &test_idx {
        is_test[i] = true;
    }
    let train_idx: Vec<usize> = (0..all.len()).filter(|&i| !is_test[i]).collect();
    let train = select(&all, 64, &train_idx);
    let test = select(&all, 64, &test_idx);
    let sha = sha256_hex(DIGITS_CSV_GZ);
    let split_desc = format!(
        "stratified split test_size={} split_seed={} (ChaCha8)",
        p.test_size, p.split_seed
    );
    let fingerprint = combine(&[
        ("digits.csv.gz".to_string(), sha.clone()),
        ("split".to_string(), split_desc.clone()),
    ]);
    Ok(ImageDataset {
        latent: None,
        channels: 1,
        height: 8,
        width: 8,
        num_classes: 10,
        provenance: DatasetProvenance {
            name: "digits".into(),
            fingerprint,
            files: vec![SourceFile {
                name: "digits.csv.gz".into(),
                bytes: DIGITS_CSV_GZ.len() as u64,
                verified: sha == DIGITS_SHA256,
                sha256: sha,
            }],
            notes: vec![
                format!(
                    "{split_desc}: {} train / {} test",
                    train.len(),
                    test.len()
                ),
                "pixels 0..16 scaled to round(v*255/16)".into(),
                "UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak 1998, CC BY 4.0), via scikit-learn's digits.csv.gz".into(),
            ],
        },
        train,
        test,
    })
}

/// Registry entry for the embedded digits.
pub struct DigitsSource;

impl DatasetSource for DigitsSource {
    fn name(&self) -> &'static str {
        "digits"
    }

    fn shape(&self, params: &serde_json::Value) -> Result<DataShape> {
        let p: DigitsParams = manifest::parse_params("digits", params)?;
        Ok(
            DataShape::new(1, 8, 8, 10, 1797usize.saturating_sub(p.test_size))
                .with_test_size(p.test_size.min(1797)),
        )
    }

    fn load(&self, params: &serde_json::Value, _opts: &LoadOptions) -> Result<ImageDataset> {
        let p: DigitsParams = manifest::parse_params("digits", params)?;
        load(&p)
    }

    fn status(&self, _opts: &LoadOptions, _verify: bool) -> DatasetStatus {
        let (presence, fingerprint) = match load(&DigitsParams::default()) {
            Ok(d) if d.provenance.files[0].verified => {
                (Presence::Embedded, Some(d.provenance.fingerprint))
            }
            Ok(d) => (
                Presence::Corrupt(format!(
                    "embedded digits.csv.gz has sha256 {}, expected {DIGITS_SHA256}",
                    d.provenance.files[0].sha256
                )),
                None,
            ),
            Err(e) => (Presence::Corrupt(e.to_string()), None),
        };
        DatasetStatus {
            name: "digits".into(),
            path: None,
            presence,
            fingerprint,
            notes: vec![
                "fingerprint shown for the default split (split_seed 0, test_size 450)".into(),
            ],
        }
    }

    fn default_preprocessing(&self) -> Preprocessing {
        // No reference setting exists for digits; centre to [-1, 1] and do not augment.
        Preprocessing::centered(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_bytes_match_recorded_hash() {
        assert_eq!(sha256_hex(DIGITS_CSV_GZ), DIGITS_SHA256);
    }

    #[test]
    fn first_image_and_scaling() {
        let all = parse_all().unwrap();
        assert_eq!(all.len(), 1797);
        // Row 1 of the CSV begins 0,0,5,13,9,1 and is a 0.
        assert_eq!(&all.images[..6], &[0, 0, 80, 207, 143, 16]);
        assert_eq!(all.labels[0], 0);
        assert_eq!(*all.images.iter().max().unwrap(), 255);
    }

    #[test]
    fn split_is_stratified_seeded_and_sized() {
        let d = load(&DigitsParams::default()).unwrap();
        assert_eq!((d.train.len(), d.test.len()), (1347, 450));
        let mut counts = [0usize; 10];
        for &l in &d.test.labels {
            counts[l as usize] += 1;
        }
        // Class sizes 174..183 of 1797 give 43.6..45.8 test images each.
        assert!(counts.iter().all(|&c| (43..=46).contains(&c)), "{counts:?}");
        let again = load(&DigitsParams::default()).unwrap();
        assert_eq!(d.test, again.test);
        assert_eq!(d.provenance.fingerprint, again.provenance.fingerprint);
        let other = load(&DigitsParams {
            split_seed: 1,
            ..Default::default()
        })
        .unwrap();
        assert_ne!(d.test.images, other.test.images);
        assert_ne!(d.provenance.fingerprint, other.provenance.fingerprint);
    }
}
