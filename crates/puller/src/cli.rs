//! Command-line surface. Every option can also come from a `PULLER_*`
//! environment variable, so a DaemonSet can configure puller with `env:`.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Parser, ValueEnum};
use prepull::detect::RuntimeChoice;
use prepull::pull::{Options, PullPolicy};

use crate::observability::{Filter, LogFormat};

const EXIT_CODES: &str = "\
Exit codes:
  0  every image is present or was pulled (also with --best-effort when some failed)
  1  at least one image failed
  2  bad input: invalid option, image reference, images file or auth file (nothing was pulled)
  3  no container runtime answered";

/// Pre-pulls container images into the node's runtime (containerd, CRI-O,
/// Docker, Podman) through its socket, then exits.
#[derive(Debug, Parser)]
#[command(name = "puller", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Image references to pull (nginx:1.27, registry.local:5000/app@sha256:...)
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,

    /// File with one image reference per line, '#' starts a comment; repeatable or comma-separated
    #[arg(
        long,
        value_name = "PATH",
        env = "PULLER_IMAGES_FILE",
        value_delimiter = ','
    )]
    pub images_file: Vec<PathBuf>,

    /// Registry credentials: a dockerconfigjson/dockercfg secret or Docker config.json; repeatable or comma-separated
    #[arg(
        long,
        value_name = "PATH",
        env = "PULLER_AUTH_FILE",
        value_delimiter = ','
    )]
    pub auth_file: Vec<PathBuf>,

    /// Runtime API to use: auto asks each well-known socket which it speaks
    #[arg(long, value_enum, default_value_t = RuntimeArg::Auto, env = "PULLER_RUNTIME")]
    pub runtime: RuntimeArg,

    /// Runtime socket to use instead of searching the well-known paths: a unix socket path or unix://PATH
    #[arg(long, value_name = "PATH", value_parser = parse_socket, env = "PULLER_SOCKET")]
    pub socket: Option<PathBuf>,

    /// Where the host's root is mounted; the well-known socket paths are looked up under it
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/",
        env = "PULLER_HOST_ROOT"
    )]
    pub host_root: PathBuf,

    /// Pull only images not on the node, or every image
    #[arg(long, value_enum, default_value_t = PolicyArg::IfNotPresent, env = "PULLER_PULL_POLICY")]
    pub pull_policy: PolicyArg,

    /// Most pulls in flight at once (1-64)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        value_parser = clap::value_parser!(u16).range(1..=64),
        env = "PULLER_PARALLEL"
    )]
    pub parallel: u16,

    /// Extra attempts after a transient failure (0-20), with exponential backoff
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(0..=20),
        env = "PULLER_RETRIES"
    )]
    pub retries: u32,

    /// Time limit for one attempt at one image, e.g. 90s or 10m; a timeout is retried
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_timeout, env = "PULLER_TIMEOUT")]
    pub timeout: Duration,

    /// Exit 0 even when some images failed (each failure is still logged)
    #[arg(long, env = "PULLER_BEST_EFFORT", value_parser = BoolishValueParser::new())]
    pub best_effort: bool,

    /// Check the list and reach the runtime, print what would be pulled, pull nothing
    #[arg(long, env = "PULLER_DRY_RUN", value_parser = BoolishValueParser::new())]
    pub dry_run: bool,

    /// Log line format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "PULLER_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Log filter: a level (error|warn|info|debug|trace) or RUST_LOG-style directives [default: RUST_LOG, else info]
    #[arg(long, value_name = "FILTER", value_parser = Filter::parse, env = "PULLER_LOG_LEVEL")]
    pub log_level: Option<Filter>,

    /// Summary file for Kubernetes [default: /dev/termination-log, written only if it exists]
    #[arg(long, value_name = "PATH", env = "PULLER_TERMINATION_LOG")]
    pub termination_log: Option<PathBuf>,
}

/// `--runtime` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeArg {
    Auto,
    Cri,
    Docker,
}

impl From<RuntimeArg> for RuntimeChoice {
    fn from(arg: RuntimeArg) -> Self {
        match arg {
            RuntimeArg::Auto => RuntimeChoice::Auto,
            RuntimeArg::Cri => RuntimeChoice::Cri,
            RuntimeArg::Docker => RuntimeChoice::Docker,
        }
    }
}

/// `--pull-policy` values, spelled like the kubelet's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    IfNotPresent,
    Always,
}

impl From<PolicyArg> for PullPolicy {
    fn from(arg: PolicyArg) -> Self {
        match arg {
            PolicyArg::IfNotPresent => PullPolicy::IfNotPresent,
            PolicyArg::Always => PullPolicy::Always,
        }
    }
}

/// Shortest and longest `--timeout`: below a second no pull can finish, and
/// above a day a typo such as `10M` (humantime reads it as months) would hang
/// the init container instead of failing.
const TIMEOUT_MIN: Duration = Duration::from_secs(1);
const TIMEOUT_MAX: Duration = Duration::from_secs(24 * 60 * 60);

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|err| format!("{text:?}: {err}"))?;

    if !(TIMEOUT_MIN..=TIMEOUT_MAX).contains(&duration) {
        return Err(format!(
            "{text:?} is {}, outside the allowed range 1s to 24h",
            humantime::format_duration(duration)
        ));
    }
    Ok(duration)
}

