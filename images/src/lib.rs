//! Builds the `puller` and `pause` images without Docker, buildx or a registry
//! account: both binaries are cross-compiled as static musl executables, each is
//! put alone in a `FROM scratch` layer, and every image becomes a multi-arch OCI
//! image layout (`linux/amd64` and `linux/arm64`) that `skopeo` can push to any
//! registry.
//!
//! Everything that ends up in a blob is fixed by the source: timestamps come
//! from `SOURCE_DATE_EPOCH` or the last commit, tar headers carry uid/gid 0 and
//! fixed modes, gzip carries no name or time, and JSON keys are sorted. Two
//! builds of one commit therefore give the same digests.
//!
//! The stages are separate functions so that callers (the `build-images`
//! command, the end-to-end harness) can run them one by one:
//! [`source::workspace`] → [`compile::compile`] → [`image::assemble`] →
//! [`push::push`], with [`report::size_report`] to print the figures.

pub mod arch;
pub mod compile;
mod digest;
pub mod elf;
pub mod error;
pub mod image;
mod json;
pub mod layer;
pub mod layout;
mod process;
pub mod push;
pub mod report;
pub mod source;

pub use arch::Arch;
pub use error::ImagesError;
pub use image::{BuiltImage, IMAGES, ImageSpec, PlatformImage};
