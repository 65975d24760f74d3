//! Thread settings for candle's CPU backend.

/// How long (spin iterations) candle's barrier-pool worker busy-waits for the next op before it
/// sleeps, unless `CANDLE_BARRIER_POOL_SPIN_LIMIT` is set.
///
/// candle's default, 25,000, keeps that worker spinning through the rayon-parallel kernels that
/// follow a candle op, so on 2 cores it takes a core from them. Measured 2026-11-25 on the 2-core
/// machine (medians of 15–25 steps, two rounds): PreActResNet18 width 0.125 train step 57–62 ms
/// at 25,000, 44 ms at 5,000, 37–42 ms at 0–2,000; App. G MLP Adam step 64–70 ms at 25,000,
/// 60–62 ms at 5,000, 66–80 ms at 0–2,000; width 1 unchanged. Results do not depend on it.
const BARRIER_SPIN_LIMIT: &str = "5000";

/// Sets `RAYON_NUM_THREADS` to candle's own default thread count and candle's barrier-pool spin
/// limit to [`BARRIER_SPIN_LIMIT`], each only when unset.
///
/// candle 0.11 re-reads /proc/cpuinfo on every matmul unless `RAYON_NUM_THREADS` is set (about a
/// third of a small model's step); pinning its default changes nothing else.
///
/// # Safety
/// Must be called before any other thread exists (it writes the process environment).
pub unsafe fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads();
        // SAFETY: the caller guarantees that no other thread is running.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // SAFETY: as above.
        unsafe { std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", BARRIER_SPIN_LIMIT) };
    }
}
