//! The whole throwaway node: registry, containerd and dockerd side by side.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::binaries::binary;
use crate::containerd::Containerd;
use crate::dockerd::Dockerd;
use crate::error::{Error, Result};
use crate::image::PushedImage;
use crate::process::run_command;
use crate::puller::PullerCommand;
use crate::registry::{Credentials, Registry};
use crate::scratch::Scratch;

/// The default sandbox image name inside the test registry. It is only
/// pulled when a pod sandbox runs, so tests that need one push it there
/// (see [`Node::sandbox_image`]) before running a sandbox.
pub const SANDBOX_NAME: &str = "e2e/sandbox:v1";

/// How the node is set up.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// When not empty, the registry demands basic auth with one of these.
    pub credentials: Vec<Credentials>,
    /// `name:tag` inside the test registry for containerd's `sandbox_image`
    /// (default [`SANDBOX_NAME`]).
    pub sandbox: Option<String>,
}

/// Which runtime a scenario talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// containerd's CRI plugin.
    Cri,
    /// dockerd's Engine API.
    Docker,
}

impl RuntimeKind {
    pub const ALL: [RuntimeKind; 2] = [RuntimeKind::Cri, RuntimeKind::Docker];

    /// The value of puller's `--runtime`.
    pub fn flag(self) -> &'static str {
        match self {
            RuntimeKind::Cri => "cri",
            RuntimeKind::Docker => "docker",
        }
    }
}

/// A registry, a containerd and a dockerd, each on its own temp dir, socket
/// and port. Dropping the node stops them all and removes every trace.
#[derive(Debug)]
pub struct Node {
    // Field order is drop order: daemons first, the directory last.
    pub dockerd: Dockerd,
    pub containerd: Containerd,
    pub registry: Registry,
    sandbox_image: String,
    names: AtomicUsize,
    scratch: Scratch,
}

impl Node {
    /// Starts a node with an open registry.
    pub fn start() -> Result<Node> {
        Node::start_with(NodeOptions::default())
    }

    /// Starts a node as `options` say; fails with the daemon's log tail
    /// when anything does not come up.
    pub fn start_with(options: NodeOptions) -> Result<Node> {
        let scratch = Scratch::new("node")?;
        let overlay = overlay_works(&scratch.subdir("overlay-probe")?);
        if !overlay {
            eprintln!("prepull-e2e: overlay mounts fail here, using native/vfs storage");
        }

        let registry = Registry::start(&scratch.subdir("registry")?, &options.credentials)?;
        let sandbox = options.sandbox.as_deref().unwrap_or(SANDBOX_NAME);
        let sandbox_image = format!("{}/{sandbox}", registry.host());
        let (containerd, dockerd) = start_runtimes(&scratch, &registry, &sandbox_image, overlay)?;

        Ok(Node {
            dockerd,
            containerd,
            registry,
            sandbox_image,
            names: AtomicUsize::new(0),
            scratch,
        })
    }

    /// The node's own directory.
    pub fn dir(&self) -> &Path {
        self.scratch.path()
    }

    /// The full reference of containerd's `sandbox_image`.
    pub fn sandbox_image(&self) -> &str {
        &self.sandbox_image
    }

    /// A repository name no other caller on this node gets: `e2e/{label}-N`.
    pub fn unique_name(&self, label: &str) -> String {
        let n = self.names.fetch_add(1, Ordering::Relaxed);
        format!("e2e/{label}-{n}")
    }

    /// A new, empty directory inside the node for one caller's files.
    pub fn work_dir(&self, label: &str) -> Result<PathBuf> {
        let n = self.names.fetch_add(1, Ordering::Relaxed);
        self.scratch.subdir(&format!("work/{label}-{n}"))
    }

    /// The socket of `kind`'s daemon.
    pub fn socket(&self, kind: RuntimeKind) -> &Path {
        match kind {
            RuntimeKind::Cri => self.containerd.socket(),
            RuntimeKind::Docker => self.dockerd.socket(),
        }
    }

    /// The built `puller`, with its output kept in a fresh work dir.
    pub fn puller(&self) -> Result<PullerCommand> {
        let binary = binary("puller")?;
        let out = self.work_dir("puller-run")?;
        Ok(PullerCommand::new(&binary, &out))
    }

    /// `puller --runtime KIND --socket SOCK` for this node's `kind` daemon.
    pub fn puller_for(&self, kind: RuntimeKind) -> Result<PullerCommand> {
        Ok(self
            .puller()?
            .arg("--runtime")
            .arg(kind.flag())
            .arg("--socket")
            .arg(self.socket(kind)))
    }

    /// The manifest digest `kind` holds for `image`'s tag, or `None`.
    pub fn runtime_digest(&self, kind: RuntimeKind, image: &PushedImage) -> Result<Option<String>> {
        match kind {
            RuntimeKind::Cri => self.containerd.image_digest(&image.reference()),
            RuntimeKind::Docker => docker_digest(&self.dockerd, image),
        }
    }
}

fn docker_digest(dockerd: &Dockerd, image: &PushedImage) -> Result<Option<String>> {
    let Some(found) = dockerd.image(&image.reference())? else {
        return Ok(None);
    };
    let prefix = format!("{}@", image.repository);
    Ok(found
        .repo_digests
        .iter()
        .find_map(|d| d.strip_prefix(&prefix))
        .map(str::to_string))
}

/// containerd and dockerd start in parallel: dockerd alone takes seconds.
fn start_runtimes(
    scratch: &Scratch,
    registry: &Registry,
    sandbox_image: &str,
    overlay: bool,
) -> Result<(Containerd, Dockerd)> {
    let containerd_dir = scratch.subdir("containerd")?;
    let dockerd_dir = scratch.subdir("dockerd")?;
    let snapshotter = if overlay { "overlayfs" } else { "native" };
    let driver = if overlay { "overlay2" } else { "vfs" };
    let host = registry.host();

    std::thread::scope(|s| {
        let docker = s.spawn(|| Dockerd::start(&dockerd_dir, driver));
        let containerd = Containerd::start(&containerd_dir, &host, sandbox_image, snapshotter);
        let docker = docker.join().unwrap_or_else(|_| {
            Err(Error::parse(
                "dockerd start",
                "the starting thread panicked",
            ))
        });
        Ok((containerd?, docker?))
    })
}

/// Whether an overlay mount works in `dir` (it does not inside some
/// containers, where the snapshotter must fall back to copying).
fn overlay_works(dir: &Path) -> bool {
    let names = ["lower", "upper", "work", "merged"];
    if names
        .iter()
        .any(|n| fs::create_dir_all(dir.join(n)).is_err())
    {
        return false;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        dir.join("lower").display(),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    let merged = dir.join("merged");
    let mounted = run_command(
        Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&merged),
    );
    mounted.is_ok() && run_command(Command::new("umount").arg(&merged)).is_ok()
}
