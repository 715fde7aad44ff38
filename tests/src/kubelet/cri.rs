//! A blocking CRI client over a runtime's unix socket: the calls a kubelet
//! makes to run one pod, and the image calls it makes before.
//!
//! The harness and the trials are synchronous, so the client owns a
//! single-threaded tokio runtime and blocks on each call; tonic's connection
//! task only needs to run while a call is in flight, which `block_on` gives it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::runtime::Runtime;
use tonic::transport::{Channel, Endpoint, Uri};

use super::api::image_service_client::ImageServiceClient;
use super::api::runtime_service_client::RuntimeServiceClient;
use super::api::{
    ContainerConfig, ContainerState, ContainerStatus, ContainerStatusRequest,
    CreateContainerRequest, Image, ImageSpec, ImageStatusRequest, ListImagesRequest,
    PodSandboxConfig, PullImageRequest, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StopContainerRequest, StopPodSandboxRequest, VersionRequest,
    VersionResponse,
};
use super::error::{Error, Result};

/// Bound on calls that only touch the runtime's own state.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Bound on one image pull from the loopback registry.
const PULL_TIMEOUT: Duration = Duration::from_secs(300);

/// How often a waiting caller asks for a container's state.
const POLL: Duration = Duration::from_millis(50);

/// A connected CRI client (containerd's CRI plugin, or any CRI runtime).
#[derive(Debug)]
pub struct CriClient {
    runtime: Runtime,
    channel: Channel,
    socket: PathBuf,
}

