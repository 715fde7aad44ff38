//! The pull engine: drives any [`Runtime`] through a list of images.
//!
//! For each image, in list order and with at most `parallel` in flight: ask
//! the runtime whether it holds the image (policy `if-not-present`), pull it
//! when not, retry transient failures with exponential backoff and jitter,
//! and report one [`Outcome`]. One image's failure never stops the others.
//!
//! Logging contract: each image runs inside an `image` span and ends with
//! exactly one event carrying `image`, `outcome`, `digest`, `seconds` and
//! `attempts` (plus `error_kind` and `error` on failure). Failures are
//! returned in the outcome, never as an `Err`, so the caller reports them
//! without logging them a second time.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use futures_util::StreamExt;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::auth::{Credential, Keyring};
use crate::reference::{self, ImageRef};
use crate::runtime::{FailureKind, ImageInfo, Progress, Runtime, RuntimeError};

/// When an image already on the node is pulled again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only images the runtime does not hold (for a digest-pinned
    /// reference: does not hold at that digest).
    #[default]
    IfNotPresent,
    /// Pull every image, so moving tags are refreshed.
    Always,
}

impl PullPolicy {
    /// The flag's spelling, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::IfNotPresent => "if-not-present",
            PullPolicy::Always => "always",
        }
    }
}

/// How the engine paces and bounds its work.
#[derive(Debug, Clone)]
pub struct Options {
    pub policy: PullPolicy,
    /// Pulls in flight at once; the list order is the order they start.
    pub parallel: NonZeroUsize,
    /// Extra attempts after a transient failure (0 = try once).
    pub retries: u32,
    /// Time limit for one attempt at one image (status check and pull). A
    /// timed-out attempt counts as a transient failure and is retried.
    pub timeout: Duration,
    /// Interval of the "still pulling" log line while a pull runs.
    pub progress_every: Duration,
    /// First backoff delay; each later one doubles, plus random jitter.
    pub backoff: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policy: PullPolicy::IfNotPresent,
            parallel: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
            retries: 3,
            timeout: Duration::from_secs(600),
            progress_every: Duration::from_secs(10),
            backoff: Duration::from_secs(1),
        }
    }
}

/// Longest wait between two attempts, whatever the doubling reaches.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How one image ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Already on the node; not pulled.
    Present,
    /// Pulled in this run.
    Pulled,
    /// Not on the node; the last attempt's error.
    Failed(RuntimeError),
}

impl Status {
    /// The `outcome` field of the log event.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Present => "present",
            Status::Pulled => "pulled",
            Status::Failed(_) => "failed",
        }
    }
}

/// What happened to one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub image: ImageRef,
    pub status: Status,
    /// The manifest digest the runtime recorded under the image's name.
    pub digest: Option<String>,
    /// The runtime's image id.
    pub image_id: Option<String>,
    /// Wall time from the first attempt to the outcome.
    pub seconds: f64,
    /// Attempts made (1 unless transient failures were retried).
    pub attempts: u32,
}

/// What a dry run found for one image.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Present, and the policy keeps it: would not be pulled.
    Keep(ImageInfo),
    /// Would be pulled; `present` tells whether the runtime holds it already
    /// (only with policy `always`).
    Pull { present: Option<ImageInfo> },
    /// The runtime could not say.
    Unknown(RuntimeError),
}

/// Pulls lists of images through one runtime.
#[derive(Debug)]
pub struct Engine<'a, R> {
    runtime: &'a R,
    keyring: &'a Keyring,
    options: Options,
}

impl<'a, R: Runtime> Engine<'a, R> {
    pub fn new(runtime: &'a R, keyring: &'a Keyring, options: Options) -> Self {
        Engine {
            runtime,
            keyring,
            options,
        }
    }

    /// Pulls every image and returns the outcomes in list order.
    pub async fn pull_all(&self, images: &[ImageRef]) -> Vec<Outcome> {
        self.for_each(images, |image| self.pull_one(image)).await
    }

    /// Asks the runtime about every image and pulls nothing.
    pub async fn plan(&self, images: &[ImageRef]) -> Vec<Plan> {
        self.for_each(images, |image| self.plan_one(image)).await
    }

