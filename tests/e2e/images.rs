//! Issue 4's end-to-end proof: the images `build-images` wrote (the OCI
//! layouts in `$PREPULL_IMAGES_DIR`, required here: these trials never fall
//! back to raw binaries) pushed to the node's registry as multi-arch
//! indexes, pulled by containerd and dockerd and run, with their image
//! configs read back, and their arm64 binaries run under
//! `qemu-aarch64-static`.
//!
//! Stopping `pause` from its image with exit 0 is `pause::`'s trials, and
//! the whole DaemonSet is `deploy::`'s; both run the same pushed images,
//! and `images::pushed_as_the_built_multi_arch_index` proves those are the
//! built ones, so nothing of theirs is repeated here.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::read::GzDecoder;
use libtest_mimic::{Failed, Trial};
use prepull_e2e::kubelet::{Kubelet, OurImages, PodSpec, Source, Terminated};
use prepull_e2e::{Node, PullerCommand, PullerRun, RuntimeKind, run_command};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::pause::{RT_SIGTIMEDWAIT, our_images};
use crate::support::{Outcome, assert_absent, check, ensure, push_images, trial};

/// The version every image and binary must report: the workspace's.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What each image declares: name (also `/NAME`, its entrypoint) and user.
const IMAGES: [(&str, &str); 2] = [("puller", "0:0"), ("pause", "65535:65535")];

/// The platforms of each index, as `os/architecture`.
const PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];

/// The OCI labels issue 4 asks for.
const LABELS: [&str; 6] = [
    "org.opencontainers.image.source",
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.licenses",
    "org.opencontainers.image.title",
    "org.opencontainers.image.description",
];

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What puller logs for an absent image in a dry run.
const WOULD_PULL: &str = "would pull";

/// ELF `e_machine` of aarch64.
const EM_AARCH64: u16 = 183;

/// How long pause under emulation may take to reach its signal wait, and
/// to exit after SIGTERM: emulation is slow to start, not to exit.
const READY_LIMIT: Duration = Duration::from_secs(20);
const EXIT_LIMIT: Duration = Duration::from_secs(5);

pub fn trials(node: &Arc<Node>) -> Vec<Trial> {
    vec![
        trial(
            node,
            "images::pushed_as_the_built_multi_arch_index",
            pushed_index,
        ),
        trial(
            node,
            "images::config_declares_user_entrypoint_and_labels",
            image_configs,
        ),
        trial(
            node,
            "images::containerd_runs_puller_from_its_image",
            in_containerd,
        ),
        trial(
            node,
            "images::dockerd_runs_puller_from_its_image",
            in_dockerd,
        ),
        trial(
            node,
            "images::arm64_binaries_run_under_qemu",
            arm64_under_qemu,
        ),
    ]
}

/// Our images, pushed from the layouts in `$PREPULL_IMAGES_DIR`, and that
/// directory. Fails when the variable is unset or the images came from
/// anywhere else.
fn built_images(node: &Node) -> Result<(OurImages, PathBuf), Failed> {
    let dir = std::env::var_os("PREPULL_IMAGES_DIR").ok_or(
        "PREPULL_IMAGES_DIR is not set: the images:: trials test the images build-images \
         writes; run `cargo run -p prepull-images --bin build-images -- --out DIR` and export \
         PREPULL_IMAGES_DIR=DIR (tests/test.sh does both)",
    )?;
    let dir = PathBuf::from(dir);

    let ours = our_images(node)?;
    ensure(
        ours.source == Source::Layouts(dir.clone()),
        format!(
            "our images were pushed from {}, not from the layouts in {}",
            ours.source,
            dir.display()
        ),
    )?;
    Ok((ours, dir))
}

/// The digest of the index a layout's `index.json` names.
fn layout_digest(layout: &Path) -> Result<String, Failed> {
    let path = layout.join("index.json");
    let text = fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let index: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;

    index
        .pointer("/manifests/0/digest")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{} names no manifest digest", path.display()).into())
}

