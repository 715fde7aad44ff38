//! Issue 2's scenarios: the built `puller` against the node's containerd
//! (CRI) and dockerd (Docker Engine API), checked through each runtime's own
//! tools and the registry's access log.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;

use libtest_mimic::{Failed, Trial};
use prepull_e2e::{Node, PullerRun, PushedImage, RuntimeKind};

use crate::support::{
    Outcome, Scenario, assert_absent, assert_present, check, ensure, per_runtime,
    pull_request_counts, push_images, references, trial,
};

/// The `outcome` field values of puller's per-image events.
const PULLED: &str = "pulled";
const PRESENT: &str = "present";
const FAILED: &str = "failed";

/// Socket paths auto-detection tries, relative to `--host-root`.
const WELL_KNOWN: [&str; 7] = [
    "run/containerd/containerd.sock",
    "run/k3s/containerd/containerd.sock",
    "var/snap/microk8s/common/run/containerd.sock",
    "var/run/crio/crio.sock",
    "var/run/cri-dockerd.sock",
    "var/run/docker.sock",
    "run/podman/podman.sock",
];

pub fn trials(node: &Arc<Node>) -> Vec<Trial> {
    let mut trials = Vec::new();
    let scenarios: [(&str, Scenario); 9] = [
        ("ten_images_then_present_then_always", ten_images),
        ("missing_image_fails_only_itself", missing_image),
        ("invalid_reference_is_bad_input", invalid_reference),
        ("unreachable_socket_exits_3", unreachable_socket),
        ("dry_run_pulls_nothing", dry_run),
        ("auto_detects_under_host_root", auto_detects),
        ("termination_log_holds_summary", termination_log),
        ("images_file_and_digest_pin", images_file),
        ("digest_pin_needs_that_digest", digest_pin),
    ];
    for (name, body) in scenarios {
        trials.extend(per_runtime(node, "puller", name, body));
    }
    trials.push(trial(
        node,
        "puller::auto_without_socket_lists_paths",
        auto_nothing_found,
    ));
    trials.push(trial(
        node,
        "puller::cri::termination_log_cut_at_4096_bytes",
        termination_log_cut,
    ));
    trials
}

/// Runs puller against `kind` with JSON logs and `extra` arguments.
fn run(node: &Node, kind: RuntimeKind, extra: &[String]) -> Result<PullerRun, Failed> {
    let command = node.puller_for(kind)?.args(["--log-format", "json"]);
    Ok(command.args(extra).run()?)
}

/// Fails unless every image has one event with `outcome` (and, for pulled or
/// present images, the registry's digest), and every log line is JSON.
fn assert_events(run: &PullerRun, images: &[PushedImage], outcome: &str) -> Outcome {
    for image in images {
        let event = run.event_for(&image.reference())?;
        check(
            event.outcome == outcome,
            &format!(
                "{}: outcome {:?}, want {outcome:?}",
                image.reference(),
                event.outcome
            ),
            run,
        )?;
        if outcome != FAILED {
            check(
                event.digest.as_deref() == Some(image.digest.as_str()),
                &format!(
                    "{}: event digest {:?}, registry {}",
                    image.reference(),
                    event.digest,
                    image.digest
                ),
                run,
            )?;
        }
        check(event.seconds >= 0.0, "negative seconds", run)?;
    }
    Ok(())
}

