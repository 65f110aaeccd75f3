#!/usr/bin/env bash
# Soak: N trials, each a kube-dc run killed with SIGKILL at a random moment, across adopt,
# rotate, self-rotation (--via break-glass) and a batch self-rotation of every cluster, on
# 4 clusters of one local control plane (namespaces), with real sops and git commits.
# After each kill: every break-glass file must be absent or a complete sops file, no
# plaintext credential may be left anywhere in the fleet, and the one command kube-dc
# documents for that run must recover it: `adopt <cluster>` after adopt or rotate (it
# re-reads the current Secret), the same self-rotation again after --via break-glass.
# Recovered means every file holds the token its cluster's Secret holds.
#
# Usage: bench/soak.sh [N]   (default 20). Prints one line of counts; exits 1 unless all
# counts but the trials are 0. KUBE_DC_BIN overrides the binary (default: a debug build).
set -euo pipefail
trials=${1:-20}
# shellcheck source=scripts/prepare.sh
source "$(dirname "$0")/../scripts/prepare.sh"
if [[ -z "${KUBE_DC_BIN:-}" ]]; then
  cargo build --quiet
  KUBE_DC_BIN=$root/target/debug/kube-dc
fi

work=$(mktemp -d)
trap '"$root"/scripts/control-plane/down.sh "$work/cp" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$root"/scripts/control-plane/up.sh "$work/cp" --owner-pid $$ >/dev/null 2>&1
# shellcheck disable=SC1091
source "$work/cp/env"

export HOME=$work/home GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 NO_COLOR=1
export GIT_AUTHOR_NAME=soak GIT_AUTHOR_EMAIL=soak@example.test GIT_COMMITTER_NAME=soak GIT_COMMITTER_EMAIL=soak@example.test
export SOPS_AGE_KEY_FILE=$root/fleet-fixture/TEST-ONLY-age-key.txt
mkdir -p "$HOME"
fleet=$work/fleet
clusters=(c1 c2 c3 c4)
mkdir -p "$fleet/clusters"
cp "$root/fleet-fixture/.sops.yaml" "$fleet/"
context=$(kubectl --kubeconfig "$ADMIN_KUBECONFIG" config current-context)
for c in "${clusters[@]}"; do
  mkdir -p "$fleet/clusters/$c"
  printf 'KUBE_API_EXTERNAL_URL=%s\nKUBE_CONTEXT=%s\nBREAK_GLASS_NAMESPACE=bg-%s\n' \
    "$KUBE_APISERVER_URL" "$context" "$c" >"$fleet/clusters/$c/cluster-config.env"
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" create namespace "bg-$c" >/dev/null
done
git -C "$fleet" init -q -b main
git -C "$fleet" add -A
git -C "$fleet" commit -q -m "soak fleet"

bg() { "$KUBE_DC_BIN" --repo "$fleet" bootstrap break-glass "$@"; }
admin=(--kubeconfig "$ADMIN_KUBECONFIG")
for c in "${clusters[@]}"; do bg adopt "$c" "${admin[@]}" >/dev/null 2>&1; done

file() { echo "$fleet/clusters/$1/break-glass-kubeconfig.enc.yaml"; }
file_token() { sops decrypt "$(file "$1")" 2>/dev/null | sed -n 's/^ *token: //p'; }
live_token() {
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" get secret -n "bg-$1" break-glass-token \
    -o 'jsonpath={.data.token}' 2>/dev/null | base64 -d
}

partial=0 plaintext=0 unrecovered=0
for ((t = 1; t <= trials; t++)); do
  c=${clusters[RANDOM % ${#clusters[@]}]}
  fix=(adopt "$c" "${admin[@]}")
  case $((RANDOM % 4)) in
    0) kind=adopt; run=(adopt "$c" "${admin[@]}") ;;
    1) kind=rotate; run=(rotate "$c" "${admin[@]}") ;;
    2) kind=self; run=(rotate "$c" --via break-glass); fix=("${run[@]}") ;;
    *) kind="batch"; run=(rotate --all --via break-glass --jobs 4); fix=("${run[@]}") ;;
  esac
  # The binary itself in the background (not through bg(): $! would be a subshell).
  "$KUBE_DC_BIN" --repo "$fleet" bootstrap break-glass "${run[@]}" >"$work/run.log" 2>&1 &
  pid=$!
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", (r % 2500) / 1000 }')"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # A git or sops the run started finishes on its own; let it.
  sleep 0.3

  for x in "${clusters[@]}"; do
    f=$(file "$x")
    if [[ -e "$f" ]] && ! sops decrypt "$f" >/dev/null 2>&1; then
      partial=$((partial + 1))
      echo "trial $t ($kind $c): $f is not a complete sops file" >&2
    fi
  done
  # Clear credentials anywhere in the fleet or the session directory (not .git: history).
  while IFS= read -r leak; do
    plaintext=$((plaintext + 1))
    echo "trial $t ($kind $c): plaintext credential in $leak" >&2
  done < <(grep -rlE '^[[:space:]]*(token|client-key-data): [^E[:space:]]' "$fleet" "$HOME" --exclude-dir=.git 2>/dev/null || true)

  if ! bg "${fix[@]}" >"$work/fix.log" 2>&1; then
    unrecovered=$((unrecovered + 1))
    echo "trial $t ($kind $c): '${fix[*]}' failed:" >&2
    tail -5 "$work/fix.log" >&2
    continue
  fi
  for x in "${clusters[@]}"; do
    [[ "$kind" == batch || "$x" == "$c" ]] || continue
    if [[ "$(file_token "$x")" != "$(live_token "$x")" ]]; then
      unrecovered=$((unrecovered + 1))
      echo "trial $t ($kind $c): after '${fix[*]}' $x's file does not hold its live token" >&2
    fi
  done
done
printf 'soak: trials %d, partial files %d, plaintext files left %d, runs one command could not recover %d\n' \
  "$trials" "$partial" "$plaintext" "$unrecovered"
((partial == 0 && plaintext == 0 && unrecovered == 0))
