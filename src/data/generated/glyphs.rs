//! Table 8's synthetic task (App. A): grey 2-stroke glyphs rendered from latent factors, as the
//! reference's pre-refactor `supervised/synth_data_exp.py`. A short top stroke is a "1" (label
//! 0), a long one a "7" (label 1); the glyph is rotated by an angle whose range differs between
//! training and test, so the test set asks for generalisation along a factor.
//!
//! Rendering follows the reference: a 256 × 256 white canvas, two red strokes of the drawn
//! width, a counter-clockwise rotation about the centre with black fill outside the canvas,
//! reduction to the output size, grey conversion (red 76, white 255, black 0). The reduction
//! averages 4 × 4 stratified samples per output pixel (PIL's `thumbnail` filters bicubically;
//! this is a box filter, so edges differ by a few grey levels).

use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::{
    DataShape, DatasetProvenance, DatasetSource, DatasetStatus, ImageDataset, LoadOptions,
    Preprocessing, Presence, Split,
};
use crate::error::{Error, Result};

/// Which of App. A's tasks the angle ranges follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Angle tied to the label: train (−70°,−50°) / (50°,80°), test (−30°,−10°) / (10°,30°).
    A,
    /// As A for training; test (−30°,−20°) for "1" and (−10°,30°) for "7".
    B,
    /// Angle independent of the label: train (−70°,−50°) or (50°,80°), test (−30°,30°).
    C,
}

/// Parameters of the glyph set; all of them enter its fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlyphParams {
    /// Task A, B or C.
    pub task: Task,
    /// Output height and width in pixels (the reference: 64).
    #[serde(default = "default_size")]
    pub size: usize,
    /// Training images.
    pub train_size: usize,
    /// Test images.
    pub test_size: usize,
    /// Seed of the generator (independent of the training seed, so the data stay fixed).
    #[serde(default)]
    pub seed: u64,
}

fn default_size() -> usize {
    64
}

/// Number of latent factors per glyph.
pub const FACTORS: usize = 8;

/// The latent factors of one glyph, in the reference's attribute order (without the label):
/// x position, y position, bottom-stroke x offset, top-stroke y change, top-stroke length,
/// vertical length, stroke width, rotation angle (degrees).
pub type Factors = [f64; FACTORS];

/// Index of the angle in [`Factors`].
pub const ANGLE: usize = 7;
/// Index of the top-stroke length in [`Factors`].
pub const XLEN: usize = 4;

const CANVAS: f64 = 256.0;
const STROKE: u8 = 76;
const BACKGROUND: u8 = 255;

/// Draws one glyph's factors and label for `task` (training or test distribution).
pub fn sample(task: Task, train: bool, rng: &mut ChaCha8Rng) -> (Factors, u32) {
    let xpos = rng.random_range(30.0..150.0);
    let ypos = rng.random_range(20.0..50.0);
    let xbot = rng.random_range(-30.0..5.0);
    let ychange = rng.random_range(-10.0..10.0);
    let label = u32::from(rng.random_bool(0.5));
    let xlen = if label == 0 {
        rng.random_range(0.0..20.0)
    } else {
        rng.random_range(40.0..100.0)
    };
    let range = |r: &mut ChaCha8Rng, lo: f64, hi: f64| r.random_range(lo..hi);
    let angle = match (task, train) {
        (Task::C, true) => {
            if rng.random_bool(0.5) {
                range(rng, -70.0, -50.0)
            } else {
                range(rng, 50.0, 80.0)
            }
        }
        (Task::C, false) => range(rng, -30.0, 30.0),
        (_, true) if label == 0 => range(rng, -70.0, -50.0),
        (_, true) => range(rng, 50.0, 80.0),
        (Task::A, false) if label == 0 => range(rng, -30.0, -10.0),
        (Task::A, false) => range(rng, 10.0, 30.0),
        (Task::B, false) if label == 0 => range(rng, -30.0, -20.0),
        (Task::B, false) => range(rng, -10.0, 30.0),
    };
    let width = rng.random_range(15..=35) as f64;
    (
        [xpos, ypos, xbot, ychange, xlen, 200.0, width, angle],
        label,
    )
}

