//! Assembling one multi-arch image: per architecture a layer, a config and a
//! manifest; then an image index over them, in a fresh OCI layout.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    ANNOTATION_CREATED, ANNOTATION_DESCRIPTION, ANNOTATION_LICENSES, ANNOTATION_REVISION,
    ANNOTATION_SOURCE, ANNOTATION_TITLE, ANNOTATION_VERSION, ConfigBuilder, Descriptor, Digest,
    HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, Platform, PlatformBuilder, RootFsBuilder,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::compile::Binary;
use crate::layout::LayoutWriter;
use crate::source::{Package, Source};
use crate::{Arch, ImagesError, layer};

/// What differs between our two images besides the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSpec {
    /// Image name, binary crate name and the path of the binary (`/NAME`).
    pub name: &'static str,
    /// The `User` of the image config, numeric because a scratch image has
    /// no `/etc/passwd` to look names up in.
    pub user: &'static str,
    /// Size the stripped binary should stay within on each architecture,
    /// shown in the size report.
    pub binary_budget: u64,
}

/// The two images, in the order they are built and reported.
pub const IMAGES: [ImageSpec; 2] = [
    // Root, but only because the runtime sockets on the host are owned by
    // root and not group-readable; puller opens nothing else.
    ImageSpec {
        name: "puller",
        user: "0:0",
        binary_budget: 4 * 1024 * 1024,
    },
    ImageSpec {
        name: "pause",
        user: "65535:65535",
        binary_budget: 32 * 1024,
    },
];

/// The parts of an image that come from its package and commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMeta {
    pub tag: String,
    /// Seconds since 1970, the date of every file and document.
    pub epoch: u64,
    /// `epoch` in RFC 3339 form.
    pub created: String,
    /// The `org.opencontainers.image.*` labels.
    pub labels: BTreeMap<String, String>,
}

impl ImageMeta {
    /// Labels and dates for `package` built from `source`; the tag defaults to
    /// the package version.
    pub fn new(package: &Package, source: &Source, tag: Option<&str>) -> Result<Self, ImagesError> {
        let created = rfc3339(source.epoch)?;
        let labels = BTreeMap::from([
            (ANNOTATION_TITLE, package.name.clone()),
            (ANNOTATION_DESCRIPTION, package.description.clone()),
            (ANNOTATION_VERSION, package.version.clone()),
            (ANNOTATION_REVISION, source.revision.clone()),
            (ANNOTATION_SOURCE, package.repository.clone()),
            (ANNOTATION_LICENSES, package.license.clone()),
            (ANNOTATION_CREATED, created.clone()),
        ]);

        Ok(ImageMeta {
            tag: tag.unwrap_or(&package.version).to_owned(),
            epoch: source.epoch,
            created,
            labels: labels.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        })
    }
}

fn rfc3339(epoch: u64) -> Result<String, ImagesError> {
    let bad = || ImagesError::BadEpoch {
        value: epoch.to_string(),
    };
    let seconds = i64::try_from(epoch).map_err(|_| bad())?;
    let when = OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| bad())?;

    when.format(&Rfc3339).map_err(|_| bad())
}

/// One architecture's image inside a built multi-arch image.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub arch: Arch,
    /// The manifest, as listed in the image index (with its platform).
    pub manifest: Descriptor,
    pub binary_size: u64,
    /// Uncompressed layer size (the tar archive).
    pub tar_size: u64,
    /// Compressed layer size (the blob a node downloads).
    pub layer_size: u64,
}

/// A multi-arch image written as an OCI layout.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub spec: ImageSpec,
    pub tag: String,
    /// The layout directory, usable as `oci:LAYOUT:TAG`.
    pub layout: PathBuf,
    /// The image index: its digest is the image digest users pin.
    pub index: Descriptor,
    pub platforms: Vec<PlatformImage>,
}

