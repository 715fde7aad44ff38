#!/usr/bin/env bash
# The local demo: starts a throwaway registry, containerd and dockerd, pushes
# a few sample images, pre-pulls them with the real `puller` through both
# runtimes, prints the summaries, and removes everything again (as root).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tests/setup.sh
echo ">>> demo: building puller"
cargo build --locked -p puller
echo ">>> demo: building and starting the demo node"
cargo run --locked -q -p prepull-e2e --features e2e --bin demo