/// The factors of λ·a + (1−λ)·b, truncated toward zero as the reference's
/// `int(lamb*a[0] + (1-lamb)*a[1])`.
pub fn mix(a: &Factors, b: &Factors, lambda: f64) -> Factors {
    let mut out = [0.0; FACTORS];
    for i in 0..FACTORS {
        out[i] = (lambda * a[i] + (1.0 - lambda) * b[i]).trunc();
    }
    out
}

/// Whether canvas point `p` lies in the stroke from `a` to `b` of width `w` (PIL draws a wide
/// line as the rectangle around the segment, without caps).
fn in_stroke(p: (f64, f64), a: (f64, f64), b: (f64, f64), w: f64) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt();
    if len == 0.0 {
        return false;
    }
    let (ux, uy) = (dx / len, dy / len);
    let (px, py) = (p.0 - a.0, p.1 - a.1);
    let t = px * ux + py * uy;
    let n = -px * uy + py * ux;
    (0.0..=len).contains(&t) && n.abs() <= w / 2.0
}

/// Renders `f` as `size × size` grey pixels into `out`.
pub fn render(f: &Factors, size: usize, out: &mut [u8]) {
    let [xpos, ypos, xbot, ychange, xlen, ylen, width, angle] = *f;
    let top = ((xpos, ypos), (xpos + xlen, ypos + ychange));
    let bottom = (
        (xpos + xlen, ypos + ychange),
        (xpos + xlen + xbot, ypos + ylen),
    );
    let (s, c) = angle.to_radians().sin_cos();
    let centre = CANVAS / 2.0;
    let scale = CANVAS / size as f64;
    const K: usize = 4;
    for oy in 0..size {
        for ox in 0..size {
            let mut sum = 0u32;
            for sy in 0..K {
                for sx in 0..K {
                    // Canvas point of this sample in the rotated image.
                    let x = (ox as f64 + (sx as f64 + 0.5) / K as f64) * scale - centre;
                    let y = (oy as f64 + (sy as f64 + 0.5) / K as f64) * scale - centre;
                    // Counter-clockwise on screen (y down): the source point is the inverse.
                    let (u, v) = (c * x - s * y + centre, s * x + c * y + centre);
                    sum += if !(0.0..CANVAS).contains(&u) || !(0.0..CANVAS).contains(&v) {
                        0
                    } else if in_stroke((u, v), top.0, top.1, width)
                        || in_stroke((u, v), bottom.0, bottom.1, width)
                    {
                        STROKE as u32
                    } else {
                        BACKGROUND as u32
                    };
                }
            }
            let n = (K * K) as u32;
            out[oy * size + ox] = ((sum + n / 2) / n) as u8;
        }
    }
}

/// Latent factors of a generated training split and the renderer that draws them, for
/// regularizers that mix in factor space.
#[derive(Clone)]
pub struct Latent {
    /// Factors of training image i at `train[i]`.
    pub train: Arc<Vec<Factors>>,
    /// Output size of the renderer.
    pub size: usize,
}

impl std::fmt::Debug for Latent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Latent({} training glyphs, {}px)",
            self.train.len(),
            self.size
        )
    }
}

impl Latent {
    /// Renders factors `f` at this set's size into `out` (`size²` bytes).
    pub fn render(&self, f: &Factors, out: &mut [u8]) {
        render(f, self.size, out);
    }
}

impl crate::data::LatentFactors for Latent {
    fn render_mix(&self, a: usize, b: usize, lambda: f64, out: &mut [u8]) {
        self.render(&mix(&self.train[a], &self.train[b], lambda), out);
    }
}

fn split(
    task: Task,
    train: bool,
    n: usize,
    size: usize,
    rng: &mut ChaCha8Rng,
) -> (Split, Vec<Factors>) {
    let drawn: Vec<(Factors, u32)> = (0..n).map(|_| sample(task, train, rng)).collect();
    let mut images = vec![0u8; n * size * size];
    {
        use rayon::prelude::*;
        images
            .par_chunks_mut(size * size)
            .zip(drawn.par_iter())
            .for_each(|(img, (f, _))| render(f, size, img));
    }
    let labels = drawn.iter().map(|d| d.1).collect();
    (
        Split { images, labels },
        drawn.into_iter().map(|d| d.0).collect(),
    )
}

