//! The element types the CPU kernels run on (f32 for training, f64 for the reference checks),
//! and per-thread scratch buffers they reuse across calls.

use std::cell::RefCell;
use std::ops::{Add, AddAssign, Div, Mul, Sub, SubAssign};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// Scratch slots per thread: a kernel may hold this many buffers at once.
const SLOTS: usize = 3;

thread_local! {
    static F32: [RefCell<Vec<f32>>; SLOTS] = Default::default();
    static F64: [RefCell<Vec<f64>>; SLOTS] = Default::default();
}

/// f32 or f64, with arithmetic in that type and reusable per-thread scratch space.
pub trait CpuFloat:
    WithDType
    + Default
    + AddAssign
    + SubAssign
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + PartialOrd
{
    /// Runs `f` on this thread's scratch buffer `slot` (0..3), grown to at least `len`.
    ///
    /// The buffer keeps whatever the previous user left in it: callers overwrite what they read.
    /// Reusing it means a step's largest temporaries (convolution column slabs, tens of MB at
    /// full width) are not faulted in from the kernel again on every call.
    fn with_scratch<R>(slot: usize, len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;

    /// The slice inside `s` if it holds this type.
    fn slice(s: &CpuStorage) -> Option<&[Self]>;

    /// Wraps a vector of this type as storage.
    fn storage(v: Vec<Self>) -> CpuStorage;

    /// The same values as f32, where this type is f32 (for loops written for f32 alone).
    fn as_f32(s: &[Self]) -> Option<&[f32]>;

    /// `1 / sqrt(self)` rounded in this type at each step, as candle's `sqrt()?.recip()`.
    fn rsqrt_stepwise(self) -> Self;

    /// The square root in this type.
    fn sqrt_t(self) -> Self;

    /// `self * b + c` with one rounding (IEEE fused multiply-add, exact on every CPU).
    fn fma(self, b: Self, c: Self) -> Self;
}

/// Where every scratch slice starts: a 64-byte cache line. Panels packed into scratch are read
/// in whole 64-byte vectors, and on an Intel Xeon (AVX-512) the panel tile ran 10–15% slower
/// on panels 4 or 16 bytes off a line (each vector split over two lines) than on aligned ones.
const SCRATCH_ALIGN: usize = 64;

macro_rules! cpu_float {
    ($t:ty, $tls:ident, $variant:ident, $s:ident => $as_f32:expr) => {
        impl CpuFloat for $t {
            fn with_scratch<R>(slot: usize, len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                $tls.with(|slots| {
                    let mut buf = slots[slot].borrow_mut();
                    // Room to start the slice on a cache line (see SCRATCH_ALIGN).
                    let room = len + SCRATCH_ALIGN / std::mem::size_of::<Self>();
                    if buf.len() < room {
                        buf.resize(room, 0.0);
                    }
                    let start = buf.as_ptr().align_offset(SCRATCH_ALIGN);
                    f(&mut buf[start..start + len])
                })
            }

            fn slice(s: &CpuStorage) -> Option<&[Self]> {
                match s {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }

            fn storage(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$variant(v)
            }

            fn as_f32($s: &[Self]) -> Option<&[f32]> {
                $as_f32
            }

            fn rsqrt_stepwise(self) -> Self {
                1.0 / self.sqrt()
            }

            fn sqrt_t(self) -> Self {
                self.sqrt()
            }

            fn fma(self, b: Self, c: Self) -> Self {
                self.mul_add(b, c)
            }
        }
    };
}

cpu_float!(f32, F32, F32, s => Some(s));
cpu_float!(f64, F64, F64, _s => None);

/// Whether `t` can go through these kernels: a CPU tensor of f32 or f64 (other devices and
/// types keep candle's own ops).
pub fn supported(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), candle_core::DType::F32 | candle_core::DType::F64)
}

