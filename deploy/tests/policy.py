"""The rules every rendered prepull overlay must keep.

`violations(objects, expect)` takes the objects `kubectl kustomize` printed for
one overlay and returns one sentence per broken rule, naming the object and the
field, so that a failing run says exactly which setting an edit dropped. An
empty list means the overlay is fine.
"""

from dataclasses import dataclass

NAMESPACE = "prepull"
IMAGES_CONFIGMAP = "prepull-images"
IMAGES_FILE = "/etc/prepull/images.txt"
PULLER_IMAGE = "prepull/puller"
PAUSE_IMAGE = "prepull/pause"
PAUSE_ID = 65535
MAX_GRACE_SECONDS = 10
# A rollout may replace (and so make pull) at most this share of the nodes at
# once, or this many nodes when maxUnavailable is a plain number.
MAX_UNAVAILABLE_PERCENT = 25
MAX_UNAVAILABLE_NODES = 5
AUTH_FILE_FLAG = "--auth-file="
# The key a kubernetes.io/dockerconfigjson Secret keeps its JSON under.
DOCKERCONFIGJSON_KEY = ".dockerconfigjson"
# What Kubernetes gives a Secret's files when no mode is set: readable by all.
SECRET_DEFAULT_MODE = 0o644


@dataclass(frozen=True)
class Expect:
    """What one overlay must mount for puller and tell it.

    `args` are puller's arguments besides `--images-file` and `--auth-file`;
    `host_paths` maps each hostPath volume's host path to where puller mounts
    it; `images_txt` is the text the image-list ConfigMap must hold;
    `pull_secrets` names the Secrets puller's `--auth-file`s must come from.
    """

    args: tuple
    host_paths: dict
    images_txt: str
    pull_secrets: tuple = ()


class Unusable(Exception):
    """The rendered output lacks a piece the rules look into."""


@dataclass(frozen=True)
class Rendered:
    """The pieces of one overlay's output that the rules look into."""

    objects: list
    daemonset: dict
    pod: dict
    puller: dict
    pause: dict
    configmaps: list

    @classmethod
    def of(cls, objects):
        daemonset = _one(objects, "DaemonSet", "prepull")
        pod = daemonset.get("spec", {}).get("template", {}).get("spec", {})
        configmaps = [o for o in objects if o.get("kind") == "ConfigMap"]

        return cls(
            objects=objects,
            daemonset=daemonset,
            pod=pod,
            puller=_container(pod, "initContainers", "puller"),
            pause=_container(pod, "containers", "pause"),
            configmaps=configmaps,
        )

    def containers(self):
        """Every container of the pod, init containers included, by name."""
        all_containers = self.pod.get("initContainers", []) + self.pod.get("containers", [])
        return [(c.get("name", "?"), c) for c in all_containers]

    def host_path_volumes(self):
        """The pod's hostPath volumes, by volume name."""
        return {v["name"]: v["hostPath"] for v in self.pod.get("volumes", []) if "hostPath" in v}


def _one(objects, kind, name):
    found = [
        o for o in objects if o.get("kind") == kind and o.get("metadata", {}).get("name") == name
    ]
    if len(found) != 1:
        raise Unusable(f"expected exactly one {kind} {name}, found {len(found)}")
    return found[0]


def _container(pod, field, name):
    found = [c for c in pod.get(field, []) if c.get("name") == name]
    if len(found) != 1:
        raise Unusable(f"expected exactly one container {name} in {field}, found {len(found)}")
    return found[0]


def _security(container):
    return container.get("securityContext") or {}


def check_namespace(r, expect):
    """Everything lands in the prepull namespace, which the output creates."""
    problems = []
    namespaces = [o for o in r.objects if o.get("kind") == "Namespace"]
    if [n.get("metadata", {}).get("name") for n in namespaces] != [NAMESPACE]:
        problems.append(f"output must create exactly the Namespace {NAMESPACE}")

    for o in r.objects:
        if o.get("kind") != "Namespace" and o.get("metadata", {}).get("namespace") != NAMESPACE:
            problems.append(
                f"{o.get('kind')} {o.get('metadata', {}).get('name')}: namespace is not {NAMESPACE}"
            )

    return problems


def check_images(r, expect):
    """The containers run our two images, whatever tag or digest pins them."""
    problems = []
    for container, wanted in ((r.puller, PULLER_IMAGE), (r.pause, PAUSE_IMAGE)):
        image = container.get("image", "")
        if image.split("@")[0].split(":")[0] != wanted:
            problems.append(f"{container['name']}: image {image!r} is not {wanted}")
    return problems


