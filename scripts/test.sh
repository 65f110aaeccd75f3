#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests need on a fresh
# machine (sops, age, pre-commit, a local Kubernetes control plane built from source and
# cached), then runs every test, then checks that no control-plane process is left behind.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-test-deps.sh
KUBE_DC_K8S_BIN=$(scripts/control-plane/build.sh | tail -n 1)
export KUBE_DC_K8S_BIN
export PATH="$HOME/.cache/kube-dc/tools/bin:$KUBE_DC_K8S_BIN:$PATH"

status=0
cargo test --all-targets --no-fail-fast "$@" || status=$?
scripts/control-plane/check-no-leftovers.sh || status=1
exit "$status"
