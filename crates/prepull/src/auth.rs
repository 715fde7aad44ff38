//! Registry credentials: pull-secret files and the kubelet's keyring match.
//!
//! `puller --auth-file` hands every file to [`Keyring::from_files`]; the
//! pull engine asks [`Keyring::lookup`] which credentials to try for an
//! image, in order, and pulls anonymously when there are none.

mod decode;
mod error;
mod file;
mod key;

use std::fmt;
use std::path::Path;

use crate::reference::ImageRef;

pub use error::{AuthError, EntryKey, EntryProblem, JsonProblem, KeyProblem, LayoutProblem};
pub use file::AuthWarning;
use key::{KeyPattern, Target};

/// One credential from an auth file, ready to hand to a runtime.
///
/// `Debug` never prints the secret parts, so a credential can sit inside any
/// struct that gets logged or formatted into an error.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credential {
    /// The key it was found under (`registry.example.com`, `*.example.com`,
    /// `https://index.docker.io/v1/`); the only part that may be logged.
    pub key: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// An OAuth refresh token (`identitytoken` in the file).
    pub identity_token: Option<String>,
    /// A bearer token for the registry (`registrytoken` in the file).
    pub registry_token: Option<String>,
}

impl Credential {
    /// The registry the key names, as `host[:port]` without scheme or path
    /// (`docker.io` for the Hub's legacy keys); `None` for a wildcard key or
    /// one that is not a registry. For a runtime's `server_address`, prefer
    /// the image's own registry: a wildcard key names none.
    pub fn registry_host(&self) -> Option<String> {
        KeyPattern::parse(&self.key).ok()?.host()
    }

    /// Whether any part that authenticates is set.
    fn has_secret(&self) -> bool {
        self.username.is_some()
            || self.password.is_some()
            || self.identity_token.is_some()
            || self.registry_token.is_some()
    }

    /// Same secrets, whatever the key: trying it twice would gain nothing.
    fn same_secrets(&self, other: &Self) -> bool {
        self.username == other.username
            && self.password == other.password
            && self.identity_token == other.identity_token
            && self.registry_token == other.registry_token
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |part: &Option<String>| part.as_ref().map(|_| "<redacted>");

        f.debug_struct("Credential")
            .field("key", &self.key)
            .field("username", &redacted(&self.username))
            .field("password", &redacted(&self.password))
            .field("identity_token", &redacted(&self.identity_token))
            .field("registry_token", &redacted(&self.registry_token))
            .finish()
    }
}

/// Credentials from every auth file, kept most specific key first so that a
/// lookup is a filter.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    entries: Vec<Entry>,
    warnings: Vec<AuthWarning>,
}

#[derive(Debug, Clone)]
struct Entry {
    pattern: KeyPattern,
    credential: Credential,
}

impl Keyring {
    /// Reads every file, in order; the first bad one fails the whole set.
    pub fn from_files<I, P>(paths: I) -> Result<Self, AuthError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let mut keyring = Self::default();
        for path in paths {
            keyring.add_file(path.as_ref())?;
        }
        Ok(keyring)
    }

    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        Self::from_files([path])
    }

    /// Reads `bytes` as an auth file; `file` names it in messages.
    pub fn from_bytes(file: &Path, bytes: &[u8]) -> Result<Self, AuthError> {
        let mut keyring = Self::default();
        keyring.add_bytes(file, bytes)?;
        Ok(keyring)
    }

    /// Adds one file's credentials after those already held; a key that
    /// appears in several files is tried in the order the files came.
    pub fn add_file(&mut self, path: &Path) -> Result<(), AuthError> {
        let bytes = std::fs::read(path).map_err(|source| AuthError::Read {
            file: path.to_owned(),
            source,
        })?;
        self.add_bytes(path, &bytes)
    }

    /// Like [`Keyring::add_file`] for contents already read. On error the
    /// keyring is left as it was.
    pub fn add_bytes(&mut self, file: &Path, bytes: &[u8]) -> Result<(), AuthError> {
        let parsed = file::parse(file, bytes)?;

        let entries = parsed.credentials.into_iter();
        self.entries
            .extend(entries.map(|(pattern, credential)| Entry {
                pattern,
                credential,
            }));
        self.warnings.extend(parsed.warnings);

        self.entries
            .sort_by(|a, b| a.pattern.specificity_cmp(&b.pattern));
        Ok(())
    }

    /// The credentials that apply to `image`, most specific key first; empty
    /// when the image is to be pulled anonymously. Hub images match keys
    /// naming `docker.io` or `index.docker.io` alike. A credential whose
    /// secrets equal one already listed is left out.
    pub fn lookup(&self, image: &ImageRef) -> Vec<&Credential> {
        let Some(target) = Target::new(&image.registry, &image.repository) else {
            return Vec::new();
        };

        let mut found: Vec<&Credential> = Vec::new();
        for entry in &self.entries {
            let fresh = !found.iter().any(|c| c.same_secrets(&entry.credential));
            if fresh && entry.pattern.matches(&target) {
                found.push(&entry.credential);
            }
        }
        found
    }

    /// What the files held that is ignored (credential helpers, empty
    /// entries); for the binary to log once at start.
    pub fn warnings(&self) -> &[AuthWarning] {
        &self.warnings
    }

    /// Every key, in the order lookups try them; safe to log.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .map(|entry| entry.credential.key.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests;
