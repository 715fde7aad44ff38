//! The rendered manifests a kubelet would be handed: the DaemonSet's pod
//! template and the ConfigMaps it mounts, read from `kubectl kustomize`.
//!
//! Only the pod fields the stand-in acts on are modelled. A container or
//! security context field it does not know is an error rather than silently
//! dropped, so a later edit of `deploy/` (a probe, an env var from a secret)
//! makes the test fail loudly instead of running a different pod than a real
//! kubelet would. Pod-level fields that only steer scheduling are accepted
//! and ignored: [`SCHEDULING_ONLY`].

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

use super::error::{Error, Result};
use crate::process::run_command;

/// Pod spec fields that matter to the scheduler or the API server, not to
/// the node: a single-node stand-in with no API server has nothing to do
/// with them.
pub const SCHEDULING_ONLY: &[&str] = &[
    "affinity",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "nodeSelector",
    "priorityClassName",
    "serviceAccountName",
    "tolerations",
];

/// The DaemonSet and ConfigMaps of one rendered overlay.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// `metadata.name` of the DaemonSet.
    pub name: String,
    /// `metadata.namespace` of the DaemonSet.
    pub namespace: String,
    /// The DaemonSet's `spec.template.spec`.
    pub pod: PodSpec,
    /// ConfigMaps by name: their `data`.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

/// The pod spec fields a node acts on.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub init_containers: Vec<Container>,
    pub containers: Vec<Container>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub security_context: PodSecurityContext,
    pub termination_grace_period_seconds: Option<u64>,
    #[serde(default)]
    pub host_network: bool,
    /// Everything else; must be in [`SCHEDULING_ONLY`].
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

/// One container of the template.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub image_pull_policy: Option<String>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    pub security_context: Option<SecurityContext>,
    #[serde(default)]
    pub resources: Resources,
    pub termination_message_path: Option<String>,
    pub termination_message_policy: Option<String>,
}

/// A literal environment variable (`valueFrom` needs an API server).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    #[serde(default)]
    pub read_only: bool,
}

/// A container's `securityContext`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityContext {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub privileged: Option<bool>,
    pub allow_privilege_escalation: Option<bool>,
    pub read_only_root_filesystem: Option<bool>,
    pub capabilities: Option<Capabilities>,
    pub seccomp_profile: Option<SeccompProfile>,
}

/// The pod's `securityContext` (the fields a container inherits).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSecurityContext {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub seccomp_profile: Option<SeccompProfile>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub drop: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeccompProfile {
    #[serde(rename = "type")]
    pub kind: String,
    pub localhost_profile: Option<String>,
}

/// `resources.requests` and `resources.limits`, as quantities.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

