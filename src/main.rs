//! The `mixbench` binary: everything lives in the library's `cli` module.

fn main() {
    std::process::exit(mixbench::cli::main());
}
