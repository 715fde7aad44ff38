//! The list of images to pull, from command-line arguments and images files.
//!
//! An images file holds one reference per line, the format of a ConfigMap key
//! mounted as a file. Blank lines are skipped and surrounding spaces trimmed.
//! A line whose first non-space character is `#` is a comment, and so is the
//! rest of a line from a `#` that follows a space or tab
//! (`nginx:1.27  # web tier`). A `#` glued to a reference (`nginx#x`) is left
//! in place and rejected by the grammar, since no reference contains `#`.
//!
//! The whole list is checked before anything is pulled: every invalid entry is
//! reported at once, each with its source (`images.txt:7`, `argument 3`).

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::reference::{self, ImageRef, ReferenceError};

/// Where one entry of the list came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The n-th image argument, counting from 1.
    Argument(usize),
    /// A line of an images file, counting from 1.
    Line { path: PathBuf, line: usize },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Argument(n) => write!(f, "argument {n}"),
            Source::Line { path, line } => write!(f, "{}:{line}", path.display()),
        }
    }
}

/// One entry that is not a valid reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source}: {error}")]
pub struct InvalidEntry {
    pub source: Source,
    #[source]
    pub error: ReferenceError,
}

/// Why no list could be made. Nothing is pulled when this happens.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("read images file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}", invalid_message(.0))]
    Invalid(Vec<InvalidEntry>),

    /// No arguments and nothing in the files: `files` names the files read.
    #[error("no images to pull: {}", empty_message(.files))]
    Empty { files: Vec<PathBuf> },
}

fn empty_message(files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    match names.as_slice() {
        [] => "no image arguments and no images file given".to_owned(),
        [one] => format!("no arguments, and {one} lists none"),
        many => format!("no arguments, and {} list none", many.join(", ")),
    }
}

fn invalid_message(entries: &[InvalidEntry]) -> String {
    let lines: Vec<String> = entries.iter().map(ToString::to_string).collect();
    match lines.as_slice() {
        [one] => one.clone(),
        many => format!(
            "{} invalid image references:\n  {}",
            many.len(),
            many.join("\n  ")
        ),
    }
}

/// One image to pull, with where it was first listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub image: ImageRef,
    pub source: Source,
}

/// Reads, checks and deduplicates the list: arguments first, then each file
/// in the order given. Entries that normalise to the same reference are kept
/// once, at their first position.
pub fn collect(arguments: &[String], files: &[PathBuf]) -> Result<Vec<Entry>, ListError> {
    let mut raw: Vec<(Source, String)> = arguments
        .iter()
        .enumerate()
        .map(|(i, text)| (Source::Argument(i + 1), text.trim().to_owned()))
        .collect();
    for path in files {
        raw.extend(read_file(path)?);
    }

    let entries = check(raw)?;
    if entries.is_empty() {
        return Err(ListError::Empty {
            files: files.to_vec(),
        });
    }
    Ok(dedupe(entries))
}

fn read_file(path: &Path) -> Result<Vec<(Source, String)>, ListError> {
    let text = std::fs::read_to_string(path).map_err(|source| ListError::Read {
        path: path.to_owned(),
        source,
    })?;

    Ok(parse_lines(&text)
        .map(|(line, reference)| {
            let source = Source::Line {
                path: path.to_owned(),
                line,
            };
            (source, reference.to_owned())
        })
        .collect())
}

/// The references of a file's text with their 1-based line numbers. A UTF-8
/// byte order mark, which some Windows editors write, is dropped: it is not
/// whitespace, so it would otherwise glue itself to the first reference.
pub fn parse_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, strip_comment(line).trim()))
        .filter(|(_, reference)| !reference.is_empty())
}

fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }

    let comment = line
        .char_indices()
        .find(|&(i, c)| c == '#' && line[..i].ends_with([' ', '\t']));
    match comment {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

fn check(raw: Vec<(Source, String)>) -> Result<Vec<Entry>, ListError> {
    let mut entries = Vec::with_capacity(raw.len());
    let mut invalid = Vec::new();
    for (source, text) in raw {
        match reference::parse(&text) {
            Ok(image) => entries.push(Entry { image, source }),
            Err(error) => invalid.push(InvalidEntry { source, error }),
        }
    }

    if invalid.is_empty() {
        Ok(entries)
    } else {
        Err(ListError::Invalid(invalid))
    }
}

fn dedupe(entries: Vec<Entry>) -> Vec<Entry> {
    let mut seen = HashSet::new();
    entries
        .into_iter()
        .filter(|entry| {
            let first = seen.insert(entry.image.clone());
            if !first {
                tracing::debug!(image = %entry.image, source = %entry.source, "duplicate image listed once");
            }
            first
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| e.image.to_string()).collect()
    }

    /// Writes `text` to `name` in a fresh directory, removed with the guard.
    fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("create temp dir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write temp file");
        (dir, path)
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn comments_blank_lines_and_spaces_are_skipped() {
        let text = "# header\n\n  nginx  \n\t# indented comment\nredis:7 # cache\r\nbusybox\t#x\n";
        let lines: Vec<(usize, &str)> = parse_lines(text).collect();
        assert_eq!(lines, [(3, "nginx"), (5, "redis:7"), (6, "busybox")]);
    }

    #[test]
    fn hash_glued_to_a_reference_is_not_a_comment() {
        let lines: Vec<(usize, &str)> = parse_lines("nginx#x\n").collect();
        assert_eq!(lines, [(1, "nginx#x")]);
    }

    #[test]
    fn arguments_come_before_files_and_duplicates_keep_first_position() {
        let (_dir, file) = temp_file(
            "order.txt",
            "redis\nnginx:latest\ndocker.io/library/busybox\n",
        );
        let entries =
            collect(&args(&["busybox", "nginx"]), std::slice::from_ref(&file)).expect("valid list");

        assert_eq!(
            images(&entries),
            [
                "docker.io/library/busybox:latest",
                "docker.io/library/nginx:latest",
                "docker.io/library/redis:latest",
            ]
        );
        assert_eq!(
            entries[2].source,
            Source::Line {
                path: file,
                line: 1
            }
        );
    }

    #[test]
    fn invalid_line_is_named_by_file_and_line() {
        let (_dir, file) = temp_file("bad.txt", "nginx\n\n# c\nFoo/Bar\n");
        let err = collect(&[], std::slice::from_ref(&file)).expect_err("invalid line");
        assert_eq!(
            err.to_string(),
            format!(
                "{}:4: invalid image reference \"Foo/Bar\": repository name must be lowercase",
                file.display()
            )
        );
    }

    #[test]
    fn every_invalid_entry_is_reported_at_once() {
        let err = collect(&args(&["ok", "bad~", "also bad"]), &[]).expect_err("two invalid");
        let message = err.to_string();
        assert!(
            message.starts_with("2 invalid image references:"),
            "{message}"
        );
        assert!(
            message.contains("argument 2: invalid image reference \"bad~\""),
            "{message}"
        );
        assert!(
            message.contains("argument 3: invalid image reference \"also bad\""),
            "{message}"
        );
    }

    #[test]
    fn empty_list_is_an_error() {
        let (_dir, file) = temp_file("empty.txt", "# nothing here\n\n");
        let err = collect(&[], std::slice::from_ref(&file)).expect_err("empty file");
        assert_eq!(
            err.to_string(),
            format!(
                "no images to pull: no arguments, and {} lists none",
                file.display()
            )
        );

        let err = collect(&[], &[file.clone(), file.clone()]).expect_err("empty files");
        let name = file.display();
        assert_eq!(
            err.to_string(),
            format!("no images to pull: no arguments, and {name}, {name} list none")
        );

        let err = collect(&[], &[]).expect_err("nothing given");
        assert_eq!(
            err.to_string(),
            "no images to pull: no image arguments and no images file given"
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_reference() {
        let (_dir, file) = temp_file("bom.txt", "\u{feff}nginx:1.27\nredis\n");
        let entries = collect(&[], &[file]).expect("valid after the BOM");
        assert_eq!(
            images(&entries),
            [
                "docker.io/library/nginx:1.27",
                "docker.io/library/redis:latest"
            ]
        );
    }

    #[test]
    fn empty_argument_is_invalid() {
        let err = collect(&args(&["nginx", " "]), &[]).expect_err("empty argument");
        assert_eq!(err.to_string(), "argument 2: empty image reference");
    }

    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        let missing = PathBuf::from("/nonexistent/images.txt");
        let err = collect(&args(&["nginx"]), &[missing]).expect_err("missing file");
        assert_eq!(err.to_string(), "read images file /nonexistent/images.txt");
        assert!(std::error::Error::source(&err).is_some());
    }
}
