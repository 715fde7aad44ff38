//! The `auth` field of an entry: base64 of `username:password`.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::error::EntryProblem;

/// Decodes as Go's `base64.StdEncoding`, which the kubelet uses: padding
/// required, leftover bits after the last byte not checked.
const GO_STD_ENCODING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Splits a decoded `auth` field at its first `:`, since a password may
/// contain colons and a user name may not. Nothing else is trimmed: a
/// trailing newline that was encoded is part of the password, as the
/// kubelet reads it. Line breaks in the base64 text are skipped (Go's
/// decoder skips them); any other stray character is an error.
pub(crate) fn decode_auth(field: &str) -> Result<(String, String), EntryProblem> {
    let compact: String = field
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    let bytes = GO_STD_ENCODING
        .decode(compact)
        .map_err(|_| EntryProblem::AuthNotBase64)?;

    let text = String::from_utf8(bytes).map_err(|_| EntryProblem::AuthNotUtf8)?;
    let (username, password) = text.split_once(':').ok_or(EntryProblem::AuthNoColon)?;
    Ok((username.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(user: &str, password: &str) -> Result<(String, String), EntryProblem> {
        Ok((user.to_owned(), password.to_owned()))
    }

    #[test]
    fn splits_at_the_first_colon() {
        // base64 of "me:pa:ss:"
        assert_eq!(decode_auth("bWU6cGE6c3M6"), pair("me", "pa:ss:"));
        // base64 of ":nouser"
        assert_eq!(decode_auth("Om5vdXNlcg=="), pair("", "nouser"));
    }

    #[test]
    fn crlf_line_breaks_are_skipped() {
        assert_eq!(decode_auth("Zm9v\r\nOmJhcg==\r\n"), pair("foo", "bar"));
    }

    #[test]
    fn leftover_bits_are_tolerated_like_go() {
        // "Zm9vOmJhch==" differs from "Zm9vOmJhcg==" only in unused bits.
        assert_eq!(decode_auth("Zm9vOmJhch=="), pair("foo", "bar"));
    }

    #[test]
    fn malformed_fields_are_refused() {
        let cases = [
            ("Zm9vOmJhcg", EntryProblem::AuthNotBase64),
            ("Zm9v OmJhcg==", EntryProblem::AuthNotBase64),
            ("Zm9vOmJhcg===", EntryProblem::AuthNotBase64),
            ("Zm9vOmJhcg==\t", EntryProblem::AuthNotBase64),
            ("Zm9vYmFy", EntryProblem::AuthNoColon),
            ("YcV6OmHFeg==", EntryProblem::AuthNotUtf8),
        ];

        for (field, problem) in cases {
            assert_eq!(decode_auth(field), Err(problem), "auth {field:?}");
        }
    }
}
