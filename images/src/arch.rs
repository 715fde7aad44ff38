//! The two platforms every image is built for, and their names in the Rust,
//! OCI and ELF worlds.

use std::fmt;

/// A CPU architecture the images support (always with `os = linux`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// Every supported architecture, in the order the image index lists them.
    pub const ALL: [Arch; 2] = [Arch::Amd64, Arch::Arm64];

    /// The Rust target that gives a fully static binary for this architecture.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64-unknown-linux-musl",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }

    /// The architecture in OCI (GOARCH) terms.
    pub fn oci(self) -> oci_spec::image::Arch {
        match self {
            Arch::Amd64 => oci_spec::image::Arch::Amd64,
            Arch::Arm64 => oci_spec::image::Arch::ARM64,
        }
    }

    /// The OCI platform variant. arm64 images carry `v8`, as buildx writes
    /// it, so that runtimes which match on the variant pick ours.
    pub fn variant(self) -> Option<&'static str> {
        match self {
            Arch::Amd64 => None,
            Arch::Arm64 => Some("v8"),
        }
    }

    /// The `e_machine` value of an ELF file built for this architecture.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::Amd64 => object::elf::EM_X86_64.0,
            Arch::Arm64 => object::elf::EM_AARCH64.0,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        })
    }
}
