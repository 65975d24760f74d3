//! Data pipeline speed: parsing CIFAR-format records and assembling augmented batches.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mixbench::data::Split;
use mixbench::data::batch::{ImageShape, Preprocessing, fill_batch};
use mixbench::data::sources::cifar::{IMAGE_BYTES, RecordFormat, parse_records};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// 50,000 CIFAR-10 records (the size of the training set), pseudo-random content.
fn cifar_fixture() -> Vec<u8> {
    let rec = 1 + IMAGE_BYTES;
    let mut bytes = vec![0u8; 50_000 * rec];
    let mut x: u32 = 12345;
    for (i, r) in bytes.chunks_exact_mut(rec).enumerate() {
        r[0] = (i % 10) as u8;
        for b in &mut r[1..] {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *b = (x >> 24) as u8;
        }
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let bytes = cifar_fixture();
    let mut g = c.benchmark_group("data");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("parse_cifar10_50k_records", |b| {
        b.iter(|| {
            let mut s = Split {
                images: Vec::new(),
                labels: Vec::new(),
            };
            parse_records(
                "cifar10",
                "bench",
                black_box(&bytes),
                RecordFormat::CIFAR10,
                &mut s,
            )
            .unwrap();
            black_box(s.labels.len())
        })
    });

    let mut split = Split {
        images: Vec::new(),
        labels: Vec::new(),
    };
    parse_records(
        "cifar10",
        "bench",
        &bytes[..1000 * (1 + IMAGE_BYTES)],
        RecordFormat::CIFAR10,
        &mut split,
    )
    .unwrap();
    let pre = Preprocessing {
        mean: vec![0.49, 0.48, 0.45],
        std: vec![0.25, 0.24, 0.26],
        crop_padding: 2,
        hflip: true,
    };
    let shape = ImageShape { c: 3, h: 32, w: 32 };
    let indices: Vec<usize> = (0..100).map(|i| (i * 7) % 1000).collect();
    let mut out = vec![0f32; 100 * shape.len()];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    g.sample_size(30);
    g.bench_function("fill_batch_100x3x32x32_crop_flip", |b| {
        b.iter(|| {
            fill_batch(&split, shape, &indices, &pre, Some(&mut rng), &mut out);
            black_box(out[0])
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
