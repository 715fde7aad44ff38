//! The throwaway test node for prepull's end-to-end tests.
//!
//! A [`Node`] starts, each on its own temporary directory, socket and loopback
//! port, a `docker-registry`, a containerd with its CRI plugin and a dockerd,
//! and stops all of them (process groups, leftover mounts, directories) when
//! dropped. Tests build their own small images with [`ImageSpec`], push them
//! with [`Registry::push`] without going through either daemon under test,
//! then run the real `puller` binary ([`Node::puller`]) and check the result
//! through each runtime's own tools ([`Containerd::images`],
//! [`Dockerd::image`]) and the registry's access log
//! ([`Registry::repo_requests`]).
//!
//! Every failure carries context (the daemon's log tail, the command's
//! stderr): a test that cannot start its node fails, it never skips.

mod binaries;
mod containerd;
mod dockerd;
mod error;
mod image;
pub mod kubelet;
mod node;
mod process;
mod puller;
mod registry;
mod scratch;

pub use binaries::{bin_dir, binary, static_bin_dir, static_binary, target_dir, workspace_root};
pub use containerd::{Containerd, CtrImage};
pub use dockerd::{DockerImage, Dockerd};
pub use error::{Error, Result};
pub use image::{ImageFile, ImageSpec, PushedImage};
pub use node::{Node, NodeOptions, RuntimeKind, SANDBOX_NAME};
pub use process::{Daemon, run_command};
pub use puller::{ImageEvent, PullerCommand, PullerRun};
pub use registry::{Credentials, Registry, Request};
pub use scratch::{Scratch, free_port};
