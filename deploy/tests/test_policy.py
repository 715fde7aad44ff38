"""Every overlay renders, matches the Kubernetes API schemas, and keeps the policy.

Run through deploy/validate.sh, which sets up the pinned tools. The second half
breaks one setting at a time in a rendered overlay and checks that the policy
names it, so a rule that could never fail would show up here.
"""

import dataclasses
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from policy import Expect, violations

DEPLOY = Path(__file__).resolve().parent.parent
BASE_LIST = (DEPLOY / "base" / "images.txt").read_text()

# The API versions every overlay must be valid for: from the oldest Kubernetes
# still commonly run to the newest the pinned kubernetes-validate ships.
KUBERNETES_VERSIONS = tuple(f"1.{minor}.0" for minor in range(30, 38))

CONTAINERD = Expect(
    args=("--runtime=cri", "--socket=/run/containerd/containerd.sock"),
    host_paths={"/run/containerd": "/run/containerd"},
    images_txt=BASE_LIST,
)

# Every kustomization under deploy/ that users apply, with what it must wire.
OVERLAYS = {
    "overlays/containerd": CONTAINERD,
    "overlays/k3s": Expect(
        args=("--runtime=cri", "--socket=/run/k3s/containerd/containerd.sock"),
        host_paths={"/run/k3s/containerd": "/run/k3s/containerd"},
        images_txt=BASE_LIST,
    ),
    "overlays/microk8s": Expect(
        args=("--runtime=cri", "--socket=/var/snap/microk8s/common/run/containerd.sock"),
        host_paths={"/var/snap/microk8s/common/run": "/var/snap/microk8s/common/run"},
        images_txt=BASE_LIST,
    ),
    "overlays/crio": Expect(
        args=("--runtime=cri", "--socket=/var/run/crio/crio.sock"),
        host_paths={"/var/run/crio": "/var/run/crio"},
        images_txt=BASE_LIST,
    ),
    "overlays/docker": Expect(
        args=("--runtime=docker", "--socket=/var/run/docker.sock"),
        host_paths={"/var/run": "/var/run"},
        images_txt=BASE_LIST,
    ),
    "overlays/auto": Expect(
        args=("--runtime=auto", "--host-root=/host"),
        host_paths={"/run": "/host/run", "/var/run": "/host/var/run"},
        images_txt=BASE_LIST,
    ),
    "examples/my-images": Expect(
        args=CONTAINERD.args,
        host_paths=CONTAINERD.host_paths,
        images_txt=(DEPLOY / "examples" / "my-images" / "images.txt").read_text(),
    ),
    "examples/private-registry": Expect(
        args=CONTAINERD.args,
        host_paths=CONTAINERD.host_paths,
        images_txt=(DEPLOY / "examples" / "private-registry" / "images.txt").read_text(),
        pull_secrets=("prepull-pull-secret",),
    ),
}

# Every Kustomize Component under deploy/components, with what it adds to the
# Expect of any overlay it is applied to.
COMPONENTS = {
    "components/pull-secret": {"pull_secrets": ("prepull-pull-secret",)},
}
RUNTIME_OVERLAYS = sorted(o for o in OVERLAYS if o.startswith("overlays/"))


@functools.cache
def _render_text(directory):
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is not installed: it renders the overlays (kubectl kustomize)"

    done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return done.stdout


def render(directory):
    """The objects `kubectl kustomize` prints for a directory, fresh for each caller."""
    return [o for o in yaml.safe_load_all(_render_text(Path(directory))) if o]


@functools.cache
def _with_component_text(overlay, component):
    # kustomize takes no absolute path to a base or a component.
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kustomization.yaml").write_text(
            "resources:\n"
            f"  - {os.path.relpath(DEPLOY / overlay, tmp)}\n"
            "components:\n"
            f"  - {os.path.relpath(DEPLOY / component, tmp)}\n"
        )
        return _render_text(Path(tmp))


def render_with_component(overlay, component):
    """An overlay of one's own: `overlay` as the resource plus `component`."""
    text = _with_component_text(overlay, component)
    return [o for o in yaml.safe_load_all(text) if o]


def _kustomizations_on_disk():
    return {
        str(k.parent.relative_to(DEPLOY)): yaml.safe_load(k.read_text())
        for k in DEPLOY.rglob("kustomization.yaml")
        if k.parent.name != "base"
    }


