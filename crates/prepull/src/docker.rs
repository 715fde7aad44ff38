//! Docker Engine API backend (dockerd, Podman's compatible service).
//!
//! bollard over the unix socket, with the API version negotiated down to
//! what the daemon speaks. A pull is `POST /images/create`, whose answer is
//! a 200 stream of JSON progress lines; a failure that happens after the
//! stream started arrives as an `errorDetail` line in it, and counts as a
//! failed pull.

use std::collections::HashMap;
use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::errors::Error;
use bollard::models::{CreateImageInfo, ImageInspect};
use bollard::query_parameters::CreateImageOptions;
use bollard::{API_DEFAULT_VERSION, Docker};
use futures_util::StreamExt;

use crate::auth::Credential;
use crate::cri::text::{digest_recorded, kind_from_text, scrub, wire_reference, with_causes};
use crate::reference::ImageRef;
use crate::runtime::{FailureKind, ImageInfo, Progress, Protocol, Runtime, RuntimeError};

/// How long detection waits for `/_ping` and `/version`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// bollard's bound on each request until the response headers arrive. For a
/// pull the daemon answers once it has resolved the manifest; the rest of
/// the stream is bounded by the engine's per-image timeout.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A Docker Engine reached over its unix socket.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    socket: PathBuf,
    docker: Docker,
    version: String,
}

impl DockerRuntime {
    /// Connects to `socket`, pings it (so a socket that does not speak the
    /// Docker API is refused here) and negotiates the API version.
    pub async fn connect(socket: &Path) -> Result<Self, RuntimeError> {
        let path = socket.to_str().ok_or_else(|| {
            RuntimeError::new(
                FailureKind::Invalid,
                format!("docker socket {}: path is not UTF-8", socket.display()),
            )
        })?;
        let docker = Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
            .map_err(|error| probe_failure("connect", &error))?;

        probe("ping", docker.ping()).await?;
        let docker = probe("version negotiation", docker.negotiate_version()).await?;
        let version = probe("version", docker.version()).await?;

        Ok(DockerRuntime {
            socket: socket.to_path_buf(),
            version: describe_version(&version),
            docker,
        })
    }

    /// The socket this daemon answered on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The bollard client, for callers (tests, tools) that need calls the
    /// [`Runtime`] trait does not offer.
    pub fn client(&self) -> &Docker {
        &self.docker
    }
}

impl Runtime for DockerRuntime {
    fn protocol(&self) -> Protocol {
        Protocol::Docker
    }

    fn describe(&self) -> String {
        self.version.clone()
    }

