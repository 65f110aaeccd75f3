#!/usr/bin/env bash
# Stop a control plane started by up.sh and remove its state.
#
# Usage: scripts/control-plane/down.sh DIR [--keep]
#
# Sends SIGTERM to the process group of every process in DIR/pids (controller-manager and
# apiserver first, etcd last), waits up to ${KUBE_DC_CP_STOP_GRACE:-5} seconds per phase,
# then SIGKILLs what is left. Idempotent: a missing DIR
# or already-dead processes are fine. Removes DIR unless --keep.
# A pid is only signalled while its /proc/PID/cmdline still mentions DIR (pid reuse guard).
set -euo pipefail
# The whole script is one brace group, so bash reads it completely before running it:
# editing or updating this file (git pull) while it runs cannot change a running instance.
{

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

# stop_phase PID...: SIGTERM the groups, wait up to $grace seconds, SIGKILL what is left.
stop_phase() {
  local pid targets=() left
  for pid in "$@"; do
    if alive "$pid" && ours "$pid"; then
      targets+=("$pid")
      signal TERM "$pid"
    fi
  done
  [[ ${#targets[@]} -gt 0 ]] || return 0
  local deadline=$((SECONDS + grace))
  while :; do
    left=()
    for pid in "${targets[@]}"; do alive "$pid" && left+=("$pid"); done
    [[ ${#left[@]} -eq 0 ]] && return 0
    ((SECONDS < deadline)) || break
    sleep 0.1
  done
  printf 'down.sh: killing %s after %ss\n' "${left[*]}" "$grace" >&2
  for pid in "${left[@]}"; do signal KILL "$pid"; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    sleep 0.1
    local still=()
    for pid in "${left[@]}"; do alive "$pid" && still+=("$pid"); done
    [[ ${#still[@]} -eq 0 ]] && return 0
  done
  printf 'down.sh: error: %s survived SIGKILL\n' "${still[*]}" >&2
  return 1
}

# Phases: the etcd clients (controller-manager, apiserver, anything else), then etcd, so
# that etcd does not wait for open watches and the apiserver does not wait for a stopping
# etcd; the watchdog (unless it is the one running us) last, so that if this script is
# killed half-way together with the owner (e.g. SIGKILL of a process group), the watchdog
# still sees the owner gone and finishes the job.
watchdog=() clients=() etcd=()
if [[ -f "$dir/pids" ]]; then
  while read -r name pid; do
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    [[ "$pid" == "$$" || "$pid" == "$PPID" ]] && continue
    case "$name" in
      watchdog) watchdog+=("$pid") ;;
      etcd) etcd+=("$pid") ;;
      *) clients+=("$pid") ;;
    esac
  done <"$dir/pids"
fi
rc=0
stop_phase "${clients[@]}" || rc=1
stop_phase "${etcd[@]}" || rc=1
stop_phase "${watchdog[@]}" || rc=1
[[ $rc -eq 0 ]] || exit 1

if [[ $keep -eq 0 ]]; then
  rm -rf "$dir"
fi
exit
}
