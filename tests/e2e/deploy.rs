//! Issue 5's "run it as a node would": the rendered `containerd` overlay run
//! through CRI as the kubelet would run it, and the `docker` overlay through
//! dockerd, with our images, a list of fresh test images, and the runtime's
//! socket directory in place of the node's.
//!
//! Each run checks what a cluster operator would look at: every listed image
//! is in the runtime (asked through the runtime's own API, with the digest
//! the registry serves), puller's summary is in its termination message,
//! pause runs with the template's user and security settings, and deleting
//! the pod ends pause with exit 0 at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use libtest_mimic::{Failed, Trial};
use prepull_e2e::kubelet::{DockerPod, Kubelet, OurImages, Rendered};
use prepull_e2e::{Node, PushedImage, RuntimeKind, workspace_root};

use crate::pause::{
    STOP_BOUND, assert_sandbox_is_ours, our_images, proc_status, real_uid, wait_until_waiting,
};
use crate::support::{Outcome, assert_present, ensure, push_images, trial};

/// Images in the list each run pre-pulls.
const LISTED: usize = 3;

/// The uid the template gives pause.
const PAUSE_UID: &str = "65535";

pub fn trials(node: &Arc<Node>) -> Vec<Trial> {
    vec![
        trial(
            node,
            "deploy::containerd_overlay_runs_as_the_kubelet_would",
            containerd_overlay,
        ),
        trial(
            node,
            "deploy::containerd_failed_pull_stops_the_pod_at_init",
            containerd_failed_pull,
        ),
        trial(
            node,
            "deploy::docker_overlay_runs_through_dockerd",
            docker_overlay,
        ),
    ]
}

/// An overlay rendered and made runnable on the test node.
struct Prepared {
    rendered: Rendered,
    images: Vec<PushedImage>,
}

/// Renders `deploy/overlays/{overlay}` and swaps in our images, a list of
/// fresh test images as `images.txt`, and `socket_dir` for the host path
/// `host_dir`, whose socket must keep the name puller is given.
fn prepare(node: &Node, overlay: &str, host_dir: &str, socket: &Path) -> Result<Prepared, Failed> {
    let ours: OurImages = our_images(node)?;
    let dir = workspace_root().join("deploy/overlays").join(overlay);
    let mut rendered = Rendered::kustomize(&dir)?;

    rendered.swap_image("prepull/puller", &ours.puller)?;
    rendered.swap_image("prepull/pause", &ours.pause)?;
    let images = push_images(node, &format!("deploy-{overlay}"), LISTED)?;
    rendered.set_config_data("images.txt", &images_txt(&images))?;
    let socket_dir = socket_dir_for(host_dir, socket, &rendered)?;
    rendered.swap_host_path(host_dir, &socket_dir)?;

    Ok(Prepared { rendered, images })
}

/// The node socket's directory, after checking that puller's `--socket`
/// (under `host_dir` in the container) names a file of that name.
fn socket_dir_for(host_dir: &str, socket: &Path, rendered: &Rendered) -> Result<PathBuf, Failed> {
    let file = socket.file_name().and_then(|f| f.to_str()).unwrap_or("");
    let flag = format!("--socket={host_dir}/{file}");
    let puller = rendered
        .pod
        .init_containers
        .first()
        .ok_or("no init container")?;
    ensure(
        puller.args.contains(&flag),
        format!(
            "puller args {:?} lack {flag}: the node's socket would not be found",
            puller.args
        ),
    )?;
    socket
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("socket {} has no directory", socket.display()).into())
}

/// The list as an operator writes it: a comment, a blank line, references.
fn images_txt(images: &[PushedImage]) -> String {
    let mut text = String::from("# pushed by the deploy e2e trial\n\n");
    for image in images {
        text.push_str(&image.reference());
        text.push('\n');
    }
    text
}

/// Fails unless the termination message is puller's summary of a run that
/// pulled every listed image.
fn assert_summary(message: &str) -> Outcome {
    let head = format!("{LISTED} images: 0 present, {LISTED} pulled, 0 failed");
    ensure(
        message.starts_with(&head),
        format!("termination message {message:?} does not start with {head:?}"),
    )
}

/// Fails unless pause runs as the template says: uid 65535, no new
/// privileges, no effective capability, seccomp filtering.
fn assert_pause_confined(pid: u32) -> Outcome {
    let status = proc_status(pid)?;
    let field = |key: &str| status.get(key).map_or("", String::as_str);
    ensure(
        real_uid(&status) == PAUSE_UID,
        format!("pause uid {:?}", real_uid(&status)),
    )?;
    ensure(
        field("NoNewPrivs") == "1",
        format!("NoNewPrivs {:?}", field("NoNewPrivs")),
    )?;
    ensure(
        field("CapEff") == "0000000000000000",
        format!("CapEff {:?}", field("CapEff")),
    )?;
    ensure(
        field("Seccomp") == "2",
        format!("Seccomp {:?} (2 = filter)", field("Seccomp")),
    )
}

