//! Reading a runtime's error text.
//!
//! Neither protocol hands over the registry's HTTP status as a field: CRI
//! runtimes answer gRPC `Unknown` with the status buried in the message, and
//! Docker reports a failed pull inside a 200 stream as plain text. So the
//! classification of a pull failure is made from the words in that text. The
//! Docker backend reuses these helpers for its in-stream errors.

use std::error::Error;

use crate::auth::Credential;
use crate::reference::ImageRef;
use crate::runtime::FailureKind;

const UNAUTHORIZED_WORDS: &[&str] = &[
    "unauthorized",
    "authorization failed",
    "authentication required",
    "no basic auth credentials",
    "access denied",
    "access to the resource is denied",
    "forbidden",
];

const NOT_FOUND_WORDS: &[&str] = &[
    "not found",
    "manifest unknown",
    "name unknown",
    "unknown blob",
    "blob unknown",
    "does not exist",
];

const TRANSIENT_WORDS: &[&str] = &[
    "connection refused",
    "connection reset",
    "broken pipe",
    "timeout",
    "timed out",
    "deadline exceeded",
    "too many requests",
    "service unavailable",
    "bad gateway",
    "internal server error",
    "no such host",
    "network is unreachable",
    "unexpected eof",
];

const INVALID_WORDS: &[&str] = &[
    "invalid reference",
    "invalid argument",
    "failed to parse",
    "unsupported",
    "x509",
    "certificate",
    "http response to https client",
];

/// The failure a runtime's message describes, or `None` when it says nothing
/// recognisable.
///
/// Checked from the most to the least specific. A platform mismatch comes
/// first because containerd words it as "no match for platform in manifest:
/// not found", and pulling again cannot help. A refused login often also
/// says the repository "does not exist" (Docker Hub hides private
/// repositories that way), so authorization wins over not-found. Status codes
/// are matched as whole words, so digits inside a digest or a port number
/// such as `5000` do not count.
pub(crate) fn kind_from_text(message: &str) -> Option<FailureKind> {
    let lower = message.to_lowercase();
    let has_code = |codes: &[&str]| {
        lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| codes.contains(&word))
    };
    let has_words = |words: &[&str]| words.iter().any(|w| lower.contains(w));

    if lower.contains("no match for platform") {
        Some(FailureKind::Invalid)
    } else if has_code(&["401", "403"]) || has_words(UNAUTHORIZED_WORDS) {
        Some(FailureKind::Unauthorized)
    } else if has_code(&["404"]) || has_words(NOT_FOUND_WORDS) {
        Some(FailureKind::NotFound)
    } else if has_code(&["408", "429", "500", "502", "503", "504"]) || has_words(TRANSIENT_WORDS) {
        Some(FailureKind::Transient)
    } else if has_code(&["400"]) || has_words(INVALID_WORDS) {
        Some(FailureKind::Invalid)
    } else {
        None
    }
}

