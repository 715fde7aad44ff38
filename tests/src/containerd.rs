//! containerd with its CRI plugin, on its own root, state dir and socket.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::process::{Daemon, run_command};

/// How long containerd gets to answer with its CRI plugin loaded.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The namespace the CRI plugin keeps images in.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// One image as `ctr images ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrImage {
    /// The reference containerd stores it under (tag, digest or id form).
    pub name: String,
    /// The manifest (or index) digest it points to.
    pub digest: String,
}

/// A running containerd. Dropping it stops the daemon.
#[derive(Debug)]
pub struct Containerd {
    daemon: Daemon,
    socket: PathBuf,
    snapshotter: &'static str,
}

impl Containerd {
    /// Starts containerd in `dir`, trusting `registry_host` over plain HTTP
    /// and using `sandbox_image` for pod sandboxes.
    pub fn start(
        dir: &Path,
        registry_host: &str,
        sandbox_image: &str,
        snapshotter: &'static str,
    ) -> Result<Containerd> {
        let socket = dir.join("containerd.sock");
        write_hosts_toml(dir, registry_host)?;
        let config = dir.join("config.toml");
        let text = config_toml(dir, &socket, sandbox_image, snapshotter);
        fs::write(&config, text).map_err(|e| Error::io("write", &config, e))?;

        let mut command = Command::new("containerd");
        command.arg("--config").arg(&config);
        let daemon = Daemon::spawn("containerd", command, &dir.join("containerd.log"))?;

        let mut containerd = Containerd {
            daemon,
            socket,
            snapshotter,
        };
        containerd.wait_ready()?;
        Ok(containerd)
    }

    /// Waits until `ctr` answers and the CRI plugin reports `ok`; a CRI
    /// plugin that failed to load is an error, not a wait.
    fn wait_ready(&mut self) -> Result<()> {
        let socket = self.socket.clone();
        self.daemon
            .wait_until(START_TIMEOUT, || ctr_at(&socket, &["version"]).is_ok())?;

        let plugins = self.ctr(&["plugins", "ls"])?;
        let cri = plugins.lines().find(|l| {
            l.starts_with("io.containerd.grpc.v1") && l.split_whitespace().nth(1) == Some("cri")
        });
        match cri {
            Some(line) if line.trim_end().ends_with("ok") => Ok(()),
            Some(line) => Err(self.daemon.down(format!("CRI plugin not loaded: {line}"))),
            None => Err(self.daemon.down("no CRI plugin listed".to_string())),
        }
    }

    /// The gRPC socket (CRI and containerd API).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `overlayfs`, or `native` where overlay mounts do not work.
    pub fn snapshotter(&self) -> &str {
        self.snapshotter
    }

    /// The daemon, for its log.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Lets containerd pull from one more registry over plain HTTP, as from
    /// the node's own; containerd reads `certs.d` at every pull, so this
    /// takes effect without a restart.
    pub fn trust_registry(&self, registry_host: &str) -> Result<()> {
        self.alias_registry(registry_host, registry_host)
    }

