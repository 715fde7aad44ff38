//! Image references: checked against the OCI distribution grammar and
//! normalised the way Docker and the kubelet read them.
//!
//! The grammar itself (hosts, IPv6 literals, ports, path components, tags,
//! digests, length limits) is `container_image_dist_ref`'s, a dependency-free
//! port of `distribution/reference` that is tested against the Go original.
//! On top of it this module adds what the grammar leaves to its callers:
//! Docker's rule for telling a registry from the first path component, the
//! `docker.io` defaults, and which digest algorithms a node can verify.

use std::fmt;
use std::str::FromStr;

use container_image_dist_ref::ImgRef;
use container_image_dist_ref::err::Kind;

/// The registry an image lives on when its reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// Docker Hub's old name; the kubelet and Docker treat it as `docker.io`.
const LEGACY_REGISTRY: &str = "index.docker.io";

/// Where one-part Docker Hub names live (`nginx` is `library/nginx`).
const OFFICIAL_NAMESPACE: &str = "library";

/// The tag a reference with neither tag nor digest means.
pub const DEFAULT_TAG: &str = "latest";

/// The only digest algorithm accepted. containerd and Docker both verify
/// sha256; other registered algorithms are not accepted by every runtime a
/// node may run, so they are refused up front rather than failing later.
const SUPPORTED_DIGEST: &str = "sha256";

/// Hex characters in a sha256 digest.
const SHA256_HEX_LEN: usize = 64;

/// A checked, normalised image reference.
///
/// `registry` is the domain (`docker.io`, `localhost:5000`, `[::1]:5000`),
/// `repository` the path below it (`library/nginx`). A reference with neither
/// tag nor digest gets the tag `latest`; a reference with a digest keeps its
/// tag only for display, since the digest is what gets pulled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Why a reference was refused. Each message quotes the reference as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("empty image reference")]
    Empty,

    #[error("invalid image reference {input:?}: {reason}")]
    InvalidFormat { input: String, reason: &'static str },

    #[error("invalid image reference {input:?}: repository name must be lowercase")]
    UppercaseName { input: String },

    #[error(
        "invalid image reference {input:?}: a sha256 digest has {SHA256_HEX_LEN} \
         lowercase hex characters, this one has {found}"
    )]
    DigestLength { input: String, found: usize },

    #[error(
        "invalid image reference {input:?}: unsupported digest algorithm {algorithm:?} \
         (only {SUPPORTED_DIGEST} is supported)"
    )]
    UnsupportedDigest { input: String, algorithm: String },

    #[error(
        "invalid image reference {input:?}: 64 hex characters name an image id, \
         not a repository"
    )]
    ImageId { input: String },
}

/// Checks `input` against the reference grammar and normalises it.
///
/// The input must already be trimmed: surrounding spaces are an error here,
/// since the grammar has no place for them.
pub fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
    if input.is_empty() {
        return Err(ReferenceError::Empty);
    }

    let parsed = ImgRef::new(input).map_err(|err| grammar_error(input, err.kind()))?;
    let name = parsed.name();
    let name = name.to_str();
    if name.len() == SHA256_HEX_LEN && is_lower_hex(name) {
        return Err(ReferenceError::ImageId {
            input: input.to_owned(),
        });
    }
    let (registry, repository) = split_registry(name);

    let digest = parsed.digest().map(|d| d.to_str().to_owned());
    if let Some(digest) = &digest {
        check_digest(input, digest)?;
    }

    let tag = match (parsed.tag(), &digest) {
        (Some(tag), _) => Some(tag.to_owned()),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAG.to_owned()),
    };
    Ok(ImageRef {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Docker's rule: the part before the first `/` is a registry only when it
/// looks like a host (has a `.` or `:`, is `localhost`, or has uppercase
/// letters, which a repository never has); otherwise the whole name is a
/// Docker Hub repository.
fn split_registry(name: &str) -> (String, String) {
    let (registry, path) = match name.split_once('/') {
        Some((first, rest)) if looks_like_host(first) => (first, rest),
        _ => (DEFAULT_REGISTRY, name),
    };

    let registry = if registry == LEGACY_REGISTRY {
        DEFAULT_REGISTRY
    } else {
        registry
    };
    let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
        format!("{OFFICIAL_NAMESPACE}/{path}")
    } else {
        path.to_owned()
    };
    (registry.to_owned(), repository)
}

fn looks_like_host(component: &str) -> bool {
    component.contains(['.', ':'])
        || component == "localhost"
        || component.bytes().any(|b| b.is_ascii_uppercase())
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The grammar accepts any algorithm with at least 32 hex characters; a node
/// can only verify the ones its runtime implements.
fn check_digest(input: &str, digest: &str) -> Result<(), ReferenceError> {
    let (algorithm, encoded) = digest.split_once(':').unwrap_or((digest, ""));
    if algorithm != SUPPORTED_DIGEST {
        return Err(ReferenceError::UnsupportedDigest {
            input: input.to_owned(),
            algorithm: algorithm.to_owned(),
        });
    }

    if encoded.len() != SHA256_HEX_LEN || !is_lower_hex(encoded) {
        return Err(ReferenceError::DigestLength {
            input: input.to_owned(),
            found: encoded.len(),
        });
    }
    Ok(())
}

/// Turns the grammar's error into ours. Like `distribution/reference`, a
/// reference that would be valid with its name in lowercase is reported as an
/// uppercase name, the most common way to get a repository wrong.
fn grammar_error(input: &str, kind: Kind) -> ReferenceError {
    if is_uppercase_name(input) {
        return ReferenceError::UppercaseName {
            input: input.to_owned(),
        };
    }

    match kind {
        Kind::OciRegisteredAlgorithmWrongDigestLength => ReferenceError::DigestLength {
            input: input.to_owned(),
            found: input.rsplit_once(':').map_or(0, |(_, hex)| hex.len()),
        },
        _ => ReferenceError::InvalidFormat {
            input: input.to_owned(),
            reason: describe(kind),
        },
    }
}

fn is_uppercase_name(input: &str) -> bool {
    let (name, digest) = match input.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (input, None),
    };
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return false;
    }

    let lowered = match digest {
        Some(digest) => format!("{}@{digest}", name.to_ascii_lowercase()),
        None => name.to_ascii_lowercase(),
    };
    ImgRef::new(&lowered).is_ok()
}

