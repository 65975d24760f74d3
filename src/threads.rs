//! Thread-count pinning for candle's CPU backend.

/// Sets `RAYON_NUM_THREADS` to candle's own default thread count when it is unset.
///
/// candle 0.11 re-reads /proc/cpuinfo on every matmul unless the variable is set (about a
/// third of a small model's step time); pinning its default changes nothing else.
///
/// # Safety
/// Must be called before any other thread exists (it writes the process environment).
pub unsafe fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads();
        // SAFETY: the caller guarantees that no other thread is running.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
}
