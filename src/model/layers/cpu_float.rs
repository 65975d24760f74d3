//! The element types the CPU kernels run on (f32 for training, f64 for the reference checks),
//! and per-thread scratch buffers they reuse across calls.

use std::cell::RefCell;
use std::ops::{Add, AddAssign, Div, Mul, Sub, SubAssign};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Result, Shape, WithDType};

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

    /// `1 / sqrt(self)` rounded in this type at each step, as candle's `sqrt()?.recip()`.
    fn rsqrt_stepwise(self) -> Self;

    /// The square root in this type.
    fn sqrt_t(self) -> Self;
}

macro_rules! cpu_float {
    ($t:ty, $tls:ident, $variant:ident) => {
        impl CpuFloat for $t {
            fn with_scratch<R>(slot: usize, len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                $tls.with(|slots| {
                    let mut buf = slots[slot].borrow_mut();
                    if buf.len() < len {
                        buf.resize(len, 0.0);
                    }
                    f(&mut buf[..len])
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

            fn rsqrt_stepwise(self) -> Self {
                1.0 / self.sqrt()
            }

            fn sqrt_t(self) -> Self {
                self.sqrt()
            }
        }
    };
}

cpu_float!(f32, F32, F32);
cpu_float!(f64, F64, F64);

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

/// Defines `fn name<T: CpuFloat>(…) -> R` whose body is compiled three times, for AVX-512,
/// AVX2 and the baseline, and picks the widest the CPU has at each call; the crate itself stays
/// built for any x86-64.
///
/// Results do not depend on the copy that runs: Rust never fuses a multiply and an add on its
/// own, and the kernels' sums use explicit lanes, so only the speed changes.
macro_rules! simd_kernel {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident<T: CpuFloat>($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments, clippy::unused_unit)]
        $vis fn $name<T: $crate::model::layers::cpu_float::CpuFloat>($($arg: $ty),*) -> $ret {
            #[inline(always)]
            #[allow(clippy::too_many_arguments, clippy::unused_unit)]
            fn body<T: $crate::model::layers::cpu_float::CpuFloat>($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2")]
                #[allow(clippy::too_many_arguments, clippy::unused_unit)]
                unsafe fn v4<T: $crate::model::layers::cpu_float::CpuFloat>($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments, clippy::unused_unit)]
                unsafe fn v3<T: $crate::model::layers::cpu_float::CpuFloat>($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features v4 is compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has the features v3 is compiled for.
                    return unsafe { v3($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use simd_kernel;

/// `dst` (m×n) = `lhs` · `rhs`, or += when `accumulate`; each matrix is given by its pointer
/// and its row and column strides; on candle's thread count when `threads`, else on this
/// thread only.
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
    // SAFETY: forwarded from the caller; gemm reads only the given strided elements.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0,
            dst.2 as isize,
            dst.1 as isize,
            accumulate,
            lhs.0,
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0,
            rhs.2 as isize,
            rhs.1 as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism(threads),
        )
    }
}

fn parallelism(threads: bool) -> gemm::Parallelism {
    let n = candle_core::utils::get_num_threads();
    if threads && n > 1 {
        gemm::Parallelism::Rayon(n)
    } else {
        gemm::Parallelism::None
    }
}