def test_every_kustomization_on_disk_is_checked():
    on_disk = _kustomizations_on_disk()
    components = {path for path, k in on_disk.items() if k.get("kind") == "Component"}

    assert set(on_disk) - components == set(OVERLAYS)
    assert components == set(COMPONENTS)


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_every_component_is_used_by_a_checked_example(component):
    users = [
        overlay
        for overlay in OVERLAYS
        for used in _kustomizations_on_disk()[overlay].get("components", [])
        if (DEPLOY / overlay / used).resolve() == (DEPLOY / component).resolve()
    ]

    assert users, f"no overlay in OVERLAYS uses {component}"


@pytest.mark.parametrize("component", sorted(COMPONENTS))
@pytest.mark.parametrize("overlay", RUNTIME_OVERLAYS)
def test_component_on_every_runtime_overlay_keeps_the_policy(overlay, component):
    objects = render_with_component(overlay, component)
    expect = dataclasses.replace(OVERLAYS[overlay], **COMPONENTS[component])

    problems = violations(objects, expect)

    assert not problems, f"{overlay} + {component} breaks the policy:\n" + "\n".join(problems)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("component", sorted(COMPONENTS))
@pytest.mark.parametrize("overlay", RUNTIME_OVERLAYS)
def test_component_on_every_runtime_overlay_matches_the_api_schema(overlay, component, version):
    for obj in render_with_component(overlay, component):
        kubernetes_validate.validate(obj, version, strict=True)


def test_an_auth_file_without_its_secret_is_refused():
    problems = violations(render(DEPLOY / "examples/private-registry"), CONTAINERD)

    refused = "--auth-file Secrets are ['prepull-pull-secret'], expected []"
    assert any(refused in p for p in problems), problems


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_keeps_the_policy(overlay):
    problems = violations(render(DEPLOY / overlay), OVERLAYS[overlay])

    assert not problems, f"{overlay} breaks the deploy policy:\n" + "\n".join(problems)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_matches_the_api_schema(overlay, version):
    for obj in render(DEPLOY / overlay):
        kubernetes_validate.validate(obj, version, strict=True)


def test_schema_validation_rejects_an_unknown_field():
    daemonset = _daemonset(render(DEPLOY / "overlays/containerd"))
    daemonset["spec"]["template"]["spec"]["initContainers"][0]["securityContxt"] = {}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, KUBERNETES_VERSIONS[-1], strict=True)


def test_base_alone_is_refused_for_reaching_no_runtime():
    problems = violations(render(DEPLOY / "base"), CONTAINERD)

    assert any("runtime args are []" in p for p in problems), problems


def test_digest_pinning_recipe_from_the_readme():
    digest = "sha256:" + "ab" * 32
    with tempfile.TemporaryDirectory() as tmp:
        # kustomize takes no absolute path to a base.
        base = os.path.relpath(DEPLOY / "overlays" / "containerd", tmp)
        (Path(tmp) / "kustomization.yaml").write_text(
            "resources:\n"
            f"  - {base}\n"
            "images:\n"
            f"  - name: prepull/puller\n    digest: {digest}\n"
            f"  - name: prepull/pause\n    digest: {digest}\n"
        )
        objects = render(tmp)

    pod = _daemonset(objects)["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["image"] == f"prepull/puller@{digest}"
    assert pod["containers"][0]["image"] == f"prepull/pause@{digest}"
    assert violations(objects, CONTAINERD) == []


def _readme_block_after(marker):
    """The first ```yaml block of deploy/README.md after the line holding `marker`."""
    readme = (DEPLOY / "README.md").read_text()
    after = readme[readme.index(marker) :]
    start = after.index("```yaml\n") + len("```yaml\n")
    return after[start : after.index("```", start)]


def test_several_secrets_recipe_from_the_readme():
    patches = _readme_block_after("**Several Secrets.**")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kustomization.yaml").write_text(
            "resources:\n"
            f"  - {os.path.relpath(DEPLOY / 'overlays' / 'k3s', tmp)}\n"
            "components:\n"
            f"  - {os.path.relpath(DEPLOY / 'components' / 'pull-secret', tmp)}\n" + patches
        )
        objects = render(tmp)

    expect = dataclasses.replace(
        OVERLAYS["overlays/k3s"], pull_secrets=("prepull-pull-secret", "team-b-pull-secret")
    )
    assert violations(objects, expect) == []
    assert _puller(objects)["args"][-2:] == [
        "--auth-file=/etc/prepull-auth/prepull-pull-secret/.dockerconfigjson",
        "--auth-file=/etc/prepull-auth/team-b-pull-secret/.dockerconfigjson",
    ]


def _daemonset(objects):
    return next(o for o in objects if o["kind"] == "DaemonSet")


