#!/usr/bin/env bash
# Builds every guest in this directory and writes SHA256SUMS: .wat sources with wabt's wat2wasm,
# .c sources with clang-14 against wasi-libc (Debian packages wabt, clang-14, lld-14, wasi-libc,
# libclang-rt-14-dev-wasm32, installed by scripts/setup-system.sh).
#
#   build.sh            rebuild the .wasm files in place and rewrite SHA256SUMS
#   build.sh --check    rebuild into a temporary directory and compare with SHA256SUMS;
#                       exits non-zero on any difference (tests/unit/environments/wasm/test_guests.py)
#
# Reproducible: the output depends only on the sources and the toolchain versions. wat2wasm's
# --debug-names keeps function names so traps carry a readable backtrace; for C, lld's
# --strip-debug drops DWARF (which would embed the checkout's path) and keeps the name section.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v wat2wasm >/dev/null || { echo "build.sh: wat2wasm not found; install Debian's wabt (scripts/setup-system.sh does)" >&2; exit 2; }
command -v clang-14 >/dev/null && [ -e /usr/lib/wasm32-wasi/libc.a ] || { echo "build.sh: clang-14 or wasi-libc not found; install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 (scripts/setup-system.sh does)" >&2; exit 2; }
mode="${1:-build}"
out="$here"
if [ "$mode" = "--check" ]; then out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT; fi
cd "$here"
for src in *.wat; do
  wat2wasm --debug-names -o "$out/${src%.wat}.wasm" "$src"
done
for src in *.c; do
  clang-14 --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-debug \
    -o "$out/${src%.c}.wasm" "$src"
done
if [ "$mode" = "--check" ]; then
  (cd "$out" && sha256sum -c --quiet "$here/SHA256SUMS")
  echo "build.sh: all guests rebuild byte-identical"
else
  sha256sum -- *.wasm > SHA256SUMS
fi
