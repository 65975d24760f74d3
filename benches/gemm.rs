//! The matrix product behind every linear layer: mixbench's exact `gemm` (fixed k-chunks, the
//! longer side split between threads) next to the `gemm` crate's own thread split on the same
//! chunks (what `gemm` did before 2026-12-04), and one thread, on the App. G MLP's largest
//! product ([256, 1024] × [1024, 1024], batch 256). Both threaded variants give the same bits;
//! only their speed differs. Run: `cargo bench --bench gemm`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mixbench::kernels::cpu_float::{gemm, k_chunks};

fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7 + seed) % 13) as f32 * 0.1 - 0.6)
        .collect()
}

/// The `gemm` crate called as mixbench's `gemm` did before: one call per k-chunk, the crate's
/// own parallelism over `threads` threads.
fn crate_parallel(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    threads: usize,
) {
    for (i, (k0, k1)) in k_chunks(k).enumerate() {
        // SAFETY: a [m, k], b [k, n] and c [m, n] are row-major and fully allocated.
        unsafe {
            gemm::gemm(
                m,
                n,
                k1 - k0,
                c.as_mut_ptr(),
                1,
                n as isize,
                i > 0,
                a.as_ptr().add(k0),
                1,
                k as isize,
                b.as_ptr().add(k0 * n),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(threads),
            )
        }
    }
}

fn bench(c: &mut Criterion) {
    mixbench::threads::restart_with_pinned_threads();
    let (m, n, k) = (256, 1024, 1024);
    let (a, b) = (values(m * k, 1), values(k * n, 2));
    let mut out = vec![0f32; m * n];
    let threads = candle_core::utils::get_num_threads();
    let mut g = c.benchmark_group("gemm_256x1024x1024");
    g.throughput(Throughput::Elements((2 * m * n * k) as u64));
    let ours = |out: &mut [f32], threads: bool| {
        // SAFETY: as above.
        unsafe {
            gemm(
                (m, n, k),
                (out.as_mut_ptr(), n, 1),
                false,
                (a.as_ptr(), k, 1),
                (b.as_ptr(), n, 1),
                threads,
            )
        }
    };
    g.bench_function(format!("mixbench_{threads}_threads"), |bench| {
        bench.iter(|| ours(black_box(&mut out), true))
    });
    g.bench_function(format!("gemm_crate_rayon_{threads}_threads"), |bench| {
        bench.iter(|| crate_parallel(m, n, k, &a, &b, black_box(&mut out), threads))
    });
    g.bench_function("mixbench_1_thread", |bench| {
        bench.iter(|| ours(black_box(&mut out), false))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
