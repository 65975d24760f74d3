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
    /// A component parameter is invalid: `path` is the field inside the component's block
    /// (`alpha`, `hidden[0]`), so a suite error can point at the value's line and column.
    #[error("{message}")]
    Param {
        /// Field path inside the block, rendered `a.b[2]` (empty: the block as a whole).
        path: String,
        /// What is wrong and what is expected (names the component and the field).
        message: String,
    },
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
    /// A parameter error at `path` inside a component's block.
    pub fn param(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Param {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
