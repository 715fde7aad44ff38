//! Manual check of the runtime backends against a real daemon.
//!
//! `probe detect|status|pull|rm IMAGE...`, where each IMAGE names its
//! registry (`127.0.0.1:5000/app:1`, `…/app@sha256:…`). The socket is chosen
//! as puller chooses it, from `PROBE_RUNTIME` (auto|cri|docker),
//! `PROBE_SOCKET` and `PROBE_HOST_ROOT`; `PROBE_USER`/`PROBE_PASSWORD` give a
//! credential. Prints each outcome with its failure kind, so error
//! classification can be seen on real registry answers.

use std::path::PathBuf;
use std::process::ExitCode;

use prepull::auth::Credential;
use prepull::detect::{self, AnyRuntime, RuntimeChoice};
use prepull::reference::ImageRef;
use prepull::runtime::{Progress, Runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, images)) = args.split_first() else {
        eprintln!("usage: probe detect|status|pull|rm IMAGE...");
        return ExitCode::from(2);
    };

    let connected = match connect().await {
        Ok(connected) => connected,
        Err(error) => {
            eprintln!("detect: {error}");
            return ExitCode::from(3);
        }
    };
    println!(
        "runtime: {} on {}",
        connected.runtime.describe(),
        connected.socket.display()
    );

    for image in images.iter().map(|text| parse(text)) {
        run(command, &connected.runtime, &image).await;
    }
    ExitCode::SUCCESS
}

async fn connect() -> Result<detect::Connected, detect::DetectError> {
    let choice = match std::env::var("PROBE_RUNTIME").as_deref() {
        Ok("cri") => RuntimeChoice::Cri,
        Ok("docker") => RuntimeChoice::Docker,
        _ => RuntimeChoice::Auto,
    };
    let socket = std::env::var_os("PROBE_SOCKET").map(PathBuf::from);
    let root =
        std::env::var_os("PROBE_HOST_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from);

    detect::connect(choice, socket.as_deref(), &root).await
}

async fn run(command: &str, runtime: &AnyRuntime, image: &ImageRef) {
    let started = std::time::Instant::now();
    match command {
        "status" => match runtime.image_status(image).await {
            Ok(found) => println!("status {image}: {found:?}"),
            Err(error) => println!("status {image}: {:?}: {error}", error.kind),
        },
        "pull" => {
            let progress = Progress::default();
            match runtime.pull(image, credential().as_ref(), &progress).await {
                Ok(info) => println!("pull {image}: {info:?} bytes={:?}", progress.bytes()),
                Err(error) => println!("pull {image}: {:?}: {error}", error.kind),
            }
        }
        "rm" => remove(runtime, image).await,
        _ => println!("detected only"),
    }
    println!("  ({:.2}s)", started.elapsed().as_secs_f64());
}

async fn remove(runtime: &AnyRuntime, image: &ImageRef) {
    let answer = match runtime {
        AnyRuntime::Cri(cri) => {
            let request = prepull::cri::api::RemoveImageRequest {
                image: Some(prepull::cri::api::ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
            };
            cri.image_client()
                .remove_image(request)
                .await
                .map(|_| ())
                .map_err(|s| s.to_string())
        }
        AnyRuntime::Docker(docker) => docker
            .client()
            .remove_image(
                &image.to_string(),
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    println!("rm {image}: {answer:?}");
}

fn credential() -> Option<Credential> {
    let username = std::env::var("PROBE_USER").ok()?;
    Some(Credential {
        key: "probe".into(),
        username: Some(username),
        password: std::env::var("PROBE_PASSWORD").ok(),
        ..Credential::default()
    })
}

/// `registry/repository[:tag][@digest]`, registry required.
fn parse(text: &str) -> ImageRef {
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest.to_string())),
        None => (text, None),
    };
    let (registry, path) = rest.split_once('/').unwrap_or(("docker.io", rest));
    let (repository, tag) = match path.rsplit_once(':') {
        Some((repository, tag)) => (repository, Some(tag.to_string())),
        None => (path, None),
    };
    ImageRef {
        registry: registry.into(),
        repository: repository.into(),
        tag: tag.or_else(|| digest.is_none().then(|| "latest".into())),
        digest,
    }
}
