#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo server as a user runs it, checked with curl: the routes of the README, SIGTERM
# that must drain and exit 0, a bad configuration (PORT, CHOPIN_*) that must fail loudly,
# naming every bad value, before it creates anything, and no temporary directory left.
# Usage: tests/integration/demo.sh BUILD_DIR   (prints "RESULT passed failed")
set -u
. "$(dirname "$0")/lib/banner.sh"
build=${1:-build}
bin=$build/examples/demo
pass=0 fail=0
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

check() { # name, command...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $name" >&2; fi
}
body_is() { [ "$(curl -s --max-time 5 "$1")" = "$2" ]; }
status_is() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${@:2}")" = "$1" ]; }

public=$(cd "$(dirname "$0")/../../examples/public" && pwd) # /static/ (issue 15)
PORT=0 CHOPIN_WORKERS=2 CHOPIN_TODO_DB=$tmp/todo.db DEMO_PUBLIC=$public "$bin" 2>"$tmp/err" &
pid=$!
port=$(banner_port "$tmp/err")
check "banner names version, workers and backend" grep -qE "^chopin [0-9.]+: 2 workers, [a-z_]+, [0-9]+ connections per worker, listening on" "$tmp/err"
url=http://127.0.0.1:$port

check "/plaintext" body_is "$url/plaintext" "Hello, World!"
check "/json" body_is "$url/json" '{"message":"Hello, World!"}'
check "/json content type" bash -c "curl -s -D - -o /dev/null --max-time 5 $url/json | grep -qi '^content-type: application/json'"
check "/ lists routes" bash -c "curl -s --max-time 5 $url/ | grep -q '/plaintext'"
check "POST /echo" bash -c "[ \"\$(curl -s --max-time 5 -H 'Content-Type: text/x-test' --data-binary 'ping pong' $url/echo)\" = 'ping pong' ]"
check "POST /echo content type" bash -c "curl -s -D - -o /dev/null --max-time 5 -H 'Content-Type: text/x-test' --data-binary x $url/echo | grep -qi '^content-type: text/x-test'"
check "404" status_is 404 "$url/nothing-here"
# examples/public under /static/ (issue 15): the page, byte for byte, and a 304 on its ETag
check "/static/ serves examples/public" bash -c "curl -s --max-time 5 $url/static/ | cmp -s - $public/index.html"
check "/static/ revalidates" bash -c "e=\$(curl -s -D - -o /dev/null --max-time 5 $url/static/style.css | tr -d '\r' | sed -n 's/^ETag: //p'); [ \"\$(curl -s -o /dev/null -w '%{http_code}' -H \"If-None-Match: \$e\" --max-time 5 $url/static/style.css)\" = 304 ]"
check "405 on GET /echo" status_is 405 "$url/echo"
# (only when the library was built with an encoder: each one is left out without its library)
nm "$build/libchopin.a" 2>/dev/null | grep -qE ' U (deflateInit2_|BrotliEncoderCompress|ZSTD_compressCCtx)$' &&
check "/static/ compressed for curl --compressed (issue 15)" bash -c "curl -s --compressed -D $tmp/h --max-time 5 $url/static/ | grep -q 'static files' && grep -qi '^content-encoding: ' $tmp/h && grep -qi '^vary: accept-encoding' $tmp/h"
check "keep-alive reuses one connection" bash -c "curl -sv --max-time 5 $url/plaintext $url/json 2>&1 | grep -q 'Re-using existing connection'"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "SIGTERM exits 0 (got $rc)" [ "$rc" -eq 0 ]

# Answers that come later, on one worker: /sleep (a timer) and /offload (the blocking pool,
# one thread and a queue of one). A slow answer of either kind must not hold a fast request
# on the same worker (which answer has arrived when the other does: no durations).
PORT=0 CHOPIN_WORKERS=1 CHOPIN_OFFLOAD_THREADS=1 CHOPIN_OFFLOAD_QUEUE=1 \
  CHOPIN_TODO_DB=$tmp/todo.db "$bin" 2>"$tmp/err3" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/err3")
  [ -n "$port" ] && break
  sleep 0.1
