//! Running one pod through CRI the way the kubelet does: volumes on the
//! host, the sandbox, images pulled per the pull policy, init containers one
//! after another (each must exit 0), then the main containers; and stopping
//! it with the pod's grace period.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::api::{
    ContainerState, ContainerStatus, Image, Mount, MountPropagation, PodSandboxConfig,
};
use super::container::{PodIdentity, container_config, log_path, sandbox_config};
use super::cri::CriClient;
use super::error::{Error, Result};
use super::manifest::{Container, PodSpec, Volume};

/// How long an init container may run (puller pulls a few small images
/// from a loopback registry).
const INIT_TIMEOUT: Duration = Duration::from_secs(300);

/// The kubelet reads at most this much of a termination message file.
const MESSAGE_LIMIT: usize = 4096;

/// With `FallbackToLogsOnError`, the kubelet takes at most this many lines
/// and bytes from the end of the log.
const FALLBACK_LINES: usize = 80;
const FALLBACK_BYTES: usize = 2048;

static NEXT_UID: AtomicUsize = AtomicUsize::new(0);

/// A kubelet stand-in bound to one CRI runtime, keeping pod files (logs,
/// volumes, termination messages) under its own directory.
#[derive(Debug)]
pub struct Kubelet {
    cri: CriClient,
    dir: PathBuf,
}

/// A container that ran to its end, as the kubelet records it.
#[derive(Debug, Clone)]
pub struct Terminated {
    pub name: String,
    pub exit_code: i32,
    /// The runtime's reason (`Completed`, `Error`, `OOMKilled`).
    pub reason: String,
    /// The termination message, read as the kubelet reads it.
    pub message: String,
    /// The end of the container's log, for failure reports.
    pub log_tail: String,
}

/// A main container stopped by [`Pod::stop`].
#[derive(Debug, Clone)]
pub struct Stopped {
    pub terminated: Terminated,
    /// From the stop request to the container having exited.
    pub took: Duration,
}

/// A running pod. Dropping it without [`Pod::stop`] still stops and
/// removes its sandbox, so a failed test leaves no container behind.
#[derive(Debug)]
pub struct Pod<'k> {
    kubelet: &'k Kubelet,
    identity: PodIdentity,
    spec: PodSpec,
    sandbox_id: String,
    sandbox: PodSandboxConfig,
    dir: PathBuf,
    /// Host directories of ConfigMap volumes, by volume name.
    materialised: BTreeMap<String, PathBuf>,
    /// Main containers started: (name, container id).
    running: Vec<(String, String)>,
    /// The init containers, in the order they ran.
    pub init: Vec<Terminated>,
    removed: bool,
}

impl Kubelet {
    /// A kubelet for the CRI runtime at `socket`, with pod files in `dir`.
    pub fn connect(socket: &Path, dir: &Path) -> Result<Kubelet> {
        Ok(Kubelet {
            cri: CriClient::connect(socket)?,
            dir: dir.to_path_buf(),
        })
    }

    /// The CRI client, for checks through the runtime's own API.
    pub fn cri(&self) -> &CriClient {
        &self.cri
    }

    /// Runs pod `name` in `namespace` from `spec`, with the ConfigMaps it
    /// mounts; returns once every init container has exited 0 and every
    /// main container runs.
    pub fn run_pod(
        &self,
        name: &str,
        namespace: &str,
        spec: &PodSpec,
        config_maps: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Pod<'_>> {
        let uid = format!(
            "{}-{}",
            std::process::id(),
            NEXT_UID.fetch_add(1, Ordering::Relaxed)
        );
        let identity = PodIdentity {
            name: name.to_string(),
            namespace: namespace.to_string(),
            uid: uid.clone(),
        };
        let dir = self.dir.join(format!("{namespace}_{name}_{uid}"));
        let materialised = prepare_volumes(&dir, spec, config_maps)?;
        let logs = create_dir(&dir.join("logs"))?;

        let sandbox = sandbox_config(&identity, spec, &logs.display().to_string())?;
        let sandbox_id = self.cri.run_sandbox(&sandbox)?;
        let mut pod = Pod {
            kubelet: self,
            identity,
            spec: spec.clone(),
            sandbox_id,
            sandbox,
            dir,
            materialised,
            running: Vec::new(),
            init: Vec::new(),
            removed: false,
        };

        pod.run_init_containers()?;
        pod.start_main_containers()?;
        Ok(pod)
    }

