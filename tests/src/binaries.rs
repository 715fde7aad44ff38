//! Locating the binaries under test. Tests never build them: the test script
//! does, before the suite runs, so a stale or missing build fails loudly here.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const HINT: &str = "build it first (`cargo build -p puller -p pause`, which tests/test.sh does) \
                    or point PREPULL_BIN_DIR at the directory holding it";

const STATIC_HINT: &str = "build it first (`cargo build --release --target \
                           <arch>-unknown-linux-musl -p NAME`) or point PREPULL_STATIC_BIN_DIR \
                           at the directory holding it";

/// Where the binaries under test are: `$PREPULL_BIN_DIR`, else the `debug`
/// directory of the cargo target dir (`$CARGO_TARGET_DIR`, relative paths
/// taken from the workspace root, else `<workspace>/target`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PREPULL_BIN_DIR") {
        return PathBuf::from(dir);
    }
    target_dir().join("debug")
}

/// `$CARGO_TARGET_DIR` (relative paths taken from the workspace root), else
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    let workspace = workspace_root();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace.join(dir))
        .unwrap_or_else(|| workspace.join("target"))
}

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Where the static binaries that go into container images are:
/// `$PREPULL_STATIC_BIN_DIR`, else `<target>/<arch>-unknown-linux-musl/release`.
/// A container from a FROM-scratch image can only run a static binary, so
/// tests that run ours inside a container use these, not [`bin_dir`]'s.
pub fn static_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PREPULL_STATIC_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let triple = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    target_dir().join(triple).join("release")
}

/// The static binary `name` in [`static_bin_dir`], or an error saying how to
/// build it.
pub fn static_binary(name: &str) -> Result<PathBuf> {
    existing(name, static_bin_dir().join(name), STATIC_HINT)
}

/// The path of binary `name` in [`bin_dir`], or an error saying how to build it.
pub fn binary(name: &str) -> Result<PathBuf> {
    existing(name, bin_dir().join(name), HINT)
}

fn existing(name: &str, path: PathBuf, hint: &'static str) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingBinary {
            name: name.to_string(),
            path,
            hint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_names_path_and_fix() {
        let err = binary("no-such-binary-prepull").expect_err("must be missing");
        let text = err.to_string();
        assert!(text.contains("no-such-binary-prepull"), "{text}");
        assert!(text.contains("PREPULL_BIN_DIR"), "{text}");
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("tests").join("Cargo.toml").is_file());
    }
}
