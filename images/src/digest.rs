//! SHA-256 content digests in the form OCI descriptors carry.

use std::str::FromStr;

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use crate::ImagesError;

/// The `sha256:<hex>` digest of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> Result<Digest, ImagesError> {
    let hex = format!("{:x}", Sha256::digest(bytes));

    Digest::from_str(&format!("sha256:{hex}")).map_err(ImagesError::spec("digest"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_known_input() {
        let d = sha256(b"abc").expect("digest");

        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
