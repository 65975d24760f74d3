//! Peak GPU memory of this process, for `estimate` (the CPU's peak is `memory::peak_rss_bytes`).
//!
//! candle allocates every CUDA tensor with `cuMemAllocAsync` from the device's current memory
//! pool (where the driver supports pools, as every GPU since Pascal on Linux does), and the pool
//! keeps high-water marks of what it handed out and of what it reserved from the device. What a
//! process holds beyond the pool (its CUDA context, loaded kernels, cuBLAS workspaces) never
//! returns to the pool and is still held at the end, so the peak is the pool's reserved
//! high-water mark plus what is in use outside the pool when measured.

use candle_core::Device;

/// What one process held on its GPU, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemoryPeak {
    /// Peak device memory this process held: the pool's reserved high-water mark plus memory
    /// outside the pool (context, kernels, cuBLAS workspaces). `cuMemGetInfo` is device-wide,
    /// so other processes on the same GPU count too: measure on an otherwise idle GPU.
    pub peak_bytes: u64,
    /// Peak bytes of live tensors (the pool's used high-water mark).
    pub tensors_peak_bytes: u64,
    /// The device's total memory.
    pub total_bytes: u64,
}

/// The peak so far on `device` (after waiting for its queued work); None on the CPU, in a build
/// without CUDA, or where the driver gives the pool no statistics.
pub fn device_memory_peak(device: &Device) -> Option<DeviceMemoryPeak> {
    imp::peak(device)
}

/// Peak = reserved high-water mark + (in use on the device - reserved now).
// Only the CUDA build reads the pool; the arithmetic stays in every build so its test runs here.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn combine(
    used_high: u64,
    reserved_high: u64,
    reserved_now: u64,
    free: u64,
    total: u64,
) -> DeviceMemoryPeak {
    let in_use = total.saturating_sub(free);
    DeviceMemoryPeak {
        peak_bytes: reserved_high + in_use.saturating_sub(reserved_now),
        tensors_peak_bytes: used_high,
        total_bytes: total,
    }
}

#[cfg(feature = "cuda")]
mod imp {
    use candle_core::Device;
    use candle_core::cuda::cudarc::driver::{result, sys};

    use super::{DeviceMemoryPeak, combine};

    pub(super) fn peak(device: &Device) -> Option<DeviceMemoryPeak> {
        let Device::Cuda(d) = device else {
            return None;
        };
        let stream = d.cuda_stream();
        stream.synchronize().ok()?;
        let ctx = stream.context();
        if !ctx.has_async_alloc() {
            return None;
        }
        ctx.bind_to_thread().ok()?;
        let (free, total) = result::mem_get_info().ok()?;
        // SAFETY: the device handle comes from a live context.
        let pool = unsafe { result::device::get_mem_pool(ctx.cu_device()) }.ok()?;
        // SAFETY: a pool of that device; each attribute below is a cuuint64_t, read into a u64.
        let attr = |a: sys::CUmemPool_attribute| -> Option<u64> {
            let mut v: u64 = 0;
            unsafe { result::mem_pool::get_attribute(pool, a, (&mut v as *mut u64).cast()) }
                .ok()?;
            Some(v)
        };
        use sys::CUmemPool_attribute as A;
        Some(combine(
            attr(A::CU_MEMPOOL_ATTR_USED_MEM_HIGH)?,
            attr(A::CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH)?,
            attr(A::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT)?,
            free as u64,
            total as u64,
        ))
    }
}

#[cfg(not(feature = "cuda"))]
mod imp {
    use candle_core::Device;

    use super::DeviceMemoryPeak;

    pub(super) fn peak(_device: &Device) -> Option<DeviceMemoryPeak> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_adds_what_lies_outside_the_pool_to_the_pools_high_water_mark() {
        // 80 GiB device, 10 GiB free now: 70 in use, 40 of it the pool's, so 30 outside it;
        // the pool once reserved 50.
        let g = 1u64 << 30;
        let p = combine(45 * g, 50 * g, 40 * g, 10 * g, 80 * g);
        assert_eq!(p.peak_bytes, 80 * g);
        assert_eq!(p.tensors_peak_bytes, 45 * g);
        assert_eq!(p.total_bytes, 80 * g);
        // A pool that released everything: the peak is its mark plus the whole in-use figure.
        assert_eq!(combine(g, 2 * g, 0, 79 * g, 80 * g).peak_bytes, 3 * g);
    }

    #[test]
    fn the_cpu_has_no_device_memory() {
        assert_eq!(device_memory_peak(&Device::Cpu), None);
    }
}
