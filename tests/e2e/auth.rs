//! Issue 6's scenarios: pulls from a registry that demands basic auth, with
//! credentials from `--auth-file`, through containerd's CRI and dockerd.
//!
//! Each trial starts its own `docker-registry` with an htpasswd file, so its
//! access log holds only that trial's requests. That registry lets any valid
//! user read every repository, so "the right one of two credentials" is shown
//! with one valid and one wrong credential whose keys could both apply: the
//! pull must succeed with only the right one offered, which puller's debug
//! event `pulling with credential` names, one per credential tried.
//!
//! A wildcard key needs a host with dots, and the only names that reach the
//! loopback registry here are `localhost` and the address itself (the tests
//! must not edit /etc/hosts). So the wildcard key is `*.0.0.1:PORT`, which
//! matches `127.0.0.1:PORT` label by label exactly as `*.example.com` matches
//! `r.example.com` (the kubelet's rule, which does not treat addresses
//! apart), and the competing keys name the same registry as `localhost:PORT`
//! or match it with a less specific wildcard.
//!
//! containerd alone can also be shown a wildcard over a real DNS-style name:
//! its `hosts.toml` can send `reg.prepull.test:PORT` (a reserved test domain
//! no resolver knows) to the registry's address, so `*.prepull.test:PORT`
//! is matched as it would be in a cluster. dockerd has no such setting for
//! registries other than Docker Hub, so that trial is CRI only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libtest_mimic::{Failed, Trial};
use prepull_e2e::{Credentials, Node, PullerRun, PushedImage, Registry, RuntimeKind, Scratch};
use serde_json::{Map, Value, json};

use crate::support::{
    Outcome, Scenario, assert_absent, assert_present, check, ensure, per_runtime, trial,
};

const USER: &str = "alice";
const PASSWORD: &str = "alice-Pw-41";
const WRONG: &str = "not-alices-password";
const COLON_USER: &str = "colon";
const COLON_PASSWORD: &str = "pa:ss:w0rd:";

/// The debug event the engine logs before each credential it offers.
const OFFERED: &str = "pulling with credential";
/// The info event puller logs per image with the keys that apply.
const MATCHED: &str = "registry credentials matched";

pub fn trials(node: &Arc<Node>) -> Vec<Trial> {
    let scenarios: [(&str, Scenario); 8] = [
        ("right_credentials_pull", right_credentials),
        ("wrong_credentials_fail_once", wrong_credentials),
        ("password_with_colons_works", colon_password),
        ("wildcard_key_selects_its_credential", wildcard_key),
        ("path_prefix_key_selects_its_credential", path_prefix_key),
        ("refused_credential_falls_back_to_next", fallback),
        ("bad_base64_exits_2_before_any_pull", bad_base64),
        ("no_secret_in_any_output", no_secret_in_output),
    ];
    let mut trials = Vec::new();
    for (name, body) in scenarios {
        trials.extend(per_runtime(node, "auth", name, body));
    }
    trials.push(trial(
        node,
        "auth::cri::wildcard_key_on_a_dns_name",
        wildcard_dns_name,
    ));
    trials
}

/// A registry demanding basic auth, trusted over plain HTTP by the node's
/// containerd under both of its names. Field order is drop order.
struct AuthRegistry {
    registry: Registry,
    _scratch: Scratch,
}

impl AuthRegistry {
    /// Starts a registry accepting `users`; the first one pushes.
    fn start(node: &Node, users: &[Credentials]) -> Result<AuthRegistry, Failed> {
        let scratch = Scratch::new("authreg")?;
        let registry = Registry::start(scratch.path(), users)?;

        node.containerd.trust_registry(&registry.host())?;
        node.containerd.trust_registry(&localhost(&registry))?;
        Ok(AuthRegistry {
            registry,
            _scratch: scratch,
        })
    }

    fn alice(node: &Node) -> Result<AuthRegistry, Failed> {
        AuthRegistry::start(node, &[Credentials::new(USER, PASSWORD)])
    }

    fn host(&self) -> String {
        self.registry.host()
    }

    /// Pushes a random image named `name:v1`.
    fn push(&self, name: &str) -> Result<PushedImage, Failed> {
        Ok(self.registry.push_random(name, "v1")?)
    }

