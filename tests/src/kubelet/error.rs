//! What can go wrong while playing the kubelet.

use std::path::PathBuf;

/// Result of every kubelet stand-in operation.
pub type Result<T> = std::result::Result<T, Error>;

/// A failure of the kubelet stand-in, naming the call and the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The harness (node, registry, a helper command) failed.
    #[error(transparent)]
    Harness(#[from] crate::Error),

    /// The CRI socket could not be reached.
    #[error("connect to CRI socket {}: {detail}", socket.display())]
    Connect { socket: PathBuf, detail: String },

    /// A CRI call answered with an error.
    #[error("cri {call} {object}: {code:?}: {message}")]
    Call {
        call: &'static str,
        object: String,
        code: tonic::Code,
        message: String,
    },

    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// The rendered manifests are not what the stand-in can run.
    #[error("manifest: {0}")]
    Manifest(String),

    /// The test setup is incomplete (an image source missing).
    #[error("setup: {0}")]
    Setup(String),

    /// The pod did not behave as a kubelet would accept (a container failed
    /// its checks, did not exit in time, ...).
    #[error("pod {pod}: {detail}")]
    Pod { pod: String, detail: String },
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

    /// A failed CRI call `call` about `object`.
    pub fn call(call: &'static str, object: impl Into<String>, status: &tonic::Status) -> Self {
        Error::Call {
            call,
            object: object.into(),
            code: status.code(),
            message: status.message().to_string(),
        }
    }

    /// A pod-level failure.
    pub fn pod(pod: &str, detail: impl Into<String>) -> Self {
        Error::Pod {
            pod: pod.to_string(),
            detail: detail.into(),
        }
    }
}