/// Whether no value of `v` is Inf or NaN (the factor that would meet a skipped padding zero).
pub fn all_finite(v: &[f32]) -> bool {
    // The largest exponent field of each chunk, a loop the compiler vectorizes (a
    // short-circuiting `all` it does not).
    let exponent = |c: &[f32]| {
        c.iter()
            .map(|x| x.to_bits() & 0x7f80_0000)
            .max()
            .unwrap_or(0)
    };
    v.par_chunks(1 << 14).all(|c| exponent(c) != 0x7f80_0000)
}

/// The bit patterns of `t`'s values (f32 or f64, any shape), for tests that compare kernels
/// with candle's ops bit for bit.
#[cfg(test)]
pub fn tensor_bits(t: &Tensor) -> Vec<u64> {
    let t = t.flatten_all().unwrap();
    match t.dtype() {
        candle_core::DType::F32 => t
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        _ => t
            .to_vec1::<f64>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect(),
    }
}

/// The contiguous data of `s` under layout `l`, checked to have `dims`.
pub fn contiguous<'a, T: CpuFloat>(
    op: &'static str,
    s: &'a CpuStorage,
    l: &Layout,
    dims: &[usize],
) -> Result<&'a [T]> {
    if l.shape().dims() != dims {
        candle_core::bail!("{op}: got shape {:?}, expected {dims:?}", l.shape());
    }
    let Some((a, b)) = l.contiguous_offsets() else {
        return Err(candle_core::Error::RequiresContiguous { op }.bt());
    };
    match T::slice(s) {
        Some(v) => Ok(&v[a..b]),
        None => Err(candle_core::Error::UnsupportedDTypeForOp(s.dtype(), op).bt()),
    }
}

/// Runs kernel `f32` or `f64` (by the first operand's type) on two contiguous operands checked
/// against their expected dims; the result has shape `out`.
pub fn dispatch2(
    op: &'static str,
    (s1, l1, d1): (&CpuStorage, &Layout, &[usize]),
    (s2, l2, d2): (&CpuStorage, &Layout, &[usize]),
    out: Shape,
    f32: impl Fn(&[f32], &[f32]) -> Vec<f32>,
    f64: impl Fn(&[f64], &[f64]) -> Vec<f64>,
) -> Result<(CpuStorage, Shape)> {
    let v = match s1 {
        CpuStorage::F32(_) => {
            let (a, b) = (contiguous(op, s1, l1, d1)?, contiguous(op, s2, l2, d2)?);
            f32::storage(f32(a, b))
        }
        CpuStorage::F64(_) => {
            let (a, b) = (contiguous(op, s1, l1, d1)?, contiguous(op, s2, l2, d2)?);
            f64::storage(f64(a, b))
        }
        other => return Err(candle_core::Error::UnsupportedDTypeForOp(other.dtype(), op).bt()),
    };
    Ok((v, out))
}

/// The instruction sets the CPU kernels are compiled for, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelLevel {
    /// Baseline x86-64 (SSE2).
    Baseline,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512F (with AVX2 and FMA).
    Avx512,
}

impl KernelLevel {
    /// The level's name as `MIXBENCH_CPU_KERNELS` spells it.
    pub fn name(self) -> &'static str {
        match self {
            KernelLevel::Baseline => "baseline",
            KernelLevel::Avx2 => "avx2",
            KernelLevel::Avx512 => "avx512",
        }
    }
}

/// The widest level this CPU has.
pub fn detected_kernel_level() -> KernelLevel {
    static DETECTED: std::sync::OnceLock<KernelLevel> = std::sync::OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let v3 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            if v3 && std::arch::is_x86_feature_detected!("avx512f") {
                return KernelLevel::Avx512;
            }
            if v3 {
                return KernelLevel::Avx2;
            }
        }
        KernelLevel::Baseline
    })
}

