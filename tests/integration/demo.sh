#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo server as a user runs it, checked with curl: the routes of the README, SIGTERM
# that must drain and exit 0, a bad configuration (PORT, CHOPIN_*) that must fail loudly,
# naming every bad value, before it creates anything, and no temporary directory left.
# Usage: tests/integration/demo.sh BUILD_DIR   (prints "RESULT passed failed")
set -u
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

PORT=0 CHOPIN_WORKERS=2 CHOPIN_TODO_DB=$tmp/todo.db "$bin" 2>"$tmp/err" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/err")
  [ -n "$port" ] && break
  sleep 0.1
done
check "banner names version, workers and backend" grep -qE "^chopin [0-9.]+: 2 workers, [a-z_]+, [0-9]+ connections per worker, listening on" "$tmp/err"
url=http://127.0.0.1:$port

check "/plaintext" body_is "$url/plaintext" "Hello, World!"
check "/json" body_is "$url/json" '{"message":"Hello, World!"}'
check "/json content type" bash -c "curl -s -D - -o /dev/null --max-time 5 $url/json | grep -qi '^content-type: application/json'"
check "/ lists routes" bash -c "curl -s --max-time 5 $url/ | grep -q '/plaintext'"
check "POST /echo" bash -c "[ \"\$(curl -s --max-time 5 -H 'Content-Type: text/x-test' --data-binary 'ping pong' $url/echo)\" = 'ping pong' ]"
check "POST /echo content type" bash -c "curl -s -D - -o /dev/null --max-time 5 -H 'Content-Type: text/x-test' --data-binary x $url/echo | grep -qi '^content-type: text/x-test'"
check "404" status_is 404 "$url/nothing-here"
check "405 on GET /echo" status_is 405 "$url/echo"
check "keep-alive reuses one connection" bash -c "curl -sv --max-time 5 $url/plaintext $url/json 2>&1 | grep -q 'Re-using existing connection'"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "SIGTERM exits 0 (got $rc)" [ "$rc" -eq 0 ]

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
