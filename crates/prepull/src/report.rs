//! The run's summary: counts, total time and one line per failed image, as
//! text for stdout and for the pod's termination message.
//!
//! Kubernetes keeps at most 4096 bytes of a container's termination message,
//! so `kubectl get pod -o jsonpath='{..terminated.message}'` shows what one
//! node's puller did. The counts line comes first so that it survives the cut.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::pull::{Outcome, Plan, Status, repo_digest};
use crate::reference::ImageRef;
use crate::runtime::FailureKind;

/// Where the kubelet reads a container's termination message by default.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

/// The kubelet's limit on one container's termination message.
pub const TERMINATION_LOG_LIMIT: usize = 4096;

/// What a cut message ends with, so a reader knows lines are missing.
const CUT_MARK: &str = "\n[cut at 4096 bytes]";

/// One image that did not make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub image: String,
    pub kind: FailureKind,
    pub message: String,
}

/// Counts and failures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub present: usize,
    pub pulled: usize,
    pub failures: Vec<Failure>,
    pub seconds: f64,
}

impl Summary {
    pub fn new(outcomes: &[Outcome], elapsed: Duration) -> Self {
        let count = |wanted: &Status| outcomes.iter().filter(|o| &o.status == wanted).count();
        let failures = outcomes
            .iter()
            .filter_map(|outcome| match &outcome.status {
                Status::Failed(err) => Some(Failure {
                    image: outcome.image.to_string(),
                    kind: err.kind,
                    message: err.message.clone(),
                }),
                _ => None,
            })
            .collect();

        Summary {
            present: count(&Status::Present),
            pulled: count(&Status::Pulled),
            failures,
            seconds: elapsed.as_secs_f64(),
        }
    }

    pub fn failed(&self) -> usize {
        self.failures.len()
    }

    pub fn total(&self) -> usize {
        self.present + self.pulled + self.failed()
    }

    /// True when every image is on the node.
    pub fn all_ok(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        let noun = if total == 1 { "image" } else { "images" };
        write!(
            f,
            "{total} {noun}: {} present, {} pulled, {} failed in {:.1}s",
            self.present,
            self.pulled,
            self.failed(),
            self.seconds
        )?;
        for failure in &self.failures {
            write!(
                f,
                "\nfailed {} ({}): {}",
                failure.image,
                failure.kind.as_str(),
                failure.message
            )?;
        }
        Ok(())
    }
}

/// What a dry run found: the counts line, then one line per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    pub present: usize,
    pub to_pull: usize,
    pub unknown: usize,
    lines: Vec<String>,
}

impl DryRun {
    pub fn new(images: &[ImageRef], plans: &[Plan]) -> Self {
        let mut report = DryRun {
            present: 0,
            to_pull: 0,
            unknown: 0,
            lines: Vec::with_capacity(plans.len()),
        };
        for (image, plan) in images.iter().zip(plans) {
            let line = report.count(image, plan);
            report.lines.push(line);
        }
        report
    }

    fn count(&mut self, image: &ImageRef, plan: &Plan) -> String {
        match plan {
            Plan::Keep(info) => {
                self.present += 1;
                let digest = repo_digest(image, info).unwrap_or_default();
                format!("present {image} {digest}").trim_end().to_owned()
            }
            Plan::Pull { present: None } => {
                self.to_pull += 1;
                format!("pull {image}")
            }
            Plan::Pull { present: Some(_) } => {
                self.to_pull += 1;
                format!("pull {image} (present; policy always)")
            }
            Plan::Unknown(err) => {
                self.unknown += 1;
                format!("unknown {image} ({}): {}", err.kind.as_str(), err.message)
            }
        }
    }

    /// True when the runtime answered for every image.
    pub fn all_ok(&self) -> bool {
        self.unknown == 0
    }
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dry run: {} present, {} to pull, {} unknown",
            self.present, self.to_pull, self.unknown
        )?;
        for line in &self.lines {
            write!(f, "\n{line}")?;
        }
        Ok(())
    }
}

/// `text` cut to at most `limit` bytes on a character boundary, ending with
/// a mark when anything was cut.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }

    let mut end = limit.saturating_sub(CUT_MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARK}", &text[..end])
}

/// Where the summary goes for Kubernetes.
///
/// The default path is written only when it already exists: the kubelet
/// creates it inside a pod, and outside one `/dev` is no place to create
/// files. A path the user gave explicitly is created when missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminationLog {
    pub path: PathBuf,
    pub explicit: bool,
}

/// Failure to write the termination message.
#[derive(Debug, thiserror::Error)]
#[error("write termination message to {}", path.display())]
pub struct ReportError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl Default for TerminationLog {
    fn default() -> Self {
        TerminationLog {
            path: PathBuf::from(DEFAULT_TERMINATION_LOG),
            explicit: false,
        }
    }
}

