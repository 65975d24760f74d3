//! Atomic file writes: write a temp file in the same directory, fsync, rename over, fsync the
//! directory.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Replaces `path` with `bytes` so that readers see either the old or the new file, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    // The rename itself is durable only once the directory entry is.
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failing_rename_leaves_the_target_intact_and_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename over it fails (even as root).
        let target = d.path().join("r.json");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), b"old").unwrap();
        let e = write_atomic(&target, b"new").unwrap_err().to_string();
        assert!(e.contains("r.json"), "{e}");
        assert_eq!(std::fs::read(target.join("keep")).unwrap(), b"old");
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["r.json"], "temporary file left behind");
    }

    /// A reader holding the old file keeps reading the old, complete content while the path
    /// moves to a new file (a rename, not a rewrite in place), and no temporary file stays.
    #[test]
    fn the_path_is_replaced_by_a_new_file_not_rewritten_in_place() {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        write_atomic(&p, b"old content").unwrap();
        let old_inode = std::fs::metadata(&p).unwrap().ino();
        let mut reader = std::fs::File::open(&p).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_ne!(
            std::fs::metadata(&p).unwrap().ino(),
            old_inode,
            "the path must name a new file"
        );
        let mut seen = String::new();
        reader.read_to_string(&mut seen).unwrap();
        assert_eq!(seen, "old content", "an open reader saw a partial rewrite");
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["r.json"], "temporary file left behind");
    }
}
