#!/usr/bin/env bash
# Fails when any canary secret (tests/support/canary.rs: every fixture credential holds the
# marker KDCcanary) appears in the output kube-dc gave during the test suite, or in the test
# runner's own output. Usage: scripts/check-canaries.sh TRANSCRIPT_DIR
set -euo pipefail
dir=${1:?usage: check-canaries.sh TRANSCRIPT_DIR}
marker=KDCcanary
files=$(find "$dir" -type f | wc -l)
bytes=$(find "$dir" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
if [ "$files" -lt 2 ]; then
  echo "check-canaries: no transcripts in $dir: the tests did not run kube-dc through tests/support" >&2
  exit 1
fi
if hits=$(grep -rlF "$marker" "$dir"); then
  echo "check-canaries: a canary secret appeared in test output:" >&2
  for f in $hits; do
    printf '  %s: %s line(s)\n' "$f" "$(grep -cF "$marker" "$f")" >&2
  done
  exit 1
fi
echo "check-canaries: $files transcripts, $bytes bytes of kube-dc and test output, 0 canary secrets"
