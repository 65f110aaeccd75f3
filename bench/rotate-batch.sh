#!/usr/bin/env bash
# Batch rotation speed-up: 12 clusters on one local control plane (each in its own
# namespace via BREAK_GLASS_NAMESPACE), `rotate --all --jobs 1` then `--jobs 6`, release
# build, real sops and git commits, in one run. Prints both wall times and the ratio.
set -euo pipefail
clusters=${1:-12}
# shellcheck source=scripts/prepare.sh
source "$(dirname "$0")/../scripts/prepare.sh"
cargo build --quiet --release
kube_dc=$root/target/release/kube-dc

work=$(mktemp -d)
trap '"$root"/scripts/control-plane/down.sh "$work/cp" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$root"/scripts/control-plane/up.sh "$work/cp" --owner-pid $$ >/dev/null 2>&1
# shellcheck disable=SC1091
source "$work/cp/env"

fleet=$work/fleet
mkdir -p "$fleet/clusters"
cp fleet-fixture/.sops.yaml "$fleet/"
export SOPS_AGE_KEY_FILE=$root/fleet-fixture/TEST-ONLY-age-key.txt
context=$(kubectl --kubeconfig "$ADMIN_KUBECONFIG" config current-context)
for i in $(seq -w 1 "$clusters"); do
  name=c$i
  mkdir -p "$fleet/clusters/$name"
  printf 'KUBE_API_EXTERNAL_URL=%s\nKUBE_CONTEXT=%s\nBREAK_GLASS_NAMESPACE=bg-%s\n' \
    "$KUBE_APISERVER_URL" "$context" "$name" >"$fleet/clusters/$name/cluster-config.env"
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" create namespace "bg-$name" >/dev/null
done
git -C "$fleet" init -q -b main
git -C "$fleet" add -A
git -C "$fleet" -c user.name=bench -c user.email=bench@example.test commit -q -m "bench fleet"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.test GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.test

bg() { "$kube_dc" --repo "$fleet" bootstrap break-glass "$@" --kubeconfig "$ADMIN_KUBECONFIG"; }
for i in $(seq -w 1 "$clusters"); do bg adopt "c$i" >/dev/null 2>&1; done

seconds() {
  local start end
  start=$(date +%s.%N)
  bg rotate --all "$@" >"$work/out.txt" 2>&1 || { cat "$work/out.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}
serial=$(seconds --jobs 1)
parallel=$(seconds --jobs 6)
ratio=$(awk -v a="$serial" -v b="$parallel" 'BEGIN { printf "%.1f", a / b }')
commits=$(git -C "$fleet" rev-list --count HEAD)
printf 'rotate %s clusters: --jobs 1 %ss, --jobs 6 %ss, speed-up %sx (target >= 3x); %s commits in the fleet\n' \
  "$clusters" "$serial" "$parallel" "$ratio" "$commits"
