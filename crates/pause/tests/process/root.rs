//! Tests that need root: pause under uid/gid 65535, and pause as PID 1 of a
//! new PID namespace (util-linux `unshare` and `nsenter`).
//!
//! Run with `cargo test -p pause --features root-tests` as root; without root
//! every test here fails with a message saying so.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus};

use crate::support::{self, PAUSE, ProcStat, Running, field, proc_status};

/// The user and group of the Kubernetes `nobody`-style non-root default.
const NOBODY: u32 = 65535;

fn require_root() {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };

    assert_eq!(
        euid, 0,
        "the root-tests feature needs root (euid {euid}); run as root or drop it"
    );
}

/// A copy of pause that any user can run, in a directory any user can enter
/// (the build directory may sit under a home only root can read).
fn world_executable_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let open = fs::Permissions::from_mode(0o755);
    fs::set_permissions(dir.path(), open.clone()).expect("open up the temporary directory");

    let copy = dir.path().join("pause");
    fs::copy(PAUSE, &copy).expect("copy pause");
    fs::set_permissions(&copy, open).expect("make the pause copy executable");

    (dir, copy)
}

#[test]
fn works_as_uid_and_gid_65535() {
    require_root();
    let (_dir, pause) = world_executable_copy();

    let mut command = Command::new(&pause);
    command.uid(NOBODY).gid(NOBODY);
    let mut running = Running::spawn(command);
    let pid = running.pid();
    support::wait_ready(pid);

    let status = proc_status(pid);
    for name in ["Uid", "Gid"] {
        let ids: Vec<&str> = field(&status, name).split_whitespace().collect();
        assert_eq!(ids, ["65535"; 4], "{name} of pause");
    }

    support::send(pid, libc::SIGHUP);
    support::wait_signals_taken(pid);
    running.assert_alive();

    support::send(pid, libc::SIGTERM);
    assert_eq!(running.finish().status.code(), Some(0));
}

/// Starts `script` under `sh` as PID 1 of a new PID namespace; the script
/// ends by exec'ing pause, which so becomes PID 1 and inherits its children.
/// Returns the `unshare` process and pause's PID as seen from here.
fn pid1_running(script: &str) -> (Running, i32) {
    let mut command = Command::new("unshare");
    command.args(["--fork", "--pid", "--mount-proc", "sh", "-c", script, PAUSE]);
    let unshare = Running::spawn(command);

    let mut pid1 = None;
    support::wait_until("unshare starts its PID 1", || {
        pid1 = support::children_of(unshare.pid()).first().map(|p| p.pid);
        pid1.is_some()
    });
    let pid1 = pid1.unwrap_or_default();
    support::wait_ready(pid1);

    let ns_pids = field(&proc_status(pid1), "NSpid")
        .split_whitespace()
        .last()
        .map(str::to_owned);
    assert_eq!(
        ns_pids.as_deref(),
        Some("1"),
        "pause is not PID 1 of its namespace"
    );

    (unshare, pid1)
}

/// Every process in the PID namespace of `pid1` except `pid1` itself.
fn namespace_members(pid1: i32) -> Vec<ProcStat> {
    let namespace = |pid: i32| fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let ours = namespace(pid1).expect("read pause's PID namespace");

    support::all_processes()
        .into_iter()
        .filter(|p| p.pid != pid1 && namespace(p.pid).as_ref() == Some(&ours))
        .collect()
}

#[test]
fn as_pid1_reaps_orphans_and_exits_zero_on_sigterm() {
    require_root();
    // Two children of the shell, and two orphans whose parent subshell exits
    // at once so that the kernel hands them to PID 1.
    let script = r#"sleep 600 & sleep 600 & (sleep 600 &); (sleep 600 &); exec "$0""#;
    let (unshare, pid1) = pid1_running(script);

    support::wait_until("four sleeps, all children of PID 1", || {
        let members = namespace_members(pid1);
        members.len() == 4 && members.iter().all(|p| p.ppid == pid1 && p.comm == "sleep")
    });
    for member in namespace_members(pid1) {
        support::send(member.pid, libc::SIGKILL);
    }
    support::wait_until(
        "PID 1 reaps every process that exited, leaving no zombie",
        || namespace_members(pid1).is_empty(),
    );

    support::send(pid1, libc::SIGTERM);
    let finished = unshare.finish();
    assert_eq!(
        finished.status.code(),
        Some(0),
        "unshare reports pause's exit status"
    );
}

#[test]
fn as_pid1_takes_sigterm_sent_from_inside_its_namespace() {
    require_root();
    let (mut unshare, pid1) = pid1_running(r#"exec "$0""#);

    // PID 1 would never see a signal it leaves at the default action when
    // it comes from inside its own namespace; blocked signals do arrive.
    let status = nsenter_kill(pid1, "HUP");
    assert!(
        status.success(),
        "kill -HUP 1 inside the namespace: {status}"
    );
    support::wait_signals_taken(pid1);
    unshare.assert_alive();

    // When PID 1 exits the kernel kills the rest of its namespace, which may
    // catch the sending shell before it exits by itself.
    let status = nsenter_kill(pid1, "TERM");
    assert!(
        status.success() || status.signal() == Some(libc::SIGKILL),
        "kill -TERM 1: {status}"
    );
    assert_eq!(unshare.finish().status.code(), Some(0));
}

/// Sends `signal` to PID 1 from a shell inside `pid1`'s PID namespace.
fn nsenter_kill(pid1: i32, signal: &str) -> ExitStatus {
    let target = pid1.to_string();
    let kill = format!("kill -{signal} 1");

    Command::new("nsenter")
        .args(["--target", &target, "--pid", "--", "sh", "-c", &kill])
        .status()
        .expect("run nsenter")
}
