//! prepull's own images (`puller`, `pause`) in the test registry, so that a
//! pod can run them as a node would.
//!
//! The images come, in this order of preference, from:
//! 1. the OCI layouts `build-images` writes (`images/`), in
//!    `$PREPULL_IMAGES_DIR` when set (then they must be there), else in
//!    `<target>/images` when both exist: the images users get;
//! 2. the static musl binaries ([`crate::static_binary`]), each packed alone
//!    into a FROM-scratch image by the harness's builder, with the user the
//!    shipped image declares (puller 0:0, pause 65535:65535).
//!
//! A stale layout from an older build would be used as it is: the source is
//! always printed, so a run says which images it tested.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::error::{Error, Result};
use crate::binaries::{static_binary, target_dir};
use crate::image::ImageSpec;
use crate::process::run_command;
use crate::registry::Registry;

/// The user each image runs as, as `images/` declares it.
const PULLER_USER: &str = "0:0";
const PAUSE_USER: &str = "65535:65535";

/// Where the pushed images came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// OCI layouts written by `build-images`, in this directory.
    Layouts(PathBuf),
    /// Static binaries packed by the harness, from this directory.
    Binaries(PathBuf),
}

/// Our two images, pushed.
#[derive(Debug, Clone)]
pub struct OurImages {
    /// `HOST/e2e/prepull/puller:TAG`
    pub puller: String,
    /// `HOST/e2e/prepull/pause:TAG`
    pub pause: String,
    pub source: Source,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Layouts(dir) => write!(f, "build-images layouts in {}", dir.display()),
            Source::Binaries(dir) => write!(f, "static binaries in {}", dir.display()),
        }
    }
}

impl OurImages {
    /// Pushes both images to `registry` under `e2e/prepull/`.
    pub fn push(registry: &Registry) -> Result<OurImages> {
        match layouts_dir()? {
            Some(dir) => push_layouts(registry, &dir),
            None => push_binaries(registry),
        }
    }

    /// Pushes the pause image once more as `name:tag` (for example the
    /// node's `sandbox_image`), from the same source.
    pub fn push_pause_as(&self, registry: &Registry, name: &str, tag: &str) -> Result<String> {
        match &self.source {
            Source::Layouts(dir) => copy_layout(registry, &dir.join("pause"), name, tag),
            Source::Binaries(_) => {
                let spec =
                    ImageSpec::binary(&static_binary("pause")?, "pause", &[], Some(PAUSE_USER))?;
                Ok(registry.push(name, tag, &spec)?.reference())
            }
        }
    }
}

/// The layouts directory to use, if any: `$PREPULL_IMAGES_DIR` (which must
/// then hold both layouts), else `<target>/images` when it holds both.
fn layouts_dir() -> Result<Option<PathBuf>> {
    let holds_both = |dir: &Path| {
        ["puller", "pause"]
            .iter()
            .all(|n| dir.join(n).join("index.json").is_file())
    };
    if let Some(dir) = std::env::var_os("PREPULL_IMAGES_DIR") {
        let dir = PathBuf::from(dir);
        if !holds_both(&dir) {
            return Err(Error::Setup(format!(
                "PREPULL_IMAGES_DIR={} does not hold puller/ and pause/ OCI layouts; run build-images --out there",
                dir.display()
            )));
        }
        return Ok(Some(dir));
    }
    let default = target_dir().join("images");
    Ok(holds_both(&default).then_some(default))
}

fn push_layouts(registry: &Registry, dir: &Path) -> Result<OurImages> {
    let tag = layout_tag(&dir.join("pause"))?;
    let pause = copy_layout(registry, &dir.join("pause"), "e2e/prepull/pause", &tag)?;
    let tag = layout_tag(&dir.join("puller"))?;
    let puller = copy_layout(registry, &dir.join("puller"), "e2e/prepull/puller", &tag)?;

    Ok(OurImages {
        puller,
        pause,
        source: Source::Layouts(dir.to_path_buf()),
    })
}

fn push_binaries(registry: &Registry) -> Result<OurImages> {
    let puller = ImageSpec::binary(&static_binary("puller")?, "puller", &[], Some(PULLER_USER))?;
    let pause = ImageSpec::binary(&static_binary("pause")?, "pause", &[], Some(PAUSE_USER))?;
    let dir = crate::binaries::static_bin_dir();

    Ok(OurImages {
        puller: registry
            .push("e2e/prepull/puller", "e2e", &puller)?
            .reference(),
        pause: registry
            .push("e2e/prepull/pause", "e2e", &pause)?
            .reference(),
        source: Source::Binaries(dir),
    })
}

/// The tag the layout's `index.json` names its image by.
fn layout_tag(layout: &Path) -> Result<String> {
    let path = layout.join("index.json");
    let text = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    let index: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Manifest(format!("{}: {e}", path.display())))?;
    index
        .pointer("/manifests/0/annotations/org.opencontainers.image.ref.name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::Manifest(format!("{} names no tag", path.display())))
}

/// `skopeo copy --all` of a (multi-arch) layout to `registry/name:tag`.
fn copy_layout(registry: &Registry, layout: &Path, name: &str, tag: &str) -> Result<String> {
    let source_tag = layout_tag(layout)?;
    let reference = format!("{}/{name}:{tag}", registry.host());
    let mut copy = Command::new("skopeo");
    copy.args([
        "--insecure-policy",
        "copy",
        "--all",
        "--quiet",
        "--dest-tls-verify=false",
    ]);
    if let Some(c) = registry.credentials().first() {
        copy.arg(format!("--dest-creds={}:{}", c.username, c.password));
    }
    copy.arg(format!("oci:{}:{source_tag}", layout.display()))
        .arg(format!("docker://{reference}"));
    run_command(&mut copy)?;
    Ok(reference)
}
