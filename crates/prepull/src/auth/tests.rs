//! Keyring tests: the shared case tables, file shapes, ordering, errors and
//! redaction.

use std::error::Error as _;
use std::path::{Path, PathBuf};

use super::*;

/// The password of `tests/data/auth/dockerconfigjson.json`, which must never
/// show up in any output.
const KNOWN_PASSWORD: &str = "Qx7#vLp2:zR9!";
const KNOWN_TOKEN: &str = "tok-Wm4Kd81vXe";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn image(registry: &str, repository: &str) -> ImageRef {
    ImageRef {
        registry: registry.to_owned(),
        repository: repository.to_owned(),
        tag: Some("latest".to_owned()),
        digest: None,
    }
}

/// Reads an image column of `keyring.tsv` as the kubelet's matcher reads
/// its raw input: the text before the first `/` is the registry when it
/// looks like a host (a `.` or `:` in it, or `localhost`), and otherwise the
/// image is on Docker Hub. Unlike the reference normaliser, a lone
/// component with a dot (`prefix.kubernetes.io`) stays a host, as in the
/// table; no real pull hands such a name to the keyring.
fn table_image(text: &str) -> ImageRef {
    let (first, rest) = text.split_once('/').unwrap_or((text, ""));
    let is_host = first.contains(['.', ':']) || first == "localhost";

    if is_host || text.is_empty() {
        image(first, rest)
    } else if rest.is_empty() {
        image("docker.io", &format!("library/{first}"))
    } else {
        image("docker.io", text)
    }
}

