#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Overload through the demo server: out of descriptors (RLIMIT_NOFILE lowered with
# prlimit) while every connection is busy. The server must keep running, keep the
# connections it could not accept waiting in the backlog (not drop them), and serve
# everyone once descriptors free up.
# Usage: tests/integration/overload.sh BUILD_DIR   (prints "RESULT passed failed")
set -u
. "$(dirname "$0")/lib/banner.sh"
build=${1:-build}
bin=$build/examples/demo
pass=0 fail=0
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
check() {
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $name" >&2; fi
}

limit=48
PORT=0 CHOPIN_WORKERS=1 CHOPIN_TODO_DB=$tmp/todo.db prlimit --nofile=$limit "$bin" 2>"$tmp/err" &
pid=$!
port=$(banner_port "$tmp/err")
[ -n "$port" ] || { echo "demo did not start"; cat "$tmp/err"; echo "RESULT 0 1"; exit 1; }

# More busy connections (half a request each) than the server has descriptors for.
held=()
for _ in $(seq $((limit + 8))); do
  exec {fd}<>/dev/tcp/127.0.0.1/"$port" || break
  printf 'GET /plaintext HTTP/1.1\r\n' >&"$fd"
  held+=("$fd")
done
check "opened every client connection" [ "${#held[@]}" -eq $((limit + 8)) ]

curl -s --max-time 20 "http://127.0.0.1:$port/plaintext" >"$tmp/curl" &
curl_pid=$!
sleep 1
check "server still running under EMFILE" kill -0 "$pid"
read -r t1 < <(awk '{print $14 + $15}' "/proc/$pid/stat")
sleep 1
read -r t2 < <(awk '{print $14 + $15}' "/proc/$pid/stat")
ticks=$((t2 - t1))
echo "cpu ticks in 1 s of EMFILE pressure: $ticks (of $(getconf CLK_TCK))"

# Finish every held request; each must be answered, including those still in the backlog.
for fd in "${held[@]}"; do printf 'Host: a\r\nConnection: close\r\n\r\n' >&"$fd"; done
answered=0
for fd in "${held[@]}"; do
  line=
  read -r -t 20 -u "$fd" line
  [[ "$line" == "HTTP/1.1 200"* ]] && answered=$((answered + 1))
  exec {fd}>&-
done
check "every held connection answered ($answered/${#held[@]})" [ "$answered" -eq "${#held[@]}" ]
wait "$curl_pid"
check "the waiting client was served" [ "$(cat "$tmp/curl")" = "Hello, World!" ]
check "server still running" kill -0 "$pid"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "SIGTERM exits 0 (got $rc)" [ "$rc" -eq 0 ]
echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
