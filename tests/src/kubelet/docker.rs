//! The same pod through dockerd, as a kubelet with cri-dockerd would run it,
//! spelled as `docker run` options: init containers run to their end one
//! after another, then the main containers run detached.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{Error, Result};
use super::manifest::{Container, PodSpec, bytes, millicores};
use crate::dockerd::Dockerd;

/// A container run through dockerd, by name.
#[derive(Debug)]
pub struct DockerPod<'d> {
    dockerd: &'d Dockerd,
    spec: PodSpec,
    prefix: String,
    dir: PathBuf,
    /// Init containers as they ended: (name, exit code, termination message).
    pub init: Vec<(String, i32, String)>,
    running: Vec<String>,
}

/// A main container stopped by [`DockerPod::stop`].
#[derive(Debug, Clone)]
pub struct DockerStopped {
    pub name: String,
    pub exit_code: i32,
    /// From `docker stop` being run to its return (the container has exited).
    pub took: Duration,
}

impl<'d> DockerPod<'d> {
    /// Runs `spec` on `dockerd`: each init container to its end (exit 0
    /// required), then each main container detached. Host files (volumes,
    /// termination messages) go under `dir`; container names start with
    /// `prefix`.
    pub fn run(
        dockerd: &'d Dockerd,
        spec: &PodSpec,
        config_maps: &BTreeMap<String, BTreeMap<String, String>>,
        dir: &Path,
        prefix: &str,
    ) -> Result<DockerPod<'d>> {
        let mut pod = DockerPod {
            dockerd,
            spec: spec.clone(),
            prefix: prefix.to_string(),
            dir: dir.to_path_buf(),
            init: Vec::new(),
            running: Vec::new(),
        };
        pod.materialise(config_maps)?;

        for container in spec.init_containers.clone() {
            pod.run_init(&container)?;
        }
        for container in spec.containers.clone() {
            pod.start(&container)?;
        }
        Ok(pod)
    }

    fn materialise(&self, config_maps: &BTreeMap<String, BTreeMap<String, String>>) -> Result<()> {
        for volume in &self.spec.volumes {
            let Some(source) = &volume.config_map else {
                continue;
            };
            let data = config_maps.get(&source.name).ok_or_else(|| {
                Error::Manifest(format!("ConfigMap {} is not rendered", source.name))
            })?;
            let target = self.volume_dir(&volume.name);
            fs::create_dir_all(&target).map_err(|e| Error::io("create directory", &target, e))?;
            for (key, value) in data {
                let path = target.join(key);
                fs::write(&path, value).map_err(|e| Error::io("write", &path, e))?;
                let mode = fs::Permissions::from_mode(source.default_mode.unwrap_or(0o644));
                fs::set_permissions(&path, mode).map_err(|e| Error::io("chmod", &path, e))?;
            }
        }
        Ok(())
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.dir.join("volumes").join(name)
    }

    /// The host file bound at `name`'s termination message path.
    pub fn message_file(&self, name: &str) -> PathBuf {
        self.dir
            .join("containers")
            .join(name)
            .join("termination-log")
    }

    fn docker_name(&self, container: &str) -> String {
        format!("{}-{container}", self.prefix)
    }

    fn run_init(&mut self, container: &Container) -> Result<()> {
        let name = self.docker_name(&container.name);
        let args = self.run_args(container, &name)?;
        self.docker(&args)?;

        let code = self.docker(&["wait", &name])?;
        let code: i32 = code
            .trim()
            .parse()
            .map_err(|_| Error::pod(&name, format!("docker wait answered {code:?}")))?;
        let message = fs::read_to_string(self.message_file(&container.name)).unwrap_or_default();
        self.init
            .push((container.name.clone(), code, message.clone()));

        if code != 0 {
            let logs = self
                .docker(&["logs", "--tail", "80", &name])
                .unwrap_or_default();
            return Err(Error::pod(
                &name,
                format!("init container exited {code}: {message}\nlog:\n{logs}"),
            ));
        }
        Ok(())
    }

    fn start(&mut self, container: &Container) -> Result<()> {
        let name = self.docker_name(&container.name);
        let args = self.run_args(container, &name)?;
        self.docker(&args)?;

        let running = self.docker(&["inspect", "--format", "{{.State.Running}}", &name])?;
        if running.trim() != "true" {
            let logs = self
                .docker(&["logs", "--tail", "80", &name])
                .unwrap_or_default();
            return Err(Error::pod(
                &name,
                format!("not running after its start\nlog:\n{logs}"),
            ));
        }
        self.running.push(name);
        Ok(())
    }

    /// `docker run -d` for `container`, after the runAsNonRoot check.
    fn run_args(&self, container: &Container, name: &str) -> Result<Vec<String>> {
        let sc = container.effective_security(&self.spec.security_context);
        if sc.run_as_non_root == Some(true) {
            let image_user = self.image_user(&container.image)?;
            verify_non_root(name, sc.run_as_user, &image_user)?;
        }
        let message = self.message_file(&container.name);
        create_message_file(&message)?;

        let mut args = strings(&["run", "--detach", "--name", name, "--network", "host"]);
        args.extend(security_args(&sc));
        args.extend(resource_args(container)?);
        for mount in &container.volume_mounts {
            args.push("--mount".into());
            args.push(self.mount_arg(&mount.name, &mount.mount_path, mount.read_only)?);
        }
        args.push("--mount".into());
        args.push(bind(&message, container.termination_path(), false));
        for env in &container.env {
            args.push("--env".into());
            args.push(format!("{}={}", env.name, env.value));
        }
        args.extend(command_args(container));
        Ok(args)
    }

    fn mount_arg(&self, volume: &str, target: &str, read_only: bool) -> Result<String> {
        let volume = self.spec.volume(volume)?;
        let source = match (&volume.config_map, &volume.host_path) {
            (Some(_), _) => self.volume_dir(&volume.name),
            (None, Some(host)) => PathBuf::from(&host.path),
            (None, None) => {
                return Err(Error::Manifest(format!(
                    "volume {} has no source",
                    volume.name
                )));
            }
        };
        Ok(bind(&source, target, read_only))
    }

    /// The image's configured user, pulling the image first if needed.
    fn image_user(&self, image: &str) -> Result<String> {
        if self.dockerd.image(image)?.is_none() {
            self.docker(&["pull", "--quiet", image])?;
        }
        let user = self.docker(&["image", "inspect", "--format", "{{.Config.User}}", image])?;
        Ok(user.trim().to_string())
    }

    fn docker(&self, args: &[impl AsRef<str>]) -> Result<String> {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        Ok(self.dockerd.docker(&args)?)
    }

    /// `docker stop --time GRACE` for each main container (the pod's grace
    /// period), timed; then every container of the pod is removed.
    pub fn stop(self) -> Result<Vec<DockerStopped>> {
        let grace = self.spec.grace_period().as_secs().to_string();
        let mut stopped = Vec::new();
        for name in &self.running {
            let started = Instant::now();
            self.docker(&["stop", "--time", &grace, name])?;
            let took = started.elapsed();
            stopped.push(DockerStopped {
                name: name.clone(),
                exit_code: exit_code(self.dockerd, name)?,
                took,
            });
        }
        Ok(stopped)
    }
}

