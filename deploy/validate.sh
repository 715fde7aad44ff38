#!/usr/bin/env bash
# Checks every kustomization under deploy/ (and every component in
# deploy/components applied on each runtime overlay): it renders with `kubectl kustomize`,
# each object is valid for the Kubernetes API versions 1.30 to 1.37 (offline,
# with the schemas kubernetes-validate ships), and the rendered DaemonSet keeps
# the security and wiring policy of deploy/tests/policy.py.
#
#   deploy/validate.sh                 set up the tools when missing, then check
#   deploy/validate.sh --install-only  only set up the tools (needs PyPI)
#
# The tools live in a virtualenv under target/ (ignored by git), at the
# versions pinned in deploy/tests/requirements.txt; PREPULL_DEPLOY_VENV moves it.
set -euo pipefail

deploy="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$deploy")"
venv="${PREPULL_DEPLOY_VENV:-$repo/target/deploy-venv}"
requirements="$deploy/tests/requirements.txt"
stamp="$venv/.requirements.txt"

# die CODE MESSAGE: 2 for a wrong invocation, 1 for a missing tool.
die() {
    echo "deploy/validate.sh: $2" >&2
    exit "$1"
}

# (Re)creates the virtualenv when it is missing or was made from another
# requirements file, so a changed pin takes effect on the next run.
install_tools() {
    if [[ -f "$stamp" ]] && cmp -s "$requirements" "$stamp"; then
        return
    fi

    command -v python3 >/dev/null || die 1 "python3 is not installed (Debian: apt-get install -y python3 python3-venv)"
    rm -rf "$venv"
    python3 -m venv "$venv" || die 1 "cannot create a virtualenv at $venv (Debian: apt-get install -y python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --requirement "$requirements" \
        || die 1 "cannot install the pinned tools from $requirements"
    cp "$requirements" "$stamp"
}

install_tools
if [[ "${1:-}" == "--install-only" ]]; then
    exit 0
fi
[[ $# -eq 0 ]] || die 2 "unknown argument '$1' (usage: deploy/validate.sh [--install-only])"
command -v kubectl >/dev/null || die 1 "kubectl is not installed: it renders the overlays (kubectl kustomize)"

cd "$deploy/tests"
PYTHONDONTWRITEBYTECODE=1 exec "$venv/bin/python" -m pytest -p no:cacheprovider -q test_policy.py
