//! The one filesystem layer of a scratch image: a tar archive holding the
//! binary, gzip-compressed, with nothing in it that depends on when or where
//! it was built.

use std::io::Write;

use flate2::{Compression, GzBuilder};
use oci_spec::image::Digest;

use crate::{ImagesError, digest};

/// Mode of the binary inside the image: executable by any user, because the
/// pause image runs as 65535 and the file belongs to root.
const BINARY_MODE: u32 = 0o755;

/// A built layer: the blob as stored in a registry, and its uncompressed identity.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The gzip-compressed tar archive (the layer blob).
    pub blob: Vec<u8>,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// Size of the uncompressed tar archive in bytes.
    pub tar_size: u64,
}

/// A layer holding one file, `name` at the image root, owned by 0:0, mode 0755,
/// dated `mtime` (seconds since 1970).
pub fn single_file(name: &str, contents: &[u8], mtime: u64) -> Result<Layer, ImagesError> {
    let tar = tar_one_file(name, contents, mtime)
        .map_err(ImagesError::io("write layer tar for", name))?;
    let blob = gzip(&tar).map_err(ImagesError::io("gzip layer for", name))?;

    Ok(Layer {
        diff_id: digest::sha256(&tar)?,
        tar_size: tar.len() as u64,
        blob,
    })
}

/// A ustar archive with a single regular file. Every header field is set
/// explicitly; user and group names stay empty so only the numeric ids count.
fn tar_one_file(name: &str, contents: &[u8], mtime: u64) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name)?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(contents.len() as u64);
    header.set_mode(BINARY_MODE);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_cksum();

    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, contents)?;
    builder.into_inner()
}

/// Gzip at the best level with no file name and a zero modification time in
/// the gzip header, so equal input gives equal bytes.
fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::best());

    encoder.write_all(data)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn unpack(blob: &[u8]) -> Vec<u8> {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(blob)
            .read_to_end(&mut tar)
            .expect("layer blob is gzip");
        tar
    }

    #[test]
    fn layer_holds_exactly_the_binary_with_fixed_metadata() {
        let layer = single_file("pause", b"\x7fELF pretend", 1_700_000_000).expect("layer");
        let tar = unpack(&layer.blob);
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive.entries().expect("tar entries");

        let mut entry = entries.next().expect("one entry").expect("entry reads");
        let header = entry.header().clone();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).expect("entry body");

        assert_eq!(entry.path().expect("path").to_str(), Some("pause"));
        assert_eq!(body, b"\x7fELF pretend");
        assert_eq!(header.mode().expect("mode"), 0o755);
        assert_eq!(
            (header.uid().expect("uid"), header.gid().expect("gid")),
            (0, 0)
        );
        assert_eq!(header.mtime().expect("mtime"), 1_700_000_000);
        assert_eq!(header.entry_type(), tar::EntryType::Regular);
        assert!(
            entries.next().is_none(),
            "the layer has more than one entry"
        );
    }

    #[test]
    fn sizes_and_diff_id_describe_the_uncompressed_tar() {
        let layer = single_file("puller", &[7u8; 5000], 0).expect("layer");
        let tar = unpack(&layer.blob);

        assert_eq!(layer.tar_size, tar.len() as u64);
        assert_eq!(layer.diff_id, digest::sha256(&tar).expect("digest"));
        assert!(
            layer.blob.len() < tar.len(),
            "gzip did not compress repeated bytes"
        );
    }

    #[test]
    fn gzip_header_has_no_time_and_no_name() {
        let layer = single_file("puller", b"x", 0).expect("layer");

        assert_eq!(&layer.blob[..3], &[0x1f, 0x8b, 8], "gzip magic and deflate");
        assert_eq!(layer.blob[3] & 0x08, 0, "FNAME flag set");
        assert_eq!(&layer.blob[4..8], &[0, 0, 0, 0], "MTIME not zero");
    }

    #[test]
    fn same_input_same_bytes_and_the_date_is_part_of_the_identity() {
        let first = single_file("puller", b"binary", 86_400).expect("layer");
        let again = single_file("puller", b"binary", 86_400).expect("layer");
        let later = single_file("puller", b"binary", 86_401).expect("layer");

        assert_eq!(first.blob, again.blob);
        assert_ne!(first.diff_id, later.diff_id);
    }
}
