//! Kubernetes CRI `runtime.v1` backend (containerd, CRI-O, cri-dockerd).
//!
//! gRPC over the runtime's unix socket with tonic. CRI has no progress
//! reporting for pulls, so [`Progress`] stays unknown here.

pub mod api;
mod classify;
pub(crate) mod text;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::Status;
use tonic::transport::{Channel, Endpoint, Uri};

use self::api::image_service_client::ImageServiceClient;
use self::api::runtime_service_client::RuntimeServiceClient;
use self::api::{
    AuthConfig, Image, ImageSpec, ImageStatusRequest, PullImageRequest, VersionRequest,
};
use self::classify::{classify, describe};
use self::text::{digest_recorded, scrub, wire_reference, with_causes};
use crate::auth::Credential;
use crate::reference::ImageRef;
use crate::runtime::{FailureKind, ImageInfo, Progress, Protocol, Runtime, RuntimeError};

/// How long detection waits for a socket to accept a connection and answer
/// `Version`: a runtime that takes longer is not one to pull through.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Bound on `ImageStatus`, a local lookup; pulls are bounded by the engine.
const STATUS_TIMEOUT: Duration = Duration::from_secs(30);

/// A CRI runtime reached over its unix socket.
///
/// Cloning is cheap: tonic's channel multiplexes concurrent calls over one
/// HTTP/2 connection and reconnects if the runtime restarts.
#[derive(Debug, Clone)]
pub struct CriRuntime {
    socket: PathBuf,
    channel: Channel,
    version: String,
}

impl CriRuntime {
    /// Connects to `socket` and asks `RuntimeService/Version`, so a socket
    /// that does not speak CRI is refused here rather than at the first pull.
    pub async fn connect(socket: &Path) -> Result<Self, RuntimeError> {
        let channel = open_channel(socket).await?;
        let version = ask_version(channel.clone()).await?;

        Ok(CriRuntime {
            socket: socket.to_path_buf(),
            channel,
            version,
        })
    }

    /// The socket this runtime answered on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A client for the image service on the same connection, for callers
    /// (tests, tools) that need calls the [`Runtime`] trait does not offer.
    pub fn image_client(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone())
    }

    /// `ImageStatus` for the reference as puller would pull it, with no
    /// judgement on digests.
    async fn lookup(&self, image: &ImageRef) -> Result<Option<Image>, RuntimeError> {
        let request = ImageStatusRequest {
            image: Some(spec(image)),
            verbose: false,
        };
        let mut client = self.image_client();

        let response = tokio::time::timeout(STATUS_TIMEOUT, client.image_status(request))
            .await
            .map_err(|_| timed_out("image status", image))?
            .map_err(|status| failure("image status", image, &status, None))?;
        Ok(response.into_inner().image)
    }
}

impl Runtime for CriRuntime {
    fn protocol(&self) -> Protocol {
        Protocol::Cri
    }

    fn describe(&self) -> String {
        self.version.clone()
    }

    async fn image_status(&self, image: &ImageRef) -> Result<Option<ImageInfo>, RuntimeError> {
        let found = self.lookup(image).await?;

        Ok(found
            .filter(|held| digest_recorded(&held.repo_digests, image))
            .map(info))
    }

    async fn pull(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
        _progress: &Progress,
    ) -> Result<ImageInfo, RuntimeError> {
        let request = PullImageRequest {
            image: Some(spec(image)),
            auth: credential.map(auth_config),
        };
        let response = self
            .image_client()
            .pull_image(request)
            .await
            .map_err(|status| failure("pull", image, &status, credential))?;
        let image_ref = response.into_inner().image_ref;

        match self.lookup(image).await? {
            Some(held) => Ok(info(held)),
            None => Err(RuntimeError::new(
                FailureKind::Transient,
                format!(
                    "pull {image}: the runtime reported {image_ref} pulled but does not list it"
                ),
            )),
        }
    }
}

/// Opens the HTTP/2 connection over the unix socket. The URI is required by
/// tonic but never resolved: the connector ignores it.
async fn open_channel(socket: &Path) -> Result<Channel, RuntimeError> {
    let path = socket.to_path_buf();
    let connector = tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move { UnixStream::connect(path).await.map(TokioIo::new) }
    });
    let endpoint = Endpoint::from_static("http://localhost").connect_timeout(PROBE_TIMEOUT);
    let connect = endpoint.connect_with_connector(connector);

    match tokio::time::timeout(PROBE_TIMEOUT, connect).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(error)) => Err(RuntimeError::new(
            FailureKind::Transient,
            format!(
                "cri connect: {}",
                with_causes(error.to_string(), error.source())
            ),
        )),
        Err(_) => Err(RuntimeError::new(
            FailureKind::Transient,
            format!("cri connect: no answer within {}s", PROBE_TIMEOUT.as_secs()),
        )),
    }
}

