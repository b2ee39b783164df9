#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Restarts without a dropped request (issue 19): the demo serves a TCP listener and a Unix
# socket while a load generator (tests/integration/loadgen.c: connections per request, and
# keep-alive ones that resend once when an idle connection was closed under them) runs
# through three SIGUSR2 restarts. Each restart starts a new process that takes the
# listening sockets over; the old one drains and exits 0. The load generator must see
# zero failed requests and zero refused connections; each old process must be gone, the
# socket file must stay through the restarts and go with the last process. Then a build
# that cannot start (the restart fails, the server goes on serving) and a build renamed
# over the program file (the restart runs the new file).
# Usage: tests/integration/restart.sh BUILD_DIR   (prints "RESULT passed failed skipped")
set -u
build=${1:-build}
bin=$build/examples/demo
load=$build/itests/loadgen
tmp=$(mktemp -d)
pass=0 fail=0
pid= lpid=
cleanup() {
  [ -n "$lpid" ] && kill -9 "$lpid" 2>/dev/null
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*" >&2; }

if [ "$(uname -s)" != Linux ]; then
  echo "skip: restarts read /proc/self (Linux only)" >&2
  echo "RESULT 0 0 1"
  exit 0
fi
for f in "$bin" "$load"; do
  [ -x "$f" ] || { echo "no $f: build it first" >&2; echo "RESULT 0 1"; exit 1; }
done

# A copy of the demo: the test replaces the program file, as a deploy does.
cp "$bin" "$tmp/app"
CHOPIN_LISTEN="127.0.0.1:0, unix:$tmp/s.sock?mode=0600" CHOPIN_WORKERS=2 \
  CHOPIN_SHUTDOWN_TIMEOUT_MS=5000 CHOPIN_TODO_DB=$tmp/todo.db "$tmp/app" 2>"$tmp/err" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\),.*/\1/p' "$tmp/err" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { bad "demo did not start: $(cat "$tmp/err")"; echo "RESULT $pass $fail"; exit 1; }

"$load" "$port" 9 8 >"$tmp/load" 2>"$tmp/load.err" &
lpid=$!
pids=$pid
for i in 1 2 3; do
  sleep 1.5
  old=$pid
  kill -USR2 "$old"
  new=
  for _ in $(seq 150); do
    new=$(sed -n 's/^chopin: restart: pid \([0-9]*\) listens.*/\1/p' "$tmp/err" | sed -n "${i}p")
    [ -n "$new" ] && break
    sleep 0.1
  done
  if [ -z "$new" ]; then
    bad "restart $i: no new process: $(tail -5 "$tmp/err")"
    break
  fi
  ok
  pid=$new
  pids="$pids $new"
  # The old process drains and exits 0 (it is this script's child only the first time).
  for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$old" 2>/dev/null; then bad "restart $i: pid $old still runs"; else ok; fi
  if [ "$old" = "$(echo $pids | cut -d' ' -f1)" ]; then
    wait "$old"; rc=$?
    if [ "$rc" -eq 0 ]; then ok; else bad "restart $i: the first process exited $rc"; fi
  fi
  [ -S "$tmp/s.sock" ] && ok || bad "restart $i: the socket file is gone"
done

wait "$lpid"; lrc=$?
lpid=
out=$(cat "$tmp/load")
echo "loadgen through 3 restarts: $out" >&2
if [ "$lrc" -eq 0 ]; then ok; else bad "load generator: $out $(head -5 "$tmp/load.err")"; fi
set -- $out
[ "${4:-1}" = 0 ] && ok || bad "failed requests: ${4:-?}"
[ "${6:-1}" = 0 ] && ok || bad "refused connections: ${6:-?}"

# A build that cannot start: the restart fails, this process says so and goes on serving.
# Then a working build renamed over it (a deploy): the restart runs the new file.
printf '#!/bin/sh\nexit 3\n' >"$tmp/app.new" && chmod +x "$tmp/app.new" && mv "$tmp/app.new" "$tmp/app"
kill -USR2 "$pid"
for _ in $(seq 100); do grep -q "restart failed" "$tmp/err" && break; sleep 0.1; done
grep -q "restart failed ($tmp/app): the new process ended before it listened; still serving" "$tmp/err" &&
  ok || bad "a failing build: $(tail -2 "$tmp/err")"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/plaintext")
[ "$code" = 200 ] && ok || bad "after a failed restart: answered $code"
cp "$bin" "$tmp/app.new" && mv "$tmp/app.new" "$tmp/app"
kill -USR2 "$pid"
new=
for _ in $(seq 150); do
  new=$(sed -n 's/^chopin: restart: pid \([0-9]*\) listens.*/\1/p' "$tmp/err" | sed -n 4p)
  [ -n "$new" ] && break
  sleep 0.1
done
if [ -n "$new" ] && [ "$(readlink "/proc/$new/exe")" = "$tmp/app" ]; then ok; pid=$new
else bad "the build renamed over the program did not start: $(tail -3 "$tmp/err")"; fi

# The last process still serves both listeners, and takes its socket file when it ends.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/plaintext")
[ "$code" = 200 ] && ok || bad "after the restarts: TCP answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$tmp/s.sock" http://x/plaintext)
[ "$code" = 200 ] && ok || bad "after the restarts: Unix socket answered $code"
perm=$(stat -c %a "$tmp/s.sock" 2>/dev/null)
[ "$perm" = 600 ] && ok || bad "socket file mode $perm, want 600"
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then bad "the last process did not stop"; else ok; pid=; fi
[ -e "$tmp/s.sock" ] && bad "the socket file outlived the last process" || ok
echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
