//! Readers against fixture files written in each dataset's official format, plus the real
//! MNIST files from `../shared/data/mnist` when they are present.

mod common;

use std::path::Path;

use common::*;
use mixbench::data::files::status;
use mixbench::data::{Presence, registry};
use serde_json::json;

fn load(name: &str, params: serde_json::Value, dir: &Path) -> mixbench::data::ImageDataset {
    registry::get(name)
        .unwrap()
        .load(&params, &opts(dir, true))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn cifar10_files() -> Vec<(&'static str, Vec<u8>)> {
    let mut files = Vec::new();
    for (k, name) in CIFAR10_TRAIN_BATCHES.into_iter().enumerate() {
        // Two records per batch: image 2k with label k, image 2k+1 with label 9-k.
        let l = [k as u8];
        let l2 = [9 - k as u8];
        files.push((name, cifar_records(2 * k, &[&l, &l2])));
    }
    files.push(("test_batch.bin", cifar_records(100, &[&[7], &[0], &[3]])));
    files
}

fn check_cifar10(d: &mixbench::data::ImageDataset) {
    assert_eq!(
        (d.channels, d.height, d.width, d.num_classes),
        (3, 32, 32, 10)
    );
    assert_eq!(d.train.labels, vec![0, 9, 1, 8, 2, 7, 3, 6, 4, 5]);
    assert_eq!(d.test.labels, vec![7, 0, 3]);
    for i in 0..10 {
        assert_eq!(
            d.train.images[i * 3072..(i + 1) * 3072],
            chw_image(i)[..],
            "train {i}"
        );
    }
    assert_eq!(d.test.images[2 * 3072..], chw_image(102)[..]);
}

#[test]
fn cifar10_from_bin_files_and_from_tar_gz() {
    let files = cifar10_files();
    let flat = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(flat.path().join("cifar10")).unwrap();
    for (n, b) in &files {
        std::fs::write(flat.path().join("cifar10").join(n), b).unwrap();
    }
    let a = load("cifar10", json!({}), flat.path());
    check_cifar10(&a);
    assert_eq!(a.provenance.files.len(), 6);
    assert_eq!(a.provenance.files[0].name, "data_batch_1.bin");
    assert!(a.provenance.files.iter().all(|f| !f.verified));
    assert!(
        a.provenance
            .notes
            .iter()
            .any(|n| n.contains("WARNING") && n.contains("checksum mismatch"))
    );

    // The archive as downloaded, straight in the data directory.
    let members: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, b)| (format!("cifar-10-batches-bin/{n}"), b.clone()))
        .collect();
    let refs: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let tgz = tar_gz(&refs);
    let arch = tempfile::tempdir().unwrap();
    std::fs::write(arch.path().join("cifar-10-binary.tar.gz"), &tgz).unwrap();
    let b = load("cifar10", serde_json::Value::Null, arch.path());
    check_cifar10(&b);
    assert_eq!(b.provenance.files.len(), 1);
    assert_eq!(
        b.provenance.files[0].sha256,
        mixbench::data::files::hash::sha256_hex(&tgz)
    );
    assert_eq!(a.train, b.train);
    // The fingerprint is of the files read, so the two layouts differ.
    assert_ne!(a.provenance.fingerprint, b.provenance.fingerprint);
    let again = load("cifar10", json!({}), arch.path());
    assert_eq!(b.provenance.fingerprint, again.provenance.fingerprint);
}

