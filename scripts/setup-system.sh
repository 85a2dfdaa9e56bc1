#!/usr/bin/env bash
# System packages the runner uses, from Debian. Idempotent; skipped (with a note) when not root,
# since the runner then falls back to what the host offers (see `runner doctor`).
set -euo pipefail
need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
# wat2wasm rebuilds the WebAssembly guests (guests/wasm/build.sh; a test compares the result).
command -v wat2wasm >/dev/null 2>&1 || need+=(wabt)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-system: not root; missing Debian packages: ${need[*]} (install them for full support)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