    /// Runs `work` on each image, starting them in list order with at most
    /// `parallel` running. `buffer_unordered` frees a slot as soon as any
    /// image finishes (an ordered buffer would hold slots behind a slow
    /// first image); the results are put back in list order afterwards.
    async fn for_each<'s, T, F, Fut>(&'s self, images: &'s [ImageRef], work: F) -> Vec<T>
    where
        F: Fn(&'s ImageRef) -> Fut,
        Fut: Future<Output = T> + 's,
    {
        let mut results: Vec<(usize, T)> = futures_util::stream::iter(images.iter().enumerate())
            .map(|(index, image)| {
                let fut = work(image);
                async move { (index, fut.await) }
            })
            .buffer_unordered(self.options.parallel.get())
            .collect()
            .await;

        results.sort_by_key(|(index, _)| *index);
        results.into_iter().map(|(_, result)| result).collect()
    }

    async fn pull_one(&self, image: &ImageRef) -> Outcome {
        let span = tracing::info_span!("image", image = %image);
        async {
            let started = Instant::now();
            let (result, attempts) = self.with_retries(image).await;
            let outcome = outcome(image, result, started.elapsed(), attempts);
            log_outcome(&outcome);
            outcome
        }
        .instrument(span)
        .await
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.options.backoff)
            .with_max_delay(MAX_BACKOFF.max(self.options.backoff))
            .with_max_times(self.options.retries as usize)
    }

    /// Attempts the image until it succeeds, fails for a reason other than a
    /// transient one, or runs out of retries. Returns the attempt count too.
    async fn with_retries(
        &self,
        image: &ImageRef,
    ) -> (Result<(Status, ImageInfo), RuntimeError>, u32) {
        let attempts = AtomicU32::new(0);
        let progress = Progress::default();

        let result = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(image, &progress)
        })
        .retry(self.backoff())
        .sleep(tokio::time::sleep)
        .when(|err: &RuntimeError| err.kind.is_retryable())
        .notify(|err: &RuntimeError, delay: Duration| {
            tracing::warn!(
                image = %image,
                attempt = attempts.load(Ordering::Relaxed),
                retry_in_seconds = delay.as_secs_f64(),
                error = %err,
                "transient failure, retrying"
            );
        })
        .await;

        (result, attempts.into_inner())
    }

    /// One attempt: status check (unless the policy is `always`), then the
    /// pull, all within the per-attempt timeout.
    async fn attempt(
        &self,
        image: &ImageRef,
        progress: &Progress,
    ) -> Result<(Status, ImageInfo), RuntimeError> {
        let work = async {
            if self.options.policy == PullPolicy::IfNotPresent
                && let Some(info) = self.runtime.image_status(image).await?
            {
                return Ok((Status::Present, info));
            }

            let pull = self.pull_with_credentials(image, progress);
            let info = self.log_progress(image, progress, pull).await?;
            Ok((Status::Pulled, info))
        };

        let limit = self.options.timeout;
        tokio::time::timeout(limit, work)
            .await
            .unwrap_or_else(|_| Err(timed_out("pull", image, limit)))
    }

    /// Pulls anonymously when no credential applies; otherwise tries each
    /// credential, most specific first, moving on only when the registry
    /// refuses one. Another failure is the answer for this attempt.
    async fn pull_with_credentials(
        &self,
        image: &ImageRef,
        progress: &Progress,
    ) -> Result<ImageInfo, RuntimeError> {
        let credentials = self.keyring.lookup(image);
        let Some((last, first)) = credentials.split_last() else {
            return self.runtime.pull(image, None, progress).await;
        };

        for credential in first {
            match self.pull_as(image, credential, progress).await {
                Err(err) if err.kind == FailureKind::Unauthorized => {}
                other => return other,
            }
        }
        self.pull_as(image, last, progress)
            .await
            .map_err(|err| refused_all(err, &credentials))
    }

    async fn pull_as(
        &self,
        image: &ImageRef,
        credential: &Credential,
        progress: &Progress,
    ) -> Result<ImageInfo, RuntimeError> {
        tracing::debug!(image = %image, credential = %credential.key, "pulling with credential");
        self.runtime.pull(image, Some(credential), progress).await
    }

    /// Runs `pull`, logging a progress line every `progress_every` until it
    /// ends, with the bytes downloaded so far when the runtime reports them.
    async fn log_progress<T>(
        &self,
        image: &ImageRef,
        progress: &Progress,
        pull: impl Future<Output = T>,
    ) -> T {
        let every = self.options.progress_every;
        let started = Instant::now();
        let mut ticker = tokio::time::interval_at(started + every, every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut pull = std::pin::pin!(pull);

        loop {
            tokio::select! {
                done = &mut pull => return done,
                _ = ticker.tick() => tracing::info!(
                    image = %image,
                    seconds = started.elapsed().as_secs(),
                    bytes = progress.bytes(),
                    "still pulling"
                ),
            }
        }
    }

    /// A dry run's look at one image: one status query within the timeout.
    async fn plan_one(&self, image: &ImageRef) -> Plan {
        let limit = self.options.timeout;
        let query = self.runtime.image_status(image);
        let span = tracing::info_span!("image", image = %image);
        let status = tokio::time::timeout(limit, query.instrument(span.clone()))
            .await
            .unwrap_or_else(|_| Err(timed_out("image status", image, limit)));

        let plan = match (status, self.options.policy) {
            (Err(err), _) => Plan::Unknown(err),
            (Ok(Some(info)), PullPolicy::IfNotPresent) => Plan::Keep(info),
            (Ok(present), _) => Plan::Pull { present },
        };
        span.in_scope(|| log_plan(image, &plan));
        plan
    }
}