/// A pod volume: a ConfigMap or a host path.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    pub name: String,
    pub config_map: Option<ConfigMapSource>,
    pub host_path: Option<HostPathSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapSource {
    pub name: String,
    pub default_mode: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPathSource {
    pub path: String,
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl Rendered {
    /// Renders `dir` with `kubectl kustomize` and reads the result.
    pub fn kustomize(dir: &Path) -> Result<Rendered> {
        let yaml = run_command(Command::new("kubectl").arg("kustomize").arg(dir))?;
        Rendered::from_yaml(&yaml)
    }

    /// Reads a multi-document YAML stream holding one DaemonSet.
    pub fn from_yaml(yaml: &str) -> Result<Rendered> {
        let mut daemonsets = Vec::new();
        let mut config_maps = BTreeMap::new();
        for document in yaml_serde::Deserializer::from_str(yaml) {
            let object = Value::deserialize(document)
                .map_err(|e| Error::Manifest(format!("not YAML: {e}")))?;
            match object["kind"].as_str() {
                Some("DaemonSet") => daemonsets.push(object),
                Some("ConfigMap") => {
                    let (name, data) = config_map(&object)?;
                    config_maps.insert(name, data);
                }
                _ => {}
            }
        }

        let [daemonset] = <[Value; 1]>::try_from(daemonsets).map_err(|found| {
            Error::Manifest(format!("want one DaemonSet, found {}", found.len()))
        })?;
        Rendered::from_daemonset(&daemonset, config_maps)
    }

    fn from_daemonset(
        daemonset: &Value,
        config_maps: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Rendered> {
        let text = |pointer: &str| {
            daemonset
                .pointer(pointer)
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Manifest(format!("DaemonSet has no {pointer}")))
        };
        let spec = daemonset
            .pointer("/spec/template/spec")
            .ok_or_else(|| Error::Manifest("DaemonSet has no pod template".into()))?;
        let pod = PodSpec::from_value(spec.clone())?;

        Ok(Rendered {
            name: text("/metadata/name")?.to_string(),
            namespace: text("/metadata/namespace").unwrap_or("default").to_string(),
            pod,
            config_maps,
        })
    }

    /// Replaces every container image whose repository is `repository`
    /// (`prepull/puller`, whatever its tag or digest) with `image`; fails
    /// when no container used it.
    pub fn swap_image(&mut self, repository: &str, image: &str) -> Result<()> {
        let mut swapped = 0;
        for container in self.pod.all_containers_mut() {
            if repository_of(&container.image) == repository {
                container.image = image.to_string();
                swapped += 1;
            }
        }
        if swapped == 0 {
            return Err(Error::Manifest(format!("no container runs {repository}")));
        }
        Ok(())
    }

    /// Points every hostPath volume at `from` to `to` instead.
    pub fn swap_host_path(&mut self, from: &str, to: &Path) -> Result<()> {
        let volumes = self.pod.volumes.iter_mut();
        let found: Vec<&mut HostPathSource> = volumes
            .filter_map(|v| v.host_path.as_mut())
            .filter(|h| h.path == from)
            .collect();
        if found.is_empty() {
            return Err(Error::Manifest(format!("no hostPath volume at {from}")));
        }
        for host_path in found {
            host_path.path = to.display().to_string();
        }
        Ok(())
    }

    /// Replaces key `key` of every ConfigMap the pod mounts with `content`;
    /// fails when none of them has that key.
    pub fn set_config_data(&mut self, key: &str, content: &str) -> Result<()> {
        let mounted: Vec<String> = self
            .pod
            .volumes
            .iter()
            .filter_map(|v| v.config_map.as_ref().map(|c| c.name.clone()))
            .collect();
        let mut set = 0;
        for name in mounted {
            if let Some(value) = self
                .config_maps
                .get_mut(&name)
                .and_then(|data| data.get_mut(key))
            {
                *value = content.to_string();
                set += 1;
            }
        }
        if set == 0 {
            return Err(Error::Manifest(format!(
                "no mounted ConfigMap has key {key}"
            )));
        }
        Ok(())
    }
}

impl PodSpec {
    /// Reads a pod spec (JSON value) and refuses fields a node would act on
    /// but the stand-in does not know.
    pub fn from_value(value: Value) -> Result<PodSpec> {
        let pod: PodSpec = serde_json::from_value(value)
            .map_err(|e| Error::Manifest(format!("pod template: {e}")))?;
        let unknown: Vec<&String> = pod
            .rest
            .keys()
            .filter(|k| !SCHEDULING_ONLY.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::Manifest(format!(
                "pod template fields the kubelet stand-in does not support: {unknown:?}"
            )));
        }
        Ok(pod)
    }

    /// Reads a pod spec written as YAML (tests that build their own pod).
    pub fn from_yaml(yaml: &str) -> Result<PodSpec> {
        let value: Value =
            yaml_serde::from_str(yaml).map_err(|e| Error::Manifest(format!("not YAML: {e}")))?;
        PodSpec::from_value(value)
    }

    fn all_containers_mut(&mut self) -> impl Iterator<Item = &mut Container> {
        self.init_containers
            .iter_mut()
            .chain(self.containers.iter_mut())
    }

    /// The volume named `name`.
    pub fn volume(&self, name: &str) -> Result<&Volume> {
        self.volumes
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| Error::Manifest(format!("no volume named {name}")))
    }

    /// `terminationGracePeriodSeconds`, 30 s when unset as in Kubernetes.
    pub fn grace_period(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.termination_grace_period_seconds.unwrap_or(30))
    }
}

