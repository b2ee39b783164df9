#!/usr/bin/env bash
# The demo server as a user runs it, checked with curl: the routes of the README, a bad
# address that must fail loudly, and SIGTERM that must drain and exit 0.
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
check "banner names version, workers and backend" grep -qE "^chopin [0-9.]+: 2 workers, [a-z_]+, listening on" "$tmp/err"
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

PORT=notaport "$bin" 2>"$tmp/bad"
rc=$?
check "bad PORT exits non-zero (got $rc)" [ "$rc" -ne 0 ]
check "bad PORT says why" grep -q "bad address" "$tmp/bad"

echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
