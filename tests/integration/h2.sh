#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# HTTP/2 (issue 20) against the demo with h2c on (CHOPIN_H2C=1): the demo suite's request
# and response cases over h2c with prior knowledge, from curl --http2-prior-knowledge and
# nghttp (nghttp2-client); many streams on one connection (nghttp, h2load); a deferred
# answer, a server-sent event stream, a large upload and its bound; HTTP/1.1 beside it on
# the same port; SIGTERM with a stream in flight: GOAWAY, the stream answered, exit 0;
# a 20 MB upload to a route that streams its body (/upload); trailers (/trailers).
# Usage: tests/integration/h2.sh BUILD_DIR   (prints "RESULT passed failed [skipped]")
set -u
build=${1:-build}
bin=$build/examples/demo
pass=0 fail=0
skip() { echo "skip h2.sh: $1"; echo "RESULT 0 0 1"; exit 0; }
nm "$build/libchopin.a" 2>/dev/null | grep -q 'U nghttp2_session_mem_recv' ||
  skip "the library was built without nghttp2 (install libnghttp2-dev)"
curl -V 2>/dev/null | grep -q HTTP2 || skip "curl has no HTTP/2"
command -v nghttp >/dev/null && command -v h2load >/dev/null ||
  skip "nghttp and h2load missing (install nghttp2-client)"
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

check() { # name, command...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $name" >&2; fi
}
h2() { curl -s --http2-prior-knowledge --max-time 10 "$@"; }
body_is() { [ "$(h2 "$1")" = "$2" ]; }
status_is() { [ "$(h2 -o /dev/null -w '%{http_code}' "${@:2}")" = "$1" ]; }

start() { # log file, env...
  local log=$1; shift
  env PORT=0 CHOPIN_WORKERS=2 CHOPIN_H2C=1 CHOPIN_TODO_DB=$tmp/todo.db "$@" "$bin" 2>"$log" &
  pid=$!
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$log")
    [ -n "$port" ] && break
    sleep 0.1
  done
  url=http://127.0.0.1:$port
}

mkdir -p "$tmp/store"
start "$tmp/err" CHOPIN_MAX_BODY_BYTES=1048576 CHOPIN_H2C_UPGRADE=1 CHOPIN_UPLOAD_DIR=$tmp/store
check "/plaintext over h2c" body_is "$url/plaintext" "Hello, World!"
check "the answer is HTTP/2" bash -c "curl -s --http2-prior-knowledge -o /dev/null -w '%{http_version}' $url/plaintext | grep -qx 2"
check "/json" body_is "$url/json" '{"message":"Hello, World!"}'
check "/json content type" bash -c "curl -s --http2-prior-knowledge -D - -o /dev/null $url/json | grep -qi '^content-type: application/json'"
check "POST /echo" bash -c "[ \"\$(curl -s --http2-prior-knowledge -H 'Content-Type: text/x-test' --data-binary 'ping pong' $url/echo)\" = 'ping pong' ]"
check "POST /echo content type" bash -c "curl -s --http2-prior-knowledge -D - -o /dev/null -H 'Content-Type: text/x-test' --data-binary x $url/echo | grep -qi '^content-type: text/x-test'"
head -c 1000000 /dev/urandom >"$tmp/up"
check "POST /echo of 1 MB comes back whole" bash -c "curl -s --http2-prior-knowledge --data-binary @$tmp/up $url/echo | cmp -s - $tmp/up"
head -c 1100000 /dev/urandom >"$tmp/big"
# (nghttp: curl 7.88 drops an answer that comes before the end of its upload, then a
# RST_STREAM NO_ERROR, as RFC 9113 §8.1 has the server end the upload)
check "a body past max_body_bytes is 413" bash -c "nghttp -nv -d $tmp/big $url/echo 2>&1 | grep -q ':status: 413'"
# A route that streams its body (the demo's /upload, chopin_router_stream) past
# max_body_bytes (1 MB here), the body hashed as it arrives.
head -c 20000000 /dev/urandom >"$tmp/up20"
up20_sha=$(sha256sum "$tmp/up20" | cut -d' ' -f1)
check "20 MB multipart upload over h2c to a streaming route: size and SHA-256" bash -c \
  "curl -s --http2-prior-knowledge --max-time 60 -F f=@$tmp/up20 $url/upload | grep -q '\"size\":20000000,\"sha256\":\"$up20_sha\"'"
