#!/usr/bin/env bash
# Runs every prepull test: installs what they need, checks formatting and
# lints, runs the unit tests, builds the binaries, then runs the end-to-end
# suite against a throwaway registry, containerd and dockerd (as root).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() { printf '\n======== %s ========\n' "$*"; }
started=$SECONDS

section "setup"
bash tests/setup.sh

section "cargo fmt --check"
cargo fmt --all --check

section "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The e2e test target and the demo exist only with the `e2e` feature.
cargo clippy -p prepull-e2e --all-targets --features e2e --locked -- -D warnings

section "unit tests"
cargo test --workspace --locked

section "pause as root (uid 65535, PID 1 in a new PID namespace)"
cargo test -p pause --features root-tests --locked

section "deploy/: render, schema and policy checks"
bash deploy/validate.sh

section "build binaries under test"
# The debug puller that the end-to-end tests run on the host.
cargo build --workspace --bins --locked

section "build the images (puller and pause, linux/amd64 and linux/arm64)"
# The end-to-end tests push and run these OCI layouts. build-images compiles
# the static musl release binaries in <target>/image-build (the unit tests'
# reproducibility check already did, so this is mostly packaging); the
# static binaries the tests would use are those same files.
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir=$PWD/$target_dir
images_started=$SECONDS
cargo run --locked -p prepull-images --bin build-images -- --out "$target_dir/images"
echo "images built in $((SECONDS - images_started)) s"
export PREPULL_IMAGES_DIR=$target_dir/images
export PREPULL_STATIC_BIN_DIR=$target_dir/image-build/$(uname -m)-unknown-linux-musl/release

section "end-to-end tests"
cargo test -p prepull-e2e --features e2e --test e2e --locked

section "all tests passed in $((SECONDS - started)) s"