/// Ten images pulled; a second run pulls nothing (no registry request);
/// `--pull-policy always` asks the registry again for each.
fn ten_images(node: &Node, kind: RuntimeKind) -> Outcome {
    let images = push_images(node, "ten", 10)?;
    let refs = references(&images);

    let first = run(node, kind, &refs)?;
    check(first.code == Some(0), "first run must exit 0", &first)?;
    assert_present(node, kind, &images)?;
    assert_events(&first, &images, PULLED)?;
    for image in &images {
        let attempts = first.event_for(&image.reference())?.attempts;
        check(
            attempts == 1,
            &format!("{}: {attempts} attempts", image.name),
            &first,
        )?;
    }

    let before = pull_request_counts(node, &images)?;
    let second = run(node, kind, &refs)?;
    check(second.code == Some(0), "second run must exit 0", &second)?;
    let after = pull_request_counts(node, &images)?;
    check(
        before == after,
        &format!("second run asked the registry: {before:?} -> {after:?}"),
        &second,
    )?;
    assert_events(&second, &images, PRESENT)?;

    let always = run(
        node,
        kind,
        &[refs.clone(), vec!["--pull-policy".into(), "always".into()]].concat(),
    )?;
    check(
        always.code == Some(0),
        "--pull-policy always must exit 0",
        &always,
    )?;
    let again = pull_request_counts(node, &images)?;
    let asked: Vec<bool> = after.iter().zip(&again).map(|(a, b)| b > a).collect();
    check(
        asked.iter().all(|&a| a),
        &format!("manifest not asked again: {after:?} -> {again:?}"),
        &always,
    )?;
    assert_present(node, kind, &images)
}

/// One image that does not exist among others: exit 1, others pulled;
/// with `--best-effort`, exit 0 and the failure still logged.
fn missing_image(node: &Node, kind: RuntimeKind) -> Outcome {
    let images = push_images(node, "missing", 2)?;
    let ghost = format!("{}/{}:v1", node.registry.host(), node.unique_name("ghost"));
    let list = vec![images[0].reference(), ghost.clone(), images[1].reference()];

    let strict = run(node, kind, &list)?;
    check(
        strict.code == Some(1),
        "a missing image must exit 1",
        &strict,
    )?;
    assert_present(node, kind, &images)?;
    let event = strict.event_for(&ghost)?;
    check(event.outcome == FAILED, "missing image outcome", &strict)?;
    check(
        event.attempts == 1,
        "not found must not be retried",
        &strict,
    )?;

    let lenient = run(node, kind, &[list, vec!["--best-effort".into()]].concat())?;
    check(
        lenient.code == Some(0),
        "--best-effort must exit 0",
        &lenient,
    )?;
    check(
        lenient.event_for(&ghost)?.outcome == FAILED,
        "failure still logged",
        &lenient,
    )
}

/// An invalid reference stops the run before the runtime is asked.
fn invalid_reference(node: &Node, kind: RuntimeKind) -> Outcome {
    let images = push_images(node, "invalid", 1)?;
    let bad = format!("{}/e2e/Not_Lower-Case:v1", node.registry.host());

    let before = node.registry.repo_requests(&images[0].name)?.len();

    let result = run(node, kind, &[images[0].reference(), bad.clone()])?;
    check(
        result.code == Some(2),
        "an invalid reference must exit 2",
        &result,
    )?;
    check(
        result.stderr.contains(&bad),
        "the message must name the reference",
        &result,
    )?;
    assert_absent(node, kind, &images)?;
    let after = node.registry.repo_requests(&images[0].name)?;
    check(
        after.len() == before,
        &format!("registry asked: {:?}", &after[before.min(after.len())..]),
        &result,
    )
}

/// A socket that does not exist: exit 3.
fn unreachable_socket(node: &Node, kind: RuntimeKind) -> Outcome {
    let images = push_images(node, "nosocket", 1)?;
    let dir = node.work_dir("nosocket")?;
    let socket = dir.join("absent.sock");

    let result = node
        .puller()?
        .args(["--runtime", kind.flag(), "--socket"])
        .arg(&socket)
        .arg(images[0].reference())
        .run()?;
    check(
        result.code == Some(3),
        "an unreachable runtime must exit 3",
        &result,
    )?;
    check(
        result.stderr.contains(&socket.display().to_string()),
        "the message must name the socket",
        &result,
    )
}

/// `--dry-run` reaches the runtime, names what it would pull, pulls nothing.
fn dry_run(node: &Node, kind: RuntimeKind) -> Outcome {
    let images = push_images(node, "dryrun", 2)?;
    let refs = references(&images);
    let before = pull_request_counts(node, &images)?;

    let result = node.puller_for(kind)?.arg("--dry-run").args(&refs).run()?;
    check(result.code == Some(0), "--dry-run must exit 0", &result)?;
    let output = format!("{}{}", result.stdout, result.stderr);
    for reference in &refs {
        check(
            output.contains(reference.as_str()),
            &format!("{reference} not named"),
            &result,
        )?;
    }
    assert_absent(node, kind, &images)?;
    let after = pull_request_counts(node, &images)?;
    check(
        before == after,
        &format!("registry asked: {before:?} -> {after:?}"),
        &result,
    )
}

