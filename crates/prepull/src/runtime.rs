//! The one boundary every backend sits behind.
//!
//! The pull engine (`pull`) only sees [`Runtime`]; `cri` and `docker`
//! implement it, and unit tests use a recording fake. Each backend maps its
//! protocol's errors to a [`FailureKind`] in one function, so retry and exit
//! code decisions are made in one place.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::auth::Credential;
use crate::reference::ImageRef;

/// Which protocol a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Kubernetes CRI v1 `ImageService` over gRPC (containerd, CRI-O, cri-dockerd).
    Cri,
    /// Docker Engine API (dockerd, Podman's compatible service).
    Docker,
}

/// What the runtime knows about an image it holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageInfo {
    /// The runtime's image id (for both protocols, the config digest).
    pub id: String,
    /// `name@sha256:…` entries: the manifest digests the runtime recorded.
    pub repo_digests: Vec<String>,
    /// Unpacked or stored size in bytes, where the runtime reports it.
    pub size: Option<u64>,
}

/// Why a pull failed, as far as retrying and reporting care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The registry refused the credentials (or their absence): HTTP 401/403.
    Unauthorized,
    /// The repository, tag or digest does not exist: HTTP 404.
    NotFound,
    /// The runtime or registry rejected the request itself (bad reference,
    /// unsupported media type, platform mismatch).
    Invalid,
    /// Worth another try: connection refused or reset, 5xx, timeouts.
    Transient,
}

impl FailureKind {
    /// Only transient failures are retried.
    pub fn is_retryable(self) -> bool {
        self == FailureKind::Transient
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::NotFound => "not_found",
            FailureKind::Invalid => "invalid",
            FailureKind::Transient => "transient",
        }
    }
}

/// A failed runtime call, already classified.
///
/// `message` is the runtime's own text with any credential removed; it is
/// logged and written to the termination message as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuntimeError {
    pub kind: FailureKind,
    pub message: String,
}

impl RuntimeError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        RuntimeError {
            kind,
            message: message.into(),
        }
    }
}

/// Bytes downloaded so far for one image, shared between a backend that
/// learns them from the runtime's progress stream and the engine's 10-second
/// progress log. CRI reports no progress, so it stays `None` there.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    bytes: Arc<AtomicU64>,
    known: Arc<std::sync::atomic::AtomicBool>,
}

impl Progress {
    pub fn set_bytes(&self, bytes: u64) {
        self.bytes.store(bytes, Ordering::Relaxed);
        self.known.store(true, Ordering::Relaxed);
    }

    pub fn bytes(&self) -> Option<u64> {
        self.known
            .load(Ordering::Relaxed)
            .then(|| self.bytes.load(Ordering::Relaxed))
    }
}

/// A container runtime reached through its socket.
///
/// Implementations must be cheap to share across concurrent pulls.
pub trait Runtime: Send + Sync {
    /// Which protocol this backend speaks.
    fn protocol(&self) -> Protocol;

    /// The runtime's name and version as it reported them, for the log.
    fn describe(&self) -> String;

    /// The image as the runtime holds it, or `None` when absent. For a
    /// reference pinned by digest, an image present under another digest is
    /// absent.
    fn image_status(
        &self,
        image: &ImageRef,
    ) -> impl Future<Output = Result<Option<ImageInfo>, RuntimeError>> + Send;

    /// Pulls the image, with `credential` when one applies, and returns what
    /// the runtime then holds. Progress is reported through `progress` where
    /// the protocol tells it.
    fn pull(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
        progress: &Progress,
    ) -> impl Future<Output = Result<ImageInfo, RuntimeError>> + Send;
}