    /// Lets containerd pull images named `name[:port]/...` from the plain
    /// HTTP registry at `address`, without any DNS entry for `name`: the
    /// name's `hosts.toml` sends every request to the address.
    pub fn alias_registry(&self, name: &str, address: &str) -> Result<()> {
        let root = self.socket.parent().unwrap_or(Path::new("/"));
        let dir = root.join("certs.d").join(name);
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;

        let text = format!(
            "server = \"http://{address}\"\n\n\
             [host.\"http://{address}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
        let path = dir.join("hosts.toml");
        fs::write(&path, text).map_err(|e| Error::io("write", &path, e))
    }

    /// Runs `ctr --address SOCK -n k8s.io ARGS` and returns its stdout.
    pub fn ctr(&self, args: &[&str]) -> Result<String> {
        ctr_at(&self.socket, args)
    }

    /// Every image in the CRI namespace.
    pub fn images(&self) -> Result<Vec<CtrImage>> {
        let out = self.ctr(&["images", "ls"])?;
        Ok(parse_images(&out))
    }

    /// The digest stored for `reference` (as containerd names it, e.g.
    /// `127.0.0.1:5000/a:v1`), or `None` when absent.
    pub fn image_digest(&self, reference: &str) -> Result<Option<String>> {
        let images = self.images()?;
        Ok(images
            .into_iter()
            .find(|i| i.name == reference)
            .map(|i| i.digest))
    }

    /// Removes images by the names containerd holds them under.
    pub fn remove_images(&self, names: &[String]) -> Result<()> {
        let mut args = vec!["images", "rm"];
        args.extend(names.iter().map(String::as_str));
        self.ctr(&args).map(|_| ())
    }
}

fn ctr_at(socket: &Path, args: &[&str]) -> Result<String> {
    let mut command = Command::new("ctr");
    command
        .arg("--address")
        .arg(socket)
        .args(["--namespace", CRI_NAMESPACE])
        .args(args);
    run_command(&mut command)
}

/// Parses `ctr images ls`: `REF TYPE DIGEST SIZE PLATFORMS LABELS`.
fn parse_images(out: &str) -> Vec<CtrImage> {
    out.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let name = cols.next()?;
            let digest = cols.nth(1)?;
            Some(CtrImage {
                name: name.to_string(),
                digest: digest.to_string(),
            })
        })
        .collect()
}

/// `certs.d/HOST/hosts.toml` telling containerd to use plain HTTP.
fn write_hosts_toml(dir: &Path, registry_host: &str) -> Result<()> {
    let host_dir = dir.join("certs.d").join(registry_host);
    fs::create_dir_all(&host_dir).map_err(|e| Error::io("create directory", &host_dir, e))?;
    let text = format!(
        "server = \"http://{registry_host}\"\n\n\
         [host.\"http://{registry_host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    );
    let path = host_dir.join("hosts.toml");
    fs::write(&path, text).map_err(|e| Error::io("write", &path, e))
}

/// Config version 2. The CRI settings these machines need: OOM score
/// adjustments restricted (runc cannot lower them here), a sandbox image from
/// the test registry, no CNI (host-network sandboxes only), and a streaming
/// server on a random port so two nodes can run side by side, and runc's
/// state under the node (its default, /run/containerd/runc, is shared by
/// every containerd on the machine).
///
/// containerd 1.6 still puts shim sockets in /run/containerd/s, named by a
/// hash of the address, so nodes do not collide there.
fn config_toml(dir: &Path, socket: &Path, sandbox_image: &str, snapshotter: &str) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{socket}"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "{snapshotter}"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  Root = "{d}/runc"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{d}/cni/bin"
  conf_dir = "{d}/cni/conf"

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "{d}/certs.d"
"#,
        socket = socket.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ctr_images() {
        let out = "REF TYPE DIGEST SIZE PLATFORMS LABELS\n\
                   127.0.0.1:5000/a:v1 application/vnd.oci.image.manifest.v1+json sha256:abc 33.2 KiB linux/amd64 io.cri-containerd.image=managed\n";
        let images = parse_images(out);
        assert_eq!(
            images,
            vec![CtrImage {
                name: "127.0.0.1:5000/a:v1".into(),
                digest: "sha256:abc".into()
            }]
        );
    }

    #[test]
    fn config_names_socket_and_sandbox() {
        let text = config_toml(
            Path::new("/tmp/n"),
            Path::new("/tmp/n/c.sock"),
            "r/p:1",
            "native",
        );
        assert!(text.contains("address = \"/tmp/n/c.sock\""), "{text}");
        assert!(text.contains("sandbox_image = \"r/p:1\""), "{text}");
        assert!(text.contains("restrict_oom_score_adj = true"), "{text}");
        assert!(text.contains("snapshotter = \"native\""), "{text}");
    }
}