    /// The image to create `container` from, pulled per its policy.
    fn ensure_image(&self, container: &Container, sandbox: &PodSandboxConfig) -> Result<Image> {
        let policy = pull_policy(container);
        if !["Always", "IfNotPresent", "Never"].contains(&policy) {
            return Err(Error::Manifest(format!("imagePullPolicy {policy:?}")));
        }

        let present = self.cri.image_status(&container.image)?;
        match (policy, present) {
            ("Never", None) => Err(Error::pod(
                &container.name,
                format!(
                    "image {} absent and imagePullPolicy is Never",
                    container.image
                ),
            )),
            ("Always", _) | (_, None) => {
                self.cri.pull_image(&container.image, sandbox)?;
                let pulled = self.cri.image_status(&container.image)?;
                pulled.ok_or_else(|| {
                    Error::pod(
                        &container.name,
                        format!("{} absent after its pull", container.image),
                    )
                })
            }
            (_, Some(image)) => Ok(image),
        }
    }
}

impl Pod<'_> {
    /// The sandbox's id in the runtime.
    pub fn sandbox_id(&self) -> &str {
        &self.sandbox_id
    }

    /// The runtime's id of main container `name`.
    pub fn container_id(&self, name: &str) -> Result<&str> {
        self.running
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.as_str())
            .ok_or_else(|| self.fail(format!("no running main container {name}")))
    }

    /// The host pid of main container `name`'s process, from the runtime's
    /// verbose status.
    pub fn pid(&self, name: &str) -> Result<u32> {
        let id = self.container_id(name)?;
        let (_, info) = self.kubelet.cri.container_status(id, true)?;
        let text = info.get("info").map_or("", String::as_str);
        let parsed: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| self.fail(format!("verbose status of {name} is not JSON: {e}")))?;
        parsed["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .ok_or_else(|| self.fail(format!("verbose status of {name} has no pid")))
    }

    fn fail(&self, detail: impl Into<String>) -> Error {
        Error::pod(
            &format!("{}/{}", self.identity.namespace, self.identity.name),
            detail,
        )
    }

    fn run_init_containers(&mut self) -> Result<()> {
        for container in self.spec.init_containers.clone() {
            let id = self.create_and_start(&container)?;
            let status = self.kubelet.cri.wait_exited(&id, INIT_TIMEOUT)?;
            let terminated = self.terminated(&container, &status);
            let failed = terminated.exit_code != 0;

            self.init.push(terminated.clone());
            if failed {
                return Err(self.fail(format!(
                    "init container {} exited {} ({}): {}\nlog:\n{}",
                    terminated.name,
                    terminated.exit_code,
                    terminated.reason,
                    terminated.message,
                    terminated.log_tail
                )));
            }
        }
        Ok(())
    }

    fn start_main_containers(&mut self) -> Result<()> {
        for container in self.spec.containers.clone() {
            let id = self.create_and_start(&container)?;
            let (status, _) = self.kubelet.cri.container_status(&id, false)?;
            if status.state() != ContainerState::ContainerRunning {
                let terminated = self.terminated(&container, &status);
                return Err(self.fail(format!(
                    "main container {} is {:?} right after its start: exit {} ({})\nlog:\n{}",
                    container.name,
                    status.state(),
                    terminated.exit_code,
                    terminated.reason,
                    terminated.log_tail
                )));
            }
            self.running.push((container.name.clone(), id));
        }
        Ok(())
    }

    fn create_and_start(&self, container: &Container) -> Result<String> {
        let image = self.kubelet.ensure_image(container, &self.sandbox)?;
        verify_non_root(container, &self.spec, &image)?;
        let mounts = self.mounts(container)?;
        let config = container_config(container, &self.spec, &image.id, mounts)?;
        create_dir(&self.dir.join("logs").join(&container.name))?;

        let cri = &self.kubelet.cri;
        let id = cri.create_container(&self.sandbox_id, &config, &self.sandbox)?;
        cri.start_container(&id)?;
        Ok(id)
    }

    /// The container's volume mounts resolved to host paths, plus the
    /// termination message file bound at its `terminationMessagePath`.
    fn mounts(&self, container: &Container) -> Result<Vec<Mount>> {
        let mut mounts = Vec::new();
        for wanted in &container.volume_mounts {
            let volume = self.spec.volume(&wanted.name)?;
            let host_path = self.host_path_of(volume)?;
            mounts.push(Mount {
                container_path: wanted.mount_path.clone(),
                host_path: host_path.display().to_string(),
                readonly: wanted.read_only,
                selinux_relabel: false,
                propagation: MountPropagation::PropagationPrivate.into(),
            });
        }

        let message = self.message_file(&container.name)?;
        mounts.push(Mount {
            container_path: container.termination_path().to_string(),
            host_path: message.display().to_string(),
            readonly: false,
            selinux_relabel: false,
            propagation: MountPropagation::PropagationPrivate.into(),
        });
        Ok(mounts)
    }

    fn host_path_of(&self, volume: &Volume) -> Result<PathBuf> {
        if let Some(dir) = self.materialised.get(&volume.name) {
            return Ok(dir.clone());
        }
        match &volume.host_path {
            Some(host) => Ok(PathBuf::from(&host.path)),
            None => Err(Error::Manifest(format!(
                "volume {} has no source",
                volume.name
            ))),
        }
    }

    /// The host file behind a container's termination message: created
    /// empty and world-writable, as the kubelet does, so any user can write it.
    fn message_file(&self, name: &str) -> Result<PathBuf> {
        let dir = create_dir(&self.dir.join("containers").join(name))?;
        let path = dir.join("termination-log");
        fs::write(&path, b"").map_err(|e| Error::io("create", &path, e))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666))
            .map_err(|e| Error::io("chmod", &path, e))?;
        Ok(path)
    }

    /// The record the kubelet keeps of an exited container.
    fn terminated(&self, container: &Container, status: &ContainerStatus) -> Terminated {
        let file = self
            .dir
            .join("containers")
            .join(&container.name)
            .join("termination-log");
        let log = self.dir.join("logs").join(log_path(&container.name));
        let mut message = read_capped(&file, MESSAGE_LIMIT);
        let log_tail = log_tail(&log, FALLBACK_LINES, FALLBACK_BYTES);
        if message.is_empty() && status.exit_code != 0 && container.falls_back_to_logs() {
            message = log_tail.clone();
        }

        Terminated {
            name: container.name.clone(),
            exit_code: status.exit_code,
            reason: status.reason.clone(),
            message,
            log_tail,
        }
    }

    /// Stops the pod as the kubelet does on deletion: each main container
    /// with the pod's grace period, then the sandbox, which is then removed.
    pub fn stop(mut self) -> Result<Vec<Stopped>> {
        let grace = self.spec.grace_period();
        let mut stopped = Vec::new();
        for (name, id) in self.running.clone() {
            let took = self.kubelet.cri.stop_container(&id, grace)?;
            let (status, _) = self.kubelet.cri.container_status(&id, false)?;
            let container = self.spec.containers.iter().find(|c| c.name == name);
            let container =
                container.ok_or_else(|| self.fail(format!("{name} not in the spec")))?;
            stopped.push(Stopped {
                terminated: self.terminated(container, &status),
                took,
            });
        }

        self.remove()?;
        Ok(stopped)
    }

    fn remove(&mut self) -> Result<()> {
        self.removed = true;
        self.kubelet.cri.stop_sandbox(&self.sandbox_id)?;
        self.kubelet.cri.remove_sandbox(&self.sandbox_id)
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        if let Err(e) = self.remove() {
            eprintln!("kubelet: cannot remove sandbox {}: {e}", self.sandbox_id);
        }
    }
}

