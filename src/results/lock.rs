//! Per-cell locks, so several processes (or machines sharing a results folder) can work through
//! one suite: a process claims a cell by creating `<results>/locks/<training hash>-s<seed>.lock`
//! with `O_EXCL` (host, pid, start time inside), refreshes its modification time while it works,
//! and removes it when done. Another process skips a claimed cell. A lock whose process is gone
//! (same host, pid not running) or that has not been refreshed for the lease is stale and is
//! taken over, with a note.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Holder {
    /// Host name.
    pub(crate) host: String,
    /// Process id on that host.
    pub(crate) pid: u32,
    /// When it claimed the cell (RFC 3339).
    pub(crate) started_at: String,
}

impl Holder {
    /// This process.
    pub(crate) fn me() -> Self {
        Holder {
            host: hostname(),
            pid: std::process::id(),
            started_at: chrono::Utc::now().to_rfc3339(),
        }
    }

    fn describe(&self) -> String {
        format!("{} pid {} since {}", self.host, self.pid, self.started_at)
    }
}

/// This machine's host name (empty if it cannot be read).
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn pid_running(pid: u32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A held lock; dropping it releases the cell.
#[derive(Debug)]
pub(crate) struct CellLock {
    path: PathBuf,
    last_touch: Instant,
    every: Duration,
}

impl CellLock {
    /// Refreshes the lock's modification time (at most every quarter lease, at most every
    /// minute), so other processes see the cell is still being worked on.
    pub(crate) fn heartbeat(&mut self) {
        if self.last_touch.elapsed() >= self.every {
            if let Ok(f) = OpenOptions::new().write(true).open(&self.path) {
                let _ = f.set_modified(SystemTime::now());
            }
            self.last_touch = Instant::now();
        }
    }
}

impl Drop for CellLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The result of trying to claim a cell.
#[derive(Debug)]
pub(crate) enum Claim {
    /// Claimed; the note says when a stale lock was taken over.
    Held(CellLock, Option<String>),
    /// Another live process holds it: who.
    Busy(String),
}

fn create(path: &Path, me: &Holder) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    let bytes = serde_json::to_vec(me).map_err(std::io::Error::other)?;
    f.write_all(&bytes)?;
    f.sync_all()
}

/// Claims the cell locked by `path`; a lock older than `lease` without a heartbeat is stale.
pub(crate) fn claim(path: &Path, lease: Duration) -> Result<Claim> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let me = Holder::me();
    for _ in 0..3 {
        match create(path, &me) {
            Ok(()) => return Ok(Claim::Held(lock(path, lease), None)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        let text = fs::read(path).unwrap_or_default();
        let holder: Option<Holder> = serde_json::from_slice(&text).ok();
        let age = fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default();
        let why = match &holder {
            Some(h) if h.host == me.host && !pid_running(h.pid) => {
                format!("its process {} is not running", h.pid)
            }
            _ if age > lease => format!(
                "it was last refreshed {:.0} minutes ago (lease {:.0} minutes)",
                age.as_secs_f64() / 60.0,
                lease.as_secs_f64() / 60.0
            ),
            Some(h) => return Ok(Claim::Busy(h.describe())),
            None => return Ok(Claim::Busy("a process whose lock is being written".into())),
        };
        // Take over by moving the stale lock aside; only one process can move that file.
        let aside = path.with_extension(format!("stale-{}", me.pid));
        if fs::rename(path, &aside).is_err() {
            continue;
        }
        if fs::read(&aside).unwrap_or_default() != text {
            // Another process replaced the stale lock in between: put its lock back.
            let _ = fs::rename(&aside, path);
            continue;
        }
        let _ = fs::remove_file(&aside);
        if create(path, &me).is_ok() {
            let who = holder.map_or("an unreadable lock".into(), |h| h.describe());
            return Ok(Claim::Held(
                lock(path, lease),
                Some(format!("took over the stale lock of {who}: {why}")),
            ));
        }
    }
    Ok(Claim::Busy(
        "another process (the lock changed while being claimed)".into(),
    ))
}

fn lock(path: &Path, lease: Duration) -> CellLock {
    CellLock {
        path: path.to_path_buf(),
        last_touch: Instant::now(),
        every: (lease / 4).min(Duration::from_secs(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_busy_until_dropped_and_dead_or_expired_locks_are_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("locks/x.lock");
        let lease = Duration::from_secs(3600);
        let Claim::Held(first, None) = claim(&p, lease).unwrap() else {
            panic!("a free cell is claimed")
        };
        // This process holds it: another claim (same host, live pid) is busy.
        match claim(&p, lease).unwrap() {
            Claim::Busy(who) => assert!(who.contains(&format!("pid {}", std::process::id()))),
            c => panic!("expected busy, got {c:?}"),
        }
        drop(first);
        assert!(!p.exists(), "dropping releases the cell");

        // A lock left by a process that no longer runs on this host.
        let dead = Holder {
            host: hostname(),
            pid: 4_000_000,
            started_at: "2026-01-01T00:00:00Z".into(),
        };
        fs::write(&p, serde_json::to_vec(&dead).unwrap()).unwrap();
        match claim(&p, lease).unwrap() {
            Claim::Held(_, Some(note)) => {
                assert!(note.contains("4000000 is not running"), "{note}")
            }
            c => panic!("expected a takeover, got {c:?}"),
        }
        // A lock of another host is respected within its lease and taken over after it.
        let other = Holder {
            host: "elsewhere".into(),
            pid: 1,
            started_at: "2026-01-01T00:00:00Z".into(),
        };
        fs::write(&p, serde_json::to_vec(&other).unwrap()).unwrap();
        assert!(matches!(claim(&p, lease).unwrap(), Claim::Busy(w) if w.contains("elsewhere")));
        let old = SystemTime::now() - Duration::from_secs(7200);
        OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
        match claim(&p, lease).unwrap() {
            Claim::Held(_, Some(note)) => {
                assert!(note.contains("last refreshed 120 minutes ago"), "{note}")
            }
            c => panic!("expected a takeover, got {c:?}"),
        }
    }

    #[test]
    fn a_heartbeat_refreshes_the_lock_so_it_is_not_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("locks/x.lock");
        // A 40 ms lease: the heartbeat may touch the lock every 10 ms.
        let lease = Duration::from_millis(40);
        let Claim::Held(mut held, None) = claim(&p, lease).unwrap() else {
            panic!("a free cell is claimed")
        };
        let old = SystemTime::now() - Duration::from_secs(7200);
        OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let before = SystemTime::now() - Duration::from_secs(1);
        held.heartbeat();
        let mtime = fs::metadata(&p).unwrap().modified().unwrap();
        assert!(
            mtime >= before,
            "the heartbeat did not refresh the lock: {mtime:?} vs {old:?}"
        );
        assert!(p.exists());
    }
}