# Trailers: a last HEADERS frame on h2 (curl shows them after the body), the chunked
# trailer section on HTTP/1.1.
check "trailers over h2c (curl)" bash -c "curl -s --http2-prior-knowledge -D - -o /dev/null $url/trailers | grep -qx 'x-checksum: demo-trailer.'"
check "trailers over h2c (nghttp): a HEADERS frame with END_STREAM" bash -c "nghttp -v $url/trailers 2>&1 | grep -A1 'recv (stream_id=13) x-checksum: demo-trailer' | grep -q 'recv HEADERS frame .*flags=0x05'"
check "trailers over HTTP/1.1 chunked" bash -c "curl -s --http1.1 --raw $url/trailers | tr -d '\r' | grep -qx 'X-Checksum: demo-trailer'"
check "404" status_is 404 "$url/nothing-here"
check "405 on GET /echo" status_is 405 "$url/echo"
check "HEAD: length, no body" bash -c "out=\$(curl -s --http2-prior-knowledge -I $url/plaintext); echo \"\$out\" | grep -qi '^content-length: 13' && [ -z \"\$(curl -s --http2-prior-knowledge --head -o - $url/plaintext | sed '1,/^\r$/d')\" ]"
check "two requests, one connection" bash -c "curl -sv --http2-prior-knowledge $url/plaintext $url/json 2>&1 | grep -qE 'Re-using existing connection|Multiplexed connection'"
check "/sleep (deferred) over h2c" body_is "$url/sleep?ms=20" "slept 20 ms"
check "/events: three events then the end" bash -c "[ \$(curl -s --http2-prior-knowledge --max-time 10 '$url/events?n=3&ms=50' | grep -c '^event: tick') -eq 3 ]"
check "Upgrade: h2c (curl --http2): 101, then HTTP/2" bash -c "out=\$(curl -sv --http2 $url/json 2>&1); echo \"\$out\" | grep -q '< HTTP/1.1 101' && echo \"\$out\" | grep -q '< HTTP/2 200' && echo \"\$out\" | grep -q 'Hello, World'"
check "Upgrade: h2c (nghttp -u), a deferred answer as stream 1" bash -c "nghttp -u '$url/sleep?ms=20' | grep -qx 'slept 20 ms'"
check "HTTP/1.1 on the same port" bash -c "[ \"\$(curl -s --http1.1 $url/plaintext)\" = 'Hello, World!' ]"
check "nghttp: 100 streams at once, all 200" bash -c "nghttp -n -s -m 100 $url/plaintext 2>&1 | grep -c ' 200 ' | grep -qx 100"
check "nghttp -v: SETTINGS without ENABLE_PUSH=1, MAX_CONCURRENT_STREAMS 100" bash -c "out=\$(nghttp -nv $url/plaintext 2>&1); echo \"\$out\" | grep -q 'SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100' && ! echo \"\$out\" | grep -q 'SETTINGS_ENABLE_PUSH(0x02):1'"
check "h2load: 2000 requests, 4 connections, 50 streams each, all 2xx" bash -c "h2load -n 2000 -c 4 -m 50 $url/json 2>&1 | grep -q 'status codes: 2000 2xx'"

# A stream in flight when the server is told to stop: GOAWAY, its answer, exit 0.
( nghttp -nv "$url/sleep?ms=700" >"$tmp/drain" 2>&1 ) &
client=$!
sleep 0.3
kill -TERM "$pid"
wait "$client"
wait "$pid"
rc=$?
pid=
# (nghttp opens its request on stream 13, after six streams for priorities)
check "SIGTERM: the stream in flight is answered" grep -q 'recv DATA frame .*flags=0x01, stream_id=13' "$tmp/drain"
check "SIGTERM: GOAWAY NO_ERROR with the last stream" bash -c "grep -A1 'recv GOAWAY' $tmp/drain | grep -q 'last_stream_id=13, error_code=NO_ERROR'"
check "SIGTERM exits 0 (got $rc)" [ "$rc" -eq 0 ]

# Without the option the preface is not HTTP/2.
start "$tmp/err2" CHOPIN_H2C=0
check "h2c off: prior knowledge refused" bash -c "! curl -s --http2-prior-knowledge --max-time 5 -o /dev/null $url/plaintext"
check "h2c off: HTTP/1.1 served" bash -c "[ \"\$(curl -s --max-time 5 $url/plaintext)\" = 'Hello, World!' ]"
kill -TERM "$pid"
wait "$pid"
pid=

echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
