#!/usr/bin/env bash
# The full differential test of the in-process sops reader (issue 13): FILES generated
# YAML files (default 1200: every rule type x recipient set, 200 each), each encrypted by
# the real sops and decrypted by both `sops decrypt` and the reader, which must agree byte
# for byte. CI runs a 240-file sample of the same test (tests/sops_reader/differential.rs).
#
# Usage: scripts/sops-differential.sh [FILES]
set -euo pipefail
files=${1:-1200}
# shellcheck source=scripts/prepare.sh
source "$(dirname "$0")/prepare.sh"
KUBE_DC_DIFFERENTIAL_FILES=$files cargo test --release --test sops_reader differential -- --nocapture
