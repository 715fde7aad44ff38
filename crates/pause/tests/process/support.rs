//! Spawning `pause`, signalling it and reading its state from /proc.

use std::fs;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use libc::c_int;

/// The binary under test, as built by cargo for this test run.
pub const PAUSE: &str = env!("CARGO_BIN_EXE_pause");

/// How long anything may take on a loaded machine before a test fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How often state is polled while waiting for it to change.
const POLL: Duration = Duration::from_millis(5);

/// A spawned process (pause, or a launcher of it), killed with its children
/// on drop so that a failed assertion leaves nothing running.
pub struct Running {
    child: Child,
}

/// What a finished process left behind.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Running {
    /// Spawns `command` with stdout and stderr captured and no stdin.
    pub fn spawn(mut command: Command) -> Running {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the process under test");

        Running { child }
    }

    /// Spawns `pause` with no arguments and waits until it blocks signals.
    pub fn pause() -> Running {
        let running = Running::spawn(Command::new(PAUSE));
        wait_ready(running.pid());
        running
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in pid_t")
    }

    /// Fails the test unless the process is still running.
    pub fn assert_alive(&mut self) {
        let state = self.child.try_wait().expect("poll the child");
        assert!(state.is_none(), "pause ended: {state:?}");
    }

    /// Waits up to [`TIMEOUT`] for the process to end and collects its output.
    pub fn finish(mut self) -> Finished {
        let status = self.exit_status();

        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let Some(pipe) = self.child.stdout.as_mut() {
            pipe.read_to_end(&mut stdout).expect("read stdout");
        }
        if let Some(pipe) = self.child.stderr.as_mut() {
            pipe.read_to_end(&mut stderr).expect("read stderr");
        }

        Finished {
            status,
            stdout,
            stderr,
        }
    }

    fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within {TIMEOUT:?}"
            );
            thread::sleep(POLL);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            for child in children_of(self.pid()) {
                kill_quietly(child.pid, libc::SIGKILL);
            }
            kill_quietly(self.pid(), libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Sends `signal` to `pid`, failing the test if the kernel refuses.
pub fn send(pid: i32, signal: c_int) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let result = unsafe { libc::kill(pid, signal) };

    assert_eq!(
        result,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// Sends `signal` to `pid`, ignoring failure (used when cleaning up).
pub fn kill_quietly(pid: i32, signal: c_int) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid, signal) };
}

/// Waits until `pid` runs `pause` and sleeps in the signal wait.
///
/// While a process sleeps in `sigwaitinfo` the kernel shows the waited-for
/// signals as unblocked in SigBlk, so the mask says nothing here; the system
/// call it is blocked in does.
pub fn wait_ready(pid: i32) {
    wait_until(
        &format!("pid {pid} runs pause and waits for signals"),
        || {
            let process = proc_stat(pid).unwrap_or_else(|| panic!("pid {pid} is gone"));
            process.comm == "pause" && in_signal_wait(pid)
        },
    );
}

fn in_signal_wait(pid: i32) -> bool {
    let path = format!("/proc/{pid}/syscall");
    let text = fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {path}: {err}"));

    text.split_whitespace().next() == Some(libc::SYS_rt_sigtimedwait.to_string().as_str())
}

/// Waits until no signal is pending for `pid` any more: it has taken them
/// all. Fails at once if it became a zombie (a signal ended it).
pub fn wait_signals_taken(pid: i32) {
    wait_until(&format!("pid {pid} takes every pending signal"), || {
        let status = proc_status(pid);
        let state = field(&status, "State");
        assert!(
            !state.starts_with('Z'),
            "pid {pid} was ended by a signal: {status}"
        );

        hex_field(&status, "SigPnd") == 0 && hex_field(&status, "ShdPnd") == 0
    });
}

/// The text of /proc/PID/status; fails the test if the process is gone.
pub fn proc_status(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|err| panic!("read /proc/{pid}/status (process gone?): {err}"))
}

/// The value of `name:` in a /proc/PID/status text.
pub fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in /proc status"))
        .trim()
}

/// A hexadecimal mask of /proc/PID/status, such as SigIgn.
pub fn hex_field(status: &str, name: &str) -> u64 {
    let text = field(status, name);
    u64::from_str_radix(text, 16).unwrap_or_else(|err| panic!("{name} {text:?}: {err}"))
}

/// One process as /proc/PID/stat describes it.
#[derive(Debug, Clone)]
pub struct ProcStat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
}

/// Reads /proc/PID/stat, or `None` if the process no longer exists.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;

    // The command name may contain spaces and ')', so split at the last ')'.
    let (head, tail) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let number = |index: usize| fields.get(index)?.parse::<u64>().ok();

    Some(ProcStat {
        pid,
        comm,
        state: fields.first()?.chars().next()?,
        ppid: i32::try_from(number(1)?).ok()?,
        cpu_ticks: number(11)? + number(12)?,
    })
}

/// Every process (zombies included) whose parent is `parent`.
pub fn children_of(parent: i32) -> Vec<ProcStat> {
    all_processes()
        .into_iter()
        .filter(|p| p.ppid == parent)
        .collect()
}

/// Every process visible in /proc.
pub fn all_processes() -> Vec<ProcStat> {
    let entries = fs::read_dir("/proc").expect("list /proc");

    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_stat)
        .collect()
}

/// Polls until `done` holds, failing the test with `what` after [`TIMEOUT`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {TIMEOUT:?}");
        thread::sleep(POLL);
    }
}
