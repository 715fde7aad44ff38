//! One error type for the harness, so a failing test prints what went wrong
//! and where (path, command, daemon log) instead of a bare io error.

use std::path::PathBuf;

/// Result of every harness operation.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong while setting up or inspecting the test node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system or process operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A daemon exited or did not answer in time; `tail` is the end of its log.
    #[error("{name} is not up ({reason}); last lines of {}:\n{tail}", log.display())]
    Daemon {
        name: String,
        reason: String,
        log: PathBuf,
        tail: String,
    },

    /// A helper command (skopeo, ctr, docker, mount) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },

    /// Output of a tool or of puller could not be understood.
    #[error("parse {what}: {detail}")]
    Parse { what: String, detail: String },

    /// A binary under test is missing: build it before running the tests.
    #[error("binary {name} not found at {}: {hint}", path.display())]
    MissingBinary {
        name: String,
        path: PathBuf,
        hint: &'static str,
    },
}

impl Error {
    /// Wraps an io error with the operation and the path it concerned.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A parse error about `what`.
    pub fn parse(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Parse {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
