//! Signals an ordinary (non-PID-1) pause receives, and its cost while waiting.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::thread;
use std::time::Duration;

use libc::c_int;

use crate::support::{self, Running, proc_stat, proc_status};

/// Sends `signal` to a waiting pause and checks it exits 0 having printed nothing.
fn assert_signal_exits_zero(signal: c_int) {
    let running = Running::pause();

    support::send(running.pid(), signal);
    let finished = running.finish();

    assert_eq!(
        finished.status.code(),
        Some(0),
        "signal {signal}: {:?}",
        finished.status
    );
    assert!(finished.stdout.is_empty(), "wrote to stdout while waiting");
    assert!(finished.stderr.is_empty(), "wrote to stderr while waiting");
}

#[test]
fn sigterm_exits_zero() {
    assert_signal_exits_zero(libc::SIGTERM);
}

#[test]
fn sigint_exits_zero() {
    assert_signal_exits_zero(libc::SIGINT);
}

/// Shells start background jobs with SIGINT and SIGQUIT ignored; a signal
/// that is blocked and waited for still arrives, whatever its disposition.
#[test]
fn sigint_exits_zero_even_when_inherited_as_ignored() {
    let mut command = Command::new(support::PAUSE);
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls signal(2), which is async-signal-safe.
    unsafe { command.pre_exec(ignore_sigint) };
    let running = Running::spawn(command);
    support::wait_ready(running.pid());

    let ignored = support::hex_field(&proc_status(running.pid()), "SigIgn");
    assert_ne!(
        ignored & 1 << (libc::SIGINT - 1),
        0,
        "SIGINT should start out ignored"
    );

    support::send(running.pid(), libc::SIGINT);
    assert_eq!(running.finish().status.code(), Some(0));
}

fn ignore_sigint() -> io::Result<()> {
    // SAFETY: setting a disposition to SIG_IGN involves no handler code.
    let previous = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };

    if previous == libc::SIG_ERR {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[test]
fn other_signals_are_taken_and_ignored() {
    let mut running = Running::pause();
    let ignored = [
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGQUIT,
        libc::SIGALRM,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGWINCH,
        libc::SIGCONT,
    ];

    for signal in ignored.into_iter().chain(realtime_signals()) {
        support::send(running.pid(), signal);
    }
    support::wait_signals_taken(running.pid());

    running.assert_alive();
    let state = proc_stat(running.pid())
        .expect("pause still in /proc")
        .state;
    assert_eq!(state, 'S', "pause should be asleep, not stopped or dead");

    support::send(running.pid(), libc::SIGTERM);
    assert_eq!(running.finish().status.code(), Some(0));
}

/// Every real-time signal pause can be expected to take. A musl build blocks
/// the C library's internal signals 32 to 34 as well; a glibc build cannot,
/// so those are only sent when the tests run for a musl target.
fn realtime_signals() -> impl Iterator<Item = c_int> {
    let first = if cfg!(target_env = "musl") {
        32
    } else {
        libc::SIGRTMIN()
    };

    first..=libc::SIGRTMAX()
}

#[test]
fn waiting_uses_no_cpu_and_is_never_scheduled() {
    let running = Running::pause();
    let pid = running.pid();
    let before = (cpu_ticks(pid), context_switches(pid));

    thread::sleep(Duration::from_millis(1500));
    let after = (cpu_ticks(pid), context_switches(pid));

    assert!(
        after.0 <= before.0 + 1,
        "CPU ticks went from {} to {}",
        before.0,
        after.0
    );
    assert_eq!(after.1, before.1, "pause woke up while nothing happened");
}

fn cpu_ticks(pid: i32) -> u64 {
    proc_stat(pid).expect("pause still in /proc").cpu_ticks
}

/// Voluntary plus involuntary context switches: any wake-up adds to them.
fn context_switches(pid: i32) -> u64 {
    let status = proc_status(pid);
    let count = |name| {
        let text = support::field(&status, name);
        text.parse::<u64>()
            .unwrap_or_else(|err| panic!("{name} {text:?}: {err}"))
    };

    count("voluntary_ctxt_switches") + count("nonvoluntary_ctxt_switches")
}
