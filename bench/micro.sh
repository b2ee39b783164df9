#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds every bench/micro_*.c against BUILD/libchopin.a and runs them one after another,
# pinned to CPU 1 when taskset can do it (less noise from the scheduler moving us around).
# Usage: bench/micro.sh [BUILD]   (BUILD defaults to "build"; `make bench-micro` builds the
# library first). Exits non-zero if any benchmark fails to build or run; the others still run.
set -u
cd "$(dirname "$0")/.."

build=${1:-build}
lib="$build/libchopin.a"
if [ ! -f "$lib" ]; then
  echo "micro.sh: $lib not found; run 'make $lib' first" >&2
  exit 1
fi
mkdir -p "$build/bench"

libs=(-pthread)
[ -e /usr/include/liburing.h ] && libs+=(-luring)
# HTTP/2 (issue 20): a library built with nghttp2 needs it
grep -q ' U nghttp2_' <(nm "$lib" 2>/dev/null) && libs+=(-lnghttp2)
# TLS (issue 16): a library built with OpenSSL needs it (micro_tls drives it; the engine's
# stack, src/stack.c, which micro_h2 sets up, reaches it too)
grep -q ' U SSL_' <(nm "$lib" 2>/dev/null) && libs+=(-lssl -lcrypto)

pin=()
if command -v taskset >/dev/null 2>&1 && taskset -c 1 true 2>/dev/null; then
  pin=(taskset -c 1)
fi

status=0
for src in bench/micro_*.c; do
  [ -e "$src" ] || continue # no benchmark at all: the glob stays literal
  name=$(basename "$src" .c)
  bin="$build/bench/$name"
  if ! ${CC:-cc} -O2 -g -Iinclude -Isrc -D_GNU_SOURCE "$src" "$lib" -o "$bin" "${libs[@]}"; then
    echo "micro.sh: $name failed to build" >&2
    status=1
    continue
  fi
  echo "== $name${pin:+ (pinned: ${pin[*]})}"
  if ! "${pin[@]}" "$bin"; then
    echo "micro.sh: $name failed" >&2
    status=1
  fi
done
exit $status
