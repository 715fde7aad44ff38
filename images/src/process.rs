//! Running the external tools of the build (`cargo`, `git`, `skopeo`).

use std::process::{Command, Stdio};

use crate::ImagesError;

/// Runs `cmd` and returns its standard output, trimmed. Standard error is kept
/// for the error message only.
pub(crate) fn output(cmd: &mut Command) -> Result<String, ImagesError> {
    let command = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ImagesError::Spawn {
            command: command.clone(),
            source,
        })?;

    if !out.status.success() {
        return Err(ImagesError::CommandFailed {
            command,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `cmd` with its output going to our standard error, so that long steps
/// (compiling, pushing) show their progress as they go.
pub(crate) fn streamed(cmd: &mut Command) -> Result<(), ImagesError> {
    let command = describe(cmd);
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|source| ImagesError::Spawn {
            command: command.clone(),
            source,
        })?;

    if !status.success() {
        return Err(ImagesError::CommandFailed {
            command,
            status,
            stderr: "see its output above".to_owned(),
        });
    }
    Ok(())
}

/// The command line as a user would type it, for messages.
fn describe(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}