/// `head` followed by each cause in `source`'s chain, `: `-separated: the
/// transport errors of both clients keep the useful part ("connection
/// refused") in the chain, not in their own text. A cause whose text is
/// already there (wrappers that repeat their source) is not repeated.
pub(crate) fn with_causes(head: String, source: Option<&(dyn Error + 'static)>) -> String {
    let mut text = head;
    let mut cause = source;

    while let Some(error) = cause {
        let part = error.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = error.source();
    }
    text
}

/// `message` with every secret of `credential` replaced, so a runtime that
/// echoes a token back cannot leak it into the log. Secrets shorter than four
/// characters are left alone: replacing them would mangle ordinary words.
pub(crate) fn scrub(message: String, credential: Option<&Credential>) -> String {
    let Some(credential) = credential else {
        return message;
    };
    let secrets = [
        &credential.password,
        &credential.identity_token,
        &credential.registry_token,
    ];

    secrets
        .into_iter()
        .flatten()
        .filter(|secret| secret.len() >= 4)
        .fold(message, |text, secret| {
            text.replace(secret.as_str(), "<redacted>")
        })
}

/// The form a runtime is asked to pull: `name@digest` when pinned (the tag
/// is then only for display), else `name:tag`.
pub(crate) fn wire_reference(image: &ImageRef) -> String {
    match (&image.digest, &image.tag) {
        (Some(digest), _) => format!("{}@{digest}", image.name()),
        (None, Some(tag)) => format!("{}:{tag}", image.name()),
        (None, None) => format!("{}:latest", image.name()),
    }
}

/// Whether `repo_digests` records the digest `image` is pinned to, under the
/// image's own repository. Docker lists Docker Hub names in their short form
/// (`nginx@sha256:…`), CRI runtimes in full; both are accepted.
pub(crate) fn digest_recorded(repo_digests: &[String], image: &ImageRef) -> bool {
    let Some(digest) = &image.digest else {
        return true;
    };
    let full = image.name();
    let short = short_name(&full);

    repo_digests
        .iter()
        .any(|entry| match entry.split_once('@') {
            Some((name, recorded)) => recorded == digest && (name == full || name == short),
            None => false,
        })
}

/// Docker's short form of a Docker Hub name: `docker.io/library/x` is `x`,
/// `docker.io/u/x` is `u/x`; other registries keep their full name.
fn short_name(full: &str) -> &str {
    match full.strip_prefix("docker.io/") {
        Some(rest) => rest.strip_prefix("library/").unwrap_or(rest),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(registry: &str, repository: &str, digest: &str) -> ImageRef {
        ImageRef {
            registry: registry.into(),
            repository: repository.into(),
            tag: Some("1.0".into()),
            digest: Some(digest.into()),
        }
    }

    const D1: &str = "sha256:4040401111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:5000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn status_codes_count_only_as_whole_words() {
        let port_and_digest = format!("pull 127.0.0.1:5000/app@{D1}: failed to unpack layer");
        assert_eq!(kind_from_text(&port_and_digest), None);
        assert_eq!(
            kind_from_text("unexpected status code 404"),
            Some(FailureKind::NotFound)
        );
    }

    #[test]
    fn authorization_wins_over_does_not_exist() {
        let text = "pull access denied for acme/private, repository does not exist or may require 'docker login': denied: requested access to the resource is denied";
        assert_eq!(kind_from_text(text), Some(FailureKind::Unauthorized));
    }

    #[test]
    fn configuration_problems_are_invalid() {
        let text = "failed to do request: Head \"https://10.0.0.1:5000/v2/a/manifests/1\": http: server gave HTTP response to HTTPS client";
        assert_eq!(kind_from_text(text), Some(FailureKind::Invalid));
        let text = "no match for platform in manifest: not found";
        assert_eq!(kind_from_text(text), Some(FailureKind::Invalid));
    }

    #[test]
    fn scrub_removes_every_secret() {
        let credential = Credential {
            key: "r.example".into(),
            username: Some("bob".into()),
            password: Some("hunter22".into()),
            identity_token: None,
            registry_token: Some("tok-abc".into()),
        };
        let text = "bad login hunter22 with tok-abc for bob".to_string();
        assert_eq!(
            scrub(text, Some(&credential)),
            "bad login <redacted> with <redacted> for bob"
        );
    }

    #[test]
    fn wire_reference_pulls_by_digest_when_pinned() {
        let image = pinned("127.0.0.1:5000", "app", D1);
        assert_eq!(wire_reference(&image), format!("127.0.0.1:5000/app@{D1}"));
        let tagged = ImageRef {
            digest: None,
            ..image
        };
        assert_eq!(wire_reference(&tagged), "127.0.0.1:5000/app:1.0");
    }

    #[test]
    fn digest_must_be_recorded_for_the_same_repository() {
        let image = pinned("docker.io", "library/nginx", D1);
        assert!(digest_recorded(&[format!("nginx@{D1}")], &image));
        assert!(digest_recorded(
            &[format!("docker.io/library/nginx@{D1}")],
            &image
        ));
        assert!(!digest_recorded(&[format!("nginx@{D2}")], &image));
        assert!(!digest_recorded(
            &[format!("docker.io/library/redis@{D1}")],
            &image
        ));
        assert!(!digest_recorded(&[], &image));
    }
}
