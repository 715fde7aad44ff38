//! `build-images`: the project's own image build. Cross-compiles `puller` and
//! `pause` for linux/amd64 and linux/arm64 (static musl), writes one
//! multi-arch OCI layout per image, prints digests and the size report, and
//! pushes to a registry when asked. Needs cargo, git and (to push) skopeo;
//! no Docker, buildx or registry account.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use prepull_images::compile::{self, Binary};
use prepull_images::image::{self, ImageMeta};
use prepull_images::push::{self, Destination};
use prepull_images::source::{self, Source, Workspace};
use prepull_images::{Arch, BuiltImage, IMAGES, ImagesError, report};

/// Build the puller and pause images (linux/amd64 + linux/arm64) as OCI
/// layouts, print their digests and sizes, and optionally push them.
#[derive(Debug, Parser)]
#[command(name = "build-images", version)]
struct Args {
    /// Directory for the layouts (OUT/puller, OUT/pause) and size-report.txt [default: TARGET_DIR/images]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Tag for both images [default: each package's version]
    #[arg(long)]
    tag: Option<String>,

    /// Repository path the images go under: REGISTRY/PREFIX/puller
    #[arg(long, default_value = "prepull")]
    prefix: String,

    /// Push both images to this registry (HOST[:PORT]) with skopeo after building
    #[arg(long, value_name = "REGISTRY")]
    push: Option<String>,

    /// Push over plain HTTP or to a registry whose certificate is not trusted (local test registries)
    #[arg(long, requires = "push")]
    insecure: bool,

    /// Package the release binaries of the last image build (TARGET_DIR/image-build) instead of compiling
    #[arg(long)]
    no_compile: bool,
}

/// A failed stage and the exit code that tells it apart.
#[derive(Debug)]
struct Failure {
    stage: &'static str,
    code: u8,
    error: ImagesError,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.stage, self.error)
    }
}

/// Exit codes: 2 bad arguments, 3 compiling or reading a binary failed,
/// 4 pushing failed, 1 anything else (metadata, git, writing the layouts).
fn at(stage: &'static str, code: u8) -> impl FnOnce(ImagesError) -> Failure {
    move |error| Failure { stage, code, error }
}

fn main() -> ExitCode {
    let args = Args::parse();

    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("build-images: {failure}");
            ExitCode::from(failure.code)
        }
    }
}

fn run(args: &Args) -> Result<(), Failure> {
    let destination = check_arguments(args).map_err(at("check arguments", 2))?;

    let images = build(args)?;

    if let Some(dest) = destination {
        push_all(&images, &dest).map_err(at("push", 4))?;
    }
    Ok(())
}

/// Compiles, assembles, and prints digests and the size report.
fn build(args: &Args) -> Result<Vec<BuiltImage>, Failure> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let root = workspace_root();
    let ws = source::workspace(&cargo, &root).map_err(at("read workspace", 1))?;
    let src = source::source(&root).map_err(at("read git commit", 1))?;
    warn_if_dirty(&src);

    let started = Instant::now();
    let names = IMAGES.map(|spec| spec.name);
    let binaries =
        compile::compile(&cargo, &ws, &names, !args.no_compile).map_err(at("compile", 3))?;
    let compiled = started.elapsed();

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| ws.target_dir.join("images"));
    let images = assemble_all(&ws, &src, args.tag.as_deref(), &binaries, &out)
        .map_err(at("assemble images", 1))?;
    print_digests(&images, &src);

    let text = report::size_report(&images);
    println!("\n{text}");
    write_report(&out, &text).map_err(at("write size report", 1))?;
    eprintln!(
        "build-images: compiled in {:.1}s, assembled in {:.1}s",
        compiled.as_secs_f64(),
        (started.elapsed() - compiled).as_secs_f64()
    );
    Ok(images)
}

/// Checks every argument before any work, so bad input changes nothing.
fn check_arguments(args: &Args) -> Result<Option<Destination>, ImagesError> {
    if let Some(tag) = &args.tag {
        push::check_tag(tag)?;
    }
    push::check_prefix(&args.prefix)?;

    args.push
        .as_deref()
        .map(|registry| Destination::new(registry, &args.prefix, !args.insecure))
        .transpose()
}

fn warn_if_dirty(src: &Source) {
    if src.dirty {
        eprintln!(
            "build-images: warning: the checkout has uncommitted changes; the images are labelled {} but differ from it",
            src.revision
        );
    }
}

/// The workspace this tool belongs to: its crate sits in `images/`.
fn workspace_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));

    crate_dir.parent().unwrap_or(crate_dir).to_owned()
}

fn assemble_all(
    ws: &Workspace,
    src: &Source,
    tag: Option<&str>,
    binaries: &[Binary],
    out: &Path,
) -> Result<Vec<BuiltImage>, ImagesError> {
    std::fs::create_dir_all(out).map_err(ImagesError::io("create output directory", out))?;

    let mut images = Vec::new();
    for spec in &IMAGES {
        let meta = ImageMeta::new(ws.package(spec.name)?, src, tag)?;
        let mine: Vec<&Binary> = Arch::ALL
            .iter()
            .filter_map(|arch| {
                binaries
                    .iter()
                    .find(|b| b.name == spec.name && b.arch == *arch)
            })
            .collect();
        images.push(image::assemble(spec, &meta, &mine, out)?);
    }
    Ok(images)
}

fn print_digests(images: &[BuiltImage], src: &Source) {
    println!("revision {} (timestamps {})", src.revision, src.epoch);

    for image in images {
        println!(
            "{}:{} index {}  layout {}",
            image.spec.name,
            image.tag,
            image.index.digest(),
            image.layout.display()
        );
        for p in &image.platforms {
            println!(
                "  linux/{:<5} manifest {}",
                p.arch.to_string(),
                p.manifest.digest()
            );
        }
    }
}

fn write_report(out: &Path, text: &str) -> Result<(), ImagesError> {
    let path = out.join("size-report.txt");

    std::fs::write(&path, text).map_err(ImagesError::io("write", &path))
}

fn push_all(images: &[BuiltImage], dest: &Destination) -> Result<(), ImagesError> {
    for image in images {
        let reference = push::push(image, dest)?;
        println!("pushed {reference} ({})", image.index.digest());
    }
    Ok(())
}
