//! The command line: nothing (wait), `--version`/`-v`, or a usage error.

use core::ffi::{CStr, c_char, c_int};
use core::slice;

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// No argument: wait for signals.
    Wait,
    /// `--version` or `-v`: print the version.
    Version,
    /// Anything else; holds the first argument that is not allowed.
    Usage(&'a [u8]),
}

/// Reads the arguments after the program name and decides what to do.
///
/// # Safety
///
/// `argv` must hold `argc` valid pointers to NUL-terminated strings that live
/// for the whole process (the contract of C's `main`).
pub unsafe fn parse_argv(argc: c_int, argv: *const *const c_char) -> Command<'static> {
    let count = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() {
        return Command::Wait;
    }

    // SAFETY: `argv` is non-null and, by the caller's contract, points to
    // `argc` pointers that stay valid and unchanged for the whole process.
    let args = unsafe { slice::from_raw_parts(argv, count) };

    // SAFETY: the entries of `argv` are C strings living for the whole process.
    let first = unsafe { arg(args, 1) };
    // SAFETY: as above.
    let second = unsafe { arg(args, 2) };

    parse(first, second)
}

/// Decides from the first two arguments; any second argument is an error.
/// The usage error names the first argument that is not allowed.
fn parse<'a>(first: Option<&'a [u8]>, second: Option<&'a [u8]>) -> Command<'a> {
    match (first, second) {
        (None, _) => Command::Wait,
        (Some(b"--version" | b"-v"), None) => Command::Version,
        (Some(b"--version" | b"-v"), Some(extra)) => Command::Usage(extra),
        (Some(bad), _) => Command::Usage(bad),
    }
}

/// Argument `index` as bytes, or `None` past the end of `args`.
///
/// # Safety
///
/// Every non-null pointer in `args` must point to a NUL-terminated string
/// that lives for the whole process.
unsafe fn arg(args: &[*const c_char], index: usize) -> Option<&'static [u8]> {
    let ptr = *args.get(index)?;
    if ptr.is_null() {
        return None;
    }

    // SAFETY: `ptr` is non-null, so by the contract above it is a C string
    // that is never freed.
    Some(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}
