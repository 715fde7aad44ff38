//! The one error type of the image build. Every message names the operation
//! and the object it failed on.

use std::path::PathBuf;
use std::process::ExitStatus;

/// Why a stage of the image build failed.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// A tool (`cargo`, `git`, `skopeo`) could not be started at all.
    #[error("run {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    /// A tool ran and reported failure.
    #[error("{command} failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },

    /// A file or directory operation failed.
    #[error("{op} {path}: {source}", path = path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A built binary is not a 64-bit little-endian ELF file.
    #[error("check binary {path}: not a 64-bit ELF executable ({reason})", path = path.display())]
    NotElf { path: PathBuf, reason: String },

    /// A built binary is for another CPU than the image it goes into.
    #[error("check binary {path}: built for ELF machine {found}, expected {expected}", path = path.display())]
    WrongArch {
        path: PathBuf,
        expected: String,
        found: u16,
    },

    /// A built binary needs a dynamic loader, which a scratch image lacks.
    #[error(
        "check binary {path}: dynamically linked (it names an ELF interpreter); a FROM-scratch image needs a static binary",
        path = path.display()
    )]
    NotStatic { path: PathBuf },

    /// `cargo metadata` answered, but not with what the build needs.
    #[error("read cargo metadata: {0}")]
    Metadata(String),

    /// `SOURCE_DATE_EPOCH` (or the commit time) is not a number of seconds.
    #[error("read source date epoch: {value:?} is not a whole number of seconds since 1970")]
    BadEpoch { value: String },

    /// A command-line value the build cannot use.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    /// A JSON document of the image could not be encoded.
    #[error("encode {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// `oci-spec` refused a document the build assembled.
    #[error("assemble {what}: {source}")]
    Spec {
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },
}

impl ImagesError {
    /// Shorthand for [`ImagesError::Io`] in `map_err`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }

    /// Shorthand for [`ImagesError::Spec`] in `map_err`.
    pub(crate) fn spec(what: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> Self {
        move |source| Self::Spec { what, source }
    }
}