/// `imagePullPolicy`, defaulted as the API server does: `Always` for a
/// `:latest` or untagged image, else `IfNotPresent`.
fn pull_policy(container: &Container) -> &str {
    if let Some(policy) = container.image_pull_policy.as_deref() {
        return policy;
    }
    let repository = super::manifest::repository_of(&container.image);
    let untagged = repository.len() == container.image.len();
    if untagged || container.image.ends_with(":latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The kubelet's `runAsNonRoot` check: the user the container will run as,
/// from its security context or else the image, must be known and not 0.
fn verify_non_root(container: &Container, spec: &PodSpec, image: &Image) -> Result<()> {
    let sc = container.effective_security(&spec.security_context);
    if sc.run_as_non_root != Some(true) {
        return Ok(());
    }

    let refuse = |why: &str| Err(Error::pod(&container.name, format!("runAsNonRoot: {why}")));
    match (sc.run_as_user, &image.uid, image.username.as_str()) {
        (Some(0), _, _) => refuse("runAsUser is 0"),
        (Some(_), _, _) => Ok(()),
        (None, Some(uid), _) if uid.value == 0 => refuse("the image runs as root"),
        (None, Some(_), _) => Ok(()),
        (None, None, "") => refuse("the image runs as root"),
        (None, None, name) => refuse(&format!("image user {name:?} is not numeric")),
    }
}

/// Host directories for the pod's volumes: each ConfigMap written out as
/// one file per key (with the volume's `defaultMode`); each hostPath checked
/// against its `type`, as the kubelet checks it before starting anything.
fn prepare_volumes(
    dir: &Path,
    spec: &PodSpec,
    config_maps: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<BTreeMap<String, PathBuf>> {
    let mut materialised = BTreeMap::new();
    for volume in &spec.volumes {
        match (&volume.config_map, &volume.host_path) {
            (Some(source), None) => {
                let data = config_maps.get(&source.name).ok_or_else(|| {
                    Error::Manifest(format!(
                        "volume {} names ConfigMap {} which is not rendered",
                        volume.name, source.name
                    ))
                })?;
                let target = create_dir(&dir.join("volumes").join(&volume.name))?;
                write_config_map(&target, data, source.default_mode.unwrap_or(0o644))?;
                materialised.insert(volume.name.clone(), target);
            }
            (None, Some(host)) => check_host_path(&host.path, &host.kind)?,
            _ => {
                return Err(Error::Manifest(format!(
                    "volume {}: want one of configMap, hostPath",
                    volume.name
                )));
            }
        }
    }
    Ok(materialised)
}

fn write_config_map(dir: &Path, data: &BTreeMap<String, String>, mode: u32) -> Result<()> {
    for (key, value) in data {
        let path = dir.join(key);
        fs::write(&path, value).map_err(|e| Error::io("write", &path, e))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("chmod", &path, e))?;
    }
    Ok(())
}

fn check_host_path(path: &str, kind: &str) -> Result<()> {
    let meta = fs::metadata(path);
    let ok = match kind {
        "" => true,
        "Directory" => meta.as_ref().is_ok_and(|m| m.is_dir()),
        "Socket" => meta.as_ref().is_ok_and(|m| m.file_type().is_socket()),
        "File" => meta.as_ref().is_ok_and(|m| m.is_file()),
        other => return Err(Error::Manifest(format!("hostPath type {other:?}"))),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Manifest(format!(
            "hostPath type check failed: {path} is not a {kind}"
        )))
    }
}

fn create_dir(path: &Path) -> Result<PathBuf> {
    fs::create_dir_all(path).map_err(|e| Error::io("create directory", path, e))?;
    Ok(path.to_path_buf())
}

/// At most `limit` bytes of a file (cut on a character boundary), or empty
/// when it cannot be read.
fn read_capped(path: &Path, limit: usize) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(limit)]).into_owned();
    text.trim_end_matches('\u{fffd}').to_string()
}

