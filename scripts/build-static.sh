#!/usr/bin/env bash
# One file for the bastion host: a statically linked x86_64 Linux kube-dc, made by
# `cargo install --locked --path .` for the gnu target with glibc's crt-static (the musl
# target cannot be installed here). libgit2 and zlib are built in, TLS is rustls with ring,
# so nothing is linked at run time. Checks that the result is static (file, ldd) and prints
# its path on stdout.
# Usage: scripts/build-static.sh [INSTALL_ROOT]   (default: target/static; the binary is
# INSTALL_ROOT/bin/kube-dc). The build reuses the work tree's target/ directory.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
root=${1:-$PWD/target/static}
# With an explicit --target, RUSTFLAGS reach only the target's code, not build scripts or
# proc macros (which must stay dynamic for rustc to load them).
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo install --locked --force --path . --target "$target" --root "$root" >&2
bin=$root/bin/kube-dc

description=$(file -b "$bin")
case $description in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) echo "build-static: $bin is not static: $description" >&2; exit 1 ;;
esac
# glibc's ldd says "statically linked" or "not a dynamic executable"; a library shows as "=>".
libraries=$(ldd "$bin" 2>&1 || true)
if grep -q '=>' <<<"$libraries"; then
  echo "build-static: $bin loads shared libraries:" >&2
  echo "$libraries" >&2
  exit 1
fi
echo "build-static: $description; ldd: ${libraries//$'\n'/ }" >&2
echo "$bin"
