#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The layers of docs/design.md, checked on the sources: each folder includes only what lies
# below it, and no .c file declares another file's functions by hand (an `extern`
# prototype the compiler never checks against the definition). Linker-made symbols
# (__start_/__stop_ of a section) are the one kind of extern a .c file may name.
# Usage: tests/build/layers.sh   (prints "RESULT passed failed skipped")
set -u
cd "$(dirname "$0")/../.."
pass=0 fail=0

includes() { grep -hoE '^#include "[^"]+"' "$@" 2>/dev/null | sed 's/#include "//; s/"$//' | sort -u; }

# layer files, then the extended regex of includes they must not have
forbid() {
  local what=$1 bad=$2; shift 2
  local found
  found=$(includes "$@" | grep -E "$bad")
  if [ -z "$found" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL $what includes $(echo $found)" >&2
  fi
}

above_http='^(router/|api/|backend/|conn\.h|engine\.h|outq\.h|worker\.h|config\.h)'
forbid "src/mem, src/timer (the bottom)" "^(http/|$above_http)|platform\.h" src/mem/* src/timer/*
forbid "src/http (knows bytes, not connections)" "$above_http" src/http/*
forbid "src/router (knows requests, not connections)" \
  '^(api/(api|open_beneath)\.h|backend/|conn\.h|engine\.h|outq\.h|worker\.h)' src/router/*
forbid "src/api (the exchange, not the router or the loop)" '^(router/|backend/|worker\.h)' src/api/*
forbid "src/outq (below the connection)" '^(conn\.h|engine\.h|router/|api/|backend/)' src/outq.*
forbid "src/conn, src/engine (sans-I/O: no backend)" '^(backend/|worker\.h)' \
  src/conn.* src/engine.*
forbid "src/conn, src/engine (HTTP/1.1 and the slots: other protocols and transports come through stack.h)" \
  '^(h2/|tls/|ws/)' src/conn.* src/engine.*
forbid "src/ops (logs and counts beside the engine: no backend)" '^(backend/|worker\.h)' src/ops/*
forbid "src/backend (moves bytes: no HTTP)" '^(http/(parser|message|serialize|chunked)\.h|router/|api/)' \
  src/backend/*

externs=$(grep -nE '^\s*extern\b' $(find src -name '*.c') | grep -vE '__(start|stop)_')
if [ -z "$externs" ]; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL extern declarations in .c files (put them in a header):" >&2
  echo "$externs" >&2
fi

echo "RESULT $pass $fail 0"
[ "$fail" -eq 0 ]
