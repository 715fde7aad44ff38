//! Registry credentials for one run: every `--auth-file` read into one
//! keyring before any runtime is contacted, and logged by key only.
//!
//! Nothing here formats a [`prepull::auth::Credential`]'s secrets: the log
//! names files, keys and counts, which is what an operator needs to see
//! which pull secret applied to an image.

use std::path::PathBuf;

use prepull::auth::{AuthError, AuthWarning, Keyring};
use prepull::reference::ImageRef;

/// Reads every auth file, in order; a malformed one is bad input for the
/// whole run. Each thing the files hold that puller ignores (credential
/// helpers, empty entries) is logged once, even when a file is given twice.
pub fn load(files: &[PathBuf]) -> Result<Keyring, AuthError> {
    let keyring = Keyring::from_files(files)?;

    log_warnings(keyring.warnings());
    if !files.is_empty() {
        let keys: Vec<&str> = keyring.keys().collect();
        tracing::info!(
            files = files.len(),
            credentials = keyring.len(),
            keys = %keys.join(", "),
            "registry credentials loaded"
        );
    }
    Ok(keyring)
}

fn log_warnings(warnings: &[AuthWarning]) {
    let mut logged: Vec<&AuthWarning> = Vec::new();

    for warning in warnings {
        if !logged.contains(&warning) {
            tracing::warn!("{warning}");
            logged.push(warning);
        }
    }
}

/// The keys whose credentials `image` will be pulled with, in the order
/// they are tried; empty for an anonymous pull.
pub fn matched_keys<'k>(keyring: &'k Keyring, image: &ImageRef) -> Vec<&'k str> {
    let credentials = keyring.lookup(image);
    credentials.iter().map(|c| c.key.as_str()).collect()
}

/// Logs, per image, which keys apply. Silent without auth files, so runs
/// that use none log exactly as before.
pub fn log_matches(keyring: &Keyring, images: &[ImageRef]) {
    if keyring.is_empty() {
        return;
    }

    for image in images {
        let keys = matched_keys(keyring, image);
        if keys.is_empty() {
            tracing::info!(image = %image, "no registry credential matches: pulling anonymously");
        } else {
            tracing::info!(
                image = %image,
                credentials = %keys.join(", "),
                "registry credentials matched"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn image(text: &str) -> ImageRef {
        prepull::reference::parse(text).expect("valid reference")
    }

    #[test]
    fn matched_keys_are_most_specific_first() {
        let json = br#"{"auths": {
            "registry.example.com": {"auth": "dXNlcjpob3N0LXdpZGU="},
            "*.example.com": {"username": "u", "password": "wildcard"},
            "registry.example.com/team": {"username": "u", "password": "team-only"}
        }}"#;
        let keyring = Keyring::from_bytes(Path::new("a.json"), json).expect("valid file");

        assert_eq!(
            matched_keys(&keyring, &image("registry.example.com/team/app:1")),
            [
                "registry.example.com/team",
                "registry.example.com",
                "*.example.com"
            ]
        );
        assert_eq!(
            matched_keys(&keyring, &image("other.example.com/app")),
            ["*.example.com"]
        );
        assert!(matched_keys(&keyring, &image("nginx")).is_empty());
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let err = load(&[PathBuf::from("/nonexistent/.dockerconfigjson")]).expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("read auth file /nonexistent/.dockerconfigjson: "),
            "{err}"
        );
    }
}
