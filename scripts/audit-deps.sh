#!/usr/bin/env bash
# Dependency gate for CI (.ci/run): cargo-deny's bans, licenses and sources checks
# (deny.toml), which need no network, then its advisories check against the RustSec
# advisory database. That database is a Git repository on GitHub: cargo-deny fetches it
# where GitHub is reachable. A copy placed in $KUBE_DC_ADVISORY_DB (default
# ~/.cache/kube-dc/advisory-db, laid out as cargo-deny's db-path) is used offline first, for
# machines that only reach package registries; with neither, the gate says loudly that
# advisories were NOT checked (the other checks still gate).
set -euo pipefail
cd "$(dirname "$0")/.."
db=${KUBE_DC_ADVISORY_DB:-$HOME/.cache/kube-dc/advisory-db}

cargo deny --offline check bans licenses sources

config=$(mktemp)
trap 'rm -f "$config"' EXIT
sed "s|^yanked = \"deny\"|&\ndb-path = \"$db\"|" deny.toml >"$config"
if ls -d "$db"/advisory-db-* >/dev/null 2>&1; then
  cargo deny --offline --config "$config" check advisories
  printf 'audit-deps: advisories checked offline against the RustSec database of %s\n' \
    "$(git -C "$(ls -d "$db"/advisory-db-* | head -n 1)" log -1 --format=%cs)"
elif git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  cargo deny --config "$config" check advisories
else
  # Not a pass: said on every run, so that nobody reads a green gate as audited.
  echo "audit-deps: WARNING: advisories NOT CHECKED: GitHub is unreachable and $db holds no copy of the RustSec database" >&2
fi