/// `len` values built in parallel chunks of `chunk` (the last shorter): the thread that runs
/// `fill(chunk index, chunk)` first zeroes that chunk, while it is about to be in its cache.
/// `vec![0; len]` instead zeroes everything on the calling thread while the others wait.
pub fn par_filled<T: Copy + Default + Send + Sync>(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [T]) + Sync + Send,
) -> Vec<T> {
    let init = |i, part: &mut [std::mem::MaybeUninit<T>]| {
        for x in part.iter_mut() {
            x.write(T::default());
        }
        // SAFETY: every element of `part` was initialized just above, and MaybeUninit<T> has
        // T's layout.
        let part = unsafe { &mut *(part as *mut [std::mem::MaybeUninit<T>] as *mut [T]) };
        fill(i, part);
    };
    // SAFETY: `init` writes each chunk in full with T::default() before `fill` sees it.
    unsafe { par_init(len, chunk, init) }
}

/// `len` values built in parallel chunks of `chunk` (the last shorter), each written in order
/// by `fill(chunk index, sink)` and never zeroed first. Panics unless `fill` pushes exactly
/// its chunk's length.
pub fn par_pushed<T: Send + Sync>(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut Sink<'_, T>) + Sync + Send,
) -> Vec<T> {
    // SAFETY: each chunk's sink wrote all of its elements, or the assert panics (and
    // par_init never exposes the vector).
    unsafe {
        par_init(len, chunk, |i, part| {
            let want = part.len();
            let mut sink = Sink { buf: part, at: 0 };
            fill(i, &mut sink);
            assert_eq!(sink.at, want, "chunk {i} filled in part");
        })
    }
}

/// The vector of `len` values whose chunks of `chunk` (the last shorter) `init(chunk index,
/// chunk)` writes in parallel; nothing is written before.
///
/// # Safety
/// `init` initializes every element of every chunk it returns from (a panic in it leaves the
/// vector unexposed and empty).
pub unsafe fn par_init<T: Send>(
    len: usize,
    chunk: usize,
    init: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) + Sync + Send,
) -> Vec<T> {
    // SAFETY: the caller's contract.
    unsafe { par_init_reserving(len, 0, chunk, init) }
}

/// [`par_init`] with room for `spare` more values, so that the caller can append without
/// moving the vector.
///
/// # Safety
/// As [`par_init`].
pub unsafe fn par_init_reserving<T: Send>(
    len: usize,
    spare: usize,
    chunk: usize,
    init: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) + Sync + Send,
) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len + spare);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, part)| init(i, part));
    // SAFETY: the chunks cover 0..len, and the caller's init wrote each of them.
    unsafe { v.set_len(len) };
    v
}

/// Values that start on a cache line: a vector with a lead of unused values before them.
#[derive(Debug)]
pub struct LineAligned<T> {
    buf: Vec<T>,
    start: usize,
}

impl<T> std::ops::Deref for LineAligned<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.buf[self.start..]
    }
}

/// [`par_init`] into values that start on a 64-byte cache line (for sources the panel tile
/// reads in place in whole vectors; see [`SCRATCH_ALIGN`]).
///
/// # Safety
/// As [`par_init`].
pub unsafe fn par_init_aligned<T: Send + Default + Copy>(
    len: usize,
    chunk: usize,
    init: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) + Sync + Send,
) -> LineAligned<T> {
    let mut buf: Vec<T> = Vec::with_capacity(len + SCRATCH_ALIGN / std::mem::size_of::<T>());
    let start = buf.as_ptr().align_offset(SCRATCH_ALIGN);
    let spare = buf.spare_capacity_mut();
    for x in &mut spare[..start] {
        x.write(T::default());
    }
    spare[start..start + len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, part)| init(i, part));
    // SAFETY: the lead is written above, and the chunks cover the rest, which the caller's
    // init wrote.
    unsafe { buf.set_len(start + len) };
    LineAligned { buf, start }
}

/// Where [`par_pushed`]'s `fill` writes its chunk, front to back.
pub struct Sink<'a, T> {
    buf: &'a mut [std::mem::MaybeUninit<T>],
    at: usize,
}

impl<T> Sink<'_, T> {
    /// Writes the chunk's next element (panics past its end).
    #[inline(always)]
    pub fn push(&mut self, v: T) {
        self.buf[self.at].write(v);
        self.at += 1;
    }
}

