//! The local demo: a throwaway registry, containerd and dockerd, three
//! sample images pushed, and the real `puller` pre-pulling them through each
//! runtime. Everything is removed on exit. Run through tests/demo.sh.

use std::process::ExitCode;

use prepull_e2e::{Node, PushedImage, Result, RuntimeKind};

const SAMPLES: [&str; 3] = ["demo/web", "demo/worker", "demo/tools"];

fn main() -> ExitCode {
    match demo() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the demo; `Ok(false)` when a puller run did not succeed.
fn demo() -> Result<bool> {
    println!("demo: starting a throwaway registry, containerd and dockerd");
    let node = Node::start()?;
    println!("demo: registry on {}", node.registry.host());

    let images = push_samples(&node)?;
    let mut all_ok = true;
    for kind in RuntimeKind::ALL {
        all_ok &= pull_into(&node, kind, &images)?;
    }

    println!(
        "\ndemo: stopping the daemons and removing {}",
        node.dir().display()
    );
    drop(node);
    Ok(all_ok)
}

fn push_samples(node: &Node) -> Result<Vec<PushedImage>> {
    let mut images = Vec::new();
    for name in SAMPLES {
        let image = node.registry.push_random(name, "1.0")?;
        println!("demo: pushed {} ({})", image.reference(), image.digest);
        images.push(image);
    }
    Ok(images)
}

/// Runs puller against one runtime, shows its log, then shows what the
/// runtime now holds, asked through the runtime's own client.
fn pull_into(node: &Node, kind: RuntimeKind, images: &[PushedImage]) -> Result<bool> {
    let title = match kind {
        RuntimeKind::Cri => "containerd (CRI)",
        RuntimeKind::Docker => "dockerd (Docker Engine API)",
    };
    println!(
        "\n=== puller --runtime {} --socket {}",
        kind.flag(),
        node.socket(kind).display()
    );

    let run = node
        .puller_for(kind)?
        .args(images.iter().map(PushedImage::reference))
        .run()?;
    print!("{}{}", run.stderr, run.stdout);
    println!(
        "--- puller ended: {} after {:.1} s",
        run.ending(),
        run.elapsed.as_secs_f64()
    );

    let again = node
        .puller_for(kind)?
        .args(images.iter().map(PushedImage::reference))
        .run()?;
    print!("--- run again, nothing left to pull: {}", again.stdout);

    println!("--- {title} now holds:");
    for image in images {
        let digest = node.runtime_digest(kind, image)?;
        let shown = digest.as_deref().unwrap_or("(missing)");
        println!("    {:<40} {shown}", image.reference());
    }
    Ok(run.code == Some(0) && again.code == Some(0))
}
