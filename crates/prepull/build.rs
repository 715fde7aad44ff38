//! Generates the CRI `runtime.v1` client from the vendored proto.
//!
//! `protox` parses the proto in Rust, so a plain `cargo build` needs no
//! system `protoc`; only the client side is generated.

use std::error::Error;

const PROTO: &str = "proto/runtime_v1.proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO}");

    let descriptors = protox::compile([PROTO], ["proto"])?;

    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