/// One phrase per family of grammar errors. The grammar crate's error
/// offsets are not reliable enough to point at a character, so the phrase
/// names the part of the reference instead.
fn describe(kind: Kind) -> &'static str {
    use Kind::*;
    match kind {
        RefMissing | HostOrPathMissing | PathMissing => {
            "missing repository name or empty path component"
        }
        HostOrPathTooLong | NameTooLong | PathTooLong | HostTooLong => {
            "name is longer than 255 characters"
        }
        HostOrPathInvalidChar | PathInvalidChar => {
            "repository name may only contain lowercase letters, digits, and the \
             separators '.', '_', '__', '-' and '/'"
        }
        HostOrPathInvalidComponentEnd | PathComponentInvalidEnd => {
            "a name component must start and end with a letter or digit"
        }
        HostMissing | HostComponentInvalidEnd | HostInvalidChar => "invalid registry host",
        Ipv6InvalidChar
        | Ipv6TooLong
        | Ipv6BadColon
        | Ipv6TooManyHexDigits
        | Ipv6TooManyGroups
        | Ipv6TooFewGroups
        | Ipv6MissingClosingBracket => "invalid IPv6 registry address (zones are not allowed)",
        Port | PortInvalidChar | PortTooLong | PortMissing => "registry port must be a number",
        PortOrTagMissing | PortOrTagInvalidChar => "invalid tag or registry port",
        TagTooLong | TagInvalidChar | TagMissing => {
            "a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        }
        _ => "invalid digest: expected algorithm:hex after '@'",
    }
}

impl ImageRef {
    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse(input)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(input: &str) -> ImageRef {
        parse(input).unwrap_or_else(|err| panic!("{input}: {err}"))
    }

    #[test]
    fn one_part_name_is_an_official_docker_hub_image_at_latest() {
        assert_eq!(
            parsed("nginx").to_string(),
            "docker.io/library/nginx:latest"
        );
    }

    #[test]
    fn legacy_docker_hub_host_is_docker_io() {
        assert_eq!(
            parsed("index.docker.io/nginx:1").to_string(),
            "docker.io/library/nginx:1"
        );
    }

    #[test]
    fn tag_and_digest_are_both_kept() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let image = parsed(&format!("localhost:5000/a/b:v1@{digest}"));
        assert_eq!(image.registry, "localhost:5000");
        assert_eq!(image.repository, "a/b");
        assert_eq!(image.tag.as_deref(), Some("v1"));
        assert_eq!(image.digest.as_deref(), Some(digest.as_str()));
    }

    #[test]
    fn digest_without_tag_gets_no_default_tag() {
        let image = parsed(&format!("busybox@sha256:{}", "0".repeat(64)));
        assert_eq!(image.tag, None);
    }

    #[test]
    fn sixty_four_hex_characters_are_an_image_id() {
        let err = parse(&"ab".repeat(32)).expect_err("an image id");
        assert!(matches!(err, ReferenceError::ImageId { .. }), "{err}");
    }

    #[test]
    fn uppercase_digest_hex_is_not_reported_as_uppercase_name() {
        let err = parse(&format!("x@sha256:{}", "F".repeat(64))).expect_err("uppercase hex");
        assert!(
            !matches!(err, ReferenceError::UppercaseName { .. }),
            "{err}"
        );
    }

    #[test]
    fn surrounding_spaces_are_rejected() {
        assert!(parse(" nginx").is_err());
        assert_eq!(parse(""), Err(ReferenceError::Empty));
    }

    #[test]
    fn error_message_quotes_the_input_and_names_the_problem() {
        let err = parse("docker/Docker").expect_err("uppercase");
        assert_eq!(
            err.to_string(),
            "invalid image reference \"docker/Docker\": repository name must be lowercase"
        );
    }
}
