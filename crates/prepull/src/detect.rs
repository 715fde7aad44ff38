//! Finds the node's container runtime socket and tells its protocol by asking.
//!
//! A socket's name says which runtime usually listens there, but not what it
//! speaks: cri-dockerd speaks CRI from a Docker-ish path, Podman speaks the
//! Docker API. So every candidate is asked: CRI `RuntimeService/Version`, or
//! Docker `GET /_ping`. The name only decides which question comes first.

use std::fmt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::auth::Credential;
use crate::cri::CriRuntime;
use crate::docker::DockerRuntime;
use crate::reference::ImageRef;
use crate::runtime::{ImageInfo, Progress, Protocol, Runtime, RuntimeError};

/// Which protocol the user asked for (`--runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeChoice {
    /// Whatever answers: CRI or Docker.
    #[default]
    Auto,
    Cri,
    Docker,
}

/// Socket paths tried in order by auto-detection, as seen on the host, with
/// the runtime that usually listens there (for the log and the order of
/// questions; the protocol itself is asked).
pub const WELL_KNOWN_SOCKETS: &[(&str, &str)] = &[
    ("/run/containerd/containerd.sock", "containerd"),
    ("/run/k3s/containerd/containerd.sock", "k3s"),
    ("/var/snap/microk8s/common/run/containerd.sock", "MicroK8s"),
    ("/var/run/crio/crio.sock", "CRI-O"),
    ("/var/run/cri-dockerd.sock", "cri-dockerd"),
    ("/var/run/docker.sock", "Docker"),
    ("/run/podman/podman.sock", "Podman"),
];

/// The runtime that answered and the socket it answered on.
#[derive(Debug)]
pub struct Connected {
    pub runtime: AnyRuntime,
    pub socket: PathBuf,
}

/// Either backend, so the engine can stay generic over one concrete type.
#[derive(Debug)]
pub enum AnyRuntime {
    Cri(CriRuntime),
    Docker(DockerRuntime),
}

/// One socket that was tried and why it was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub socket: PathBuf,
    pub reason: String,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.socket.display(), self.reason)
    }
}

/// No usable runtime socket: every path tried, each with its reason.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("no container runtime answered on the well-known sockets under {host_root}; tried: {}", join(.attempts))]
    NoneAnswered {
        host_root: PathBuf,
        attempts: Vec<Attempt>,
    },
    #[error("container runtime socket did not answer: {attempt}")]
    SocketUnusable { attempt: Attempt },
    /// `--runtime` named one protocol and the socket speaks the other: the
    /// raw failure of the asked protocol alone would read like a broken
    /// runtime, so the fix is named first and the failure kept as the cause.
    #[error("socket {} speaks {}, not {}: use --runtime {} (or auto)", .attempt.socket.display(), name(*.speaks), name(*.asked), flag(*.speaks))]
    WrongProtocol {
        attempt: Attempt,
        speaks: Protocol,
        asked: Protocol,
        #[source]
        cause: ProbeFailure,
    },
}

/// What the asked protocol's probe answered, kept in the error chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeFailure(pub String);

fn name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Cri => "CRI",
        Protocol::Docker => "the Docker Engine API",
    }
}

fn flag(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Cri => "cri",
        Protocol::Docker => "docker",
    }
}

impl DetectError {
    /// Every path tried, in order.
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            DetectError::NoneAnswered { attempts, .. } => attempts,
            DetectError::SocketUnusable { attempt }
            | DetectError::WrongProtocol { attempt, .. } => std::slice::from_ref(attempt),
        }
    }
}

fn join(attempts: &[Attempt]) -> String {
    let parts: Vec<String> = attempts.iter().map(Attempt::to_string).collect();
    parts.join("; ")
}

/// Finds and connects to the runtime.
///
/// With `socket`, only that path is tried, exactly as given (a `unix://`
/// prefix is accepted): `host_root` is NOT applied to it, because an explicit
/// path names the socket where puller sees it, inside its own container.
/// Without it, each of [`WELL_KNOWN_SOCKETS`] is tried under `host_root`, in
/// order, and the first that answers is used. `choice` limits which
/// protocol is asked.
pub async fn connect(
    choice: RuntimeChoice,
    socket: Option<&Path>,
    host_root: &Path,
) -> Result<Connected, DetectError> {
    if let Some(socket) = socket {
        return connect_explicit(choice, strip_scheme(socket)).await;
    }

    let mut attempts = Vec::new();
    for (path, name) in WELL_KNOWN_SOCKETS {
        let socket = under_root(host_root, Path::new(path));
        match try_socket(choice, &socket, Some(name)).await {
            Ok(runtime) => return Ok(connected(runtime, socket, Some(name))),
            Err(reason) => attempts.push(Attempt { socket, reason }),
        }
    }

    Err(DetectError::NoneAnswered {
        host_root: host_root.to_path_buf(),
        attempts,
    })
}

