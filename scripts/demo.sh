#!/usr/bin/env bash
# The README's main command: the break-glass lifecycle end to end on a fresh machine.
# Installs sops/age, builds (or reuses) a local Kubernetes control plane, copies
# fleet-fixture/ into a temporary Git repo re-keyed to a fresh age key, then runs
# adopt, status, use -- kubectl auth whoami, rotate, status, a self-rotation with only the
# age key and status --all against the real kube-apiserver, and stops everything.
set -euo pipefail
# shellcheck source=scripts/prepare.sh
source "$(dirname "$0")/prepare.sh"
cargo build --quiet
kube_dc=$root/target/debug/kube-dc

work=$(mktemp -d)
cleanup() {
  "$root/scripts/control-plane/down.sh" "$work/control-plane" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A fleet of our own: the fixture, re-keyed to a fresh age key, in a Git repo.
fleet=$work/fleet
cp -r fleet-fixture "$fleet"
rm "$fleet/TEST-ONLY-age-key.txt"
age-keygen -o "$work/age.key" 2>/dev/null
recipient=$(age-keygen -y "$work/age.key")
sed -i -E "s/age1[a-z0-9]+/$recipient/" "$fleet/.sops.yaml"
export SOPS_AGE_KEY_FILE=$work/age.key
git -C "$fleet" init -q -b main
git -C "$fleet" add -A
git -C "$fleet" -c user.name=demo -c user.email=demo@example.test commit -q -m "demo fleet"

scripts/control-plane/up.sh "$work/control-plane" --owner-pid $$ >&2
# shellcheck disable=SC1091
source "$work/control-plane/env"
# The fleet records where beta's apiserver is: here, the local control plane.
sed -i "s|^KUBE_API_EXTERNAL_URL=.*|KUBE_API_EXTERNAL_URL=\"$KUBE_APISERVER_URL\"|" "$fleet/clusters/beta/cluster-config.env"
git -C "$fleet" -c user.name=demo -c user.email=demo@example.test commit -q -am "beta: local apiserver URL"

run() {
  printf '\n\033[1m$ %s\033[0m\n' "$*"
  "$@"
}
cd "$fleet"
run "$kube_dc" bootstrap break-glass adopt beta --kubeconfig "$ADMIN_KUBECONFIG"
run "$kube_dc" bootstrap break-glass status beta
run "$kube_dc" bootstrap break-glass use beta --reason "demo: INC-1 OIDC down" -- kubectl auth whoami
run "$kube_dc" bootstrap break-glass rotate beta --kubeconfig "$ADMIN_KUBECONFIG"
run "$kube_dc" bootstrap break-glass status beta --output json
# With nothing but the fleet file and the age key: no admin kubeconfig involved.
run "$kube_dc" bootstrap break-glass rotate beta --via break-glass
run "$kube_dc" bootstrap break-glass status --all
printf '\nDemo done: adopt, status, use, rotate (admin and self-rotation) against kube-apiserver %s.\n' "$KUBE_APISERVER_URL"
