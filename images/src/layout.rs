//! Writing an OCI image layout directory: `oci-layout`, `blobs/sha256/…` and
//! `index.json`, the form `skopeo copy oci:DIR:TAG …` reads.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    ANNOTATION_REF_NAME, Descriptor, DescriptorBuilder, ImageIndexBuilder, MediaType,
    OciLayoutBuilder,
};
use serde::Serialize;

use crate::{ImagesError, digest, json};

/// A layout directory being filled. Blobs are content-addressed, so writing
/// the same blob twice is harmless.
#[derive(Debug)]
pub struct LayoutWriter {
    dir: PathBuf,
}

impl LayoutWriter {
    /// Creates `dir` (which must not exist yet) with its `oci-layout` marker.
    pub fn create(dir: &Path) -> Result<Self, ImagesError> {
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(ImagesError::io("create layout directory", &blobs))?;

        let marker = OciLayoutBuilder::default()
            .image_layout_version("1.0.0")
            .build()
            .map_err(ImagesError::spec("oci-layout file"))?;
        let writer = LayoutWriter {
            dir: dir.to_owned(),
        };
        writer.write_file("oci-layout", &json::canonical(&marker, "oci-layout file")?)?;
        Ok(writer)
    }

    /// Stores `bytes` as a blob and returns the descriptor that points at it.
    pub fn add_blob(&self, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor, ImagesError> {
        let digest = digest::sha256(bytes)?;
        let path = self.dir.join("blobs").join("sha256").join(digest.digest());
        fs::write(&path, bytes).map_err(ImagesError::io("write blob", &path))?;

        Ok(Descriptor::new(media_type, bytes.len() as u64, digest))
    }

    /// Stores `value` as a canonical JSON blob.
    pub fn add_json<T: Serialize>(
        &self,
        media_type: MediaType,
        value: &T,
        what: &'static str,
    ) -> Result<Descriptor, ImagesError> {
        self.add_blob(media_type, &json::canonical(value, what)?)
    }

    /// Writes `index.json`, naming `image` by `tag` so that `oci:DIR:TAG` finds it.
    pub fn finish(self, image: &Descriptor, tag: &str) -> Result<PathBuf, ImagesError> {
        let named = DescriptorBuilder::default()
            .media_type(image.media_type().clone())
            .digest(image.digest().clone())
            .size(image.size())
            .annotations(HashMap::from([(
                ANNOTATION_REF_NAME.to_owned(),
                tag.to_owned(),
            )]))
            .build()
            .map_err(ImagesError::spec("index.json entry"))?;
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![named])
            .build()
            .map_err(ImagesError::spec("index.json"))?;

        self.write_file("index.json", &json::canonical(&index, "index.json")?)?;
        Ok(self.dir)
    }

    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), ImagesError> {
        let path = self.dir.join(name);

        fs::write(&path, bytes).map_err(ImagesError::io("write", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_is_stored_under_its_digest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = dir.path().join("img");
        let writer = LayoutWriter::create(&layout).expect("create layout");

        let desc = writer
            .add_blob(MediaType::ImageLayerGzip, b"hello")
            .expect("add blob");

        let stored =
            fs::read(layout.join("blobs/sha256").join(desc.digest().digest())).expect("blob file");
        assert_eq!(stored, b"hello");
        assert_eq!(desc.size(), 5);
    }

    #[test]
    fn index_json_names_the_image_by_tag() {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = dir.path().join("img");
        let writer = LayoutWriter::create(&layout).expect("create layout");
        let desc = writer
            .add_blob(MediaType::ImageIndex, b"{}")
            .expect("add blob");

        writer.finish(&desc, "1.2.3").expect("finish");

        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index.json"))
                .expect("json");
        let entry = &index["manifests"][0];
        assert_eq!(entry["annotations"][ANNOTATION_REF_NAME], "1.2.3");
        assert_eq!(entry["digest"], desc.digest().to_string());
        assert_eq!(
            fs::read_to_string(layout.join("oci-layout")).expect("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
    }
}
