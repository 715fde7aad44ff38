//! What the images say about their source: package metadata from Cargo, the
//! commit from git, and the one timestamp every file and document carries.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{ImagesError, process};

/// The metadata of one binary package, used for the image labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub description: String,
    pub license: String,
    pub repository: String,
}

/// Where the workspace is and what it holds.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    /// Cargo's target directory (honours `CARGO_TARGET_DIR`).
    pub target_dir: PathBuf,
    pub packages: Vec<Package>,
}

impl Workspace {
    /// The package called `name`.
    pub fn package(&self, name: &str) -> Result<&Package, ImagesError> {
        self.packages
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                ImagesError::Metadata(format!(
                    "no package {name} in workspace {}",
                    self.root.display()
                ))
            })
    }
}

/// The commit being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `git rev-parse HEAD`.
    pub revision: String,
    /// Seconds since 1970 used for every timestamp in the images.
    pub epoch: u64,
    /// Tracked files differ from the commit: the images are then not what
    /// `revision` alone would give.
    pub dirty: bool,
}

/// Reads the workspace at `root` through `cargo metadata`.
pub fn workspace(cargo: &OsStr, root: &Path) -> Result<Workspace, ImagesError> {
    let text = process::output(
        Command::new(cargo)
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--manifest-path",
            ])
            .arg(root.join("Cargo.toml")),
    )?;
    let meta: Value = serde_json::from_str(&text)
        .map_err(|e| ImagesError::Metadata(format!("output is not JSON: {e}")))?;

    let target_dir = meta["target_directory"]
        .as_str()
        .ok_or_else(|| ImagesError::Metadata("no target_directory".to_owned()))?;
    let packages = meta["packages"]
        .as_array()
        .ok_or_else(|| ImagesError::Metadata("no packages list".to_owned()))?;
    Ok(Workspace {
        root: root.to_owned(),
        target_dir: PathBuf::from(target_dir),
        packages: packages.iter().map(package).collect(),
    })
}

/// One entry of `cargo metadata`'s package list; absent fields become empty.
fn package(value: &Value) -> Package {
    let field = |key: &str| value[key].as_str().unwrap_or_default().to_owned();

    Package {
        name: field("name"),
        version: field("version"),
        description: field("description"),
        license: field("license"),
        repository: field("repository"),
    }
}

/// Reads the commit of the checkout at `root`. The timestamp is
/// `SOURCE_DATE_EPOCH` when set (the reproducible-builds convention), else the
/// commit time, so a rebuild of the same commit gets the same dates.
pub fn source(root: &Path) -> Result<Source, ImagesError> {
    let git = |args: &[&str]| process::output(Command::new("git").arg("-C").arg(root).args(args));
    let revision = git(&["rev-parse", "HEAD"])?;
    let status = git(&["status", "--porcelain", "--untracked-files=no"])?;

    let epoch_text = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value,
        Err(_) => git(&["log", "-1", "--format=%ct"])?,
    };
    Ok(Source {
        revision,
        epoch: parse_epoch(&epoch_text)?,
        dirty: !status.is_empty(),
    })
}

/// A whole, non-negative number of seconds.
pub fn parse_epoch(text: &str) -> Result<u64, ImagesError> {
    text.trim().parse().map_err(|_| ImagesError::BadEpoch {
        value: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_accepts_seconds_and_rejects_the_rest() {
        assert_eq!(parse_epoch("1796317435\n").expect("seconds"), 1_796_317_435);
        assert_eq!(parse_epoch("0").expect("zero"), 0);

        for bad in ["", "-5", "1.5", "2026-12-03", "soon"] {
            let err = parse_epoch(bad).expect_err(bad);
            assert!(err.to_string().contains("whole number of seconds"), "{err}");
        }
    }

    #[test]
    fn package_fields_come_from_metadata() {
        let value = serde_json::json!({
            "name": "pause", "version": "0.1.0", "description": "waits",
            "license": "Apache-2.0", "repository": "https://example.org/p"
        });

        let p = package(&value);

        assert_eq!((p.name.as_str(), p.version.as_str()), ("pause", "0.1.0"));
        assert_eq!(p.license, "Apache-2.0");
        assert_eq!(p.repository, "https://example.org/p");
    }
}
