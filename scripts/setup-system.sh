#!/usr/bin/env bash
# System packages the runner uses, from Debian. Idempotent; skipped (with a note) when not root,
# since the runner then falls back to what the host offers (see `runner doctor`).
set -euo pipefail
need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
# npm installs tests/differential's references (Makefile: aws-local-stepfunctions, asl-validator).
command -v npm >/dev/null 2>&1 || need+=(npm)
# Namespaces for subprocess environments (runner/confinement/namespaces.py); setpriv and prlimit come
# with util-linux, which Debian always has.
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
# The guests' seccomp filter is compiled by libseccomp (runner/confinement/seccomp.py).
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || need+=(libseccomp2)
# The WebAssembly guests' toolchain (guests/wasm/build.sh; a test rebuilds and compares).
command -v wat2wasm >/dev/null 2>&1 || need+=(wabt)
command -v clang-14 >/dev/null 2>&1 || need+=(clang-14)
command -v wasm-ld-14 >/dev/null 2>&1 || need+=(lld-14)
[ -e /usr/lib/wasm32-wasi/libc.a ] || need+=(wasi-libc)
[ -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a ] || need+=(libclang-rt-14-dev-wasm32)
# Real brokers and stores for event sources and the cluster, started by test fixtures on loopback
# (never through systemd): Redis Streams, NATS JetStream, PostgreSQL.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
# A user-mode network stack for functions given a network policy (docs/events.md).
command -v pasta >/dev/null 2>&1 || need+=(passt)
command -v slirp4netns >/dev/null 2>&1 || need+=(slirp4netns)
# Headless Chromium for the dashboard's browser tests.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-system: not root; missing Debian packages: ${need[*]} (install them for full support)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