impl GlyphParams {
    /// Checks size and counts, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        let p = self;
        if !(8..=256).contains(&p.size) || 256 % p.size != 0 {
            return Err(Error::param(
                "size",
                format!(
                    "dataset `glyphs`: `size` must divide the 256-pixel canvas and be >= 8 (8, 16, 32, 64, 128, 256), got {}",
                    p.size
                ),
            ));
        }
        if p.train_size < 2 || p.test_size < 1 {
            return Err(Error::param(
                if p.train_size < 2 {
                    "train_size"
                } else {
                    "test_size"
                },
                format!(
                    "dataset `glyphs`: need train_size >= 2 and test_size >= 1, got {} and {}",
                    p.train_size, p.test_size
                ),
            ));
        }
        Ok(())
    }
}

/// Generates the train and test splits of `p`.
pub fn generate(p: &GlyphParams) -> Result<ImageDataset> {
    p.validate()?;
    let (train, factors) = split(
        p.task,
        true,
        p.train_size,
        p.size,
        &mut crate::rng::stream(p.seed, "glyphs/train", 0),
    );
    let (test, _) = split(
        p.task,
        false,
        p.test_size,
        p.size,
        &mut crate::rng::stream(p.seed, "glyphs/test", 0),
    );
    let canonical = serde_json::to_string(p).expect("params serialize");
    let fingerprint =
        crate::data::files::hash::sha256_hex(format!("glyphs-v1:{canonical}").as_bytes());
    Ok(ImageDataset {
        channels: 1,
        height: p.size,
        width: p.size,
        num_classes: 2,
        train,
        test,
        provenance: DatasetProvenance {
            name: "glyphs".into(),
            fingerprint,
            files: vec![],
            notes: vec![format!(
                "generated by glyphs-v1 with {canonical}: factors x U(30,150), y U(20,50), bottom offset U(−30,5), top y change U(−10,10), top length U(0,20) for \"1\" / U(40,100) for \"7\", length 200, width 15..=35, angle per task"
            )],
        },
        latent: Some(Arc::new(Latent {
            train: Arc::new(factors),
            size: p.size,
        })),
    })
}

/// Registry entry for the glyph set.
pub struct GlyphSource;

