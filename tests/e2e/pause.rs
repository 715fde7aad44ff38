//! Issue 3's container proof: our `pause` image as the main container of a
//! real container, in containerd (through CRI, as the kubelet runs it, in a
//! sandbox that is our pause image too) and in dockerd (`docker run -d`,
//! then `docker stop` with its default grace period). Each stop must end it
//! with exit 0, well within the grace period; the figure is printed.

use std::collections::BTreeMap;
use std::fs;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use prepull_e2e::Node;
use prepull_e2e::kubelet::{Kubelet, OurImages, PodSpec, docker_exit_code};

use crate::support::{Outcome, ensure, trial};

/// A stop slower than this is not "at once": pause exits on SIGTERM, so the
/// time is the runtime's own round trip, a few tens of milliseconds here. The
/// bound is generous so a loaded machine does not make it flaky, and far
/// below any grace period (Kubernetes' 30 s, docker's 10 s, ours 5 s).
pub const STOP_BOUND: Duration = Duration::from_secs(2);

/// The user the pause image declares.
const PAUSE_UID: &str = "65535";

/// Our images, pushed once per node run (trials run side by side).
static OURS: Mutex<Option<OurImages>> = Mutex::new(None);

pub fn trials(node: &Arc<Node>) -> Vec<Trial> {
    vec![
        trial(
            node,
            "pause::containerd_stop_ends_main_container_with_exit_0",
            in_containerd,
        ),
        trial(
            node,
            "pause::dockerd_stop_ends_container_with_exit_0",
            in_dockerd,
        ),
    ]
}

/// Our puller and pause images in the node's registry, and our pause image
/// as the node's `sandbox_image`, pushed by the first caller.
pub fn our_images(node: &Node) -> Result<OurImages, Failed> {
    let mut guard = OURS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(ours) = guard.as_ref() {
        return Ok(ours.clone());
    }

    let ours = OurImages::push(&node.registry)?;
    let prefix = format!("{}/", node.registry.host());
    let sandbox = node.sandbox_image().strip_prefix(&prefix);
    let (name, tag) = sandbox.and_then(|s| s.rsplit_once(':')).ok_or_else(|| {
        format!(
            "sandbox image {} is not in the node's registry",
            node.sandbox_image()
        )
    })?;
    ours.push_pause_as(&node.registry, name, tag)?;

    eprintln!(
        "e2e: our images from {}: {} and {} (also as sandbox image {})",
        ours.source,
        ours.puller,
        ours.pause,
        node.sandbox_image()
    );
    *guard = Some(ours.clone());
    Ok(ours)
}

/// Fails unless containerd ran sandbox `id` from the node's `sandbox_image`
/// (our pause image). Compared by digest: containerd names a container's
/// image by whichever of its references it holds first, and our pause image
/// is also held under its own name once a pod has run it.
pub fn assert_sandbox_is_ours(node: &Node, id: &str) -> Outcome {
    let info = node.containerd.ctr(&["containers", "info", id])?;
    let info: serde_json::Value =
        serde_json::from_str(&info).map_err(|e| format!("ctr containers info {id}: {e}"))?;
    let image = info["Image"].as_str().unwrap_or("");

    let ran = node.containerd.image_digest(image)?;
    let sandbox = node.containerd.image_digest(node.sandbox_image())?;
    ensure(
        ran.is_some() && ran == sandbox,
        format!(
            "sandbox {id} runs {image:?} ({ran:?}), not {} ({sandbox:?})",
            node.sandbox_image()
        ),
    )
}

/// The fields of `/proc/PID/status` (`Uid`, `NoNewPrivs`, `CapEff`, ...).
pub fn proc_status(pid: u32) -> Result<BTreeMap<String, String>, Failed> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.to_string(), value.trim().to_string()))
        .collect())
}

/// The host's number of `rt_sigtimedwait`, the call pause's `sigwaitinfo`
/// makes (x86_64 or aarch64 hosts, the ones the project runs its tests on).
pub const RT_SIGTIMEDWAIT: &str = if cfg!(target_arch = "aarch64") {
    "137"
} else {
    "128"
};

