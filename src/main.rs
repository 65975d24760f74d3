//! The `mixbench` binary: everything lives in the library's `cli` module.

fn main() {
    // SAFETY: first statement of main, before any thread is started.
    unsafe { mixbench::threads::pin_thread_count() };
    mixbench::memory::keep_freed_memory();
    // `mixbench show ... | head` should end quietly when the reader goes away, as other
    // command-line tools do, instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default action of one signal before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(mixbench::cli::main());
}
