//! Everything `puller` does, as a library: the binary in `crates/puller` only
//! parses arguments, sets up logging and maps the outcome to an exit code.
//!
//! The modules follow the I/O boundary. `reference`, `list`, `auth` and
//! `report` do no I/O beyond reading files they are handed; `runtime` is the
//! one trait every backend implements; `cri` and `docker` are the backends;
//! `detect` finds and probes the node's socket; `pull` drives the backends.

pub mod auth;
pub mod cri;
pub mod detect;
pub mod docker;
pub mod list;
pub mod pull;
pub mod reference;
pub mod report;
pub mod runtime;
