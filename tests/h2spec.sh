#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The public HTTP/2 conformance suite (h2spec, github.com/summerwind/h2spec: not in Debian,
# built outside the repository and never committed) against the demo over h2c with prior
# knowledge, one worker. `make h2spec H2SPEC=/path/to/h2spec`; docs/http2.md says which
# cases pass and why the one that does not cannot over h2c.
# Usage: tests/h2spec.sh BUILD_DIR H2SPEC
set -u
. "$(dirname "$0")/integration/lib/banner.sh"
build=$1 h2spec=$2
[ -x "$h2spec" ] || { echo "h2spec: $h2spec is not an executable"; exit 1; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
PORT=0 CHOPIN_WORKERS=1 CHOPIN_H2C=1 CHOPIN_TODO_DB=$tmp/todo.db "$build/examples/demo" 2>"$tmp/err" &
pid=$!
port=$(banner_port "$tmp/err")
[ -n "$port" ] || { echo "h2spec: the demo did not start"; cat "$tmp/err"; exit 1; }
"$h2spec" -h 127.0.0.1 -p "$port" -P /plaintext -o 5 >"$tmp/out" 2>&1
sed -n '/^Failures:/,$p' "$tmp/out"
grep -E 'tests, .* passed' "$tmp/out"
kill -TERM "$pid"; wait "$pid"; pid=
# The one case h2c cannot pass: "INVALID CONNECTION PREFACE" is an HTTP/1.1 request line
# on a plain port that speaks both, answered 400 (over TLS with ALPN h2 it is HTTP/2's).
summary=$(grep -E 'tests, .* passed' "$tmp/out") || { echo "h2spec: no summary"; exit 1; }
failed=$(echo "$summary" | sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p')
preface=$(sed -n '/^Failures:/,$p' "$tmp/out" | grep -c '× .*Sends invalid connection preface')
[ "${failed:-1}" -le "$preface" ]