/// Waits until process `pid` sits in its signal wait. As PID 1 of its
/// container, pause has SIGTERM dropped by the kernel until it has blocked
/// it (its first instructions, but the runtime returns from "start" before
/// the process gets there), so a stop sent in that window is lost and only
/// the grace period's SIGKILL ends it. A kubelet never stops a pod that fast
/// in practice; the README says so. (`SigBlk` cannot tell: the kernel
/// unblocks the awaited signals for the length of the wait.)
pub fn wait_until_waiting(pid: u32) -> Result<(), Failed> {
    let path = format!("/proc/{pid}/syscall");
    let started = Instant::now();
    loop {
        let text = fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
        if text.split_whitespace().next() == Some(RT_SIGTIMEDWAIT) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(5) {
            return Err(format!(
                "pid {pid} not in its signal wait after 5 s: {path} says {text:?}"
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The real uid of a process (first column of `Uid:`).
pub fn real_uid(status: &BTreeMap<String, String>) -> &str {
    status
        .get("Uid")
        .and_then(|uids| uids.split_whitespace().next())
        .unwrap_or("")
}

fn in_containerd(node: &Node) -> Outcome {
    let ours = our_images(node)?;
    let kubelet = Kubelet::connect(node.containerd.socket(), &node.work_dir("pause-cri")?)?;
    let spec = PodSpec::from_yaml(&format!(
        "containers:\n- name: pause\n  image: {}\n",
        ours.pause
    ))?;

    let pod = kubelet.run_pod("pause", "e2e", &spec, &BTreeMap::new())?;
    assert_sandbox_is_ours(node, pod.sandbox_id())?;
    let status = proc_status(pod.pid("pause")?)?;
    ensure(
        real_uid(&status) == PAUSE_UID,
        format!(
            "pause runs as uid {:?}, the image says {PAUSE_UID}",
            real_uid(&status)
        ),
    )?;

    wait_until_waiting(pod.pid("pause")?)?;
    let stopped = pod.stop()?;
    let [stopped] = stopped.as_slice() else {
        return Err(format!("{} containers stopped, want 1", stopped.len()).into());
    };
    eprintln!(
        "pause: containerd StopContainer (grace {}s) returned after {:.3}s, exit {} ({})",
        spec.grace_period().as_secs(),
        stopped.took.as_secs_f64(),
        stopped.terminated.exit_code,
        stopped.terminated.reason
    );
    ensure(
        stopped.terminated.exit_code == 0,
        format!(
            "pause exited {} ({}), want 0",
            stopped.terminated.exit_code, stopped.terminated.reason
        ),
    )?;
    ensure(
        stopped.took < STOP_BOUND,
        format!(
            "StopContainer took {:?}, bound {STOP_BOUND:?}",
            stopped.took
        ),
    )
}

/// Removes a docker container when the trial ends, however it ends.
struct Removed<'n> {
    node: &'n Node,
    name: String,
}

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let _ = self.node.dockerd.docker(&["rm", "--force", &self.name]);
    }
}

fn in_dockerd(node: &Node) -> Outcome {
    let ours = our_images(node)?;
    let name = format!("e2e-pause-{}", std::process::id());
    let container = Removed { node, name };
    let name = container.name.as_str();

    node.dockerd
        .docker(&["run", "--detach", "--name", name, &ours.pause])?;
    let pid = node
        .dockerd
        .docker(&["inspect", "--format", "{{.State.Pid}}", name])?;
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| format!("docker inspect pid {pid:?}"))?;
    let status = proc_status(pid)?;
    ensure(
        real_uid(&status) == PAUSE_UID,
        format!(
            "pause runs as uid {:?}, the image says {PAUSE_UID}",
            real_uid(&status)
        ),
    )?;

    wait_until_waiting(pid)?;
    let started = Instant::now();
    node.dockerd.docker(&["stop", name])?;
    let took = started.elapsed();
    let code = docker_exit_code(&node.dockerd, name)?;

    eprintln!(
        "pause: docker stop (default grace 10s) returned after {:.3}s, exit {code}",
        took.as_secs_f64()
    );
    ensure(code == 0, format!("pause exited {code}, want 0"))?;
    ensure(
        took < STOP_BOUND,
        format!("docker stop took {took:?}, bound {STOP_BOUND:?}"),
    )
}