impl Drop for DockerPod<'_> {
    fn drop(&mut self) {
        let names = self
            .spec
            .init_containers
            .iter()
            .chain(&self.spec.containers)
            .map(|c| self.docker_name(&c.name));
        for name in names.collect::<Vec<_>>() {
            let _ = self.dockerd.docker(&["rm", "--force", &name]);
        }
    }
}

/// The exit code docker recorded for container `name`.
pub fn exit_code(dockerd: &Dockerd, name: &str) -> Result<i32> {
    let text = dockerd.docker(&["inspect", "--format", "{{.State.ExitCode}}", name])?;
    text.trim()
        .parse()
        .map_err(|_| Error::pod(name, format!("docker inspect exit code {text:?}")))
}

/// The kubelet's `runAsNonRoot` check with docker's view of the image user
/// (`uid`, `uid:gid`, a name, or empty for root).
fn verify_non_root(name: &str, run_as_user: Option<i64>, image_user: &str) -> Result<()> {
    let refuse = |why: String| Err(Error::pod(name, format!("runAsNonRoot: {why}")));
    if let Some(uid) = run_as_user {
        return if uid == 0 {
            refuse("runAsUser is 0".into())
        } else {
            Ok(())
        };
    }
    let user = image_user.split(':').next().unwrap_or("");
    match user.parse::<i64>() {
        Ok(0) => refuse("the image runs as root".into()),
        Ok(_) => Ok(()),
        Err(_) if user.is_empty() => refuse("the image runs as root".into()),
        Err(_) => refuse(format!("image user {user:?} is not numeric")),
    }
}

/// Security context as `docker run` options.
fn security_args(sc: &super::manifest::SecurityContext) -> Vec<String> {
    let mut args = Vec::new();
    match (sc.run_as_user, sc.run_as_group) {
        (Some(u), Some(g)) => args.extend(["--user".to_string(), format!("{u}:{g}")]),
        (Some(u), None) => args.extend(["--user".to_string(), u.to_string()]),
        _ => {}
    }
    if sc.privileged == Some(true) {
        args.push("--privileged".into());
    }
    if sc.read_only_root_filesystem == Some(true) {
        args.push("--read-only".into());
    }
    if sc.allow_privilege_escalation == Some(false) {
        args.extend(strings(&["--security-opt", "no-new-privileges"]));
    }
    let caps = sc.capabilities.clone().unwrap_or_default();
    for cap in caps.drop {
        args.extend(["--cap-drop".to_string(), cap]);
    }
    for cap in caps.add {
        args.extend(["--cap-add".to_string(), cap]);
    }
    // docker's default seccomp profile is its RuntimeDefault; no profile in
    // Kubernetes means unconfined.
    let confined = sc
        .seccomp_profile
        .as_ref()
        .is_some_and(|s| s.kind == "RuntimeDefault");
    if !confined {
        args.extend(strings(&["--security-opt", "seccomp=unconfined"]));
    }
    args
}

