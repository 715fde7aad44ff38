//! One run: check the list, reach the runtime, pull (or plan), report.
//!
//! The order is the contract behind the exit codes: the whole list and
//! every auth file are checked before any socket is touched, so exit 2 means
//! the runtime was never asked anything.

use std::error::Error;
use std::time::Instant;

use prepull::auth::{AuthError, Keyring};
use prepull::detect::{self, DetectError};
use prepull::list::{self, ListError};
use prepull::pull::Engine;
use prepull::reference::ImageRef;
use prepull::report::{DryRun, Summary, TerminationLog};

use crate::cli::Cli;
use crate::credentials;

/// Every image is present or pulled.
pub const OK: u8 = 0;
/// At least one image failed (and `--best-effort` was not given).
pub const FAILED: u8 = 1;
/// Invalid option, reference or images file; nothing was contacted.
pub const BAD_INPUT: u8 = 2;
/// No container runtime answered.
pub const UNREACHABLE: u8 = 3;

/// Why a run stopped before any image outcome.
#[derive(Debug, thiserror::Error)]
enum Fatal {
    #[error(transparent)]
    List(#[from] ListError),

    #[error(transparent)]
    Auth(#[from] AuthError),

    #[error(transparent)]
    Detect(#[from] DetectError),

    #[error("start the async runtime")]
    Start(#[source] std::io::Error),
}

impl Fatal {
    fn exit_code(&self) -> u8 {
        match self {
            Fatal::List(_) | Fatal::Auth(_) => BAD_INPUT,
            Fatal::Detect(_) => UNREACHABLE,
            Fatal::Start(_) => FAILED,
        }
    }

    fn headline(&self) -> &'static str {
        match self {
            Fatal::List(_) => "nothing pulled: the image list is not valid",
            Fatal::Auth(_) => "nothing pulled: an auth file is not valid",
            Fatal::Detect(_) => "nothing pulled: no usable container runtime",
            Fatal::Start(_) => "nothing pulled: puller could not start",
        }
    }
}

/// The text report of a finished run and whether every image is fine.
struct Finished {
    report: String,
    all_ok: bool,
}

/// Runs puller and returns its exit code. Every outcome is logged exactly
/// once here or in the engine; the report also goes to stdout and to the
/// termination log.
pub fn run(cli: &Cli) -> u8 {
    let termination = match &cli.termination_log {
        Some(path) => TerminationLog::explicit(path),
        None => TerminationLog::default(),
    };

    match try_run(cli) {
        Ok(finished) => {
            println!("{}", finished.report);
            write_termination(&termination, &finished.report);
            exit_code(cli, finished.all_ok)
        }
        Err(fatal) => {
            let chain = error_chain(&fatal);
            tracing::error!(error = %chain, exit_code = fatal.exit_code(), "{}", fatal.headline());
            write_termination(&termination, &format!("{}: {chain}", fatal.headline()));
            fatal.exit_code()
        }
    }
}

fn try_run(cli: &Cli) -> Result<Finished, Fatal> {
    let entries = list::collect(&cli.images, &cli.images_file)?;
    let images: Vec<ImageRef> = entries.into_iter().map(|entry| entry.image).collect();
    let keyring = credentials::load(&cli.auth_file)?;
    let options = cli.options();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        images = images.len(),
        policy = options.policy.as_str(),
        parallel = options.parallel.get(),
        retries = options.retries,
        timeout_seconds = options.timeout.as_secs(),
        dry_run = cli.dry_run,
        "puller starting"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Fatal::Start)?;
    runtime.block_on(pull_or_plan(cli, &images, &keyring))
}

/// Pulls with the keyring's credentials (anonymously for an image no key
/// matches); a dry run only logs which keys would be offered.
async fn pull_or_plan(
    cli: &Cli,
    images: &[ImageRef],
    keyring: &Keyring,
) -> Result<Finished, Fatal> {
    let connected =
        detect::connect(cli.runtime.into(), cli.socket.as_deref(), &cli.host_root).await?;
    credentials::log_matches(keyring, images);
    let engine = Engine::new(&connected.runtime, keyring, cli.options());

    if cli.dry_run {
        let plans = engine.plan(images).await;
        let report = DryRun::new(images, &plans);
        return Ok(Finished {
            all_ok: report.all_ok(),
            report: report.to_string(),
        });
    }

    let started = Instant::now();
    let outcomes = engine.pull_all(images).await;
    let summary = Summary::new(&outcomes, started.elapsed());
    tracing::info!(
        present = summary.present,
        pulled = summary.pulled,
        failed = summary.failed(),
        seconds = (summary.seconds * 10.0).round() / 10.0,
        "summary"
    );
    Ok(Finished {
        all_ok: summary.all_ok(),
        report: summary.to_string(),
    })
}

fn exit_code(cli: &Cli, all_ok: bool) -> u8 {
    match (all_ok, cli.best_effort) {
        (true, _) => OK,
        (false, true) => {
            tracing::warn!("some images failed; exiting 0 because of --best-effort");
            OK
        }
        (false, false) => FAILED,
    }
}

/// A termination message that cannot be written does not change the exit
/// code: the images are on the node (or not) either way.
fn write_termination(log: &TerminationLog, text: &str) {
    match log.write(text) {
        Ok(true) => tracing::debug!(path = %log.path.display(), "termination message written"),
        Ok(false) => {}
        Err(err) => tracing::warn!(error = %error_chain(&err), "termination message not written"),
    }
}

/// `err` and each of its sources, joined with ": ". A cause whose text is
/// already there is left out: some errors (the auth file's read error)
/// print their source themselves and also return it from `source()`.
fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn error_chain_joins_every_cause() {
        let err = Fatal::List(ListError::Read {
            path: PathBuf::from("images.txt"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
        assert_eq!(
            error_chain(&err),
            "read images file images.txt: no such file"
        );
        assert_eq!(err.exit_code(), BAD_INPUT);
    }

    #[test]
    fn a_bad_auth_file_is_bad_input() {
        let err = Fatal::Auth(AuthError::Read {
            file: PathBuf::from("/auth/.dockerconfigjson"),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        });

        assert_eq!(err.exit_code(), BAD_INPUT);
        assert_eq!(err.headline(), "nothing pulled: an auth file is not valid");
        assert_eq!(
            error_chain(&err),
            "read auth file /auth/.dockerconfigjson: denied"
        );
    }
}
