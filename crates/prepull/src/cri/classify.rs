//! The one place a CRI failure becomes a [`FailureKind`].

use std::error::Error;

use tonic::{Code, Status};

use super::text::{kind_from_text, with_causes};
use crate::runtime::FailureKind;

/// Classifies a CRI call's failure.
///
/// The gRPC code decides when it is specific. containerd and CRI-O answer a
/// failed pull with `Unknown` (or `Internal`) and put the registry's answer
/// in the message, so for those the text decides; a message that names no
/// known cause is treated as transient, so an unexplained failure gets the
/// bounded retries rather than none.
pub(crate) fn classify(status: &Status) -> FailureKind {
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => FailureKind::Unauthorized,
        Code::NotFound => FailureKind::NotFound,
        Code::InvalidArgument | Code::OutOfRange | Code::Unimplemented => FailureKind::Invalid,
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted => {
            FailureKind::Transient
        }
        _ => kind_from_text(&describe(status)).unwrap_or(FailureKind::Transient),
    }
}

/// The status message followed by its transport cause, if any (tonic puts
/// "connection refused" in the source chain, not the message).
pub(crate) fn describe(status: &Status) -> String {
    with_causes(status.message().to_string(), status.source())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages as containerd 1.6.20 answered `PullImage` against a local
    /// registry, with the code it used.
    const CONTAINERD: &[(Code, &str, FailureKind)] = &[
        (
            Code::NotFound,
            r#"failed to pull and unpack image "127.0.0.1:5731/small:nope": failed to resolve reference "127.0.0.1:5731/small:nope": 127.0.0.1:5731/small:nope: not found"#,
            FailureKind::NotFound,
        ),
        (
            Code::Unknown,
            r#"failed to pull and unpack image "127.0.0.1:5732/private:v1": failed to resolve reference "127.0.0.1:5732/private:v1": pulling from host 127.0.0.1:5732 failed with status code [manifests v1]: 401 Unauthorized"#,
            FailureKind::Unauthorized,
        ),
        (
            Code::Unknown,
            r#"failed to pull and unpack image "127.0.0.1:5739/x:1": failed to resolve reference "127.0.0.1:5739/x:1": failed to do request: Head "http://127.0.0.1:5739/v2/x/manifests/1": dial tcp 127.0.0.1:5739: connect: connection refused"#,
            FailureKind::Transient,
        ),
        (
            Code::Unknown,
            r#"failed to pull and unpack image "127.0.0.1:5731/UPPER:v1": failed to parse image reference "127.0.0.1:5731/UPPER:v1": invalid reference format: repository name must be lowercase"#,
            FailureKind::Invalid,
        ),
    ];

    #[test]
    fn containerd_answers_are_classified() {
        for (code, message, expected) in CONTAINERD {
            let status = Status::new(*code, *message);
            assert_eq!(classify(&status), *expected, "{message}");
        }
    }

    #[test]
    fn unknown_code_is_read_from_the_text() {
        let cases = [
            (
                "failed to copy: httpReadSeeker: failed open: could not fetch content descriptor sha256:07c0cc89 (application/vnd.oci.image.layer.v1.tar+gzip) from remote: not found",
                FailureKind::NotFound,
            ),
            (
                "pulling from host r.example failed with status code [manifests 1]: 403 Forbidden",
                FailureKind::Unauthorized,
            ),
            (
                "failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized",
                FailureKind::Unauthorized,
            ),
            (
                "unexpected status from GET request to https://r.example/v2/a/blobs/sha256:aa: 503 Service Unavailable",
                FailureKind::Transient,
            ),
            (
                "failed to do request: Head \"https://r.example/v2/a/manifests/1\": dial tcp 10.0.0.9:443: i/o timeout",
                FailureKind::Transient,
            ),
            (
                "read tcp 10.0.0.2:51000->10.0.0.9:443: read: connection reset by peer",
                FailureKind::Transient,
            ),
        ];
        for (message, expected) in cases {
            let status = Status::new(Code::Unknown, message);
            assert_eq!(classify(&status), expected, "{message}");
        }
    }

    #[test]
    fn specific_codes_decide_over_the_text() {
        let status = Status::new(Code::Unavailable, "registry said 404");
        assert_eq!(classify(&status), FailureKind::Transient);
        let status = Status::new(Code::InvalidArgument, "image reference not found");
        assert_eq!(classify(&status), FailureKind::Invalid);
        let status = Status::new(Code::DeadlineExceeded, "");
        assert_eq!(classify(&status), FailureKind::Transient);
    }

    #[test]
    fn an_unexplained_failure_is_transient() {
        let status = Status::new(Code::Unknown, "something odd happened");
        assert_eq!(classify(&status), FailureKind::Transient);
    }
}
