//! The engine against a recording fake runtime, on tokio's paused clock: a
//! pull "takes" simulated seconds, so timing assertions are exact and fast.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// What the fake does on one pull call.
#[derive(Debug, Clone, Copy)]
enum Step {
    Succeed,
    Fail(FailureKind),
    Hang,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Status(String),
    Pull {
        image: String,
        credential: Option<String>,
    },
    Done(String),
}

/// Records every call; pulls take `pull_time` (per image, default 1 s) and
/// follow the image's script of steps (default: succeed).
#[derive(Debug, Default)]
struct Fake {
    present: HashMap<String, ImageInfo>,
    pull_time: HashMap<String, Duration>,
    scripts: Mutex<HashMap<String, VecDeque<Step>>>,
    calls: Mutex<Vec<Call>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: AtomicUsize,
}

/// Keeps the in-flight count right when a pull future is dropped (timeout).
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn digest_of(name: &str) -> String {
    let sum: u64 = name.bytes().map(u64::from).sum();
    format!("sha256:{sum:064x}")
}

/// What the fake holds after pulling `image`: an unrelated repo digest
/// first, then its own in Docker's short spelling.
fn info_for(image: &ImageRef) -> ImageInfo {
    let short = image.name().replace("docker.io/library/", "");
    ImageInfo {
        id: format!("sha256:id-{}", image.repository.replace('/', "-")),
        repo_digests: vec![
            format!("other.example/x@{}", digest_of("other")),
            format!("{short}@{}", digest_of(&image.name())),
        ],
        size: None,
    }
}

impl Fake {
    fn with_present(mut self, image: &str) -> Self {
        let image = img(image);
        self.present.insert(image.to_string(), info_for(&image));
        self
    }

    fn with_pull_time(mut self, image: &str, time: Duration) -> Self {
        self.pull_time.insert(img(image).to_string(), time);
        self
    }

    fn with_script(self, image: &str, steps: &[Step]) -> Self {
        self.lock_scripts()
            .insert(img(image).to_string(), steps.iter().copied().collect());
        self
    }

    fn lock_scripts(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Step>>> {
        self.scripts.lock().expect("scripts lock")
    }

    fn record(&self, call: Call) {
        self.calls.lock().expect("calls lock").push(call);
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls lock").clone()
    }

    fn pulls(&self) -> Vec<(String, Option<String>)> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Pull { image, credential } => Some((image, credential)),
                _ => None,
            })
            .collect()
    }

    fn finished(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Done(image) => Some(image),
                _ => None,
            })
            .collect()
    }

    fn enter(&self) -> InFlight {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(Arc::clone(&self.in_flight))
    }
}

impl Runtime for Fake {
    fn protocol(&self) -> crate::runtime::Protocol {
        crate::runtime::Protocol::Cri
    }

    fn describe(&self) -> String {
        "fake 1.0".to_owned()
    }

    async fn image_status(&self, image: &ImageRef) -> Result<Option<ImageInfo>, RuntimeError> {
        self.record(Call::Status(image.to_string()));
        Ok(self.present.get(&image.to_string()).cloned())
    }

    async fn pull(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
        progress: &Progress,
    ) -> Result<ImageInfo, RuntimeError> {
        let key = image.to_string();
        self.record(Call::Pull {
            image: key.clone(),
            credential: credential.map(|c| c.key.clone()),
        });
        let _guard = self.enter();
        progress.set_bytes(1234);

        let step = self
            .lock_scripts()
            .get_mut(&key)
            .and_then(VecDeque::pop_front);
        let time = self.pull_time.get(&key).copied();
        tokio::time::sleep(time.unwrap_or(Duration::from_secs(1))).await;
        self.record(Call::Done(key.clone()));

        match step.unwrap_or(Step::Succeed) {
            Step::Succeed => Ok(info_for(image)),
            Step::Fail(kind) => Err(RuntimeError::new(kind, format!("pull {key}: {kind:?}"))),
            Step::Hang => std::future::pending().await,
        }
    }
}

fn img(text: &str) -> ImageRef {
    reference::parse(text).unwrap_or_else(|err| panic!("{err}"))
}

fn imgs(texts: &[&str]) -> Vec<ImageRef> {
    texts.iter().map(|t| img(t)).collect()
}

fn names(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| img(t).to_string()).collect()
}

fn options(parallel: usize) -> Options {
    Options {
        parallel: NonZeroUsize::new(parallel).expect("parallel > 0"),
        ..Options::default()
    }
}

