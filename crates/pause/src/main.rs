//! `pause`: keeps a pod alive at no cost until Kubernetes stops it.
//!
//! It blocks every catchable signal and then sleeps in `sigwaitinfo`, so it
//! uses no CPU between signals: SIGTERM and SIGINT end it with exit status 0,
//! SIGCHLD makes it reap every exited child (it may be PID 1 of a shared
//! process namespace), and every other signal is taken and dropped.
//!
//! # Why `no_std` with the C runtime's `main`
//!
//! A `std` build is over ten times the size budget, so the binary uses only
//! `core` and the `libc` crate. It still links the C runtime's start files
//! and exports a C `main(argc, argv)` rather than its own `_start`: the C
//! runtime already reads `argc`/`argv` off the initial stack, sets up the
//! thread pointer and (for static-pie) applies relocations, which a hand-written
//! entry point would have to repeat per architecture in assembly. With musl
//! that start-up code costs a few KiB, well inside the budget, and the same
//! source builds unchanged against glibc for the host tests.
//!
//! Nothing allocates, and the only way to reach the panic handler would be a
//! bug; it exits with status 101 without writing anything.

// `cargo clippy --all-targets` also checks this binary as a test even though
// Cargo.toml sets `test = false`; that build links std and libtest, so the
// `no_std` parts are left out of it.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

mod args;
mod out;
mod signals;

use core::ffi::{c_char, c_int};

use args::Command;

// A `no_std` binary must ask for the C library itself. The `libc` crate
// does it only for glibc, and not at all once another crate in the build
// turns on its `std` feature (it then leaves linking to `std`): a workspace
// `cargo test` unifies that feature, so pause asks unconditionally.
#[link(name = "c")]
unsafe extern "C" {}

/// Printed by `--version`: `pause <version>` and a newline.
const VERSION: &[u8] = concat!("pause ", env!("CARGO_PKG_VERSION"), "\n").as_bytes();

/// Exit status for a bad command line (0 and 1 mean success and I/O failure).
const EXIT_USAGE: c_int = 2;

/// Entry point called by the C runtime's start-up code.
///
/// # Safety
///
/// `argv` must hold `argc` valid pointers to NUL-terminated strings that live
/// for the whole process, which is what the C runtime passes to `main`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: forwarded from the C runtime, which upholds `main`'s contract.
    let command = unsafe { args::parse_argv(argc, argv) };

    match command {
        Command::Wait => signals::wait_forever(),
        Command::Version => out::status(out::write_all(out::STDOUT, VERSION)),
        Command::Usage(bad) => {
            out::usage(bad);
            EXIT_USAGE
        }
    }
}

/// Reached only through a bug: exits at once with Rust's panic status.
#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    out::exit(101)
}

/// Satisfies the link-time reference that the precompiled `core` library's
/// unwind tables make to Rust's personality routine (unoptimised builds keep
/// those `core` functions). Nothing ever unwinds here (`panic = "abort"` and
/// the handler above exits), so no unwinder is linked and this never runs.
#[cfg(not(test))]
// SAFETY: no other object in this binary defines `rust_eh_personality`.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
