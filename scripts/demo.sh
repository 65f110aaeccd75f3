#!/usr/bin/env bash
# The README's main command: the break-glass lifecycle end to end on a fresh machine.
# For now: `status` on a copy of fleet-fixture/ with the fixture's TEST-ONLY key.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-test-deps.sh
export PATH="$HOME/.cache/kube-dc/tools/bin:$PATH"
cargo build --quiet
kube_dc=$root/target/debug/kube-dc

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r fleet-fixture "$work/fleet"
export SOPS_AGE_KEY_FILE=$work/fleet/TEST-ONLY-age-key.txt

run() { printf '\n$ %s\n' "$*"; "$@"; }
run "$kube_dc" --repo "$work/fleet" bootstrap break-glass status alpha
run "$kube_dc" --repo "$work/fleet" bootstrap break-glass status alpha --output json
