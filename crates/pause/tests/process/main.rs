//! Runs the built `pause` as a real process and checks it with real signals,
//! through what the kernel shows in /proc.
//!
//! Tests that need root live behind the `root-tests` feature; with the feature
//! on they fail, rather than skip, when not run as root.

mod children;
mod cli;
#[cfg(feature = "root-tests")]
mod root;
mod signals;
mod support;
