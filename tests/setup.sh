#!/usr/bin/env bash
# Installs what prepull's tests and demo need, when it is missing, and fails
# loudly when something cannot be installed. Safe to run again: it only
# calls apt-get when a package is absent.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages: the daemons of the throwaway test node and the tools the
# harness drives (ctr comes with containerd, docker with docker.io).
PACKAGES=(
  containerd        # containerd + ctr: the CRI runtime under test
  runc              # the OCI runtime both daemons start containers with
  docker.io         # dockerd + docker: the Docker runtime under test
  docker-registry   # the local registry test images are pushed to
  skopeo            # pushes the harness's OCI layouts to that registry
  mount             # mount/umount: overlay probe and clean-up
  util-linux        # unshare, for the PID-1 tests
  procps            # kill(1), to stop daemon process groups
  gcc               # the linker cargo uses
  libc6-dev         # C runtime objects for that linker
  python3-venv      # deploy/validate.sh keeps its pinned tools in a venv
  qemu-user-static  # runs the arm64 binaries in the image tests and size reports
  musl-tools        # musl-gcc: the C pause baseline in the pause size report
)

# Rust targets for the static release binaries.
RUST_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

say() { printf '>>> setup: %s\n' "$*"; }
die() { printf '>>> setup: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and the tests start daemons)"

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "cannot install: ${missing[*]}"
else
  say "Debian packages present"
fi

for tool in containerd ctr runc dockerd docker skopeo mount umount unshare nsenter qemu-aarch64-static musl-gcc; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH after install"
done
[ -x /usr/bin/docker-registry ] || die "/usr/bin/docker-registry missing after install"

command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
if command -v rustup >/dev/null; then
  installed=$(rustup target list --installed)
  for target in "${RUST_TARGETS[@]}"; do
    if ! grep -qx "$target" <<<"$installed"; then
      say "adding Rust target $target"
      rustup target add "$target" || die "cannot add Rust target $target"
    fi
  done
else
  say "no rustup: assuming the musl targets come with this toolchain"
fi

# kubectl is not a Debian package; these machines ship it. The deploy checks
# and the deploy end-to-end trials need its built-in kustomize.
command -v kubectl >/dev/null || die "kubectl not found: install kubectl (1.27 or newer, with kustomize built in)"
kubectl kustomize --help >/dev/null 2>&1 || die "kubectl has no kustomize subcommand"

say "done"
