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
        message.starts_with("nothing pulled: no container runtime answered"),
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
