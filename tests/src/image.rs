//! Small test images, written as an OCI image layout and pushed with skopeo,
//! so they reach the registry without passing through a daemon under test.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::process::run_command;
use crate::registry::Registry;
use crate::scratch::Scratch;

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A file placed in an image layer.
#[derive(Debug, Clone)]
pub struct ImageFile {
    /// Path inside the image, without the leading `/`.
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// What a test image holds. The default is two layers of random bytes, so
/// every image built has its own digest.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Number of layers holding one random file each.
    pub random_layers: usize,
    /// Size of each random file.
    pub random_bytes: usize,
    /// Extra files, all in one more layer (a binary to run, say).
    pub files: Vec<ImageFile>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            random_layers: 2,
            random_bytes: 16 * 1024,
            files: Vec::new(),
            entrypoint: None,
            user: None,
        }
    }
}

impl ImageSpec {
    /// An image running the static binary at `binary` as `/{name}` with
    /// `args`, as `user` (e.g. `65535:65535`). One small random layer keeps
    /// its digest unique.
    pub fn binary(binary: &Path, name: &str, args: &[&str], user: Option<&str>) -> Result<Self> {
        let contents = fs::read(binary).map_err(|e| Error::io("read", binary, e))?;
        let mut entrypoint = vec![format!("/{name}")];
        entrypoint.extend(args.iter().map(|a| a.to_string()));

        Ok(ImageSpec {
            random_layers: 1,
            random_bytes: 64,
            files: vec![ImageFile {
                path: name.to_string(),
                contents,
                mode: 0o755,
            }],
            entrypoint: Some(entrypoint),
            user: user.map(str::to_string),
        })
    }
}

/// An image as pushed: its reference and the manifest digest the registry
/// serves for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `127.0.0.1:PORT/name`
    pub repository: String,
    /// The repository path inside the registry, `name`.
    pub name: String,
    pub tag: String,
    /// `sha256:…` of the manifest.
    pub digest: String,
}

impl PushedImage {
    /// `127.0.0.1:PORT/name:tag`
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }

    /// `127.0.0.1:PORT/name@sha256:…`
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }
}

impl Registry {
    /// Builds an image from `spec` and pushes it as `name:tag`.
    pub fn push(&self, name: &str, tag: &str, spec: &ImageSpec) -> Result<PushedImage> {
        let work = Scratch::new("img")?;
        let layout = work.subdir("layout")?;
        write_layout(&layout, tag, spec)?;

        let digest_file = work.path().join("digest");
        let mut copy = Command::new("skopeo");
        copy.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        if let Some(c) = self.credentials().first() {
            copy.arg(format!("--dest-creds={}:{}", c.username, c.password));
        }
        copy.arg("--digestfile")
            .arg(&digest_file)
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{name}:{tag}", self.host()));
        run_command(&mut copy)?;

        let digest =
            fs::read_to_string(&digest_file).map_err(|e| Error::io("read", &digest_file, e))?;
        Ok(PushedImage {
            repository: format!("{}/{name}", self.host()),
            name: name.to_string(),
            tag: tag.to_string(),
            digest: digest.trim().to_string(),
        })
    }

    /// Pushes `name:tag` with the default spec (two random layers).
    pub fn push_random(&self, name: &str, tag: &str) -> Result<PushedImage> {
        self.push(name, tag, &ImageSpec::default())
    }
}

/// Writes an OCI image layout with one manifest tagged `tag` into `dir`.
fn write_layout(dir: &Path, tag: &str, spec: &ImageSpec) -> Result<()> {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| Error::io("create directory", &blobs, e))?;

    let layers = build_layers(spec)?;
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in &layers {
        descriptors.push(write_blob(&blobs, LAYER_TYPE, &layer.gzipped)?);
        diff_ids.push(layer.diff_id.clone());
    }

    let config = write_blob(
        &blobs,
        CONFIG_TYPE,
        &to_bytes(&config_json(spec, &diff_ids)),
    )?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": config,
        "layers": descriptors,
    });
    let mut manifest_desc = write_blob(&blobs, MANIFEST_TYPE, &to_bytes(&manifest))?;
    manifest_desc["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });

    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_desc],
    });
    write_file(&dir.join("index.json"), &to_bytes(&index))?;
    write_file(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
}

