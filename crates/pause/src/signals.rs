//! Waiting for signals: all are blocked and taken one by one with
//! `sigwaitinfo`, so the process sleeps in the kernel between them.
//!
//! Blocking instead of installing handlers is also what makes PID 1 work: the
//! kernel drops signals that PID 1 leaves at their default action, but never a
//! blocked one, since a blocked signal stays pending until it is taken.

use core::mem::MaybeUninit;
use core::ptr;

use libc::{c_int, sigset_t};

use crate::out;

/// Blocks every signal, then waits forever: SIGTERM and SIGINT exit with 0,
/// SIGCHLD reaps children, anything else is dropped.
///
/// Exits with 1 and a message on stderr if the signals cannot be blocked,
/// because then SIGTERM would kill the process instead of ending it cleanly.
pub fn wait_forever() -> ! {
    let set = all_signals();
    if !block(&set) {
        out::error(b"pause: cannot block signals with sigprocmask\n");
        out::exit(1);
    }

    // Children inherited across `exec` may have exited before the mask was
    // set; their SIGCHLD was discarded then, so collect them now.
    reap_children();

    loop {
        match next_signal(&set) {
            libc::SIGTERM | libc::SIGINT => out::exit(0),
            libc::SIGCHLD => reap_children(),
            _ => {}
        }
    }
}

/// The set of every signal number, built by hand rather than with
/// `sigfillset`: that leaves out the C library's internal signals (32 to 34
/// in musl), whose default action would end the process. pause uses none of
/// them, so it blocks and drops those too. The kernel never blocks SIGKILL and
/// SIGSTOP. (glibc's `sigprocmask` still removes its own two, 32 and 33, which
/// only matters for the host build used in tests.)
fn all_signals() -> sigset_t {
    let mut set = MaybeUninit::<sigset_t>::uninit();

    // SAFETY: `sigset_t` is a plain bit array; writing one all-ones value
    // through the valid pointer makes it the set of every signal.
    unsafe { set.as_mut_ptr().write_bytes(0xff, 1) };
    // SAFETY: every byte was initialised just above.
    unsafe { set.assume_init() }
}

/// Replaces the signal mask with `set`; `false` if the kernel refused.
fn block(set: &sigset_t) -> bool {
    // SAFETY: `set` is a valid signal set and the old mask is not asked for.
    let result = unsafe { libc::sigprocmask(libc::SIG_SETMASK, set, ptr::null_mut()) };

    result == 0
}

/// Sleeps until a signal of `set` is pending and takes it; returns its
/// number, or -1 if the wait was interrupted (the caller just waits again).
fn next_signal(set: &sigset_t) -> c_int {
    // SAFETY: `set` is a valid signal set; a null `siginfo_t` pointer is
    // allowed and means the details are not wanted.
    unsafe { libc::sigwaitinfo(set, ptr::null_mut()) }
}

/// Collects every child that has exited, without waiting for live ones.
fn reap_children() {
    loop {
        // SAFETY: a null status pointer is allowed; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, ptr::null_mut(), libc::WNOHANG) };

        // 0: children remain but none has exited; -1: no children at all.
        if pid <= 0 {
            return;
        }
    }
}