/// Only unix sockets are dialled: a runtime's TCP endpoint (`tcp://`,
/// `http://`) is refused here, before anything is contacted, instead of
/// being looked up as a file name.
fn parse_socket(text: &str) -> Result<PathBuf, String> {
    match text.split_once("://") {
        None => Ok(PathBuf::from(text)),
        Some(("unix", _)) => Ok(PathBuf::from(text)),
        Some((scheme, _)) => Err(format!(
            "{text:?} is a {scheme}:// address; only unix sockets are supported (a path or unix://PATH)"
        )),
    }
}

impl Cli {
    /// The engine's options from the flags.
    pub fn options(&self) -> Options {
        Options {
            policy: self.pull_policy.into(),
            parallel: NonZeroUsize::new(usize::from(self.parallel)).unwrap_or(NonZeroUsize::MIN),
            retries: self.retries,
            timeout: self.timeout,
            ..Options::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("puller").chain(args.iter().copied()))
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let cli = parse(&["nginx"]).expect("valid");
        let options = cli.options();
        assert_eq!(options.parallel.get(), 3);
        assert_eq!(options.retries, 3);
        assert_eq!(options.timeout, Duration::from_secs(600));
        assert_eq!(options.policy, PullPolicy::IfNotPresent);
        assert_eq!(cli.runtime, RuntimeArg::Auto);
        assert_eq!(cli.host_root, PathBuf::from("/"));
        assert!(!cli.best_effort && !cli.dry_run);
        assert_eq!(cli.termination_log, None);
        assert!(cli.auth_file.is_empty());
    }

    #[test]
    fn every_option_is_read() {
        let cli = parse(&[
            "--images-file=a.txt,b.txt",
            "--images-file",
            "c.txt",
            "--auth-file=/s/a.json,/s/b.json",
            "--auth-file",
            "/s/.dockerconfigjson",
            "--runtime=docker",
            "--socket=/s.sock",
            "--host-root=/host",
            "--pull-policy=always",
            "--parallel=8",
            "--retries=0",
            "--timeout=90s",
            "--best-effort",
            "--dry-run",
            "--log-format=json",
            "--log-level=debug",
            "--termination-log=/tmp/t",
            "x",
            "y",
        ])
        .expect("valid");

        assert_eq!(cli.images, ["x", "y"]);
        let files: Vec<&str> = cli.images_file.iter().filter_map(|p| p.to_str()).collect();
        assert_eq!(files, ["a.txt", "b.txt", "c.txt"]);
        let auth: Vec<&str> = cli.auth_file.iter().filter_map(|p| p.to_str()).collect();
        assert_eq!(auth, ["/s/a.json", "/s/b.json", "/s/.dockerconfigjson"]);
        assert_eq!(
            (cli.runtime, cli.pull_policy),
            (RuntimeArg::Docker, PolicyArg::Always)
        );
        assert_eq!(cli.socket, Some(PathBuf::from("/s.sock")));
        assert_eq!((cli.parallel, cli.retries), (8, 0));
        assert_eq!(cli.timeout, Duration::from_secs(90));
        assert!(cli.best_effort && cli.dry_run);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(cli.termination_log, Some(PathBuf::from("/tmp/t")));
    }

    #[test]
    fn only_unix_sockets_are_accepted() {
        for given in ["/run/containerd/containerd.sock", "unix:///run/x.sock"] {
            let cli = parse(&["--socket", given, "x"]).expect(given);
            assert_eq!(cli.socket, Some(PathBuf::from(given)));
        }

        let err = parse(&["--socket=tcp://127.0.0.1:2375", "x"]).expect_err("tcp");
        let text = err.to_string();
        assert!(
            text.contains(
                "\"tcp://127.0.0.1:2375\" is a tcp:// address; only unix sockets are supported"
            ),
            "{text}"
        );
    }

    #[test]
    fn timeout_bounds_are_inclusive() {
        for (text, secs) in [("1s", 1), ("24h", 86_400), ("10m", 600)] {
            let cli = parse(&["--timeout", text, "x"]).expect(text);
            assert_eq!(cli.timeout, Duration::from_secs(secs), "{text}");
        }
    }

    #[test]
    fn timeout_error_names_the_value_and_the_range() {
        let err = parse(&["--timeout=10M", "x"]).expect_err("10 months");
        let text = err.to_string();
        assert!(
            text.contains("\"10M\"") && text.contains("1s to 24h"),
            "{text}"
        );
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn out_of_range_values_are_usage_errors() {
        for args in [
            &["--parallel=0"][..],
            &["--parallel=65"],
            &["--retries=21"],
            &["--timeout=0s"],
            &["--timeout=1ms"],
            &["--timeout=10M"],
            &["--timeout=24h1s"],
            &["--timeout=soon"],
            &["--pull-policy=never"],
            &["--runtime=podman"],
            &["--log-level=verbose"],
            &["--socket=tcp://127.0.0.1:2375"],
        ] {
            let err = parse(args).expect_err(args[0]);
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