/// Requests and limits as the kubelet would set them through cri-dockerd.
fn resource_args(container: &Container) -> Result<Vec<String>> {
    let r = &container.resources;
    let mut args = Vec::new();
    if let Some(q) = r.requests.get("cpu").or_else(|| r.limits.get("cpu")) {
        let shares = (millicores(q)? * 1024 / 1000).max(2);
        args.extend(["--cpu-shares".to_string(), shares.to_string()]);
    }
    if let Some(q) = r.limits.get("cpu") {
        let quota = (millicores(q)? * 100).max(1000);
        args.extend(["--cpu-period".to_string(), "100000".to_string()]);
        args.extend(["--cpu-quota".to_string(), quota.to_string()]);
    }
    if let Some(q) = r.limits.get("memory") {
        args.extend(["--memory".to_string(), bytes(q)?.to_string()]);
    }
    Ok(args)
}

/// Kubernetes' `command` replaces the image's entrypoint and `args` its
/// command; `docker run` takes one `--entrypoint` word, so the rest of
/// `command` goes before `args` on the command line.
fn command_args(container: &Container) -> Vec<String> {
    let mut args = Vec::new();
    let mut positional = Vec::new();
    if let Some((first, rest)) = container.command.split_first() {
        args.extend(["--entrypoint".to_string(), first.clone()]);
        positional.extend(rest.iter().cloned());
    }
    positional.extend(container.args.iter().cloned());
    args.push(container.image.clone());
    args.extend(positional);
    args
}

fn bind(source: &Path, target: &str, read_only: bool) -> String {
    let ro = if read_only { ",readonly" } else { "" };
    format!("type=bind,source={},target={target}{ro}", source.display())
}

fn create_message_file(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    fs::write(path, b"").map_err(|e| Error::io("create", path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o666))
        .map_err(|e| Error::io("chmod", path, e))
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(yaml: &str) -> Container {
        PodSpec::from_yaml(yaml).expect("pod").containers[0].clone()
    }

    #[test]
    fn command_replaces_entrypoint_and_args_follow() {
        let c = container(
            "containers:\n- name: a\n  image: i:1\n  command: [/bin/x, -v]\n  args: [--y]\n",
        );
        assert_eq!(
            command_args(&c),
            strings(&["--entrypoint", "/bin/x", "i:1", "-v", "--y"])
        );
        let c = container("containers:\n- name: a\n  image: i:1\n  args: [--y]\n");
        assert_eq!(command_args(&c), strings(&["i:1", "--y"]));
    }

    #[test]
    fn security_context_becomes_options() {
        let c = container(
            "containers:\n- name: a\n  image: i:1\n  securityContext:\n    runAsUser: 65535\n    runAsGroup: 65535\n\
             \x20   readOnlyRootFilesystem: true\n    allowPrivilegeEscalation: false\n    capabilities: {drop: [ALL]}\n\
             \x20   seccompProfile: {type: RuntimeDefault}\n",
        );
        let args = security_args(&c.effective_security(&Default::default()));
        let text = args.join(" ");
        assert!(text.contains("--user 65535:65535"), "{text}");
        assert!(text.contains("--read-only"), "{text}");
        assert!(text.contains("no-new-privileges"), "{text}");
        assert!(text.contains("--cap-drop ALL"), "{text}");
        assert!(!text.contains("seccomp=unconfined"), "{text}");
    }

    #[test]
    fn non_root_check_reads_the_image_user() {
        assert!(verify_non_root("a", None, "65535:65535").is_ok());
        assert!(verify_non_root("a", None, "0:0").is_err());
        assert!(verify_non_root("a", None, "").is_err());
        assert!(verify_non_root("a", None, "nobody").is_err());
        assert!(verify_non_root("a", Some(0), "65535").is_err());
        assert!(verify_non_root("a", Some(7), "").is_ok());
    }

    #[test]
    fn limits_become_cgroup_options() {
        let c = container(
            "containers:\n- name: a\n  image: i:1\n  resources:\n    requests: {cpu: 10m}\n    limits: {cpu: 250m, memory: 64Mi}\n",
        );
        let text = resource_args(&c).expect("args").join(" ");
        assert!(text.contains("--cpu-shares 10"), "{text}");
        assert!(text.contains("--cpu-quota 25000"), "{text}");
        assert!(text.contains(&format!("--memory {}", 64 << 20)), "{text}");
    }
}