impl CriClient {
    /// Connects to `socket` and asks `Version`, so a socket that does not
    /// answer CRI fails here and not at the first pod.
    pub fn connect(socket: &Path) -> Result<CriClient> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("start tokio runtime for", socket, e))?;
        let channel = runtime.block_on(open_channel(socket))?;
        let client = CriClient {
            runtime,
            channel,
            socket: socket.to_path_buf(),
        };

        client.version()?;
        Ok(client)
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn runtime_service(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone())
    }

    fn image_service(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone())
    }

    /// Runs one call to completion within `limit`.
    fn call<T>(
        &self,
        name: &'static str,
        object: &str,
        limit: Duration,
        future: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        let answer = self
            .runtime
            .block_on(async { tokio::time::timeout(limit, future).await });
        match answer {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(Error::call(name, object, &status)),
            Err(_) => Err(Error::call(
                name,
                object,
                &tonic::Status::deadline_exceeded(format!("no answer in {}s", limit.as_secs())),
            )),
        }
    }

    /// `RuntimeService/Version`.
    pub fn version(&self) -> Result<VersionResponse> {
        let mut client = self.runtime_service();
        let request = VersionRequest {
            version: "v1".to_string(),
        };
        self.call("version", "runtime", CALL_TIMEOUT, client.version(request))
    }

    /// `RunPodSandbox`; returns the sandbox id.
    pub fn run_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        let mut client = self.runtime_service();
        let request = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        };
        let pod = sandbox_name(config);
        let answer = self.call(
            "run pod sandbox",
            &pod,
            PULL_TIMEOUT,
            client.run_pod_sandbox(request),
        )?;
        Ok(answer.pod_sandbox_id)
    }

    /// `StopPodSandbox`: stops every container of the sandbox, then it.
    pub fn stop_sandbox(&self, id: &str) -> Result<()> {
        let mut client = self.runtime_service();
        let request = StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call(
            "stop pod sandbox",
            id,
            CALL_TIMEOUT,
            client.stop_pod_sandbox(request),
        )
        .map(|_| ())
    }

    /// `RemovePodSandbox`: removes the sandbox and its containers.
    pub fn remove_sandbox(&self, id: &str) -> Result<()> {
        let mut client = self.runtime_service();
        let request = RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call(
            "remove pod sandbox",
            id,
            CALL_TIMEOUT,
            client.remove_pod_sandbox(request),
        )
        .map(|_| ())
    }

    /// `CreateContainer` in sandbox `sandbox_id`; returns the container id.
    pub fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox: &PodSandboxConfig,
    ) -> Result<String> {
        let mut client = self.runtime_service();
        let request = CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_string(),
            config: Some(config.clone()),
            sandbox_config: Some(sandbox.clone()),
        };
        let name = container_name(config);
        let answer = self.call(
            "create container",
            &name,
            CALL_TIMEOUT,
            client.create_container(request),
        )?;
        Ok(answer.container_id)
    }

    /// `StartContainer`.
    pub fn start_container(&self, id: &str) -> Result<()> {
        let mut client = self.runtime_service();
        let request = StartContainerRequest {
            container_id: id.to_string(),
        };
        self.call(
            "start container",
            id,
            CALL_TIMEOUT,
            client.start_container(request),
        )
        .map(|_| ())
    }

    /// `StopContainer` with a grace period of `grace` (whole seconds, as the
    /// API takes them); returns how long the call took, that is how long the
    /// container needed to exit after its stop signal.
    pub fn stop_container(&self, id: &str, grace: Duration) -> Result<Duration> {
        let mut client = self.runtime_service();
        let request = StopContainerRequest {
            container_id: id.to_string(),
            timeout: i64::try_from(grace.as_secs()).unwrap_or(i64::MAX),
        };

        let started = Instant::now();
        self.call(
            "stop container",
            id,
            grace + CALL_TIMEOUT,
            client.stop_container(request),
        )?;
        Ok(started.elapsed())
    }

    /// `ContainerStatus`; `verbose` adds the runtime's `info` map (pid, spec).
    pub fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<(ContainerStatus, std::collections::HashMap<String, String>)> {
        let mut client = self.runtime_service();
        let request = ContainerStatusRequest {
            container_id: id.to_string(),
            verbose,
        };
        let answer = self.call(
            "container status",
            id,
            CALL_TIMEOUT,
            client.container_status(request),
        )?;
        let status = answer.status.ok_or_else(|| {
            Error::call(
                "container status",
                id,
                &tonic::Status::not_found("answer has no status"),
            )
        })?;
        Ok((status, answer.info))
    }

    /// Polls `ContainerStatus` until the container has exited, or fails
    /// after `limit`.
    pub fn wait_exited(&self, id: &str, limit: Duration) -> Result<ContainerStatus> {
        let deadline = Instant::now() + limit;
        loop {
            let (status, _) = self.container_status(id, false)?;
            if status.state() == ContainerState::ContainerExited {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(Error::pod(
                    &container_label(&status),
                    format!("still {:?} after {}s", status.state(), limit.as_secs()),
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// `ImageStatus`: the image `reference` names, or `None` when absent.
    pub fn image_status(&self, reference: &str) -> Result<Option<Image>> {
        let mut client = self.image_service();
        let request = ImageStatusRequest {
            image: Some(image_spec(reference)),
            verbose: false,
        };
        let answer = self.call(
            "image status",
            reference,
            CALL_TIMEOUT,
            client.image_status(request),
        )?;
        Ok(answer.image)
    }

    /// `PullImage` for a pod, as the kubelet asks it; returns the image ref
    /// (for containerd, the image id) to create containers from.
    pub fn pull_image(&self, reference: &str, sandbox: &PodSandboxConfig) -> Result<String> {
        let mut client = self.image_service();
        let request = PullImageRequest {
            image: Some(image_spec(reference)),
            auth: None,
            sandbox_config: Some(sandbox.clone()),
        };
        let answer = self.call(
            "pull image",
            reference,
            PULL_TIMEOUT,
            client.pull_image(request),
        )?;
        Ok(answer.image_ref)
    }

    /// `ListImages` with no filter: every image the runtime holds.
    pub fn list_images(&self) -> Result<Vec<Image>> {
        let mut client = self.image_service();
        let request = ListImagesRequest { filter: None };
        let answer = self.call(
            "list images",
            "all",
            CALL_TIMEOUT,
            client.list_images(request),
        )?;
        Ok(answer.images)
    }
}

/// An `ImageSpec` naming `reference`.
pub(crate) fn image_spec(reference: &str) -> ImageSpec {
    ImageSpec {
        image: reference.to_string(),
        user_specified_image: reference.to_string(),
        ..ImageSpec::default()
    }
}

fn sandbox_name(config: &PodSandboxConfig) -> String {
    config
        .metadata
        .as_ref()
        .map_or_else(String::new, |m| format!("{}/{}", m.namespace, m.name))
}

fn container_name(config: &ContainerConfig) -> String {
    config
        .metadata
        .as_ref()
        .map_or_else(String::new, |m| m.name.clone())
}

fn container_label(status: &ContainerStatus) -> String {
    let name = status.metadata.as_ref().map_or("", |m| m.name.as_str());
    format!("container {name} ({})", status.id)
}

/// Opens the HTTP/2 connection over the unix socket. tonic wants a URI but
/// never resolves it: the connector ignores it.
async fn open_channel(socket: &Path) -> Result<Channel> {
    let path = socket.to_path_buf();
    let connector = tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move { UnixStream::connect(path).await.map(TokioIo::new) }
    });

    Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(connector)
        .await
        .map_err(|e| Error::Connect {
            socket: socket.to_path_buf(),
            detail: error_chain(&e),
        })
}

/// An error and its causes, `: `-separated (tonic keeps the useful part,
/// such as "connection refused", in the source chain).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(&format!(": {e}"));
        cause = e.source();
    }
    text
}
