//! Pushing built layouts to a registry with `skopeo`, which copies the whole
//! index and every platform image as they are (`--preserve-digests`), so the
//! registry serves exactly the digests the build printed.

use std::process::Command;

use crate::{BuiltImage, ImagesError, process};

/// Where images go: `REGISTRY/PREFIX/NAME:TAG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    registry: String,
    prefix: String,
    tls_verify: bool,
}

impl Destination {
    /// `registry` is `HOST[:PORT]`; `prefix` is a repository path such as
    /// `prepull` or `acme/tools`, possibly empty. `tls_verify = false` allows
    /// plain HTTP and unverified certificates, as a local test registry needs.
    pub fn new(registry: &str, prefix: &str, tls_verify: bool) -> Result<Self, ImagesError> {
        check_registry(registry)?;
        check_prefix(prefix)?;

        Ok(Destination {
            registry: registry.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            tls_verify,
        })
    }

    /// The reference `image` is pushed to.
    pub fn reference(&self, image: &BuiltImage) -> String {
        let repo = if self.prefix.is_empty() {
            image.spec.name.to_owned()
        } else {
            format!("{}/{}", self.prefix, image.spec.name)
        };
        format!("{}/{repo}:{}", self.registry, image.tag)
    }
}

/// Copies `image` with all its platforms to `dest`; returns the reference.
pub fn push(image: &BuiltImage, dest: &Destination) -> Result<String, ImagesError> {
    let reference = dest.reference(image);
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--all", "--preserve-digests", "--retry-times", "2"]);
    if !dest.tls_verify {
        cmd.arg("--dest-tls-verify=false");
    }

    cmd.arg(format!("oci:{}:{}", image.layout.display(), image.tag))
        .arg(format!("docker://{reference}"));
    process::streamed(&mut cmd)?;
    Ok(reference)
}

/// A tag as the distribution spec allows it.
pub fn check_tag(tag: &str) -> Result<(), ImagesError> {
    let bad = |reason| ImagesError::InvalidArgument {
        what: "tag",
        value: tag.to_owned(),
        reason,
    };
    let mut chars = tag.chars();

    match chars.next() {
        None => Err(bad("it is empty")),
        _ if tag.len() > 128 => Err(bad("it is longer than 128 characters")),
        Some(c) if !(c.is_ascii_alphanumeric() || c == '_') => {
            Err(bad("it must start with a letter, digit or _"))
        }
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) => {
            Err(bad("only letters, digits, _, . and - are allowed"))
        }
        _ => Ok(()),
    }
}

fn check_registry(registry: &str) -> Result<(), ImagesError> {
    let bad = |reason| ImagesError::InvalidArgument {
        what: "registry",
        value: registry.to_owned(),
        reason,
    };

    if registry.contains("://") {
        return Err(bad("give it as HOST[:PORT], without a scheme"));
    }
    if registry.is_empty() || registry.contains('/') {
        return Err(bad(
            "give it as HOST[:PORT]; put the repository path in --prefix",
        ));
    }
    if !registry
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    {
        return Err(bad(
            "a host name, IP address or [IPv6] with an optional :PORT is expected",
        ));
    }
    Ok(())
}

/// A repository path: lowercase components separated by `/`, or empty.
pub fn check_prefix(prefix: &str) -> Result<(), ImagesError> {
    let trimmed = prefix.trim_matches('/');
    let component_ok = |c: &str| {
        let edge_ok =
            |ch: Option<char>| ch.is_some_and(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit());
        edge_ok(c.chars().next())
            && edge_ok(c.chars().last())
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
    };

    if trimmed.is_empty() || trimmed.split('/').all(component_ok) {
        return Ok(());
    }
    Err(ImagesError::InvalidArgument {
        what: "prefix",
        value: prefix.to_owned(),
        reason: "path components are lowercase letters and digits, with . _ - between them",
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use oci_spec::image::{Descriptor, MediaType};

    use super::*;
    use crate::IMAGES;

    fn built(tag: &str) -> BuiltImage {
        let digest = crate::digest::sha256(b"x").expect("digest");
        BuiltImage {
            spec: IMAGES[0],
            tag: tag.to_owned(),
            layout: PathBuf::from("/out/puller"),
            index: Descriptor::new(MediaType::ImageIndex, 1, digest),
            platforms: Vec::new(),
        }
    }

    #[test]
    fn reference_joins_registry_prefix_name_and_tag() {
        let local = Destination::new("127.0.0.1:5000", "prepull", false).expect("valid");
        let nested = Destination::new("ghcr.io", "/acme/tools/", true).expect("valid");
        let bare = Destination::new("[::1]:5000", "", false).expect("valid");

        assert_eq!(
            local.reference(&built("0.1.0")),
            "127.0.0.1:5000/prepull/puller:0.1.0"
        );
        assert_eq!(
            nested.reference(&built("v2")),
            "ghcr.io/acme/tools/puller:v2"
        );
        assert_eq!(bare.reference(&built("t")), "[::1]:5000/puller:t");
    }

    #[test]
    fn bad_registries_and_prefixes_are_named_in_the_error() {
        for (registry, prefix) in [
            ("http://127.0.0.1:5000", "prepull"),
            ("127.0.0.1:5000/prepull", "prepull"),
            ("", "prepull"),
            ("reg istry", "prepull"),
            ("127.0.0.1:5000", "Prepull"),
            ("127.0.0.1:5000", "a//b"),
            ("127.0.0.1:5000", "-x"),
        ] {
            let err = Destination::new(registry, prefix, true).expect_err(registry);
            let text = err.to_string();
            assert!(
                text.contains(&format!("{registry:?}")) || text.contains(&format!("{prefix:?}")),
                "{text}"
            );
        }
    }

    #[test]
    fn tags_follow_the_distribution_grammar() {
        for good in ["0.1.0", "latest", "_x", "v1.2-rc.1"] {
            check_tag(good).expect(good);
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", &"x".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad} accepted");
        }
    }
}