def check_not_privileged(r, expect):
    """No privileged container and none of the host's namespaces."""
    problems = []
    for name, c in r.containers():
        if _security(c).get("privileged") is not False:
            problems.append(f"{name}: securityContext.privileged must be false")

    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if r.pod.get(field):
            problems.append(f"pod: {field} must not be set")

    return problems


def check_no_escalation(r, expect):
    """No container may gain privileges (setuid binaries, file capabilities)."""
    return [
        f"{name}: securityContext.allowPrivilegeEscalation must be false"
        for name, c in r.containers()
        if _security(c).get("allowPrivilegeEscalation") is not False
    ]


def check_capabilities(r, expect):
    """Every capability dropped and none added back."""
    problems = []
    for name, c in r.containers():
        capabilities = _security(c).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{name}: securityContext.capabilities.drop must hold ALL")
        if capabilities.get("add"):
            problems.append(f"{name}: securityContext.capabilities.add must be empty")
    return problems


def check_read_only_root(r, expect):
    """Neither container can write to its own image's filesystem."""
    return [
        f"{name}: securityContext.readOnlyRootFilesystem must be true"
        for name, c in r.containers()
        if _security(c).get("readOnlyRootFilesystem") is not True
    ]


def check_seccomp(r, expect):
    """The runtime's default seccomp profile, set for the pod, undone nowhere."""
    problems = []
    pod_profile = (r.pod.get("securityContext") or {}).get("seccompProfile") or {}
    if pod_profile.get("type") != "RuntimeDefault":
        problems.append("pod: securityContext.seccompProfile.type must be RuntimeDefault")

    for name, c in r.containers():
        profile = _security(c).get("seccompProfile")
        if profile is not None and profile.get("type") != "RuntimeDefault":
            problems.append(f"{name}: securityContext.seccompProfile overrides RuntimeDefault")

    return problems


def check_no_token(r, expect):
    """Nothing here talks to the Kubernetes API, so no token is mounted."""
    if r.pod.get("automountServiceAccountToken") is not False:
        return ["pod: automountServiceAccountToken must be false"]
    return []


def check_pause_user(r, expect):
    """pause runs as the unprivileged 65535:65535 and is refused as root."""
    security = _security(r.pause)
    problems = [
        f"pause: securityContext.{field} must be {PAUSE_ID}"
        for field in ("runAsUser", "runAsGroup")
        if security.get(field) != PAUSE_ID
    ]
    if security.get("runAsNonRoot") is not True:
        problems.append("pause: securityContext.runAsNonRoot must be true")
    return problems


def check_resources(r, expect):
    """Both containers request and are limited in CPU and memory."""
    problems = []
    for name, c in r.containers():
        resources = c.get("resources") or {}
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(bound) or {}):
                    problems.append(f"{name}: resources.{bound}.{resource} must be set")
    return problems


def check_grace_period(r, expect):
    """pause stops at once, so a long grace period only delays rollouts."""
    grace = r.pod.get("terminationGracePeriodSeconds")
    if not isinstance(grace, int) or grace > MAX_GRACE_SECONDS:
        return [
            f"pod: terminationGracePeriodSeconds must be set and at most {MAX_GRACE_SECONDS}, is {grace!r}"
        ]
    return []


def check_tolerations(r, expect):
    """One toleration with no key and `operator: Exists` tolerates every taint."""
    for toleration in r.pod.get("tolerations") or []:
        if (
            toleration.get("operator") == "Exists"
            and not toleration.get("key")
            and not toleration.get("effect")
        ):
            return []
    return [
        "pod: tolerations must include {operator: Exists} (no key, no effect) so tainted nodes get the images"
    ]


def check_update_strategy(r, expect):
    """A rolling update that pulls on only a few nodes at a time."""
    strategy = r.daemonset.get("spec", {}).get("updateStrategy") or {}
    if strategy.get("type") != "RollingUpdate":
        return ["DaemonSet: updateStrategy.type must be RollingUpdate"]

    bound = (strategy.get("rollingUpdate") or {}).get("maxUnavailable")
    if isinstance(bound, str) and bound.endswith("%") and bound[:-1].isdigit():
        small = 0 < int(bound[:-1]) <= MAX_UNAVAILABLE_PERCENT
    else:
        small = isinstance(bound, int) and 0 < bound <= MAX_UNAVAILABLE_NODES

    if not small:
        return [
            f"DaemonSet: updateStrategy.rollingUpdate.maxUnavailable must be 1..{MAX_UNAVAILABLE_PERCENT}% "
            f"or 1..{MAX_UNAVAILABLE_NODES} nodes, is {bound!r}"
        ]
    return []


