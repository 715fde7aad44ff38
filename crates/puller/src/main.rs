//! `puller`: pre-pulls a list of images through the node's container
//! runtime, then exits. Parses arguments, sets up logging, runs the library's
//! engine and maps the result to an exit code; nothing below `main` exits.
//!
//! Exit codes: 0 all images present or pulled (or some failed under
//! `--best-effort`), 1 some image failed, 2 bad input (an image list or auth
//! file, found before any runtime contact), 3 no container runtime answered.

mod cli;
mod credentials;
mod observability;
mod run;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::observability::Filter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };

    // Logging is not up yet, so this one error goes to stderr directly.
    let filter = match Filter::choose(cli.log_level.clone()) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("puller: {err}");
            return ExitCode::from(run::BAD_INPUT);
        }
    };
    observability::init(cli.log_format, filter);

    ExitCode::from(run::run(&cli))
}

/// `--help` and `--version` print to stdout and exit 0; a usage error prints
/// clap's message and exits 2, the code for bad input.
fn usage_error(err: &clap::Error) -> ExitCode {
    // Printing fails only when stderr/stdout is closed; nothing is left to tell.
    let _ = err.print();
    if err.use_stderr() {
        ExitCode::from(run::BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    }
}
