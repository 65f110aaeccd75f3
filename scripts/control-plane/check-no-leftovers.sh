#!/usr/bin/env bash
# Fail (exit 1) and list them if any etcd / kube-apiserver / kube-controller-manager
# started from the kube-dc binary cache, or any kube-dc control-plane watchdog, is
# still running. For CI to call after the tests.
#
# Usage: scripts/control-plane/check-no-leftovers.sh
# Waits up to ${KUBE_DC_LEFTOVER_GRACE:-20} seconds for them to go away first: a control
# plane held in a never-dropped static is stopped by its watchdog (up.sh --owner-pid) about
# a second after its test process exits, plus down.sh's grace period.
# Looks under ${KUBE_DC_K8S_CACHE:-$HOME/.cache/kube-dc/k8s} (every cached version) and,
# if set, $KUBE_DC_K8S_BIN.
# With $KUBE_DC_RUN_ID set (scripts/test.sh sets a fresh one per run), only processes that
# inherited that same value count: control planes of other runs on the machine (another
# checkout's tests, a demo) are not this run's leftovers.
set -euo pipefail

cache_root="${KUBE_DC_K8S_CACHE:-${HOME:?HOME is not set}/.cache/kube-dc/k8s}"
roots=("$cache_root")
[[ -n "${KUBE_DC_K8S_BIN:-}" ]] && roots+=("$KUBE_DC_K8S_BIN")
# Canonical paths, since /proc/PID/exe is canonical.
for i in "${!roots[@]}"; do
  roots[i]=$(readlink -m "${roots[i]}")
done

started_by_this_run() {
  tr '\0' '\n' <"$1/environ" 2>/dev/null | grep -qxF "KUBE_DC_RUN_ID=$KUBE_DC_RUN_ID"
}

scan() {
  found=()
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
    st=$(cat "$p/stat" 2>/dev/null) || continue
    st=${st##*) }
    [[ "${st%% *}" == Z ]] && continue # zombies hold no resources and cannot be killed
    mapfile -d '' -t argv <"$p/cmdline" 2>/dev/null || continue
    [[ ${#argv[@]} -gt 0 ]] || continue
    cmd="${argv[*]}"
    exe=$(readlink "$p/exe" 2>/dev/null || true)
    exe=${exe% (deleted)}
    hit=0
    case "${exe##*/}" in
      etcd|kube-apiserver|kube-controller-manager)
        for r in "${roots[@]}"; do [[ "$exe" == "$r"/* ]] && hit=1; done ;;
    esac
    if [[ ${#argv[@]} -ge 6 && "${argv[3]}" == kube-dc-watchdog ]]; then
      hit=1 cmd="kube-dc-watchdog for ${argv[4]} (owner pid ${argv[5]})"
    fi
    if [[ $hit -eq 1 && -n "${KUBE_DC_RUN_ID:-}" ]] && ! started_by_this_run "$p"; then hit=0; fi
    if [[ $hit -eq 1 ]]; then found+=("$pid ${cmd:0:200}"); fi
  done
}

deadline=$((SECONDS + ${KUBE_DC_LEFTOVER_GRACE:-20}))
scan
while [[ ${#found[@]} -gt 0 ]] && ((SECONDS < deadline)); do
  sleep 0.5
  scan
done

if [[ ${#found[@]} -gt 0 ]]; then
  printf 'check-no-leftovers: %d control-plane process(es) still running:\n' "${#found[@]}" >&2
  printf '  %s\n' "${found[@]}" >&2
  exit 1
fi
echo "check-no-leftovers: no control-plane processes left"