/// `REPO@DIGEST` of the built index behind `reference` (`HOST/REPO:TAG`).
fn pinned(reference: &str, digest: &str) -> String {
    let repository = reference.rsplit_once(':').map_or(reference, |(r, _)| r);
    format!("{repository}@{digest}")
}

/// `skopeo inspect ARGS docker://REFERENCE` against the node's registry.
fn skopeo_inspect(node: &Node, reference: &str, args: &[&str]) -> Result<String, Failed> {
    let mut command = Command::new("skopeo");
    command.args(["inspect", "--tls-verify=false"]).args(args);
    if let Some(c) = node.registry.credentials().first() {
        command.arg(format!("--creds={}:{}", c.username, c.password));
    }
    command.arg(format!("docker://{reference}"));
    Ok(run_command(&mut command)?)
}

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The registry serves each image as an OCI index over linux/amd64 and
/// linux/arm64 whose digest is the one `build-images` wrote: so every
/// trial that runs `OurImages` (pause::, deploy::, these) runs the build.
fn pushed_index(node: &Node) -> Outcome {
    let (ours, dir) = built_images(node)?;

    for (name, reference) in [("puller", &ours.puller), ("pause", &ours.pause)] {
        let raw = skopeo_inspect(node, reference, &["--raw"])?;
        let served = sha256(raw.as_bytes());
        let built = layout_digest(&dir.join(name))?;
        ensure(
            served == built,
            format!("{reference}: the registry serves {served}, build-images wrote {built}"),
        )?;

        let index: Value =
            serde_json::from_str(&raw).map_err(|e| format!("{reference} manifest: {e}"))?;
        ensure(
            index["mediaType"] == OCI_INDEX,
            format!(
                "{reference}: media type {}, want {OCI_INDEX}",
                index["mediaType"]
            ),
        )?;
        let platforms = platforms_of(&index);
        ensure(
            platforms == PLATFORMS,
            format!("{reference}: platforms {platforms:?}, want {PLATFORMS:?}"),
        )?;
        eprintln!("images: {reference} is index {served} over {platforms:?}");
    }
    Ok(())
}

/// `os/architecture` of each manifest of an index, sorted.
fn platforms_of(index: &Value) -> Vec<String> {
    let manifests = index["manifests"].as_array().map_or(&[][..], Vec::as_slice);
    let mut platforms: Vec<String> = manifests
        .iter()
        .map(|m| {
            let platform = &m["platform"];
            let os = platform["os"].as_str().unwrap_or("?");
            let arch = platform["architecture"].as_str().unwrap_or("?");
            format!("{os}/{arch}")
        })
        .collect();
    platforms.sort();
    platforms
}

/// Each image's config, for both architectures, as the registry serves it:
/// the user, the entrypoint `/NAME`, and the OCI labels.
fn image_configs(node: &Node) -> Outcome {
    let (ours, _) = built_images(node)?;

    for (name, user) in IMAGES {
        let reference = if name == "puller" {
            &ours.puller
        } else {
            &ours.pause
        };
        for platform in PLATFORMS {
            let (os, arch) = platform.split_once('/').unwrap_or((platform, ""));
            let args = ["--config", "--override-os", os, "--override-arch", arch];
            let text = skopeo_inspect(node, reference, &args)?;
            let config: Value =
                serde_json::from_str(&text).map_err(|e| format!("{reference} config: {e}"))?;
            let what = format!("{reference} ({platform})");

            ensure(
                config["architecture"] == arch && config["os"] == os,
                format!(
                    "{what}: config is for {}/{}",
                    config["os"], config["architecture"]
                ),
            )?;
            check_config(&what, name, user, &config["config"])?;
        }
        eprintln!("images: {reference}: user {user}, entrypoint /{name}, labels present");
    }
    Ok(())
}

