//! A check that each binary fits a `FROM scratch` image: an ELF file for the
//! image's CPU with no dynamic loader. A wrong binary would otherwise only show
//! up when a node fails to start the container with "no such file or directory".

use std::path::Path;

use object::Endianness;
use object::elf::{FileHeader64, PT_INTERP};
use object::read::elf::{FileHeader, ProgramHeader};

use crate::{Arch, ImagesError};

/// Fails unless `data` (read from `path`) is a static 64-bit ELF executable for `arch`.
pub fn check_static(path: &Path, data: &[u8], arch: Arch) -> Result<(), ImagesError> {
    let not_elf = |e: object::read::Error| ImagesError::NotElf {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let header = FileHeader64::<Endianness>::parse(data).map_err(not_elf)?;
    let endian = header.endian().map_err(not_elf)?;

    let found = header.e_machine(endian).0;
    if found != arch.elf_machine() {
        return Err(ImagesError::WrongArch {
            path: path.to_owned(),
            expected: format!("{} ({arch})", arch.elf_machine()),
            found,
        });
    }

    let segments = header.program_headers(endian, data).map_err(not_elf)?;
    if segments.iter().any(|s| s.p_type(endian) == PT_INTERP) {
        return Err(ImagesError::NotStatic {
            path: path.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary itself is a dynamically linked x86_64 (glibc) program
    /// on the machines that build the images.
    fn this_test_binary() -> (std::path::PathBuf, Vec<u8>) {
        let path = std::env::current_exe().expect("the test binary has a path");
        let data = std::fs::read(&path).expect("the test binary is readable");
        (path, data)
    }

    #[test]
    fn a_dynamically_linked_binary_is_refused() {
        let (path, data) = this_test_binary();

        let err = check_static(&path, &data, Arch::Amd64).expect_err("dynamic binary accepted");

        assert!(matches!(err, ImagesError::NotStatic { .. }), "{err}");
    }

    #[test]
    fn a_binary_for_another_cpu_is_refused() {
        let (path, data) = this_test_binary();

        let err = check_static(&path, &data, Arch::Arm64).expect_err("x86_64 binary accepted");

        assert!(
            matches!(err, ImagesError::WrongArch { found, .. } if found == object::elf::EM_X86_64.0),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_elf_is_refused() {
        let err = check_static(Path::new("notes.txt"), b"#!/bin/sh\necho hi\n", Arch::Amd64)
            .expect_err("shell script accepted");

        assert!(matches!(err, ImagesError::NotElf { .. }), "{err}");
        assert!(err.to_string().contains("notes.txt"), "{err}");
    }
}
