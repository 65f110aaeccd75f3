#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests need on a fresh
# machine (sops, age, pre-commit, a local Kubernetes control plane built from source and
# cached), then runs every test, then checks that no control-plane process is left behind.
set -euo pipefail
# shellcheck source=scripts/prepare.sh
source "$(dirname "$0")/prepare.sh"

# The oldest Kubernetes version supported and tested (README: "Kubernetes versions").
KUBE_DC_K8S_OLDEST=${KUBE_DC_K8S_OLDEST:-v1.29.15}

# Marks every process this run starts, so the leftover check counts only ours.
KUBE_DC_RUN_ID="test-$$-$(date +%s%N)"
export KUBE_DC_RUN_ID
# Everything kube-dc prints in the tests is copied here (tests/support: kube_dc_bin) and
# checked for canary secrets after the run, together with the test runner's own output.
KUBE_DC_TRANSCRIPT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kube-dc-transcripts.XXXXXX")
export KUBE_DC_TRANSCRIPT_DIR
runner_log="$KUBE_DC_TRANSCRIPT_DIR/cargo-test.log"

status=0
cargo test --all-targets --no-fail-fast "$@" 2>&1 | tee "$runner_log" || status=1
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# The tests that drive the break-glass objects through their whole life run again against
# the oldest Kubernetes version we support (README: "Kubernetes versions"); the run above
# used the newest (build.sh's default).
oldest_bin=$(scripts/control-plane/build.sh "$KUBE_DC_K8S_OLDEST" | tail -n 1)
echo "== lifecycle tests against Kubernetes $KUBE_DC_K8S_OLDEST ($oldest_bin)" | tee -a "$runner_log"
KUBE_DC_K8S_BIN="$oldest_bin" PATH="$oldest_bin:$PATH" \
  cargo test --no-fail-fast --test lifecycle --test go_migration --test self_rotation "$@" 2>&1 \
  | tee -a "$runner_log" || status=1
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
scripts/control-plane/check-no-leftovers.sh || status=1
scripts/check-canaries.sh "$KUBE_DC_TRANSCRIPT_DIR" || status=1
rm -rf "$KUBE_DC_TRANSCRIPT_DIR"
exit "$status"