/// Fails unless the image config's `config` runs `/NAME` as `user` and
/// carries every label, with this workspace's version and the image's name.
fn check_config(what: &str, name: &str, user: &str, config: &Value) -> Outcome {
    ensure(
        config["User"] == user,
        format!("{what}: user {}, want {user}", config["User"]),
    )?;
    let entrypoint = format!("/{name}");
    ensure(
        config["Entrypoint"] == serde_json::json!([entrypoint]),
        format!(
            "{what}: entrypoint {}, want [{entrypoint:?}]",
            config["Entrypoint"]
        ),
    )?;

    let labels = &config["Labels"];
    for label in LABELS {
        let value = labels[label].as_str().unwrap_or("");
        ensure(
            !value.trim().is_empty(),
            format!("{what}: label {label} missing or empty in {labels}"),
        )?;
    }
    let label = |key: &str| labels[format!("org.opencontainers.image.{key}")].clone();
    ensure(
        label("version") == VERSION,
        format!("{what}: version label {}, want {VERSION}", label("version")),
    )?;
    ensure(
        label("title") == name,
        format!("{what}: title label {}, want {name}", label("title")),
    )?;
    let revision = label("revision");
    let revision = revision.as_str().unwrap_or("");
    ensure(
        revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()),
        format!("{what}: revision label {revision:?} is not a commit id"),
    )
}

/// A pod whose init containers are the puller image run twice through CRI:
/// `--version`, then `--dry-run` against containerd's socket, whose
/// directory is mounted read-only as the DaemonSet mounts it.
fn dry_run_pod(puller: &str, socket: &Path, image: &str) -> Result<PodSpec, Failed> {
    let dir = socket
        .parent()
        .ok_or_else(|| format!("socket {} has no directory", socket.display()))?;
    let yaml = format!(
        r#"initContainers:
- name: version
  image: {puller}
  args: ["--version"]
- name: dry-run
  image: {puller}
  args: ["--dry-run", "--runtime", "cri", "--socket", "{socket}", "{image}"]
  volumeMounts:
  - {{name: runtime, mountPath: "{dir}", readOnly: true}}
containers: []
volumes:
- name: runtime
  hostPath: {{path: "{dir}", type: Directory}}
"#,
        socket = socket.display(),
        dir = dir.display(),
    );
    Ok(PodSpec::from_yaml(&yaml)?)
}

/// containerd pulls the puller index through CRI (its amd64 manifest runs)
/// and runs `--version` and a dry run against its own mounted socket.
fn in_containerd(node: &Node) -> Outcome {
    let (ours, dir) = built_images(node)?;
    let images = push_images(node, "images-cri", 1)?;
    let image = images[0].reference();
    let socket = node.containerd.socket();
    let spec = dry_run_pod(&ours.puller, socket, &image)?;
    let kubelet = Kubelet::connect(socket, &node.work_dir("images-cri")?)?;

    let pod = kubelet.run_pod("images-puller", "e2e", &spec, &BTreeMap::new())?;
    let init = pod.init.clone();
    pod.stop()?;

    let [version, dry_run] = init.as_slice() else {
        return Err(format!("{} init containers ran, want 2", init.len()).into());
    };
    check_version_container(version)?;
    check_dry_run_container(dry_run, &image)?;
    assert_absent(node, RuntimeKind::Cri, &images)?;

    let built = pinned(&ours.puller, &layout_digest(&dir.join("puller"))?);
    let held = kubelet.cri().image_status(&ours.puller)?;
    let digests = held.map(|i| i.repo_digests).unwrap_or_default();
    ensure(
        digests.contains(&built),
        format!(
            "CRI ImageStatus of {}: repo digests {digests:?}, want {built}",
            ours.puller
        ),
    )?;
    eprintln!(
        "images: containerd ran {built}: {:?}; dry run {:?}",
        version.log_tail,
        dry_run_line(&dry_run.log_tail, &image)
    );
    Ok(())
}

fn check_version_container(version: &Terminated) -> Outcome {
    let want = format!("puller {VERSION}");
    ensure(
        version.exit_code == 0 && version.log_tail.trim() == want,
        format!(
            "puller --version exited {} with {:?}, want 0 with {want:?}",
            version.exit_code, version.log_tail
        ),
    )
}

