#!/usr/bin/env bash
# Fails when a canary secret (tests/support/canary.rs: every fixture credential is one,
# but the Go fixture's dead tokens, added below) or any 20-character piece of one appears in the output kube-dc gave during the test
# suite, or in the test runner's own output: the same rule as canary::leaked, with the
# canaries read from that file so there is one list.
# Usage: scripts/check-canaries.sh TRANSCRIPT_DIR
set -euo pipefail
dir=${1:?usage: check-canaries.sh TRANSCRIPT_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
files=$(find "$dir" -type f | wc -l)
bytes=$(find "$dir" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
if [ "$files" -lt 2 ]; then
  echo "check-canaries: no transcripts in $dir: the tests did not run kube-dc through tests/support" >&2
  exit 1
fi
patterns=$(mktemp)
go_tokens=$(mktemp)
trap 'rm -f "$patterns" "$go_tokens"' EXIT
# The Go fixture's files (tests/fixtures/go-fleet) hold real tokens of a control plane
# that no longer exists, not canaries (the token controller re-issues whatever is planted):
# they are looked for too, read with sops and the fixture's key.
while IFS= read -r -d '' file; do
  SOPS_AGE_KEY_FILE="$root/fleet-fixture/TEST-ONLY-age-key.txt" \
    sops decrypt --extract '["users"][0]["user"]["token"]' "$file" >>"$go_tokens"
  echo >>"$go_tokens"
done < <(find "$root/tests/fixtures/go-fleet" -name break-glass-kubeconfig.enc.yaml -print0)
if [ "$(grep -c . "$go_tokens")" -lt 3 ]; then
  echo "check-canaries: could not read the Go fixture's tokens (sops decrypt)" >&2
  exit 1
fi
python3 - "$root/tests/support/canary.rs" "$go_tokens" >"$patterns" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
const = dict(re.findall(r'pub const (\w+): &str = "([^"]*)";', src))
window = int(re.search(r'pub const WINDOW: usize = (\d+);', src).group(1))
generic = re.search(r'const GENERIC_JWT_HEADER: &str = "([^"]*)";', src).group(1)
names = re.search(r'pub const SECRETS: &\[&str\] = &\[([^\]]*)\];', src).group(1)
pieces = {const["MARKER"]}
for name in (n.strip() for n in names.split(",") if n.strip()):
    secret = const[name]
    pieces.update(p for p in (secret[i:i + window] for i in range(len(secret) - window + 1))
                  if p not in generic)
for token in open(sys.argv[2]).read().split():
    pieces.update(p for p in (token[i:i + window] for i in range(len(token) - window + 1))
                  if p not in generic)
print("\n".join(sorted(pieces)))
PY
if [ "$(wc -l <"$patterns")" -lt 10 ]; then
  echo "check-canaries: could not read the canaries from tests/support/canary.rs" >&2
  exit 1
fi
if hits=$(grep -rlF -f "$patterns" "$dir"); then
  echo "check-canaries: a canary secret appeared in test output:" >&2
  for f in $hits; do
    printf '  %s: %s line(s)\n' "$f" "$(grep -cF -f "$patterns" "$f")" >&2
  done
  exit 1
fi
echo "check-canaries: $files transcripts, $bytes bytes of kube-dc and test output, $(wc -l <"$patterns") canary pieces looked for, 0 found"