/// Only `socket` is tried. When the one protocol `choice` names fails, the
/// other is asked once, so that a mismatch is reported as such.
async fn connect_explicit(
    choice: RuntimeChoice,
    socket: PathBuf,
) -> Result<Connected, DetectError> {
    let reason = match try_socket(choice, &socket, None).await {
        Ok(runtime) => return Ok(connected(runtime, socket, None)),
        Err(reason) => reason,
    };

    let attempt = Attempt { socket, reason };
    let Some(asked) = named_protocol(choice) else {
        return Err(DetectError::SocketUnusable { attempt });
    };
    let speaks = other(asked);
    if probe(speaks, &attempt.socket).await.is_err() {
        return Err(DetectError::SocketUnusable { attempt });
    }

    let cause = ProbeFailure(attempt.reason.clone());
    Err(DetectError::WrongProtocol {
        attempt,
        speaks,
        asked,
        cause,
    })
}

fn named_protocol(choice: RuntimeChoice) -> Option<Protocol> {
    match choice {
        RuntimeChoice::Auto => None,
        RuntimeChoice::Cri => Some(Protocol::Cri),
        RuntimeChoice::Docker => Some(Protocol::Docker),
    }
}

fn other(protocol: Protocol) -> Protocol {
    match protocol {
        Protocol::Cri => Protocol::Docker,
        Protocol::Docker => Protocol::Cri,
    }
}

async fn probe(protocol: Protocol, socket: &Path) -> Result<AnyRuntime, RuntimeError> {
    match protocol {
        Protocol::Cri => CriRuntime::connect(socket).await.map(AnyRuntime::Cri),
        Protocol::Docker => DockerRuntime::connect(socket).await.map(AnyRuntime::Docker),
    }
}

fn connected(runtime: AnyRuntime, socket: PathBuf, usual: Option<&str>) -> Connected {
    tracing::info!(
        socket = %socket.display(),
        protocol = ?runtime.protocol(),
        runtime = %runtime.describe(),
        usually = usual,
        "container runtime found"
    );
    Connected { runtime, socket }
}

/// `host_root` joined with an absolute host path (a plain `join` would
/// discard the root, since the path is absolute).
fn under_root(host_root: &Path, path: &Path) -> PathBuf {
    host_root.join(path.strip_prefix("/").unwrap_or(path))
}

fn strip_scheme(socket: &Path) -> PathBuf {
    let text = socket.to_string_lossy();
    match text.strip_prefix("unix://") {
        Some(rest) => PathBuf::from(rest),
        None => socket.to_path_buf(),
    }
}

/// Asks `socket` each protocol `choice` allows; on failure returns why, with
/// each protocol's answer.
async fn try_socket(
    choice: RuntimeChoice,
    socket: &Path,
    usual: Option<&str>,
) -> Result<AnyRuntime, String> {
    check_is_socket(socket)?;

    let mut reasons = Vec::new();
    for protocol in questions(choice, usual) {
        match probe(protocol, socket).await {
            Ok(runtime) => return Ok(runtime),
            Err(error) => {
                tracing::debug!(socket = %socket.display(), ?protocol, %error, "socket did not answer");
                reasons.push(error.message);
            }
        }
    }
    Err(reasons.join("; "))
}

/// A missing path or a plain file is reported as such, without a connect.
fn check_is_socket(socket: &Path) -> Result<(), String> {
    match std::fs::metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => Ok(()),
        Ok(_) => Err("exists but is not a socket".to_string()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err("no such socket".to_string())
        }
        Err(error) => Err(format!("cannot stat: {error}")),
    }
}

