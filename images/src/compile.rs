//! Cross-compiling the image binaries as static musl executables.
//!
//! Both musl targets link with `rust-lld` (set in `.cargo/config.toml`):
//! rustup's musl targets ship the C library and start files themselves, so
//! no cross C toolchain has to be installed.
//!
//! rustc writes source paths into binaries (panic locations), among them the
//! absolute paths of build-script output (the generated CRI bindings) and of
//! the Cargo home. The image build maps both to fixed names with
//! `--remap-path-prefix`, so the binaries do not depend on where the checkout,
//! its target directory or the Cargo home are. Those flags change every
//! artifact, so the image build keeps its own target directory
//! ([`build_dir`]) instead of rebuilding the shared one back and forth.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::source::Workspace;
use crate::{Arch, ImagesError, elf, process};

/// A binary ready to go into an image.
#[derive(Debug, Clone)]
pub struct Binary {
    pub name: String,
    pub arch: Arch,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Builds `names` in release mode for every architecture, then reads and
/// checks the results. With `compile = false` the binaries already in
/// [`build_dir`] are used as they are.
pub fn compile(
    cargo: &OsStr,
    ws: &Workspace,
    names: &[&str],
    compile: bool,
) -> Result<Vec<Binary>, ImagesError> {
    let mut binaries = Vec::new();
    let dir = build_dir(ws);

    for arch in Arch::ALL {
        if compile {
            cargo_build(cargo, &ws.root, &dir, arch, names)?;
        }
        for name in names {
            binaries.push(read_binary(&dir, arch, name)?);
        }
    }
    Ok(binaries)
}

/// The target directory of the image build, inside the workspace's one.
pub fn build_dir(ws: &Workspace) -> PathBuf {
    ws.target_dir.join("image-build")
}

/// `cargo build --release --locked` for one target. `--locked` because an
/// image must be built from the dependency versions the commit pins.
fn cargo_build(
    cargo: &OsStr,
    root: &Path,
    dir: &Path,
    arch: Arch,
    names: &[&str],
) -> Result<(), ImagesError> {
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--target",
        arch.rust_target(),
    ])
    .arg("--manifest-path")
    .arg(root.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(dir)
    .arg("--config")
    .arg(remap_config(arch, dir, &cargo_home()));
    for name in names {
        cmd.args(["-p", name]);
    }

    process::streamed(&mut cmd)
}

/// A `--config` value adding the path remappings to the target's rustflags
/// (cargo joins it with any rustflags `.cargo/config.toml` sets).
fn remap_config(arch: Arch, dir: &Path, cargo_home: &Path) -> String {
    let flag = |from: &Path, to: &str| format!("--remap-path-prefix={}={to}", from.display());
    let flags = [flag(dir, "/build"), flag(cargo_home, "/cargo")];

    // A JSON string is also a valid TOML string, quotes and backslashes included.
    let quoted: Vec<String> = flags
        .iter()
        .map(|f| serde_json::Value::from(f.as_str()).to_string())
        .collect();
    format!(
        "target.{}.rustflags=[{}]",
        arch.rust_target(),
        quoted.join(", ")
    )
}

/// `CARGO_HOME`, else `~/.cargo`, where cargo keeps dependency sources.
fn cargo_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return PathBuf::from(home);
    }
    let user_home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&user_home).join(".cargo")
}

/// Where cargo puts the release binary `name` for `arch`.
pub fn binary_path(target_dir: &Path, arch: Arch, name: &str) -> PathBuf {
    target_dir
        .join(arch.rust_target())
        .join("release")
        .join(name)
}

fn read_binary(build_dir: &Path, arch: Arch, name: &str) -> Result<Binary, ImagesError> {
    let path = binary_path(build_dir, arch, name);
    let bytes = std::fs::read(&path).map_err(ImagesError::io("read built binary", &path))?;

    elf::check_static(&path, &bytes, arch)?;
    Ok(Binary {
        name: (*name).to_owned(),
        arch,
        path,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remap_config_is_a_toml_array_for_the_target() {
        let config = remap_config(
            Arch::Arm64,
            Path::new("/w/target/image-build"),
            Path::new("/home/a \"b\"/.cargo"),
        );

        assert_eq!(
            config,
            r#"target.aarch64-unknown-linux-musl.rustflags=["--remap-path-prefix=/w/target/image-build=/build", "--remap-path-prefix=/home/a \"b\"/.cargo=/cargo"]"#
        );
    }
}
