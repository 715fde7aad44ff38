//! The real build command, run twice from the same checkout into two
//! directories: the layouts must be byte-identical, readable by skopeo for
//! both platforms, and hold exactly the binaries cargo built.
//!
//! This compiles `puller` and `pause` for both musl targets (incrementally:
//! the second build reuses the first one's binaries), so it needs the musl
//! rustup targets, git and skopeo. It never skips: a missing tool fails it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use prepull_images::compile::{binary_path, build_dir};
use prepull_images::{Arch, IMAGES};
use serde_json::Value;
use tempfile::TempDir;

struct Builds {
    first: TempDir,
    second: TempDir,
}

/// Both builds, made once for all tests of this file.
fn builds() -> &'static Builds {
    static BUILDS: OnceLock<Builds> = OnceLock::new();

    BUILDS.get_or_init(|| {
        let first = tempfile::tempdir().expect("temp dir");
        let second = tempfile::tempdir().expect("temp dir");
        build_into(first.path());
        build_into(second.path());
        Builds { first, second }
    })
}

fn build_into(out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_build-images"))
        .arg("--out")
        .arg(out)
        .status()
        .expect("start build-images");

    assert!(
        status.success(),
        "build-images --out {} failed: {status}",
        out.display()
    );
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file under `dir` with its bytes, keyed by relative path.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = fs::read(&path).expect("read file");
                found.insert(path.strip_prefix(dir).expect("under dir").to_owned(), bytes);
            }
        }
    }
    found
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).expect("read JSON file")).expect("valid JSON")
}

fn blob(layout: &Path, digest: &Value) -> Vec<u8> {
    let digest = digest.as_str().expect("digest is a string");
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");

    fs::read(layout.join("blobs/sha256").join(hex)).expect("blob present")
}

/// (tag, image index digest) from a layout's `index.json`.
fn tag_and_digest(layout: &Path) -> (String, String) {
    let entry = &read_json(&layout.join("index.json"))["manifests"][0];
    let tag = entry["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .expect("tag");
    (
        tag.to_owned(),
        entry["digest"].as_str().expect("digest").to_owned(),
    )
}

fn skopeo(args: &[&str]) -> Value {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo must be installed");

    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("skopeo prints JSON")
}

fn git_head() -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(workspace_root())
        .args(["rev-parse", "HEAD"])
        .output()
        .expect("git must be installed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn two_builds_give_the_same_digests_and_bytes() {
    let b = builds();

    for spec in IMAGES {
        let first = tag_and_digest(&b.first.path().join(spec.name));
        let second = tag_and_digest(&b.second.path().join(spec.name));
        assert_eq!(
            first, second,
            "{} image digest differs between builds",
            spec.name
        );
    }
    let (first, second) = (files(b.first.path()), files(b.second.path()));
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    assert!(first == second, "same file names, different contents");
}

#[test]
fn skopeo_reads_both_platforms_with_their_labels_and_user() {
    let revision = git_head();

    for spec in IMAGES {
        let layout = builds().first.path().join(spec.name);
        let (tag, _) = tag_and_digest(&layout);
        let source = format!("oci:{}:{tag}", layout.display());
        for arch in Arch::ALL {
            let arch = arch.to_string();
            let pick = ["--override-os", "linux", "--override-arch", arch.as_str()];

            let info = skopeo(&[&["inspect"], &pick[..], &[source.as_str()]].concat());
            let config =
                skopeo(&[&["inspect", "--config"], &pick[..], &[source.as_str()]].concat());

            assert_eq!(info["Architecture"], arch.as_str(), "{source}");
            assert_eq!(
                info["Labels"]["org.opencontainers.image.revision"],
                revision.as_str()
            );
            assert_eq!(info["Labels"]["org.opencontainers.image.title"], spec.name);
            assert_eq!(config["config"]["User"], spec.user, "{source} {arch}");
            assert_eq!(config["config"]["Entrypoint"][0], format!("/{}", spec.name));
        }
    }
}

#[test]
fn each_layer_holds_exactly_the_built_binary() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let ws = prepull_images::source::workspace(&cargo, &workspace_root()).expect("cargo metadata");

    for spec in IMAGES {
        let layout = builds().first.path().join(spec.name);
        let (_, index_digest) = tag_and_digest(&layout);
        let index: Value =
            serde_json::from_slice(&blob(&layout, &Value::from(index_digest))).expect("index");
        for (entry, arch) in index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .zip(Arch::ALL)
        {
            let manifest: Value =
                serde_json::from_slice(&blob(&layout, &entry["digest"])).expect("manifest");
            let layers = manifest["layers"].as_array().expect("layers");
            assert_eq!(layers.len(), 1, "{} {arch}: one layer", spec.name);

            let (path, contents) = only_entry(&blob(&layout, &layers[0]["digest"]));
            let built =
                fs::read(binary_path(&build_dir(&ws), arch, spec.name)).expect("built binary");
            assert_eq!(path, spec.name);
            assert!(
                contents == built,
                "{} {arch}: layer is not the built binary",
                spec.name
            );
        }
    }
}

/// The path and contents of the single entry of a gzip-compressed tar.
fn only_entry(layer: &[u8]) -> (String, Vec<u8>) {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut entries = archive.entries().expect("tar entries");
    let mut entry = entries.next().expect("an entry").expect("entry reads");

    let path = entry.path().expect("path").to_string_lossy().into_owned();
    let mut contents = Vec::new();
    entry.read_to_end(&mut contents).expect("entry contents");
    drop(entry);
    assert!(entries.next().is_none(), "layer has more than one entry");
    (path, contents)
}
