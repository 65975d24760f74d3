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
/// 0 ≤ x ≤ n − 1 (closed), then rounded half up (x ≤ n − 1 keeps ⌊x + 0.5⌋ ≤ n − 1: no clamp).
fn nearest(x: f64, n: usize) -> Option<usize> {
    if x >= 0.0 && x <= (n - 1) as f64 {
        Some((x + 0.5).floor() as usize)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_inside_the_closed_range_round_half_up_as_scipy() {
        // scipy 1.17.1 ndimage.map_coordinates(np.arange(1., 6.), [[x]], order=0,
        // mode='constant') reads outside (cval) below 0 and above 4, index ⌊x + 0.5⌋ between.
        assert_eq!(nearest(-1e-12, 5), None);
        assert_eq!(nearest(0.0, 5), Some(0));
        assert_eq!(nearest(0.499_999, 5), Some(0));
        assert_eq!(nearest(0.5, 5), Some(1));
        assert_eq!(nearest(3.5, 5), Some(4));
        assert_eq!(nearest(4.0, 5), Some(4));
        assert_eq!(nearest(4.0 + 1e-12, 5), None);
        assert_eq!(nearest(0.0, 1), Some(0));
    }

    #[test]
    fn a_quarter_turn_about_the_references_centre_matches_scipy() {
        // 3×3 single-channel image 1..=9. The reference's centre (h/2 + 0.5 = 2) is off the
        // middle pixel, so a 90° turn also shifts: input = (4 − col, row), and only the last
        // column reads inside the image. Expected: scipy 1.17.1
        // ndimage.affine_transform(img, m, c − m·c, order=0, mode='constant', cval=0).
        let a = Affine::rotation(90.0, 3, 3);
        assert!((a.offset[0] - 4.0).abs() < 1e-12 && a.offset[1].abs() < 1e-12);
        let src: Vec<u8> = (1..=9).collect();
        let mut dst = vec![99u8; 9];
        warp_nearest(&src, 1, 3, 3, &a, &mut dst);
        assert_eq!(dst, vec![0, 0, 7, 0, 0, 8, 0, 0, 9]);
    }
}