/// Writes the layout `OUT/NAME` for `spec` from one binary per architecture.
/// The layout is written beside it first and moved into place at the end,
/// so a failed build leaves the previous layout, never half of a new one.
pub fn assemble(
    spec: &ImageSpec,
    meta: &ImageMeta,
    binaries: &[&Binary],
    out: &Path,
) -> Result<BuiltImage, ImagesError> {
    let partial = out.join(format!(".{}.partial", spec.name));
    remove_if_present(&partial)?;
    let writer = LayoutWriter::create(&partial)?;

    let platforms = binaries
        .iter()
        .map(|bin| platform_image(&writer, spec, meta, bin))
        .collect::<Result<Vec<_>, _>>()?;
    let index = image_index(&platforms, meta)?;
    let index = writer.add_json(MediaType::ImageIndex, &index, "image index")?;
    writer.finish(&index, &meta.tag)?;

    let layout = out.join(spec.name);
    remove_if_present(&layout)?;
    fs::rename(&partial, &layout).map_err(ImagesError::io("move layout into place at", &layout))?;
    Ok(BuiltImage {
        spec: *spec,
        tag: meta.tag.clone(),
        layout,
        index,
        platforms,
    })
}

fn remove_if_present(dir: &Path) -> Result<(), ImagesError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(ImagesError::io("remove old layout", dir)(e))
        }
        _ => Ok(()),
    }
}

/// Layer, config and manifest for one architecture.
fn platform_image(
    writer: &LayoutWriter,
    spec: &ImageSpec,
    meta: &ImageMeta,
    bin: &Binary,
) -> Result<PlatformImage, ImagesError> {
    let layer = layer::single_file(spec.name, &bin.bytes, meta.epoch)?;
    let layer_desc = writer.add_blob(MediaType::ImageLayerGzip, &layer.blob)?;

    let config = image_config(spec, meta, bin.arch, &layer.diff_id)?;
    let config_desc = writer.add_json(MediaType::ImageConfig, &config, "image config")?;

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_desc)
        .layers(vec![layer_desc])
        .build()
        .map_err(ImagesError::spec("image manifest"))?;
    let mut manifest_desc =
        writer.add_json(MediaType::ImageManifest, &manifest, "image manifest")?;
    manifest_desc.set_platform(Some(platform(bin.arch)?));

    Ok(PlatformImage {
        arch: bin.arch,
        manifest: manifest_desc,
        binary_size: bin.bytes.len() as u64,
        tar_size: layer.tar_size,
        layer_size: layer.blob.len() as u64,
    })
}

fn platform(arch: Arch) -> Result<Platform, ImagesError> {
    let mut builder = PlatformBuilder::default()
        .architecture(arch.oci())
        .os(Os::Linux);
    if let Some(variant) = arch.variant() {
        builder = builder.variant(variant);
    }

    builder.build().map_err(ImagesError::spec("platform"))
}

/// The image config: the binary is the entrypoint, run as `spec.user`.
fn image_config(
    spec: &ImageSpec,
    meta: &ImageMeta,
    arch: Arch,
    diff_id: &Digest,
) -> Result<ImageConfiguration, ImagesError> {
    let run = ConfigBuilder::default()
        .user(spec.user)
        .entrypoint(vec![format!("/{}", spec.name)])
        .labels(labels_map(meta))
        .build()
        .map_err(ImagesError::spec("image run config"))?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![diff_id.to_string()])
        .build()
        .map_err(ImagesError::spec("image rootfs"))?;
    let history = HistoryBuilder::default()
        .created(meta.created.clone())
        .created_by(format!(
            "prepull-images: /{} ({arch} static musl binary)",
            spec.name
        ))
        .build()
        .map_err(ImagesError::spec("image history"))?;

    let mut builder = ImageConfigurationBuilder::default()
        .created(meta.created.clone())
        .architecture(arch.oci())
        .os(Os::Linux)
        .config(run)
        .rootfs(rootfs)
        .history(vec![history]);
    if let Some(variant) = arch.variant() {
        builder = builder.variant(variant);
    }
    builder.build().map_err(ImagesError::spec("image config"))
}

/// The index over the per-architecture manifests; it repeats the labels as
/// annotations because registries show those for multi-arch images.
fn image_index(
    platforms: &[PlatformImage],
    meta: &ImageMeta,
) -> Result<oci_spec::image::ImageIndex, ImagesError> {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(
            platforms
                .iter()
                .map(|p| p.manifest.clone())
                .collect::<Vec<_>>(),
        )
        .annotations(labels_map(meta))
        .build()
        .map_err(ImagesError::spec("image index"))
}

fn labels_map(meta: &ImageMeta) -> HashMap<String, String> {
    meta.labels.clone().into_iter().collect()
}

#[cfg(test)]
mod tests;
