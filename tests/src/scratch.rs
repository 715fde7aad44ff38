//! Temporary directories that clean up after the daemons that used them.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A directory under the system temp dir, unique to this process.
///
/// On drop it kills any process whose command line still names the
/// directory (containerd shims and the like that outlive their daemon),
/// unmounts everything mounted below it, then removes it. The path stays short
/// because unix socket paths inside it are limited to 107 bytes.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Creates a fresh directory named after `label`.
    pub fn new(label: &str) -> Result<Scratch> {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let name = format!("pp-{label}.{}.{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        if path.exists() {
            remove_tree(&path);
        }
        fs::create_dir_all(&path).map_err(|e| Error::io("create directory", &path, e))?;
        Ok(Scratch { path })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates (if needed) and returns a subdirectory.
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.path.join(name);
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        Ok(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        kill_processes_naming(&self.path);
        unmount_below(&self.path);
        remove_tree(&self.path);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before the daemon binds it, so another process could
/// take it in between; the daemon then fails to start and says so loudly.
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("bind", "127.0.0.1:0", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("read address of", "127.0.0.1:0", e))?;
    Ok(addr.port())
}

fn remove_tree(path: &Path) {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            eprintln!("prepull-e2e: cannot remove {}: {e}", path.display());
        }
        _ => {}
    }
}

/// Mount points at or below `dir`, deepest first, from /proc/self/mountinfo.
pub(crate) fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mount_path(field)))
        .filter(|mount| mount.starts_with(dir))
        .collect();

    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape_mount_path(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn unmount_below(dir: &Path) {
    for mount in mounts_below(dir) {
        let plain = Command::new("umount").arg(&mount).status();
        if !plain.is_ok_and(|s| s.success()) {
            let lazy = Command::new("umount").arg("-l").arg(&mount).status();
            if !lazy.is_ok_and(|s| s.success()) {
                eprintln!("prepull-e2e: cannot unmount {}", mount.display());
            }
        }
    }
}

/// Kills, by pid, every process whose command line mentions `dir`.
///
/// Only processes started for this directory name it (a daemon given its
/// socket or root there, or a shim given that daemon's address), so nothing
/// else on the machine is touched.
fn kill_processes_naming(dir: &Path) {
    let mut needle = dir.as_os_str().as_encoded_bytes().to_vec();
    needle.push(b'/');
    for pid in pids_naming(&needle) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

fn pids_naming(needle: &[u8]) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmd| cmd.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_is_removed_on_drop() {
        let scratch = Scratch::new("unit").expect("scratch dir");
        let path = scratch.path().to_path_buf();
        fs::write(path.join("f"), b"x").expect("write file");
        drop(scratch);
        assert!(!path.exists(), "{} still exists", path.display());
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_path("/x\\134y"), "/x\\y");
    }

    #[test]
    fn free_port_is_nonzero() {
        assert_ne!(free_port().expect("port"), 0);
    }
}
