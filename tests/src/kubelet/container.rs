//! A template container turned into the CRI messages the kubelet sends:
//! security context, resources, mounts, and the sandbox config they go with.

use std::collections::HashMap;

use super::api::{
    Capability, ContainerConfig, ContainerMetadata, ImageSpec, Int64Value, KeyValue,
    LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, SecurityProfile, security_profile::ProfileType,
};
use super::error::{Error, Result};
use super::manifest::{
    Container, PodSpec, Resources, SeccompProfile, SecurityContext, bytes, millicores,
};

/// The paths the kubelet masks in every unprivileged container (its
/// `procMount: Default`); containerd applies exactly the list it is given,
/// so leaving it empty would unmask them.
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// The paths the kubelet makes read-only in every unprivileged container.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// CFS period the kubelet uses for CPU limits (100 ms).
const CPU_PERIOD: i64 = 100_000;

/// The kubelet's floor for cpu shares.
const MIN_SHARES: i64 = 2;

/// Who a pod is: the sandbox's metadata.
#[derive(Debug, Clone)]
pub struct PodIdentity {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

/// The node's network, a private PID namespace per container, the pod's
/// IPC: the kubelet's choice for a `hostNetwork` pod. The stand-in uses the
/// node's network for every pod, so that no CNI plugin is needed.
fn node_network() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node.into(),
        pid: NamespaceMode::Container.into(),
        ipc: NamespaceMode::Pod.into(),
        target_id: String::new(),
    }
}

/// The sandbox config for `pod`, logging under `log_directory`.
pub fn sandbox_config(
    pod: &PodIdentity,
    spec: &PodSpec,
    log_directory: &str,
) -> Result<PodSandboxConfig> {
    let sc = &spec.security_context;
    let labels = HashMap::from([
        ("io.kubernetes.pod.name".to_string(), pod.name.clone()),
        (
            "io.kubernetes.pod.namespace".to_string(),
            pod.namespace.clone(),
        ),
        ("io.kubernetes.pod.uid".to_string(), pod.uid.clone()),
    ]);
    let privileged = spec
        .init_containers
        .iter()
        .chain(&spec.containers)
        .any(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true));

    let security = LinuxSandboxSecurityContext {
        namespace_options: Some(node_network()),
        run_as_user: sc.run_as_user.map(|value| Int64Value { value }),
        run_as_group: sc.run_as_group.map(|value| Int64Value { value }),
        readonly_rootfs: false,
        privileged,
        seccomp: Some(profile(sc.seccomp_profile.as_ref())?),
    };
    Ok(PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            namespace: pod.namespace.clone(),
            attempt: 0,
        }),
        hostname: String::new(),
        log_directory: log_directory.to_string(),
        labels,
        annotations: HashMap::new(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(security),
        }),
    })
}

/// The `CreateContainer` config for `container`, from image `image_ref`
/// (the id the pull answered), with `mounts` already resolved to host paths.
pub fn container_config(
    container: &Container,
    spec: &PodSpec,
    image_ref: &str,
    mounts: Vec<Mount>,
) -> Result<ContainerConfig> {
    let sc = container.effective_security(&spec.security_context);
    let envs = container
        .env
        .iter()
        .map(|e| KeyValue {
            key: e.name.clone(),
            value: e.value.clone(),
        })
        .collect();
    let labels = HashMap::from([(
        "io.kubernetes.container.name".to_string(),
        container.name.clone(),
    )]);

    Ok(ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: container.name.clone(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image_ref.to_string(),
            user_specified_image: container.image.clone(),
            ..ImageSpec::default()
        }),
        command: container.command.clone(),
        args: container.args.clone(),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs,
        mounts,
        labels,
        annotations: HashMap::new(),
        log_path: log_path(&container.name),
        linux: Some(LinuxContainerConfig {
            resources: Some(resources(&container.resources)?),
            security_context: Some(security(&sc)?),
        }),
    })
}

/// Where a container's log goes, relative to the sandbox's log directory
/// (`NAME/0.log`, as the kubelet names the first attempt).
pub fn log_path(name: &str) -> String {
    format!("{name}/0.log")
}

fn security(sc: &SecurityContext) -> Result<LinuxContainerSecurityContext> {
    let privileged = sc.privileged == Some(true);
    let capabilities = sc.capabilities.clone().unwrap_or_default();
    let (masked, readonly) = if privileged {
        (Vec::new(), Vec::new())
    } else {
        (owned(MASKED_PATHS), owned(READONLY_PATHS))
    };

    Ok(LinuxContainerSecurityContext {
        capabilities: Some(Capability {
            add_capabilities: capabilities.add,
            drop_capabilities: capabilities.drop,
        }),
        privileged,
        namespace_options: Some(node_network()),
        run_as_user: sc.run_as_user.map(|value| Int64Value { value }),
        run_as_username: String::new(),
        readonly_rootfs: sc.read_only_root_filesystem == Some(true),
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        run_as_group: sc.run_as_group.map(|value| Int64Value { value }),
        masked_paths: masked,
        readonly_paths: readonly,
        seccomp: Some(profile(sc.seccomp_profile.as_ref())?),
    })
}

