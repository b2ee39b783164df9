#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo's operations routes as an operator uses them (issue 19): /metrics read by curl
# and accepted by `promtool check metrics` (skipped, saying so, without promtool),
# /healthz and /readyz, the access log a CHOPIN_ACCESS_LOG file receives (with request
# ids), and logrotate's way of reopening it: rename, then SIGUSR1 to the process, which
# chopin_serve handles; after SIGTERM every answer has its line in one of the two files,
# an HTTP/2 one (h2c) too when the library and curl have HTTP/2.
# Usage: tests/integration/ops_demo.sh BUILD_DIR   (prints "RESULT passed failed skipped")
set -u
. "$(dirname "$0")/lib/banner.sh"
build=${1:-build}
bin=$build/examples/demo
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

check() { # name, command...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $name" >&2; fi
}
body_is() { [ "$(curl -s --max-time 5 "$1")" = "$2" ]; }

h2=0
nm "$build/libchopin.a" 2>/dev/null | grep -q 'U nghttp2_session_mem_recv' &&
  curl -V 2>/dev/null | grep -q HTTP2 && h2=1
PORT=0 CHOPIN_WORKERS=2 CHOPIN_TODO_DB=$tmp/todo.db CHOPIN_ACCESS_LOG=$tmp/access.log \
  CHOPIN_H2C=$h2 "$bin" 2>"$tmp/err" &
pid=$!
port=$(banner_port "$tmp/err")
url=http://127.0.0.1:$port

check "/healthz" body_is "$url/healthz" "ok"
check "/readyz" body_is "$url/readyz" "ready"
for _ in $(seq 20); do curl -s -o /dev/null --max-time 5 "$url/plaintext"; done
check "request id on answers" bash -c "curl -s -D - -o /dev/null --max-time 5 $url/plaintext | grep -qiE '^x-request-id: [0-9a-f]{32}'"
curl -s --max-time 5 "$url/metrics" > "$tmp/metrics"
check "/metrics counts /plaintext" grep -q '^chopin_http_requests_total{method="GET",code="2xx"} 23$' "$tmp/metrics"
check "/metrics has the histograms" grep -q '^chopin_time_to_last_byte_seconds_bucket{le="+Inf"} ' "$tmp/metrics"
if command -v promtool > /dev/null; then
  check "promtool check metrics" bash -c "promtool check metrics < $tmp/metrics"
else
  echo "skipped promtool check metrics: promtool is not installed (Debian prometheus)"
  skip=$((skip + 1))
fi

# logrotate: rename, SIGUSR1, then more answers go to the new file. Workers write their
# lines in batches (within a second of the answer); a batch still in a worker's buffer at
# the reopen goes to the new file, so wait for the 24 answers so far to be in the old one.
for _ in $(seq 50); do [ "$(wc -l < "$tmp/access.log")" -ge 24 ] && break; sleep 0.1; done
mv "$tmp/access.log" "$tmp/access.log.1"
kill -USR1 "$pid"
for _ in $(seq 50); do [ -e "$tmp/access.log" ] && break; sleep 0.1; done
check "SIGUSR1 reopens the access log" [ -e "$tmp/access.log" ]
for _ in $(seq 10); do curl -s -o /dev/null --max-time 5 "$url/json"; done
if [ $h2 = 1 ]; then
  curl -s -o /dev/null --max-time 5 --http2-prior-knowledge "$url/plaintext"
else
  echo "skipped the HTTP/2 line: the library or curl has no HTTP/2"
  skip=$((skip + 1))
fi
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "SIGTERM exits 0 (got $rc)" [ "$rc" -eq 0 ]
answers=$((2 + 20 + 1 + 1 + 10 + h2))
lines=$(cat "$tmp/access.log.1" "$tmp/access.log" 2>/dev/null | wc -l)
check "a line per answer ($lines for $answers)" [ "$lines" -eq "$answers" ]
check "after the reopen, in the new file" [ "$(grep -c '"GET /json HTTP/1.1" 200 ' "$tmp/access.log" 2>/dev/null)" = 10 ]
[ $h2 = 1 ] && check "an HTTP/2 answer logged" grep -qE '"GET /plaintext HTTP/2\.0" 200 13 "-" "curl/[^"]*" "[0-9a-f]{32}"$' "$tmp/access.log"
check "combined lines with the request id" grep -qE '^127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} \+0000\] "GET /plaintext HTTP/1.1" 200 13 "-" "curl/[^"]*" "[0-9a-f]{32}"$' "$tmp/access.log.1"

echo "RESULT $pass $fail $skip"
[ "$fail" -eq 0 ]
