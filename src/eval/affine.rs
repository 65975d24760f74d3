//! Nearest-neighbour affine warps of u8 CHW images, as `scipy.ndimage.affine_transform` with
//! `order=0, mode='constant', cval=0` computes them, with the matrices of the reference's
//! `affine_transforms.py` (torchsample): rotation, shear and zoom about the image centre.

/// Maps an output pixel (row, col) to input coordinates: `input = m · output + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Linear part, rows then columns.
    pub m: [[f64; 2]; 2],
    /// Translation.
    pub offset: [f64; 2],
}

impl Affine {
    /// `m` applied about the centre the reference uses, (h/2 + 0.5, w/2 + 0.5)
    /// (`transform_matrix_offset_center`): input = m·(output − c) + c.
    pub fn centered(m: [[f64; 2]; 2], h: usize, w: usize) -> Affine {
        let c = [h as f64 / 2.0 + 0.5, w as f64 / 2.0 + 0.5];
        // Evaluated in the reference's order, without fused multiply-adds.
        let offset = [
            (m[0][0] * -c[0] + m[0][1] * -c[1]) + c[0],
            (m[1][0] * -c[0] + m[1][1] * -c[1]) + c[1],
        ];
        Affine { m, offset }
    }

    /// Rotation by `degrees`.
    pub fn rotation(degrees: f64, h: usize, w: usize) -> Affine {
        let t = std::f64::consts::PI / 180.0 * degrees;
        let (s, c) = (t.sin(), t.cos());
        Self::centered([[c, -s], [s, c]], h, w)
    }

    /// Shear by `radians`.
    pub fn shear(radians: f64, h: usize, w: usize) -> Affine {
        Self::centered([[1.0, -radians.sin()], [0.0, radians.cos()]], h, w)
    }

    /// Zoom by `factor` on both axes (input = factor × output about the centre).
    pub fn zoom(factor: f64, h: usize, w: usize) -> Affine {
        Self::centered([[factor, 0.0], [0.0, factor]], h, w)
    }

    /// Input coordinates of output pixel (r, c), in scipy's (≤ 1.15) order of operations.
    pub fn map(&self, r: f64, c: f64) -> [f64; 2] {
        let m = &self.m;
        [
            ((0.0 + r * m[0][0]) + c * m[0][1]) + self.offset[0],
            ((0.0 + r * m[1][0]) + c * m[1][1]) + self.offset[1],
        ]
    }
}

/// scipy's order-0 sample along an axis of length `n` in mode `constant`: inside only when
/// 0 ≤ x ≤ n − 1 (closed), then rounded half up.
fn nearest(x: f64, n: usize) -> Option<usize> {
    if x >= 0.0 && x <= (n - 1) as f64 {
        Some(((x + 0.5).floor() as usize).min(n - 1))
    } else {
        None
    }
}

/// Warps every channel of `src` (C×H×W) into `dst` with nearest-neighbour sampling, black fill.
pub fn warp_nearest(src: &[u8], c: usize, h: usize, w: usize, a: &Affine, dst: &mut [u8]) {
    for r in 0..h {
        for col in 0..w {
            let [y, x] = a.map(r as f64, col as f64);
            let at = match (nearest(y, h), nearest(x, w)) {
                (Some(yy), Some(xx)) => Some(yy * w + xx),
                _ => None,
            };
            for ch in 0..c {
                dst[ch * h * w + r * w + col] = match at {
                    Some(i) => src[ch * h * w + i],
                    None => 0,
                };
            }
        }
    }
}