/// Kubernetes' seccomp profile as CRI's; none set means unconfined, as in
/// the kubelet.
fn profile(seccomp: Option<&SeccompProfile>) -> Result<SecurityProfile> {
    let Some(seccomp) = seccomp else {
        return Ok(SecurityProfile {
            profile_type: ProfileType::Unconfined.into(),
            localhost_ref: String::new(),
        });
    };
    let kind = match seccomp.kind.as_str() {
        "RuntimeDefault" => ProfileType::RuntimeDefault,
        "Unconfined" => ProfileType::Unconfined,
        "Localhost" => ProfileType::Localhost,
        other => return Err(Error::Manifest(format!("seccompProfile type {other:?}"))),
    };
    Ok(SecurityProfile {
        profile_type: kind.into(),
        localhost_ref: seccomp.localhost_profile.clone().unwrap_or_default(),
    })
}

/// Requests and limits as the kubelet turns them into cgroup settings: CPU
/// request into shares, CPU limit into a CFS quota, memory limit into a
/// hard limit. A limit without a request also sets the request, as the API
/// server's defaulting does.
fn resources(r: &Resources) -> Result<LinuxContainerResources> {
    let quantity =
        |map: &std::collections::BTreeMap<String, String>, key: &str| map.get(key).cloned();
    let cpu_request = quantity(&r.requests, "cpu").or_else(|| quantity(&r.limits, "cpu"));
    let cpu_shares = match cpu_request {
        Some(q) => (millicores(&q)? * 1024 / 1000).max(MIN_SHARES),
        None => MIN_SHARES,
    };
    let cpu_quota = match quantity(&r.limits, "cpu") {
        Some(q) => (millicores(&q)? * CPU_PERIOD / 1000).max(1000),
        None => 0,
    };
    let memory = match quantity(&r.limits, "memory") {
        Some(q) => bytes(&q)?,
        None => 0,
    };

    Ok(LinuxContainerResources {
        cpu_period: if cpu_quota > 0 { CPU_PERIOD } else { 0 },
        cpu_quota,
        cpu_shares,
        memory_limit_in_bytes: memory,
        oom_score_adj: 0,
    })
}

fn owned(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> PodSpec {
        PodSpec::from_yaml(yaml).expect("pod spec")
    }

    const SECURE: &str = "securityContext:\n  seccompProfile: {type: RuntimeDefault}\n\
        containers:\n- name: pause\n  image: r/pause:1\n  args: [a]\n\
        \x20 securityContext:\n    runAsUser: 65535\n    runAsGroup: 65535\n\
        \x20   allowPrivilegeEscalation: false\n    readOnlyRootFilesystem: true\n\
        \x20   capabilities: {drop: [ALL]}\n\
        \x20 resources:\n    requests: {cpu: 10m, memory: 4Mi}\n    limits: {cpu: 250m, memory: 16Mi}\n";

    #[test]
    fn security_context_is_translated() {
        let spec = pod(SECURE);
        let config =
            container_config(&spec.containers[0], &spec, "sha256:1", Vec::new()).expect("config");
        let linux = config.linux.expect("linux");
        let sc = linux.security_context.expect("security");

        assert_eq!(sc.run_as_user, Some(Int64Value { value: 65535 }));
        assert_eq!(sc.run_as_group, Some(Int64Value { value: 65535 }));
        assert!(sc.no_new_privs);
        assert!(sc.readonly_rootfs);
        assert!(!sc.privileged);
        assert_eq!(
            sc.capabilities.expect("caps").drop_capabilities,
            vec!["ALL"]
        );
        assert_eq!(
            sc.seccomp.expect("seccomp").profile_type(),
            ProfileType::RuntimeDefault
        );
        assert!(sc.masked_paths.contains(&"/proc/kcore".to_string()));
        let ns = sc.namespace_options.expect("namespaces");
        assert_eq!(ns.network(), NamespaceMode::Node);
        assert_eq!(config.args, vec!["a"]);
        assert_eq!(config.log_path, "pause/0.log");
    }

    #[test]
    fn resources_become_cgroup_settings() {
        let spec = pod(SECURE);
        let config =
            container_config(&spec.containers[0], &spec, "sha256:1", Vec::new()).expect("config");
        let r = config.linux.and_then(|l| l.resources).expect("resources");

        assert_eq!(r.cpu_shares, 10);
        assert_eq!(r.cpu_quota, 25_000);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.memory_limit_in_bytes, 16 << 20);
    }

    #[test]
    fn no_seccomp_profile_means_unconfined() {
        let spec = pod("containers:\n- name: a\n  image: b\n");
        let config = container_config(&spec.containers[0], &spec, "x", Vec::new()).expect("config");
        let sc = config
            .linux
            .and_then(|l| l.security_context)
            .expect("security");
        assert_eq!(
            sc.seccomp.expect("seccomp").profile_type(),
            ProfileType::Unconfined
        );
        assert!(!sc.no_new_privs);
    }

    #[test]
    fn sandbox_uses_node_network_and_pod_seccomp() {
        let spec = pod(SECURE);
        let who = PodIdentity {
            name: "p".into(),
            namespace: "ns".into(),
            uid: "u1".into(),
        };
        let config = sandbox_config(&who, &spec, "/tmp/logs").expect("sandbox");
        let sc = config
            .linux
            .and_then(|l| l.security_context)
            .expect("security");

        assert_eq!(config.log_directory, "/tmp/logs");
        assert_eq!(
            sc.namespace_options.expect("ns").network(),
            NamespaceMode::Node
        );
        assert_eq!(
            sc.seccomp.expect("seccomp").profile_type(),
            ProfileType::RuntimeDefault
        );
    }
}