fn check_dry_run_container(dry_run: &Terminated, image: &str) -> Outcome {
    ensure(
        dry_run.exit_code == 0 && dry_run_line(&dry_run.log_tail, image).is_some(),
        format!(
            "puller --dry-run exited {} ({}), want 0 and a line naming {image} with {WOULD_PULL:?}; log:\n{}",
            dry_run.exit_code, dry_run.reason, dry_run.log_tail
        ),
    )
}

/// The line of a dry run's output that says `image` would be pulled.
fn dry_run_line<'a>(output: &'a str, image: &str) -> Option<&'a str> {
    output
        .lines()
        .find(|line| line.contains(image) && line.contains(WOULD_PULL))
}

/// dockerd pulls the puller index (`docker run` picks amd64) and runs
/// `--version` and a dry run against its own socket, mounted read-only at
/// the same path inside the container.
fn in_dockerd(node: &Node) -> Outcome {
    let (ours, dir) = built_images(node)?;
    let images = push_images(node, "images-docker", 1)?;
    let image = images[0].reference();

    let version = DockerRun::new(node, &[&ours.puller, "--version"])?;
    let want = format!("puller {VERSION}");
    version.expect(version.stdout.trim() == want, &format!("print {want:?}"))?;

    let dry_run = docker_dry_run(node, &ours.puller, &image)?;
    let line = dry_run_line(&dry_run.stderr, &image);
    dry_run.expect(
        line.is_some(),
        &format!("a line naming {image} with {WOULD_PULL:?}"),
    )?;
    assert_absent(node, RuntimeKind::Docker, &images)?;

    let built = pinned(&ours.puller, &layout_digest(&dir.join("puller"))?);
    let held = node.dockerd.image(&ours.puller)?;
    let digests = held.map(|i| i.repo_digests).unwrap_or_default();
    ensure(
        digests.contains(&built),
        format!(
            "docker holds {} with repo digests {digests:?}, want {built}",
            ours.puller
        ),
    )?;
    eprintln!(
        "images: dockerd ran {built}: {:?}; dry run {line:?}",
        version.stdout.trim()
    );
    Ok(())
}

/// `puller --dry-run` against dockerd from inside a container of that
/// dockerd: the socket's directory is mounted read-only at its own path, so
/// the path puller is given is the same inside and out.
fn docker_dry_run(node: &Node, puller: &str, image: &str) -> Result<DockerRun, Failed> {
    let socket = node.dockerd.socket();
    let dir = socket
        .parent()
        .ok_or_else(|| format!("socket {} has no directory", socket.display()))?;
    let volume = format!("{0}:{0}:ro", dir.display());
    let socket = socket.display().to_string();

    let args = [
        "--volume",
        &volume,
        puller,
        "--dry-run",
        "--runtime",
        "docker",
    ];
    DockerRun::new(node, &[&args[..], &["--socket", &socket, image]].concat())
}