/// The level the kernels run at: the CPU's widest, capped by `MIXBENCH_CPU_KERNELS=baseline|avx2`
/// (read once), so tests can run every copy a CPU has; results must not change with it.
pub fn kernel_level() -> KernelLevel {
    static LEVEL: std::sync::OnceLock<KernelLevel> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = match std::env::var("MIXBENCH_CPU_KERNELS").ok().as_deref() {
            Some("baseline") => KernelLevel::Baseline,
            Some("avx2") => KernelLevel::Avx2,
            _ => KernelLevel::Avx512,
        };
        detected_kernel_level().min(cap)
    })
}

/// Defines `fn name<T: CpuFloat>(…) -> R` whose body is compiled three times, for AVX-512,
/// AVX2 + FMA and the baseline, and picks [`kernel_level`]'s copy at each call; the crate
/// itself stays built for any x86-64.
///
/// Results do not depend on the copy that runs: Rust never fuses a multiply and an add on its
/// own (only an explicit `mul_add` does, which is exact IEEE fma on every copy) and the
/// kernels' sums use explicit lanes, so only the speed changes.
macro_rules! simd_kernel {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident<T: CpuFloat>($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments, clippy::unused_unit)]
        $vis fn $name<T: $crate::kernels::cpu_float::CpuFloat>($($arg: $ty),*) -> $ret {
            #[inline(always)]
            #[allow(clippy::too_many_arguments, clippy::unused_unit)]
            fn body<T: $crate::kernels::cpu_float::CpuFloat>($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                use $crate::kernels::cpu_float::{KernelLevel, kernel_level};
                #[target_feature(enable = "avx512f,avx2,fma")]
                #[allow(clippy::too_many_arguments, clippy::unused_unit)]
                unsafe fn v4<T: $crate::kernels::cpu_float::CpuFloat>($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments, clippy::unused_unit)]
                unsafe fn v3<T: $crate::kernels::cpu_float::CpuFloat>($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                let level = kernel_level();
                if level == KernelLevel::Avx512 {
                    // SAFETY: kernel_level never exceeds what the CPU has.
                    return unsafe { v4($($arg),*) };
                }
                if level == KernelLevel::Avx2 {
                    // SAFETY: kernel_level never exceeds what the CPU has.
                    return unsafe { v3($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use simd_kernel;

/// The longest reduction one gemm call sums: longer ones are split into near-equal chunks of at
/// most this many terms, in order, each added to the output.
///
/// The `gemm` crate picks its k-block from the L1 size and the microkernel's tile shape (512 on
/// 32 KiB L1s, 1024 for AVX2 on 48 KiB ones), and it never makes one smaller than
/// `min(k, 512)`; so a call with k ≤ 512 is one block on every CPU, and within a block every
/// output element is one FMA chain from zero in k order, whatever the SIMD width or thread count.
pub const K_BLOCK: usize = 512;

/// The `gemm` crate sums products with at most this many outputs in SIMD-width lanes when k is
/// contiguous in both operands (and those with one row or column, or k ≤ 2, in lanes or
/// without FMA), so they would differ between AVX2 and AVX-512 machines: [`gemm`] keeps them
/// off those paths.
pub const SMALL_OUTPUTS: usize = 256;

/// The chunks `[start, end)` that a reduction of length `k` is summed in: `ceil(k / K_BLOCK)`
/// near-equal chunks, the longer ones first (the `gemm` crate's own evening of k-blocks).
pub fn k_chunks(k: usize) -> impl Iterator<Item = (usize, usize)> {
    let count = k.div_ceil(K_BLOCK).max(1);
    let len = k.div_ceil(count);
    (0..count).map(move |c| (c * len, ((c + 1) * len).min(k)))
}

/// `dst` (m×n) = `lhs` · `rhs`, or += when `accumulate`; each matrix is given by its pointer
/// and its row and column strides; on candle's thread count when `threads`, else on this
/// thread only.
///
/// The result is bit-identical on every x86-64 CPU with FMA: for each output element and each
/// chunk of [`k_chunks`], `acc` is an FMA chain from zero over the chunk's terms in order, and the
/// chunk is added to the output with one rounding (`out = acc` for the first chunk when not
/// accumulating). `tests::gemm_matches_its_scalar_specification` checks exactly that.
///
/// # Safety
/// Every strided element of the three matrices must lie inside its allocation, and `dst`
/// must not overlap the operands.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm<T: CpuFloat>(
    (m, n, k): (usize, usize, usize),
    dst: (*mut T, usize, usize),
    accumulate: bool,
    lhs: (*const T, usize, usize),
    rhs: (*const T, usize, usize),
    threads: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if m == 1 || n == 1 || k <= 2 || (m * n <= SMALL_OUTPUTS && lhs.2 == 1 && rhs.1 == 1) {
        // SAFETY: forwarded from the caller.
        unsafe { small_gemm((m, n, k), dst, accumulate, lhs, rhs) };
        return;
    }
    let pieces = parallel_pieces(m, n, k, threads);
    if pieces <= 1 {
        // SAFETY: forwarded from the caller.
        unsafe { crate_gemm((m, n, k), dst, accumulate, lhs, rhs) };
        return;
    }
    // Each thread takes a contiguous range of the longer side. Only which thread computes an
    // output changes, not how: every piece still has more than SMALL_OUTPUTS outputs and at
    // least 16 rows and columns, so it takes the same `gemm` crate path as the whole.
    let split_cols = n >= m;
    let len = if split_cols { n } else { m };
    let bound = |p: usize| (len * p / pieces) / 16 * 16;
    let (d, l, r) = (dst.0 as usize, lhs.0 as usize, rhs.0 as usize);
    let size = std::mem::size_of::<T>();
    (0..pieces).into_par_iter().for_each(|p| {
        let (a, b) = (bound(p), if p + 1 == pieces { len } else { bound(p + 1) });
        let (dst, lhs, rhs, dims) = if split_cols {
            (
                ((d + a * dst.2 * size) as *mut T, dst.1, dst.2),
                (l as *const T, lhs.1, lhs.2),
                ((r + a * rhs.2 * size) as *const T, rhs.1, rhs.2),
                (m, b - a, k),
            )
        } else {
            (
                ((d + a * dst.1 * size) as *mut T, dst.1, dst.2),
                ((l + a * lhs.1 * size) as *const T, lhs.1, lhs.2),
                (r as *const T, rhs.1, rhs.2),
                (b - a, n, k),
            )
        };
        // SAFETY: the piece is a sub-matrix of the caller's (rows or columns a..b of dst and
        // of the operand they come from); pieces write disjoint elements of dst.
        unsafe { crate_gemm(dims, dst, accumulate, lhs, rhs) };
    });
}

/// Work (m·n·k) below which one thread does the whole product: below it, waking a second
/// thread costs more than it saves.
const PARALLEL_WORK: usize = 1 << 21;

/// How many threads share a product: candle's thread count when `threads` and the product is
/// large enough, as long as every piece keeps at least 16 of the split side and more than
/// [`SMALL_OUTPUTS`] outputs.
fn parallel_pieces(m: usize, n: usize, k: usize, threads: bool) -> usize {
    let t = candle_core::utils::get_num_threads();
    if !threads || t < 2 || m * n * k < PARALLEL_WORK || m < 16 || n < 16 {
        return 1;
    }
    let (len, other) = if n >= m { (n, m) } else { (m, n) };
    let mut pieces = t.min(len / 32);
    while pieces > 1 && (len / pieces / 16 * 16) * other <= SMALL_OUTPUTS {
        pieces -= 1;
    }
    pieces.max(1)
}

/// The `gemm` crate on one thread, one call per chunk of [`k_chunks`].
///
/// # Safety
/// As [`gemm`].
unsafe fn crate_gemm<T: CpuFloat>(
    (m, n, k): (usize, usize, usize),
    dst: (*mut T, usize, usize),
    accumulate: bool,
    lhs: (*const T, usize, usize),
    rhs: (*const T, usize, usize),
) {
    for (i, (k0, k1)) in k_chunks(k).enumerate() {
        // SAFETY: forwarded from the caller; the chunk's operands are sub-matrices of the
        // given ones (columns k0..k1 of lhs, rows k0..k1 of rhs), and gemm reads only the
        // given strided elements.
        unsafe {
            gemm::gemm(
                m,
                n,
                k1 - k0,
                dst.0,
                dst.2 as isize,
                dst.1 as isize,
                accumulate || i > 0,
                lhs.0.add(k0 * lhs.2),
                lhs.2 as isize,
                lhs.1 as isize,
                rhs.0.add(k0 * rhs.1),
                rhs.2 as isize,
                rhs.1 as isize,
                T::one(),
                T::one(),
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    }
}

/// Output columns and rows one pass of the small kernel keeps in registers (independent FMA
/// chains side by side, so their latency overlaps).
const LANES: usize = 16;
const ROWS: usize = 4;

simd_kernel! {
    /// [`gemm`]'s specification as plain loops, for the shapes kept off the `gemm` crate:
    /// `rhs_t` is rhs copied k×n with n contiguous, so up to [`LANES`] outputs of a row run
    /// their FMA chains side by side (each still one chain over k in order).
    fn small_gemm_body<T: CpuFloat>(
        dims: (usize, usize, usize),
        dst: &mut [T],
        dst_strides: (usize, usize),
        accumulate: bool,
        lhs: &[T],
        lhs_strides: (usize, usize),
        rhs_t: &[T],
    ) -> () {
        let (m, n, k) = dims;
        let ((drs, dcs), (lrs, lcs)) = (dst_strides, lhs_strides);
        for j0 in (0..n).step_by(LANES) {
            let w = (n - j0).min(LANES);
            for i0 in (0..m).step_by(ROWS) {
                let h = (m - i0).min(ROWS);
                let mut out = [[T::zero(); LANES]; ROWS];
                if accumulate {
                    for (r, o) in out[..h].iter_mut().enumerate() {
                        for (jj, x) in o[..w].iter_mut().enumerate() {
                            *x = dst[(i0 + r) * drs + (j0 + jj) * dcs];
                        }
                    }
                }
                for (c, (k0, k1)) in k_chunks(k).enumerate() {
                    let mut acc = [[T::zero(); LANES]; ROWS];
                    for kk in k0..k1 {
                        let row = &rhs_t[kk * n + j0..kk * n + j0 + w];
                        for (r, ar) in acc[..h].iter_mut().enumerate() {
                            let a = lhs[(i0 + r) * lrs + kk * lcs];
                            for (x, b) in ar[..w].iter_mut().zip(row) {
                                *x = a.fma(*b, *x);
                            }
                        }
                    }
                    for (o, ar) in out[..h].iter_mut().zip(&acc[..h]) {
                        for (x, y) in o[..w].iter_mut().zip(&ar[..w]) {
                            *x = if c == 0 && !accumulate { *y } else { *x + *y };
                        }
                    }
                }
                for (r, o) in out[..h].iter().enumerate() {
                    for (jj, x) in o[..w].iter().enumerate() {
                        dst[(i0 + r) * drs + (j0 + jj) * dcs] = *x;
                    }
                }
            }
        }
    }
}

/// The number of elements from the first to the last of an r×c strided matrix.
fn extent(r: usize, c: usize, rs: usize, cs: usize) -> usize {
    if r == 0 || c == 0 {
        0
    } else {
        (r - 1) * rs + (c - 1) * cs + 1
    }
}

/// [`small_gemm_body`] on the raw matrices.
///
/// # Safety
/// As [`gemm`].
unsafe fn small_gemm<T: CpuFloat>(
    (m, n, k): (usize, usize, usize),
    dst: (*mut T, usize, usize),
    accumulate: bool,
    lhs: (*const T, usize, usize),
    rhs: (*const T, usize, usize),
) {
    let mut rhs_t = vec![T::zero(); k * n];
    for kk in 0..k {
        for j in 0..n {
            // SAFETY: (kk, j) is inside rhs by the caller's contract.
            rhs_t[kk * n + j] = unsafe { *rhs.0.add(kk * rhs.1 + j * rhs.2) };
        }
    }
    // SAFETY: by the caller's contract every strided element lies in its allocation, so the
    // spans from the first to the last element do too; dst overlaps neither operand.
    let (d, l) = unsafe {
        (
            std::slice::from_raw_parts_mut(dst.0, extent(m, n, dst.1, dst.2)),
            std::slice::from_raw_parts(lhs.0, extent(m, k, lhs.1, lhs.2)),
        )
    };
    small_gemm_body(
        (m, n, k),
        d,
        (dst.1, dst.2),
        accumulate,
        l,
        (lhs.1, lhs.2),
        &rhs_t,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values with mixed signs and magnitudes (so rounding order matters).
    fn values<T: CpuFloat>(len: usize, seed: u64) -> Vec<T> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                T::from_f64((u - 0.5) * 2f64.powi((x % 7) as i32 - 3))
            })
            .collect()
    }

    /// The specification, written independently of the kernel: per output and per chunk of
    /// `k_chunks`, an FMA chain from zero, added to the output with one rounding.
    #[allow(clippy::too_many_arguments)]
    fn spec<T: CpuFloat>(
        (m, n, k): (usize, usize, usize),
        dst: &mut [T],
        d: (usize, usize),
        accumulate: bool,
        lhs: &[T],
        l: (usize, usize),
        rhs: &[T],
        r: (usize, usize),
    ) {
        let count = k.div_ceil(K_BLOCK).max(1);
        let len = k.div_ceil(count).max(1);
        for i in 0..m {
            for j in 0..n {
                let mut out = if accumulate {
                    dst[i * d.0 + j * d.1]
                } else {
                    T::zero()
                };
                let mut k0 = 0;
                while k0 < k {
                    let k1 = (k0 + len).min(k);
                    let mut acc = T::zero();
                    for kk in k0..k1 {
                        acc = lhs[i * l.0 + kk * l.1].fma(rhs[kk * r.0 + j * r.1], acc);
                    }
                    out = if k0 == 0 && !accumulate {
                        acc
                    } else {
                        out + acc
                    };
                    k0 = k1;
                }
                dst[i * d.0 + j * d.1] = out;
            }
        }
    }

    fn check<T: CpuFloat + std::fmt::Debug>(m: usize, n: usize, k: usize) {
        // Row-major and transposed layouts of each operand and of the output.
        for (lt, rt, dt) in [
            (false, false, false),
            (true, false, true),
            (false, true, false),
            (true, true, true),
        ] {
            for accumulate in [false, true] {
                for threads in [false, true] {
                    let l = if lt { (1, m) } else { (k, 1) };
                    let r = if rt { (1, k) } else { (n, 1) };
                    let d = if dt { (1, m) } else { (n, 1) };
                    let lhs = values::<T>(m * k, (m * 31 + k) as u64);
                    let rhs = values::<T>(k * n, (n * 17 + k) as u64);
                    let init = values::<T>(m * n, 99);
                    let mut want = init.clone();
                    spec((m, n, k), &mut want, d, accumulate, &lhs, l, &rhs, r);
                    let mut got = init.clone();
                    // SAFETY: every strided index is < len of its vector by construction.
                    unsafe {
                        gemm(
                            (m, n, k),
                            (got.as_mut_ptr(), d.0, d.1),
                            accumulate,
                            (lhs.as_ptr(), l.0, l.1),
                            (rhs.as_ptr(), r.0, r.1),
                            threads,
                        )
                    };
                    let differ = got
                        .iter()
                        .zip(&want)
                        .filter(|(a, b)| a.to_f64().to_bits() != b.to_f64().to_bits())
                        .count();
                    assert_eq!(
                        differ, 0,
                        "{m}×{n}×{k} lt={lt} rt={rt} dt={dt} acc={accumulate} threads={threads}: {differ} outputs differ from the specification"
                    );
                }
            }
        }
    }

    /// The wrapper's result is the scalar specification bit for bit, on the `gemm` crate's
    /// blocked path (k split into chunks) and on the shapes it would sum in SIMD lanes: so it
    /// cannot depend on the CPU's SIMD width, cache sizes or thread count.
    #[test]
    fn gemm_matches_its_scalar_specification() {
        for (m, n, k) in [
            (33, 40, 300),
            (70, 90, 513),
            (64, 64, 1025),
            (17, 300, 1500),
            (96, 20, 2048),
            (5, 7, 100),
            (16, 16, 700),
            (1, 300, 700),
            (300, 1, 700),
            (20, 20, 2),
            (40, 30, 1),
        ] {
            check::<f32>(m, n, k);
            check::<f64>(m, n, k);
        }
    }

    /// Products large enough are shared between threads (so the specification test above runs
    /// split products on a machine with two or more threads), and every piece keeps at least
    /// 16 of the split side and more than SMALL_OUTPUTS outputs.
    #[test]
    fn parallel_pieces_keep_every_piece_on_the_blocked_path() {
        let t = candle_core::utils::get_num_threads();
        assert_eq!(parallel_pieces(70, 90, 513, false), 1);
        assert_eq!(parallel_pieces(16, 16, 700, true), 1, "below PARALLEL_WORK");
        assert_eq!(
            parallel_pieces(8, 4096, 1024, true),
            1,
            "fewer than 16 rows"
        );
        for (m, n, k) in [
            (70, 90, 513),
            (64, 64, 1025),
            (17, 300, 1500),
            (96, 20, 2048),
        ] {
            let p = parallel_pieces(m, n, k, true);
            assert!(
                p <= t && (t < 2 || p >= 2),
                "{m}×{n}×{k}: {p} pieces on {t} threads"
            );
        }
        for (m, n, k) in [
            (256, 1024, 1024),
            (20, 40, 4096),
            (1000, 16, 512),
            (17, 33, 8192),
        ] {
            let p = parallel_pieces(m, n, k, true);
            let (len, other) = if n >= m { (n, m) } else { (m, n) };
            let smallest = len / p / 16 * 16;
            assert!(
                p == 1 || (smallest >= 16 && smallest * other > SMALL_OUTPUTS),
                "{m}×{n}×{k}: {p}"
            );
        }
    }

    #[test]
    fn k_chunks_cover_k_in_order_with_at_most_k_block_terms() {
        for k in [0, 1, 511, 512, 513, 1024, 1025, 5000] {
            let c: Vec<_> = k_chunks(k).collect();
            assert_eq!(c.first().map(|x| x.0), Some(0));
            assert_eq!(c.last().map(|x| x.1), Some(k));
            assert!(c.windows(2).all(|w| w[0].1 == w[1].0));
            assert!(c.iter().all(|(a, b)| b - a <= K_BLOCK));
        }
        assert_eq!(
            k_chunks(1025).collect::<Vec<_>>(),
            vec![(0, 342), (342, 684), (684, 1025)]
        );
    }

    /// Both builders give every chunk to its filler once, with its index: `par_filled`
    /// zeroed first, `par_pushed` in push order; a filler that pushes too few is caught.
    #[test]
    fn parallel_builders_fill_every_chunk_once() {
        let filled = par_filled(10, 4, |i, c: &mut [u32]| {
            assert!(c.iter().all(|&v| v == 0));
            c.iter_mut()
                .enumerate()
                .for_each(|(j, v)| *v += (10 * i + j) as u32);
        });
        assert_eq!(filled, vec![0, 1, 2, 3, 10, 11, 12, 13, 20, 21]);
        let pushed = par_pushed(10, 4, |i, sink| {
            let n = if i == 2 { 2 } else { 4 };
            (0..n).for_each(|j| sink.push((10 * i + j) as u32));
        });
        assert_eq!(pushed, filled);
        let short = std::panic::catch_unwind(|| par_pushed(10, 4, |_, sink| sink.push(1u32)));
        assert!(short.is_err());
    }
}
