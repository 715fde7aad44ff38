//! The built binary as a user runs it, on the paths that need no container
//! runtime: bad input (exit 2, nothing contacted), no runtime (exit 3),
//! `--help`, environment variables and JSON logs. Pulls through real
//! runtimes are proven by the end-to-end crate.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

fn puller() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_puller"));
    command.env_remove("RUST_LOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("PULLER_") {
            command.env_remove(name);
        }
    }
    command
}

fn run(command: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("run puller");
    let code = status.code().expect("exit code, not a signal");
    let text = |bytes| String::from_utf8(bytes).expect("utf-8 output");
    (code, text(stdout), text(stderr))
}

/// A fresh directory for one test, removed when dropped.
fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("create temp dir")
}

/// A socket nobody answers on; it records whether anyone connected.
fn listening_socket(dir: &Path) -> (PathBuf, UnixListener) {
    let path = dir.join("runtime.sock");
    let listener = UnixListener::bind(&path).expect("bind socket");
    listener.set_nonblocking(true).expect("nonblocking");
    (path, listener)
}

fn was_contacted(listener: &UnixListener) -> bool {
    match listener.accept() {
        Ok(_) => true,
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(err) => panic!("accept: {err}"),
    }
}

#[test]
fn invalid_reference_exits_2_without_contacting_the_runtime() {
    let dir = temp_dir();
    let (socket, listener) = listening_socket(dir.path());

    let (code, stdout, stderr) = run(puller()
        .arg("--socket")
        .arg(&socket)
        .args(["nginx", "Bad/Name"]));

    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "argument 2: invalid image reference \"Bad/Name\": repository name must be lowercase"
        ),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!was_contacted(&listener));
}

