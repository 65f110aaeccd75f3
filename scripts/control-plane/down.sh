#!/usr/bin/env bash
# Stop a control plane started by up.sh and remove its state.
#
# Usage: scripts/control-plane/down.sh DIR [--keep]
#
# Sends SIGTERM to the process group of every process in DIR/pids, waits up to
# ${KUBE_DC_CP_STOP_GRACE:-5} seconds, then SIGKILLs what is left. Idempotent: a missing DIR
# or already-dead processes are fine. Removes DIR unless --keep.
# A pid is only signalled while its /proc/PID/cmdline still mentions DIR (pid reuse guard).
set -euo pipefail

usage() { printf 'usage: %s DIR [--keep]\n' "$0" >&2; exit 2; }
dir="" keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --keep) keep=1; shift ;;
    -h|--help) usage ;;
    -*) printf 'down.sh: unknown option %s\n' "$1" >&2; usage ;;
    *) [[ -z "$dir" ]] || usage; dir=$1; shift ;;
  esac
done
[[ -n "$dir" ]] || usage
[[ -d "$dir" ]] || exit 0
dir=$(cd "$dir" && pwd)
grace=${KUBE_DC_CP_STOP_GRACE:-5}

# Exists and is not a zombie.
alive() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ "${st%% *}" != Z ]]
}
# Still the process we started (its command line names DIR)?
ours() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ "$cmd" == *"$dir"* ]]
}
signal() { # SIG PID: the whole process group (each process leads its own), else the pid
  kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null || true
}

pids=()
if [[ -f "$dir/pids" ]]; then
  # Stop in reverse start order: controller-manager, apiserver, etcd; the watchdog first
  # unless it is the one running us.
  while read -r name pid; do
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    [[ "$pid" == "$$" || "$pid" == "$PPID" ]] && continue
    if [[ "$name" == watchdog ]]; then pids=("$pid" "${pids[@]}"); else pids+=("$pid"); fi
  done < <(tac "$dir/pids")
fi

targets=()
for pid in "${pids[@]}"; do
  if alive "$pid" && ours "$pid"; then
    targets+=("$pid")
    signal TERM "$pid"
  fi
done

if [[ ${#targets[@]} -gt 0 ]]; then
  deadline=$((SECONDS + grace))
  while :; do
    left=()
    for pid in "${targets[@]}"; do alive "$pid" && left+=("$pid"); done
    [[ ${#left[@]} -eq 0 ]] && break
    if ((SECONDS >= deadline)); then
      printf 'down.sh: killing %s after %ss\n' "${left[*]}" "$grace" >&2
      for pid in "${left[@]}"; do signal KILL "$pid"; done
      sleep 0.2
      for pid in "${left[@]}"; do
        if alive "$pid"; then
          printf 'down.sh: error: pid %s survived SIGKILL\n' "$pid" >&2
          exit 1
        fi
      done
      break
    fi
    sleep 0.1
  done
fi

if [[ $keep -eq 0 ]]; then
  rm -rf "$dir"
fi