    /// Requests the registry logged, leaving out the harness's own markers.
    fn request_count(&self) -> Result<usize, Failed> {
        let requests = self.registry.requests()?;
        let marker = "/v2/?prepull-e2e-sync=";
        Ok(requests
            .iter()
            .filter(|r| !r.path.starts_with(marker))
            .count())
    }
}

/// The registry's other name, `localhost:PORT`.
fn localhost(registry: &Registry) -> String {
    format!("localhost:{}", registry.port())
}

/// An entry with `auth`: base64 of `user:password`.
fn auth_entry(user: &str, password: &str) -> Value {
    json!({ "auth": STANDARD.encode(format!("{user}:{password}")) })
}

/// An entry with separate `username` and `password` fields.
fn fields_entry(user: &str, password: &str) -> Value {
    json!({ "username": user, "password": password })
}

/// Writes a dockerconfigjson file (`{"auths": {...}}`) and returns its path.
fn auth_file(node: &Node, entries: Vec<(String, Value)>) -> Result<PathBuf, Failed> {
    let auths: Map<String, Value> = entries.into_iter().collect();
    let dir = node.work_dir("auth-file")?;
    let path = dir.join(".dockerconfigjson");

    let text = json!({ "auths": auths }).to_string();
    std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(path)
}

/// puller against `kind` with `file`, JSON logs and the engine's debug
/// events, pulling `images` with `extra` arguments.
fn pull(
    node: &Node,
    kind: RuntimeKind,
    file: &Path,
    images: &[String],
    extra: &[&str],
) -> Result<PullerRun, Failed> {
    let command = node
        .puller_for(kind)?
        .args(["--log-format", "json", "--log-level", "info,prepull=debug"])
        .arg("--auth-file")
        .arg(file);
    Ok(command.args(extra).args(images).run()?)
}

/// The `fields` of every event with `message` about `image`.
fn events_about(run: &PullerRun, message: &str, image: &str) -> Result<Vec<Value>, Failed> {
    let lines = run.json_lines()?;
    Ok(lines
        .into_iter()
        .filter_map(|mut line| line.get_mut("fields").map(Value::take))
        .filter(|fields| fields["message"] == message && fields["image"] == image)
        .collect())
}

/// The keys of the credentials offered for `image`, in order.
fn offered(run: &PullerRun, image: &str) -> Result<Vec<String>, Failed> {
    let events = events_about(run, OFFERED, image)?;
    Ok(events
        .iter()
        .filter_map(|fields| fields["credential"].as_str())
        .map(str::to_owned)
        .collect())
}

/// Fails unless `image`'s keys were matched as `matched` (comma-joined,
/// most specific first) and exactly `keys` were offered, in that order.
fn assert_keys(run: &PullerRun, image: &str, matched: &str, keys: &[&str]) -> Outcome {
    let events = events_about(run, MATCHED, image)?;
    let logged: Vec<&str> = events
        .iter()
        .filter_map(|fields| fields["credentials"].as_str())
        .collect();
    check(
        logged == [matched],
        &format!("{image}: matched keys logged {logged:?}, want [{matched:?}]"),
        run,
    )?;

    let tried = offered(run, image)?;
    check(
        tried == keys,
        &format!("{image}: credentials offered {tried:?}, want {keys:?}"),
        run,
    )
}

/// Fails unless `image` ended as `outcome` after one attempt, with
/// `error_kind` for a failure.
fn assert_outcome(run: &PullerRun, image: &str, outcome: &str, kind: Option<&str>) -> Outcome {
    let event = run.event_for(image)?;
    let error_kind = event.raw["fields"]["error_kind"].as_str();

    check(
        event.outcome == outcome && event.attempts == 1 && error_kind == kind,
        &format!(
            "{image}: outcome {:?} after {} attempts, error_kind {error_kind:?}; \
             want {outcome:?} after 1, {kind:?}",
            event.outcome, event.attempts
        ),
        run,
    )
}

fn assert_code(run: &PullerRun, code: i32) -> Outcome {
    check(
        run.code == Some(code),
        &format!("exit code, want {code}"),
        run,
    )
}