    async fn image_status(&self, image: &ImageRef) -> Result<Option<ImageInfo>, RuntimeError> {
        match self.docker.inspect_image(&wire_reference(image)).await {
            Ok(found) => {
                Ok(Some(info(found)).filter(|held| digest_recorded(&held.repo_digests, image)))
            }
            Err(Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(error) => Err(failure("image status", image, &error, None)),
        }
    }

    async fn pull(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
        progress: &Progress,
    ) -> Result<ImageInfo, RuntimeError> {
        let options = CreateImageOptions {
            from_image: Some(image.name()),
            tag: image.digest.clone().or_else(|| image.tag.clone()),
            ..CreateImageOptions::default()
        };
        let credentials = credential.map(|c| docker_credentials(c, image));
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        let mut layers = LayerBytes::default();

        while let Some(line) = stream.next().await {
            let line = line.map_err(|error| failure("pull", image, &error, credential))?;
            if let Some(bytes) = layers.update(&line) {
                progress.set_bytes(bytes);
            }
        }

        self.image_status(image).await?.ok_or_else(|| {
            RuntimeError::new(
                FailureKind::Transient,
                format!("pull {image}: docker finished the pull but does not hold the image"),
            )
        })
    }
}

/// Bytes downloaded per layer, from the progress stream's `Downloading`
/// lines; a layer reported complete counts its full size.
#[derive(Debug, Default)]
struct LayerBytes {
    layers: HashMap<String, (u64, Option<u64>)>,
}

impl LayerBytes {
    /// Records one stream line; returns the new sum when it changed.
    fn update(&mut self, line: &CreateImageInfo) -> Option<u64> {
        let id = line.id.as_ref()?;
        let status = line.status.as_deref()?;
        let detail = line.progress_detail.as_ref();
        let current = detail
            .and_then(|d| d.current)
            .and_then(|n| u64::try_from(n).ok());
        let total = detail
            .and_then(|d| d.total)
            .and_then(|n| u64::try_from(n).ok());

        let entry = self.layers.entry(id.clone()).or_insert((0, None));
        entry.1 = total.or(entry.1);
        match status {
            "Downloading" => entry.0 = current?,
            "Download complete" | "Pull complete" => entry.0 = entry.1?,
            _ => return None,
        }
        Some(self.layers.values().map(|(bytes, _)| bytes).sum())
    }
}

/// Classifies a Docker API failure, in one place.
///
/// A status the daemon answered with directly decides for 4xx. For 5xx the
/// daemon is relaying a registry failure as text ("no basic auth
/// credentials", "manifest unknown"), so the text decides and only an
/// unexplained 5xx is transient; the same goes for an error inside the pull
/// stream. Failing to reach the daemon at all is transient.
fn classify(error: &Error) -> FailureKind {
    match error {
        Error::DockerResponseServerError {
            status_code,
            message,
        } => match status_code {
            401 | 403 => FailureKind::Unauthorized,
            404 => FailureKind::NotFound,
            408 | 429 => FailureKind::Transient,
            400..=499 => FailureKind::Invalid,
            _ => kind_from_text(message).unwrap_or(FailureKind::Transient),
        },
        Error::DockerStreamError { error } => {
            kind_from_text(error).unwrap_or(FailureKind::Transient)
        }
        Error::RequestTimeoutError
        | Error::IOError { .. }
        | Error::HyperResponseError { .. }
        | Error::HyperLegacyError { .. }
        | Error::SocketNotFoundError(_) => FailureKind::Transient,
        _ => FailureKind::Invalid,
    }
}

/// The credential as Docker's `X-Registry-Auth`: `serveraddress` names the
/// registry, the tokens go in their own fields.
fn docker_credentials(credential: &Credential, image: &ImageRef) -> DockerCredentials {
    DockerCredentials {
        username: credential.username.clone(),
        password: credential.password.clone(),
        serveraddress: Some(image.registry.clone()),
        identitytoken: credential.identity_token.clone(),
        registrytoken: credential.registry_token.clone(),
        ..DockerCredentials::default()
    }
}

fn info(found: ImageInspect) -> ImageInfo {
    ImageInfo {
        id: found.id.unwrap_or_default(),
        repo_digests: found.repo_digests.unwrap_or_default(),
        size: found.size.and_then(|n| u64::try_from(n).ok()),
    }
}

fn describe_version(version: &bollard::models::SystemVersion) -> String {
    let name = version
        .platform
        .as_ref()
        .map(|p| p.name.as_str())
        .filter(|name| !name.is_empty())
        .unwrap_or("Docker Engine");
    let number = version.version.as_deref().unwrap_or("unknown");
    let api = version.api_version.as_deref().unwrap_or("unknown");
    format!("{name} {number} (API {api})")
}

/// Runs one detection call under [`PROBE_TIMEOUT`].
async fn probe<T>(
    operation: &str,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, RuntimeError> {
    match tokio::time::timeout(PROBE_TIMEOUT, call).await {
        Ok(result) => result.map_err(|error| probe_failure(operation, &error)),
        Err(_) => Err(RuntimeError::new(
            FailureKind::Transient,
            format!(
                "docker {operation}: no answer within {}s",
                PROBE_TIMEOUT.as_secs()
            ),
        )),
    }
}

fn probe_failure(operation: &str, error: &Error) -> RuntimeError {
    RuntimeError::new(
        classify(error),
        format!("docker {operation}: {}", text(error)),
    )
}

fn failure(
    operation: &str,
    image: &ImageRef,
    error: &Error,
    credential: Option<&Credential>,
) -> RuntimeError {
    let message = scrub(text(error), credential);
    RuntimeError::new(classify(error), format!("{operation} {image}: {message}"))
}

fn text(error: &Error) -> String {
    with_causes(error.to_string(), error.source())
}

#[cfg(test)]
mod tests {
    use bollard::models::ProgressDetail;

    use super::*;

    fn server(status_code: u16, message: &str) -> Error {
        Error::DockerResponseServerError {
            status_code,
            message: message.to_string(),
        }
    }

    /// Answers dockerd 20.10.24 gave to `POST /images/create` against a
    /// local registry.
    #[test]
    fn dockerd_answers_are_classified() {
        let cases = [
            (
                server(
                    404,
                    "manifest for 127.0.0.1:5731/small:nope not found: manifest unknown: manifest unknown",
                ),
                FailureKind::NotFound,
            ),
            (
                server(
                    500,
                    r#"Head "http://127.0.0.1:5732/v2/private/manifests/v1": no basic auth credentials"#,
                ),
                FailureKind::Unauthorized,
            ),
            (
                server(500, "unauthorized: authentication required"),
                FailureKind::Unauthorized,
            ),
            (
                server(
                    500,
                    r#"Get "http://127.0.0.1:5739/v2/": dial tcp 127.0.0.1:5739: connect: connection refused"#,
                ),
                FailureKind::Transient,
            ),
            (
                server(
                    400,
                    "invalid reference format: repository name must be lowercase",
                ),
                FailureKind::Invalid,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(classify(&error), expected, "{error}");
        }
    }

    #[test]
    fn an_error_inside_the_stream_is_read_from_its_text() {
        let missing_layer = Error::DockerStreamError {
            error: "unknown blob".to_string(),
        };
        assert_eq!(classify(&missing_layer), FailureKind::NotFound);

        let reset = Error::DockerStreamError {
            error: "read tcp 10.0.0.2:40000->10.0.0.9:443: read: connection reset by peer".into(),
        };
        assert_eq!(classify(&reset), FailureKind::Transient);
    }

    #[test]
    fn unreachable_daemon_is_transient_and_bad_answers_are_invalid() {
        let refused = Error::IOError {
            err: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(classify(&refused), FailureKind::Transient);
        assert_eq!(
            classify(&Error::RequestTimeoutError),
            FailureKind::Transient
        );
        assert_eq!(classify(&server(503, "")), FailureKind::Transient);
        assert_eq!(
            classify(&server(429, "toomanyrequests")),
            FailureKind::Transient
        );
        assert_eq!(classify(&server(403, "")), FailureKind::Unauthorized);
        let garbled = Error::JsonDataError {
            message: "{\"id\"".into(),
            column: 5,
        };
        assert_eq!(classify(&garbled), FailureKind::Invalid);
    }

    fn line(id: &str, status: &str, current: Option<i64>, total: Option<i64>) -> CreateImageInfo {
        CreateImageInfo {
            id: Some(id.into()),
            status: Some(status.into()),
            progress_detail: Some(ProgressDetail { current, total }),
            ..CreateImageInfo::default()
        }
    }

    #[test]
    fn progress_sums_the_layers() {
        let mut layers = LayerBytes::default();

        assert_eq!(
            layers.update(&line("a", "Pulling fs layer", None, None)),
            None
        );
        assert_eq!(
            layers.update(&line("a", "Downloading", Some(100), Some(1000))),
            Some(100)
        );
        assert_eq!(
            layers.update(&line("b", "Downloading", Some(50), Some(500))),
            Some(150)
        );
        assert_eq!(
            layers.update(&line("a", "Download complete", None, None)),
            Some(1050)
        );
        assert_eq!(
            layers.update(&line("b", "Extracting", Some(500), Some(500))),
            None
        );
        assert_eq!(
            layers.update(&line("b", "Pull complete", None, None)),
            Some(1500)
        );
    }

    #[test]
    fn credentials_name_the_registry_and_keep_tokens_apart() {
        let credential = Credential {
            key: "127.0.0.1:5000".into(),
            identity_token: Some("refresh".into()),
            registry_token: Some("bearer".into()),
            ..Credential::default()
        };
        let image = ImageRef {
            registry: "127.0.0.1:5000".into(),
            repository: "app".into(),
            tag: Some("1".into()),
            digest: None,
        };

        let sent = docker_credentials(&credential, &image);
        assert_eq!(sent.serveraddress.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(sent.identitytoken.as_deref(), Some("refresh"));
        assert_eq!(sent.registrytoken.as_deref(), Some("bearer"));
        assert_eq!(sent.username, None);
        assert_eq!(sent.password, None);
    }
}