/// The protocols to ask, in order. Docker and Podman sockets are asked the
/// Docker question first, every other the CRI one.
fn questions(choice: RuntimeChoice, usual: Option<&str>) -> Vec<Protocol> {
    match choice {
        RuntimeChoice::Cri => vec![Protocol::Cri],
        RuntimeChoice::Docker => vec![Protocol::Docker],
        RuntimeChoice::Auto if matches!(usual, Some("Docker" | "Podman")) => {
            vec![Protocol::Docker, Protocol::Cri]
        }
        RuntimeChoice::Auto => vec![Protocol::Cri, Protocol::Docker],
    }
}

impl Runtime for AnyRuntime {
    fn protocol(&self) -> Protocol {
        match self {
            AnyRuntime::Cri(r) => r.protocol(),
            AnyRuntime::Docker(r) => r.protocol(),
        }
    }

    fn describe(&self) -> String {
        match self {
            AnyRuntime::Cri(r) => r.describe(),
            AnyRuntime::Docker(r) => r.describe(),
        }
    }

    async fn image_status(&self, image: &ImageRef) -> Result<Option<ImageInfo>, RuntimeError> {
        match self {
            AnyRuntime::Cri(r) => r.image_status(image).await,
            AnyRuntime::Docker(r) => r.image_status(image).await,
        }
    }