/// The right credentials, as `username`/`password`, pull the image.
fn right_credentials(node: &Node, kind: RuntimeKind) -> Outcome {
    let registry = AuthRegistry::alice(node)?;
    let image = registry.push(&node.unique_name("auth-right"))?;
    let host = registry.host();
    let file = auth_file(node, vec![(host.clone(), fields_entry(USER, PASSWORD))])?;

    let run = pull(node, kind, &file, &[image.reference()], &[])?;

    assert_code(&run, 0)?;
    assert_outcome(&run, &image.reference(), "pulled", None)?;
    assert_keys(&run, &image.reference(), &host, &[&host])?;
    assert_present(node, kind, &[image])
}

/// A wrong password fails as unauthorized after one attempt although
/// `--retries 3` allows four: the registry sees exactly as many requests as
/// with `--retries 0`.
fn wrong_credentials(node: &Node, kind: RuntimeKind) -> Outcome {
    let registry = AuthRegistry::alice(node)?;
    let image = registry.push(&node.unique_name("auth-wrong"))?;
    let host = registry.host();
    let file = auth_file(node, vec![(host.clone(), fields_entry(USER, WRONG))])?;
    let images = [image.reference()];

    let before = registry.request_count()?;
    let run = pull(node, kind, &file, &images, &["--retries", "3"])?;
    let with_retries = registry.request_count()? - before;

    assert_code(&run, 1)?;
    assert_outcome(&run, &image.reference(), "failed", Some("unauthorized"))?;
    assert_keys(&run, &image.reference(), &host, &[&host])?;
    assert_absent(node, kind, std::slice::from_ref(&image))?;

    let before = registry.request_count()?;
    let once = pull(node, kind, &file, &images, &["--retries", "0"])?;
    let without = registry.request_count()? - before;
    assert_code(&once, 1)?;
    ensure(
        with_retries == without && without > 0,
        format!(
            "the registry saw {with_retries} requests with --retries 3 and {without} \
             with --retries 0; an unauthorized pull must not be retried"
        ),
    )
}

/// A password holding colons survives the `auth` field's `user:password`.
fn colon_password(node: &Node, kind: RuntimeKind) -> Outcome {
    let users = [Credentials::new(COLON_USER, COLON_PASSWORD)];
    let registry = AuthRegistry::start(node, &users)?;
    let image = registry.push(&node.unique_name("auth-colon"))?;
    let host = registry.host();
    let entry = auth_entry(COLON_USER, COLON_PASSWORD);
    let file = auth_file(node, vec![(host.clone(), entry)])?;

    let run = pull(node, kind, &file, &[image.reference()], &[])?;

    assert_code(&run, 0)?;
    assert_outcome(&run, &image.reference(), "pulled", None)?;
    assert_keys(&run, &image.reference(), &host, &[&host])?;
    assert_present(node, kind, &[image])
}

/// `*.0.0.1:PORT` (right) beats the less specific `*.*.*.1:PORT` (wrong)
/// for `127.0.0.1:PORT/…`, and neither applies to `localhost:PORT/…`,
/// which gets the key naming it (wrong, so it fails, after one attempt).
fn wildcard_key(node: &Node, kind: RuntimeKind) -> Outcome {
    let registry = AuthRegistry::alice(node)?;
    let image = registry.push(&node.unique_name("auth-wild"))?;
    let port = registry.registry.port();
    let (wild, wilder) = (format!("*.0.0.1:{port}"), format!("*.*.*.1:{port}"));
    let local = localhost(&registry.registry);
    let file = auth_file(
        node,
        vec![
            (wilder.clone(), fields_entry(USER, WRONG)),
            (wild.clone(), auth_entry(USER, PASSWORD)),
            (local.clone(), fields_entry(USER, WRONG)),
        ],
    )?;
    let by_name = format!("{local}/{}:v1", image.name);

    let images = [image.reference(), by_name.clone()];

    let run = pull(node, kind, &file, &images, &[])?;

    assert_code(&run, 1)?;
    assert_outcome(&run, &images[0], "pulled", None)?;
    let both = format!("{wild}, {wilder}");
    assert_keys(&run, &images[0], &both, &[&wild])?;
    assert_present(node, kind, &[image])?;
    assert_outcome(&run, &by_name, "failed", Some("unauthorized"))?;
    assert_keys(&run, &by_name, &local, &[&local])
}

