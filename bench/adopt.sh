#!/usr/bin/env bash
# Wall time of `adopt` against the local control plane: 5 fresh adoptions (the break-glass
# objects are deleted before each), including the Git commit, release build, median and
# all runs in seconds.
set -euo pipefail
# shellcheck source=scripts/prepare.sh
source "$(dirname "$0")/../scripts/prepare.sh"
cargo build --quiet --release
kube_dc=$root/target/release/kube-dc

work=$(mktemp -d)
trap '"$root"/scripts/control-plane/down.sh "$work/cp" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cp -r fleet-fixture "$work/fleet"
export SOPS_AGE_KEY_FILE=$work/fleet/TEST-ONLY-age-key.txt
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.test GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.test
git -C "$work/fleet" init -q -b main
git -C "$work/fleet" add -A
git -C "$work/fleet" commit -q -m "bench fleet"
scripts/control-plane/up.sh "$work/cp" --owner-pid $$ >/dev/null 2>&1
# shellcheck disable=SC1091
source "$work/cp/env"

times=()
for _ in 1 2 3 4 5; do
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" delete -n kube-system secret/break-glass-token serviceaccount/break-glass --ignore-not-found --wait >/dev/null
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" delete clusterrolebinding/break-glass --ignore-not-found --wait >/dev/null
  start=$(date +%s.%N)
  "$kube_dc" --repo "$work/fleet" bootstrap break-glass adopt beta \
    --kubeconfig "$ADMIN_KUBECONFIG" --server "$KUBE_APISERVER_URL" >"$work/out.txt" 2>&1 ||
    { cat "$work/out.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
printf 'adopt on the local control plane: median %.3f s over 5 runs (%s)\n' "$median" "${times[*]}"
