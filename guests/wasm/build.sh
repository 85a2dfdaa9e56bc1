#!/usr/bin/env bash
# Builds every guest in this directory from its .wat source with wabt's wat2wasm (Debian package
# `wabt`, installed by scripts/setup-system.sh) and writes SHA256SUMS.
#
#   build.sh            rebuild the .wasm files in place and rewrite SHA256SUMS
#   build.sh --check    rebuild into a temporary directory and compare with SHA256SUMS;
#                       exits non-zero on any difference (tests/unit/sandbox/test_wasm_guests.py)
#
# Reproducible: wat2wasm's output depends only on the source and the wabt version, and
# --debug-names keeps function names so traps carry a readable backtrace.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v wat2wasm >/dev/null || { echo "build.sh: wat2wasm not found; install Debian's wabt (scripts/setup-system.sh does)" >&2; exit 2; }
mode="${1:-build}"
out="$here"
if [ "$mode" = "--check" ]; then out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT; fi
cd "$here"
for src in *.wat; do
  wat2wasm --debug-names -o "$out/${src%.wat}.wasm" "$src"
done
if [ "$mode" = "--check" ]; then
  (cd "$out" && sha256sum -c --quiet "$here/SHA256SUMS")
  echo "build.sh: all guests rebuild byte-identical"
else
  sha256sum -- *.wasm > SHA256SUMS
fi
