//! Each kind of bad input gives an error that says what is wrong, asserted by text.

mod common;

use std::path::Path;

use common::*;
use mixbench::data::registry;
use serde_json::json;

fn err(name: &str, params: serde_json::Value, dir: &Path, allow_unverified: bool) -> String {
    match registry::get(name)
        .unwrap()
        .load(&params, &opts(dir, allow_unverified))
    {
        Ok(_) => panic!("{name}: loading bad input succeeded"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "missing `{p}` in:\n{text}");
    }
}

fn write_cifar10(dir: &Path, patch: impl Fn(&str, &mut Vec<u8>)) {
    for (k, name) in CIFAR10_TRAIN_BATCHES
        .into_iter()
        .chain(["test_batch.bin"])
        .enumerate()
    {
        let mut b = cifar_records(k * 2, &[&[1], &[2]]);
        patch(name, &mut b);
        std::fs::write(dir.join(name), b).unwrap();
    }
}

#[test]
fn truncated_cifar_record() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path(), |n, b| {
        if n == "data_batch_2.bin" {
            b.truncate(b.len() - 100);
        }
    });
    let e = err("cifar10", json!({}), dir.path(), true);
    assert_has(
        &e,
        &[
            "data_batch_2.bin is 6,046 bytes",
            "not a whole number of 3,073-byte records",
            "truncated",
        ],
    );
}

#[test]
fn cifar_label_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path(), |n, b| {
        if n == "test_batch.bin" {
            b[3073] = 10;
        }
    });
    let e = err("cifar10", json!({}), dir.path(), true);
    assert_has(
        &e,
        &["test_batch.bin record 1 has label 10; labels must be 0..9"],
    );
}

#[test]
fn checksum_mismatch_names_file_expected_and_actual() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = tar_gz(&[("cifar-10-batches-bin/test_batch.bin", b"x")]);
    std::fs::write(dir.path().join("cifar-10-binary.tar.gz"), &tgz).unwrap();
    let e = err("cifar10", json!({}), dir.path(), false);
    let actual = mixbench::data::files::hash::sha256_hex(&tgz);
    assert_has(
        &e,
        &[
            "checksum mismatch",
            &dir.path()
                .join("cifar-10-binary.tar.gz")
                .display()
                .to_string(),
            "expected sha256 c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            &format!("got sha256 {actual}"),
            "expected md5 c32a1d4ab5d03f1284b67883e8d87530",
            "expected 170,052,171 bytes",
            "--allow-unverified",
        ],
    );
    // With allow_unverified the same archive gets past verification (and fails on content).
    let e = err("cifar10", json!({}), dir.path(), true);
    assert_has(
        &e,
        &["has no member `cifar-10-batches-bin/data_batch_1.bin`"],
    );
}

#[test]
fn missing_dataset_lists_places_files_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let e = err("cifar100", json!({}), dir.path(), false);
    assert_has(
        &e,
        &[
            "dataset `cifar100`",
            "was not found",
            &dir.path().join("cifar100").display().to_string(),
            "cifar-100-binary.tar.gz",
            "168,513,733 bytes",
            "md5 03b5dce01913d631647c71ecec9e9cb8 (Toronto CIFAR page)",
            "sha256 58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
            "cifar-100-binary/train.bin",
            "the same files without the `cifar-100-binary/` folder",
            "https://www.cs.toronto.edu/~kriz/cifar.html",
            "MIXBENCH_DATA",
        ],
    );
    let e = err("svhn", json!({}), dir.path(), false);
    assert_has(
        &e,
        &[
            "train_32x32.mat",
            "e26dedcc434d2e4c54c9b2d4a06d8373",
            "ufldl.stanford.edu",
        ],
    );
    let e = err("tiny_imagenet", json!({}), dir.path(), false);
    assert_has(
        &e,
        &[
            "tiny-imagenet-200.zip",
            "90528d7ca1a48142e341f4ef8d21d0de",
            "wnids.txt",
        ],
    );
    // MNIST is never missing: an empty data folder falls back to the copy in assets/mnist
    // (tests/data_readers.rs checks it); its status still lists what it expects.
    let st = registry::get("mnist")
        .unwrap()
        .status(&opts(dir.path(), false), false);
    let text = format!("{st:?}");
    assert_has(&text, &["t10k-labels-idx1-ubyte"]);
}

