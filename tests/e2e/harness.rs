//! Checks of the test node itself: the images the harness pushes are served
//! with the digest it reports, and both daemons can pull them with their own
//! clients. When these fail, a puller failure says nothing about puller.

use std::sync::Arc;

use libtest_mimic::Trial;
use prepull_e2e::{Credentials, Node, Registry, RuntimeKind, Scratch};

use crate::support::{Outcome, assert_present, ensure, push_images, trial};

pub fn trials(node: &Arc<Node>) -> Vec<Trial> {
    vec![
        trial(
            node,
            "harness::containerd_pulls_a_pushed_image",
            containerd_pulls,
        ),
        trial(node, "harness::dockerd_pulls_a_pushed_image", dockerd_pulls),
        trial(
            node,
            "harness::auth_registry_demands_credentials",
            auth_registry,
        ),
    ]
}

fn containerd_pulls(node: &Node) -> Outcome {
    let images = push_images(node, "harness-ctr", 1)?;
    let before = node.registry.pull_requests(&images[0].name)?.len();

    node.containerd
        .ctr(&["images", "pull", "--plain-http", &images[0].reference()])?;

    assert_present(node, RuntimeKind::Cri, &images)?;
    let after = node.registry.pull_requests(&images[0].name)?.len();
    ensure(
        after > before,
        format!(
            "registry log shows no pull of {} ({before} -> {after})",
            images[0].name
        ),
    )
}

fn dockerd_pulls(node: &Node) -> Outcome {
    let images = push_images(node, "harness-docker", 1)?;

    node.dockerd
        .docker(&["pull", "--quiet", &images[0].reference()])?;

    assert_present(node, RuntimeKind::Docker, &images)
}

/// A registry with basic auth refuses anonymous reads and accepts the
/// harness's authenticated push (a password with colons included).
fn auth_registry(_node: &Node) -> Outcome {
    let scratch = Scratch::new("auth")?;
    let credentials = Credentials::new("e2e-user", "pa:ss:word");
    let registry = Registry::start(scratch.path(), &[credentials])?;

    let image = registry.push_random("e2e/private", "v1")?;

    let root = registry.anonymous_get("/v2/")?;
    ensure(
        root == 401,
        format!("anonymous /v2/ answered {root}, want 401"),
    )?;
    let manifest = registry.anonymous_get(&format!("/v2/{}/manifests/v1", image.name))?;
    ensure(
        manifest == 401,
        format!("anonymous manifest answered {manifest}, want 401"),
    )?;
    let pushed = registry.repo_requests(&image.name)?;
    ensure(
        pushed
            .iter()
            .any(|r| r.method == "PUT" && r.is_manifest_of(&image.name) && r.status == 201),
        format!("no accepted manifest PUT in {pushed:?}"),
    )
}