/// One `docker run --rm`: its status is the container's exit code.
struct DockerRun {
    command: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl DockerRun {
    fn new(node: &Node, args: &[&str]) -> Result<DockerRun, Failed> {
        let args = [&["run", "--rm"], args].concat();
        let output = node.dockerd.docker_output(&args)?;
        Ok(DockerRun {
            command: format!("docker {}", args.join(" ")),
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Fails unless the container exited 0 and `ok`, which checks `what`.
    fn expect(&self, ok: bool, what: &str) -> Outcome {
        ensure(
            self.status.success() && ok,
            format!(
                "{}: {}, want exit 0 and {what}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.command, self.status, self.stdout, self.stderr
            ),
        )
    }
}

/// `qemu-aarch64-static` from `PATH`; its absence fails the trial.
fn qemu() -> Result<PathBuf, Failed> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("qemu-aarch64-static"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "qemu-aarch64-static is not on PATH: the arm64 binaries cannot run; \
             install qemu-user-static (tests/setup.sh does)"
                .into()
        })
}

/// The arm64 binaries, taken from the pushed indexes, run under qemu:
/// `puller --version`, `puller --dry-run` against the node's containerd,
/// `pause --version`, and pause ended by SIGTERM with exit 0.
fn arm64_under_qemu(node: &Node) -> Outcome {
    let qemu = qemu()?;
    let (ours, _) = built_images(node)?;
    let work = node.work_dir("images-arm64")?;
    let puller = extract_arm64(node, &ours.puller, "puller", &work)?;
    let pause = extract_arm64(node, &ours.pause, "pause", &work)?;

    let version = emulated(&qemu, &puller, &work)?.arg("--version").run()?;
    expect_version(&version, "puller")?;
    let version = emulated(&qemu, &pause, &work)?.arg("--version").run()?;
    expect_version(&version, "pause")?;

    let images = push_images(node, "images-arm64", 1)?;
    let image = images[0].reference();
    let dry_run = emulated(&qemu, &puller, &work)?
        .args(["--dry-run", "--runtime", "cri", "--socket"])
        .arg(node.containerd.socket())
        .arg(&image)
        .run()?;
    check(
        dry_run.code == Some(0),
        "arm64 puller --dry-run must exit 0",
        &dry_run,
    )?;
    check(
        dry_run_line(&dry_run.stderr, &image).is_some(),
        &format!("the dry run does not say {image} {WOULD_PULL}"),
        &dry_run,
    )?;
    assert_absent(node, RuntimeKind::Cri, &images)?;

    let took = pause_until_sigterm(&qemu, &pause)?;
    eprintln!(
        "images: arm64 under qemu: puller and pause --version, puller --dry-run against containerd ({:.2}s), pause exit 0 {:.3}s after SIGTERM",
        dry_run.elapsed.as_secs_f64(),
        took.as_secs_f64()
    );
    Ok(())
}

/// `qemu-aarch64-static BINARY`, ready for arguments, output in `work`.
fn emulated(qemu: &Path, binary: &Path, work: &Path) -> Result<PullerCommand, Failed> {
    let out = work.join(format!(
        "run-{}",
        binary
            .file_name()
            .map_or("bin".into(), |n| n.to_string_lossy())
    ));
    fs::create_dir_all(&out).map_err(|e| format!("create {}: {e}", out.display()))?;
    Ok(PullerCommand::new(qemu, &out).arg(binary))
}

fn expect_version(run: &PullerRun, name: &str) -> Outcome {
    let want = format!("{name} {VERSION}");
    check(
        run.code == Some(0) && run.stdout.trim() == want,
        &format!("arm64 {name} --version must exit 0 and print {want:?}"),
        run,
    )
}

/// Copies the linux/arm64 image of `reference` out of the registry and
/// unpacks its one layer's `NAME`; fails unless that is an aarch64 ELF.
fn extract_arm64(node: &Node, reference: &str, name: &str, work: &Path) -> Result<PathBuf, Failed> {
    let copy = work.join(format!("{name}-arm64-image"));
    let mut command = Command::new("skopeo");
    command.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
    ]);
    command.args(["--override-os", "linux", "--override-arch", "arm64"]);
    if let Some(c) = node.registry.credentials().first() {
        command.arg(format!("--src-creds={}:{}", c.username, c.password));
    }
    command
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", copy.display()));
    run_command(&mut command)?;

    let layer = single_layer(&copy)?;
    let binary = work.join(format!("{name}-arm64"));
    unpack_entry(&layer, name, &binary)?;
    let machine = elf_machine(&binary)?;
    ensure(
        machine == EM_AARCH64,
        format!(
            "{name} from the arm64 image has ELF machine {machine}, want {EM_AARCH64} (aarch64)"
        ),
    )?;
    Ok(binary)
}

