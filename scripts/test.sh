#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests need on a fresh
# machine (sops, age, pre-commit, a local Kubernetes control plane built from source and
# cached), then runs every test, then checks that no control-plane process is left behind.
set -euo pipefail
# shellcheck source=scripts/prepare.sh
source "$(dirname "$0")/prepare.sh"

status=0
cargo test --all-targets --no-fail-fast "$@" || status=$?
scripts/control-plane/check-no-leftovers.sh || status=1
exit "$status"
