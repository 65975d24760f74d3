//! The `mixbench` binary: everything lives in the library's `cli` module.

fn main() {
    // candle 0.11 re-reads /proc/cpuinfo on every matmul unless RAYON_NUM_THREADS is set
    // (a third of a small model's step time); pin its own default once, before any thread
    // exists, so setting the variable is sound and the thread count is unchanged.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads();
        // SAFETY: no other thread has been started yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    std::process::exit(mixbench::cli::main());
}
