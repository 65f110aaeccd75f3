#!/usr/bin/env bash
# Benchmark for `kube-dc bootstrap break-glass status --all` (issue 5).
#
# Generates a fleet of CLUSTERS clusters whose break-glass files are real sops files
# (encrypted to the fixture's TEST-ONLY key, one sops process per file, in parallel) and a
# history of COMMITS commits built with `git fast-import`: the break-glass files are added
# in the first commits and every later commit changes one cluster's cluster-config.env, so
# the files are old and `git log -1 -- <file>` walks nearly the whole history. The fleet is
# cached under ~/.cache/kube-dc/bench/ so re-runs start timing at once.
#
# Then, in one run, times (release build):
#   status --all               best of 5 (in-process sops reader)
#   status --all with KUBE_DC_SOPS_DECRYPT=binary (a sops process per file), best of 1
#   status --all --no-decrypt  best of 5
#   use <cluster> -- true      best of 5, in-process and with the binary forced
#   the baseline loop: `sops decrypt` + `git log -1` per cluster
# and prints the ratios. BASELINE_SAMPLE=n times the loop on n evenly spread clusters and
# scales it to all of them (the full loop takes ~15 minutes at 1,000 clusters).
#
# Usage: bench/status-all.sh [CLUSTERS] [COMMITS]
# Needs: scripts/install-test-deps.sh (sops), git, a Rust toolchain.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
clusters=${1:-1000}
commits=${2:-5000}
sample=${BASELINE_SAMPLE:-$clusters}
sops=$(command -v sops || echo "$HOME/.cache/kube-dc/tools/bin/sops")
[ -x "$sops" ] || { echo "bench: sops not found; run scripts/install-test-deps.sh" >&2; exit 2; }
((commits > clusters)) || { echo "bench: COMMITS must exceed CLUSTERS" >&2; exit 2; }

(cd "$root" && cargo build --release --quiet)
kube_dc=$root/target/release/kube-dc

cache=${KUBE_DC_BENCH_CACHE:-$HOME/.cache/kube-dc/bench}/status-all-v2-$clusters-$commits
fleet=$cache/fleet
key=$root/fleet-fixture/TEST-ONLY-age-key.txt
# Nothing from the developer's Git or sops setup may change the figures. HOME is new per
# run: `use` journals its sessions there, and a journal kept in the cache would make the next
# run's `status --all --check` fail on the last run's sessions.
HOME=$(mktemp -d "${TMPDIR:-/tmp}/kube-dc-bench-home.XXXXXX")
trap 'rm -rf "$HOME"' EXIT
export HOME GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export SOPS_AGE_KEY_FILE=$key KUBE_DC_SOPS=$sops NO_COLOR=1
log() { printf '[bench] %s\n' "$*" >&2; }

name() { printf 'c%04d' "$1"; }

encrypt_all() {
  local out=$1
  mkdir -p "$out"
  cp "$root/fleet-fixture/.sops.yaml" "$out/.sops.yaml"
  export sops out
  # shellcheck disable=SC2016 # expanded by the inner shell
  seq 0 $((clusters - 1)) | xargs -P "$(nproc)" -n 50 sh -c '
    cd "$out"
    for i in "$@"; do
      c=$(printf "c%04d" "$i")
      printf "apiVersion: v1\nkind: Config\nclusters:\n- name: %s\n  cluster:\n    server: https://kube-api.%s.example.test:6443\n    certificate-authority-data: VEVTVC1PTkxZ\nusers:\n- name: break-glass\n  user:\n    token: TEST-ONLY-token-%s\ncontexts:\n- name: %s\n  context:\n    cluster: %s\n    user: break-glass\ncurrent-context: %s\n" "$c" "$c" "$c" "$c" "$c" "$c" |
        "$sops" encrypt --filename-override "clusters/$c/break-glass-kubeconfig.enc.yaml" >"$c.yaml"
    done' sh
}

# One inline file in a fast-import commit.
inline() {
  printf 'M 100644 inline %s\ndata %d\n' "$1" "${#2}"
  printf '%s\n' "$2"
}

commit_header() {
  local mark=$1 time=$2 message=$3
  printf 'commit refs/heads/main\nmark :%d\n' "$mark"
  printf 'author Bench <bench@example.test> %d +0000\ncommitter Bench <bench@example.test> %d +0000\n' "$time" "$time"
  printf 'data %d\n%s\n' "${#message}" "$message"
  ((mark == 1)) || printf 'from :%d\n' $((mark - 1))
}

