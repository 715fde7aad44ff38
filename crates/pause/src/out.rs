//! Raw writes to stdout/stderr and process exit, without `std`.

use core::ffi::c_int;

/// File descriptor of standard output.
pub const STDOUT: c_int = 1;

/// File descriptor of standard error.
const STDERR: c_int = 2;

/// Writes all of `bytes` to `fd`; `false` if the descriptor refuses them.
///
/// No signal handler is ever installed, so `write` cannot fail with `EINTR`
/// and any error or zero-length write is final.
pub fn write_all(fd: c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: pointer and length describe the live slice `bytes`.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };

        match usize::try_from(written) {
            Ok(n) if n > 0 => bytes = bytes.get(n..).unwrap_or_default(),
            _ => return false,
        }
    }

    true
}

/// Prints the one-line usage error for the argument `bad` to stderr.
///
/// A failure to write is not reported: the exit status says it already.
pub fn usage(bad: &[u8]) {
    let parts: [&[u8]; 3] = [
        b"pause: unexpected argument '",
        bad,
        b"'; usage: pause [--version | -v]\n",
    ];

    for part in parts {
        if !write_all(STDERR, part) {
            return;
        }
    }
}

/// Prints `message` to stderr; a failure to write has nowhere to be reported.
pub fn error(message: &[u8]) {
    write_all(STDERR, message);
}

/// Exit status after printing: 0 if the output was written, 1 otherwise.
pub fn status(written: bool) -> c_int {
    if written { 0 } else { 1 }
}

/// Ends the process at once with `code`, running no exit handlers.
pub fn exit(code: c_int) -> ! {
    // SAFETY: `_exit` has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}