async fn run(fake: &Fake, images: &[&str], options: Options) -> Vec<Outcome> {
    Engine::new(fake, &Keyring::default(), options)
        .pull_all(&imgs(images))
        .await
}

fn failure(outcome: &Outcome) -> Option<FailureKind> {
    match &outcome.status {
        Status::Failed(err) => Some(err.kind),
        _ => None,
    }
}

const SIX: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

#[tokio::test(start_paused = true)]
async fn pulls_start_in_list_order() {
    let fake = Fake::default()
        .with_pull_time("a", Duration::from_secs(5))
        .with_pull_time("c", Duration::from_secs(3));

    run(&fake, &SIX, options(3)).await;

    let started: Vec<String> = fake.pulls().into_iter().map(|(image, _)| image).collect();
    assert_eq!(started, names(&SIX));
}

#[tokio::test(start_paused = true)]
async fn never_more_than_parallel_pulls_in_flight() {
    let fake = Fake::default();

    let outcomes = run(&fake, &["a", "b", "c", "d", "e", "f", "g"], options(3)).await;

    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 3);
    assert!(outcomes.iter().all(|o| o.status == Status::Pulled));
}

#[tokio::test(start_paused = true)]
async fn slow_image_does_not_hold_back_the_ones_after_it() {
    let fake = Fake::default().with_pull_time("a", Duration::from_secs(100));
    let started = Instant::now();

    let outcomes = run(&fake, &["a", "b", "c", "d", "e"], options(2)).await;

    assert_eq!(fake.finished(), names(&["b", "c", "d", "e", "a"]));
    assert_eq!(started.elapsed(), Duration::from_secs(100));
    let listed: Vec<String> = outcomes.iter().map(|o| o.image.to_string()).collect();
    assert_eq!(
        listed,
        names(&["a", "b", "c", "d", "e"]),
        "outcomes in list order"
    );
}

#[tokio::test(start_paused = true)]
async fn only_transient_failures_are_retried() {
    use FailureKind::*;
    let transient_twice = [Step::Fail(Transient), Step::Fail(Transient), Step::Succeed];
    let fake = Fake::default()
        .with_script("flaky", &transient_twice)
        .with_script("missing", &[Step::Fail(NotFound), Step::Succeed])
        .with_script("private", &[Step::Fail(Unauthorized), Step::Succeed])
        .with_script("broken", &[Step::Fail(Invalid), Step::Succeed]);

    let outcomes = run(
        &fake,
        &["flaky", "missing", "private", "broken"],
        options(4),
    )
    .await;

    let got: Vec<(Option<FailureKind>, u32)> =
        outcomes.iter().map(|o| (failure(o), o.attempts)).collect();
    assert_eq!(
        got,
        [
            (None, 3),
            (Some(NotFound), 1),
            (Some(Unauthorized), 1),
            (Some(Invalid), 1)
        ]
    );
    assert_eq!(fake.pulls().len(), 6);
}

