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

/// The settings missing from the environment: `RAYON_NUM_THREADS` at candle's own default
/// thread count and candle's barrier-pool spin limit at [`BARRIER_SPIN_LIMIT`], each only when
/// unset.
///
/// candle 0.11 re-reads /proc/cpuinfo on every matmul unless `RAYON_NUM_THREADS` is set (about a
/// third of a small model's step); pinning its default changes nothing else. Writing them into
/// a running process is unsound once any thread exists, so [`crate::app::App::run`] starts the
/// program again with them instead.
pub fn missing_settings() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads();
        out.push(("RAYON_NUM_THREADS", n.to_string()));
    }
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        out.push((
            "CANDLE_BARRIER_POOL_SPIN_LIMIT",
            BARRIER_SPIN_LIMIT.to_string(),
        ));
    }
    out
}

/// Replaces the process with itself plus the settings [`missing_settings`] names, when
/// any is missing; returns only when nothing was missing or the exec failed.
#[cfg(unix)]
pub fn restart_with_pinned_threads() {
    use std::os::unix::process::CommandExt;
    let missing = missing_settings();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    // `exec` returns only on failure; the settings then stay unset.
    let _ = cmd.args(args).envs(missing).exec();
}
