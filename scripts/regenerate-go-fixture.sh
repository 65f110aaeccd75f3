#!/usr/bin/env bash
# Re-creates tests/fixtures/go-fleet/: a fleet whose break-glass files were written by the
# real Go kube-dc tool (github.com/kube-dc/kube-dc-public, cli/, built from its public
# source at $GO_KUBE_DC_COMMIT into a temp directory outside this repo; or the binary named
# by $GO_KUBE_DC), with the .sops.yaml of fleets that tool sets up (one rule for every
# *.enc.yaml, encrypted_regex ^(data|stringData)$) and its layouts: `Prod`, `my_cluster`,
# `region/dc/c1`, with no cluster-config.env.
#
# The tool adopts each cluster on a throwaway control plane, stopped and deleted at the end:
# the token in the files is signed by a key that no longer exists and opens nothing. (A
# canary token planted in the Secret beforehand does not survive: the token controller
# re-issues the token when the tool's apply updates the Secret.) Only the encrypted files
# are committed, never the tool.
#
# Needs: Go (for the tool), git, and what scripts/prepare.sh installs (sops, age, kubectl,
# the control plane).
set -euo pipefail
GO_KUBE_DC_COMMIT=${GO_KUBE_DC_COMMIT:-116783f9883fcb0762c01198f59bbb0fb5abcd4d}
CLUSTERS=(Prod my_cluster region/dc/c1)

# shellcheck source=scripts/prepare.sh
source "$(dirname "$0")/prepare.sh" # cds to the repo root, sets $root
out="${root:?set by prepare.sh}/tests/fixtures/go-fleet"
work=$(mktemp -d "${TMPDIR:-/tmp}/kube-dc-go-fixture.XXXXXX")
cleanup() {
  [[ -d "$work/cp" ]] && scripts/control-plane/down.sh "$work/cp" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# --- the Go tool, from its public source, outside this repo --------------------------
go_tool=${GO_KUBE_DC:-}
if [[ -z "$go_tool" ]]; then
  PATH="$PATH:/usr/local/go/bin"
  git clone -q --filter=blob:none https://github.com/kube-dc/kube-dc-public "$work/src"
  git -C "$work/src" checkout -q "$GO_KUBE_DC_COMMIT"
  (cd "$work/src/cli" && GOFLAGS=-mod=mod go build -o "$work/kube-dc-go" ./cmd/kube-dc)
  go_tool="$work/kube-dc-go"
fi

# --- a throwaway control plane -------------------------------------------------------
scripts/control-plane/up.sh "$work/cp" --owner-pid $$ >/dev/null
export KUBECONFIG="$work/cp/admin.kubeconfig"

# --- the fleet, as the Go tool's users have it ---------------------------------------
fleet="$work/fleet"
recipient=$(grep -o 'age1[0-9a-z]*' fleet-fixture/.sops.yaml | head -1)
mkdir -p "$fleet"
printf 'creation_rules:\n  - path_regex: \\.enc\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: %s\n' \
  "$recipient" >"$fleet/.sops.yaml"
export SOPS_AGE_KEY_FILE="$root/fleet-fixture/TEST-ONLY-age-key.txt"
for cluster in "${CLUSTERS[@]}"; do
  mkdir -p "$fleet/clusters/$cluster"
  slug=${cluster//\//-}
  "$go_tool" bootstrap break-glass adopt "$cluster" --repo "$fleet" \
    --server "https://kube-api.${slug,,}.example.test:6443" >&2
done

rm -rf "$out"
mkdir -p "$out"
cp "$fleet/.sops.yaml" "$out/.sops.yaml"
for cluster in "${CLUSTERS[@]}"; do
  mkdir -p "$out/clusters/$cluster"
  cp "$fleet/clusters/$cluster/break-glass-kubeconfig.enc.yaml" "$out/clusters/$cluster/"
done
printf 'Go kube-dc %s\n' "$GO_KUBE_DC_COMMIT" >"$out/WRITTEN-BY"
echo "wrote $out" >&2