#[tokio::test(start_paused = true)]
async fn persistent_transient_failure_gives_up_after_the_retries_with_growing_waits() {
    let fake = Fake::default().with_script("x", &[Step::Fail(FailureKind::Transient); 3]);
    let started = Instant::now();
    let opts = Options {
        retries: 2,
        ..options(1)
    };

    let outcomes = run(&fake, &["x"], opts).await;

    assert_eq!(failure(&outcomes[0]), Some(FailureKind::Transient));
    assert_eq!(outcomes[0].attempts, 3);
    // Three 1 s pulls plus waits of 1 s and 2 s, each with up to as much jitter.
    let waited = started.elapsed() - Duration::from_secs(3);
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn hung_pull_times_out_as_transient_and_is_retried() {
    let fake = Fake::default()
        .with_script("stuck", &[Step::Hang, Step::Succeed])
        .with_script("dead", &[Step::Hang, Step::Hang]);
    let opts = Options {
        retries: 1,
        timeout: Duration::from_secs(60),
        ..options(2)
    };

    let outcomes = run(&fake, &["stuck", "dead"], opts).await;

    assert_eq!(
        (&outcomes[0].status, outcomes[0].attempts),
        (&Status::Pulled, 2)
    );
    assert!(outcomes[0].seconds >= 61.0, "{}", outcomes[0].seconds);
    assert_eq!(
        outcomes[1].status,
        Status::Failed(RuntimeError::new(
            FailureKind::Transient,
            "pull docker.io/library/dead:latest: timed out after 60s"
        ))
    );
    assert_eq!(fake.in_flight.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn present_image_is_reported_and_not_pulled() {
    let fake = Fake::default().with_present("nginx:1.27");

    let outcomes = run(&fake, &["nginx:1.27", "redis"], options(3)).await;

    assert_eq!(outcomes[0].status, Status::Present);
    assert_eq!(
        outcomes[0].digest,
        Some(digest_of("docker.io/library/nginx"))
    );
    assert_eq!(
        outcomes[0].image_id.as_deref(),
        Some("sha256:id-library-nginx")
    );
    assert_eq!(outcomes[1].status, Status::Pulled);
    assert_eq!(fake.pulls(), [(img("redis").to_string(), None)]);
}

#[tokio::test(start_paused = true)]
async fn always_policy_pulls_present_images_without_asking() {
    let fake = Fake::default().with_present("nginx");
    let opts = Options {
        policy: PullPolicy::Always,
        ..options(3)
    };

    let outcomes = run(&fake, &["nginx"], opts).await;

    assert_eq!(outcomes[0].status, Status::Pulled);
    assert!(!fake.calls().iter().any(|c| matches!(c, Call::Status(_))));
    assert_eq!(fake.pulls().len(), 1);
}

fn keyring(keys: &[&str]) -> Keyring {
    let auths: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| format!(r#""{key}": {{"username": "u{i}", "password": "p{i}"}}"#))
        .collect();
    let json = format!(r#"{{"auths": {{{}}}}}"#, auths.join(", "));
    Keyring::from_bytes(Path::new("test-auth.json"), json.as_bytes()).expect("valid auth file")
}

const KEYS: [&str; 3] = [
    "localhost:5000/team/app",
    "localhost:5000/team",
    "localhost:5000",
];
const PRIVATE: &str = "localhost:5000/team/app:v1";

async fn run_with_keys(fake: &Fake, keys: &[&str]) -> Outcome {
    let keyring = keyring(keys);
    let engine = Engine::new(fake, &keyring, options(1));
    let mut outcomes = engine.pull_all(&imgs(&[PRIVATE])).await;
    outcomes.remove(0)
}

fn credentials_used(fake: &Fake) -> Vec<Option<String>> {
    fake.pulls().into_iter().map(|(_, key)| key).collect()
}

#[tokio::test(start_paused = true)]
async fn credentials_are_tried_most_specific_first_until_one_is_accepted() {
    let refused = Step::Fail(FailureKind::Unauthorized);
    let fake = Fake::default().with_script(PRIVATE, &[refused, refused, Step::Succeed]);

    let outcome = run_with_keys(&fake, &KEYS).await;

    assert_eq!((outcome.status, outcome.attempts), (Status::Pulled, 1));
    let tried: Vec<Option<String>> = KEYS.iter().map(|k| Some((*k).to_owned())).collect();
    assert_eq!(credentials_used(&fake), tried);
}

#[tokio::test(start_paused = true)]
async fn a_failure_other_than_unauthorized_ends_the_credential_walk() {
    let fake = Fake::default().with_script(PRIVATE, &[Step::Fail(FailureKind::NotFound)]);

    let outcome = run_with_keys(&fake, &KEYS).await;

    assert_eq!(failure(&outcome), Some(FailureKind::NotFound));
    assert_eq!(credentials_used(&fake), [Some(KEYS[0].to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn refusal_of_every_credential_names_each_key() {
    let fake = Fake::default().with_script(PRIVATE, &[Step::Fail(FailureKind::Unauthorized); 2]);

    let outcome = run_with_keys(&fake, &KEYS[1..]).await;

    let Status::Failed(err) = outcome.status else {
        panic!("expected a failure, got {:?}", outcome.status);
    };
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert!(
        err.message
            .ends_with("(tried credentials for localhost:5000/team, localhost:5000)"),
        "{}",
        err.message
    );
}

#[tokio::test(start_paused = true)]
async fn image_without_matching_credential_is_pulled_anonymously() {
    let fake = Fake::default();

    run_with_keys(&fake, &["other.example"]).await;

    assert_eq!(credentials_used(&fake), [None]);
}

#[tokio::test(start_paused = true)]
async fn one_failed_image_does_not_stop_the_others() {
    let fake = Fake::default().with_script("b", &[Step::Fail(FailureKind::NotFound)]);

    let outcomes = run(&fake, &["a", "b", "c"], options(1)).await;

    let statuses: Vec<&str> = outcomes.iter().map(|o| o.status.as_str()).collect();
    assert_eq!(statuses, ["pulled", "failed", "pulled"]);
    assert_eq!(outcomes[2].digest, Some(digest_of("docker.io/library/c")));
}

#[test]
fn repo_digest_matches_the_name_in_any_spelling() {
    let image = img("localhost:5000/app:v1");
    let info = ImageInfo {
        repo_digests: vec![
            "localhost:5000/other@sha256:1".to_owned(),
            "localhost:5000/app@sha256:2".to_owned(),
        ],
        ..ImageInfo::default()
    };
    assert_eq!(repo_digest(&image, &info).as_deref(), Some("sha256:2"));
    assert_eq!(repo_digest(&image, &ImageInfo::default()), None);
}

#[test]
fn pinned_reference_falls_back_to_its_own_digest() {
    let pinned = format!("app@sha256:{}", "a".repeat(64));
    let image = img(&pinned);
    assert_eq!(repo_digest(&image, &ImageInfo::default()), image.digest);
}

#[tokio::test(start_paused = true)]
async fn dry_run_asks_status_and_pulls_nothing() {
    let fake = Fake::default().with_present("kept");
    let keyring = Keyring::default();
    let engine = Engine::new(&fake, &keyring, options(3));

    let plans = engine.plan(&imgs(&["kept", "new"])).await;

    assert!(matches!(&plans[0], Plan::Keep(info) if info.id == "sha256:id-library-kept"));
    assert_eq!(plans[1], Plan::Pull { present: None });
    assert!(fake.pulls().is_empty());
}

mod log_events {
    //! The log contract, read back from JSON lines.

    use super::*;
    use serde_json::Value;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log lock").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn events(captured: &Captured) -> Vec<Value> {
        let bytes = captured.0.lock().expect("log lock").clone();
        String::from_utf8(bytes)
            .expect("utf-8 log")
            .lines()
            .map(|line| serde_json::from_str(line).expect("json line"))
            .collect()
    }

    fn with_message<'a>(events: &'a [Value], message: &str) -> Vec<&'a Value> {
        events
            .iter()
            .filter(|e| e["fields"]["message"] == message)
            .collect()
    }

    /// Set in the child process that runs the log test alone.
    const ALONE: &str = "PREPULL_LOG_TEST_ALONE";

    /// tracing caches per callsite, process-wide, whether anyone listens.
    /// Tests on other threads that run the engine with no subscriber race
    /// with this test's scoped one and can leave an event's callsite marked
    /// "never" (seen as a missing event one run in five, even after
    /// `rebuild_interest_cache`). So the test runs again in a child process
    /// of this test binary, where it is the only test.
    #[test]
    fn each_image_ends_with_one_event_and_long_pulls_log_progress() {
        if std::env::var_os(ALONE).is_some() {
            return log_contract_holds();
        }

        let name =
            "pull::tests::log_events::each_image_ends_with_one_event_and_long_pulls_log_progress";
        let exe = std::env::current_exe().expect("test binary path");
        let output = std::process::Command::new(exe)
            .args([name, "--exact", "--test-threads=1", "--nocapture"])
            .env(ALONE, "1")
            .output()
            .expect("run the log test alone");

        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "log test in its own process failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[tokio::main(flavor = "current_thread", start_paused = true)]
    async fn log_contract_holds() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let fake = Fake::default()
            .with_present("a")
            .with_pull_time("b", Duration::from_secs(25))
            .with_script("c", &[Step::Fail(FailureKind::NotFound)]);

        run(&fake, &["a", "b", "c"], options(3)).await;

        let events = events(&captured);
        let ready = with_message(&events, "image ready");
        let failed = with_message(&events, "image failed");
        assert_eq!((ready.len(), failed.len()), (2, 1));
        assert_eq!(ready[0]["fields"]["image"], "docker.io/library/a:latest");
        assert_eq!(ready[0]["fields"]["outcome"], "present");
        assert_eq!(ready[0]["fields"]["attempts"], 1);
        assert_eq!(ready[0]["span"]["image"], "docker.io/library/a:latest");
        assert_eq!(failed[0]["fields"]["error_kind"], "not_found");
        assert_eq!(failed[0]["fields"]["seconds"], 1.0);

        let progress = with_message(&events, "still pulling");
        let seconds: Vec<&Value> = progress.iter().map(|e| &e["fields"]["seconds"]).collect();
        assert_eq!(seconds, [10, 20]);
        assert!(progress.iter().all(|e| e["fields"]["bytes"] == 1234));
    }
}