#[test]
fn cifar100_fine_and_coarse_labels() {
    let train = cifar_records(0, &[&[1, 10], &[19, 99], &[0, 0]]);
    let test = cifar_records(50, &[&[4, 42]]);
    let tgz = tar_gz(&[
        ("cifar-100-binary/train.bin", &train),
        ("cifar-100-binary/test.bin", &test),
        ("cifar-100-binary/fine_label_names.txt", b"apple\n"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cifar100")).unwrap();
    std::fs::write(dir.path().join("cifar100/cifar-100-binary.tar.gz"), &tgz).unwrap();
    let fine = load("cifar100", json!({}), dir.path());
    assert_eq!(fine.num_classes, 100);
    assert_eq!(fine.train.labels, vec![10, 99, 0]);
    assert_eq!(fine.test.labels, vec![42]);
    assert_eq!(fine.train.images[3072..6144], chw_image(1)[..]);
    assert_eq!(fine.test.images, chw_image(50));
    let coarse = load("cifar100", json!({"label": "coarse"}), dir.path());
    assert_eq!(coarse.num_classes, 20);
    assert_eq!(coarse.train.labels, vec![1, 19, 0]);
    assert_eq!(coarse.test.labels, vec![4]);
    assert_eq!(coarse.train.images, fine.train.images);
    assert!(coarse.provenance.notes.iter().any(|n| n.contains("coarse")));
}

#[test]
fn matfile_reads_our_mat_v5_writer() {
    let bytes = svhn_mat(0, &[10.0, 3.0]);
    let mat = matfile::MatFile::parse(bytes.as_slice()).unwrap();
    let x = mat.find_by_name("X").unwrap();
    assert_eq!(x.size(), &vec![32, 32, 3, 2]);
    match x.data() {
        matfile::NumericData::UInt8 { real, .. } => {
            // Column-major: X(h=1, w=2, c=0, n=1) is at 1 + 32*2 + 3072.
            assert_eq!(real[1 + 64 + 3072], px(1, 0, 1, 2));
        }
        other => panic!("X decoded as {other:?}"),
    }
    match mat.find_by_name("y").unwrap().data() {
        matfile::NumericData::Double { real, .. } => assert_eq!(real, &vec![10.0, 3.0]),
        other => panic!("y decoded as {other:?}"),
    }
}

#[test]
fn svhn_column_major_label_10_and_cap() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("svhn");
    std::fs::create_dir_all(&s).unwrap();
    std::fs::write(
        s.join("train_32x32.mat"),
        svhn_mat(0, &[10.0, 1.0, 5.0, 1.0, 1.0]),
    )
    .unwrap();
    std::fs::write(s.join("test_32x32.mat"), svhn_mat(20, &[2.0, 10.0])).unwrap();
    std::fs::write(s.join("extra_32x32.mat"), svhn_mat(40, &[7.0])).unwrap();
    let d = load("svhn", json!({}), dir.path());
    assert_eq!(d.train.labels, vec![0, 1, 5, 1, 1]);
    assert_eq!(d.test.labels, vec![2, 0]);
    for i in 0..5 {
        assert_eq!(
            d.train.images[i * 3072..(i + 1) * 3072],
            chw_image(i)[..],
            "train {i}"
        );
    }
    assert_eq!(d.test.images[3072..], chw_image(21)[..]);
    assert_eq!(
        d.provenance.files.len(),
        2,
        "extra is not read unless asked for"
    );

    let both = load("svhn", json!({"splits": ["train", "extra"]}), dir.path());
    assert_eq!(both.train.labels, vec![0, 1, 5, 1, 1, 7]);
    assert_eq!(both.train.images[5 * 3072..], chw_image(40)[..]);

    let capped = load(
        "svhn",
        json!({"cap_per_class": 2, "split_seed": 3}),
        dir.path(),
    );
    let ones = capped.train.labels.iter().filter(|&&l| l == 1).count();
    assert_eq!((capped.train.len(), ones), (4, 2));
    assert!(
        capped
            .provenance
            .notes
            .iter()
            .any(|n| n.contains("capped at 2 images per class") && n.contains("split_seed 3")),
        "{:?}",
        capped.provenance.notes
    );
    let capped2 = load(
        "svhn",
        json!({"cap_per_class": 2, "split_seed": 3}),
        dir.path(),
    );
    assert_eq!(capped.train, capped2.train);
}

fn check_tiny(d: &mixbench::data::ImageDataset, fx: &TinyFixture) {
    assert_eq!(
        (d.channels, d.height, d.width, d.num_classes),
        (3, 64, 64, 3)
    );
    let file = |rel: &str| &fx.files.iter().find(|(r, _)| r == rel).unwrap().1;
    let labels: Vec<u32> = fx.train.iter().map(|(_, l)| *l).collect();
    assert_eq!(d.train.labels, labels);
    let vlabels: Vec<u32> = fx.val.iter().map(|(_, l)| *l).collect();
    assert_eq!(d.test.labels, vlabels);
    let n = 3 * 64 * 64;
    for (i, (rel, _)) in fx.train.iter().enumerate() {
        assert_eq!(
            d.train.images[i * n..(i + 1) * n],
            decode_chw(file(rel))[..],
            "{rel}"
        );
    }
    for (i, (rel, _)) in fx.val.iter().enumerate() {
        assert_eq!(
            d.test.images[i * n..(i + 1) * n],
            decode_chw(file(rel))[..],
            "{rel}"
        );
    }
    // The greyscale JPEG (train index 3) has three identical planes.
    let g = &d.train.images[3 * n..4 * n];
    assert_eq!(g[..4096], g[4096..8192]);
    assert_eq!(g[..4096], g[8192..]);
    // And it is close to the pixels that were encoded.
    let want = |x: usize, y: usize| ((x * 3 + y) % 256) as i32;
    let worst = (0..64 * 64)
        .map(|i| (g[i] as i32 - want(i % 64, i / 64)).abs())
        .max()
        .unwrap();
    assert!(
        worst <= 12,
        "greyscale decode differs from the source by {worst}"
    );
}

/// Loading reports how far it has come, stage by stage, ending at the stage's total; a load
/// from the cache decodes nothing, and a zip needs no per-file hashing.
#[test]
fn tiny_imagenet_reports_hashing_and_decoding_progress() {
    use std::sync::{Arc, Mutex};
    let fx = tiny_fixture();
    let (nt, nv) = (fx.train.len() as u64, fx.val.len() as u64);
    let seen: Arc<Mutex<Vec<(String, u64, u64)>>> = Arc::default();
    let sink = seen.clone();
    let progress = mixbench::data::LoadProgress(Arc::new(move |s: &str, d: u64, t: u64| {
        sink.lock().unwrap().push((s.to_string(), d, t))
    }));
    let load_seen = |dir: &Path| {
        seen.lock().unwrap().clear();
        let mut o = opts(dir, true);
        o.progress = Some(progress.clone());
        let d = registry::get("tiny_imagenet")
            .unwrap()
            .load(&json!({}), &o)
            .unwrap();
        (d, seen.lock().unwrap().clone())
    };
    let r = |s: &str, d: u64, t: u64| (s.to_string(), d, t);
    let hash = "hashing the extracted files";
    let (train, val) = ("decoding train JPEGs", "decoding val JPEGs");
    let dir = tempfile::tempdir().unwrap();
    write_tree(&dir.path().join("tiny-imagenet-200"), &fx.files);
    let (a, got) = load_seen(dir.path());
    check_tiny(&a, &fx);
    assert_eq!(
        got,
        vec![
            r(hash, 0, nt + nv),
            r(hash, nt + nv, nt + nv),
            r(train, 0, nt),
            r(train, nt, nt),
            r(val, 0, nv),
            r(val, nv, nv)
        ]
    );
    let (_, cached) = load_seen(dir.path());
    assert_eq!(cached, vec![r(hash, 0, nt + nv), r(hash, nt + nv, nt + nv)]);
    let zdir = tempfile::tempdir().unwrap();
    std::fs::write(
        zdir.path().join("tiny-imagenet-200.zip"),
        zip_bytes("tiny-imagenet-200/", &fx.files),
    )
    .unwrap();
    let (_, zipped) = load_seen(zdir.path());
    assert_eq!(
        zipped,
        vec![
            r(train, 0, nt),
            r(train, nt, nt),
            r(val, 0, nv),
            r(val, nv, nv)
        ]
    );
}

#[test]
fn tiny_imagenet_tree_zip_and_cache() {
    let fx = tiny_fixture();
    // Extracted tree.
    let dir = tempfile::tempdir().unwrap();
    write_tree(&dir.path().join("tiny-imagenet-200"), &fx.files);
    let a = load("tiny_imagenet", json!({}), dir.path());
    check_tiny(&a, &fx);
    assert!(
        a.provenance
            .notes
            .iter()
            .any(|n| n.contains("decoded images cached at"))
    );
    assert!(!a.provenance.files[0].verified);
    let cache_dir = dir.path().join(".mixbench-cache");
    assert_eq!(
        std::fs::read_dir(&cache_dir).unwrap().count(),
        1,
        "one cache file, no temp files"
    );
    let b = load("tiny_imagenet", json!({}), dir.path());
    assert!(
        b.provenance
            .notes
            .iter()
            .any(|n| n.contains("loaded from cache")),
        "{:?}",
        b.provenance.notes
    );
    assert_eq!((&a.train, &a.test), (&b.train, &b.test));
    assert_eq!(a.provenance.fingerprint, b.provenance.fingerprint);
    // A damaged cache is ignored and rebuilt.
    let cache = std::fs::read_dir(&cache_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&cache).unwrap();
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&cache, &bytes).unwrap();
    let c = load("tiny_imagenet", json!({}), dir.path());
    assert!(
        c.provenance
            .notes
            .iter()
            .any(|n| n.contains("ignored invalid cache")),
        "{:?}",
        c.provenance.notes
    );
    assert_eq!(a.train, c.train);
    let d = load("tiny_imagenet", json!({}), dir.path());
    assert!(
        d.provenance
            .notes
            .iter()
            .any(|n| n.contains("loaded from cache"))
    );

    // The zip as downloaded.
    let zdir = tempfile::tempdir().unwrap();
    let zip = zip_bytes("tiny-imagenet-200/", &fx.files);
    std::fs::write(zdir.path().join("tiny-imagenet-200.zip"), &zip).unwrap();
    let z = load("tiny_imagenet", json!({"cache": false}), zdir.path());
    check_tiny(&z, &fx);
    assert_eq!(
        z.provenance.files[0].sha256,
        mixbench::data::files::hash::sha256_hex(&zip)
    );
    assert!(!zdir.path().join(".mixbench-cache").exists());

    // `data verify` hashes the same bytes the loader read.
    let src = registry::get("tiny_imagenet").unwrap();
    let st = src.status(&opts(dir.path(), false), true);
    assert_eq!(st.presence, Presence::Present);
    assert_eq!(
        st.fingerprint.as_deref(),
        Some(a.provenance.fingerprint.as_str())
    );
    let st = src.status(&opts(zdir.path(), true), true);
    assert_eq!(
        st.fingerprint.as_deref(),
        Some(z.provenance.fingerprint.as_str())
    );
    let st = src.status(&opts(zdir.path(), false), false);
    assert!(
        matches!(&st.presence, Presence::Corrupt(t) if t.contains("expected 248,100,043 bytes")),
        "{:?}",
        st.presence
    );
}

#[test]
fn mnist_idx_fixture_raw_gz_and_dot_naming() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("mnist");
    std::fs::create_dir_all(&m).unwrap();
    let px: Vec<u8> = (0..2 * 784).map(|i| (i % 251) as u8).collect();
    let idx = mixbench::data::sources::idx::write_images(2, 28, 28, &px);
    std::fs::write(m.join("train-images.idx3-ubyte.gz"), gz(&idx)).unwrap();
    std::fs::write(
        m.join("train-labels-idx1-ubyte"),
        mixbench::data::sources::idx::write_labels(&[3, 9]),
    )
    .unwrap();
    std::fs::write(
        m.join("t10k-images-idx3-ubyte.gz"),
        gz(&mixbench::data::sources::idx::write_images(
            1,
            28,
            28,
            &px[784..],
        )),
    )
    .unwrap();
    std::fs::write(
        m.join("t10k-labels.idx1-ubyte"),
        mixbench::data::sources::idx::write_labels(&[0]),
    )
    .unwrap();
    let d = load("mnist", json!({}), dir.path());
    assert_eq!((d.channels, d.height, d.width), (1, 28, 28));
    assert_eq!(d.train.images, px);
    assert_eq!(d.train.labels, vec![3, 9]);
    assert_eq!(d.test.images, px[784..]);
    assert_eq!(d.test.labels, vec![0]);
    // Hashes are of the decompressed bytes, and names are canonical.
    assert_eq!(d.provenance.files[0].name, "train-images-idx3-ubyte");
    assert_eq!(
        d.provenance.files[0].sha256,
        mixbench::data::files::hash::sha256_hex(&idx)
    );
}

