//! Every row of `data/reference.tsv` (copied from the table the container
//! ecosystem's parsers are held to) through `prepull::reference::parse`.
//!
//! Valid rows must come out with the normalised name, domain, path, tag and
//! digest of the table. The table leaves the tag empty when the reference has
//! none; normalisation then adds `latest`, unless a digest is given.
//! Invalid rows must be rejected; where the table names a specific reason
//! (uppercase name, digest length, unsupported digest) the error must be that
//! one, while `invalid_format` rows may get a more specific reason.

use prepull::reference::{ImageRef, ReferenceError, parse};

const TABLE: &str = include_str!("data/reference.tsv");

struct Row<'a> {
    input: &'a str,
    valid: bool,
    name: &'a str,
    domain: &'a str,
    path: &'a str,
    tag: &'a str,
    digest: &'a str,
    error_kind: &'a str,
}

fn rows() -> Vec<Row<'static>> {
    let mut lines = TABLE.lines().filter(|line| !line.starts_with('#'));
    let header = lines.next().expect("header row");
    assert!(
        header.starts_with("input\tvalid"),
        "unexpected header {header}"
    );

    lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            assert_eq!(cells.len(), 8, "row {line:?} has {} cells", cells.len());
            Row {
                input: cells[0],
                valid: cells[1] == "yes",
                name: cells[2],
                domain: cells[3],
                path: cells[4],
                tag: cells[5],
                digest: cells[6],
                error_kind: cells[7],
            }
        })
        .collect()
}

fn expected_tag(row: &Row) -> Option<String> {
    match (row.tag, row.digest) {
        ("", "") => Some("latest".to_owned()),
        ("", _) => None,
        (tag, _) => Some(tag.to_owned()),
    }
}

fn check_valid(row: &Row) -> Result<(), String> {
    let image: ImageRef = parse(row.input).map_err(|err| format!("rejected: {err}"))?;
    let got = (
        image.name(),
        image.registry.as_str(),
        image.repository.as_str(),
        image.tag.clone(),
        image.digest.as_deref(),
    );
    let want = (
        row.name.to_owned(),
        row.domain,
        row.path,
        expected_tag(row),
        (!row.digest.is_empty()).then_some(row.digest),
    );
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, want {want:?}"))
    }
}

fn kind_matches(err: &ReferenceError, kind: &str) -> bool {
    match kind {
        "uppercase_name" => matches!(err, ReferenceError::UppercaseName { .. }),
        "digest_invalid_length" => matches!(err, ReferenceError::DigestLength { .. }),
        "digest_unsupported" => matches!(err, ReferenceError::UnsupportedDigest { .. }),
        "invalid_format" => true,
        other => panic!("unknown error_kind {other:?} in the table"),
    }
}

fn check_invalid(row: &Row) -> Result<(), String> {
    match parse(row.input) {
        Ok(image) => Err(format!("accepted as {image}")),
        Err(err) if kind_matches(&err, row.error_kind) => Ok(()),
        Err(err) => Err(format!("rejected as {err:?}, want {}", row.error_kind)),
    }
}

#[test]
fn every_row_of_the_reference_table_parses_as_listed() {
    let rows = rows();
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let result = if row.valid {
                check_valid(row)
            } else {
                check_invalid(row)
            };
            result.err().map(|why| format!("{:?}: {why}", row.input))
        })
        .collect();

    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let valid = rows.iter().filter(|row| row.valid).count();
    assert!(
        valid >= 40 && rows.len() - valid >= 20,
        "table shrank: {valid} valid of {}",
        rows.len()
    );
}

#[test]
fn invalid_references_say_what_is_wrong() {
    let sha512 = format!("validname@sha512:{}", "f".repeat(128));
    let cases = [
        (
            "test:5000/Uppercase/lowercase:tag",
            "repository name must be lowercase",
        ),
        (
            "repo@sha256:ffffffffffffffffffffffffffffffffff",
            "this one has 34",
        ),
        (sha512.as_str(), "unsupported digest algorithm \"sha512\""),
        ("registry.com:8080/myapp:invalid~tag", "a tag is 1 to 128"),
        (
            "[fe80::1%eth0]:5000/debian",
            "invalid IPv6 registry address",
        ),
    ];

    for (input, phrase) in cases {
        let message = parse(input).expect_err(input).to_string();
        assert!(message.contains(phrase), "{input}: {message}");
        assert!(
            message.contains(&format!("{input:?}")),
            "{input}: {message}"
        );
    }
}