    async fn pull(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
        progress: &Progress,
    ) -> Result<ImageInfo, RuntimeError> {
        match self {
            AnyRuntime::Cri(r) => r.pull(image, credential, progress).await,
            AnyRuntime::Docker(r) => r.pull(image, credential, progress).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::*;

    /// A fresh directory standing in for a node's root filesystem.
    fn host_root(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("prepull-detect-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp host root");
        dir
    }

    fn place(root: &Path, well_known: &str) -> PathBuf {
        let path = under_root(root, Path::new(well_known));
        std::fs::create_dir_all(path.parent().expect("socket has a parent")).expect("mkdir");
        path
    }

    /// Serves just enough of the Docker Engine API (`/_ping`, `/version`)
    /// on `path` for detection; anything else (such as a CRI client's HTTP/2
    /// preface) gets the connection closed, as dockerd does.
    fn fake_docker(path: &Path) {
        let listener = UnixListener::bind(path).expect("bind fake docker socket");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer_http(stream);
            }
        });
    }

    fn answer_http(mut stream: UnixStream) {
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        let head = String::from_utf8_lossy(&request);
        let body = if head.starts_with("GET") && head.contains("/_ping") {
            "OK"
        } else if head.starts_with("GET") && head.contains("/version") {
            r#"{"Version":"99.0-fake","ApiVersion":"1.41","Platform":{"Name":"Fake Engine"}}"#
        } else {
            return;
        };
        let reply = format!(
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(reply.as_bytes());
    }

    /// A socket file nobody listens on: connecting is refused.
    fn dead_socket(path: &Path) {
        drop(UnixListener::bind(path).expect("bind dead socket"));
    }

    #[tokio::test]
    async fn auto_asks_each_socket_under_the_host_root_until_one_answers() {
        let root = host_root("auto");
        std::fs::write(place(&root, "/run/containerd/containerd.sock"), b"").expect("plain file");
        dead_socket(&place(&root, "/var/run/crio/crio.sock"));
        let docker = place(&root, "/var/run/docker.sock");
        fake_docker(&docker);

        let connected = connect(RuntimeChoice::Auto, None, &root)
            .await
            .expect("docker answers");

        assert_eq!(connected.socket, docker);
        assert_eq!(connected.runtime.protocol(), Protocol::Docker);
        assert!(
            connected
                .runtime
                .describe()
                .starts_with("Fake Engine 99.0-fake (API 1.41)")
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn a_refusal_lists_every_path_with_its_reason() {
        let root = host_root("refusal");
        std::fs::write(place(&root, "/run/containerd/containerd.sock"), b"").expect("plain file");
        dead_socket(&place(&root, "/var/run/crio/crio.sock"));
        fake_docker(&place(&root, "/var/run/docker.sock"));

        let error = connect(RuntimeChoice::Cri, None, &root)
            .await
            .expect_err("no CRI socket");

        let reasons: Vec<(&str, &str)> = error
            .attempts()
            .iter()
            .map(|a| {
                (
                    a.socket
                        .strip_prefix(&root)
                        .expect("under root")
                        .to_str()
                        .expect("utf-8"),
                    a.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(reasons.len(), WELL_KNOWN_SOCKETS.len());
        assert_eq!(
            reasons[0],
            (
                "run/containerd/containerd.sock",
                "exists but is not a socket"
            )
        );
        assert_eq!(
            reasons[1],
            ("run/k3s/containerd/containerd.sock", "no such socket")
        );
        assert!(reasons[3].1.contains("refused"), "{}", reasons[3].1);
        assert!(
            reasons[5].1.starts_with("cri version: "),
            "{}",
            reasons[5].1
        );
        let text = error.to_string();
        for (path, _) in WELL_KNOWN_SOCKETS {
            assert!(text.contains(path), "{path} missing from: {text}");
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn an_explicit_socket_is_used_as_given_without_the_host_root() {
        let root = host_root("explicit");
        let socket = root.join("engine.sock");
        fake_docker(&socket);
        let given = PathBuf::from(format!("unix://{}", socket.display()));

        let connected = connect(
            RuntimeChoice::Docker,
            Some(&given),
            Path::new("/nonexistent"),
        )
        .await
        .expect("explicit socket answers");
        assert_eq!(connected.socket, socket);

        let error = connect(RuntimeChoice::Cri, Some(&socket), Path::new("/"))
            .await
            .expect_err("the fake does not speak CRI");
        assert_eq!(error.attempts().len(), 1);
        assert_eq!(error.attempts()[0].socket, socket);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn a_protocol_mismatch_names_the_protocol_the_socket_speaks() {
        let root = host_root("mismatch");
        let socket = root.join("docker.sock");
        fake_docker(&socket);

        let error = connect(RuntimeChoice::Cri, Some(&socket), Path::new("/"))
            .await
            .expect_err("the fake speaks only the Docker API");

        assert_eq!(
            error.to_string(),
            format!(
                "socket {} speaks the Docker Engine API, not CRI: use --runtime docker (or auto)",
                socket.display()
            )
        );
        let cause = std::error::Error::source(&error)
            .expect("raw cause kept")
            .to_string();
        assert!(cause.starts_with("cri version: "), "{cause}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn a_socket_that_speaks_neither_protocol_is_not_called_a_mismatch() {
        let root = host_root("neither");
        let socket = root.join("dead.sock");
        dead_socket(&socket);

        let error = connect(RuntimeChoice::Docker, Some(&socket), Path::new("/"))
            .await
            .expect_err("nobody listens");

        assert!(
            matches!(error, DetectError::SocketUnusable { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("refused"), "{error}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_mismatch_message_names_the_flag_for_cri() {
        let error = DetectError::WrongProtocol {
            attempt: Attempt {
                socket: PathBuf::from("/x/containerd.sock"),
                reason: "docker ping: invalid HTTP version parsed".to_owned(),
            },
            speaks: Protocol::Cri,
            asked: Protocol::Docker,
            cause: ProbeFailure("docker ping: invalid HTTP version parsed".to_owned()),
        };

        assert_eq!(
            error.to_string(),
            "socket /x/containerd.sock speaks CRI, not the Docker Engine API: use --runtime cri (or auto)"
        );
        assert_eq!(
            error.attempts()[0].reason,
            "docker ping: invalid HTTP version parsed"
        );
    }

    #[test]
    fn docker_named_sockets_get_the_docker_question_first() {
        assert_eq!(
            questions(RuntimeChoice::Auto, Some("Podman")),
            [Protocol::Docker, Protocol::Cri]
        );
        assert_eq!(
            questions(RuntimeChoice::Auto, Some("cri-dockerd")),
            [Protocol::Cri, Protocol::Docker]
        );
        assert_eq!(
            questions(RuntimeChoice::Auto, None),
            [Protocol::Cri, Protocol::Docker]
        );
        assert_eq!(
            questions(RuntimeChoice::Docker, Some("containerd")),
            [Protocol::Docker]
        );
    }

    #[test]
    fn host_root_prefixes_the_absolute_path() {
        let joined = under_root(
            Path::new("/host"),
            Path::new("/run/containerd/containerd.sock"),
        );
        assert_eq!(joined, Path::new("/host/run/containerd/containerd.sock"));
        let same = under_root(Path::new("/"), Path::new("/var/run/docker.sock"));
        assert_eq!(same, Path::new("/var/run/docker.sock"));
    }
}