#[test]
fn missing_file_of_a_partial_layout() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path(), |_, _| {});
    std::fs::remove_file(dir.path().join("data_batch_3.bin")).unwrap();
    let e = err("cifar10", json!({}), dir.path(), true);
    assert_has(
        &e,
        &[
            "is incomplete",
            "missing",
            &dir.path().join("data_batch_3.bin").display().to_string(),
        ],
    );
}

#[test]
fn wrong_idx_magic_and_bad_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let px = vec![0u8; 784];
    let labels = mixbench::data::sources::idx::write_labels(&[1]);
    // Images and labels swapped: the image file carries the label magic.
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), &labels).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), &labels).unwrap();
    std::fs::write(
        dir.path().join("t10k-images-idx3-ubyte"),
        mixbench::data::sources::idx::write_images(1, 28, 28, &px),
    )
    .unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), &labels).unwrap();
    let e = err("mnist", json!({}), dir.path(), true);
    assert_has(
        &e,
        &["train-images-idx3-ubyte has idx magic 0x00000801, expected 0x00000803"],
    );
    std::fs::remove_file(dir.path().join("train-images-idx3-ubyte")).unwrap();
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), b"not gzip").unwrap();
    let e = err("mnist", json!({}), dir.path(), true);
    assert_has(&e, &["train-images-idx3-ubyte.gz is not a valid gzip file"]);
}

fn svhn_dir(train: Vec<u8>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train_32x32.mat"), train).unwrap();
    std::fs::write(dir.path().join("test_32x32.mat"), svhn_mat(0, &[1.0])).unwrap();
    dir
}

#[test]
fn wrong_mat_dimensions_class_and_labels() {
    let x = vec![0u8; 3072 * 2];
    let three_d = mat_file(&[
        mat_compressed_array("X", &[32, 32, 6], MatData::U8(&x)),
        mat_compressed_array("y", &[2, 1], MatData::F64(&[1.0, 2.0])),
    ]);
    let e = err("svhn", json!({}), svhn_dir(three_d).path(), true);
    assert_has(
        &e,
        &[
            "train_32x32.mat",
            "X has dimensions [32, 32, 6], expected [32, 32, 3, N]",
        ],
    );

    let xd: Vec<f64> = vec![0.0; 3072];
    let double_x = mat_file(&[
        mat_compressed_array("X", &[32, 32, 3, 1], MatData::F64(&xd)),
        mat_compressed_array("y", &[1, 1], MatData::F64(&[1.0])),
    ]);
    let e = err("svhn", json!({}), svhn_dir(double_x).path(), true);
    assert_has(&e, &["X has class double, expected uint8"]);

    let e = err(
        "svhn",
        json!({}),
        svhn_dir(svhn_mat(0, &[3.0, 11.0])).path(),
        true,
    );
    assert_has(
        &e,
        &["y[1] is 11; SVHN labels must be integers 1..10 (10 = digit 0)"],
    );

    let short_y = mat_file(&[
        mat_compressed_array("X", &[32, 32, 3, 2], MatData::U8(&x)),
        mat_compressed_array("y", &[1, 1], MatData::F64(&[1.0])),
    ]);
    let e = err("svhn", json!({}), svhn_dir(short_y).path(), true);
    assert_has(&e, &["y has dimensions [1, 1], expected [2, 1]"]);

    let no_y = mat_file(&[mat_compressed_array("X", &[32, 32, 3, 2], MatData::U8(&x))]);
    let e = err("svhn", json!({}), svhn_dir(no_y).path(), true);
    assert_has(&e, &["has no numeric array `y`", "X [32, 32, 3, 2]"]);

    let mut v73 = svhn_mat(0, &[1.0]);
    v73[..10].copy_from_slice(b"MATLAB 7.3");
    let e = err("svhn", json!({}), svhn_dir(v73).path(), true);
    assert_has(&e, &["MATLAB v7.3 (HDF5)"]);

    let mut cut = svhn_mat(0, &[1.0, 2.0]);
    cut.truncate(cut.len() / 2);
    let e = err("svhn", json!({}), svhn_dir(cut).path(), true);
    assert_has(&e, &["train_32x32.mat", "corrupt or truncated"]);

    let e = err(
        "svhn",
        json!({"splits": ["extra"]}),
        svhn_dir(svhn_mat(0, &[1.0])).path(),
        true,
    );
    assert_has(
        &e,
        &[
            "extra_32x32.mat is missing",
            "a93ce644f1a588dc4d68dda5feec44a7",
        ],
    );
}