impl TerminationLog {
    pub fn explicit(path: impl Into<PathBuf>) -> Self {
        TerminationLog {
            path: path.into(),
            explicit: true,
        }
    }

    /// Writes the summary cut to the kubelet's limit. Returns whether it was
    /// written (false: default path absent, so not in a pod).
    pub fn write(&self, summary: &str) -> Result<bool, ReportError> {
        if !self.explicit && !self.path.exists() {
            return Ok(false);
        }

        write_termination_log(&self.path, summary)?;
        Ok(true)
    }
}

/// Writes `summary`, cut to 4096 bytes, to `path`, replacing what was there.
pub fn write_termination_log(path: &Path, summary: &str) -> Result<(), ReportError> {
    let text = truncate(summary, TERMINATION_LOG_LIMIT);
    std::fs::write(path, text).map_err(|source| ReportError {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::parse;
    use crate::runtime::RuntimeError;

    fn outcome(image: &str, status: Status) -> Outcome {
        Outcome {
            image: parse(image).expect("valid image"),
            status,
            digest: None,
            image_id: None,
            seconds: 1.0,
            attempts: 1,
        }
    }

    fn not_found(message: &str) -> Status {
        Status::Failed(RuntimeError::new(FailureKind::NotFound, message))
    }

    /// A path in a fresh directory, removed with the guard.
    fn temp_path(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("create temp dir");
        let path = dir.path().join(name);
        (dir, path)
    }

    #[test]
    fn summary_counts_each_outcome_and_lists_failures() {
        let outcomes = [
            outcome("a", Status::Present),
            outcome("b", Status::Pulled),
            outcome("c", Status::Pulled),
            outcome("d", not_found("registry answered 404")),
        ];

        let summary = Summary::new(&outcomes, Duration::from_millis(12_340));

        assert_eq!(
            summary.to_string(),
            "4 images: 1 present, 2 pulled, 1 failed in 12.3s\n\
             failed docker.io/library/d:latest (not_found): registry answered 404"
        );
        assert!(!summary.all_ok());
    }

    #[test]
    fn summary_without_failures_is_one_line() {
        let summary = Summary::new(&[outcome("a", Status::Pulled)], Duration::from_secs(2));
        assert_eq!(
            summary.to_string(),
            "1 image: 0 present, 1 pulled, 0 failed in 2.0s"
        );
        assert!(summary.all_ok());
    }

    #[test]
    fn dry_run_lists_each_image_after_the_counts() {
        let images = [parse("a").expect("valid"), parse("b").expect("valid")];
        let info = crate::runtime::ImageInfo {
            repo_digests: vec!["a@sha256:1".to_owned()],
            ..Default::default()
        };
        let plans = [Plan::Keep(info), Plan::Pull { present: None }];

        let report = DryRun::new(&images, &plans);

        assert_eq!(
            report.to_string(),
            "dry run: 1 present, 1 to pull, 0 unknown\n\
             present docker.io/library/a:latest sha256:1\n\
             pull docker.io/library/b:latest"
        );
        assert!(report.all_ok());
    }

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(truncate("abc", 4096), "abc");
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_with_a_mark() {
        // "é" is two bytes, so an odd limit falls inside a character.
        let text = "é".repeat(3000);

        let cut = truncate(&text, 4095);

        assert!(cut.len() <= 4095, "{}", cut.len());
        assert!(cut.ends_with(CUT_MARK));
        assert!(cut.len() >= 4095 - CUT_MARK.len() - 1, "{}", cut.len());
        assert!(text.starts_with(cut.trim_end_matches(CUT_MARK)));
    }

    #[test]
    fn default_path_is_written_only_when_it_exists() {
        let (_dir, path) = temp_path("absent");
        let absent = TerminationLog {
            path,
            explicit: false,
        };
        assert!(!absent.write("x").expect("no error"));
        assert!(!absent.path.exists());

        let (_dir, path) = temp_path("present");
        let present = TerminationLog {
            path,
            explicit: false,
        };
        std::fs::write(&present.path, "old").expect("create file");
        assert!(present.write("new").expect("written"));
        assert_eq!(std::fs::read_to_string(&present.path).expect("read"), "new");
    }

    #[test]
    fn explicit_path_is_created_and_capped_at_4096_bytes() {
        let (_dir, path) = temp_path("explicit");
        let log = TerminationLog::explicit(path);

        assert!(log.write(&"x".repeat(10_000)).expect("written"));

        let written = std::fs::read_to_string(&log.path).expect("read");
        assert_eq!(written.len(), TERMINATION_LOG_LIMIT);
    }

    #[test]
    fn unwritable_path_is_an_error_naming_it() {
        let log = TerminationLog::explicit("/nonexistent-dir/termination-log");
        let err = log.write("x").expect_err("cannot write");
        assert_eq!(
            err.to_string(),
            "write termination message to /nonexistent-dir/termination-log"
        );
    }
}