def _pod(objects):
    return _daemonset(objects)["spec"]["template"]["spec"]


def _puller(objects):
    return _pod(objects)["initContainers"][0]


def _pause(objects):
    return _pod(objects)["containers"][0]


def _set(pick, *keys, value):
    """A breakage that sets one field below what `pick` picks from the objects."""

    def apply(objects):
        target = pick(objects)
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value

    return apply


def _drop(pick, *keys):
    """A breakage that deletes one field below what `pick` picks from the objects."""

    def apply(objects):
        target = pick(objects)
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return apply


def _remove_configmap_hash(objects):
    configmap = next(o for o in objects if o["kind"] == "ConfigMap")
    configmap["metadata"]["name"] = "prepull-images"
    _pod(objects)["volumes"][0]["configMap"]["name"] = "prepull-images"


def _edit_list(objects):
    next(o for o in objects if o["kind"] == "ConfigMap")["data"]["images.txt"] += "extra:1\n"


def _mount_socket_writable(objects):
    _puller(objects)["volumeMounts"][-1]["readOnly"] = False


def _give_pause_the_socket(objects):
    _pause(objects)["volumeMounts"] = [dict(_puller(objects)["volumeMounts"][-1])]


def _mount_host_root(objects):
    _pod(objects)["volumes"][-1]["hostPath"]["path"] = "/"


# One setting broken at a time in the containerd overlay, and a piece of the
# sentence the policy must answer with.
BREAKAGES = {
    "privileged puller": (
        _set(_puller, "securityContext", "privileged", value=True),
        "puller: securityContext.privileged",
    ),
    "host network": (_set(_pod, "hostNetwork", value=True), "hostNetwork"),
    "escalation allowed": (
        _set(_pause, "securityContext", "allowPrivilegeEscalation", value=True),
        "pause: securityContext.allowPrivilegeEscalation",
    ),
    "capabilities kept": (
        _drop(_puller, "securityContext", "capabilities"),
        "puller: securityContext.capabilities.drop",
    ),
    "capability added": (
        _set(_puller, "securityContext", "capabilities", "add", value=["SYS_ADMIN"]),
        "capabilities.add",
    ),
    "writable root": (
        _set(_puller, "securityContext", "readOnlyRootFilesystem", value=False),
        "puller: securityContext.readOnlyRootFilesystem",
    ),
    "no pod seccomp": (
        _drop(_pod, "securityContext", "seccompProfile"),
        "pod: securityContext.seccompProfile",
    ),
    "container seccomp off": (
        _set(_pause, "securityContext", "seccompProfile", value={"type": "Unconfined"}),
        "pause: securityContext.seccompProfile",
    ),
    "token mounted": (_drop(_pod, "automountServiceAccountToken"), "automountServiceAccountToken"),
    "pause as root": (
        _set(_pause, "securityContext", "runAsUser", value=0),
        "pause: securityContext.runAsUser",
    ),
    "pause group": (
        _set(_pause, "securityContext", "runAsGroup", value=0),
        "pause: securityContext.runAsGroup",
    ),
    "pause may be root": (
        _drop(_pause, "securityContext", "runAsNonRoot"),
        "pause: securityContext.runAsNonRoot",
    ),
    "no puller limit": (
        _drop(_puller, "resources", "limits", "memory"),
        "puller: resources.limits.memory",
    ),
    "no pause request": (_drop(_pause, "resources", "requests"), "pause: resources.requests.cpu"),
    "long grace": (
        _set(_pod, "terminationGracePeriodSeconds", value=300),
        "terminationGracePeriodSeconds",
    ),
    "no tolerations": (_drop(_pod, "tolerations"), "tolerations"),
    "keyed toleration only": (
        _set(
            _pod,
            "tolerations",
            value=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}],
        ),
        "tolerations",
    ),
    "no maxUnavailable": (
        _drop(_daemonset, "spec", "updateStrategy", "rollingUpdate"),
        "maxUnavailable",
    ),
    "every node at once": (
        _set(_daemonset, "spec", "updateStrategy", "rollingUpdate", "maxUnavailable", value="100%"),
        "maxUnavailable",
    ),
    "OnDelete": (
        _set(_daemonset, "spec", "updateStrategy", value={"type": "OnDelete"}),
        "updateStrategy.type",
    ),
    "no termination policy": (
        _drop(_puller, "terminationMessagePolicy"),
        "puller: terminationMessagePolicy",
    ),
    "socket dir writable": (_mount_socket_writable, "must be readOnly"),
    "pause sees the host": (_give_pause_the_socket, "pause: must not mount"),
    "whole host mounted": (_mount_host_root, "host paths mounted"),
    "list not passed": (
        _set(_puller, "args", value=["--runtime=cri", "--socket=/run/containerd/containerd.sock"]),
        "--images-file",
    ),
    "list not mounted": (_drop(_puller, "volumeMounts", 0), "is not mounted"),
    "list without hash": (_remove_configmap_hash, "no content hash suffix"),
    "list not the overlay's": (_edit_list, "differs from the overlay's images.txt"),
    "host pid": (_set(_pod, "hostPID", value=True), "hostPID"),
    "message elsewhere": (
        _set(_puller, "terminationMessagePath", value="/tmp/message"),
        "terminationMessagePath",
    ),
    "wrong runtime": (
        _set(
            _puller,
            "args",
            value=[
                "--images-file=/etc/prepull/images.txt",
                "--runtime=docker",
                "--socket=/run/containerd/containerd.sock",
            ],
        ),
        "runtime args",
    ),
    "socket outside mounts": (
        _set(
            _puller,
            "args",
            value=[
                "--images-file=/etc/prepull/images.txt",
                "--runtime=cri",
                "--socket=/run/elsewhere.sock",
            ],
        ),
        "is not inside any hostPath mount",
    ),
    "other image": (_set(_pause, "image", value="registry.k8s.io/pause:3.10"), "pause: image"),
    "other namespace": (
        _set(_daemonset, "metadata", "namespace", value="default"),
        "namespace is not prepull",
    ),
}