#[test]
fn mnist_real_files_verify_against_canonical_hashes() {
    // The shipped copy, found through the fallback from an empty data folder: never skipped.
    let empty = tempfile::tempdir().unwrap();
    let d = registry::get("mnist")
        .unwrap()
        .load(&json!({}), &opts(empty.path(), false))
        .unwrap();
    assert!(
        d.provenance
            .notes
            .iter()
            .any(|n| n.contains("copy shipped")),
        "{:?}",
        d.provenance.notes
    );
    assert_eq!((d.train.len(), d.test.len()), (60_000, 10_000));
    assert!(d.provenance.files.iter().all(|f| f.verified));
    let mut counts = [0usize; 10];
    for &l in &d.train.labels {
        counts[l as usize] += 1;
    }
    assert_eq!(
        counts,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    // sha256s recorded match the distributor's SHA256SUMS.
    let dir = mixbench::data::sources::mnist::shipped_dir().join("mnist");
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    for f in &d.provenance.files {
        let stem = f.name.replace("-idx", ".idx");
        assert!(
            sums.contains(&format!("{}  {stem}", f.sha256)),
            "{} {}",
            f.name,
            f.sha256
        );
    }
    let st = registry::get("mnist")
        .unwrap()
        .status(&opts(&dir, false), true);
    assert_eq!(st.presence, Presence::Present);
    assert_eq!(
        st.fingerprint.as_deref(),
        Some(d.provenance.fingerprint.as_str())
    );
}

#[test]
fn digits_via_registry_and_params() {
    let dir = tempfile::tempdir().unwrap();
    let d = load("digits", json!({}), dir.path());
    assert_eq!(
        (d.channels, d.height, d.width, d.num_classes),
        (1, 8, 8, 10)
    );
    assert_eq!((d.train.len(), d.test.len()), (1347, 450));
    assert!(d.provenance.files[0].verified);
    assert!(
        d.provenance
            .notes
            .iter()
            .any(|n| n.contains("split_seed=0"))
    );
    let e = registry::get("digits")
        .unwrap()
        .load(&json!({"seed": 1}), &opts(dir.path(), false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown field `seed`") && e.contains("split_seed"),
        "{e}"
    );
}

#[test]
fn status_on_a_fresh_machine() {
    let dir = tempfile::tempdir().unwrap();
    let sts = status::collect(&opts(dir.path(), false), false, None).unwrap();
    let names: Vec<&str> = sts.iter().map(|s| s.name.as_str()).collect();
    for n in [
        "digits",
        "mnist",
        "cifar10",
        "cifar100",
        "svhn",
        "tiny_imagenet",
    ] {
        assert!(names.contains(&n), "{n} not listed");
    }
    for s in &sts {
        match s.name.as_str() {
            "digits" => {
                assert_eq!(s.presence, Presence::Embedded);
                assert!(s.fingerprint.is_some());
            }
            "synthetic" | "glyphs" | "spiral" => assert_eq!(s.presence, Presence::Embedded),
            _ => assert!(
                matches!(s.presence, Presence::Missing(_)),
                "{}: {:?}",
                s.name,
                s.presence
            ),
        }
    }
    let text = status::render(&sts, dir.path(), "from --data-dir", false);
    assert!(text.contains("digits") && text.contains("embedded"));
    assert!(
        text.contains("https://www.cs.toronto.edu/~kriz/cifar.html"),
        "{text}"
    );
    assert!(text.contains("http://ufldl.stanford.edu/housenumbers/"));
    assert!(text.contains("tiny-imagenet-200.zip"));
    assert!(text.contains("train-images-idx3-ubyte"));
    assert!(status::any_problem(&sts));
    let only = status::collect(&opts(dir.path(), false), true, Some("digits")).unwrap();
    assert!(!status::any_problem(&only));
}

#[test]
fn status_present_and_verify_with_fixture() {
    let dir = tempfile::tempdir().unwrap();
    for (n, b) in cifar10_files() {
        std::fs::write(dir.path().join(n), b).unwrap();
    }
    let src = registry::get("cifar10").unwrap();
    // Sizes differ from the official files: corrupt unless allowed.
    let st = src.status(&opts(dir.path(), false), false);
    assert!(
        matches!(&st.presence, Presence::Corrupt(t) if t.contains("expected 30,730,000 bytes")),
        "{:?}",
        st.presence
    );
    let st = src.status(&opts(dir.path(), true), true);
    assert_eq!(st.presence, Presence::Present);
    let d = load("cifar10", json!({}), dir.path());
    assert_eq!(
        st.fingerprint.as_deref(),
        Some(d.provenance.fingerprint.as_str())
    );
    let st = src.status(&opts(dir.path(), false), true);
    assert!(matches!(&st.presence, Presence::Corrupt(t) if t.contains("checksum mismatch")));
}

#[test]
fn default_preprocessing_matches_reference_code() {
    let p = |n: &str| registry::get(n).unwrap().default_preprocessing();
    let c10 = p("cifar10");
    assert_eq!((c10.crop_padding, c10.hflip), (2, true));
    assert_eq!(c10.mean, vec![125.3 / 255.0, 123.0 / 255.0, 113.9 / 255.0]);
    assert_eq!(c10.std, vec![63.0 / 255.0, 62.1 / 255.0, 66.7 / 255.0]);
    let c100 = p("cifar100");
    assert_eq!((c100.crop_padding, c100.hflip), (2, true));
    assert_eq!(c100.mean, vec![129.3 / 255.0, 124.1 / 255.0, 112.4 / 255.0]);
    assert_eq!(c100.std, vec![68.2 / 255.0, 65.4 / 255.0, 70.4 / 255.0]);
    let svhn = p("svhn");
    assert_eq!((svhn.crop_padding, svhn.hflip), (2, false));
    assert_eq!((svhn.mean, svhn.std), (vec![0.5; 3], vec![0.5; 3]));
    let tiny = p("tiny_imagenet");
    assert_eq!((tiny.crop_padding, tiny.hflip), (4, true));
    assert_eq!((tiny.mean, tiny.std), (vec![0.5; 3], vec![0.5; 3]));
    let mnist = p("mnist");
    assert_eq!((mnist.crop_padding, mnist.hflip), (0, false));
    assert_eq!((mnist.mean, mnist.std), (vec![0.1307], vec![0.3081]));
    assert_eq!(p("digits").mean.len(), 1);
}

/// SVHN files written by scipy's MAT writer (`tools/reference/make_svhn_mat_fixture.py`,
/// scipy 1.15.3), not by this crate's test writer: a reader that only understood our own
/// writer's subset of MAT v5 would fail here.
#[test]
fn svhn_reads_files_written_by_scipy() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let d = registry::get("svhn")
        .unwrap()
        .load(&json!({}), &opts(&dir.join("svhn_scipy"), true))
        .unwrap();
    assert_eq!(d.train.labels, vec![0, 1, 5, 1, 1, 3]);
    assert_eq!(d.test.labels, vec![2, 0]);
    for i in 0..6 {
        assert_eq!(
            d.train.images[i * 3072..(i + 1) * 3072],
            chw_image(i)[..],
            "train {i}"
        );
    }
    assert_eq!(d.test.images[3072..], chw_image(21)[..]);
    // The checksums are not the official ones: recorded, not hidden.
    assert!(d.provenance.files.iter().all(|f| !f.verified));
}