#[test]
fn invalid_line_in_an_images_file_is_named_by_file_and_line() {
    let dir = temp_dir();
    let file = dir.path().join("images.txt");
    std::fs::write(&file, "# images\nnginx:1.27\n\nredis@sha256:abc\n").expect("write list");

    let (code, _, stderr) = run(puller().arg("--images-file").arg(&file));

    assert_eq!(code, 2, "{stderr}");
    let expected = format!(
        "{}:4: invalid image reference \"redis@sha256:abc\"",
        file.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn missing_images_file_and_empty_list_exit_2() {
    let (code, _, stderr) = run(puller().args(["--images-file", "/nonexistent/images.txt"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("read images file /nonexistent/images.txt"),
        "{stderr}"
    );

    let (code, _, stderr) = run(&mut puller());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no images to pull"), "{stderr}");
}

#[test]
fn no_runtime_exits_3_listing_every_path_tried() {
    let root = temp_dir();

    let root = root.path();
    let (code, _, stderr) = run(puller().arg("--host-root").arg(root).arg("nginx"));

    assert_eq!(code, 3, "{stderr}");
    for path in [
        "run/containerd/containerd.sock",
        "run/k3s/containerd/containerd.sock",
        "var/snap/microk8s/common/run/containerd.sock",
        "var/run/crio/crio.sock",
        "var/run/cri-dockerd.sock",
        "var/run/docker.sock",
        "run/podman/podman.sock",
    ] {
        let tried = root.join(path);
        assert!(
            stderr.contains(&tried.display().to_string()),
            "{path} missing: {stderr}"
        );
    }
}

#[test]
fn options_come_from_environment_variables() {
    let dir = temp_dir();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "busybox\n").expect("write list");
    let termination = dir.path().join("termination-log");

    let (code, _, stderr) = run(puller()
        .env("PULLER_IMAGES_FILE", &list)
        .env("PULLER_SOCKET", dir.path().join("absent.sock"))
        .env("PULLER_LOG_FORMAT", "json")
        .env("PULLER_TERMINATION_LOG", &termination));

    assert_eq!(code, 3, "{stderr}");
    let message = std::fs::read_to_string(&termination).expect("termination log written");
    assert!(
        message.starts_with("nothing pulled: no usable container runtime"),
        "{message}"
    );
    assert!(message.contains("absent.sock"), "{message}");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(events[0]["fields"]["images"], 1, "{stderr}");
    assert_eq!(events.last().expect("an event")["level"], "ERROR");
}

#[test]
fn bad_value_in_an_environment_variable_exits_2() {
    let (code, _, stderr) = run(puller().env("PULLER_PARALLEL", "0").arg("nginx"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--parallel"), "{stderr}");

    let (code, _, stderr) = run(puller().env("RUST_LOG", "loud").arg("nginx"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("invalid log filter \"loud\""), "{stderr}");
}

#[test]
fn help_names_every_environment_variable_and_exit_code() {
    let (code, stdout, _) = run(puller().arg("--help"));

    assert_eq!(code, 0);
    for var in [
        "PULLER_IMAGES_FILE",
        "PULLER_AUTH_FILE",
        "PULLER_RUNTIME",
        "PULLER_SOCKET",
        "PULLER_HOST_ROOT",
        "PULLER_PULL_POLICY",
        "PULLER_PARALLEL",
        "PULLER_RETRIES",
        "PULLER_TIMEOUT",
        "PULLER_BEST_EFFORT",
        "PULLER_DRY_RUN",
        "PULLER_LOG_FORMAT",
        "PULLER_LOG_LEVEL",
        "PULLER_TERMINATION_LOG",
    ] {
        assert!(stdout.contains(&format!("[env: {var}=")), "{var} missing");
    }
    assert!(
        stdout.contains("3  no container runtime answered"),
        "{stdout}"
    );
}

#[test]
fn version_prints_the_package_version() {
    let (code, stdout, _) = run(puller().arg("--version"));
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim(),
        format!("puller {}", env!("CARGO_PKG_VERSION"))
    );
}

/// A password no test output may ever contain, and the forms it travels in.
const SECRET: &str = "S3cret:with:colons";
/// base64 of `deploy-bot:S3cret:with:colons`.
const SECRET_AUTH: &str = "ZGVwbG95LWJvdDpTM2NyZXQ6d2l0aDpjb2xvbnM=";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

fn assert_no_secret(texts: &[&str]) {
    for text in texts {
        for secret in [SECRET, SECRET_AUTH, "S3cret"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}

/// Runs puller against a socket nobody answers, with `auth` as the only
/// auth file; returns the exit code, stderr, the termination message and
/// whether the socket was contacted.
fn run_with_auth_file(auth: &str) -> (i32, String, String, bool, PathBuf) {
    let dir = temp_dir();
    let (socket, listener) = listening_socket(dir.path());
    let file = write(dir.path(), ".dockerconfigjson", auth);
    let termination = dir.path().join("termination-log");

    let (code, stdout, stderr) = run(puller()
        .arg("--socket")
        .arg(&socket)
        .arg("--auth-file")
        .arg(&file)
        .arg("--termination-log")
        .arg(&termination)
        .args(["--log-level", "trace", "registry.example.com/app:1"]));

    assert!(stdout.is_empty(), "{stdout}");
    let message = std::fs::read_to_string(&termination).expect("termination log written");
    (code, stderr, message, was_contacted(&listener), file)
}

#[test]
fn auth_entry_with_bad_base64_exits_2_naming_file_and_entry_before_any_contact() {
    let auth = format!(r#"{{"auths": {{"registry.example.com": {{"auth": "{SECRET}"}}}}}}"#);

    let (code, stderr, message, contacted, file) = run_with_auth_file(&auth);

    assert_eq!(code, 2, "{stderr}");
    let expected = format!(
        "parse auth file {}: entry \"registry.example.com\": field `auth` is not valid base64",
        file.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(
        message,
        format!("nothing pulled: an auth file is not valid: {expected}")
    );
    assert!(!contacted, "the runtime was contacted");
    assert_no_secret(&[&stderr, &message]);
}

#[test]
fn broken_json_is_reported_by_position_without_quoting_it() {
    let auth = format!(r#"{{"auths": {{"r.example": {{"password": "{SECRET}" "user"}}}}}}"#);

    let (code, stderr, message, contacted, file) = run_with_auth_file(&auth);

    assert_eq!(code, 2, "{stderr}");
    let expected = format!(
        "parse auth file {}: not valid JSON (syntax error at line 1 column ",
        file.display()
    );
    assert!(message.contains(&expected), "{message}");
    assert!(!contacted);
    assert_no_secret(&[&stderr, &message]);
}

#[test]
fn key_that_is_not_a_registry_and_non_string_secret_exit_2() {
    let cases = [
        (
            format!(r#"{{"auths": {{"ftp://r.example": {{"auth": "{SECRET_AUTH}"}}}}}}"#),
            "entry \"ftp://r.example\": the key is not a registry: scheme `ftp` is not http or https",
        ),
        (
            r#"{"r.example": {"auth": 12345}}"#.to_owned(),
            "entry \"r.example\": field `auth` is not a string",
        ),
        (
            format!(r#"{{"auths": {{"me:{SECRET}@r.example": {{"auth": "{SECRET_AUTH}"}}}}}}"#),
            "entry \"<redacted>@r.example\": the key is not a registry: user info",
        ),
    ];

    for (auth, expected) in cases {
        let (code, stderr, message, contacted, _) = run_with_auth_file(&auth);
        assert_eq!(code, 2, "{stderr}");
        assert!(message.contains(expected), "{message}");
        assert!(!contacted);
        assert_no_secret(&[&stderr, &message]);
    }
}

#[test]
fn missing_auth_file_exits_2() {
    let (code, _, stderr) =
        run(puller().args(["--auth-file", "/nonexistent/.dockerconfigjson", "nginx"]));

    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("read auth file /nonexistent/.dockerconfigjson: "),
        "{stderr}"
    );
}

#[test]
fn helpers_are_warned_about_once_and_keys_logged_but_never_secrets() {
    let dir = temp_dir();
    let config = write(
        dir.path(),
        "config.json",
        &format!(
            r#"{{"auths": {{"registry.example.com": {{"auth": "{SECRET_AUTH}"}}, "quay.io": {{}}}},
                "credsStore": "desktop", "credHelpers": {{"gcr.io": "gcloud"}}}}"#
        ),
    );
    let secret = write(
        dir.path(),
        "secret.json",
        &format!(
            r#"{{"*.example.com": {{"username": "ci", "password": "{SECRET}", "identitytoken": "{SECRET}-token"}}}}"#
        ),
    );
    let termination = dir.path().join("termination-log");

    // The same file twice must still warn once per setting.
    let (code, stdout, stderr) = run(puller()
        .arg(format!(
            "--auth-file={},{}",
            config.display(),
            secret.display()
        ))
        .arg("--auth-file")
        .arg(&config)
        .args(["--log-format", "json", "--log-level", "trace"])
        .arg("--socket")
        .arg(dir.path().join("absent.sock"))
        .arg("--termination-log")
        .arg(&termination)
        .arg("registry.example.com/app"));

    assert_eq!(code, 3, "{stderr}");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["fields"]["message"].as_str())
        .collect();
    for warning in [
        "credsStore \"desktop\"",
        "credHelpers for [\"gcr.io\"]",
        "entry \"quay.io\" ignored",
    ] {
        let count = messages.iter().filter(|m| m.contains(warning)).count();
        assert_eq!(count, 1, "{warning}: {stderr}");
    }
    let loaded = events
        .iter()
        .find(|e| e["fields"]["message"] == "registry credentials loaded")
        .expect("credentials logged");
    assert_eq!(loaded["fields"]["files"], 3, "{stderr}");
    assert_eq!(loaded["fields"]["credentials"], 3, "{stderr}");
    assert_eq!(
        loaded["fields"]["keys"], "registry.example.com, registry.example.com, *.example.com",
        "{stderr}"
    );
    let message = std::fs::read_to_string(&termination).expect("termination log");
    assert_no_secret(&[&stdout, &stderr, &message]);
}

#[test]
fn auth_files_come_from_the_environment_comma_separated() {
    let dir = temp_dir();
    let one = write(
        dir.path(),
        "one.json",
        &format!(r#"{{"auths": {{"registry.example.com": {{"auth": "{SECRET_AUTH}"}}}}}}"#),
    );
    let two = write(
        dir.path(),
        "two.json",
        &format!(r#"{{"https://index.docker.io/v1/": {{"auth": "{SECRET_AUTH}"}}}}"#),
    );

    let (code, _, stderr) = run(puller()
        .env(
            "PULLER_AUTH_FILE",
            format!("{},{}", one.display(), two.display()),
        )
        .env("PULLER_LOG_FORMAT", "json")
        .arg("--socket")
        .arg(dir.path().join("absent.sock"))
        .arg("nginx"));

    assert_eq!(code, 3, "{stderr}");
    let loaded: serde_json::Value = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|e| e["fields"]["message"] == "registry credentials loaded")
        .expect("credentials logged");
    assert_eq!(loaded["fields"]["files"], 2, "{stderr}");
    assert_eq!(loaded["fields"]["credentials"], 2, "{stderr}");
    assert_no_secret(&[&stderr]);
}

#[test]
fn a_timeout_outside_one_second_to_a_day_exits_2_naming_it() {
    for given in ["10M", "1ms"] {
        let (code, stdout, stderr) = run(puller().args(["--timeout", given, "nginx"]));

        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(&format!("{given:?}")), "{stderr}");
        assert!(stderr.contains("allowed range 1s to 24h"), "{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
    }
}

#[test]
fn a_tcp_socket_exits_2_saying_only_unix_sockets_work() {
    let (code, _, stderr) = run(puller().args(["--socket", "tcp://127.0.0.1:2375", "nginx"]));

    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("only unix sockets are supported (a path or unix://PATH)"),
        "{stderr}"
    );
    assert!(!stderr.contains("no such socket"), "{stderr}");
}

#[test]
fn an_empty_images_file_is_named_and_a_bom_is_ignored() {
    let dir = temp_dir();
    let empty = dir.path().join("images.txt");
    std::fs::write(&empty, "# none yet\n").expect("write list");

    let (code, _, stderr) = run(puller().arg("--images-file").arg(&empty));
    assert_eq!(code, 2, "{stderr}");
    let expected = format!("no arguments, and {} lists none", empty.display());
    assert!(stderr.contains(&expected), "{stderr}");

    let socket = dir.path().join("refusing.sock");
    drop(UnixListener::bind(&socket).expect("bind socket"));
    let bom = dir.path().join("bom.txt");
    std::fs::write(&bom, "\u{feff}nginx:1.27\n").expect("write list");
    let (code, _, stderr) = run(puller()
        .arg("--socket")
        .arg(&socket)
        .arg("--images-file")
        .arg(&bom));
    assert_eq!(
        code, 3,
        "the list is valid, only the runtime is missing: {stderr}"
    );
    assert!(!stderr.contains("invalid image reference"), "{stderr}");
}