/// The blob file of the one layer a `dir:` copy's manifest lists.
fn single_layer(copy: &Path) -> Result<PathBuf, Failed> {
    let path = copy.join("manifest.json");
    let text = fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let manifest: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let layers = manifest["layers"].as_array().map_or(&[][..], Vec::as_slice);

    let [layer] = layers else {
        return Err(format!("{}: {} layers, want 1", path.display(), layers.len()).into());
    };
    let digest = layer["digest"].as_str().unwrap_or("");
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("{}: layer digest {digest:?}", path.display()))?;
    Ok(copy.join(hex))
}

/// Writes the entry `name` (or `./name`) of the gzip tar `layer` to `to`,
/// executable.
fn unpack_entry(layer: &Path, name: &str, to: &Path) -> Outcome {
    let file = File::open(layer).map_err(|e| format!("open {}: {e}", layer.display()))?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let entries = archive
        .entries()
        .map_err(|e| format!("read {}: {e}", layer.display()))?;

    for entry in entries {
        let mut entry = entry.map_err(|e| format!("read {}: {e}", layer.display()))?;
        let path = entry.path().map_err(|e| format!("entry path: {e}"))?;
        if path
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_start_matches('/')
            != name
        {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("read {name} from {}: {e}", layer.display()))?;
        fs::write(to, &bytes).map_err(|e| format!("write {}: {e}", to.display()))?;
        fs::set_permissions(to, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", to.display()))?;
        return Ok(());
    }
    Err(format!("layer {} holds no {name}", layer.display()).into())
}

/// The `e_machine` field of an ELF file (little-endian, at offset 18).
fn elf_machine(path: &Path) -> Result<u16, Failed> {
    let bytes = fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    match bytes.get(..20) {
        Some(head) if head.starts_with(b"\x7fELF") => Ok(u16::from_le_bytes([head[18], head[19]])),
        _ => Err(format!("{} is not an ELF file", path.display()).into()),
    }
}

/// Kills a child still running when the trial ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts pause under qemu, waits until it sleeps in its signal wait, sends
/// SIGTERM and returns how long it took to exit, failing unless with 0.
fn pause_until_sigterm(qemu: &Path, pause: &Path) -> Result<Duration, Failed> {
    let child = Command::new(qemu)
        .arg(pause)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start {} {}: {e}", qemu.display(), pause.display()))?;
    let mut child = Reaped(child);
    let pid = child.0.id().to_string();
    wait_in_signal_wait(&mut child.0, &pid)?;

    let sent = Instant::now();
    run_command(Command::new("kill").args(["-TERM", &pid]))?;
    let status = wait_exit(&mut child.0, EXIT_LIMIT)?;
    let took = sent.elapsed();

    let mut stderr = String::new();
    if let Some(mut pipe) = child.0.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    ensure(
        status.code() == Some(0),
        format!("arm64 pause after SIGTERM: {status}, want exit 0; stderr: {stderr:?}"),
    )?;
    Ok(took)
}

/// Waits until `pid` blocks in `rt_sigtimedwait`: before that, SIGTERM
/// would meet the default action and the test would prove nothing.
fn wait_in_signal_wait(child: &mut Child, pid: &str) -> Outcome {
    let path = format!("/proc/{pid}/syscall");
    let started = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("wait for pause: {e}"))?
        {
            return Err(format!("arm64 pause ended before any signal: {status}").into());
        }
        let text = fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
        if text.split_whitespace().next() == Some(RT_SIGTIMEDWAIT) {
            return Ok(());
        }
        if started.elapsed() > READY_LIMIT {
            return Err(format!(
                "arm64 pause not in its signal wait after {READY_LIMIT:?}: {path} says {text:?}"
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `limit` for `child` to exit.
fn wait_exit(child: &mut Child, limit: Duration) -> Result<ExitStatus, Failed> {
    let started = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("wait for pause: {e}"))?
        {
            return Ok(status);
        }
        if started.elapsed() > limit {
            return Err(format!("arm64 pause still runs {limit:?} after SIGTERM").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
