//! A kubelet stand-in: runs a pod the way the kubelet would, on the test
//! node's containerd through CRI `RuntimeService` (and `ImageService`), or on
//! its dockerd through `docker run`, so the rendered `deploy/` overlays and
//! our images are proven on a real runtime without a cluster.
//!
//! What it does as the kubelet does: the pod sandbox from the runtime's
//! `sandbox_image`; images pulled per `imagePullPolicy`; init containers in
//! order, each required to exit 0; then the main containers; command, args,
//! env, volume mounts (ConfigMaps written out on the host, hostPaths checked
//! against their `type`), the security context merged with the pod's
//! (user, group, `runAsNonRoot` check, read-only root, no_new_privs,
//! capabilities, seccomp, masked paths), requests and limits as cgroup
//! settings, the termination message file bound at
//! `terminationMessagePath` and read back with its policy; stopping with
//! the pod's grace period.
//!
//! Where it differs, on purpose:
//! - every sandbox uses the node's network namespace, whatever `hostNetwork`
//!   says, so no CNI plugin is needed; the pods under test only talk to
//!   unix sockets;
//! - no API server: no service-account token, no service env vars, no
//!   `valueFrom`, no probes; pod fields that only steer scheduling are
//!   ignored and any other unknown field is refused ([`manifest`]);
//! - no restarts: a failed init container fails the run.

mod api;
mod container;
mod cri;
mod docker;
mod error;
mod manifest;
mod ours;
mod pod;

pub use api::{ContainerState, Image};
pub use cri::CriClient;
pub use docker::{DockerPod, DockerStopped, exit_code as docker_exit_code};
pub use error::{Error, Result};
pub use manifest::{PodSpec, Rendered, repository_of};
pub use ours::{OurImages, Source};
pub use pod::{Kubelet, Pod, Stopped, Terminated};
