//! What can be wrong with an auth file.
//!
//! Every message names the file and, for an entry, its key, and never any
//! part of a secret: the values of an entry are only ever described ("is
//! not valid base64"), and JSON errors from serde are reduced to their
//! position, because serde quotes the values it did not expect.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A malformed or unreadable auth file; bad input, found before any pull.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("read auth file {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("parse auth file {}: not valid JSON ({problem})", file.display())]
    Json { file: PathBuf, problem: JsonProblem },

    #[error("parse auth file {}: {problem}", file.display())]
    Layout {
        file: PathBuf,
        problem: LayoutProblem,
    },

    #[error("parse auth file {}: entry {key}: {problem}", file.display())]
    Entry {
        file: PathBuf,
        key: EntryKey,
        problem: EntryProblem,
    },
}

/// Where and how the JSON text of a file is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonProblem {
    pub end_of_input: bool,
    pub line: usize,
    pub column: usize,
}

impl JsonProblem {
    pub(crate) fn from_serde(err: &serde_json::Error) -> Self {
        Self {
            end_of_input: err.is_eof(),
            line: err.line(),
            column: err.column(),
        }
    }
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.end_of_input {
            "unexpected end of input"
        } else {
            "syntax error"
        };
        write!(f, "{what} at line {} column {}", self.line, self.column)
    }
}

/// The file is JSON but not shaped like any auth file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutProblem {
    #[error("the top level is not a JSON object")]
    TopLevelNotObject,
    #[error("`auths` is not a JSON object")]
    AuthsNotObject,
}

/// An entry's key, as quoted in messages: a key with user info
/// (`https://user:secret@host`) is shown without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryKey(String);

impl EntryKey {
    /// Everything before the last `@` is hidden, wherever it is: a password
    /// may itself hold `/`, `#` or `@`, so the authority cannot be told
    /// apart reliably, and no registry key has an `@` anyway.
    pub(crate) fn new(key: &str) -> Self {
        let (scheme, rest) = key.split_once("://").unwrap_or(("", key));

        match rest.rfind('@') {
            Some(at) if scheme.is_empty() => Self(format!("<redacted>{}", &rest[at..])),
            Some(at) => Self(format!("{scheme}://<redacted>{}", &rest[at..])),
            None => Self(key.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// What is wrong with one entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("the entry is not a JSON object")]
    NotAnObject,
    #[error("field `{0}` is not a string")]
    NotAString(&'static str),
    #[error("field `auth` is not valid base64")]
    AuthNotBase64,
    #[error("field `auth` does not decode to UTF-8 text")]
    AuthNotUtf8,
    #[error("field `auth` does not decode to `username:password` (no `:`)")]
    AuthNoColon,
    #[error("the key is not a registry: {0}")]
    NotARegistry(KeyProblem),
}

/// Why a key does not name a registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("no host")]
    NoHost,
    #[error("scheme `{0}` is not http or https")]
    Scheme(String),
    #[error("user info before the host is not allowed")]
    UserInfo,
    #[error("`{0}` is not a port")]
    Port(String),
    #[error("`{0}` is not a host name")]
    Host(String),
    #[error("a query or fragment is not allowed")]
    QueryOrFragment,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_key_hides_user_info() {
        let cases = [
            (
                "https://me:pw@quay.io/v1/",
                "https://<redacted>@quay.io/v1/",
            ),
            ("me:pw@quay.io", "<redacted>@quay.io"),
            ("https://me:p/w#@quay.io", "https://<redacted>@quay.io"),
            ("quay.io", "quay.io"),
        ];

        for (key, shown) in cases {
            assert_eq!(EntryKey::new(key).as_str(), shown);
        }
    }

    #[test]
    fn messages_name_file_key_and_problem() {
        let err = AuthError::Entry {
            file: "/etc/puller/auth/.dockerconfigjson".into(),
            key: EntryKey::new("quay.io"),
            problem: EntryProblem::AuthNoColon,
        };

        assert_eq!(
            err.to_string(),
            "parse auth file /etc/puller/auth/.dockerconfigjson: entry \"quay.io\": \
             field `auth` does not decode to `username:password` (no `:`)"
        );
    }
}
