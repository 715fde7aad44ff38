//! Reaping: pause collects every child that exits, including the children it
//! inherits through `exec`, as a container's PID 1 does with orphans.

use std::io;
use std::mem::MaybeUninit;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::support::{self, PAUSE, Running, children_of};

/// Runs pause in a process that first forks `count` children sleeping until
/// killed: across `exec` they become pause's own children.
fn pause_with_sleeping_children(count: usize) -> Running {
    let mut command = Command::new(PAUSE);

    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe calls (fork, pause).
    unsafe { command.pre_exec(move || fork_sleepers(count)) };

    let running = Running::spawn(command);
    support::wait_ready(running.pid());
    running
}

fn fork_sleepers(count: usize) -> io::Result<()> {
    for _ in 0..count {
        // SAFETY: called between fork and exec; the new child only sleeps.
        let pid = unsafe { libc::fork() };

        match pid {
            0 => sleep_until_killed(),
            -1 => return Err(io::Error::last_os_error()),
            _ => {}
        }
    }

    Ok(())
}

/// Closes every inherited descriptor above stderr (among them the one through
/// which `spawn` learns that `exec` happened), then sleeps until killed.
fn sleep_until_killed() -> ! {
    for fd in 3..1024 {
        // SAFETY: closing a descriptor number has no memory effects; this
        // process owns all of its descriptors and uses none of them.
        unsafe { libc::close(fd) };
    }

    loop {
        // SAFETY: pause(2) only sleeps until a signal arrives.
        unsafe { libc::pause() };
    }
}

/// Forks a child that exits at once and waits for it without collecting it,
/// so pause starts with a zombie whose SIGCHLD was discarded before exec.
fn leave_zombie() -> io::Result<()> {
    // SAFETY: called between fork and exec; the new child only exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: `_exit` has no preconditions.
        unsafe { libc::_exit(0) };
    }
    let id = libc::id_t::try_from(pid).map_err(|_| io::Error::last_os_error())?;

    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    let flags = libc::WEXITED | libc::WNOWAIT;
    // SAFETY: `info` is a writable siginfo_t; WNOWAIT leaves the child a zombie.
    let result = unsafe { libc::waitid(libc::P_PID, id, info.as_mut_ptr(), flags) };

    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[test]
fn reaps_children_as_they_exit() {
    let mut running = pause_with_sleeping_children(3);
    let pid = running.pid();

    let children = children_of(pid);
    assert_eq!(
        children.len(),
        3,
        "expected 3 sleeping children: {children:?}"
    );
    assert!(children.iter().all(|c| c.state == 'S'), "{children:?}");

    for child in &children {
        support::send(child.pid, libc::SIGKILL);
    }
    support::wait_until("pause reaps its 3 killed children", || {
        children_of(pid).is_empty()
    });

    running.assert_alive();
    support::send(pid, libc::SIGTERM);
    assert_eq!(running.finish().status.code(), Some(0));
}

#[test]
fn reaps_a_zombie_inherited_at_start() {
    let mut command = Command::new(PAUSE);
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe calls (fork, _exit, waitid).
    unsafe { command.pre_exec(leave_zombie) };

    let running = Running::spawn(command);
    let pid = running.pid();
    support::wait_ready(pid);

    support::wait_until("pause reaps the zombie it inherited", || {
        children_of(pid).is_empty()
    });
}