PRIVATE = "examples/private-registry"


def _secret_volume(objects):
    return next(v for v in _pod(objects)["volumes"] if v["name"] == "pull-secrets")


def _secret_item(objects):
    return _secret_volume(objects)["projected"]["sources"][0]["secret"]["items"][0]


def _secret_mount(objects):
    return next(m for m in _puller(objects)["volumeMounts"] if m["name"] == "pull-secrets")


def _give_pause_the_secret(objects):
    _pause(objects)["volumeMounts"] = [dict(_secret_mount(objects))]


def _auth_file_elsewhere(objects):
    args = _puller(objects)["args"]
    args[-1] = "--auth-file=/etc/prepull/auth.json"


def _drop_auth_file(objects):
    _puller(objects)["args"].pop()


def _whole_secret_as_dockercfg(objects):
    source = _secret_volume(objects)["projected"]["sources"][0]["secret"]
    del source["items"]
    _puller(objects)["args"][-1] = "--auth-file=/etc/prepull-auth/.dockercfg"


# One setting of the pull-secret component broken at a time in the private
# registry example, and a piece of the sentence the policy must answer with.
SECRET_BREAKAGES = {
    "secret mount writable": (
        lambda objects: _secret_mount(objects).update(readOnly=False),
        "Secret volume pull-secrets must be mounted readOnly",
    ),
    "pause sees the secret": (_give_pause_the_secret, "pause: must not mount Secret volume"),
    "readable by all": (
        lambda objects: _secret_volume(objects)["projected"].pop("defaultMode"),
        "has mode 0644",
    ),
    "readable by the group": (
        lambda objects: _secret_item(objects).update(mode=0o440),
        "has mode 0440",
    ),
    "another secret": (
        lambda objects: _secret_volume(objects)["projected"]["sources"][0]["secret"].update(
            name="someone-elses"
        ),
        "--auth-file Secrets are ['someone-elses']",
    ),
    "another key": (
        lambda objects: _secret_item(objects).update(key="password"),
        "is key 'password' of Secret prepull-pull-secret",
    ),
    "whole secret, other key": (_whole_secret_as_dockercfg, "is key '.dockercfg'"),
    "auth file not from the secret": (_auth_file_elsewhere, "is not a file of a Secret volume"),
    "auth file not passed": (_drop_auth_file, "--auth-file Secrets are [], expected"),
}


@pytest.mark.parametrize("breakage", sorted(SECRET_BREAKAGES))
def test_policy_names_a_broken_pull_secret_setting(breakage):
    objects = render(DEPLOY / PRIVATE)
    break_it, expected = SECRET_BREAKAGES[breakage]
    break_it(objects)

    problems = violations(objects, OVERLAYS[PRIVATE])

    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_policy_names_a_broken_setting(breakage):
    objects = render(DEPLOY / "overlays/containerd")
    break_it, expected = BREAKAGES[breakage]
    break_it(objects)

    problems = violations(objects, CONTAINERD)

    assert any(expected in p for p in problems), problems
