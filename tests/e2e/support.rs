//! Small helpers shared by the trial modules.

use std::sync::Arc;

use libtest_mimic::{Failed, Trial};
use prepull_e2e::{Node, PullerRun, PushedImage, RuntimeKind};

/// What a trial body returns; harness errors convert with `?`.
pub type Outcome = Result<(), Failed>;

/// A scenario run once per runtime.
pub type Scenario = fn(&Node, RuntimeKind) -> Outcome;

/// A trial named `name` running `body` against the shared node.
pub fn trial(node: &Arc<Node>, name: &str, body: fn(&Node) -> Outcome) -> Trial {
    let node = Arc::clone(node);
    Trial::test(name, move || body(&node))
}

/// The same trial once per runtime, named `{module}::{cri|docker}::{name}`.
pub fn per_runtime(node: &Arc<Node>, module: &str, name: &str, body: Scenario) -> Vec<Trial> {
    RuntimeKind::ALL
        .into_iter()
        .map(|kind| {
            let node = Arc::clone(node);
            let full = format!("{module}::{}::{name}", kind.flag());
            Trial::test(full, move || body(&node, kind))
        })
        .collect()
}

/// Fails with `message` and the run's command and output unless `ok`.
pub fn check(ok: bool, message: &str, run: &PullerRun) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(format!("{message}\n{}", run.context()).into())
    }
}

/// Fails with `message` unless `ok`.
pub fn ensure(ok: bool, message: impl Into<String>) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(message.into().into())
    }
}

/// Pushes `count` fresh random images named after `label`.
pub fn push_images(node: &Node, label: &str, count: usize) -> Result<Vec<PushedImage>, Failed> {
    let mut images = Vec::new();
    for _ in 0..count {
        let name = node.unique_name(label);
        images.push(node.registry.push_random(&name, "v1")?);
    }
    Ok(images)
}

/// Fails unless `kind` holds every image with the digest the registry serves.
pub fn assert_present(node: &Node, kind: RuntimeKind, images: &[PushedImage]) -> Outcome {
    for image in images {
        let held = node.runtime_digest(kind, image)?;
        ensure(
            held.as_deref() == Some(image.digest.as_str()),
            format!(
                "{}: {} holds digest {held:?}, the registry serves {}",
                image.reference(),
                kind.flag(),
                image.digest
            ),
        )?;
    }
    Ok(())
}

/// Fails unless `kind` holds none of `images`.
pub fn assert_absent(node: &Node, kind: RuntimeKind, images: &[PushedImage]) -> Outcome {
    for image in images {
        let held = node.runtime_digest(kind, image)?;
        ensure(
            held.is_none(),
            format!(
                "{}: {} holds it ({held:?}) but must not",
                image.reference(),
                kind.flag()
            ),
        )?;
    }
    Ok(())
}

/// Number of manifest and blob requests the registry logged for each image.
pub fn pull_request_counts(node: &Node, images: &[PushedImage]) -> Result<Vec<usize>, Failed> {
    let mut counts = Vec::new();
    for image in images {
        counts.push(node.registry.pull_requests(&image.name)?.len());
    }
    Ok(counts)
}

/// References of `images`, as puller arguments.
pub fn references(images: &[PushedImage]) -> Vec<String> {
    images.iter().map(PushedImage::reference).collect()
}
