//! Writers for fixture files in each dataset's official format, used by the data tests.
#![allow(dead_code)]

pub mod outcome;
pub mod plans;

use std::io::Write;
use std::path::Path;

use mixbench::data::LoadOptions;

/// Load options for a fixture directory; fixtures never match the canonical checksums.
pub fn opts(dir: &Path, allow_unverified: bool) -> LoadOptions {
    LoadOptions {
        data_dir: dir.to_path_buf(),
        allow_unverified,
        progress: None,
    }
}

/// Deterministic pixel value for image `n`, channel `c`, row `h`, column `w`; asymmetric in
/// (h, w) so a transposition shows up.
pub fn px(n: usize, c: usize, h: usize, w: usize) -> u8 {
    ((n * 37 + c * 71 + h * 3 + w * 11) % 256) as u8
}

/// One CHW 32×32×3 image built from `px`.
pub fn chw_image(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(3072);
    for c in 0..3 {
        for h in 0..32 {
            for w in 0..32 {
                v.push(px(n, c, h, w));
            }
        }
    }
    v
}

/// The five CIFAR-10 training batch files, in the official order.
pub const CIFAR10_TRAIN_BATCHES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];

/// CIFAR records: `labels[i]` label bytes then image `first + i`.
pub fn cifar_records(first: usize, labels: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        out.extend_from_slice(l);
        out.extend(chw_image(first + i));
    }
    out
}

/// A `.tar.gz` holding `members` (name, bytes), written the way `tar czf` would.
pub fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

fn tag(out: &mut Vec<u8>, ty: u32, n: usize) {
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn pad8(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
}

/// Numeric payload of a MAT array.
pub enum MatData<'a> {
    /// mxUINT8_CLASS stored as miUINT8.
    U8(&'a [u8]),
    /// mxDOUBLE_CLASS stored as miDOUBLE.
    F64(&'a [f64]),
}

/// One miCOMPRESSED element wrapping a miMATRIX (MAT v5 layout, little-endian).
pub fn mat_compressed_array(name: &str, dims: &[i32], data: MatData) -> Vec<u8> {
    const MI_INT8: u32 = 1;
    const MI_UINT8: u32 = 2;
    const MI_INT32: u32 = 5;
    const MI_UINT32: u32 = 6;
    const MI_DOUBLE: u32 = 9;
    const MI_MATRIX: u32 = 14;
    const MI_COMPRESSED: u32 = 15;
    let (class, ty, bytes): (u32, u32, Vec<u8>) = match data {
        MatData::U8(v) => (9, MI_UINT8, v.to_vec()),
        MatData::F64(v) => (
            6,
            MI_DOUBLE,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
    };
    let mut body = Vec::new();
    tag(&mut body, MI_UINT32, 8);
    body.extend_from_slice(&class.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    tag(&mut body, MI_INT32, dims.len() * 4);
    for d in dims {
        body.extend_from_slice(&d.to_le_bytes());
    }
    pad8(&mut body);
    tag(&mut body, MI_INT8, name.len());
    body.extend_from_slice(name.as_bytes());
    pad8(&mut body);
    tag(&mut body, ty, bytes.len());
    body.extend_from_slice(&bytes);
    pad8(&mut body);
    let mut matrix = Vec::new();
    tag(&mut matrix, MI_MATRIX, body.len());
    matrix.extend_from_slice(&body);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&matrix).unwrap();
    let zdata = z.finish().unwrap();
    let mut out = Vec::new();
    tag(&mut out, MI_COMPRESSED, zdata.len());
    out.extend_from_slice(&zdata);
    out
}

/// A MAT v5 file: 128-byte header then the given elements.
pub fn mat_file(elements: &[Vec<u8>]) -> Vec<u8> {
    let mut text = b"MATLAB 5.0 MAT-file, Platform: rust, Created by: mixbench tests".to_vec();
    text.resize(116, b' ');
    let mut out = text;
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&0x0100u16.to_le_bytes());
    out.extend_from_slice(b"IM");
    for e in elements {
        out.extend_from_slice(e);
    }
    out
}

/// SVHN-shaped `.mat`: X uint8 [32,32,3,N] column-major built from `px(first + n, ..)`, y
/// double [N,1].
pub fn svhn_mat(first: usize, y: &[f64]) -> Vec<u8> {
    let n = y.len();
    let mut x = vec![0u8; 3072 * n];
    for i in 0..n {
        for c in 0..3 {
            for h in 0..32 {
                for w in 0..32 {
                    x[h + 32 * w + 1024 * c + 3072 * i] = px(first + i, c, h, w);
                }
            }
        }
    }
    mat_file(&[
        mat_compressed_array("X", &[32, 32, 3, n as i32], MatData::U8(&x)),
        mat_compressed_array("y", &[n as i32, 1], MatData::F64(y)),
    ])
}

/// A smooth 64×64 RGB test image (JPEG-friendly), varied by `seed`.
pub fn rgb64(seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([
            ((x * 4 + seed * 20) % 256) as u8,
            ((y * 4 + seed * 50) % 256) as u8,
            ((x + y + seed * 30) % 256) as u8,
        ])
    })
}

