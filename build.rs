//! Records the git commit, dirty flag and candle version for result provenance.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // Generated outputs (reports, blessed baselines) are not code: a run that rewrites its own
    // reports must not make the next result say `dirty: true`.
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":(exclude)reports",
        ":(exclude)baselines",
    ])
    .map(|s| if s.is_empty() { "false" } else { "true" })
    .unwrap_or("unknown");
    println!("cargo:rustc-env=MIXBENCH_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=MIXBENCH_GIT_DIRTY={dirty}");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let package = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"candle-core\""));
    let version = package
        .and_then(|p| p.lines().find(|l| l.starts_with("version = ")))
        .map(|l| l.trim_start_matches("version = ").trim_matches('"'));
    // A registry crate has a source; the patched copy under vendor/ has none.
    let candle = match (version, package.is_some_and(|p| p.contains("\nsource = "))) {
        (Some(v), true) => v.to_string(),
        (Some(v), false) => format!("{v} (vendor/candle-core)"),
        (None, _) => "unknown".into(),
    };
    println!("cargo:rustc-env=MIXBENCH_CANDLE_VERSION={candle}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.lock");
}
