//! Auth files in the three shapes a pod can be handed: a
//! `kubernetes.io/dockerconfigjson` secret (`{"auths": {...}}`), a Docker
//! `config.json` (the same, plus `credsStore`/`credHelpers`), and a
//! `kubernetes.io/dockercfg` secret (the entries map at the top level).
//!
//! The JSON is walked by hand rather than deserialised into structs, so that
//! no serde message (which quotes unexpected values) can carry a secret.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::Credential;
use super::decode::decode_auth;
use super::error::{AuthError, EntryKey, EntryProblem, JsonProblem, LayoutProblem};
use super::key::KeyPattern;

/// Members that mark the Docker `config.json` / dockerconfigjson shape.
const CONFIG_MEMBERS: [&str; 3] = ["auths", "credsStore", "credHelpers"];

/// Something in an auth file that is ignored; the binary logs each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthWarning {
    /// `credsStore` names a helper binary, which a pod does not have.
    CredsStore { file: PathBuf, store: String },
    /// `credHelpers` names helper binaries for these registries.
    CredHelpers {
        file: PathBuf,
        registries: Vec<String>,
    },
    /// An entry with no credential in it, as Docker writes next to a
    /// `credsStore`.
    EmptyEntry { file: PathBuf, key: EntryKey },
    /// The file holds no credential at all.
    NoCredentials { file: PathBuf },
}

/// Why helper settings are dropped rather than followed.
const HELPERS_IGNORED: &str = "ignored: credential helpers cannot run in a pod";

impl fmt::Display for AuthWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CredsStore { file, store } => {
                let file = file.display();
                write!(
                    f,
                    "auth file {file}: credsStore {store:?} {HELPERS_IGNORED}"
                )
            }
            Self::CredHelpers { file, registries } => {
                let file = file.display();
                write!(
                    f,
                    "auth file {file}: credHelpers for {registries:?} {HELPERS_IGNORED}"
                )
            }
            Self::EmptyEntry { file, key } => {
                let file = file.display();
                write!(
                    f,
                    "auth file {file}: entry {key} ignored: it holds no credential"
                )
            }
            Self::NoCredentials { file } => {
                write!(f, "auth file {}: holds no credential", file.display())
            }
        }
    }
}

/// The credentials of one file, each with the key it was filed under.
#[derive(Debug, Default)]
pub(crate) struct ParsedFile {
    pub(crate) credentials: Vec<(KeyPattern, Credential)>,
    pub(crate) warnings: Vec<AuthWarning>,
}

/// Reads `bytes` as an auth file named `file` in messages.
pub(crate) fn parse(file: &Path, bytes: &[u8]) -> Result<ParsedFile, AuthError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| AuthError::Json {
        file: file.to_owned(),
        problem: JsonProblem::from_serde(&err),
    })?;
    let Value::Object(top) = value else {
        return Err(layout_error(file, LayoutProblem::TopLevelNotObject));
    };

    let mut parsed = ParsedFile::default();
    let entries = if CONFIG_MEMBERS.iter().any(|m| top.contains_key(*m)) {
        parsed.warnings = helper_warnings(file, &top);
        config_auths(file, &top)?
    } else {
        Some(&top)
    };

    for (key, value) in entries.into_iter().flatten() {
        parsed.add_entry(file, key, value)?;
    }
    if parsed.credentials.is_empty() {
        let file = file.to_owned();
        parsed.warnings.push(AuthWarning::NoCredentials { file });
    }
    Ok(parsed)
}

impl ParsedFile {
    fn add_entry(&mut self, file: &Path, key: &str, value: &Value) -> Result<(), AuthError> {
        let entry_error = |problem| AuthError::Entry {
            file: file.to_owned(),
            key: EntryKey::new(key),
            problem,
        };

        let pattern = KeyPattern::parse(key)
            .map_err(|problem| entry_error(EntryProblem::NotARegistry(problem)))?;
        match parse_entry(value).map_err(entry_error)? {
            Some(credential) => {
                let key = key.to_owned();
                self.credentials
                    .push((pattern, Credential { key, ..credential }));
            }
            None => self.warnings.push(AuthWarning::EmptyEntry {
                file: file.to_owned(),
                key: EntryKey::new(key),
            }),
        }
        Ok(())
    }
}

fn layout_error(file: &Path, problem: LayoutProblem) -> AuthError {
    AuthError::Layout {
        file: file.to_owned(),
        problem,
    }
}

/// The `auths` map of a config-shaped file, `None` when there is none.
fn config_auths<'a>(
    file: &Path,
    top: &'a Map<String, Value>,
) -> Result<Option<&'a Map<String, Value>>, AuthError> {
    match top.get("auths") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(auths)) => Ok(Some(auths)),
        Some(_) => Err(layout_error(file, LayoutProblem::AuthsNotObject)),
    }
}

/// Reports `credsStore` and `credHelpers`, which are then ignored.
fn helper_warnings(file: &Path, top: &Map<String, Value>) -> Vec<AuthWarning> {
    let mut warnings = Vec::new();

    if let Some(store) = top.get("credsStore").filter(|v| !is_blank(v)) {
        warnings.push(AuthWarning::CredsStore {
            file: file.to_owned(),
            store: store.as_str().unwrap_or("<not a string>").to_owned(),
        });
    }
    if let Some(helpers) = top.get("credHelpers").filter(|v| !is_blank(v)) {
        let registries = match helpers {
            Value::Object(map) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let file = file.to_owned();
        warnings.push(AuthWarning::CredHelpers { file, registries });
    }
    warnings
}

/// `null`, `""` and `{}`: what Docker leaves when no helper is set.
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// One entry's credential (its `key` left empty), or `None` when it holds
/// none. Field names compare without case, as Go's JSON decoder (which
/// the kubelet and Docker use) does; `email` and unknown fields are ignored.
fn parse_entry(value: &Value) -> Result<Option<Credential>, EntryProblem> {
    let Value::Object(fields) = value else {
        return Err(EntryProblem::NotAnObject);
    };

    let mut credential = Credential::default();
    let mut auth = None;
    for (name, value) in fields {
        let (field, slot) = match name.to_ascii_lowercase().as_str() {
            "auth" => ("auth", &mut auth),
            "username" => ("username", &mut credential.username),
            "password" => ("password", &mut credential.password),
            "identitytoken" => ("identitytoken", &mut credential.identity_token),
            "registrytoken" => ("registrytoken", &mut credential.registry_token),
            _ => continue,
        };
        *slot = string_field(field, value)?;
    }

    if let Some(auth) = auth {
        let (username, password) = decode_auth(&auth)?;
        credential.username = Some(username).filter(|u| !u.is_empty());
        credential.password = Some(password).filter(|p| !p.is_empty());
    }
    Ok(credential.has_secret().then_some(credential))
}

/// A string field; absent, `null` and `""` all mean unset.
fn string_field(field: &'static str, value: &Value) -> Result<Option<String>, EntryProblem> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) if text.is_empty() => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        _ => Err(EntryProblem::NotAString(field)),
    }
}
