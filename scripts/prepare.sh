# shellcheck shell=bash
# Sourced (not run) by the test, demo and benchmark scripts: installs what they need and
# puts sops, age and the control-plane binaries on PATH. Sets `root` to the repo root and
# cds there.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
scripts/install-test-deps.sh
KUBE_DC_K8S_BIN=$(scripts/control-plane/build.sh | tail -n 1)
export KUBE_DC_K8S_BIN
export PATH="$HOME/.cache/kube-dc/tools/bin:$KUBE_DC_K8S_BIN:$PATH"
