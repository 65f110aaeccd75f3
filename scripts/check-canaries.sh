#!/usr/bin/env bash
# Fails when a canary secret (tests/support/canary.rs: every fixture credential is one)
# or any 20-character piece of one appears in the output kube-dc gave during the test
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
trap 'rm -f "$patterns"' EXIT
python3 - "$root/tests/support/canary.rs" >"$patterns" <<'PY'
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
