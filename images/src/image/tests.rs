use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use super::*;

fn package(name: &str) -> Package {
    Package {
        name: name.to_owned(),
        version: "0.1.0".to_owned(),
        description: format!("the {name} program"),
        license: "Apache-2.0".to_owned(),
        repository: "https://github.com/prepull/prepull".to_owned(),
    }
}

fn source(revision: &str) -> Source {
    Source {
        revision: revision.to_owned(),
        epoch: 1_796_317_435,
        dirty: false,
    }
}

fn binaries(name: &str) -> Vec<Binary> {
    Arch::ALL
        .iter()
        .map(|&arch| Binary {
            name: name.to_owned(),
            arch,
            path: PathBuf::from(format!("/nowhere/{arch}/{name}")),
            bytes: format!("{name} for {arch}").repeat(50).into_bytes(),
        })
        .collect()
}

fn build(spec: &ImageSpec, revision: &str, out: &Path) -> BuiltImage {
    let meta = ImageMeta::new(&package(spec.name), &source(revision), None).expect("meta");
    let bins = binaries(spec.name);
    let refs: Vec<&Binary> = bins.iter().collect();

    assemble(spec, &meta, &refs, out).expect("assemble")
}

/// Every file of a layout, by path relative to it, with its bytes.
fn files(dir: &Path) -> BTreeSet<(PathBuf, Vec<u8>)> {
    let mut found = BTreeSet::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("inside layout").to_owned();
                found.insert((rel, fs::read(&path).expect("read file")));
            }
        }
    }
    found
}

fn blob_json(image: &BuiltImage, digest: &Digest) -> Value {
    let path = image.layout.join("blobs/sha256").join(digest.digest());
    serde_json::from_slice(&fs::read(path).expect("blob")).expect("blob is JSON")
}

fn index_json(image: &BuiltImage) -> Value {
    blob_json(image, image.index.digest())
}

#[test]
fn two_assemblies_of_the_same_input_are_byte_identical() {
    let (a, b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );

    let first = build(&IMAGES[0], "abc123", a.path());
    let second = build(&IMAGES[0], "abc123", b.path());

    assert_eq!(first.index.digest(), second.index.digest());
    assert_eq!(files(&first.layout), files(&second.layout));
    assert_eq!(
        files(&first.layout).len(),
        9,
        "oci-layout, index.json, 1 index + 2×3 blobs"
    );
}

#[test]
fn another_revision_gives_another_digest() {
    let dir = tempfile::tempdir().expect("tmp");

    let first = build(&IMAGES[1], "abc123", &dir.path().join("a"));
    let other = build(&IMAGES[1], "def456", &dir.path().join("b"));

    assert_ne!(first.index.digest(), other.index.digest());
}

#[test]
fn rebuilding_into_the_same_directory_leaves_no_stale_blobs() {
    let dir = tempfile::tempdir().expect("tmp");

    build(&IMAGES[1], "abc123", dir.path());
    let rebuilt = build(&IMAGES[1], "def456", dir.path());

    assert_eq!(files(&rebuilt.layout).len(), 9);
    assert!(!dir.path().join(".pause.partial").exists());
}

#[test]
fn index_lists_amd64_and_arm64_v8() {
    let dir = tempfile::tempdir().expect("tmp");
    let image = build(&IMAGES[0], "abc123", dir.path());

    let index = index_json(&image);

    let platforms: Vec<&Value> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| &m["platform"])
        .collect();
    assert_eq!(
        platforms[0],
        &serde_json::json!({"architecture": "amd64", "os": "linux"})
    );
    assert_eq!(
        platforms[1],
        &serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
    );
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["annotations"][ANNOTATION_REVISION], "abc123");
}

#[test]
fn pause_config_runs_the_binary_as_65535() {
    let dir = tempfile::tempdir().expect("tmp");
    let image = build(&IMAGES[1], "abc123", dir.path());
    let arm = &image.platforms[1];

    let manifest = blob_json(&image, arm.manifest.digest());
    let config_digest: Digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest")
        .parse()
        .expect("valid digest");
    let config = blob_json(&image, &config_digest);

    assert_eq!(config["config"]["User"], "65535:65535");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/pause"])
    );
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
    assert_eq!(config["created"], "2026-12-03T17:03:55Z");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(1)
    );
    let labels = &config["config"]["Labels"];
    assert_eq!(labels[ANNOTATION_TITLE], "pause");
    assert_eq!(labels[ANNOTATION_VERSION], "0.1.0");
    assert_eq!(labels[ANNOTATION_REVISION], "abc123");
    assert_eq!(labels[ANNOTATION_LICENSES], "Apache-2.0");
    assert_eq!(
        labels[ANNOTATION_SOURCE],
        "https://github.com/prepull/prepull"
    );
    assert_eq!(labels[ANNOTATION_DESCRIPTION], "the pause program");
}

#[test]
fn puller_runs_as_root_and_sizes_are_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let image = build(&IMAGES[0], "abc123", dir.path());
    let amd = &image.platforms[0];

    let manifest = blob_json(&image, amd.manifest.digest());
    let layer = &manifest["layers"][0];

    assert_eq!(
        layer["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(layer["size"].as_u64(), Some(amd.layer_size));
    assert_eq!(amd.binary_size, "puller for amd64".len() as u64 * 50);
    assert!(amd.tar_size > amd.binary_size);
    let config_digest: Digest = manifest["config"]["digest"]
        .as_str()
        .expect("digest")
        .parse()
        .expect("valid");
    assert_eq!(blob_json(&image, &config_digest)["config"]["User"], "0:0");
}

#[test]
fn explicit_tag_overrides_the_version() {
    let meta = ImageMeta::new(&package("pause"), &source("abc"), Some("test-1")).expect("meta");

    assert_eq!(meta.tag, "test-1");
    assert_eq!(meta.labels[ANNOTATION_VERSION], "0.1.0");
}
