//! End-to-end tests: one throwaway node, many trials against it.
//!
//! Run with `cargo test -p prepull-e2e --features e2e --test e2e` as root,
//! after building the binaries under test (tests/test.sh does both). Each
//! area adds a module with `pub fn trials(node: &Arc<Node>) -> Vec<Trial>`;
//! every trial uses its own image names, so trials run side by side.

mod auth;
mod deploy;
mod harness;
mod images;
mod pause;
mod puller;
mod support;

use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Trial};
use prepull_e2e::Node;

/// Trials in flight at once when `--test-threads` is not given: enough to
/// overlap daemon waits, few enough for a 2-core machine.
const DEFAULT_THREADS: usize = 4;

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads.get_or_insert(DEFAULT_THREADS);

    let node = match Node::start() {
        Ok(node) => Arc::new(node),
        Err(e) => {
            eprintln!("e2e: cannot start the test node, no test can run:\n{e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "e2e: node up in {} (registry {}, containerd {}, dockerd {})",
        node.dir().display(),
        node.registry.host(),
        node.containerd.socket().display(),
        node.dockerd.socket().display()
    );

    let conclusion = libtest_mimic::run(&args, all_trials(&node));

    // The trials are gone with `run`, so this is the last handle: dropping
    // it stops the daemons and removes the node before the process exits.
    if Arc::try_unwrap(node).is_err() {
        eprintln!("e2e: a trial still holds the node; its daemons may outlive this run");
        return ExitCode::FAILURE;
    }
    if conclusion.has_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn all_trials(node: &Arc<Node>) -> Vec<Trial> {
    let mut trials = harness::trials(node);
    trials.extend(puller::trials(node));
    trials.extend(pause::trials(node));
    trials.extend(deploy::trials(node));
    trials.extend(auth::trials(node));
    trials.extend(images::trials(node));
    trials
}