history_stream() {
  local encrypted=$1 start=$(($(date +%s) - commits * 3600)) mark=1
  commit_header $mark $start "fleet: sops rules"
  inline .sops.yaml "$(cat "$root/fleet-fixture/.sops.yaml")"
  for ((i = 0; i < clusters; i++)); do
    mark=$((mark + 1))
    c=$(name $i)
    commit_header $mark $((start + mark * 3600)) "$c: adopt break-glass kubeconfig"
    inline "clusters/$c/cluster-config.env" "CLUSTER_NAME=$c"
    printf 'M 100644 inline clusters/%s/break-glass-kubeconfig.enc.yaml\ndata %d\n' "$c" "$(stat -c %s "$encrypted/$c.yaml")"
    cat "$encrypted/$c.yaml"
    printf '\n'
  done
  while ((mark < commits)); do
    mark=$((mark + 1))
    c=$(name $(((RANDOM * 32768 + RANDOM) % clusters)))
    commit_header $mark $((start + mark * 3600)) "$c: config revision $mark"
    inline "clusters/$c/cluster-config.env" "CLUSTER_NAME=$c
REVISION=$mark"
  done
}

generate() {
  log "generating $clusters clusters (real sops files) and $commits commits in $cache"
  rm -rf "$cache"
  mkdir -p "$cache"
  local encrypted=$cache/encrypted
  encrypt_all "$encrypted"
  git init -q -b main "$fleet"
  history_stream "$encrypted" | git -C "$fleet" fast-import --quiet
  git -C "$fleet" reset -q --hard main
  # An upstream that has every commit, as in a fresh clone.
  git -C "$fleet" update-ref refs/remotes/origin/main main
  git -C "$fleet" config remote.origin.url /nonexistent/fleet.git
  git -C "$fleet" config branch.main.remote origin
  git -C "$fleet" config branch.main.merge refs/heads/main
  rm -rf "$encrypted"
  touch "$cache/.complete"
}

[ -f "$cache/.complete" ] || generate
log "fleet: $(git -C "$fleet" rev-list --count HEAD) commits, $(find "$fleet/clusters" -mindepth 1 -maxdepth 1 -type d | wc -l) clusters"

now() { date +%s.%N; }
# Best wall time of N runs of a command, in seconds.
best_of() {
  local n=$1 best="" t0 t1 s
  shift
  for ((r = 0; r < n; r++)); do
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    s=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || (($(echo "$s < $best" | bc -l))); then best=$s; fi
  done
  echo "$best"
}

status_all() { "$kube_dc" --repo "$fleet" bootstrap break-glass status --all "$@"; }
use_true() { "$kube_dc" --repo "$fleet" bootstrap break-glass use "$(name 0)" --reason bench -- true 2>/dev/null; }

baseline() {
  local step=$((clusters / sample)) i c
  cd "$fleet"
  for ((i = 0; i < clusters; i += step)); do
    c=$(name $i)
    "$sops" decrypt "clusters/$c/break-glass-kubeconfig.enc.yaml" >/dev/null
    git log -1 --format='%h %an %ad %s' -- "clusters/$c/break-glass-kubeconfig.enc.yaml" >/dev/null
  done
}

# A correct report first: every cluster committed, decrypted, no problems.
status_all --check >/dev/null || { echo "bench: status --all --check failed on the generated fleet" >&2; exit 1; }

log "timing status --all (best of 5)"
full=$(best_of 5 status_all)
log "timing status --all with the sops binary forced (best of 1)"
binary=$(KUBE_DC_SOPS_DECRYPT=binary best_of 1 status_all)
log "timing status --all --no-decrypt (best of 5)"
nodecrypt=$(best_of 5 status_all --no-decrypt)
log "timing use -- true, in-process and with the binary forced (best of 5 each)"
use_reader=$(best_of 5 use_true)
use_binary=$(KUBE_DC_SOPS_DECRYPT=binary best_of 5 use_true)
log "timing the baseline loop on $sample of $clusters clusters"
measured=$(best_of 1 baseline)
step=$((clusters / sample))
loop=$(echo "$measured * $clusters / $(((clusters + step - 1) / step))" | bc -l)

printf '\nstatus --all benchmark: %d clusters, %d commits, %d cores (%s)\n' "$clusters" "$commits" "$(nproc)" "$(date -u +%Y-%m-%d)"
printf '  baseline loop (sops decrypt + git log -1 per cluster): %8.2f s' "$loop"
[ "$sample" -eq "$clusters" ] && printf '\n' || printf '  (measured %.2f s on %d clusters, scaled)\n' "$measured" "$sample"
printf '  status --all:                                          %8.3f s   %6.1fx faster\n' "$full" "$(echo "$loop / $full" | bc -l)"
printf '  status --all, sops binary forced:                      %8.3f s   in-process is %.1fx faster\n' "$binary" "$(echo "$binary / $full" | bc -l)"
printf '  status --all --no-decrypt:                             %8.3f s   %6.1fx faster\n' "$nodecrypt" "$(echo "$loop / $nodecrypt" | bc -l)"
printf '  use -- true: in-process %.3f s, sops binary forced %.3f s\n' "$use_reader" "$use_binary"
printf '  targets: status --all >= 15x faster than with the binary forced and < 0.5 s; --no-decrypt no slower than before the in-process reader (0.38 s)\n'