#[test]
fn bad_zip_and_bad_tiny_contents() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tiny-imagenet-200.zip"),
        b"PK\x03\x04 garbage",
    )
    .unwrap();
    let e = err("tiny_imagenet", json!({}), dir.path(), true);
    assert_has(&e, &["tiny-imagenet-200.zip is not a valid zip archive"]);

    // A val annotation naming a class that has no training folder.
    let mut fx = tiny_fixture();
    let ann = fx
        .files
        .iter_mut()
        .find(|(r, _)| r.ends_with("val_annotations.txt"))
        .unwrap();
    ann.1 = b"val_0.JPEG\tn99\t0\t0\t1\t1\n".to_vec();
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &fx.files);
    let e = err("tiny_imagenet", json!({}), dir.path(), true);
    assert_has(&e, &["line 1", "wnid `n99`", "label out of range"]);

    // A JPEG of the wrong size, and bytes that are no JPEG at all.
    let mut fx = tiny_fixture();
    let small = jpeg(&image::DynamicImage::ImageRgb8(image::RgbImage::new(
        32, 32,
    )));
    fx.files
        .iter_mut()
        .find(|(r, _)| r.ends_with("n01_1.JPEG"))
        .unwrap()
        .1 = small;
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &fx.files);
    let e = err("tiny_imagenet", json!({"cache": false}), dir.path(), true);
    assert_has(
        &e,
        &["train/n01/images/n01_1.JPEG is 32x32, expected 64x64"],
    );
    let mut fx = tiny_fixture();
    fx.files
        .iter_mut()
        .find(|(r, _)| r.ends_with("val_2.JPEG"))
        .unwrap()
        .1 = b"nope".to_vec();
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &fx.files);
    let e = err("tiny_imagenet", json!({"cache": false}), dir.path(), true);
    assert_has(&e, &["val/images/val_2.JPEG is not a decodable JPEG"]);

    // wnids.txt that disagrees with the train folders.
    let mut fx = tiny_fixture();
    fx.files[0].1 = b"n01\nn02\n".to_vec();
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &fx.files);
    let e = err("tiny_imagenet", json!({}), dir.path(), true);
    assert_has(
        &e,
        &["wnids.txt lists 2 classes but train/ has image folders for 3"],
    );
}

#[test]
fn bad_params_are_rejected_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let e = err("svhn", json!({"splits": ["valid"]}), dir.path(), true);
    assert_has(
        &e,
        &[
            "dataset `svhn` params",
            "unknown variant `valid`",
            "train",
            "extra",
        ],
    );
    let e = err("cifar100", json!({"labels": "fine"}), dir.path(), true);
    assert_has(
        &e,
        &[
            "dataset `cifar100` params",
            "unknown field `labels`",
            "label",
        ],
    );
    let e = err("cifar10", json!({"x": 1}), dir.path(), true);
    assert_has(&e, &["dataset `cifar10` params", "unknown field `x`"]);
    let e = err("digits", json!({"test_size": 5}), dir.path(), true);
    assert_has(&e, &["test_size 5 must be between 10 and 1787"]);
}