/// `--runtime auto --host-root DIR` finds the socket linked at its
/// well-known path under DIR and pulls into that runtime only.
fn auto_detects(node: &Node, kind: RuntimeKind) -> Outcome {
    let images = push_images(node, "auto", 1)?;
    let root = node.work_dir("hostroot")?;
    let well_known = match kind {
        RuntimeKind::Cri => WELL_KNOWN[0],
        RuntimeKind::Docker => WELL_KNOWN[5],
    };
    link_socket(&root.join(well_known), node.socket(kind))?;

    let result = node
        .puller()?
        .args(["--log-format", "json", "--runtime", "auto", "--host-root"])
        .arg(&root)
        .arg(images[0].reference())
        .run()?;
    check(
        result.code == Some(0),
        "auto-detection must find the socket",
        &result,
    )?;
    check(
        result.stderr.contains(well_known),
        "the log must say which socket",
        &result,
    )?;
    assert_present(node, kind, &images)?;
    let other = match kind {
        RuntimeKind::Cri => RuntimeKind::Docker,
        RuntimeKind::Docker => RuntimeKind::Cri,
    };
    assert_absent(node, other, &images)
}

/// A symlink at `at` to the real socket: connect(2) follows it, as it does
/// for hosts where `/var/run` links to `/run`.
fn link_socket(at: &Path, socket: &Path) -> Outcome {
    if let Some(parent) = at.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    }
    symlink(socket, at).map_err(|e| format!("link {}: {e}", at.display()))?;
    Ok(())
}

/// No socket under an empty host root: exit 3, every path tried listed.
fn auto_nothing_found(node: &Node) -> Outcome {
    let root = node.work_dir("emptyroot")?;
    let images = push_images(node, "noruntime", 1)?;

    let result = node
        .puller()?
        .args(["--runtime", "auto", "--host-root"])
        .arg(&root)
        .arg(images[0].reference())
        .run()?;
    check(
        result.code == Some(3),
        "no runtime found must exit 3",
        &result,
    )?;
    for path in WELL_KNOWN {
        check(
            result.stderr.contains(path),
            &format!("{path} not listed"),
            &result,
        )?;
    }
    Ok(())
}

/// The summary lands in the termination-log file, within 4096 bytes.
fn termination_log(node: &Node, kind: RuntimeKind) -> Outcome {
    let images = push_images(node, "termlog", 2)?;
    let ghost = format!("{}/{}:v1", node.registry.host(), node.unique_name("ghost"));
    let file = node.work_dir("termlog")?.join("termination-log");
    fs::write(&file, "").map_err(|e| format!("create {}: {e}", file.display()))?;

    let list = [references(&images), vec![ghost.clone()]].concat();
    let result = run(
        node,
        kind,
        &[
            list,
            vec!["--termination-log".into(), file.display().to_string()],
        ]
        .concat(),
    )?;
    check(
        result.code == Some(1),
        "one failed image must exit 1",
        &result,
    )?;

    let summary = fs::read_to_string(&file).map_err(|e| format!("read {}: {e}", file.display()))?;
    let context = format!("termination log:\n{summary}");
    check(
        !summary.trim().is_empty(),
        "termination log is empty",
        &result,
    )?;
    check(
        summary.len() <= 4096,
        &format!("{} bytes > 4096", summary.len()),
        &result,
    )?;
    check(
        summary.contains(PULLED),
        &format!("no pulled count\n{context}"),
        &result,
    )?;
    check(
        summary.contains(&ghost),
        &format!("failed image not named\n{context}"),
        &result,
    )
}