fn containerd_overlay(node: &Node) -> Outcome {
    let socket = node.containerd.socket();
    let Prepared { rendered, images } = prepare(node, "containerd", "/run/containerd", socket)?;
    let kubelet = Kubelet::connect(socket, &node.work_dir("deploy-cri")?)?;

    let pod = kubelet.run_pod(
        &rendered.name,
        &rendered.namespace,
        &rendered.pod,
        &rendered.config_maps,
    )?;
    assert_sandbox_is_ours(node, pod.sandbox_id())?;
    let init: Vec<(&str, i32)> = pod
        .init
        .iter()
        .map(|t| (t.name.as_str(), t.exit_code))
        .collect();
    ensure(
        init == [("puller", 0)],
        format!("init containers ended {init:?}"),
    )?;
    assert_summary(&pod.init[0].message)?;
    assert_held_by_cri(&kubelet, &images)?;
    assert_present(node, RuntimeKind::Cri, &images)?;
    assert_pause_confined(pod.pid("pause")?)?;

    let summary = pod.init[0].message.clone();
    wait_until_waiting(pod.pid("pause")?)?;
    let stopped = pod.stop()?;
    let [pause] = stopped.as_slice() else {
        return Err(format!("{} containers stopped, want 1", stopped.len()).into());
    };
    eprintln!(
        "deploy/containerd: puller said {summary:?}; StopContainer(pause, grace {}s) returned after {:.3}s, exit {}",
        rendered.pod.grace_period().as_secs(),
        pause.took.as_secs_f64(),
        pause.terminated.exit_code
    );
    ensure(
        pause.terminated.exit_code == 0,
        format!("pause exited {}", pause.terminated.exit_code),
    )?;
    ensure(
        pause.took < STOP_BOUND,
        format!("stopping pause took {:?}", pause.took),
    )
}

/// Fails unless the runtime's `ImageStatus` finds each image with the
/// digest the registry serves.
fn assert_held_by_cri(kubelet: &Kubelet, images: &[PushedImage]) -> Outcome {
    for image in images {
        let held = kubelet.cri().image_status(&image.reference())?;
        let digests = held.map(|i| i.repo_digests).unwrap_or_default();
        ensure(
            digests.contains(&image.pinned()),
            format!(
                "{}: ImageStatus repo digests {digests:?}, want {}",
                image.reference(),
                image.pinned()
            ),
        )?;
    }
    Ok(())
}

/// A listed image the registry does not have: puller exits 1, so the pod
/// never gets past its init container, and the kubelet's record of it
/// carries puller's summary naming the missing image.
fn containerd_failed_pull(node: &Node) -> Outcome {
    let socket = node.containerd.socket();
    let Prepared {
        mut rendered,
        images,
    } = prepare(node, "containerd", "/run/containerd", socket)?;
    let ghost = format!("{}/{}:v1", node.registry.host(), node.unique_name("ghost"));
    let list = format!("{}{ghost}\n", images_txt(&images));
    rendered.set_config_data("images.txt", &list)?;
    let kubelet = Kubelet::connect(socket, &node.work_dir("deploy-cri-fail")?)?;

    let result = kubelet.run_pod(
        &rendered.name,
        &rendered.namespace,
        &rendered.pod,
        &rendered.config_maps,
    );
    let Err(error) = result else {
        return Err("the pod ran although an image of its list does not exist".into());
    };
    let text = error.to_string();
    ensure(
        text.contains("init container puller exited 1"),
        format!("want puller to exit 1, got: {text}"),
    )?;
    ensure(
        text.contains(&format!("failed {ghost}")),
        format!("the termination message does not name {ghost}: {text}"),
    )?;
    assert_present(node, RuntimeKind::Cri, &images)
}

fn docker_overlay(node: &Node) -> Outcome {
    let socket = node.dockerd.socket();
    let Prepared { rendered, images } = prepare(node, "docker", "/var/run", socket)?;
    let dir = node.work_dir("deploy-docker")?;
    let prefix = format!("e2e-deploy-{}", std::process::id());

    let pod = DockerPod::run(
        &node.dockerd,
        &rendered.pod,
        &rendered.config_maps,
        &dir,
        &prefix,
    )?;
    let init: Vec<(&str, i32)> = pod
        .init
        .iter()
        .map(|(n, code, _)| (n.as_str(), *code))
        .collect();
    ensure(
        init == [("puller", 0)],
        format!("init containers ended {init:?}"),
    )?;
    assert_summary(&pod.init[0].2)?;
    assert_present(node, RuntimeKind::Docker, &images)?;
    let pid = node.dockerd.docker(&[
        "inspect",
        "--format",
        "{{.State.Pid}}",
        &format!("{prefix}-pause"),
    ])?;
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| format!("docker inspect pid {pid:?}"))?;
    assert_pause_confined(pid)?;

    let summary = pod.init[0].2.clone();
    wait_until_waiting(pid)?;
    let stopped = pod.stop()?;
    let [pause] = stopped.as_slice() else {
        return Err(format!("{} containers stopped, want 1", stopped.len()).into());
    };
    eprintln!(
        "deploy/docker: puller said {summary:?}; docker stop --time {} returned after {:.3}s, exit {}",
        rendered.pod.grace_period().as_secs(),
        pause.took.as_secs_f64(),
        pause.exit_code
    );
    ensure(
        pause.exit_code == 0,
        format!("pause exited {}", pause.exit_code),
    )?;
    ensure(
        pause.took < STOP_BOUND,
        format!("stopping pause took {:?}", pause.took),
    )
}
