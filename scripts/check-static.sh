#!/usr/bin/env bash
# The bastion check for scripts/build-static.sh's binary: from a directory holding nothing
# but that binary, the fleet and the age key, under `env -i` with an empty PATH (no sops,
# no age, no git on the machine), `status --all --no-decrypt`, `status alpha` (decrypts
# in-process) and `use alpha -- COMMAND` run.
# Usage: scripts/check-static.sh [BINARY]   (default: build it with scripts/build-static.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-$(scripts/build-static.sh)}

box=$(mktemp -d "${TMPDIR:-/tmp}/kube-dc-bastion.XXXXXX")
trap 'rm -rf "$box"' EXIT
cp "$bin" "$box/kube-dc"
cp -R fleet-fixture "$box/fleet"
mv "$box/fleet/TEST-ONLY-age-key.txt" "$box/age-key.txt"
mkdir -m 0700 "$box/home"

fail() { echo "check-static: $*" >&2; exit 1; }
# Runs kube-dc in the fleet with only the variables given.
bastion() { (cd "$box/fleet" && env -i PATH= HOME="$box/home" "$@"); }

out=$(bastion "$box/kube-dc" bootstrap break-glass status --all --no-decrypt) \
  || fail "status --all --no-decrypt failed: $out"
grep -q '3 cluster(s)' <<<"$out" || fail "unexpected status output: $out"
echo "ok: status --all --no-decrypt" >&2

keyed=(SOPS_AGE_KEY_FILE="$box/age-key.txt" NO_COLOR=1)
out=$(bastion "${keyed[@]}" "$box/kube-dc" bootstrap break-glass status alpha) \
  || fail "status alpha failed: $out"
grep -q 'decrypts: *ok' <<<"$out" || fail "status alpha did not decrypt: $out"
echo "ok: status alpha (decrypts)" >&2

# `use` runs the command with KUBECONFIG set; the binary itself is the only command there is.
out=$(bastion "${keyed[@]}" "$box/kube-dc" bootstrap break-glass use alpha --reason "check-static: bastion test" -- "$box/kube-dc" --version 2>&1) \
  || fail "use alpha failed: $out"
grep -q '^kube-dc ' <<<"$out" || fail "use alpha did not run the command: $out"
[ -z "$(ls -A "$box/home/.kube-dc/break-glass" 2>/dev/null)" ] || fail "use left a decrypted kubeconfig behind"
echo "ok: use alpha -- COMMAND" >&2
echo "check-static: $bin runs status and use under env -i with an empty PATH" >&2