impl Container {
    /// The security context with the pod's defaults filled in, as the
    /// kubelet merges them (the container's own value wins).
    pub fn effective_security(&self, pod: &PodSecurityContext) -> SecurityContext {
        let mut sc = self.security_context.clone().unwrap_or_default();
        sc.run_as_user = sc.run_as_user.or(pod.run_as_user);
        sc.run_as_group = sc.run_as_group.or(pod.run_as_group);
        sc.run_as_non_root = sc.run_as_non_root.or(pod.run_as_non_root);
        if sc.seccomp_profile.is_none() {
            sc.seccomp_profile = pod.seccomp_profile.clone();
        }
        sc
    }

    /// `terminationMessagePath`, `/dev/termination-log` when unset.
    pub fn termination_path(&self) -> &str {
        self.termination_message_path
            .as_deref()
            .unwrap_or("/dev/termination-log")
    }

    /// Whether an empty termination message of a failed container is
    /// replaced by the tail of its log.
    pub fn falls_back_to_logs(&self) -> bool {
        self.termination_message_policy.as_deref() == Some("FallbackToLogsOnError")
    }
}

fn config_map(object: &Value) -> Result<(String, BTreeMap<String, String>)> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Manifest("ConfigMap without a name".into()))?;
    let data = object.get("data").cloned().unwrap_or(Value::Null);
    let data = if data.is_null() {
        BTreeMap::new()
    } else {
        serde_json::from_value(data)
            .map_err(|e| Error::Manifest(format!("ConfigMap {name} data: {e}")))?
    };
    Ok((name.to_string(), data))
}