fn timed_out(operation: &str, image: &ImageRef, limit: Duration) -> RuntimeError {
    RuntimeError::new(
        FailureKind::Transient,
        format!("{operation} {image}: timed out after {}s", limit.as_secs()),
    )
}

/// Names every key tried when the registry refused them all, so the log
/// shows which pull secrets were offered (keys only, never secrets).
fn refused_all(err: RuntimeError, credentials: &[&Credential]) -> RuntimeError {
    if err.kind != FailureKind::Unauthorized || credentials.len() < 2 {
        return err;
    }

    let keys: Vec<&str> = credentials.iter().map(|c| c.key.as_str()).collect();
    RuntimeError::new(
        err.kind,
        format!(
            "{} (tried credentials for {})",
            err.message,
            keys.join(", ")
        ),
    )
}

fn outcome(
    image: &ImageRef,
    result: Result<(Status, ImageInfo), RuntimeError>,
    elapsed: Duration,
    attempts: u32,
) -> Outcome {
    let (status, info) = match result {
        Ok((status, info)) => (status, Some(info)),
        Err(err) => (Status::Failed(err), None),
    };

    Outcome {
        image: image.clone(),
        digest: info.as_ref().and_then(|info| repo_digest(image, info)),
        image_id: info.map(|info| info.id).filter(|id| !id.is_empty()),
        status,
        seconds: elapsed.as_secs_f64(),
        attempts,
    }
}

/// The digest recorded under the image's own name. Runtimes write repo
/// digests in their own spelling (`nginx@…` or `docker.io/library/nginx@…`),
/// so names are compared after normalising. A digest-pinned reference whose
/// runtime lists no matching entry is reported with its own digest, which
/// the runtime resolved it by.
pub fn repo_digest(image: &ImageRef, info: &ImageInfo) -> Option<String> {
    let name = image.name();
    let recorded = info.repo_digests.iter().find_map(|entry| {
        let (repo, digest) = entry.rsplit_once('@')?;
        let same_name = reference::parse(repo).ok()?.name() == name;
        same_name.then(|| digest.to_owned())
    });
    recorded.or_else(|| image.digest.clone())
}

fn log_outcome(outcome: &Outcome) {
    let seconds = (outcome.seconds * 1000.0).round() / 1000.0;
    match &outcome.status {
        Status::Failed(err) => tracing::error!(
            image = %outcome.image,
            outcome = outcome.status.as_str(),
            digest = outcome.digest.as_deref(),
            seconds,
            attempts = outcome.attempts,
            error_kind = err.kind.as_str(),
            error = %err.message,
            "image failed"
        ),
        _ => tracing::info!(
            image = %outcome.image,
            outcome = outcome.status.as_str(),
            digest = outcome.digest.as_deref(),
            image_id = outcome.image_id.as_deref(),
            seconds,
            attempts = outcome.attempts,
            "image ready"
        ),
    }
}

fn log_plan(image: &ImageRef, plan: &Plan) {
    match plan {
        Plan::Keep(info) => tracing::info!(
            image = %image,
            outcome = "present",
            digest = repo_digest(image, info).as_deref(),
            "dry run: present, would not pull"
        ),
        Plan::Pull { present } => tracing::info!(
            image = %image,
            outcome = "would_pull",
            present = present.is_some(),
            "dry run: would pull"
        ),
        Plan::Unknown(err) => tracing::error!(
            image = %image,
            outcome = "failed",
            error_kind = err.kind.as_str(),
            error = %err.message,
            "dry run: runtime could not tell whether the image is present"
        ),
    }
}

#[cfg(test)]
mod tests;