/// Through containerd, `*.prepull.test:PORT` (right) beats `*.*.test:PORT`
/// (wrong) for `reg.prepull.test:PORT/…`, and the key naming the registry's
/// address (wrong) does not apply to that name at all.
fn wildcard_dns_name(node: &Node) -> Outcome {
    let registry = AuthRegistry::alice(node)?;
    let image = registry.push(&node.unique_name("auth-dns"))?;
    let port = registry.registry.port();
    let name = format!("reg.prepull.test:{port}");
    node.containerd.alias_registry(&name, &registry.host())?;
    let (wild, wilder) = (format!("*.prepull.test:{port}"), format!("*.*.test:{port}"));
    let file = auth_file(
        node,
        vec![
            (wilder.clone(), fields_entry(USER, WRONG)),
            (wild.clone(), fields_entry(USER, PASSWORD)),
            (registry.host(), fields_entry(USER, WRONG)),
        ],
    )?;
    let by_name = format!("{name}/{}:v1", image.name);

    let run = pull(
        node,
        RuntimeKind::Cri,
        &file,
        std::slice::from_ref(&by_name),
        &[],
    )?;

    assert_code(&run, 0)?;
    assert_outcome(&run, &by_name, "pulled", None)?;
    assert_keys(&run, &by_name, &format!("{wild}, {wilder}"), &[&wild])?;
    let held = node.containerd.image_digest(&by_name)?;
    ensure(
        held.as_deref() == Some(image.digest.as_str()),
        format!(
            "containerd holds {by_name} at {held:?}, the registry serves {}",
            image.digest
        ),
    )
}

/// `HOST/e2e/…-N` (right) beats `HOST` (wrong) for images under that path,
/// and does not reach `HOST/e2e/…-Nster/…`, whose only key is the host's.
fn path_prefix_key(node: &Node, kind: RuntimeKind) -> Outcome {
    let registry = AuthRegistry::alice(node)?;
    let team = node.unique_name("auth-team");
    let inside = registry.push(&format!("{team}/app"))?;
    let outside = registry.push(&format!("{team}ster/app"))?;
    let host = registry.host();
    let prefix = format!("{host}/{team}");
    let file = auth_file(
        node,
        vec![
            (host.clone(), fields_entry(USER, WRONG)),
            (prefix.clone(), fields_entry(USER, PASSWORD)),
        ],
    )?;
    let images = [inside.reference(), outside.reference()];

    let run = pull(node, kind, &file, &images, &[])?;

    assert_code(&run, 1)?;
    assert_outcome(&run, &images[0], "pulled", None)?;
    assert_keys(&run, &images[0], &format!("{prefix}, {host}"), &[&prefix])?;
    assert_present(node, kind, &[inside])?;
    assert_outcome(&run, &images[1], "failed", Some("unauthorized"))?;
    assert_keys(&run, &images[1], &host, &[&host])?;
    assert_absent(node, kind, &[outside])
}

/// When the most specific key's credential is refused, the next one is
/// offered within the same attempt, and the pull succeeds.
fn fallback(node: &Node, kind: RuntimeKind) -> Outcome {
    let registry = AuthRegistry::alice(node)?;
    let team = node.unique_name("auth-fallback");
    let image = registry.push(&format!("{team}/app"))?;
    let host = registry.host();
    let prefix = format!("{host}/{team}");
    let file = auth_file(
        node,
        vec![
            (prefix.clone(), fields_entry(USER, WRONG)),
            (host.clone(), fields_entry(USER, PASSWORD)),
        ],
    )?;

    let run = pull(node, kind, &file, &[image.reference()], &[])?;

    assert_code(&run, 0)?;
    assert_outcome(&run, &image.reference(), "pulled", None)?;
    let matched = format!("{prefix}, {host}");
    assert_keys(&run, &image.reference(), &matched, &[&prefix, &host])?;
    assert_present(node, kind, &[image])
}