/// JPEG bytes of an image at quality 90.
pub fn jpeg(img: &image::DynamicImage) -> Vec<u8> {
    let mut buf = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90);
    img.write_with_encoder(enc).unwrap();
    buf
}

/// Tiny-ImageNet-shaped file set: (relative path, bytes). wnids.txt is deliberately unsorted;
/// `train/n02/images/n02_1.JPEG` is greyscale. Returns the files plus, per split, the
/// expected (relative path, label) in ImageFolder order.
pub struct TinyFixture {
    pub files: Vec<(String, Vec<u8>)>,
    pub train: Vec<(String, u32)>,
    pub val: Vec<(String, u32)>,
}

pub fn tiny_fixture() -> TinyFixture {
    let wnids = ["n03", "n01", "n02"];
    let mut files = vec![("wnids.txt".to_string(), b"n03\nn01\nn02\n".to_vec())];
    let mut seed = 0;
    for w in wnids {
        for i in 0..2 {
            let img = if w == "n02" && i == 1 {
                image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(64, 64, |x, y| {
                    image::Luma([((x * 3 + y) % 256) as u8])
                }))
            } else {
                image::DynamicImage::ImageRgb8(rgb64(seed))
            };
            seed += 1;
            files.push((format!("train/{w}/images/{w}_{i}.JPEG"), jpeg(&img)));
        }
        // ImageFolder ignores non-image files such as the boxes list.
        files.push((
            format!("train/{w}/{w}_boxes.txt"),
            b"x\t0\t0\t63\t63\n".to_vec(),
        ));
    }
    let val = [
        ("val_0.JPEG", "n02"),
        ("val_1.JPEG", "n03"),
        ("val_2.JPEG", "n01"),
    ];
    let mut ann = String::new();
    for (f, w) in val {
        ann.push_str(&format!("{f}\t{w}\t0\t0\t63\t63\n"));
        files.push((
            format!("val/images/{f}"),
            jpeg(&image::DynamicImage::ImageRgb8(rgb64(seed))),
        ));
        seed += 1;
    }
    files.push(("val/val_annotations.txt".into(), ann.into_bytes()));
    let train = vec![
        ("train/n01/images/n01_0.JPEG".to_string(), 0),
        ("train/n01/images/n01_1.JPEG".to_string(), 0),
        ("train/n02/images/n02_0.JPEG".to_string(), 1),
        ("train/n02/images/n02_1.JPEG".to_string(), 1),
        ("train/n03/images/n03_0.JPEG".to_string(), 2),
        ("train/n03/images/n03_1.JPEG".to_string(), 2),
    ];
    let val = vec![
        ("val/images/val_2.JPEG".to_string(), 0),
        ("val/images/val_0.JPEG".to_string(), 1),
        ("val/images/val_1.JPEG".to_string(), 2),
    ];
    TinyFixture { files, train, val }
}

/// Writes `files` under `root`.
pub fn write_tree(root: &Path, files: &[(String, Vec<u8>)]) {
    for (rel, bytes) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// A deflated zip of `files`, each under `prefix`.
pub fn zip_bytes(prefix: &str, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (rel, bytes) in files {
        w.start_file(format!("{prefix}{rel}"), o).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// CHW bytes of the image crate's own decode of a JPEG, converted to RGB.
pub fn decode_chw(bytes: &[u8]) -> Vec<u8> {
    let img = image::load_from_memory(bytes).unwrap().to_rgb8();
    let mut out = vec![0u8; 3 * 64 * 64];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * 4096 + i] = p[c];
        }
    }
    out
}

/// gzip bytes.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}