/// Asks `Version`; the answer names the runtime for the log.
async fn ask_version(channel: Channel) -> Result<String, RuntimeError> {
    let request = VersionRequest {
        version: "v1".to_string(),
    };
    let mut client = RuntimeServiceClient::new(channel);

    let response = tokio::time::timeout(PROBE_TIMEOUT, client.version(request))
        .await
        .map_err(|_| {
            RuntimeError::new(
                FailureKind::Transient,
                format!("cri version: no answer within {}s", PROBE_TIMEOUT.as_secs()),
            )
        })?
        .map_err(|status| version_failure(&status))?
        .into_inner();
    Ok(format!(
        "{} {} (CRI {})",
        response.runtime_name, response.runtime_version, response.runtime_api_version
    ))
}

/// A gRPC server without the CRI services (Docker's own containerd runs with
/// the CRI plugin disabled) answers `Unimplemented`; say so, since that is
/// the usual reason a containerd socket is passed over.
fn version_failure(status: &Status) -> RuntimeError {
    let hint = if status.code() == tonic::Code::Unimplemented {
        "speaks gRPC but not CRI runtime.v1 (CRI plugin disabled?): "
    } else {
        ""
    };
    RuntimeError::new(
        classify(status),
        format!("cri version: {hint}{}", describe(status)),
    )
}

fn spec(image: &ImageRef) -> ImageSpec {
    ImageSpec {
        image: wire_reference(image),
        ..ImageSpec::default()
    }
}

/// The credential as CRI's `AuthConfig`: every kind of secret has its own
/// field.
///
/// `server_address` stays empty on purpose. The keyring already matched the
/// credential to this image, and containerd (1.6) reads a non-empty address
/// as a URL and silently drops the credential unless its host equals the
/// endpoint it pulls from (`registry-1.docker.io` for `docker.io`), or fails
/// outright on a bare `host:port` ("first path segment in URL cannot contain
/// colon"), as seen on a real containerd.
fn auth_config(credential: &Credential) -> AuthConfig {
    AuthConfig {
        username: credential.username.clone().unwrap_or_default(),
        password: credential.password.clone().unwrap_or_default(),
        auth: String::new(),
        server_address: String::new(),
        identity_token: credential.identity_token.clone().unwrap_or_default(),
        registry_token: credential.registry_token.clone().unwrap_or_default(),
    }
}

fn info(image: Image) -> ImageInfo {
    ImageInfo {
        id: image.id,
        repo_digests: image.repo_digests,
        size: (image.size > 0).then_some(image.size),
    }
}

fn failure(
    operation: &str,
    image: &ImageRef,
    status: &Status,
    credential: Option<&Credential>,
) -> RuntimeError {
    let message = scrub(describe(status), credential);
    RuntimeError::new(classify(status), format!("{operation} {image}: {message}"))
}

fn timed_out(operation: &str, image: &ImageRef) -> RuntimeError {
    RuntimeError::new(
        FailureKind::Transient,
        format!(
            "{operation} {image}: no answer within {}s",
            STATUS_TIMEOUT.as_secs()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_config_carries_each_secret_in_its_field_and_no_address() {
        let credential = Credential {
            key: "r.example".into(),
            username: Some("alice".into()),
            password: Some("wonderland".into()),
            identity_token: Some("refresh".into()),
            registry_token: Some("bearer".into()),
        };

        let sent = auth_config(&credential);

        assert_eq!(sent.username, "alice");
        assert_eq!(sent.password, "wonderland");
        assert_eq!(sent.identity_token, "refresh");
        assert_eq!(sent.registry_token, "bearer");
        assert_eq!(sent.server_address, "");
        assert_eq!(sent.auth, "");
    }

    #[test]
    fn the_spec_names_the_digest_when_pinned() {
        let image = ImageRef {
            registry: "docker.io".into(),
            repository: "library/nginx".into(),
            tag: Some("1.27".into()),
            digest: Some("sha256:abc".into()),
        };
        assert_eq!(spec(&image).image, "docker.io/library/nginx@sha256:abc");
    }
}