/// A one-entry dockerconfigjson file for `key`.
fn single_key_file(key: &str, entry: &str) -> Vec<u8> {
    let key = serde_json::to_string(key).expect("a string serialises");
    format!(r#"{{"auths": {{{key}: {entry}}}}}"#).into_bytes()
}

fn keyring(files: &[&str]) -> Keyring {
    let mut keyring = Keyring::default();
    for (n, contents) in files.iter().enumerate() {
        let name = PathBuf::from(format!("file-{n}.json"));
        keyring
            .add_bytes(&name, contents.as_bytes())
            .expect("test file parses");
    }
    keyring
}

fn usernames(found: &[&Credential]) -> Vec<String> {
    let name = |c: &&Credential| c.username.clone().unwrap_or_default();
    found.iter().map(name).collect()
}

/// Non-comment rows of a tab-separated case table, header dropped.
fn table_rows(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .skip(1)
        .map(|line| line.split('\t').collect())
        .collect()
}

#[test]
fn auth_keyring_table_rows_match_as_the_kubelet_decides() {
    let rows = table_rows(include_str!("../../tests/data/keyring.tsv"));
    assert!(rows.len() >= 20, "keyring.tsv has {} rows", rows.len());

    for row in rows {
        let [key, raw_image, expected] = row[..] else {
            panic!("keyring.tsv row {row:?} has not 3 columns");
        };
        let file = single_key_file(key, r#"{"username": "u", "password": "p"}"#);
        let keyring = Keyring::from_bytes(Path::new("keyring.tsv"), &file)
            .unwrap_or_else(|err| panic!("key {key:?}: {err}"));

        let matched = !keyring.lookup(&table_image(raw_image)).is_empty();
        assert_eq!(
            matched,
            expected == "yes",
            "key {key:?} image {raw_image:?}"
        );
    }
}

#[test]
fn auth_field_table_decodes_as_the_kubelet_does() {
    let rows = table_rows(include_str!("../../tests/data/dockerconfig-auth.tsv"));
    assert!(
        rows.len() >= 5,
        "dockerconfig-auth.tsv has {} rows",
        rows.len()
    );

    for row in rows {
        let [auth, entry, user, password, fails] = row[..] else {
            panic!("dockerconfig-auth.tsv row {row:?} has not 5 columns");
        };
        let entry = if auth.is_empty() {
            entry.to_owned()
        } else {
            format!(r#"{{"auth": {auth}}}"#)
        };
        let file = single_key_file("registry.example.com", &entry);
        let result = Keyring::from_bytes(Path::new("auth.json"), &file);

        match fails {
            "yes" => assert_decode_refused(result, &entry),
            _ => assert_decoded(result, user, password, &entry),
        }
    }
}

fn assert_decode_refused(result: Result<Keyring, AuthError>, entry: &str) {
    match result {
        Err(AuthError::Entry { key, problem, .. }) => {
            assert_eq!(key.as_str(), "registry.example.com", "entry {entry}");
            assert!(
                matches!(
                    problem,
                    EntryProblem::AuthNotBase64
                        | EntryProblem::AuthNotUtf8
                        | EntryProblem::AuthNoColon
                ),
                "entry {entry}: {problem}"
            );
        }
        other => panic!("entry {entry}: expected an auth error, got {other:?}"),
    }
}

fn assert_decoded(result: Result<Keyring, AuthError>, user: &str, password: &str, entry: &str) {
    let user: String = serde_json::from_str(user).expect("username column is JSON");
    let password: String = serde_json::from_str(password).expect("password column is JSON");
    let keyring = result.unwrap_or_else(|err| panic!("entry {entry}: {err}"));

    let found = keyring.lookup(&image("registry.example.com", "app"));
    assert_eq!(found.len(), 1, "entry {entry}");
    assert_eq!(
        found[0].username.as_deref(),
        Some(user.as_str()),
        "entry {entry}"
    );
    assert_eq!(
        found[0].password.as_deref(),
        Some(password.as_str()),
        "entry {entry}"
    );
}

#[test]
fn auth_dockerconfigjson_secret_reads_every_entry_kind() {
    let keyring = Keyring::from_file(&data("auth/dockerconfigjson.json")).expect("parses");
    assert_eq!(keyring.len(), 3);
    assert!(keyring.warnings().is_empty(), "{:?}", keyring.warnings());

    let private = keyring.lookup(&image("registry.example.com:5000", "app"));
    assert_eq!(usernames(&private), ["deploy-bot"]);
    assert_eq!(private[0].password.as_deref(), Some(KNOWN_PASSWORD));

    let hub = keyring.lookup(&image("docker.io", "library/nginx"));
    assert_eq!(hub[0].key, "https://index.docker.io/v1/");
    assert_eq!(hub[0].password.as_deref(), Some(KNOWN_PASSWORD));

    let corp = keyring.lookup(&image("eu.corp.example.com", "team/app"));
    assert_eq!(corp.len(), 1);
    assert_eq!(corp[0].identity_token.as_deref(), Some(KNOWN_TOKEN));
    assert_eq!(corp[0].username, None);
}

#[test]
fn auth_dockercfg_secret_is_the_top_level_map() {
    let keyring = Keyring::from_file(&data("auth/dockercfg.json")).expect("parses");

    let quay = keyring.lookup(&image("quay.io", "team/app"));
    assert_eq!(usernames(&quay), ["team"]);
    assert_eq!(quay[0].password.as_deref(), Some("team-pass"));

    let ghcr = keyring.lookup(&image("ghcr.io", "org/tool"));
    assert_eq!(usernames(&ghcr), ["ghcr-user"]);
    assert!(
        keyring
            .lookup(&image("docker.io", "library/nginx"))
            .is_empty()
    );
}

#[test]
fn auth_docker_config_reports_helpers_and_empty_entries_once() {
    let path = data("auth/docker-config.json");
    let keyring = Keyring::from_file(&path).expect("parses");

    assert_eq!(keyring.keys().collect::<Vec<_>>(), ["registry.example.com"]);
    assert_eq!(
        keyring.warnings(),
        [
            AuthWarning::CredsStore {
                file: path.clone(),
                store: "desktop".into(),
            },
            AuthWarning::CredHelpers {
                file: path.clone(),
                registries: vec![
                    "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
                    "gcr.io".into(),
                ],
            },
            AuthWarning::EmptyEntry {
                file: path.clone(),
                key: EntryKey::new("https://index.docker.io/v1/"),
            },
        ]
    );
    assert!(
        keyring
            .lookup(&image("docker.io", "library/nginx"))
            .is_empty()
    );
}

#[test]
fn auth_warning_messages_name_file_and_what_is_ignored() {
    let keyring = keyring(&[r#"{"credsStore": "osxkeychain"}"#]);
    let messages: Vec<String> = keyring.warnings().iter().map(ToString::to_string).collect();

    assert_eq!(
        messages,
        [
            "auth file file-0.json: credsStore \"osxkeychain\" ignored: \
             credential helpers cannot run in a pod",
            "auth file file-0.json: holds no credential",
        ]
    );
}

#[test]
fn auth_lookup_orders_more_specific_keys_first() {
    let keyring = keyring(&[r#"{
        "*.io": {"username": "any-io"},
        "quay.io": {"username": "host"},
        "quay.io/team/app": {"username": "team-app"},
        "https://quay.io/v1/team/": {"username": "team"},
        "q*.io/team": {"username": "q-glob-team"},
        "quay.io:443": {"username": "port"}
    }"#]);

    let found = keyring.lookup(&image("quay.io", "team/app/web"));
    assert_eq!(
        usernames(&found),
        ["team-app", "team", "host", "q-glob-team", "any-io"]
    );

    let found = keyring.lookup(&image("quay.io", "teamster/app"));
    assert_eq!(usernames(&found), ["host", "any-io"]);
    let found = keyring.lookup(&image("quay.io:443", "team/app"));
    assert_eq!(usernames(&found), ["port"]);
}

#[test]
fn auth_same_key_in_several_files_is_tried_in_file_order() {
    let keyring = keyring(&[
        r#"{"auths": {"quay.io": {"username": "first"}}}"#,
        r#"{"auths": {"https://quay.io/v1/": {"username": "second"}}}"#,
        r#"{"auths": {"quay.io/team": {"username": "third"}}}"#,
    ]);

    let found = keyring.lookup(&image("quay.io", "team/app"));
    assert_eq!(usernames(&found), ["third", "first", "second"]);
}

#[test]
fn auth_hub_images_match_docker_io_and_legacy_keys_alike() {
    let keyring = keyring(&[
        r#"{"auths": {"docker.io": {"username": "short"}}}"#,
        r#"{"auths": {"https://index.docker.io/v1/": {"username": "legacy"}}}"#,
        r#"{"auths": {"index.docker.io/library": {"username": "official"}}}"#,
        r#"{"auths": {"*.docker.io": {"username": "glob"}}}"#,
    ]);

    let official = keyring.lookup(&image("docker.io", "library/nginx"));
    assert_eq!(usernames(&official), ["official", "short", "legacy"]);
    let user = keyring.lookup(&image("docker.io", "someone/tool"));
    assert_eq!(usernames(&user), ["short", "legacy"]);
    let legacy_form = keyring.lookup(&image("index.docker.io", "someone/tool"));
    assert_eq!(usernames(&legacy_form), ["short", "legacy"]);
    assert!(
        keyring
            .lookup(&image("ghcr.io", "library/nginx"))
            .is_empty()
    );
}

#[test]
fn auth_identical_secrets_under_two_keys_are_tried_once() {
    let keyring = keyring(&[
        r#"{"auths": {"quay.io": {"username": "u", "password": "p"}}}"#,
        r#"{"auths": {"quay.io/team": {"auth": "dTpw"}}}"#,
    ]);

    let found = keyring.lookup(&image("quay.io", "team/app"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, "quay.io/team");
}

#[test]
fn auth_no_match_means_anonymous() {
    let keyring = Keyring::from_file(&data("auth/dockerconfigjson.json")).expect("parses");

    assert!(
        keyring
            .lookup(&image("registry.example.com", "app"))
            .is_empty()
    );
    assert!(
        keyring
            .lookup(&image("corp.example.com", "team/app"))
            .is_empty()
    );
    assert!(
        keyring
            .lookup(&image("eu.corp.example.com", "other"))
            .is_empty()
    );
    assert!(
        Keyring::default()
            .lookup(&image("docker.io", "library/a"))
            .is_empty()
    );
}

#[test]
fn auth_registry_host_names_the_key_registry() {
    let credential = |key: &str| Credential {
        key: key.to_owned(),
        ..Credential::default()
    };

    assert_eq!(
        credential("https://index.docker.io/v1/")
            .registry_host()
            .as_deref(),
        Some("docker.io")
    );
    assert_eq!(
        credential("http://Reg.example.com:5000/team")
            .registry_host()
            .as_deref(),
        Some("reg.example.com:5000")
    );
    assert_eq!(credential("*.example.com").registry_host(), None);
    assert_eq!(credential("ftp://example.com").registry_host(), None);
}

/// Bad files, each with what the error must say.
fn bad_files() -> Vec<(&'static str, String, &'static str)> {
    let pw = KNOWN_PASSWORD;
    vec![
        (
            "json-in-value",
            format!(r#"{{"auths": {{"a.io": {{"password": "{pw}" }}"#),
            "not valid JSON",
        ),
        (
            "json-bare",
            format!(r#"{{"auths": {{"a.io": {{"password": {pw}}}}}}}"#),
            "syntax error at line 1",
        ),
        (
            "top-array",
            format!(r#"["{pw}"]"#),
            "the top level is not a JSON object",
        ),
        (
            "auths-string",
            format!(r#"{{"auths": "{pw}"}}"#),
            "`auths` is not a JSON object",
        ),
        (
            "entry-string",
            format!(r#"{{"auths": {{"a.io": "{pw}"}}}}"#),
            "entry \"a.io\": the entry is not a JSON object",
        ),
        (
            "password-number",
            r#"{"a.io": {"password": 8675309}}"#.into(),
            "entry \"a.io\": field `password` is not a string",
        ),
        (
            "token-array",
            format!(r#"{{"a.io": {{"identitytoken": ["{pw}"]}}}}"#),
            "field `identitytoken` is not a string",
        ),
        (
            "auth-not-base64",
            format!(r#"{{"a.io": {{"auth": "{pw}"}}}}"#),
            "field `auth` is not valid base64",
        ),
        (
            "auth-no-colon",
            r#"{"a.io": {"auth": "UXg3I3ZMcDJ6Ujkh"}}"#.into(),
            "field `auth` does not decode",
        ),
        (
            "auth-space",
            r#"{"a.io": {"auth": "Zm9vOmJhcg== "}}"#.into(),
            "field `auth` is not valid base64",
        ),
        (
            "key-userinfo",
            format!(r#"{{"https://bot:{pw}@a.io/v1/": {{"username": "u"}}}}"#),
            "entry \"https://<redacted>@a.io/v1/\": the key is not a registry: user info",
        ),
        (
            "key-scheme",
            r#"{"ftp://a.io": {"username": "u"}}"#.into(),
            "entry \"ftp://a.io\": the key is not a registry: scheme `ftp`",
        ),
        (
            "key-port",
            r#"{"a.io:https": {"username": "u"}}"#.into(),
            "the key is not a registry: `:https` is not a port",
        ),
        (
            "key-host",
            r#"{"a b.io": {"username": "u"}}"#.into(),
            "the key is not a registry: `a b.io` is not a host name",
        ),
    ]
}

#[test]
fn auth_bad_files_are_refused_naming_file_and_entry() {
    for (name, contents, expected) in bad_files() {
        let file = PathBuf::from(format!("/secrets/{name}.json"));
        let err = Keyring::from_bytes(&file, contents.as_bytes()).expect_err(name);
        let message = err.to_string();

        assert!(
            message.starts_with(&format!("parse auth file /secrets/{name}.json: ")),
            "{message}"
        );
        assert!(message.contains(expected), "{name}: {message}");
    }
}

#[test]
fn auth_unreadable_file_is_refused_naming_it() {
    let missing = data("auth/no-such-file.json");
    let err =
        Keyring::from_files([data("auth/dockercfg.json"), missing.clone()]).expect_err("missing");

    assert!(
        matches!(&err, AuthError::Read { file, .. } if *file == missing),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("read auth file {}: ", missing.display()))
    );
}

#[test]
fn auth_error_in_a_later_file_names_that_file_and_keeps_the_keyring() {
    let mut keyring = Keyring::from_file(&data("auth/dockercfg.json")).expect("parses");
    let bad = data("auth/bad-base64.json");

    let err = keyring.add_file(&bad).expect_err("bad base64");
    assert!(
        matches!(&err, AuthError::Entry { file, key, problem: EntryProblem::AuthNotBase64 }
            if *file == bad && key.as_str() == "registry.example.com"),
        "{err:?}"
    );
    assert_eq!(keyring.len(), 2);
}

/// Every string a secret could leak through: Display, Debug and source
/// chain of each error; Debug of keyrings, lookups and credentials;
/// Display and Debug of warnings.
fn everything_printed() -> Vec<String> {
    let mut printed = Vec::new();

    let keyring = Keyring::from_file(&data("auth/dockerconfigjson.json")).expect("parses");
    printed.push(format!("{keyring:?} {keyring:#?}"));
    for target in [
        image("registry.example.com:5000", "a"),
        image("docker.io", "library/a"),
        image("x.corp.example.com", "team/a"),
    ] {
        let found = keyring.lookup(&target);
        assert!(!found.is_empty(), "{target}");
        printed.push(format!("{found:?} {found:#?}"));
    }

    let with_warnings = Keyring::from_file(&data("auth/docker-config.json")).expect("parses");
    for warning in with_warnings.warnings() {
        printed.push(format!("{warning} {warning:?}"));
    }

    let mut bad: Vec<Result<Keyring, AuthError>> =
        vec![Keyring::from_file(&data("auth/bad-base64.json"))];
    for (name, contents, _) in bad_files() {
        bad.push(Keyring::from_bytes(Path::new(name), contents.as_bytes()));
    }
    for err in bad.into_iter().map(|result| result.expect_err("bad file")) {
        printed.push(format!(
            "{err} {err:?} {:?}",
            err.source().map(ToString::to_string)
        ));
    }
    printed
}

#[test]
fn auth_secrets_never_appear_in_any_output() {
    let printed = everything_printed().join("\n");
    let secrets = [
        KNOWN_PASSWORD,
        KNOWN_TOKEN,
        "ZGVwbG95LWJvdDpReDcjdkxwMjp6Ujkh",
        "8675309",
        "UXg3I3ZMcDJ6Ujkh",
    ];

    for secret in secrets {
        let chars: Vec<char> = secret.chars().collect();
        for piece in chars.windows(4) {
            let piece: String = piece.iter().collect();
            assert!(
                !printed.contains(&piece),
                "{piece:?} of a secret was printed:\n{printed}"
            );
        }
    }
}

/// The same table fed as the pull engine feeds it: through the reference
/// normaliser. Rows whose image is no valid reference are skipped, and so
/// is a lone component with a dot, which the normaliser reads as a Hub
/// repository where the kubelet's table reads a host.
#[test]
fn auth_keyring_table_holds_for_normalised_references() {
    let mut checked = 0;

    for row in table_rows(include_str!("../../tests/data/keyring.tsv")) {
        let [key, raw_image, expected] = row[..] else {
            panic!("keyring.tsv row {row:?} has not 3 columns");
        };
        let lone_host = !raw_image.contains('/') && raw_image.contains('.');
        let Ok(reference) = crate::reference::parse(raw_image) else {
            continue;
        };
        if lone_host {
            continue;
        }

        let file = single_key_file(key, r#"{"username": "u", "password": "p"}"#);
        let keyring = Keyring::from_bytes(Path::new("keyring.tsv"), &file).expect("parses");
        let matched = !keyring.lookup(&reference).is_empty();
        assert_eq!(matched, expected == "yes", "key {key:?} image {reference}");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} rows are valid references");
}