/// `--images-file` with comments, blanks and spaces, plus a digest-pinned
/// reference that is satisfied only by that digest.
fn images_file(node: &Node, kind: RuntimeKind) -> Outcome {
    let images = push_images(node, "listfile", 3)?;
    let file = node.work_dir("listfile")?.join("images.txt");
    let text = format!(
        "# images to pre-pull\n\n  {}  \n{}\n# {}\n",
        images[0].reference(),
        images[1].pinned(),
        images[2].reference()
    );
    fs::write(&file, text).map_err(|e| format!("write {}: {e}", file.display()))?;

    let result = run(
        node,
        kind,
        &["--images-file".into(), file.display().to_string()],
    )?;
    check(
        result.code == Some(0),
        "images file run must exit 0",
        &result,
    )?;
    assert_present(node, kind, &images[..1])?;
    let events = result.image_events()?;
    check(
        events.len() == 2,
        &format!("{} events for 2 listed images", events.len()),
        &result,
    )?;
    check(
        result.event_for(&images[1].pinned())?.digest.as_deref() == Some(images[1].digest.as_str()),
        "pinned image digest",
        &result,
    )?;
    assert_pinned_present(node, kind, &images[1])?;
    assert_absent(node, kind, &images[2..])
}

/// A tag moved to new content: the old image still satisfies the tag, but a
/// reference pinned to the new digest must be pulled.
fn digest_pin(node: &Node, kind: RuntimeKind) -> Outcome {
    let old = push_images(node, "moved", 1)?.remove(0);
    let first = run(node, kind, &[old.reference()])?;
    check(first.code == Some(0), "first pull must exit 0", &first)?;

    let new = node.registry.push_random(&old.name, &old.tag)?;
    ensure(new.digest != old.digest, "re-pushed tag kept its digest")?;
    let by_tag = run(node, kind, &[old.reference()])?;
    check(by_tag.code == Some(0), "tag run must exit 0", &by_tag)?;
    assert_events(&by_tag, std::slice::from_ref(&old), PRESENT)?;

    let pinned = run(node, kind, &[new.pinned()])?;
    check(pinned.code == Some(0), "pinned run must exit 0", &pinned)?;
    let event = pinned.event_for(&new.pinned())?;
    check(
        event.outcome == PULLED,
        "a new digest must be pulled",
        &pinned,
    )?;
    check(
        event.digest.as_deref() == Some(new.digest.as_str()),
        "pulled digest",
        &pinned,
    )?;
    assert_pinned_present(node, kind, &new)
}

/// Fails unless `kind` holds `image` under its `repo@digest` name.
fn assert_pinned_present(node: &Node, kind: RuntimeKind, image: &PushedImage) -> Outcome {
    let pinned = image.pinned();
    let held = match kind {
        RuntimeKind::Cri => node.containerd.image_digest(&pinned)?.is_some(),
        RuntimeKind::Docker => node
            .dockerd
            .image(&pinned)?
            .is_some_and(|i| i.repo_digests.contains(&pinned)),
    };
    ensure(held, format!("{} does not hold {pinned}", kind.flag()))
}

/// Many failures make a summary longer than Kubernetes keeps: the file holds
/// at most 4096 bytes, and the counts come first so they survive the cut.
fn termination_log_cut(node: &Node) -> Outcome {
    let padding = "x".repeat(100);
    let ghosts: Vec<String> = (0..60)
        .map(|_| {
            format!(
                "{}/{}-{padding}:v1",
                node.registry.host(),
                node.unique_name("ghost")
            )
        })
        .collect();
    let file = node.work_dir("termcut")?.join("termination-log");

    let result = node
        .puller_for(RuntimeKind::Cri)?
        .args(["--parallel", "8", "--termination-log"])
        .arg(&file)
        .args(&ghosts)
        .run()?;
    check(result.code == Some(1), "failed images must exit 1", &result)?;

    let summary = fs::read(&file).map_err(|e| format!("read {}: {e}", file.display()))?;
    check(
        (3000..=4096).contains(&summary.len()),
        &format!(
            "termination log is {} bytes, want a cut near 4096",
            summary.len()
        ),
        &result,
    )?;
    let text = String::from_utf8_lossy(&summary);
    let first = text.lines().next().unwrap_or_default();
    check(
        first.contains("60 failed"),
        &format!("counts line {first:?} lacks the 60 failures"),
        &result,
    )
}