done
url=http://127.0.0.1:$port
check "/sleep?ms=20" body_is "$url/sleep?ms=20" "slept 20 ms"
check "/offload?ms=20" body_is "$url/offload?ms=20" "offloaded 20 ms"
check "/sleep?ms=60001 is 400" status_is 400 "$url/sleep?ms=60001"
check "/sleep?ms=x is 400" status_is 400 "$url/sleep?ms=x"
check "/offload without ms is 400" status_is 400 "$url/offload"
# pending_while_fast SLOW_TARGET BODY: sends the slow request, then /plaintext on another
# connection; when the fast answer has arrived the slow one must not have (the worker
# writes answers in the order it produces them, so a worker held by the slow request would
# have written the slow answer first), and the slow one must come later, right.
pending_while_fast() {
  local status slow pending=1
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$1" >&3
  sleep 0.3 # the slow request reaches the worker first
  exec 4<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&4
  read -r -t 10 status <&4
  read -r -t 0 <&3 && pending=0
  slow=$(timeout 10 cat <&3)
  exec 3<&- 4<&-
  [[ $status == "HTTP/1.1 200"* ]] && [ $pending = 1 ] && [[ $slow == *"$2" ]]
}
check "a fast request is answered while a slow /sleep waits on its worker" \
  pending_while_fast "/sleep?ms=2000" "slept 2000 ms"
check "a fast request is answered while a slow /offload waits on its worker" \
  pending_while_fast "/offload?ms=2000" "offloaded 2000 ms"
full=()
for i in 1 2 3 4; do # one runs, one waits in the queue, the others find it full
  curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 "$url/offload?ms=2000" > "$tmp/full.$i" &
  full+=($!)
done
wait "${full[@]}"
codes=$(cat "$tmp"/full.* | sort | uniq -c | awk '{print $2 ":" $1}' | tr '\n' ' ')
check "full offload queue answers 503 ($codes)" \
  bash -c "grep -qx 503 $tmp/full.* && grep -qx 200 $tmp/full.* && [ \$(grep -xcE '200|503' $tmp/full.* | awk -F: '{s+=\$2} END {print s}') -eq 4 ]"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "SIGTERM exits 0 after answers that came later (got $rc)" [ "$rc" -eq 0 ]

# A bad configuration stops the demo before it creates anything, and says what is wrong:
# every invalid value, not only the first. A private TMPDIR shows what it leaves behind.
private=$tmp/private
mkdir -p "$private"
leftovers() { ls -d "$private"/chopin-todo-* 2>/dev/null | wc -l; }
refused() { # name, expected message (grep -E), environment...
  local name=$1 want=$2; shift 2
  # timeout: a demo that accepts the value serves until it is killed
  env -u CHOPIN_TODO_DB TMPDIR="$private" "$@" timeout -s KILL 10 "$bin" >/dev/null 2>"$tmp/bad"
  local rc=$?
  check "$name exits non-zero (got $rc)" [ "$rc" -ne 0 ]
  check "$name says why" grep -qE "$want" "$tmp/bad"
  check "$name leaves no chopin-todo-* directory" [ "$(leftovers)" -eq "${running:-0}" ]
}
refused "bad PORT" 'PORT="notaport"' PORT=notaport
refused "PORT out of range" 'PORT="99999".*0 to 65535' PORT=99999
refused "PORT with a space" 'PORT=" 2"' PORT=" 2"
refused "bad CHOPIN_WORKERS" 'CHOPIN_WORKERS=" 2"' PORT=0 CHOPIN_WORKERS=" 2"
refused "two bad values (the first)" 'CHOPIN_MAX_HEADERS="\+2"' PORT=0 CHOPIN_MAX_HEADERS=+2 CHOPIN_BUFFER_SIZE="4096 "
check "two bad values (the second)" grep -q 'CHOPIN_BUFFER_SIZE="4096 "' "$tmp/bad"
refused "bad PORT and bad variable (PORT)" 'PORT="x"' PORT=x CHOPIN_PIN=2
check "bad PORT and bad variable (variable)" grep -q 'CHOPIN_PIN="2"' "$tmp/bad"
refused "two fields in one rule" 'CHOPIN_MAX_REQUEST_LINE.*CHOPIN_MAX_HEADER_BYTES' PORT=0 CHOPIN_MAX_REQUEST_LINE=8192 CHOPIN_MAX_HEADER_BYTES=4096
if ! nm "$build/libchopin.a" 2>/dev/null | grep -qE ' [TDR] chopin__kqueue_backend$'; then
  refused "backend not compiled in" 'CHOPIN_BACKEND=kqueue' PORT=0 CHOPIN_BACKEND=kqueue
fi

# A run that created its database directory removes it at exit, also when it cannot listen.
env -u CHOPIN_TODO_DB TMPDIR="$private" PORT=0 CHOPIN_WORKERS=1 "$bin" 2>"$tmp/err2" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/err2")
  [ -n "$port" ] && break
  sleep 0.1
done
check "temporary database directory while running" [ "$(leftovers)" -eq 1 ]
check "a todo is stored" status_is 201 -d '{"title":"x"}' "http://127.0.0.1:$port/todos"
running=1 refused "port in use" "0.0.0.0:$port: address in use" PORT="$port"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "SIGTERM exits 0 (got $rc)" [ "$rc" -eq 0 ]
check "temporary database directory removed at exit" [ "$(leftovers)" -eq 0 ]

echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
