//! The command line: `--version`/`-v` and usage errors.

use std::process::Command;

use crate::support::PAUSE;

#[test]
fn version_flags_print_name_and_version_and_exit_zero() {
    for flag in ["--version", "-v"] {
        let output = Command::new(PAUSE).arg(flag).output().expect("run pause");

        assert_eq!(output.status.code(), Some(0), "{flag}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("pause {}\n", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
        assert!(output.stderr.is_empty(), "{flag} wrote to stderr");
    }
}

#[test]
fn any_other_argument_is_a_usage_error_with_exit_two() {
    let cases: [(&[&str], &str); 6] = [
        (&["bogus"], "bogus"),
        (&["--help"], "--help"),
        (&[""], ""),
        (&["-vv"], "-vv"),
        (&["--version", "extra"], "extra"),
        (&["first", "--version"], "first"),
    ];

    for (args, named) in cases {
        let output = Command::new(PAUSE).args(args).output().expect("run pause");

        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?} wrote to stdout");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("pause: unexpected argument '{named}'; usage: pause [--version | -v]\n"),
            "{args:?}"
        );
    }
}
