//! The IDX format MNIST ships in: big-endian header, then unsigned bytes.

use crate::error::{Error, Result};

/// Magic number of a ubyte image file with 3 dimensions (count, rows, cols).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of a ubyte label file with 1 dimension (count).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an idx3-ubyte image file; returns (count, rows, cols, pixels) with pixels row-major.
pub fn parse_images<'a>(
    dataset: &str,
    file: &str,
    b: &'a [u8],
) -> Result<(usize, usize, usize, &'a [u8])> {
    // The magic is checked first: a swapped or compressed file is the likelier mistake.
    if b.len() >= 4 && be32(b, 0) != IMAGES_MAGIC {
        let magic = be32(b, 0);
        return Err(Error::Data(format!(
            "{dataset}: {file} has idx magic 0x{magic:08x}, expected 0x{IMAGES_MAGIC:08x} (ubyte images, 3 dimensions); is it a label file, or still compressed?"
        )));
    }
    if b.len() < 16 {
        return Err(Error::Data(format!(
            "{dataset}: {file} is {} bytes, too short for an idx image header (16 bytes)",
            b.len()
        )));
    }
    let (n, r, c) = (
        be32(b, 4) as usize,
        be32(b, 8) as usize,
        be32(b, 12) as usize,
    );
    let want = n
        .checked_mul(r)
        .and_then(|x| x.checked_mul(c))
        .and_then(|x| x.checked_add(16));
    if want != Some(b.len()) {
        return Err(Error::Data(format!(
            "{dataset}: {file} header says {n} images of {r}x{c} ({} bytes with header), but the file is {} bytes (truncated or trailing data)",
            want.map_or("overflowing".to_string(), |w| w.to_string()),
            b.len()
        )));
    }
    Ok((n, r, c, &b[16..]))
}

/// Parses an idx1-ubyte label file, checking every label is below `num_classes`.
pub fn parse_labels(dataset: &str, file: &str, b: &[u8], num_classes: u32) -> Result<Vec<u32>> {
    // The magic is checked first: a swapped or compressed file is the likelier mistake.
    if b.len() >= 4 && be32(b, 0) != LABELS_MAGIC {
        let magic = be32(b, 0);
        return Err(Error::Data(format!(
            "{dataset}: {file} has idx magic 0x{magic:08x}, expected 0x{LABELS_MAGIC:08x} (ubyte labels, 1 dimension); is it an image file, or still compressed?"
        )));
    }
    if b.len() < 8 {
        return Err(Error::Data(format!(
            "{dataset}: {file} is {} bytes, too short for an idx label header (8 bytes)",
            b.len()
        )));
    }
    let n = be32(b, 4) as usize;
    if b.len() != n + 8 {
        return Err(Error::Data(format!(
            "{dataset}: {file} header says {n} labels ({} bytes with header), but the file is {} bytes (truncated or trailing data)",
            n + 8,
            b.len()
        )));
    }
    b[8..]
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            if u32::from(l) < num_classes {
                Ok(u32::from(l))
            } else {
                Err(Error::Data(format!(
                    "{dataset}: {file} label {i} is {l}; labels must be 0..{}",
                    num_classes - 1
                )))
            }
        })
        .collect()
}

/// Builds an idx3-ubyte image file (used by tests and fixtures).
pub fn write_images(count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + pixels.len());
    for x in [IMAGES_MAGIC, count as u32, rows as u32, cols as u32] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(pixels);
    v
}

/// Builds an idx1-ubyte label file (used by tests and fixtures).
pub fn write_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + labels.len());
    v.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_magic_checks() {
        let img = write_images(2, 2, 3, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let (n, r, c, px) = parse_images("m", "f", &img).unwrap();
        assert_eq!((n, r, c, px[11]), (2, 2, 3, 12));
        let lab = write_labels(&[3, 9]);
        assert_eq!(parse_labels("m", "f", &lab, 10).unwrap(), vec![3, 9]);
        let e = parse_images("m", "f", &lab).unwrap_err().to_string();
        assert!(e.contains("magic 0x00000801, expected 0x00000803"), "{e}");
        let e = parse_labels("m", "f", &write_labels(&[10]), 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 0 is 10; labels must be 0..9"), "{e}");
        let e = parse_images("m", "f", &img[..20]).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
