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
cargo build --workspace --bins --locked
# Containers run FROM-scratch images, which need the static release builds.
cargo build --release --locked --target "$(uname -m)-unknown-linux-musl" -p puller -p pause

section "end-to-end tests"
cargo test -p prepull-e2e --features e2e --test e2e --locked

section "all tests passed in $((SECONDS - started)) s"
