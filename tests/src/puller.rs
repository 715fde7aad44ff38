//! Running the real `puller` binary as a user would, and reading its output.

use std::fs::{self, File};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::process::tail_of;

/// How long one puller run may take before it is killed and the test fails.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// A puller invocation being prepared.
#[derive(Debug)]
pub struct PullerCommand {
    command: Command,
    out_dir: PathBuf,
    timeout: Duration,
}

impl PullerCommand {
    /// `binary` with no arguments, writing its output into `out_dir`. Every
    /// `PULLER_*` variable of the caller's environment is removed, so only
    /// what a test sets reaches puller.
    pub fn new(binary: &Path, out_dir: &Path) -> PullerCommand {
        let mut command = Command::new(binary);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PULLER_") {
                command.env_remove(key);
            }
        }
        PullerCommand {
            command,
            out_dir: out_dir.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs puller to completion (killing it after the timeout).
    pub fn run(mut self) -> Result<PullerRun> {
        let shown = describe(&self.command);
        let stdout_path = self.out_dir.join("stdout");
        let stderr_path = self.out_dir.join("stderr");
        let stdout =
            File::create(&stdout_path).map_err(|e| Error::io("create", &stdout_path, e))?;
        let stderr =
            File::create(&stderr_path).map_err(|e| Error::io("create", &stderr_path, e))?;

        let started = Instant::now();
        let mut child = self
            .command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|e| Error::io("start", self.command.get_program(), e))?;

        let status = loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| Error::io("wait for", "puller", e))?
            {
                break status;
            }
            if started.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Command {
                    command: shown,
                    status: format!("killed after {}s", self.timeout.as_secs()),
                    stderr: tail_of(&stderr_path, 30),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };

        Ok(PullerRun {
            command: shown,
            code: status.code(),
            signal: status.signal(),
            stdout: read_lossy(&stdout_path)?,
            stderr: read_lossy(&stderr_path)?,
            elapsed: started.elapsed(),
        })
    }
}

fn read_lossy(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn describe(command: &Command) -> String {
    let mut parts = vec![command.get_program().to_string_lossy().into_owned()];
    parts.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// What one puller run did.
#[derive(Debug, Clone)]
pub struct PullerRun {
    pub command: String,
    /// Exit code, `None` when killed by a signal.
    pub code: Option<i32>,
    /// The signal that killed it, when `code` is `None`.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// One per-image outcome event from puller's JSON log.
#[derive(Debug, Clone)]
pub struct ImageEvent {
    pub image: String,
    pub outcome: String,
    pub digest: Option<String>,
    pub seconds: f64,
    pub attempts: u64,
    /// The whole log line, for assertions on other fields.
    pub raw: Value,
}

impl PullerRun {
    /// How the run ended, in words: `exit code 0` or `killed by signal 9`.
    pub fn ending(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "ended without an exit code or signal".to_owned(),
        }
    }

    /// The command, exit code and output, for assertion messages.
    pub fn context(&self) -> String {
        format!(
            "command: {}\nexit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }

    /// Every non-empty stderr line parsed as JSON; any line that does not
    /// parse is an error naming it.
    pub fn json_lines(&self) -> Result<Vec<Value>> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .map_err(|e| Error::parse(format!("puller log line {line:?}"), e.to_string()))
            })
            .collect()
    }

    /// The per-image outcome events of a `--log-format json` run.
    pub fn image_events(&self) -> Result<Vec<ImageEvent>> {
        let lines = self.json_lines()?;
        Ok(lines.into_iter().filter_map(image_event).collect())
    }

    /// The outcome event for `image` (as the user wrote it or normalised).
    pub fn event_for(&self, image: &str) -> Result<ImageEvent> {
        let events = self.image_events()?;
        events
            .into_iter()
            .find(|e| e.image == image || e.image.ends_with(&format!("/{image}")))
            .ok_or_else(|| Error::parse("puller log", format!("no outcome event for {image}")))
    }
}

/// A field of a tracing JSON line, whether flattened or under `fields`.
fn field<'a>(line: &'a Value, key: &str) -> Option<&'a Value> {
    line.get(key).or_else(|| line.get("fields")?.get(key))
}

fn image_event(line: Value) -> Option<ImageEvent> {
    let image = field(&line, "image")?.as_str()?.to_string();
    let outcome = field(&line, "outcome")?.as_str()?.to_string();
    let digest = field(&line, "digest")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let seconds = field(&line, "seconds").and_then(Value::as_f64)?;
    let attempts = field(&line, "attempts").and_then(Value::as_u64)?;

    Some(ImageEvent {
        image,
        outcome,
        digest,
        seconds,
        attempts,
        raw: line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with_stderr(stderr: &str) -> PullerRun {
        PullerRun {
            command: "puller".into(),
            code: Some(0),
            signal: None,
            stdout: String::new(),
            stderr: stderr.into(),
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn the_ending_is_said_plainly() {
        let mut run = run_with_stderr("");
        assert_eq!(run.ending(), "exit code 0");

        run.code = Some(3);
        assert_eq!(run.ending(), "exit code 3");

        (run.code, run.signal) = (None, Some(9));
        assert_eq!(run.ending(), "killed by signal 9");
    }

    #[test]
    fn reads_events_flat_or_nested() {
        let run = run_with_stderr(concat!(
            r#"{"level":"INFO","fields":{"image":"r/a:1","outcome":"pulled","digest":"sha256:1","seconds":0.5,"attempts":1}}"#,
            "\n",
            r#"{"level":"INFO","image":"r/b:1","outcome":"present","digest":"sha256:2","seconds":0.0,"attempts":0}"#,
            "\n",
            r#"{"level":"INFO","fields":{"message":"summary","pulled":1}}"#,
        ));
        let events = run.image_events().expect("events");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].outcome, "pulled");
        assert_eq!(events[1].digest.as_deref(), Some("sha256:2"));
        assert_eq!(run.event_for("r/b:1").expect("b").attempts, 0);
    }

    #[test]
    fn a_line_that_is_not_json_is_an_error() {
        let run = run_with_stderr("{\"a\":1}\nplain text\n");
        let err = run.json_lines().expect_err("must fail");
        assert!(err.to_string().contains("plain text"), "{err}");
    }
}
