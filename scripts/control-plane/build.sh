#!/usr/bin/env bash
# Build (once) and cache the binaries of a real Kubernetes control plane for tests:
# kube-apiserver, kube-controller-manager, kubectl and etcd, from the Go module proxy.
#
# Usage: scripts/control-plane/build.sh [vMAJOR.MINOR.PATCH]
#   bin=$(scripts/control-plane/build.sh | tail -1)
#   bin=$(KUBE_DC_K8S_VERSION=v1.28.15 scripts/control-plane/build.sh | tail -1)
#
# The Kubernetes version is the argument, else $KUBE_DC_K8S_VERSION, else v1.37.2 (the
# version k8s-openapi's v1_37 feature describes). Each version is cached on its own.
#
# The last line of stdout is the bin directory; progress goes to stderr.
# Cached under ${KUBE_DC_K8S_CACHE:-$HOME/.cache/kube-dc/k8s}/<version>/bin; a second
# call returns in well under a second when all four binaries exist and run.
#
# How: k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) as v0.0.0 and
# points them at ./staging/... with `replace`, which a dependent module cannot see.
# We create a throwaway module that requires k8s.io/kubernetes and replaces each of
# those staging modules with its published v0.<minor>.<patch> release; the list is
# generated from the replace block of kubernetes' own go.mod, not written by hand.
# etcd is built the same way from go.etcd.io/etcd/server/v3 at the version that
# kubernetes itself tests with: read from that release's hack/lib/etcd.sh
# ($KUBE_DC_ETCD_VERSION overrides it).
set -euo pipefail
# The whole script is one brace group, so bash reads it completely before running it:
# editing or updating this file (git pull) while it runs cannot change a running instance.
{

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

# The default matches k8s-openapi's v1_37 feature.
KUBE_VERSION="${1:-${KUBE_DC_K8S_VERSION:-v1.37.2}}"
version_source="the argument"
[[ -n "${1:-}" ]] || version_source="\$KUBE_DC_K8S_VERSION"
[[ "$KUBE_VERSION" =~ ^v1\.[0-9]+\.[0-9]+$ ]] \
  || die "Kubernetes version '$KUBE_VERSION' (from $version_source) is not of the form v1.MINOR.PATCH, e.g. v1.37.2"

cache_root="${KUBE_DC_K8S_CACHE:-${HOME:?HOME is not set}/.cache/kube-dc/k8s}"
ver_dir="$cache_root/$KUBE_VERSION"
bin_dir="$ver_dir/bin"
binaries=(kube-apiserver kube-controller-manager kubectl etcd)

all_present() {
  local b
  for b in "${binaries[@]}"; do
    [[ -x "$bin_dir/$b" ]] || return 1
  done
  # They must also run (catches truncated files or a wrong architecture).
  "$bin_dir/kube-apiserver" --version >/dev/null 2>&1 || return 1
  "$bin_dir/kube-controller-manager" --version >/dev/null 2>&1 || return 1
  "$bin_dir/kubectl" version --client >/dev/null 2>&1 || return 1
  "$bin_dir/etcd" --version >/dev/null 2>&1 || return 1
}

# Fast path, no lock needed.
if all_present; then
  printf '%s\n' "$bin_dir"
  exit 0
fi

# Find Go.
if ! command -v go >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then
    PATH="$PATH:/usr/local/go/bin"
  else
    die "the 'go' tool is needed to build the control plane (install Go >= 1.26 from https://go.dev/dl/ and put it on PATH)"
  fi
fi
command -v flock >/dev/null 2>&1 || die "'flock' (util-linux) is needed"
command -v python3 >/dev/null 2>&1 || die "'python3' is needed (to read 'go mod download -json')"

mkdir -p "$ver_dir"
# Serialise concurrent builds (e.g. several tests starting at once).
exec 9>"$ver_dir/.build.lock"
log "waiting for the build lock $ver_dir/.build.lock"
flock 9
if all_present; then
  log "built by another process meanwhile"
  printf '%s\n' "$bin_dir"
  exit 0
fi

export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
# Honour the user's GOPROXY/GOMODCACHE; keep the Go toolchain default (go.mod says go 1.26).
log "using $(go version)"

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

work="$ver_dir/work"
rm -rf "$work"
mkdir -p "$work/kubernetes" "$work/etcd" "$ver_dir/bin.new"
out="$ver_dir/bin.new"

# --- kubernetes -------------------------------------------------------------------
log "downloading k8s.io/kubernetes@$KUBE_VERSION metadata"
k8s_json=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION") \
  || die "go mod download k8s.io/kubernetes@$KUBE_VERSION failed (is the Go module proxy reachable?)"
k8s_gomod=$(printf '%s' "$k8s_json" | json_field GoMod)
[[ -f "$k8s_gomod" ]] || die "go.mod of k8s.io/kubernetes not found at $k8s_gomod"
k8s_dir=$(printf '%s' "$k8s_json" | json_field Dir)

# etcd: the version this Kubernetes release tests with (`ETCD_VERSION=${ETCD_VERSION:-3.5.9}`).
if [[ -n "${KUBE_DC_ETCD_VERSION:-}" ]]; then
  ETCD_VERSION="$KUBE_DC_ETCD_VERSION"
else
  etcd_sh="$k8s_dir/hack/lib/etcd.sh"
  ETCD_VERSION=$(sed -n 's/^ETCD_VERSION=\${ETCD_VERSION:-\([0-9][0-9.]*\)}.*/v\1/p' "$etcd_sh" 2>/dev/null | head -1)
  [[ -n "$ETCD_VERSION" ]] || die "no ETCD_VERSION default found in $etcd_sh (set KUBE_DC_ETCD_VERSION=v3.x.y)"
fi
[[ "$ETCD_VERSION" =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "etcd version '$ETCD_VERSION' is not of the form v3.MINOR.PATCH"
log "etcd $ETCD_VERSION (the version kubernetes $KUBE_VERSION tests with)"

staging_version="v0.${KUBE_VERSION#v1.}"   # v1.37.2 -> v0.37.2
# Every `k8s.io/x => ./staging/src/k8s.io/x` line of kubernetes' go.mod becomes
# `k8s.io/x => k8s.io/x v0.37.2`.
replaces=$(awk -v v="$staging_version" '
  /^replace[ \t]*\(/ { inblock = 1; next }
  inblock && /^\)/    { inblock = 0; next }
  inblock && $2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }
  /^replace[ \t]+[^(]/ && $3 == "=>" && $4 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $2, $2, v }
' "$k8s_gomod")
[[ -n "$replaces" ]] || die "no staging replace directives found in $k8s_gomod"
log "replacing $(printf '%s\n' "$replaces" | wc -l) staging modules with their $staging_version releases"
godebug=$(grep -E '^godebug ' "$k8s_gomod" || true)
go_directive=$(grep -E '^go [0-9]' "$k8s_gomod" | head -1)

cat >"$work/kubernetes/go.mod" <<EOF
// Throwaway module generated by kube-dc scripts/control-plane/build.sh.
module kube-dc.local/k8s-build

$go_directive

$godebug

require k8s.io/kubernetes $KUBE_VERSION

replace (
$replaces
)
EOF

# Version stamps, as kubernetes' hack/lib/version.sh sets them.
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
ldx=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldx+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldx+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
k8s_cmds=(kube-apiserver kube-controller-manager kubectl)

(
  cd "$work/kubernetes"
  pkgs=()
  for c in "${k8s_cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c@$KUBE_VERSION"); done
  log "resolving dependencies (go get ${pkgs[*]})"
  go get "${pkgs[@]}" >&2
  for c in "${k8s_cmds[@]}"; do
    log "building $c (this is the slow part on a cold cache)"
    go build -trimpath -ldflags "-s -w$ldx" -o "$out/$c" "k8s.io/kubernetes/cmd/$c" >&2
  done
) || die "building kubernetes $KUBE_VERSION failed (see above)"

# --- etcd -----------------------------------------------------------------------
cat >"$work/etcd/go.mod" <<EOF
// Throwaway module generated by kube-dc scripts/control-plane/build.sh.
module kube-dc.local/etcd-build

$go_directive
EOF
(
  cd "$work/etcd"
  log "resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  log "building etcd"
  go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 >&2
) || die "building etcd $ETCD_VERSION failed (see above)"

# --- install atomically ---------------------------------------------------------
for b in "${binaries[@]}"; do
  [[ -x "$out/$b" ]] || die "$b was not produced"
done
rm -rf "$bin_dir"
mv "$out" "$bin_dir"
rm -rf "$work"
printf 'kubernetes %s\netcd %s\n' "$KUBE_VERSION" "$ETCD_VERSION" >"$ver_dir/VERSIONS"
all_present || die "freshly built binaries in $bin_dir do not run"
log "done: $("$bin_dir/kube-apiserver" --version), etcd $ETCD_VERSION"
printf '%s\n' "$bin_dir"
exit
}