/// An entry whose `auth` is not base64 stops the run with exit 2 naming
/// the file and the entry; neither the runtime nor the registry is asked.
fn bad_base64(node: &Node, kind: RuntimeKind) -> Outcome {
    let registry = AuthRegistry::alice(node)?;
    let image = registry.push(&node.unique_name("auth-b64"))?;
    let host = registry.host();
    let file = auth_file(
        node,
        vec![
            (host.clone(), json!({ "auth": "!!not*base64!!" })),
            (localhost(&registry.registry), auth_entry(USER, PASSWORD)),
        ],
    )?;

    let before = registry.request_count()?;
    let run = pull(node, kind, &file, &[image.reference()], &[])?;
    let requests = registry.request_count()? - before;

    assert_code(&run, 2)?;
    let expected = format!(
        "parse auth file {}: entry \"{host}\": field `auth` is not valid base64",
        file.display()
    );
    check(
        run.stderr.contains(&expected.replace('"', "\\\"")),
        &format!("stderr must say {expected:?}"),
        &run,
    )?;
    ensure(
        requests == 0,
        format!("the registry saw {requests} requests"),
    )?;
    assert_absent(node, kind, &[image])
}

/// Everything an authenticated run writes (stdout, stderr at trace level,
/// the termination message, and a dry run's output) is searched for each
/// password and for the base64 `auth` forms; none may appear.
fn no_secret_in_output(node: &Node, kind: RuntimeKind) -> Outcome {
    let (right, wrong) = ("Gr3p-me:right-0xC0FFEE", "Gr3p-me:wrong-0xBADBAD");
    let registry = AuthRegistry::start(node, &[Credentials::new(USER, right)])?;
    let team = node.unique_name("auth-grep");
    let good = registry.push(&format!("{team}/good"))?;
    let bad = registry.push(&format!("{team}/bad"))?;
    let host = registry.host();
    let file = auth_file(
        node,
        vec![
            (format!("{host}/{team}/good"), auth_entry(USER, right)),
            (format!("{host}/{team}/bad"), fields_entry(USER, wrong)),
        ],
    )?;
    let images = [good.reference(), bad.reference()];

    let outputs = secret_run_outputs(node, kind, &file, &images)?;

    let needles = [
        right.to_owned(),
        wrong.to_owned(),
        "Gr3p-me".to_owned(),
        STANDARD.encode(format!("{USER}:{right}")),
        STANDARD.encode(format!("{USER}:{wrong}")),
    ];
    for (what, text) in &outputs {
        for needle in &needles {
            ensure(
                !text.contains(needle.as_str()),
                format!("{what} contains the secret {needle:?}:\n{text}"),
            )?;
        }
    }
    assert_present(node, kind, &[good])
}

/// Runs the authenticated pull (one image pulled, one refused) and a dry
/// run, both at trace level; returns every output, named.
fn secret_run_outputs(
    node: &Node,
    kind: RuntimeKind,
    file: &Path,
    images: &[String],
) -> Result<Vec<(&'static str, String)>, Failed> {
    let termination = node.work_dir("auth-termination")?.join("termination-log");
    let traced = ["--log-level", "trace", "--termination-log"];
    let run = node
        .puller_for(kind)?
        .args(["--log-format", "json"])
        .args(traced)
        .arg(&termination)
        .arg("--auth-file")
        .arg(file)
        .args(images)
        .run()?;
    assert_code(&run, 1)?;
    assert_outcome(&run, &images[0], "pulled", None)?;
    assert_outcome(&run, &images[1], "failed", Some("unauthorized"))?;
    let message = std::fs::read_to_string(&termination)
        .map_err(|e| format!("read {}: {e}", termination.display()))?;

    let dry = node
        .puller_for(kind)?
        .args(["--dry-run", "--log-level", "trace", "--auth-file"])
        .arg(file)
        .args(images)
        .run()?;
    assert_code(&dry, 0)?;

    Ok(vec![
        ("stdout", run.stdout),
        ("stderr", run.stderr),
        ("termination message", message),
        ("dry-run stdout", dry.stdout),
        ("dry-run stderr", dry.stderr),
    ])
}
