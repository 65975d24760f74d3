//! Where dataset files live: `--data-dir`, else `MIXBENCH_DATA`, else `./data`.

use std::path::{Path, PathBuf};

/// Environment variable naming the data directory when no `--data-dir` flag is given.
pub const DATA_ENV: &str = "MIXBENCH_DATA";

/// Data directory used when neither the flag nor the environment variable is set.
pub const DEFAULT_DATA_DIR: &str = "data";

/// How the data directory was chosen, for messages that tell the user where to put files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirOrigin {
    /// Given with `--data-dir`.
    Flag,
    /// Taken from the `MIXBENCH_DATA` environment variable.
    Env,
    /// Neither was given: `./data`.
    Default,
}

impl DataDirOrigin {
    /// Short phrase naming the origin, e.g. "from --data-dir".
    pub fn describe(self) -> &'static str {
        match self {
            DataDirOrigin::Flag => "from --data-dir",
            DataDirOrigin::Env => "from MIXBENCH_DATA",
            DataDirOrigin::Default => {
                "default ./data; set --data-dir or MIXBENCH_DATA to change it"
            }
        }
    }
}

/// The data directory and how it was chosen (flag, then environment, then `./data`).
pub fn resolve_data_dir_with_origin(flag: Option<&Path>) -> (PathBuf, DataDirOrigin) {
    if let Some(p) = flag {
        return (p.to_path_buf(), DataDirOrigin::Flag);
    }
    match std::env::var_os(DATA_ENV) {
        // An empty variable is treated as unset, as shells often export `VAR=` by accident.
        Some(v) if !v.is_empty() => (PathBuf::from(v), DataDirOrigin::Env),
        _ => (PathBuf::from(DEFAULT_DATA_DIR), DataDirOrigin::Default),
    }
}

/// The data directory: `flag` if given, else `MIXBENCH_DATA`, else `./data`.
pub fn resolve_data_dir(flag: Option<&Path>) -> PathBuf {
    resolve_data_dir_with_origin(flag).0
}

/// Folders searched for one dataset, in order: each of `subdirs` under `data_dir`
/// (an empty entry means `data_dir` itself).
pub fn search_roots(data_dir: &Path, subdirs: &[&str]) -> Vec<PathBuf> {
    subdirs
        .iter()
        .map(|s| {
            if s.is_empty() {
                data_dir.to_path_buf()
            } else {
                data_dir.join(s)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_and_roots_expand() {
        let (p, o) = resolve_data_dir_with_origin(Some(Path::new("/x/y")));
        assert_eq!((p, o), (PathBuf::from("/x/y"), DataDirOrigin::Flag));
        let roots = search_roots(Path::new("/d"), &["cifar10", ""]);
        assert_eq!(
            roots,
            vec![PathBuf::from("/d/cifar10"), PathBuf::from("/d")]
        );
    }
}
