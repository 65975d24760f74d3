//! The `mixbench` binary: the library's [`mixbench::App`] with only the built-in entries.

fn main() {
    mixbench::App::new().run()
}