/// The repository part of an image reference: without `@digest` and
/// without a `:tag` after the last `/`.
pub fn repository_of(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

/// CPU in millicores: `250m`, `1`, `0.5`.
pub fn millicores(quantity: &str) -> Result<i64> {
    let bad = || Error::Manifest(format!("cpu quantity {quantity:?}"));
    if let Some(milli) = quantity.strip_suffix('m') {
        return milli.parse().map_err(|_| bad());
    }
    let cores: f64 = quantity.parse().map_err(|_| bad())?;
    Ok((cores * 1000.0).round() as i64)
}

/// Memory in bytes: `64Mi`, `1Gi`, `500M`, `1000`.
pub fn bytes(quantity: &str) -> Result<i64> {
    const UNITS: [(&str, i64); 6] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    let bad = || Error::Manifest(format!("memory quantity {quantity:?}"));
    for (suffix, factor) in UNITS {
        if let Some(number) = quantity.strip_suffix(suffix) {
            let n: i64 = number.parse().map_err(|_| bad())?;
            return n.checked_mul(factor).ok_or_else(bad);
        }
    }
    quantity.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r#"apiVersion: v1
data:
  images.txt: |
    # list
    example.com/a:1
kind: ConfigMap
metadata:
  name: prepull-images-abc
  namespace: prepull
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: prepull
  namespace: prepull
spec:
  template:
    spec:
      automountServiceAccountToken: false
      tolerations:
      - operator: Exists
      securityContext:
        seccompProfile:
          type: RuntimeDefault
      initContainers:
      - name: puller
        image: prepull/puller:0.1.0
        args: ["--images-file=/etc/prepull/images.txt"]
        volumeMounts:
        - name: images
          mountPath: /etc/prepull
          readOnly: true
        - name: runtime
          mountPath: /run/containerd
          readOnly: true
      containers:
      - name: pause
        image: prepull/pause:0.1.0
        securityContext:
          runAsUser: 65535
          runAsNonRoot: true
        resources:
          limits:
            memory: 16Mi
      volumes:
      - name: images
        configMap:
          name: prepull-images-abc
          defaultMode: 292
      - name: runtime
        hostPath:
          path: /run/containerd
          type: Directory
"#;

    #[test]
    fn reads_template_and_config_map() {
        let rendered = Rendered::from_yaml(RENDERED).expect("rendered");
        assert_eq!(rendered.namespace, "prepull");
        assert_eq!(rendered.pod.init_containers[0].name, "puller");
        assert_eq!(rendered.pod.containers[0].image, "prepull/pause:0.1.0");
        assert_eq!(
            rendered.pod.volumes[0]
                .config_map
                .as_ref()
                .map(|c| c.default_mode),
            Some(Some(0o444))
        );
        let data = &rendered.config_maps["prepull-images-abc"];
        assert!(data["images.txt"].contains("example.com/a:1"));
    }

    #[test]
    fn swaps_images_host_paths_and_data() {
        let mut rendered = Rendered::from_yaml(RENDERED).expect("rendered");
        rendered
            .swap_image("prepull/puller", "127.0.0.1:5000/p:1")
            .expect("swap");
        rendered
            .swap_host_path("/run/containerd", Path::new("/tmp/n/c"))
            .expect("swap");
        rendered
            .set_config_data("images.txt", "x/y:1\n")
            .expect("set");

        assert_eq!(rendered.pod.init_containers[0].image, "127.0.0.1:5000/p:1");
        assert_eq!(rendered.pod.containers[0].image, "prepull/pause:0.1.0");
        let host = rendered
            .pod
            .volume("runtime")
            .expect("volume")
            .host_path
            .clone();
        assert_eq!(host.map(|h| h.path), Some("/tmp/n/c".to_string()));
        assert_eq!(
            rendered.config_maps["prepull-images-abc"]["images.txt"],
            "x/y:1\n"
        );
        assert!(rendered.swap_image("prepull/other", "x").is_err());
        assert!(
            rendered
                .swap_host_path("/var/run", Path::new("/x"))
                .is_err()
        );
    }

    #[test]
    fn unknown_container_field_is_refused() {
        let yaml = "containers:\n- name: a\n  image: b\n  livenessProbe: {}\n";
        let err = PodSpec::from_yaml(yaml).expect_err("probe is unsupported");
        assert!(err.to_string().contains("livenessProbe"), "{err}");
    }

    #[test]
    fn unknown_pod_field_is_refused_scheduling_ones_are_not() {
        let ok = "containers: []\nnodeSelector: {a: b}\n";
        assert!(PodSpec::from_yaml(ok).is_ok());
        let err = PodSpec::from_yaml("containers: []\nshareProcessNamespace: true\n")
            .expect_err("unsupported");
        assert!(err.to_string().contains("shareProcessNamespace"), "{err}");
    }

    #[test]
    fn pod_security_context_is_inherited() {
        let yaml = "securityContext:\n  runAsUser: 7\n  seccompProfile: {type: RuntimeDefault}\n\
                    containers:\n- name: a\n  image: b\n  securityContext: {runAsUser: 8}\n";
        let pod = PodSpec::from_yaml(yaml).expect("pod");
        let sc = pod.containers[0].effective_security(&pod.security_context);
        assert_eq!(sc.run_as_user, Some(8));
        assert_eq!(
            sc.seccomp_profile.map(|s| s.kind),
            Some("RuntimeDefault".into())
        );
    }

    #[test]
    fn repositories_drop_tag_and_digest() {
        assert_eq!(repository_of("prepull/puller:0.1.0"), "prepull/puller");
        assert_eq!(repository_of("127.0.0.1:5000/a/b:v1"), "127.0.0.1:5000/a/b");
        assert_eq!(repository_of("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b");
        assert_eq!(repository_of("a/b@sha256:00"), "a/b");
    }

    #[test]
    fn quantities() {
        assert_eq!(millicores("250m").expect("cpu"), 250);
        assert_eq!(millicores("1").expect("cpu"), 1000);
        assert_eq!(millicores("0.5").expect("cpu"), 500);
        assert_eq!(bytes("16Mi").expect("mem"), 16 << 20);
        assert_eq!(bytes("1G").expect("mem"), 1_000_000_000);
        assert_eq!(bytes("4096").expect("mem"), 4096);
        assert!(bytes("lots").is_err());
        assert!(millicores("fast").is_err());
    }
}