impl DatasetSource for GlyphSource {
    fn name(&self) -> &'static str {
        "glyphs"
    }

    fn shape(&self, params: &serde_json::Value) -> Result<DataShape> {
        let p: GlyphParams = crate::params::parse_value("dataset `glyphs`", params)?;
        p.validate()?;
        Ok(DataShape::new(1, p.size, p.size, 2, p.train_size).with_test_size(p.test_size))
    }

    fn load(&self, params: &serde_json::Value, _opts: &LoadOptions) -> Result<ImageDataset> {
        let p: GlyphParams = crate::params::parse_value("dataset `glyphs`", params)?;
        generate(&p)
    }

    fn status(&self, _opts: &LoadOptions, _verify: bool) -> DatasetStatus {
        DatasetStatus {
            name: self.name().into(),
            path: None,
            presence: Presence::Embedded,
            fingerprint: None,
            notes: vec![],
        }
    }

    fn has_latent_factors(&self) -> bool {
        true
    }

    fn default_preprocessing(&self) -> Preprocessing {
        // The reference feeds pixels / 255 with no normalisation or augmentation.
        Preprocessing {
            mean: vec![0.0],
            std: vec![1.0],
            crop_padding: 0,
            hflip: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(task: Task) -> GlyphParams {
        GlyphParams {
            task,
            size: 32,
            train_size: 400,
            test_size: 400,
            seed: 3,
        }
    }

    #[test]
    fn generation_is_deterministic_and_seeded() {
        let a = generate(&params(Task::C)).unwrap();
        let b = generate(&params(Task::C)).unwrap();
        assert_eq!(a.train.images, b.train.images);
        assert_eq!(a.test.labels, b.test.labels);
        assert_eq!(a.provenance.fingerprint, b.provenance.fingerprint);
        let mut p = params(Task::C);
        p.seed = 4;
        let c = generate(&p).unwrap();
        assert_ne!(a.train.images, c.train.images);
        assert_ne!(a.provenance.fingerprint, c.provenance.fingerprint);
    }

    /// Factor ranges of App. A: angles per task and split, stroke length by label.
    #[test]
    fn factors_follow_the_task_ranges() {
        let mut r = crate::rng::stream(0, "t", 0);
        for _ in 0..2000 {
            let (f, y) = sample(Task::A, true, &mut r);
            let a = f[ANGLE];
            if y == 0 {
                assert!((-70.0..-50.0).contains(&a) && f[XLEN] < 20.0, "{f:?}");
            } else {
                assert!((50.0..80.0).contains(&a) && f[XLEN] >= 40.0, "{f:?}");
            }
            let (f, y) = sample(Task::A, false, &mut r);
            assert!(if y == 0 {
                (-30.0..-10.0).contains(&f[ANGLE])
            } else {
                (10.0..30.0).contains(&f[ANGLE])
            });
            let (f, y) = sample(Task::B, false, &mut r);
            assert!(if y == 0 {
                (-30.0..-20.0).contains(&f[ANGLE])
            } else {
                (-10.0..30.0).contains(&f[ANGLE])
            });
            let (f, _) = sample(Task::C, false, &mut r);
            assert!((-30.0..30.0).contains(&f[ANGLE]));
            assert!((15.0..=35.0).contains(&f[6]) && f[6].fract() == 0.0);
        }
        // Task C's training angle does not depend on the label: both signs for both labels.
        let mut seen = [[false; 2]; 2];
        for _ in 0..400 {
            let (f, y) = sample(Task::C, true, &mut r);
            seen[y as usize][usize::from(f[ANGLE] > 0.0)] = true;
        }
        assert_eq!(seen, [[true; 2]; 2]);
    }

    /// An unrotated glyph: background white, stroke pixels at the red grey level, nothing
    /// black; rotating by 45° blacks out the corners.
    #[test]
    fn rendering_draws_strokes_and_rotation_fills_black() {
        let f: Factors = [100.0, 30.0, 0.0, 0.0, 80.0, 200.0, 32.0, 0.0];
        let mut img = vec![0u8; 64 * 64];
        render(&f, 64, &mut img);
        // Top stroke: canvas (100..180, 14..46) → output (25..45, 3..11); pick its middle.
        assert_eq!(img[7 * 64 + 35], STROKE);
        // Vertical stroke from (180, 30) down to (180, 230), 32 wide → output x 41..49.
        assert_eq!(img[40 * 64 + 45], STROKE);
        assert_eq!(img[40 * 64 + 10], BACKGROUND);
        assert!(!img.contains(&0));
        let mut rotated = f;
        rotated[ANGLE] = 45.0;
        render(&rotated, 64, &mut img);
        assert_eq!(img[0], 0);
        assert_eq!(img[63 * 64 + 63], 0);
    }

    /// Factor mixup renders the mixed factors: the mix of a glyph with itself is the glyph
    /// (integer factors), and λ = 0.5 of two angles is their truncated midpoint.
    #[test]
    fn mixed_factors_are_truncated_interpolations() {
        let a: Factors = [100.0, 30.0, -10.0, 4.0, 80.0, 200.0, 20.0, 60.0];
        let b: Factors = [51.0, 21.0, 3.0, -7.0, 5.0, 200.0, 31.0, -65.0];
        assert_eq!(mix(&a, &a, 0.3), a);
        let m = mix(&a, &b, 0.5);
        assert_eq!(m[ANGLE], -2.0);
        assert_eq!(m[0], 75.0);
        assert_eq!(m[2], -3.0);
        let (mut x, mut y) = (vec![0u8; 32 * 32], vec![0u8; 32 * 32]);
        render(&m, 32, &mut x);
        render(
            &[75.0, 25.0, -3.0, -1.0, 42.0, 200.0, 25.0, -2.0],
            32,
            &mut y,
        );
        assert_eq!(x, y);
    }

    #[test]
    fn bad_sizes_are_errors() {
        let mut p = params(Task::A);
        p.size = 48;
        assert!(generate(&p).unwrap_err().to_string().contains("size"));
    }
}