/// The messages of the last `lines` lines of a CRI log file (each line is
/// `TIME STREAM TAG MESSAGE`), at most `max_bytes` from the end.
fn log_tail(path: &Path, lines: usize, max_bytes: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let messages: Vec<&str> = text
        .lines()
        .map(|line| line.splitn(4, ' ').nth(3).unwrap_or(line))
        .collect();
    let tail = messages[messages.len().saturating_sub(lines)..].join("\n");
    let cut = tail.len().saturating_sub(max_bytes);
    let start = (cut..=tail.len())
        .find(|&i| tail.is_char_boundary(i))
        .unwrap_or(tail.len());
    tail[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::super::api::Int64Value;
    use super::*;
    use crate::scratch::Scratch;

    fn container(yaml: &str) -> (Container, PodSpec) {
        let spec = PodSpec::from_yaml(yaml).expect("pod");
        (spec.containers[0].clone(), spec)
    }

    fn image(uid: Option<i64>, username: &str) -> Image {
        Image {
            uid: uid.map(|value| Int64Value { value }),
            username: username.to_string(),
            ..Image::default()
        }
    }

    #[test]
    fn non_root_check_follows_the_kubelet() {
        let (c, spec) = container(
            "containers:\n- name: a\n  image: b:1\n  securityContext: {runAsNonRoot: true}\n",
        );
        assert!(verify_non_root(&c, &spec, &image(Some(65535), "")).is_ok());
        assert!(verify_non_root(&c, &spec, &image(Some(0), "")).is_err());
        assert!(verify_non_root(&c, &spec, &image(None, "")).is_err());
        assert!(verify_non_root(&c, &spec, &image(None, "nobody")).is_err());

        let (c, spec) = container(
            "containers:\n- name: a\n  image: b:1\n  securityContext: {runAsNonRoot: true, runAsUser: 0}\n",
        );
        assert!(verify_non_root(&c, &spec, &image(Some(65535), "")).is_err());
        let (c, spec) = container("containers:\n- name: a\n  image: b:1\n");
        assert!(verify_non_root(&c, &spec, &image(Some(0), "")).is_ok());
    }

    #[test]
    fn pull_policy_defaults() {
        let policy = |yaml: &str| pull_policy(&container(yaml).0).to_string();
        assert_eq!(
            policy("containers:\n- {name: a, image: 'r:5000/b:1'}\n"),
            "IfNotPresent"
        );
        assert_eq!(
            policy("containers:\n- {name: a, image: 'r:5000/b'}\n"),
            "Always"
        );
        assert_eq!(
            policy("containers:\n- {name: a, image: 'b:latest'}\n"),
            "Always"
        );
        assert_eq!(
            policy("containers:\n- {name: a, image: b, imagePullPolicy: Never}\n"),
            "Never"
        );
    }

    #[test]
    fn config_map_is_written_with_its_mode() {
        let scratch = Scratch::new("unit").expect("scratch");
        let spec = PodSpec::from_yaml(
            "containers: []\nvolumes:\n- name: v\n  configMap: {name: cm, defaultMode: 292}\n",
        )
        .expect("pod");
        let maps = BTreeMap::from([(
            "cm".to_string(),
            BTreeMap::from([("images.txt".to_string(), "a:1\n".to_string())]),
        )]);

        let dirs = prepare_volumes(scratch.path(), &spec, &maps).expect("volumes");
        let file = dirs["v"].join("images.txt");
        assert_eq!(fs::read_to_string(&file).expect("read"), "a:1\n");
        let mode = fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o444);
    }

    #[test]
    fn host_path_type_is_checked() {
        let scratch = Scratch::new("unit").expect("scratch");
        let dir = scratch.path().display().to_string();
        assert!(check_host_path(&dir, "Directory").is_ok());
        assert!(check_host_path(&dir, "Socket").is_err());
        assert!(check_host_path(&format!("{dir}/absent"), "Directory").is_err());
    }

    #[test]
    fn log_tail_keeps_messages_only() {
        let scratch = Scratch::new("unit").expect("scratch");
        let log = scratch.path().join("0.log");
        let text =
            "2026-12-03T00:00:00Z stderr F first line\n2026-12-03T00:00:01Z stderr F second one\n";
        fs::write(&log, text).expect("write");

        assert_eq!(log_tail(&log, 80, 2048), "first line\nsecond one");
        assert_eq!(log_tail(&log, 1, 2048), "second one");
        assert_eq!(log_tail(&log, 80, 3), "one");
    }
}