def check_termination_message(r, expect):
    """puller's summary, or its log's tail when it died early, shows in the pod status."""
    problems = []
    if r.puller.get("terminationMessagePolicy") != "FallbackToLogsOnError":
        problems.append("puller: terminationMessagePolicy must be FallbackToLogsOnError")
    if r.puller.get("terminationMessagePath", "/dev/termination-log") != "/dev/termination-log":
        problems.append(
            "puller: terminationMessagePath must be /dev/termination-log, where puller writes"
        )
    return problems


def check_host_paths_read_only(r, expect):
    """Host directories are mounted read-only, and into puller alone."""
    problems = []
    host_volumes = r.host_path_volumes()
    for name, c in r.containers():
        for mount in c.get("volumeMounts") or []:
            if mount.get("name") not in host_volumes:
                continue
            if mount.get("readOnly") is not True:
                problems.append(f"{name}: hostPath mount {mount.get('mountPath')} must be readOnly")
            if name != "puller":
                problems.append(
                    f"{name}: must not mount the host's {host_volumes[mount['name']].get('path')}"
                )
    return problems


def check_image_list(r, expect):
    """The generated list is mounted as a file and that file is passed to puller."""
    problems = []
    configmap = _image_configmap(r, problems)
    if configmap is None:
        return problems

    if configmap.get("data", {}).get("images.txt") != expect.images_txt:
        problems.append(
            f"ConfigMap {configmap['metadata']['name']}: images.txt differs from the overlay's images.txt"
        )
    if f"--images-file={IMAGES_FILE}" not in (r.puller.get("args") or []):
        problems.append(f"puller: args must include --images-file={IMAGES_FILE}")

    mount_dir, key = IMAGES_FILE.rsplit("/", 1)
    if not _mounts_configmap(r, configmap["metadata"]["name"], mount_dir, key):
        problems.append(
            f"puller: ConfigMap {configmap['metadata']['name']} is not mounted read-only at {mount_dir}"
        )

    return problems


def _image_configmap(r, problems):
    """The image-list ConfigMap, if the generator made exactly one with its hash suffix."""
    lists = [
        c
        for c in r.configmaps
        if c.get("metadata", {}).get("name", "").startswith(IMAGES_CONFIGMAP)
    ]
    if len(lists) != 1:
        problems.append(f"expected one ConfigMap {IMAGES_CONFIGMAP}-<hash>, found {len(lists)}")
        return None

    if lists[0]["metadata"]["name"] == IMAGES_CONFIGMAP:
        problems.append(
            f"ConfigMap {IMAGES_CONFIGMAP} has no content hash suffix: a changed list would not roll the pods"
        )
    return lists[0]


def _mounts_configmap(r, configmap_name, mount_dir, key):
    """Whether puller sees `key` of that ConfigMap at mount_dir/key, read-only."""
    volumes = {
        v["name"]: v["configMap"]
        for v in r.pod.get("volumes", [])
        if (v.get("configMap") or {}).get("name") == configmap_name
    }
    for mount in r.puller.get("volumeMounts") or []:
        source = volumes.get(mount.get("name"))
        if (
            source is None
            or mount.get("mountPath") != mount_dir
            or mount.get("readOnly") is not True
        ):
            continue
        items = source.get("items")
        if items is None or any(i.get("key") == key and i.get("path") == key for i in items):
            return True
    return False


def check_runtime_wiring(r, expect):
    """puller gets the overlay's runtime flags and exactly the host paths they need."""
    problems = []
    args = [
        a
        for a in r.puller.get("args") or []
        if not a.startswith(("--images-file=", AUTH_FILE_FLAG))
    ]
    if sorted(args) != sorted(expect.args):
        problems.append(f"puller: runtime args are {args}, expected {list(expect.args)}")

    mounted = _puller_host_mounts(r)
    if mounted != expect.host_paths:
        problems.append(f"puller: host paths mounted are {mounted}, expected {expect.host_paths}")

    problems.extend(_socket_reachable(args, mounted))
    return problems


def _puller_host_mounts(r):
    """Host path -> mount path, for each hostPath volume puller mounts."""
    host_volumes = r.host_path_volumes()
    return {
        host_volumes[m["name"]].get("path"): m.get("mountPath")
        for m in r.puller.get("volumeMounts") or []
        if m.get("name") in host_volumes
    }


def _socket_reachable(args, mounted):
    """The socket (or the host-root prefix) lies inside what is mounted."""
    values = dict(a.split("=", 1) for a in args if "=" in a)
    mount_paths = list(mounted.values())
    problems = []
    if "--socket" in values and not any(
        values["--socket"].startswith(m.rstrip("/") + "/") for m in mount_paths
    ):
        problems.append(
            f"puller: --socket={values['--socket']} is not inside any hostPath mount {mount_paths}"
        )
    if "--host-root" in values and not all(
        m.startswith(values["--host-root"].rstrip("/") + "/") for m in mount_paths
    ):
        problems.append(
            f"puller: hostPath mounts {mount_paths} are not all under --host-root={values['--host-root']}"
        )
    return problems


