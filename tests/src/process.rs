//! Daemons in their own process group, and one-shot helper commands.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a daemon gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A long-running process started by the harness, logging to a file.
///
/// It runs in a process group of its own, so stopping it also stops what it
/// spawned in that group; dropping it stops it.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Daemon> {
        let out = File::create(log).map_err(|e| Error::io("create log", log, e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io("duplicate log handle", log, e))?;

        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|e| Error::io("start", program_of(&command), e))?;

        Ok(Daemon {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// The daemon's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file its output goes to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the daemon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of(&self.log, lines)
    }

    /// Polls `ready` until it holds, failing with the log tail when the
    /// daemon exits first or `timeout` passes.
    pub fn wait_until(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            self.ensure_running()?;
            if Instant::now() > deadline {
                return Err(self.down(format!("not ready after {}s", timeout.as_secs())));
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Fails with the log tail when the daemon has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.down(format!("exited with {status}"))),
            Err(e) => Err(self.down(format!("cannot wait for it: {e}"))),
        }
    }

    /// An error about this daemon, carrying the end of its log.
    pub fn down(&self, reason: String) -> Error {
        Error::Daemon {
            name: self.name.clone(),
            reason,
            log: self.log.clone(),
            tail: self.log_tail(40),
        }
    }

    /// SIGTERM to the group, then SIGKILL if it has not exited in time.
    pub fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        signal_group(self.pid(), "TERM");

        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                signal_group(self.pid(), "KILL");
                return;
            }
            sleep(Duration::from_millis(50));
        }

        eprintln!("prepull-e2e: {} ignored SIGTERM, killing it", self.name);
        signal_group(self.pid(), "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends a signal to every process of a group, through kill(1) because the
/// workspace forbids unsafe code. A group already gone is not an error.
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

fn program_of(command: &Command) -> PathBuf {
    PathBuf::from(command.get_program())
}

/// The last `lines` lines of a file, or a note saying why there are none.
pub(crate) fn tail_of(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Runs a helper command to completion and returns its stdout, or an error
/// with its stderr when it fails.
pub fn run_command(command: &mut Command) -> Result<String> {
    let shown = describe(command);
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("run", program_of(command), e))?;

    if !output.status.success() {
        return Err(Error::Command {
            command: shown,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn describe(command: &Command) -> String {
    let mut parts = vec![command.get_program().to_string_lossy().into_owned()];
    parts.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;

    #[test]
    fn daemon_that_exits_reports_its_log() {
        let scratch = Scratch::new("unit").expect("scratch");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom-marker; exit 7"]);
        let mut daemon = Daemon::spawn("sh", cmd, &scratch.path().join("log")).expect("spawn");

        let err = daemon
            .wait_until(Duration::from_secs(5), || false)
            .expect_err("daemon exited, must fail");
        let text = err.to_string();
        assert!(text.contains("boom-marker"), "{text}");
        assert!(text.contains("exit status: 7"), "{text}");
    }

    #[test]
    fn stop_ends_the_whole_group() {
        let scratch = Scratch::new("unit").expect("scratch");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 300 & wait"]);
        let mut daemon = Daemon::spawn("sh", cmd, &scratch.path().join("log")).expect("spawn");
        let pgid = daemon.pid();

        daemon.stop();
        let alive = live_members(pgid);
        assert!(alive.is_empty(), "group {pgid} still has {alive:?}");
    }

    /// Members of a process group that are not zombies (this machine's
    /// PID 1 may not reap orphans, so killed ones can linger as zombies).
    fn live_members(pgid: u32) -> Vec<String> {
        let entries = fs::read_dir("/proc").expect("read /proc");
        entries
            .flatten()
            .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
                let fields: Vec<&str> = after.split(' ').collect();
                fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str())
            })
            .collect()
    }

    #[test]
    fn failed_command_carries_stderr() {
        let err = run_command(Command::new("sh").args(["-c", "echo nope >&2; exit 3"]))
            .expect_err("must fail");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
