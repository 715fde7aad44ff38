//! Generates the test-only CRI `runtime.v1` client the kubelet stand-in uses
//! (`src/kubelet/`), from `proto/cri_runtime_v1.proto`.
//!
//! As in `crates/prepull/build.rs`, `protox` parses the proto in Rust, so no
//! system `protoc` is needed, and only the client side is generated.

use std::error::Error;

const PROTO: &str = "proto/cri_runtime_v1.proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO}");

    let descriptors = protox::compile([PROTO], ["proto"])?;

    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
