//! dockerd on its own data root, exec root and socket, with the containerd it
//! manages itself.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::process::{Daemon, run_command};

/// How long dockerd gets to answer `/_ping`.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// One image as `docker image inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerImage {
    /// `sha256:…` of the image config.
    pub id: String,
    /// `repo@sha256:…` entries: the manifest digests pulled.
    pub repo_digests: Vec<String>,
    pub repo_tags: Vec<String>,
}

/// A running dockerd. Dropping it stops the daemon (which stops its containerd).
#[derive(Debug)]
pub struct Dockerd {
    daemon: Daemon,
    socket: PathBuf,
    dir: PathBuf,
}

impl Dockerd {
    /// Starts dockerd in `dir` with `storage_driver` (`overlay2` or `vfs`).
    ///
    /// No bridge and no iptables rules: the tests only pull, and the node
    /// must not change the machine's network. Registries on 127.0.0.0/8 are
    /// plain HTTP for Docker by default, so the test registry needs no flag.
    pub fn start(dir: &Path, storage_driver: &str) -> Result<Dockerd> {
        let socket = dir.join("docker.sock");
        let config = dir.join("daemon.json");
        fs::write(&config, "{}\n").map_err(|e| Error::io("write", &config, e))?;

        let mut command = Command::new("dockerd");
        command
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("--config-file")
            .arg(&config)
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .args(["--userland-proxy=false", "--storage-driver", storage_driver]);
        let daemon = Daemon::spawn("dockerd", command, &dir.join("dockerd.log"))?;

        let mut dockerd = Dockerd {
            daemon,
            socket,
            dir: dir.to_path_buf(),
        };
        let socket = dockerd.socket.clone();
        dockerd
            .daemon
            .wait_until(START_TIMEOUT, || ping(&socket).is_ok())?;
        Ok(dockerd)
    }

    /// The Docker Engine API socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon, for its log.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Runs `docker -H unix://SOCK ARGS` with a private client config.
    pub fn docker(&self, args: &[&str]) -> Result<String> {
        run_command(&mut self.docker_command(args))
    }

    /// Runs `docker ARGS` like [`Dockerd::docker`] but returns its exit
    /// status and both streams whatever the status: `docker run` without
    /// `--detach` exits with the container's code and passes the
    /// container's stderr through as its own.
    pub fn docker_output(&self, args: &[&str]) -> Result<std::process::Output> {
        let mut command = self.docker_command(args);
        command
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::io("run", "docker", e))
    }

    fn docker_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker");
        command
            .env("DOCKER_CONFIG", self.dir.join("client"))
            .arg("--host")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args);
        command
    }

    /// The image `reference` names, or `None` when dockerd does not have it.
    pub fn image(&self, reference: &str) -> Result<Option<DockerImage>> {
        let output = self
            .docker_command(&["image", "inspect", "--format", "{{json .}}", reference])
            .output()
            .map_err(|e| Error::io("run", "docker", e))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() && stderr.contains("No such image") {
            return Ok(None);
        }
        if !output.status.success() {
            return Err(Error::Command {
                command: format!("docker image inspect {reference}"),
                status: output.status.to_string(),
                stderr: stderr.trim().to_string(),
            });
        }
        parse_inspect(&String::from_utf8_lossy(&output.stdout)).map(Some)
    }

    /// Every `repo:tag` dockerd holds.
    pub fn image_tags(&self) -> Result<Vec<String>> {
        let out = self.docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])?;
        Ok(out.lines().map(str::to_string).collect())
    }
}

/// Asks the Engine API's `/_ping` over the unix socket.
fn ping(socket: &Path) -> std::io::Result<()> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("_ping answered {answer:?}")))
    }
}

fn parse_inspect(json: &str) -> Result<DockerImage> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| Error::parse("docker image inspect", e.to_string()))?;
    let strings = |key: &str| -> Vec<String> {
        value[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let id = value["Id"]
        .as_str()
        .ok_or_else(|| Error::parse("docker image inspect", format!("no Id in {json}")))?;

    Ok(DockerImage {
        id: id.to_string(),
        repo_digests: strings("RepoDigests"),
        repo_tags: strings("RepoTags"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inspect_output() {
        let json = r#"{"Id":"sha256:c0","RepoTags":["127.0.0.1:5000/a:v1"],"RepoDigests":["127.0.0.1:5000/a@sha256:m1"]}"#;
        let image = parse_inspect(json).expect("parsed");
        assert_eq!(image.id, "sha256:c0");
        assert_eq!(image.repo_digests, vec!["127.0.0.1:5000/a@sha256:m1"]);
        assert_eq!(image.repo_tags, vec!["127.0.0.1:5000/a:v1"]);
    }

    #[test]
    fn inspect_without_id_is_an_error() {
        assert!(parse_inspect("{}").is_err());
    }
}
