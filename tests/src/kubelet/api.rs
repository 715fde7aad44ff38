//! The client and messages `build.rs` generates from
//! `proto/cri_runtime_v1.proto`: the CRI `runtime.v1` calls the kubelet
//! stand-in makes.

#![allow(missing_debug_implementations, clippy::all, clippy::pedantic)]

tonic::include_proto!("runtime.v1");