def check_pull_secrets(r, expect):
    """Each --auth-file is the dockerconfigjson key of an expected Secret,
    mounted read-only into puller alone and readable by its owner only."""
    problems = []
    files = _secret_files(r)
    from_secrets = []

    for arg in r.puller.get("args") or []:
        if not arg.startswith(AUTH_FILE_FLAG):
            continue
        path = arg[len(AUTH_FILE_FLAG) :]
        found = _secret_file(files, path)
        if found is None:
            problems.append(f"puller: {arg} is not a file of a Secret volume mounted into puller")
            continue
        problems.extend(_secret_file_problems(arg, found))
        from_secrets.append(found["secret"])

    if sorted(from_secrets) != sorted(expect.pull_secrets):
        problems.append(
            f"puller: --auth-file Secrets are {sorted(from_secrets)}, expected {sorted(expect.pull_secrets)}"
        )
    problems.extend(_secrets_outside_puller(r))
    return problems


def _secret_file_problems(arg, found):
    problems = []
    if found["key"] != DOCKERCONFIGJSON_KEY:
        problems.append(
            f"puller: {arg} is key {found['key']!r} of Secret {found['secret']}, not {DOCKERCONFIGJSON_KEY}"
        )
    if found["read_only"] is not True:
        problems.append(f"puller: Secret volume {found['volume']} must be mounted readOnly")
    if found["mode"] & 0o077:
        problems.append(
            f"puller: {arg} has mode {found['mode']:04o}: readable by others than its owner"
        )
    return problems


def _secret_volumes(r):
    """Volume name -> list of (secret name, items, mode) for Secret and projected volumes."""
    volumes = {}
    for v in r.pod.get("volumes", []):
        if "secret" in v:
            secret = v["secret"]
            mode = secret.get("defaultMode", SECRET_DEFAULT_MODE)
            volumes[v["name"]] = [(secret.get("secretName"), secret.get("items"), mode)]
        elif "projected" in v:
            projected = v["projected"]
            mode = projected.get("defaultMode", SECRET_DEFAULT_MODE)
            volumes[v["name"]] = [
                (s["secret"].get("name"), s["secret"].get("items"), mode)
                for s in projected.get("sources", [])
                if "secret" in s
            ]
    return volumes


def _secret_files(r):
    """Every Secret key puller sees: file path (or directory for a Secret
    mounted without items) -> what it is and how it is mounted."""
    volumes = _secret_volumes(r)
    files = {}
    for mount in r.puller.get("volumeMounts") or []:
        for secret, items, mode in volumes.get(mount.get("name"), []):
            where = mount.get("mountPath", "").rstrip("/")
            seen = {"secret": secret, "volume": mount["name"], "read_only": mount.get("readOnly")}
            for item in items or [{"key": None, "path": None}]:
                path = f"{where}/{item['path']}" if item["path"] else f"{where}/*"
                files[path] = dict(seen, key=item["key"], mode=item.get("mode", mode))
    return files


def _secret_file(files, path):
    """The Secret key behind `path`, from an item or a whole-Secret mount."""
    if path in files:
        return files[path]
    directory, name = path.rsplit("/", 1)
    whole = files.get(f"{directory}/*")
    return dict(whole, key=name) if whole else None


def _secrets_outside_puller(r):
    """Secret volumes are mounted by puller only: pause runs for the pod's life."""
    secret_volumes = set(_secret_volumes(r))
    return [
        f"{name}: must not mount Secret volume {m.get('name')}"
        for name, c in r.containers()
        if name != "puller"
        for m in c.get("volumeMounts") or []
        if m.get("name") in secret_volumes
    ]


RULES = (
    check_namespace,
    check_images,
    check_not_privileged,
    check_no_escalation,
    check_capabilities,
    check_read_only_root,
    check_seccomp,
    check_no_token,
    check_pause_user,
    check_resources,
    check_grace_period,
    check_tolerations,
    check_update_strategy,
    check_termination_message,
    check_host_paths_read_only,
    check_image_list,
    check_runtime_wiring,
    check_pull_secrets,
)


def violations(objects, expect):
    """Every broken rule for one overlay's rendered objects, as sentences."""
    try:
        rendered = Rendered.of(objects)
    except Unusable as e:
        return [str(e)]

    return [problem for rule in RULES for problem in rule(rendered, expect)]
