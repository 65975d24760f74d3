//! The crate's error type: every failure names what went wrong and what to do about it.

use std::path::PathBuf;

/// Errors returned by the library; the CLI turns them into messages and exit codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A suite or experiment configuration is invalid (message names file, line and field).
    #[error("{0}")]
    Config(String),
    /// A dataset is missing, corrupt or malformed (message names the file and what is expected).
    #[error("{0}")]
    Data(String),
    /// Anything else, with a message that says what to do.
    #[error("{0}")]
    Other(String),
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
