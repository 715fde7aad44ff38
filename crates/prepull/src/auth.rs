//! Registry credentials: pull-secret files and the kubelet's keyring match.

use std::fmt;

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

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("key", &self.key)
            .field("username", &self.username.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "registry_token",
                &self.registry_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}
