//! The `mixbench` binary: everything lives in the library's `cli` module.

fn main() {
    // SAFETY: first statement of main, before any thread is started.
    unsafe { mixbench::threads::pin_thread_count() };
    mixbench::memory::keep_freed_memory();
    std::process::exit(mixbench::cli::main());
}