struct Layer {
    gzipped: Vec<u8>,
    diff_id: String,
}

fn build_layers(spec: &ImageSpec) -> Result<Vec<Layer>> {
    let mut layers = Vec::new();
    for i in 0..spec.random_layers {
        let file = ImageFile {
            path: format!("random/{i}.bin"),
            contents: random_bytes(spec.random_bytes)?,
            mode: 0o644,
        };
        layers.push(layer_of(&[file])?);
    }
    if !spec.files.is_empty() {
        layers.push(layer_of(&spec.files)?);
    }
    Ok(layers)
}

/// A gzipped tar of `files` with fixed owners and times.
fn layer_of(files: &[ImageFile]) -> Result<Layer> {
    let mut builder = tar::Builder::new(Vec::new());
    for file in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.contents.len() as u64);
        header.set_mode(file.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder
            .append_data(&mut header, &file.path, file.contents.as_slice())
            .map_err(|e| Error::io("add to layer", &file.path, e))?;
    }
    let tar = builder
        .into_inner()
        .map_err(|e| Error::io("finish layer", "tar", e))?;

    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).map_err(|e| Error::io("gzip", "layer", e))?;
    let gzipped = gz.finish().map_err(|e| Error::io("gzip", "layer", e))?;
    Ok(Layer {
        gzipped,
        diff_id: sha256(&tar),
    })
}

fn config_json(spec: &ImageSpec, diff_ids: &[String]) -> Value {
    let mut config = json!({ "Env": ["PATH=/"] });
    if let Some(entrypoint) = &spec.entrypoint {
        config["Entrypoint"] = json!(entrypoint);
    }
    if let Some(user) = &spec.user {
        config["User"] = json!(user);
    }
    let history: Vec<Value> = diff_ids
        .iter()
        .map(|_| json!({ "created": "1970-01-01T00:00:00Z", "created_by": "prepull-e2e" }))
        .collect();

    json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": oci_arch(),
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": history,
    })
}

/// The OCI name of this machine's architecture.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Stores `bytes` as a blob and returns its descriptor.
fn write_blob(blobs: &Path, media_type: &str, bytes: &[u8]) -> Result<Value> {
    let digest = sha256(bytes);
    let hex = digest.trim_start_matches("sha256:");
    write_file(&blobs.join(hex), bytes)?;
    Ok(json!({ "mediaType": media_type, "digest": digest, "size": bytes.len() }))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|e| Error::io("write", path, e))
}

fn to_bytes(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn random_bytes(len: usize) -> Result<Vec<u8>> {
    let path = PathBuf::from("/dev/urandom");
    let mut buf = vec![0u8; len];
    fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::io("read", &path, e))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_has_consistent_digests() {
        let scratch = Scratch::new("unit").expect("scratch");
        write_layout(scratch.path(), "v1", &ImageSpec::default()).expect("layout");

        let index: Value =
            serde_json::from_slice(&fs::read(scratch.path().join("index.json")).expect("index"))
                .expect("index json");
        let digest = index["manifests"][0]["digest"].as_str().expect("digest");
        let blob = scratch
            .path()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        let manifest = fs::read(blob).expect("manifest blob");
        assert_eq!(sha256(&manifest), digest);

        let manifest: Value = serde_json::from_slice(&manifest).expect("manifest json");
        assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn random_layers_differ() {
        let a = layer_of(&[ImageFile {
            path: "a".into(),
            contents: random_bytes(32).expect("random"),
            mode: 0o644,
        }])
        .expect("layer");
        let b = layer_of(&[ImageFile {
            path: "a".into(),
            contents: random_bytes(32).expect("random"),
            mode: 0o644,
        }])
        .expect("layer");
        assert_ne!(a.diff_id, b.diff_id);
    }
}
